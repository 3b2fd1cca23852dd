"""The local OIDC provider over HTTP at /auth on devhost's origin, with its sign-in page.

Routes: /auth/.well-known/openid-configuration, /auth/jwks, GET+POST /auth/authorize,
POST /auth/token, GET /auth/logout. Protocol rules live in shared/auth/local_oidc.py;
this file only parses requests and renders answers.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from shared.auth.local_oidc import LocalOidcProvider, OAuthError, UnsafeRedirect
from shared.auth.principal import KNOWN_ROLES

PREFIX = "/auth"
MAX_FORM_BYTES = 64 * 1024
_ROLE_LABELS = {
    "buyer": "Buyer: search, buy and download",
    "contributor": "Contributor: upload and manage photos",
    "admin": "Admin: moderate, price and pay out",
}

Response = tuple[int, list[tuple[str, str]], bytes]


def _json(status: int, body: dict[str, Any], *, no_store: bool = False) -> Response:
    headers = [("content-type", "application/json")]
    if no_store:  # RFC 6749 5.1: token responses must not be cached
        headers += [("cache-control", "no-store"), ("pragma", "no-cache")]
    return status, headers, json.dumps(body).encode()


def _redirect(url: str) -> Response:
    return 302, [("location", url), ("cache-control", "no-store")], b""


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode(params)


def _page(status: int, title: str, body: str, *, form_target: str | None = None) -> Response:
    form_action = "'self'" + (f" {form_target}" if form_target else "")
    headers = [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
    ]
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Marketplace (local sign-in)</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1f24; }}
  main {{ max-width: 26rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 12px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
  @media (max-width: 30rem) {{ main {{ margin: 0; border-radius: 0; box-shadow: none; padding: 1.25rem; }} }}
  h1 {{ font-size: 1.5rem; margin: 0 0 .25rem; }}
  p.note {{ color: #4a5260; margin: 0 0 1.5rem; }}
  label, legend {{ font-weight: 600; }}
  input[type=text] {{ display: block; width: 100%; box-sizing: border-box; font: inherit; padding: .6rem .75rem;
         margin: .35rem 0 1.25rem; border: 1px solid #6b7380; border-radius: 8px; }}
  fieldset {{ border: 0; padding: 0; margin: 0 0 1.5rem; }}
  .role {{ display: flex; gap: .6rem; align-items: center; padding: .5rem 0; font-weight: 400; }}
  .error {{ color: #a4161a; font-weight: 600; margin: -.9rem 0 1rem; }}
  .actions {{ display: flex; gap: .75rem; flex-wrap: wrap; }}
  button {{ font: inherit; font-weight: 600; padding: .65rem 1.25rem; border-radius: 8px; cursor: pointer;
           border: 1px solid #0b5cad; }}
  button[value=signin] {{ background: #0b5cad; color: #fff; }}
  button[value=cancel] {{ background: #fff; color: #0b5cad; }}
  :focus-visible {{ outline: 3px solid #f0a202; outline-offset: 2px; }}
</style></head>
<body><main>{body}</main></body></html>"""
    return status, headers, document.encode()


def _sign_in_page(fields: dict[str, str], *, sub: str = "", role: str | None = None, error: str | None = None):
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    described = ' aria-invalid="true" aria-describedby="sub-error"' if error else ""
    error_html = f'<p class="error" id="sub-error">{html.escape(error)}</p>' if error else ""
    role = role if role in KNOWN_ROLES else "buyer"
    roles = "".join(
        f'<label class="role"><input type="radio" name="role" value="{r}"{" checked" if r == role else ""}>'
        f"{html.escape(_ROLE_LABELS[r])}</label>"
        for r in ("buyer", "contributor", "admin")
    )
    body = f"""<h1>Sign in</h1>
<p class="note">Local development sign-in: pick any user id and a role. On Azure this is Entra ID.</p>
<form method="post" action="{PREFIX}/authorize">{hidden}
<label for="sub">User id</label>
<input type="text" id="sub" name="sub" value="{html.escape(sub)}" required autocomplete="username"
 pattern="[A-Za-z0-9][A-Za-z0-9._@\\-]{{0,63}}" autofocus{described}>{error_html}
<fieldset><legend>Role</legend>{roles}</fieldset>
<div class="actions"><button type="submit" name="action" value="signin">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></div>
</form>"""
    origin = urlsplit(fields["redirect_uri"])
    return _page(400 if error else 200, "Sign in", body, form_target=f"{origin.scheme}://{origin.netloc}")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _error_page(exc: OAuthError) -> Response:
    body = (
        f"<h1>Sign-in cannot continue</h1><p>{html.escape(exc.description)}</p>"
        f'<p class="note">Error code: <code>{html.escape(exc.error)}</code></p>'
    )
    return _page(400, "Sign-in error", body)


