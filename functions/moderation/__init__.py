"""The `moderation` service: the review queue, decisions, takedowns, categories, pricing and the audit log."""

from functions.moderation import bus_triggers, routes  # noqa: F401  (importing registers the functions)
from functions.moderation.blueprint import bp

__all__ = ["bp"]
