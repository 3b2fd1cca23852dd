"""Stripe's form encoding: `line_items[0][price_data][currency]=usd`, `expand[]=x`, into nested dicts and lists.

The SDK always sends arrays with explicit indexes; `[]` (append) is accepted too, as Stripe accepts it.
Values stay strings, as on the wire; handlers convert them with the helpers below and name the field
when a value is wrong, the way Stripe does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from devhost.stripe_standin.errors import invalid, missing

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name, value in pairs:
        match = _NAME.match(name)
        if match is None:
            raise invalid(f"Invalid parameter name: {name}", param=name)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            key = str(len(node)) if part == "" else part
            if depth == len(parts) - 1:
                if isinstance(node.get(key), dict):
                    raise invalid(f"Invalid value for {name}: a hash was expected", param=name)
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid value for {name}: {name.split('[')[0]} was given a scalar", param=name)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    """Hashes whose keys are all indexes are arrays (Stripe reads `a[0]=x&a[1]=y` as a list)."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def path(prefix: str, key: str | int) -> str:
    return f"{prefix}[{key}]" if prefix else str(key)


def get_str(params: dict, key: str, prefix: str = "", *, required: bool = False, max_length: int = 5000) -> str | None:
    value = params.get(key)
    name = path(prefix, key)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name} must be a string", param=name)
    if len(value) > max_length:
        raise invalid(f"Invalid string: {name} must be at most {max_length} characters", param=name)
    return value


def get_int(
    params: dict, key: str, prefix: str = "", *, required: bool = False, minimum: int | None = None
) -> int | None:
    value = params.get(key)
    name = path(prefix, key)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param=name)
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(f"Invalid {name}: must be greater than or equal to {minimum}", param=name)
    return number


def get_bool(params: dict, key: str, prefix: str = "") -> bool | None:
    value = params.get(key)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param=path(prefix, key))
    return value == "true"


def get_dict(params: dict, key: str, prefix: str = "", *, required: bool = False) -> dict | None:
    value = params.get(key)
    name = path(prefix, key)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {name} must be a hash", param=name)
    return value


def get_metadata(params: dict, key: str = "metadata", prefix: str = "") -> dict[str, str] | None:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500; an empty value unsets a key."""
    value = params.get(key)
    name = path(prefix, key)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {name} must be a hash", param=name)
    if len(value) > 50:
        raise invalid("Metadata can have up to 50 keys.", param=name)
    for k, v in value.items():
        if len(k) > 40:
            raise invalid(f"Metadata keys can have up to 40 characters; {k!r} has {len(k)}.", param=path(name, k))
        if not isinstance(v, str) or len(v) > 500:
            raise invalid("Metadata values must be strings of up to 500 characters.", param=path(name, k))
    return dict(value)


def reject_unknown(params: dict, known: Iterable[str], prefix: str = "") -> None:
    allowed = {*known, "expand"}
    for key in params:
        if key not in allowed:
            raise invalid(f"Received unknown parameter: {path(prefix, key)}", param=path(prefix, key))
