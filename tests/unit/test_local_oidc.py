"""The local OIDC provider, spoken to over HTTP the way a browser and oidc-client-ts speak to it.

The provider is mounted in front of the real function app (devhost's route table), so the
tokens it issues are checked by the unchanged bearer validation on `GET /api/me`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from devhost.host import uses_local_issuer
from devhost.http_server import FunctionsAsgiApp
from devhost.local_oidc import LocalOidcApp
from shared.auth import InMemoryRateLimiter, LocalIssuer
from shared.auth.local_oidc import CODE_TTL_SECONDS, LocalOidcProvider
from shared.config import ConfigError, Settings, load_settings
from shared.http import configure_http, reset_http
from tests.fixtures.moderation import AUDIENCE, ISSUER, edge_settings, loaded_app

ORIGIN = "http://localhost:7071"
CLIENT = "marketplace-portals"
REDIRECT = f"{ORIGIN}/callback/"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class FormFields(HTMLParser):
    """The sign-in page's form inputs (hidden and visible), as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") != "radio" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    return LocalIssuer(tmp_path / "auth", issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def provider(issuer: LocalIssuer, clock: Clock) -> LocalOidcProvider:
    return LocalOidcProvider(
        issuer,
        client_id=CLIENT,
        redirect_uris=["/callback/", "http://127.0.0.1:3000/callback"],
        post_logout_redirect_uris=["/", "/contributor/"],
        access_token_ttl=900,
        refresh_token_ttl=3600,
        clock=clock,
    )


@pytest.fixture
async def client(provider: LocalOidcProvider, issuer: LocalIssuer, tmp_path: Path):
    configure_http(
        validator=issuer.validator(),
        limiter=InMemoryRateLimiter(),
        settings=edge_settings(tmp_path),
    )
    app = LocalOidcApp(provider, fallback=FunctionsAsgiApp(loaded_app().http))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http
    reset_http()


