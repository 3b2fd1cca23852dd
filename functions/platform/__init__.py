"""The `platform` service: health, identity, API description, the outbox relay and bus probes."""

from functions.platform import bus_triggers, dead_letter_routes, routes  # noqa: F401  (importing registers the functions)
from functions.platform.blueprint import bp

__all__ = ["bp"]
