"""A local Azure Functions host: serves the same function_app with the real azure.functions types."""
