"""Opaque keyset cursors: the sort key of the last row a page showed, so the next page starts after it.

Keyset paging stays fast and stable while rows are added (an offset would skip or repeat them). The
cursor is URL-safe base64 of a JSON list of strings; a cursor the API did not make is a ValueError,
which the edge turns into a 400 naming the parameter.
"""

from __future__ import annotations

import base64
import json


def encode_cursor(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int | None = None) -> list[str]:
    """The key inside `cursor`; `parts` (when given) is how many values the caller's sort key has."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        key = None
    if (
        not isinstance(key, list)
        or (parts is not None and len(key) != parts)
        or not all(isinstance(k, str) for k in key)
    ):
        raise ValueError("is not a cursor this API returned")
    return key
