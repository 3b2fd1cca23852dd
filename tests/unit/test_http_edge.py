"""The HTTP edge, driven the way the Functions worker drives it.

Routes are declared on a throwaway Blueprint with `api`, registered on a
FunctionApp, and the entry points the app exposes are called with real
`func.HttpRequest` objects.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import time
import typing
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, Field
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from shared import http
from shared.auth import InMemoryRateLimiter, LocalIssuer, RemoteJwksKeySource, TokenValidator
from shared.config import load_settings
from shared.http import (
    ANYONE,
    ROUTES,
    SIGNED_IN,
    ApiRequest,
    ApiResponse,
    Problem,
    api,
    build_openapi,
    client_ip,
    configure_http,
    reset_http,
)
from shared.http import edge as http_edge

ISSUER = "http://localhost:7071/local-issuer"
AUDIENCE = "api://stock-marketplace"
PROBLEM_JSON = "application/problem+json"
BASE = "http://localhost:7071/api/"


class MeOut(BaseModel):
    sub: str
    roles: list[str]


class SearchQuery(BaseModel):
    q: str = ""
    per_page: int = Field(20, ge=1, le=100, description="Results per page.")
    category: list[str] = []


class PriceIn(BaseModel):
    image_id: uuid.UUID
    amount: int = Field(gt=0)
    currency: str = Field(pattern="^[A-Z]{3}$")


class PriceOut(BaseModel):
    image_id: uuid.UUID
    amount: int
    currency: str


def declare_routes(bp: func.Blueprint) -> None:
    @api(bp, "GET", "me", roles=SIGNED_IN, summary="The caller's id and roles", response_model=MeOut, tags=["me"])
    async def me(request: ApiRequest) -> MeOut:
        principal = request.require_principal()
        return MeOut(sub=principal.sub, roles=sorted(principal.roles))

    @api(bp, "GET", "search", roles=ANYONE, summary="Search images", query_model=SearchQuery, tags=["search"])
    async def search(request: ApiRequest) -> dict[str, Any]:
        return {"query": request.query.model_dump(), "caller": request.principal and request.principal.sub}

    @api(
        bp,
        "PUT",
        "admin/images/{id:guid}/price",
        roles={"admin"},
        summary="Set an image's price",
        body_model=PriceIn,
        response_model=PriceOut,
        tags=["admin"],
    )
    async def set_price(request: ApiRequest) -> dict[str, Any]:
        # A dict with an extra internal field: the response model must drop it.
        return {**request.body.model_dump(), "internal_cost": 1, "path_id": request.path_params["id"]}

    @api(bp, "POST", "cart/items", roles={"buyer", "admin"}, summary="Add to cart", status=201)
    async def add_to_cart(request: ApiRequest) -> ApiResponse:
        return ApiResponse(201, {"ok": True}, headers={"Location": "/api/cart"})

    @api(bp, "DELETE", "cart", roles={"buyer"}, summary="Empty the cart")
    async def empty_cart(request: ApiRequest) -> None:
        return None

    @api(bp, "GET", "boom", roles=ANYONE, summary="Always fails")
    async def boom(request: ApiRequest) -> None:
        raise RuntimeError("db password is hunter2")

    @api(bp, "GET", "db-down", roles=ANYONE, summary="The database is restarting")
    async def db_down(request: ApiRequest) -> None:
        import asyncpg

        try:
            raise asyncpg.CannotConnectNowError("the database system is shutting down")
        except asyncpg.CannotConnectNowError as exc:
            raise RuntimeError("could not save the order") from exc

    @api(bp, "GET", "teapot", roles=ANYONE, summary="A domain problem")
    async def teapot(request: ApiRequest) -> None:
        raise Problem(409, "image-not-approved", "Image not approved", "Image 7 is pending review.", image_id=7)


@pytest.fixture(scope="module")
def issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def issuer(issuer_dir: Path) -> LocalIssuer:
    return LocalIssuer(issuer_dir, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def edge(tmp_path: Path, issuer: LocalIssuer):
    """Declare the routes on a fresh app and point the edge at a test issuer; undo both afterwards."""
    saved_routes = list(ROUTES)
    ROUTES.clear()  # the real app's routes may be registered in this process already
    configure_http(
        validator=issuer.validator(),
        limiter=InMemoryRateLimiter(),
        settings=load_settings(
            VAR_DIR=tmp_path,
            AUTH_ISSUER=ISSUER,
            AUTH_AUDIENCE=AUDIENCE,
            RATE_LIMIT_PER_IP_PER_MINUTE=100_000,
            RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE=100_000,
        ),
    )
    bp = func.Blueprint()
    declare_routes(bp)
    app = func.FunctionApp()
    app.register_functions(bp)
    yield {f.get_function_name(): f for f in app.get_functions()}
    reset_http()
    ROUTES[:] = saved_routes


def request(
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    route_params: dict[str, str] | None = None,
) -> func.HttpRequest:
    all_headers = {"x-client-ip": "198.51.100.7", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    return func.HttpRequest(method, BASE + path, headers=all_headers, body=body, route_params=route_params or {})


async def call(edge, name: str, req: func.HttpRequest) -> func.HttpResponse:
    return await edge[name].get_user_function()(req)


def problem(response: func.HttpResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == PROBLEM_JSON
    return json.loads(response.get_body())


# --- what the worker sees ---------------------------------------------------------------


def test_entry_points_have_the_signature_the_worker_indexes(edge):
    for function in edge.values():
        entry = function.get_user_function()
        assert inspect.iscoroutinefunction(entry)
        assert list(inspect.signature(entry).parameters) == ["req"]
        assert typing.get_type_hints(entry) == {"req": func.HttpRequest, "return": func.HttpResponse}


def test_bindings_are_anonymous_http_triggers_on_the_declared_route(edge):
    # The function metadata the worker sends to the host: auth is ours, not a Functions key.
    (trigger, output) = json.loads(edge["set_price"].get_function_json())["bindings"]
    assert (trigger["type"], trigger["name"], trigger["authLevel"]) == ("httpTrigger", "req", "ANONYMOUS")
    assert (trigger["route"], trigger["methods"]) == ("admin/images/{id:guid}/price", ["PUT"])
    assert (output["type"], output["name"]) == ("http", "$return")


def test_a_route_cannot_be_declared_without_a_role_rule():
    bp = func.Blueprint()
    with pytest.raises(TypeError):
        api(bp, "GET", "x", summary="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        api(bp, "GET", "x", roles="admin", summary="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        api(bp, "GET", "x", roles={"admni"}, summary="x")
    with pytest.raises(ValueError):
        api(bp, "GET", "x", roles=set(), summary="x")
    with pytest.raises(ValueError):
        api(bp, "GET", "x", roles=ANYONE, summary="x", status=404)


def test_handlers_must_be_async_and_routes_unique(edge):
    bp = func.Blueprint()
    with pytest.raises(TypeError):

        @api(bp, "GET", "sync", roles=ANYONE, summary="x")
        def sync(request):  # pragma: no cover - never registered
            return None

    with pytest.raises(ValueError):

        @api(bp, "GET", "me", roles=ANYONE, summary="x", name="me_again")
        async def me_again(request):  # pragma: no cover - never registered
            return None


# --- authentication and roles ------------------------------------------------------------


async def test_no_token_on_a_signed_in_route_is_401_with_www_authenticate(edge):
    response = await call(edge, "me", request("GET", "me"))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    body = problem(response)
    assert body["type"] == "https://stock-marketplace.example/problems/unauthenticated"
    assert body["status"] == 401 and body["instance"] == "/api/me"


async def test_a_valid_token_reaches_the_handler(edge, issuer):
    response = await call(edge, "me", request("GET", "me", token=issuer.issue("u-1", ["buyer"])))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.get_body()) == {"sub": "u-1", "roles": ["buyer"]}
    assert response.headers["Cache-Control"] == "no-store"  # personal data stays out of shared caches


async def test_a_token_lacking_the_role_is_403(edge, issuer):
    req = request("PUT", "admin/images/x/price", token=issuer.issue("c-1", ["contributor", "buyer"]))
    response = await call(edge, "set_price", req)

    assert response.status_code == 403
    assert problem(response)["type"].endswith("/forbidden")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_any_of_the_listed_roles_is_enough(edge, issuer):
    for roles in (["buyer"], ["admin"]):
        response = await call(edge, "add_to_cart", request("POST", "cart/items", token=issuer.issue("u", roles)))
        assert response.status_code == 201
        assert response.headers["Location"] == "/api/cart"


async def test_anyone_routes_work_without_a_token(edge):
    response = await call(edge, "search", request("GET", "search?q=cat"))
    assert response.status_code == 200
    assert json.loads(response.get_body())["caller"] is None


def _signing_key(issuer_dir: Path) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key((issuer_dir / "signing-key.pem").read_bytes(), None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def forged(issuer_dir: Path, issuer: LocalIssuer) -> dict[str, str]:
    """One token of each forged kind, built with our real key where the forgery needs it."""
    key = _signing_key(issuer_dir)
    now = int(time.time())
    good = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "roles": ["admin"], "iat": now, "nbf": now, "exp": now + 600}

    def sign(claims: dict[str, Any], signing_key: Any = key, kid: str = issuer.kid) -> str:
        return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": kid})

    def unsigned(header: dict[str, Any]) -> str:
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(good).encode())}"

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_unsigned = unsigned({"alg": "HS256", "kid": issuer.kid})
    hs_signature = _b64(hmac.new(public_pem, hs_unsigned.encode(), hashlib.sha256).digest())
    header, _, signature = sign({**good, "roles": ["buyer"]}).split(".")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "alg_none": unsigned({"alg": "none", "kid": issuer.kid}) + ".",
        "hs256_with_public_key": f"{hs_unsigned}.{hs_signature}",
        "expired": issuer.issue("u", ["admin"], ttl=-3600),
        "not_yet_valid": sign({**good, "nbf": now + 3600}),
        "wrong_audience": sign({**good, "aud": "api://other"}),
        "wrong_issuer": sign({**good, "iss": "https://evil.example"}),
        "unknown_kid": sign(good, kid="unknown"),
        "tampered": f"{header}.{_b64(json.dumps(good).encode())}.{signature}",
        "other_key_same_kid": sign(good, other_key),
        "garbage": "not-a-jwt",
    }


FORGERIES = [
    "alg_none",
    "hs256_with_public_key",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "unknown_kid",
    "tampered",
    "other_key_same_kid",
    "garbage",
]


def test_each_forged_kind_is_exercised(forged):
    assert set(forged) == set(FORGERIES)


@pytest.mark.parametrize("kind", FORGERIES)
@pytest.mark.parametrize("route", ["set_price", "search"])
async def test_every_forged_token_is_401_even_on_anyone_routes(edge, forged, kind, route):
    token = forged[kind]
    path = "admin/images/x/price" if route == "set_price" else "search"
    response = await call(edge, route, request("PUT" if route == "set_price" else "GET", path, token=token))

    assert response.status_code == 401
    body = problem(response)
    assert body["type"].endswith("/invalid-token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert body["reason"] in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"])
async def test_a_non_bearer_authorization_header_is_401(edge, header):
    response = await call(edge, "search", request("GET", "search", headers={"Authorization": header}))
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


async def test_by_default_tokens_from_the_local_issuer_in_var_dir_are_accepted(edge, tmp_path):
    reset_http()  # no test validator: the edge builds its own from settings
    local = load_settings(VAR_DIR=tmp_path / "var", AUTH_JWKS_URL=None)
    configure_http(settings=local)
    token = LocalIssuer.from_settings(local).issue("dev", ["admin"])  # what `devhost token` does

    response = await call(edge, "me", request("GET", "me", token=token))

    assert response.status_code == 200
    assert (local.auth_dir / "signing-key.pem").exists()


async def test_unreachable_identity_provider_is_503_not_401(edge, issuer):
    down = httpx.MockTransport(lambda request: httpx.Response(503))
    source = RemoteJwksKeySource("https://login.example/keys", transport=down)
    configure_http(validator=TokenValidator(source, issuer=ISSUER, audience=AUDIENCE))
    response = await call(edge, "me", request("GET", "me", token=issuer.issue("u", ["buyer"])))

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert problem(response)["type"].endswith("/auth-unavailable")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300),
        st.lists(st.binary(max_size=80), min_size=3, max_size=3).map(lambda parts: ".".join(map(_b64, parts))),
        st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=4).map(
            lambda header: f"{_b64(json.dumps(header).encode())}.e30.c2ln"
        ),
    )
)
def test_random_garbage_bearer_tokens_are_401_never_500(edge, token):
    req = request("GET", "search", headers={"Authorization": f"Bearer {token}"})
    response = asyncio.run(call(edge, "search", req))
    assert response.status_code == 401


# --- correlation ids ---------------------------------------------------------------------


async def test_the_callers_correlation_id_is_echoed(edge):
    response = await call(edge, "search", request("GET", "search", headers={"X-Correlation-Id": "order-42.a"}))
    assert response.headers["x-correlation-id"] == "order-42.a"


async def test_a_correlation_id_is_generated_when_none_is_given(edge):
    first = await call(edge, "search", request("GET", "search"))
    second = await call(edge, "me", request("GET", "me"))
    assert uuid.UUID(first.headers["x-correlation-id"])
    assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]
    assert problem(second)["correlation_id"] == second.headers["x-correlation-id"]


async def test_the_traceparent_trace_id_is_used_when_there_is_no_correlation_id(edge):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    req = request("GET", "search", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert (await call(edge, "search", req)).headers["x-correlation-id"] == trace_id


async def test_a_server_span_joins_the_callers_trace_only_when_spans_are_recorded(edge, monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(http_edge, "tracer", provider.get_tracer("test"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    req = request("GET", "search", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})

    monkeypatch.setattr(http_edge, "tracing_enabled", lambda: False)  # no exporter configured
    assert (await call(edge, "search", req)).status_code == 200
    assert exporter.get_finished_spans() == ()

    monkeypatch.setattr(http_edge, "tracing_enabled", lambda: True)
    await call(edge, "search", req)
    [span] = exporter.get_finished_spans()
    assert (span.name, span.kind) == ("GET /api/search", trace.SpanKind.SERVER)
    assert format(span.context.trace_id, "032x") == trace_id


async def test_a_correlation_id_that_could_inject_into_logs_is_replaced(edge):
    req = request("GET", "search", headers={"X-Correlation-Id": "x\r\nSet-Cookie: a=b"})
    assert uuid.UUID((await call(edge, "search", req)).headers["x-correlation-id"])


async def test_the_correlation_id_is_bound_into_logs(edge):
    with capture_logs(processors=[merge_contextvars]) as logs:
        await call(edge, "search", request("GET", "search", headers={"X-Correlation-Id": "c-1"}))
    (entry,) = [log for log in logs if log["event"] == "http.request"]
    assert entry["correlation_id"] == "c-1" and entry["status"] == 200


# --- input ---------------------------------------------------------------------------


async def test_query_parameters_are_validated_and_repeated_ones_become_lists(edge):
    req = request("GET", "search?q=red%20car&per_page=5&category=cars&category=red")
    body = json.loads((await call(edge, "search", req)).get_body())
    assert body["query"] == {"q": "red car", "per_page": 5, "category": ["cars", "red"]}


async def test_an_invalid_query_parameter_is_400_naming_it(edge):
    response = await call(edge, "search", request("GET", "search?per_page=500"))

    assert response.status_code == 400
    body = problem(response)
    assert body["type"].endswith("/invalid-query")
    assert [(e["name"], e["in"]) for e in body["errors"]] == [("per_page", "query")]
    assert "per_page" in body["detail"]


async def test_the_json_body_is_validated_and_the_response_model_filters_output(edge, issuer):
    image_id = str(uuid.uuid4())
    req = request(
        "PUT",
        f"admin/images/{image_id}/price",
        token=issuer.issue("a", ["admin"]),
        headers={"Content-Type": "application/json; charset=utf-8"},
        body=json.dumps({"image_id": image_id, "amount": 1500, "currency": "EUR"}).encode(),
        route_params={"id": image_id},
    )
    response = await call(edge, "set_price", req)

    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"image_id": image_id, "amount": 1500, "currency": "EUR"}


async def _put_price(edge, issuer, body: bytes, content_type: str | None = "application/json") -> func.HttpResponse:
    headers = {"Content-Type": content_type} if content_type else {}
    req = request("PUT", "admin/images/x/price", token=issuer.issue("a", ["admin"]), headers=headers, body=body)
    return await call(edge, "set_price", req)


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"amount": NaN}', b"\xff\xfe", b"[" * 200_000])
async def test_malformed_json_is_400(edge, issuer, body):
    response = await _put_price(edge, issuer, body)
    assert response.status_code == 400
    assert problem(response)["type"].endswith("/malformed-json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_non_json_content_type_is_415(edge, issuer, content_type):
    response = await _put_price(edge, issuer, b'{"amount": 1}', content_type)
    assert response.status_code == 415
    assert problem(response)["type"].endswith("/unsupported-media-type")


async def test_an_invalid_body_is_422_listing_each_field(edge, issuer):
    response = await _put_price(edge, issuer, json.dumps({"image_id": "nope", "amount": -1, "currency": "e"}).encode())

    assert response.status_code == 422
    body = problem(response)
    assert sorted(e["name"] for e in body["errors"]) == ["amount", "currency", "image_id"]
    assert all(e["in"] == "body" and e["reason"] for e in body["errors"])
    assert "nope" not in response.get_body().decode()  # rejected input is not reflected


async def test_an_oversized_body_is_413(edge, issuer):
    response = await _put_price(edge, issuer, b" " * (http.MAX_JSON_BODY_BYTES + 1))
    assert response.status_code == 413


# --- output -----------------------------------------------------------------------------


async def test_none_from_the_handler_is_204(edge, issuer):
    response = await call(edge, "empty_cart", request("DELETE", "cart", token=issuer.issue("b", ["buyer"])))
    assert response.status_code == 204 and response.get_body() == b""


async def test_a_raised_problem_becomes_problem_json(edge):
    response = await call(edge, "teapot", request("GET", "teapot"))

    assert response.status_code == 409
    assert problem(response) == {
        "type": "https://stock-marketplace.example/problems/image-not-approved",
        "title": "Image not approved",
        "status": 409,
        "detail": "Image 7 is pending review.",
        "instance": "/api/teapot",
        "correlation_id": response.headers["x-correlation-id"],
        "image_id": 7,
    }


async def test_an_unhandled_exception_is_500_without_internals_but_logged(edge):
    with capture_logs(processors=[merge_contextvars]) as logs:
        response = await call(edge, "boom", request("GET", "boom"))

    assert response.status_code == 500
    text = response.get_body().decode()
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert problem(response)["type"].endswith("/internal-error")
    (error,) = [log for log in logs if log["event"] == "http.unhandled_error"]
    assert error["exc_info"] is True and error["correlation_id"] == response.headers["x-correlation-id"]


async def test_a_dependency_outage_is_503_with_retry_after_so_that_callers_retry(edge):
    response = await call(edge, "db_down", request("GET", "db-down"))

    assert response.status_code == 503
    assert problem(response)["type"].endswith("/service-unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "shutting down" not in response.get_body().decode()


def test_problem_rejects_non_error_statuses_and_reserved_members():
    with pytest.raises(ValueError):
        Problem(200, "ok", "OK")
    with pytest.raises(ValueError):
        Problem(400, "Not A Slug", "x")
    with pytest.raises(ValueError):
        Problem(400, "bad", "x", instance="/elsewhere")


# --- rate limits -------------------------------------------------------------------------


async def test_anonymous_callers_are_limited_per_ip_with_retry_after(edge, tmp_path):
    configure_http(
        limiter=InMemoryRateLimiter(),
        settings=load_settings(VAR_DIR=tmp_path, RATE_LIMIT_PER_IP_PER_MINUTE=2),
    )
    statuses = [(await call(edge, "search", request("GET", "search"))).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

    limited = await call(edge, "search", request("GET", "search"))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert problem(limited)["type"].endswith("/rate-limited")

    other_ip = request("GET", "search", headers={"X-Forwarded-For": "203.0.113.9:51234, 10.0.0.1"})
    assert (await call(edge, "search", other_ip)).status_code == 200


async def test_signed_in_callers_are_limited_per_principal(edge, issuer, tmp_path):
    configure_http(
        limiter=InMemoryRateLimiter(),
        settings=load_settings(
            VAR_DIR=tmp_path,
            AUTH_ISSUER=ISSUER,
            AUTH_AUDIENCE=AUDIENCE,
            RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE=1,
            RATE_LIMIT_PER_IP_PER_MINUTE=1000,
        ),
    )
    alice, bob = issuer.issue("alice", ["buyer"]), issuer.issue("bob", ["buyer"])
    assert (await call(edge, "me", request("GET", "me", token=alice))).status_code == 200
    assert (await call(edge, "me", request("GET", "me", token=alice))).status_code == 429
    assert (await call(edge, "me", request("GET", "me", token=bob))).status_code == 200  # same IP, own budget


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "203.0.113.5:54321", "x-client-ip": "10.0.0.2"}, "203.0.113.5"),
        # a client-supplied first hop is not trusted: the hop our front end appended is
        ({"X-Forwarded-For": "198.51.100.77, 203.0.113.5:54321"}, "203.0.113.5"),
        ({"X-Forwarded-For": "[2001:db8::1]:443"}, "2001:db8::1"),
        ({"X-Forwarded-For": "2001:db8::2"}, "2001:db8::2"),
        ({"X-Forwarded-For": "garbage", "x-client-ip": "198.51.100.1"}, "198.51.100.1"),
        ({}, "unknown"),
    ],
)
def test_client_ip(headers, expected):
    assert client_ip(func.HttpRequest("GET", BASE, headers=headers, body=b"").headers) == expected


def test_client_ip_behind_two_trusted_proxies_takes_the_second_hop_from_the_right():
    headers = {"X-Forwarded-For": "1.1.1.1, 203.0.113.9, 10.0.0.4"}
    assert client_ip(func.HttpRequest("GET", BASE, headers=headers, body=b"").headers, 2) == "203.0.113.9"


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_document_is_valid_3_1_with_security_roles_and_schemas(edge):
    document = build_openapi(title="Test API", version="9.9.9")
    validate_openapi(document)

    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    paths = document["paths"]

    price = paths["/api/admin/images/{id}/price"]["put"]  # {id:guid} constraint stripped
    assert price["x-roles"] == ["admin"]
    assert price["security"] == [{"bearerAuth": []}]
    assert price["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PriceIn"}
    assert {"400", "401", "403", "415", "422", "429"} <= price["responses"].keys()
    assert price["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }

    search = paths["/api/search"]["get"]
    assert search["x-roles"] == ["anyone"]
    assert {} in search["security"]  # a token is optional
    assert "403" not in search["responses"]
    per_page = next(p for p in search["parameters"] if p["name"] == "per_page")
    assert per_page["in"] == "query" and per_page["schema"]["maximum"] == 100
    assert per_page["description"] == "Results per page."

    me = paths["/api/me"]["get"]
    assert me["x-roles"] == ["signed-in"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MeOut"}

    assert {"MeOut", "PriceIn", "PriceOut", "SearchQuery", "ProblemDetails"} <= document["components"]["schemas"].keys()
    unauthorized = document["components"]["responses"]["Unauthorized"]
    assert "application/problem+json" in unauthorized["content"]


def test_every_declared_route_is_in_the_registry(edge):
    names = {spec.name for spec in ROUTES}
    assert names >= set(edge)
    spec = next(spec for spec in ROUTES if spec.name == "add_to_cart")
    assert (spec.method, spec.route, spec.roles, spec.status) == ("POST", "cart/items", {"buyer", "admin"}, 201)


# --- text PostgreSQL cannot store --------------------------------------------------------------


async def test_a_nul_character_in_a_query_parameter_is_400_naming_it(edge):
    response = await call(edge, "search", request("GET", "search?q=red%00car"))

    assert response.status_code == 400
    assert problem(response)["errors"] == [{"name": "q", "in": "query", "reason": "contains a NUL character"}]


async def test_a_nul_character_in_a_json_string_is_refused_naming_its_field(edge, issuer):
    response = await _put_price(edge, issuer, b'{"image_id": "x", "amount": 1, "currency": "EU\\u0000R"}')

    assert response.status_code == 422
    assert problem(response)["errors"][0]["name"] == "currency"


def test_optional_query_parameters_are_documented_without_null(edge):
    params = {p["name"]: p for p in build_openapi()["paths"]["/api/search"]["get"]["parameters"]}
    assert all("null" not in json.dumps(p["schema"]) for p in params.values())
