"""Loads function_app.py and reads each function's trigger from the app, as the Functions host does."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from shared.config import PROJECT_ROOT


@dataclass(frozen=True)
class HttpFunction:
    name: str
    methods: frozenset[str]
    route: str
    arg_name: str
    call: Callable[..., Any]
    pattern: re.Pattern[str]
    literal_segments: int


@dataclass(frozen=True)
class TopicFunction:
    name: str
    topic: str
    subscription: str
    arg_name: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class BlobFunction:
    name: str
    container: str
    path: str
    arg_name: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    run_on_startup: bool
    arg_name: str
    call: Callable[..., Any]


@dataclass
class LoadedApp:
    app: func.FunctionApp
    http: list[HttpFunction]
    topics: list[TopicFunction]
    blobs: list[BlobFunction]
    timers: list[TimerFunction]


async def invoke(fn: HttpFunction | TopicFunction | BlobFunction | TimerFunction, value: Any) -> Any:
    """Call a function with its trigger value bound by name, sync or async, as the worker does."""
    result = fn.call(**{fn.arg_name: value})
    if inspect.isawaitable(result):
        result = await result
    return result


_PARAM = re.compile(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([^}?]+))?(\?)?\}")
# ASP.NET route constraints the Functions host applies: a value that does not fit is a 404, not a call.
_CONSTRAINTS = {
    "guid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
}


def route_pattern(route: str) -> tuple[re.Pattern[str], int]:
    """Compile a Functions route template ('images/{id:guid}', 'files/{*path}') into a regex."""
    parts: list[str] = []
    literals = 0
    for segment in route.strip("/").split("/"):
        match = _PARAM.fullmatch(segment)
        if match is None:
            parts.append(re.escape(segment))
            literals += 1
            continue
        catch_all, name, constraint, optional = match.groups()
        value = ".+" if catch_all else _CONSTRAINTS.get((constraint or "").split("(")[0].lower(), "[^/]+")
        body = f"(?P<{name}>{value})"
        parts.append(f"(?:{body})?" if optional else body)
    return re.compile("^" + "/".join(parts) + r"/?\Z"), literals  # \Z: "$" would also match before a final newline


def load_app(module: str = "function_app") -> LoadedApp:
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    app = importlib.import_module(module).app
    # get_functions() remembers the names it validated and refuses a second call on the same app; the
    # worker calls it once per process, but devhost and tests may load the app again in one process.
    app.functions_bindings = {}
    loaded = LoadedApp(app, [], [], [], [])
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        name = fn.get_function_name()
        call = fn.get_user_function()
        kind = trigger.get_binding_name()
        data = trigger.get_dict_repr()
        if kind == "httpTrigger":
            route = data.get("route") or name
            pattern, literals = route_pattern(route)
            methods = frozenset(str(m).upper() for m in (data.get("methods") or ["GET", "POST"]))
            loaded.http.append(HttpFunction(name, methods, route, trigger.name, call, pattern, literals))
        elif kind == "serviceBusTrigger":
            if not data.get("topicName"):
                raise ValueError(f"{name}: devhost drives topic subscriptions only; queues are not used here")
            loaded.topics.append(TopicFunction(name, data["topicName"], data["subscriptionName"], trigger.name, call))
        elif kind == "blobTrigger":
            path = data["path"]
            loaded.blobs.append(BlobFunction(name, path.split("/", 1)[0], path, trigger.name, call))
        elif kind == "timerTrigger":
            loaded.timers.append(
                TimerFunction(name, data["schedule"], bool(data.get("runOnStartup")), trigger.name, call)
            )
        else:
            raise ValueError(f"{name}: devhost has no driver for {kind} triggers")
    # Like ASP.NET routing: more literal segments win over templates.
    loaded.http.sort(key=lambda f: (-f.literal_segments, f.route))
    return loaded
