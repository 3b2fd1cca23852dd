"""The stand-in's HTTP API: Stripe's v1 paths, form-encoded requests, JSON objects and errors as Stripe's.

Auth is the secret key as a Bearer token or as the Basic user name, like Stripe. POSTs honour
`Idempotency-Key` (the SDK sends one with every POST): the same key with the same parameters replays the
first answer, with different parameters it is an `idempotency_error`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import parse_qsl

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from devhost.stripe_standin import hosted
from devhost.stripe_standin.errors import StripeError, invalid
from devhost.stripe_standin.forms import decode_form, reject_unknown
from devhost.stripe_standin.store import API_VERSION, ONBOARDING_OUTCOMES, Store, new_id
from devhost.stripe_standin.webhooks import DEFAULT_RETRY_DELAYS, Endpoint, WebhookDispatcher

log = structlog.get_logger("stripe_standin")

Handler = Callable[..., dict]


def _retrieve(kind: str) -> Callable[[Store, dict, str], dict]:
    def handler(store: Store, params: dict, object_id: str) -> dict:
        reject_unknown(params, set())
        return store.get(kind, object_id)

    return handler


def _session_line_items(store: Store, params: dict, object_id: str) -> dict:
    reject_unknown(params, {"limit", "starting_after", "ending_before"})
    return store.session_line_items(object_id)


def _expire_session(store: Store, params: dict, object_id: str) -> dict:
    reject_unknown(params, set())
    return store.expire_checkout_session(object_id)


def _update_subscription(store: Store, params: dict, object_id: str) -> dict:
    return store.update_subscription(object_id, params)


def _cancel_subscription(store: Store, params: dict, object_id: str) -> dict:
    return store.cancel_subscription(object_id, params)


# (method, path pattern, handler(store, params, **path ids)); the first match wins.
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (m, re.compile(f"^{p}$"), h)
    for m, p, h in [
        ("POST", "/v1/checkout/sessions", lambda s, p: s.create_checkout_session(p)),
        ("GET", "/v1/checkout/sessions", lambda s, p: s.list_checkout_sessions(p)),
        ("GET", "/v1/checkout/sessions/(?P<object_id>[^/]+)", _retrieve("checkout.session")),
        ("GET", "/v1/checkout/sessions/(?P<object_id>[^/]+)/line_items", _session_line_items),
        ("POST", "/v1/checkout/sessions/(?P<object_id>[^/]+)/expire", _expire_session),
        ("POST", "/v1/refunds", lambda s, p: s.create_refund(p)),
        ("GET", "/v1/refunds/(?P<object_id>[^/]+)", _retrieve("refund")),
        ("GET", "/v1/payment_intents/(?P<object_id>[^/]+)", _retrieve("payment_intent")),
        ("GET", "/v1/charges/(?P<object_id>[^/]+)", _retrieve("charge")),
        ("GET", "/v1/invoices/(?P<object_id>[^/]+)", _retrieve("invoice")),
        ("GET", "/v1/prices/(?P<object_id>[^/]+)", _retrieve("price")),
        ("GET", "/v1/products/(?P<object_id>[^/]+)", _retrieve("product")),
        ("POST", "/v1/customers", lambda s, p: s.create_customer(p)),
        ("GET", "/v1/customers/(?P<object_id>[^/]+)", _retrieve("customer")),
        ("GET", "/v1/subscriptions/(?P<object_id>[^/]+)", _retrieve("subscription")),
        ("POST", "/v1/subscriptions/(?P<object_id>[^/]+)", _update_subscription),
        ("DELETE", "/v1/subscriptions/(?P<object_id>[^/]+)", _cancel_subscription),
        (
            "POST",
            "/v1/test_helpers/subscriptions/(?P<object_id>[^/]+)/advance",
            lambda s, p, object_id: s.advance_subscription(object_id, p),
        ),
        ("POST", "/v1/accounts", lambda s, p: s.create_account(p)),
        ("GET", "/v1/accounts/(?P<object_id>[^/]+)", _retrieve("account")),
        ("POST", "/v1/accounts/(?P<object_id>[^/]+)/reject", lambda s, p, object_id: s.reject_account(object_id, p)),
        ("POST", "/v1/account_links", lambda s, p: s.create_account_link(p)),
        ("POST", "/v1/transfers", lambda s, p: s.create_transfer(p)),
        ("GET", "/v1/transfers", lambda s, p: s.list_transfers(p)),
        ("GET", "/v1/transfers/(?P<object_id>[^/]+)", _retrieve("transfer")),
        ("GET", "/v1/events", lambda s, p: s.list_events(p)),
        ("GET", "/v1/events/(?P<object_id>[^/]+)", _retrieve("event")),
    ]
]


def _json(status: int, body: bytes, request_id: str, **extra: str) -> Response:
    headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION, **extra}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class StandinApi:
    def __init__(self, store: Store, secret_key: str, on_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.secret_key = secret_key
        self._on_change = on_change

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key.encode(), self.secret_key.encode()):
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}")
        return key

    async def handle(self, request: Request) -> Response:
        request_id = new_id("req", 14)
        method, path = request.method, request.url.path
        try:
            api_key = self._authenticate(request)
            if method == "POST" and "json" in request.headers.get("content-type", ""):
                raise invalid("Stripe's v1 API takes application/x-www-form-urlencoded bodies, not JSON.")
            try:
                raw = (await request.body()).decode() if method == "POST" else request.url.query
            except UnicodeDecodeError:
                raise invalid("The request body is not valid UTF-8.") from None
            params = decode_form(parse_qsl(raw, keep_blank_values=True))
            handler, ids = self._resolve(method, path)
            expand = params.pop("expand", None)
            if expand is not None and not isinstance(expand, list):
                raise invalid("Invalid array: expand must be an array", param="expand")
            idempotency_key = request.headers.get("idempotency-key") if method == "POST" else None
            fingerprint = hashlib.sha256(
                json.dumps([method, path, params, expand], sort_keys=True).encode()
            ).hexdigest()
            if idempotency_key is not None:
                if len(idempotency_key) > 255:
                    raise invalid("Keys for idempotent requests can only be up to 255 characters long.")
                saved = self.store.idempotent_result(api_key, idempotency_key)
                if saved is not None:
                    if saved.fingerprint != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{idempotency_key}' if you meant to "
                            "execute a different request.",
                            type="idempotency_error",
                        )
                    return _json(saved.status, saved.body.encode(), request_id, **{"Idempotent-Replayed": "true"})
            result = self.store.expand(handler(self.store, params, **ids), expand)
            body = json.dumps(result, indent=2).encode()
            if idempotency_key is not None:
                # Stripe saves the outcome of requests that ran (not of refused ones), for 24 h; the store
                # keeps it with its objects, so a retry after a devhost restart still replays it.
                self.store.save_idempotent_result(api_key, idempotency_key, fingerprint, 200, body.decode())
            if method != "GET":
                self._on_change()
            return _json(200, body, request_id)
        except StripeError as error:
            log.info("stripe stand-in refused a request", method=method, path=path, status=error.status,
                     message=error.message)  # fmt: skip
            return _json(error.status, error.to_json(), request_id)
        except Exception:
            log.exception("stripe stand-in failed", method=method, path=path)
            error = StripeError(500, "An unexpected error occurred in the local Stripe stand-in.", type="api_error")
            return _json(500, error.to_json(), request_id)

    @staticmethod
    def _resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for route_method, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                return handler, match.groupdict()
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). The local Stripe stand-in serves Checkout Sessions, "
            "refunds, customers, subscriptions and events; see devhost/stripe_standin.",
        )


def _success_redirect(url: str, session_id: str) -> RedirectResponse:
    return RedirectResponse(url.replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303)


def create_app(
    *,
    secret_key: str,
    webhook_secret: str,
    webhook_urls: Sequence[str],
    public_url: str,
    connect_webhook_secret: str | None = None,
    connect_webhook_urls: Sequence[str] = (),
    retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    expiry_sweep_seconds: float = 1.0,
    state_path: Path | None = None,
) -> Starlette:
    """`webhook_urls` get the platform's events, `connect_webhook_urls` those of connected accounts (each kind
    signed with its own secret, as two endpoints in Stripe's dashboard); `state_path`: where the objects are
    kept across restarts (None: memory only)."""
    if connect_webhook_urls and not connect_webhook_secret:
        raise ValueError("connect_webhook_urls need a connect_webhook_secret")
    endpoints = [Endpoint(url, webhook_secret) for url in webhook_urls]
    endpoints += [Endpoint(url, connect_webhook_secret or "", connect=True) for url in connect_webhook_urls]
    dispatcher = WebhookDispatcher(endpoints=endpoints, retry_delays=retry_delays)
    store = Store(public_url=public_url, on_event=dispatcher.enqueue)
    if state_path is not None and state_path.exists():
        try:
            store.restore(json.loads(state_path.read_text()))
        except (ValueError, KeyError) as exc:  # an old or damaged file: start afresh rather than not at all
            log.warning("stripe stand-in state ignored", path=str(state_path), error=str(exc))

    def persist() -> None:
        if state_path is None:
            return
        state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = state_path.with_suffix(".tmp")
        partial.write_text(json.dumps(store.snapshot()))
        os.replace(partial, state_path)  # atomic: a crash leaves the previous state, never half a file

    api = StandinApi(store, secret_key, on_change=persist)

    def session_or_page(session_id: str) -> dict | HTMLResponse:
        try:
            return store.get("checkout.session", session_id)
        except StripeError:
            return HTMLResponse(hosted.message_page("Not found", "No such checkout."), status_code=404)

    async def pay_page(request: Request) -> Response:
        session = session_or_page(request.path_params["session_id"])
        if isinstance(session, Response):
            return session
        items = store.session_line_items(session["id"])["data"]
        return HTMLResponse(hosted.checkout_page(session, items))

    async def pay(request: Request) -> Response:
        session = session_or_page(request.path_params["session_id"])
        if isinstance(session, Response):
            return session
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        try:
            store.complete_checkout_session(session["id"], form.get("payment") or "card")
        except StripeError as error:
            if error.param == "payment":
                return HTMLResponse(hosted.message_page("Payment refused", error.message), status_code=400)
            return HTMLResponse(hosted.message_page("Checkout expired", error.message), status_code=410)
        persist()
        return _success_redirect(session["success_url"], session["id"])

    async def cancel(request: Request) -> Response:
        session = session_or_page(request.path_params["session_id"])
        if isinstance(session, Response):
            return session
        if session["status"] == "complete":  # paid already (e.g. a second tab): the buyer belongs on success
            return _success_redirect(session["success_url"], session["id"])
        if session["cancel_url"]:  # Stripe leaves the session open: the buyer may come back and pay
            return RedirectResponse(session["cancel_url"], status_code=303)
        return HTMLResponse(hosted.message_page("Checkout cancelled", "You can close this page."))

    async def onboarding_page(request: Request) -> Response:
        link = store.onboarding(request.path_params["token"])
        if link is None:
            return HTMLResponse(hosted.message_page("Link expired", "Ask the platform for a new link."), 404)
        return HTMLResponse(hosted.onboarding_page(store.objects[link["account"]], request.path_params["token"]))

    async def finish_onboarding(request: Request) -> Response:
        if store.onboarding(request.path_params["token"]) is None:
            return HTMLResponse(hosted.message_page("Link expired", "Ask the platform for a new link."), 404)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        outcome = form.get("outcome") or "verified"
        if outcome not in ONBOARDING_OUTCOMES:
            return HTMLResponse(hosted.message_page("Unknown choice", f"No such outcome: {outcome}"), 400)
        return_url = store.complete_onboarding(request.path_params["token"], outcome)
        persist()
        return RedirectResponse(return_url, status_code=303)

    async def sweep_expired() -> None:
        while True:
            await asyncio.sleep(expiry_sweep_seconds)
            if store.expire_due_sessions():
                persist()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        sweeper = asyncio.create_task(sweep_expired())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await dispatcher.aclose()

    app = Starlette(
        routes=[
            Route("/v1/{path:path}", api.handle, methods=["GET", "POST", "DELETE"]),
            Route("/pay/{session_id}", pay_page, methods=["GET"]),
            Route("/pay/{session_id}/pay", pay, methods=["POST"]),
            Route("/pay/{session_id}/cancel", cancel, methods=["POST"]),
            Route("/onboard/{token}", onboarding_page, methods=["GET"]),
            Route("/onboard/{token}", finish_onboarding, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.dispatcher = dispatcher
    return app
