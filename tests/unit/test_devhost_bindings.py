"""devhost drives functions as the Functions host would: routes, binding objects, schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devhost.app_loader import HttpFunction, route_pattern
from devhost.http_server import FunctionsAsgiApp
from devhost.triggers import resolve_schedule, to_functions_message
from shared.bus.functions_binding import received_message
from shared.bus.port import ReceivedMessage


def _fn(route: str, *methods: str) -> HttpFunction:
    pattern, literals = route_pattern(route)
    return HttpFunction(route, frozenset(methods or ("GET",)), route, "req", lambda req: None, pattern, literals)


@pytest.mark.parametrize(
    ("route", "path", "params"),
    [
        ("images/{id}", "images/42", {"id": "42"}),
        (
            "images/{id:guid}/similar",
            "images/0f8fad5b-d9cb-469f-a165-70867728950e/similar",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("files/{*path}", "files/a/b/c.jpg", {"path": "a/b/c.jpg"}),
        ("me", "me/", {}),
    ],
)
def test_functions_route_templates_match_and_extract_parameters(route, path, params):
    match = route_pattern(route)[0].match(path)
    assert match is not None
    assert {k: v for k, v in match.groupdict().items() if v is not None} == params


@pytest.mark.parametrize(
    ("route", "path"),
    [("images/{id:guid}", "images/not-a-guid"), ("orders/{n:int}", "orders/12a"), ("tags/{t:alpha}", "tags/a1")],
)
def test_a_value_that_breaks_a_route_constraint_does_not_match(route, path):
    assert route_pattern(route)[0].match(path) is None


def test_a_literal_route_wins_over_a_template_and_methods_are_respected():
    functions = sorted(
        [_fn("images/{id}", "GET"), _fn("images/search", "GET"), _fn("images/{id}", "DELETE")],
        key=lambda f: (-f.literal_segments, f.route),
    )
    app = FunctionsAsgiApp(functions)
    fn, params, _ = app.match("GET", "/api/images/search")
    assert fn.route == "images/search" and params == {}
    fn, params, _ = app.match("GET", "/api/images/7")
    assert fn.route == "images/{id}" and params == {"id": "7"}
    assert app.match("PUT", "/api/images/7") == (None, {}, {"GET", "DELETE"})  # 405 with an Allow header
    assert app.match("GET", "/api/nothing/here") == (None, {}, frozenset())  # 404
    assert app.match("GET", "/images/7") == (None, {}, frozenset())  # outside the /api prefix


def test_a_bus_delivery_round_trips_through_the_functions_binding_object():
    now = datetime.now(UTC)
    delivered = ReceivedMessage(
        message_id="m-1",
        topic="images",
        subscription="processing",
        subject="image.uploaded",
        body={"image_id": "x", "n": 1},
        correlation_id="c-1",
        delivery_count=3,
        enqueued_time=now,
        locked_until=now,
        lock_token="t-1",
        application_properties={"traceparent": "00-abc-def-01"},
    )
    binding = to_functions_message(delivered)
    assert binding.message_id == "m-1" and binding.subject == "image.uploaded"
    back = received_message(binding, "images", "processing")
    assert back.body == delivered.body
    assert back.correlation_id == "c-1" and back.delivery_count == 3
    assert back.application_properties["traceparent"] == "00-abc-def-01"


def test_timer_schedules_may_name_an_app_setting(monkeypatch):
    assert resolve_schedule("0 */5 * * * *") == "0 */5 * * * *"
    monkeypatch.setenv("OUTBOX_RELAY_SCHEDULE", "*/7 * * * * *")
    assert resolve_schedule("%OUTBOX_RELAY_SCHEDULE%") == "*/7 * * * * *"
    monkeypatch.delenv("OUTBOX_RELAY_SCHEDULE")
    with pytest.raises(ValueError, match="OUTBOX_RELAY_SCHEDULE, which is not set"):
        resolve_schedule("%OUTBOX_RELAY_SCHEDULE%")


@pytest.mark.parametrize("path", ["cart/items\n", "cart/items/\n", "cart/items/%0A"])
def test_a_path_with_a_trailing_newline_matches_no_route(path):
    # Python's "$" also matches before a final newline; a route must match the whole path.
    assert route_pattern("cart/items")[0].match(path) is None
