"""Stripe's list conventions: newest first, `limit`/`starting_after`/`ending_before` pages, `created` bounds."""

from __future__ import annotations

from typing import Any

from devhost.stripe_standin import forms
from devhost.stripe_standin.errors import invalid


def as_list(data: list[dict], url: str) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def created_filter(found: list[dict], created: Any) -> list[dict]:
    """Stripe's `created` list filter: an exact time or `created[gte]=...` style bounds."""
    if isinstance(created, dict):
        bounds = {op: int(value) for op, value in created.items() if op in ("gt", "gte", "lt", "lte")}
        return [
            o
            for o in found
            if o["created"] >= bounds.get("gte", o["created"])
            and o["created"] > bounds.get("gt", o["created"] - 1)
            and o["created"] <= bounds.get("lte", o["created"])
            and o["created"] < bounds.get("lt", o["created"] + 1)
        ]
    if created is not None:
        return [o for o in found if o["created"] == int(created)]
    return found


def page(found: list[dict], params: dict, url: str) -> dict:
    """One page of a newest-first list: `limit` (default 10, at most 100), `starting_after`, `ending_before`."""
    limit = forms.get_int(params, "limit", minimum=1) or 10
    if limit > 100:
        raise invalid("Invalid limit: must be at most 100", param="limit")
    ids = [o["id"] for o in found]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:  # newest first: the page after `after` holds older objects
        found = found[ids.index(after) + 1 :] if after in ids else []
    elif before:
        found = found[: ids.index(before)][-limit:] if before in ids else []
    page = as_list(found[:limit], url)
    page["has_more"] = len(found) > limit
    return page
