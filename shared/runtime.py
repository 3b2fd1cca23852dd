"""The per-process container of adapters that handlers receive (db, bus, storage).

Built once per worker process on first use; devhost builds it before serving.
Trigger functions call `await get_runtime()` and pass the ports to plain
handlers, so handlers never construct adapters or read settings themselves.
"""
