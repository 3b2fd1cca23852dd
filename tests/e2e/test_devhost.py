"""devhost end to end: a real process serving function_app.py on embedded Postgres, Azurite and the bus."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import signal
import time
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from shared.db.embedded import EmbeddedPostgres
from tests.e2e.devhost_process import devhost_environment, processes_using, start_devhost, stop_devhost, token

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]
SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("devhost-var")
    env = devhost_environment(var_dir)
    env["CORS_ALLOWED_ORIGINS"] = SHOP
    log_path = var_dir.parent / f"devhost-{env['DEVHOST_PORT']}.log"
    state = {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "var_dir": var_dir, "log": log_path}
    state["proc"] = start_devhost(env, log_path)
    try:
        yield state
    finally:
        stop_devhost(state["proc"])


def _token(devhost, *args: str) -> str:
    return token(devhost["env"], *args)


def test_health_reports_database_storage_and_bus(devhost):
    response = httpx.get(f"{devhost['base']}/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "blob_storage", "bus"}
    assert body["checks"]["database"]["pgvector"]
    assert body["checks"]["bus"]["transport"] == "postgres"
    assert response.headers["x-correlation-id"]


def test_every_answer_carries_the_security_headers_and_cors_follows_the_allow_list(devhost):
    ok = httpx.get(f"{devhost['base']}/health", headers={"Origin": SHOP}, timeout=10)
    missing = httpx.get(f"{devhost['base']}/no-such-route", headers={"Origin": SHOP}, timeout=10)
    for response in (ok, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in response.headers  # plain http locally
    assert ok.headers["access-control-allow-origin"] == SHOP
    other = httpx.get(f"{devhost['base']}/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in other.headers

    preflight = httpx.options(
        f"{devhost['base']}/me",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "authorization" in preflight.headers["access-control-allow-headers"]


def test_me_answers_with_a_local_token_and_401_problem_without(devhost):
    token = _token(devhost, "--role", "admin", "--sub", "alice")
    me = httpx.get(f"{devhost['base']}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["id"] == "alice" and me.json()["roles"] == ["admin"]

    anonymous = httpx.get(f"{devhost['base']}/me", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    forged = httpx.get(f"{devhost['base']}/me", headers={"Authorization": f"Bearer {token}x"}, timeout=10)
    assert forged.status_code == 401


def test_an_event_published_through_the_outbox_runs_its_trigger_function(devhost):
    admin = _token(devhost, "--role", "admin", "--sub", "ops")
    response = httpx.post(
        f"{devhost['base']}/admin/bus/ping",
        headers={"Authorization": f"Bearer {admin}", "x-correlation-id": "e2e-ping-1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery_count"] == 1
    assert body["correlation_id"] == "e2e-ping-1"  # carried HTTP -> outbox -> bus -> trigger
    assert response.headers["x-correlation-id"] == "e2e-ping-1"
    devhost["first_ping"] = body["nonce"]
    buyer = _token(devhost, "--role", "buyer", "--sub", "bob")
    forbidden = httpx.post(f"{devhost['base']}/admin/bus/ping", headers={"Authorization": f"Bearer {buyer}"})
    assert forbidden.status_code == 403


def test_openapi_document_lists_the_registered_routes(devhost):
    doc = httpx.get(f"{devhost['base']}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/health", "/api/me", "/api/openapi.json", "/api/admin/bus/ping"} <= set(doc["paths"])


def test_a_person_signs_in_through_the_local_oidc_provider_and_the_token_works_on_the_api(devhost):
    origin = devhost["base"].removesuffix("/api")
    discovery = httpx.get(f"{origin}/auth/.well-known/openid-configuration", timeout=10).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    fields = {
        "response_type": "code",
        "client_id": "marketplace-portals",
        "redirect_uri": f"{origin}/callback/",
        "scope": "openid offline_access",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = httpx.get(discovery["authorization_endpoint"], params=fields, timeout=10)
    assert page.status_code == 200 and "Sign in" in page.text
    signed_in = httpx.post(
        discovery["authorization_endpoint"],
        data={**fields, "sub": "carol", "role": "contributor", "action": "signin"},
        timeout=10,
    )
    assert signed_in.status_code == 302, signed_in.text
    code = parse_qs(urlsplit(signed_in.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": fields["redirect_uri"],
            "client_id": "marketplace-portals",
            "code_verifier": verifier,
        },
        timeout=10,
    ).json()
    me = httpx.get(f"{devhost['base']}/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert me.status_code == 200 and me.json()["id"] == "carol" and me.json()["roles"] == ["contributor"]


def test_unknown_route_is_a_404_problem(devhost):
    response = httpx.get(f"{devhost['base']}/no/such/route", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_ctrl_c_stops_everything_and_leaves_no_process_behind(devhost):
    proc = devhost["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0, devhost["log"].read_text()[-4000:]
    deadline = time.monotonic() + 10
    while processes_using(devhost["var_dir"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = [p.info["cmdline"] for p in processes_using(devhost["var_dir"])]
    assert leftovers == []


def test_a_second_start_reuses_the_data_in_var(devhost):
    devhost["proc"] = start_devhost(devhost["env"], devhost["log"])
    server = EmbeddedPostgres(devhost["var_dir"] / "pg" / "data")

    async def pings() -> set[str]:
        conn = await asyncpg.connect(server.start())
        try:
            return {r["nonce"] for r in await conn.fetch("select nonce from platform.bus_pings")}
        finally:
            await conn.close()

    try:
        assert devhost["first_ping"] in asyncio.run(pings())
    finally:
        server.stop()
    assert stop_devhost(devhost["proc"]) == 0


def test_after_a_kill_9_the_next_start_recovers_and_a_clean_stop_still_leaves_nothing(devhost):
    proc = start_devhost(devhost["env"], devhost["log"])
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any("azurite" in " ".join(p.info["cmdline"] or []) for p in processes_using(devhost["var_dir"])):
        assert time.monotonic() < deadline, "Azurite outlived a killed devhost"
        time.sleep(0.2)

    devhost["proc"] = start_devhost(devhost["env"], devhost["log"])  # reuses the Postgres still running
    assert stop_devhost(devhost["proc"]) == 0
    deadline = time.monotonic() + 10
    while processes_using(devhost["var_dir"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.info["cmdline"] for p in processes_using(devhost["var_dir"])] == []
