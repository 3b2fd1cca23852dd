"""Search: the serving-index port (port.py) and its adapters."""
