"""The `processing` service (ARCHITECTURE §2): image.uploaded -> renditions, metadata, ML -> image.processed."""

from functions.processing import bus_triggers  # noqa: F401  (importing registers the functions)
from functions.processing.blueprint import bp

__all__ = ["bp"]
