"""The `search_sync` service: image, pricing and order events -> search read model and serving index."""

from functions.search_sync import bus_triggers  # noqa: F401  (importing registers the functions)
from functions.search_sync.blueprint import bp

__all__ = ["bp"]