def authorize_params(challenge: str, **overrides: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid profile offline_access",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }


async def sign_in(http: httpx.AsyncClient, challenge: str, *, sub: str = "carol", role: str = "contributor") -> str:
    """Open the sign-in page, fill it in as a person would, and return the code from the redirect."""
    page = await http.get("/auth/authorize", params=authorize_params(challenge))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    form = FormFields()
    form.feed(page.text)
    posted = await http.post("/auth/authorize", data={**form.fields, "sub": sub, "role": role, "action": "signin"})
    assert posted.status_code == 302, posted.text
    location = urlsplit(posted.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


async def redeem(http: httpx.AsyncClient, code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT,
        "code_verifier": verifier,
        **overrides,
    }
    return await http.post("/auth/token", data=form)


async def test_discovery_names_every_endpoint_on_the_callers_origin(client):
    doc = (await client.get("/auth/.well-known/openid-configuration")).json()
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{ORIGIN}/auth/authorize"
    assert doc["token_endpoint"] == f"{ORIGIN}/auth/token"
    assert doc["end_session_endpoint"] == f"{ORIGIN}/auth/logout"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    jwks = (await client.get(doc["jwks_uri"].removeprefix(ORIGIN))).json()
    assert jwks["keys"][0]["kid"]


async def test_code_and_pkce_flow_gives_tokens_the_api_accepts(client, issuer):
    verifier, challenge = pkce()
    code = await sign_in(client, challenge, sub="carol", role="contributor")
    response = await redeem(client, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900 and tokens["refresh_token"]

    id_claims = jwt.decode(
        tokens["id_token"], key=issuer.public_key, algorithms=["RS256"], audience=CLIENT, issuer=ISSUER
    )
    assert id_claims["sub"] == "carol" and id_claims["nonce"] == "n-1" and id_claims["sid"]

    me = await client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "carol" and me.json()["roles"] == ["contributor"]
    # The ID token is for the portal, not the API: its audience is the client.
    wrong = await client.get("/api/me", headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert wrong.status_code == 401


async def test_a_wrong_verifier_is_invalid_grant_and_burns_the_code(client):
    verifier, challenge = pkce()
    code = await sign_in(client, challenge)
    other_verifier, _ = pkce()
    wrong = await redeem(client, code, other_verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = await redeem(client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_a_reused_code_is_refused_and_revokes_what_the_first_use_obtained(client):
    verifier, challenge = pkce()
    code = await sign_in(client, challenge)
    first = await redeem(client, code, verifier)
    assert first.status_code == 200
    reused = await redeem(client, code, verifier)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    refresh = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"], "client_id": CLIENT},
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_a_code_is_bound_to_its_redirect_uri_and_client(client):
    verifier, challenge = pkce()
    code = await sign_in(client, challenge)
    moved = await redeem(client, code, verifier, redirect_uri="http://127.0.0.1:3000/callback")
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"

    code = await sign_in(client, challenge)
    stranger = await redeem(client, code, verifier, client_id="someone-else")
    assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_client"


async def test_an_expired_code_is_invalid_grant(client, clock):
    verifier, challenge = pkce()
    code = await sign_in(client, challenge)
    clock.now += CODE_TTL_SECONDS + 1
    late = await redeem(client, code, verifier)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


async def test_missing_verifier_and_unknown_grant_type_are_named(client):
    _, challenge = pkce()
    code = await sign_in(client, challenge)
    missing = await client.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": CLIENT},
    )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    password = await client.post("/auth/token", data={"grant_type": "password", "client_id": CLIENT})
    assert password.json()["error"] == "unsupported_grant_type"
    as_json = await client.post("/auth/token", json={"grant_type": "authorization_code", "client_id": CLIENT})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(client):
    verifier, challenge = pkce()
    tokens = (await redeem(client, await sign_in(client, challenge, sub="ada", role="admin"), verifier)).json()

    def refresh(token: str):
        return client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT}
        )

    rotated = await refresh(tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.json() == {"id": "ada", "roles": ["admin"], "name": "ada", "email": None}

    replayed = await refresh(tokens["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # The thief's replay also ends the rightful holder's session: rotation's point.
    after = await refresh(second["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


async def test_refresh_tokens_expire(client, clock):
    verifier, challenge = pkce()
    tokens = (await redeem(client, await sign_in(client, challenge), verifier)).json()
    clock.now += 3601
    late = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": CLIENT},
    )
    assert late.json()["error"] == "invalid_grant"


async def test_an_unregistered_redirect_uri_is_shown_not_followed(client):
    _, challenge = pkce()
    for uri in ("http://evil.example/callback/", f"{ORIGIN}/callback/?x=1", f"{ORIGIN}/elsewhere/"):
        page = await client.get("/auth/authorize", params=authorize_params(challenge, redirect_uri=uri))
        assert page.status_code == 400 and "location" not in page.headers
        assert "not registered" in page.text
    # A path entry means this origin only: the same path on another host is not it.
    other = await client.get(
        "/auth/authorize", params=authorize_params(challenge, redirect_uri="http://other:7071/callback/")
    )
    assert other.status_code == 400


async def test_authorize_without_pkce_redirects_back_with_the_error(client):
    params = authorize_params("x" * 43)
    del params["code_challenge"]
    response = await client.get("/auth/authorize", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["st-1"]
    plain = await client.get("/auth/authorize", params=authorize_params("x" * 43, code_challenge_method="plain"))
    assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]


async def test_the_sign_in_page_refuses_a_bad_user_id_and_cancel_returns_access_denied(client):
    _, challenge = pkce()
    page = await client.get("/auth/authorize", params=authorize_params(challenge, login_hint="dana"))
    assert 'value="dana"' in page.text and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    form = FormFields()
    form.feed(page.text)
    bad = await client.post("/auth/authorize", data={**form.fields, "sub": "<script>", "role": "buyer"})
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text and "<script>" not in bad.text
    cancel = await client.post("/auth/authorize", data={**form.fields, "action": "cancel"})
    assert parse_qs(urlsplit(cancel.headers["location"]).query)["error"] == ["access_denied"]


async def test_logout_ends_the_session_and_returns_to_an_allowed_page(client):
    verifier, challenge = pkce()
    tokens = (await redeem(client, await sign_in(client, challenge), verifier)).json()
    out = await client.get(
        "/auth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": f"{ORIGIN}/contributor/",
            "state": "bye",
        },
    )
    assert out.status_code == 302 and out.headers["location"] == f"{ORIGIN}/contributor/?state=bye"
    refresh = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": CLIENT},
    )
    assert refresh.json()["error"] == "invalid_grant"
    evil = await client.get("/auth/logout", params={"post_logout_redirect_uri": "http://evil.example/"})
    assert evil.status_code == 400 and "location" not in evil.headers


async def test_other_paths_still_reach_the_api(client):
    assert (await client.get("/api/me")).status_code == 401
    assert (await client.get("/auth/nothing")).status_code == 404


def test_the_local_provider_never_runs_on_azure(tmp_path):
    with pytest.raises(ConfigError, match="AUTH_JWKS_URL"):
        load_settings(APP_ENV="azure", DATABASE_URL="postgresql://u:p@h/db", VAR_DIR=tmp_path)
    local = load_settings(APP_ENV="test", VAR_DIR=tmp_path)
    assert uses_local_issuer(local) and LocalOidcProvider.from_settings(local).client_id == local.AUTH_LOCAL_CLIENT_ID
    # Even settings that skipped validation cannot start it with APP_ENV=azure.
    azure = Settings.model_construct(**{**local.model_dump(), "APP_ENV": "azure"})
    assert not uses_local_issuer(azure)
    with pytest.raises(RuntimeError, match="local runs only"):
        LocalOidcProvider.from_settings(azure)
