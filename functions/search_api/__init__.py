"""The `search_api` service: public, portfolio and admin search, image details, similar, by-image, suggest."""

from functions.search_api import routes  # noqa: F401  (importing registers the functions)
from functions.search_api.blueprint import bp

__all__ = ["bp"]
