"""The `ingestion` service: upload tickets, validation of files landing in `incoming`, the image catalogue,
and the batch migration CLI (`python -m functions.ingestion.migrate`)."""

from functions.ingestion import routes, triggers  # noqa: F401  (importing registers the functions)
from functions.ingestion.blueprint import bp

__all__ = ["bp"]