class LocalOidcApp:
    """ASGI app for the /auth routes; `fallback` serves every other path."""

    def __init__(self, provider: LocalOidcProvider, fallback: Any) -> None:
        self.provider = provider
        self.fallback = fallback

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.fallback(scope, receive, send)
            return
        status, headers, body = await self._handle(scope, receive)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict[str, Any], receive: Any) -> Response:
        method = scope["method"].upper()
        route = scope["path"][len(PREFIX) :]
        request_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = f"http://{request_headers.get('host', 'localhost')}"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        provider = self.provider
        if route == "/.well-known/openid-configuration" and method == "GET":
            return _json(200, provider.discovery(origin + PREFIX))
        if route == "/jwks" and method == "GET":
            return _json(200, provider.issuer.jwks())
        if route == "/authorize" and method == "GET":
            return self._authorize(query, origin)
        if route == "/authorize" and method == "POST":
            form = await self._form(receive, request_headers)
            if form is None:
                return _error_page(OAuthError("invalid_request", "Send the sign-in form as form-encoded data."))
            return self._authorize_post(form, origin)
        if route == "/token" and method == "POST":
            form = await self._form(receive, request_headers)
            if form is None:
                return _json(400, OAuthError("invalid_request", "Send a form-encoded body.").body(), no_store=True)
            try:
                return _json(200, provider.token(form), no_store=True)
            except OAuthError as exc:
                return _json(exc.status, exc.body(), no_store=True)
        if route == "/logout" and method == "GET":
            try:
                target = provider.end_session(query, origin)
            except UnsafeRedirect as exc:
                return _error_page(exc)
            if target is None:
                return _page(200, "Signed out", "<h1>You are signed out</h1><p>You can close this page.</p>")
            return _redirect(_with_query(target, {"state": query["state"]}) if "state" in query else target)
        return _json(404, {"error": "not_found", "error_description": f"No {method} {scope['path']} here."})

    def _authorize(self, query: dict[str, str], origin: str) -> Response:
        try:
            request = self.provider.check_authorization(query, origin)
        except UnsafeRedirect as exc:
            return _error_page(exc)
        except OAuthError as exc:
            return _redirect(_with_query(query["redirect_uri"], self._error_params(exc, query.get("state"))))
        return _sign_in_page(request.as_fields(), sub=query.get("login_hint", ""), role=query.get("role_hint"))

    def _authorize_post(self, form: dict[str, str], origin: str) -> Response:
        try:
            request = self.provider.check_authorization(form, origin)
        except UnsafeRedirect as exc:
            return _error_page(exc)
        except OAuthError as exc:
            return _redirect(_with_query(form["redirect_uri"], self._error_params(exc, form.get("state"))))
        fields = request.as_fields()
        if form.get("action") == "cancel":
            denied = OAuthError("access_denied", "The person cancelled the sign-in.")
            return _redirect(_with_query(request.redirect_uri, self._error_params(denied, request.state)))
        sub, role = form.get("sub", "").strip(), form.get("role", "")
        try:
            code = self.provider.issue_code(request, sub, [role] if role else [])
        except ValueError as exc:
            return _sign_in_page(fields, sub=sub, role=role, error=_sentence(str(exc)))
        params = {"code": code}
        if request.state is not None:
            params["state"] = request.state
        return _redirect(_with_query(request.redirect_uri, params))

    @staticmethod
    def _error_params(exc: OAuthError, state: str | None) -> dict[str, str]:
        params = exc.body()
        if state is not None:
            params["state"] = state
        return params

    @staticmethod
    async def _form(receive: Any, headers: dict[str, str]) -> dict[str, str] | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return None
        return dict(parse_qsl(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True))
