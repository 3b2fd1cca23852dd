"""The role rule of every HTTP route, for the RBAC matrix (tests/integration/test_rbac_matrix.py).

Who may call a route comes from its own declaration (`roles=` in `@api`); this table adds what the
declaration cannot say: how to build a request that succeeds (path ids, body, data set up first),
which status means success, and whether the route shows a contributor's private data, so that a
second contributor must get 404 for the first one's data. A route without an entry here fails the
matrix with "declare the role rule for <METHOD path>".

To add a route: an entry keyed by (METHOD, OpenAPI path), whose `request` builds a `Call` for one
persona. It is called once per persona, so a route that changes state can create fresh data each
time; data that should belong to the owner uses `ctx.owner`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.http import ANYONE, SIGNED_IN, RouteSpec

OWNER = "contributor-1"
OTHER_CONTRIBUTOR = "contributor-2"


@dataclass(frozen=True)
class Persona:
    name: str
    sub: str | None  # None: no token at all
    roles: tuple[str, ...] = ()


PERSONAS = (
    Persona("anonymous", None),
    Persona("buyer", "buyer-1", ("buyer",)),
    Persona("contributor", OWNER, ("contributor",)),
    Persona("other contributor", OTHER_CONTRIBUTOR, ("contributor",)),
    Persona("admin", "admin-1", ("admin",)),
)


@dataclass(frozen=True)
class Call:
    path: str  # below /api/, ids filled in
    query: dict[str, Any] | None = None
    json_body: Any = None
    headers: dict[str, str] | None = None
    body: bytes | None = None  # raw body (instead of json_body)


@dataclass
class Context:
    """What a request builder may use: the in-process app (its runtime holds the database)."""

    app: Any  # tests.fixtures.moderation.InProcessApp
    owner: str = OWNER

    @property
    def db(self):
        return self.app.runtime.db

    @property
    def policy(self):
        from functions.moderation.policy import ModerationPolicy

        return ModerationPolicy.from_settings(self.app.settings)


Builder = Callable[[Context], Awaitable[Call]]


def fixed(path: str, **kwargs: Any) -> Builder:
    async def build(ctx: Context) -> Call:
        return Call(path, **kwargs)

    return build


@dataclass(frozen=True)
class RouteRule:
    request: Builder
    ok: frozenset[int] = frozenset({200})
    # The route shows or changes one contributor's own data: another contributor gets 404, never 403,
    # so that ids of other people's data are not even confirmed to exist.
    owner_scoped: bool = False
    # Topic-triggered functions that must run for the route to succeed (e.g. the bus round trip).
    subscriptions: tuple[str, ...] = field(default_factory=tuple)


def expected_status(spec: RouteSpec, rule: RouteRule, persona: Persona) -> int | frozenset[int]:
    """401 without a token where one is needed, 403 without the role, 404 for another contributor's
    private data, else the route's success."""
    if spec.roles is ANYONE:
        return rule.ok
    if persona.sub is None:
        return 401
    if spec.roles is not SIGNED_IN and not set(persona.roles) & set(spec.roles):
        return 403
    if rule.owner_scoped and persona.sub != OWNER and "admin" not in persona.roles:
        return 404
    return rule.ok


# --- request builders that need data ----------------------------------------------------------------


async def _processed(ctx: Context, **listing: Any) -> uuid.UUID:
    """An image as moderation receives it from processing (pending unless the listing passes the policy)."""
    from functions.moderation.handlers import handle_image_processed
    from tests.fixtures.moderation import processed_event, received

    event = processed_event(contributor_id=ctx.owner, **listing)
    await handle_image_processed(ctx.db, received(event), ctx.policy)
    return event.image_id


async def _pending(ctx: Context) -> uuid.UUID:
    return await _processed(ctx, keywords=["coffee"])


async def _live(ctx: Context) -> uuid.UUID:
    return await _processed(ctx)


def _on_pending(suffix: str = "", body: Any = None) -> Builder:
    async def build(ctx: Context) -> Call:
        return Call(f"admin/images/{await _pending(ctx)}{suffix}", json_body=body)

    return build


async def _takedown(ctx: Context) -> Call:
    return Call(f"admin/images/{await _live(ctx)}/takedown", json_body={"reason": "DMCA notice"})


async def _bulk(ctx: Context) -> Call:
    ids = [str(await _pending(ctx)) for _ in range(2)]
    return Call("admin/images/moderate", json_body={"action": "approve", "image_ids": ids})


async def _new_category(ctx: Context) -> Call:
    slug = f"c-{uuid.uuid4().hex[:8]}"
    return Call("admin/categories", json_body={"slug": slug, "name": slug.upper()})


async def _existing_category(ctx: Context) -> Call:
    from functions.moderation.handlers import Actor, create_category
    from functions.moderation.models import CategoryIn

    slug = f"c-{uuid.uuid4().hex[:8]}"
    await create_category(ctx.db, CategoryIn(slug=slug, name=slug), Actor("setup"))
    return Call(f"admin/categories/{slug}", json_body={"retired": True})


_PRICES = {
    "prices": {
        "standard": {"amount_minor": 1900, "currency": "EUR"},
        "enhanced": {"amount_minor": 6900, "currency": "EUR"},
    }
}


# --- ingestion ----------------------------------------------------------------------------------------

_UPLOAD = {"file_name": "coffee.jpg", "size_bytes": 5_000_000, "content_type": "image/jpeg"}


async def _owners_upload(ctx: Context) -> Call:
    from functions.ingestion.models import UploadRequest
    from functions.ingestion.policy import IngestionPolicy
    from functions.ingestion.uploads import register_upload

    ticket = await register_upload(
        ctx.db,
        ctx.app.runtime.storage,
        IngestionPolicy.from_settings(ctx.app.settings),
        ctx.owner,
        UploadRequest.model_validate(_UPLOAD),
    )
    return Call(f"contributor/images/{ticket.image_id}")


async def _owners_pending_edit(ctx: Context) -> Call:
    return Call(f"contributor/images/{await _pending(ctx)}", json_body={"keywords": ["coffee", "cup"]})


# --- checkout (the buyer persona is BUYER) -------------------------------------------------------------

BUYER = "buyer-1"


async def _for_sale(ctx: Context) -> uuid.UUID:
    """An approved image, as checkout learns of it from the images topic."""
    from functions.checkout.catalogue import apply_catalogue_event
    from tests.fixtures.checkout import approved, message

    image_id = uuid.uuid4()
    await apply_catalogue_event(ctx.db, message(approved(image_id, contributor_id=ctx.owner)))
    return image_id


async def _in_cart(ctx: Context) -> uuid.UUID:
    image_id = await _for_sale(ctx)
    await ctx.db.pool.execute(
        "insert into checkout.cart_items (buyer_id, image_id, license_type) values ($1, $2, 'standard')",
        BUYER,
        image_id,
    )
    return image_id


async def _subscribed(ctx: Context) -> None:
    await ctx.db.pool.execute(
        """
        insert into checkout.subscriptions (stripe_subscription_id, buyer_id, plan, status, allotment, remaining,
                                            current_period_end)
        values ($1, $2, 'basic-10', 'active', 10, 10, now() + interval '30 days')
        """,
        f"sub_{uuid.uuid4().hex[:12]}",
        BUYER,
    )


async def _add_to_cart(ctx: Context) -> Call:
    return Call("cart/items", json_body={"image_id": str(await _for_sale(ctx)), "license_type": "standard"})


async def _remove_from_cart(ctx: Context) -> Call:
    return Call(f"cart/items/{await _in_cart(ctx)}")


async def _checkout(ctx: Context) -> Call:
    await _in_cart(ctx)
    return Call("checkout")


async def _download(ctx: Context) -> Call:
    license_id = uuid.uuid4()
    await ctx.db.pool.execute(
        """
        insert into checkout.licenses (id, buyer_id, image_id, license_type, subscription_id, contributor_id,
                                       original_blob, file_name)
        values ($1, $2, $3, 'standard', 'sub_rbac', $4, $5, 'coffee.jpg')
        """,
        license_id,
        BUYER,
        uuid.uuid4(),
        ctx.owner,
        f"{ctx.owner}/{license_id}.jpg",
    )
    return Call(f"licenses/{license_id}/download")


async def _subscription(ctx: Context) -> Call:
    await _subscribed(ctx)
    return Call("subscription")


async def _license_from_allotment(ctx: Context) -> Call:
    await _subscribed(ctx)
    return Call(f"images/{await _for_sale(ctx)}/license", json_body={"license_type": "standard"})


async def _stripe_webhook(ctx: Context) -> Call:
    """A genuine, signed delivery of an event type the app ignores: Stripe calls without a token."""
    import json

    from tests.fixtures.checkout import sign_webhook, stripe_event

    payload = json.dumps(stripe_event("customer.created", {"id": "cus_rbac", "object": "customer"})).encode()
    signature = sign_webhook(payload, secret=ctx.app.settings.STRIPE_WEBHOOK_SECRET)
    return Call(
        "webhooks/stripe", body=payload, headers={"Stripe-Signature": signature, "Content-Type": "application/json"}
    )


# --- payouts ----------------------------------------------------------------------------------------------

_W9 = {
    "form_type": "W-9",
    "legal_name": "Alice Example",
    "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
    "country": "US",
    "tin": "287-65-4321",
}
_counter = iter(range(1, 10**9))


async def _with_tax_info(ctx: Context) -> Call:
    """Both contributors have a profile: each reads their own."""
    from functions.payouts.tax import TaxInfoIn, save_tax_info
    from shared.crypto import EnvelopeCipher, key_wrapper_from_settings

    cipher = EnvelopeCipher(key_wrapper_from_settings(ctx.app.settings))
    for contributor in (OWNER, OTHER_CONTRIBUTOR):
        await save_tax_info(ctx.db, cipher, contributor, TaxInfoIn.model_validate(_W9))
    return Call("contributor/tax-info")


async def _with_payout_account(ctx: Context) -> Call:
    for contributor in (OWNER, OTHER_CONTRIBUTOR):
        await ctx.db.pool.execute(
            "insert into payouts.connect_accounts (contributor_id, account_id, country) values ($1, $2, 'US') "
            "on conflict do nothing",
            contributor,
            f"acct_rbac_{contributor}",
        )
    return Call("contributor/payout-account")


async def _new_payout_account(ctx: Context) -> Call:
    from shared.payments import set_payout_gateway

    set_payout_gateway(None)  # built again from this app's settings: the stand-in
    return Call("contributor/payout-account", json_body={"country": "US"})


async def _owners_payout(ctx: Context) -> Call:
    """A payout of the owner's in an approved batch."""
    batch_id, payout_id = uuid.uuid4(), uuid.uuid4()
    await ctx.db.pool.execute(
        "insert into payouts.batches (id, period, status, cutoff_at, created_by) "
        "values ($1, $2, 'approved', now(), 'rbac')",
        batch_id,
        f"{1000 + next(_counter) % 8000:04d}-01",
    )
    await ctx.db.pool.execute(
        "insert into payouts.payouts (id, batch_id, contributor_id, currency, amount_minor, account_id, "
        "idempotency_key, status) values ($1, $2, $3, 'USD', 5000, 'acct_rbac', $4, 'approved')",
        payout_id,
        batch_id,
        ctx.owner,
        f"payout-{batch_id}-{ctx.owner}",
    )
    return Call(f"contributor/payouts/{payout_id}")


def _period() -> str:
    n = next(_counter)
    return f"{2100 + n // 12:04d}-{n % 12 + 1:02d}"


async def _new_batch(ctx: Context) -> Call:
    return Call("admin/payout-batches", json_body={"period": _period()})


def _on_draft_batch(suffix: str = "") -> Builder:
    async def build(ctx: Context) -> Call:
        from datetime import UTC, datetime

        from functions.payouts.batches import create_batch

        batch, _ = await create_batch(
            ctx.db, period=_period(), actor="rbac", now=datetime.now(UTC), default_threshold_minor=3500
        )
        return Call(f"admin/payout-batches/{batch['id']}{suffix}")

    return build


async def _new_royalty_table(ctx: Context) -> Call:
    from datetime import UTC, datetime, timedelta

    effective = datetime.now(UTC) + timedelta(days=3650, seconds=next(_counter))
    return Call(
        "admin/royalty-tables",
        json_body={"effective_at": effective.isoformat(), "levels": [{"from_download": 1, "rate_bp": 1500}]},
    )


async def _connect_webhook(ctx: Context) -> Call:
    """A genuine, signed account.updated from the Connect endpoint: Stripe calls without a token."""
    import json

    from tests.fixtures.checkout import sign_webhook, stripe_event

    account = {"id": "acct_rbac_unknown", "object": "account", "payouts_enabled": True}
    payload = json.dumps(stripe_event("account.updated", account)).encode()
    signature = sign_webhook(payload, secret=ctx.app.settings.STRIPE_CONNECT_WEBHOOK_SECRET)
    return Call(
        "webhooks/stripe-connect",
        body=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


# --- search ---------------------------------------------------------------------------------------------


async def _searchable(ctx: Context) -> uuid.UUID:
    """An approved image of the owner's, as search_sync indexes it from the images topic."""
    from functions.search_sync.handlers import handle_message
    from shared.search.factory import get_search_index
    from tests.fixtures.checkout import message
    from tests.fixtures.search_corpus import approved, listing, topic_vector

    event = approved(
        listing(title="Coffee cup", keywords=["coffee", "cup"], embedding=topic_vector("coffee")),
        contributor_id=ctx.owner,
    )
    await handle_message(ctx.db, await get_search_index(), message(event))
    return event.image_id


async def _image_page(ctx: Context) -> Call:
    return Call(f"images/{await _searchable(ctx)}")


async def _similar(ctx: Context) -> Call:
    return Call(f"images/{await _searchable(ctx)}/similar")


async def _by_image(ctx: Context) -> Call:
    from tests.fixtures.photos import jpeg_bytes, photo

    return Call("search/by-image", body=jpeg_bytes(photo("coffee")), headers={"Content-Type": "image/jpeg"})


async def _dead_letter(ctx: Context, action: str) -> Call:
    """A fresh dead letter on platform/health (each persona gets its own), replayed or discarded."""
    from shared.bus.port import OutgoingMessage
    from shared.bus.postgres_transport import PostgresTransport

    transport = PostgresTransport(ctx.db, max_delivery_count=1)
    await transport.publish([OutgoingMessage(str(uuid.uuid4()), "platform", "platform.ping", {"nonce": 1})])
    (message,) = await transport.receive("platform", "health")
    await transport.dead_letter(message, "InvalidBody", "nonce is not a string")
    return Call(f"admin/dead-letters/platform:health:{message.raw}/{action}")


def _dead_letter_action(action: str) -> Builder:
    async def build(ctx: Context) -> Call:
        return await _dead_letter(ctx, action)

    return build


RULES: dict[tuple[str, str], RouteRule] = {
    # --- platform ---
    ("GET", "/api/health"): RouteRule(fixed("health")),
    ("GET", "/api/me"): RouteRule(fixed("me")),
    ("GET", "/api/openapi.json"): RouteRule(fixed("openapi.json")),
    ("POST", "/api/admin/bus/ping"): RouteRule(fixed("admin/bus/ping"), subscriptions=("platform_ping",)),
    ("GET", "/api/admin/dead-letters"): RouteRule(fixed("admin/dead-letters", query={"topic": "images"})),
    ("POST", "/api/admin/dead-letters/{id}/replay"): RouteRule(_dead_letter_action("replay")),
    ("POST", "/api/admin/dead-letters/{id}/discard"): RouteRule(_dead_letter_action("discard")),
    # --- moderation ---
    ("GET", "/api/admin/moderation/queue"): RouteRule(fixed("admin/moderation/queue", query={"reason": "nsfw_score"})),
    ("GET", "/api/admin/images/{id}"): RouteRule(_on_pending()),
    ("POST", "/api/admin/images/{id}/approve"): RouteRule(_on_pending("/approve")),
    ("POST", "/api/admin/images/{id}/reject"): RouteRule(_on_pending("/reject", {"reason_code": "poor_quality"})),
    ("POST", "/api/admin/images/moderate"): RouteRule(_bulk),
    ("PATCH", "/api/admin/images/{id}"): RouteRule(_on_pending("", {"title": "Better title"})),
    ("POST", "/api/admin/images/{id}/takedown"): RouteRule(_takedown),
    ("GET", "/api/categories"): RouteRule(fixed("categories")),
    ("GET", "/api/admin/categories"): RouteRule(fixed("admin/categories")),
    ("POST", "/api/admin/categories"): RouteRule(_new_category, ok=frozenset({201})),
    ("PATCH", "/api/admin/categories/{slug}"): RouteRule(_existing_category),
    ("GET", "/api/admin/pricing"): RouteRule(fixed("admin/pricing")),
    ("PUT", "/api/admin/pricing"): RouteRule(fixed("admin/pricing", json_body=_PRICES)),
    ("GET", "/api/admin/audit-log"): RouteRule(fixed("admin/audit-log", query={"actor": "admin-1"})),
    # --- ingestion ---
    ("POST", "/api/contributor/uploads"): RouteRule(
        fixed("contributor/uploads", json_body=_UPLOAD), ok=frozenset({201})
    ),
    ("GET", "/api/contributor/images"): RouteRule(fixed("contributor/images")),
    ("GET", "/api/contributor/images/{id}"): RouteRule(_owners_upload, owner_scoped=True),
    ("PATCH", "/api/contributor/images/{id}"): RouteRule(_owners_pending_edit, owner_scoped=True),
    # --- checkout ---
    ("GET", "/api/cart"): RouteRule(fixed("cart")),
    ("POST", "/api/cart/items"): RouteRule(_add_to_cart, ok=frozenset({201})),
    ("DELETE", "/api/cart/items/{image_id}"): RouteRule(_remove_from_cart),
    ("POST", "/api/checkout"): RouteRule(_checkout, ok=frozenset({201})),
    ("GET", "/api/orders"): RouteRule(fixed("orders")),
    ("GET", "/api/licenses"): RouteRule(fixed("licenses")),
    ("GET", "/api/licenses/{id}/download"): RouteRule(_download, ok=frozenset({302})),
    ("GET", "/api/subscriptions/plans"): RouteRule(fixed("subscriptions/plans")),
    ("POST", "/api/subscriptions/checkout"): RouteRule(
        fixed("subscriptions/checkout", json_body={"plan": "basic-10"}), ok=frozenset({201})
    ),
    ("GET", "/api/subscription"): RouteRule(_subscription),
    ("POST", "/api/images/{id}/license"): RouteRule(_license_from_allotment, ok=frozenset({201})),
    ("POST", "/api/webhooks/stripe"): RouteRule(_stripe_webhook),
    # --- search ---
    ("GET", "/api/search"): RouteRule(fixed("search", query={"q": "coffee"})),
    ("GET", "/api/images/{id}"): RouteRule(_image_page),
    ("GET", "/api/images/{id}/similar"): RouteRule(_similar),
    ("POST", "/api/search/by-image"): RouteRule(_by_image),
    ("GET", "/api/keywords/suggest"): RouteRule(fixed("keywords/suggest", query={"q": "cof"})),
    ("GET", "/api/contributor/search"): RouteRule(fixed("contributor/search", query={"q": "coffee"})),
    ("GET", "/api/admin/search"): RouteRule(fixed("admin/search", query={"status": "approved"})),
    # --- payouts ---
    ("GET", "/api/contributor/earnings"): RouteRule(fixed("contributor/earnings", query={"group_by": "month"})),
    ("GET", "/api/contributor/earnings.csv"): RouteRule(fixed("contributor/earnings.csv")),
    ("GET", "/api/contributor/level"): RouteRule(fixed("contributor/level")),
    ("GET", "/api/contributor/payouts"): RouteRule(fixed("contributor/payouts")),
    ("GET", "/api/contributor/payouts/{id}"): RouteRule(_owners_payout, owner_scoped=True),
    ("GET", "/api/contributor/payout-settings"): RouteRule(fixed("contributor/payout-settings")),
    ("PUT", "/api/contributor/payout-settings"): RouteRule(
        fixed("contributor/payout-settings", json_body={"threshold_minor": 5000})
    ),
    ("GET", "/api/contributor/tax-info"): RouteRule(_with_tax_info),
    ("PUT", "/api/contributor/tax-info"): RouteRule(fixed("contributor/tax-info", json_body=_W9)),
    ("GET", "/api/contributor/payout-account"): RouteRule(_with_payout_account),
    ("POST", "/api/contributor/payout-account"): RouteRule(_new_payout_account, ok=frozenset({201})),
    ("POST", "/api/webhooks/stripe-connect"): RouteRule(_connect_webhook),
    ("GET", "/api/admin/royalty-tables"): RouteRule(fixed("admin/royalty-tables")),
    ("POST", "/api/admin/royalty-tables"): RouteRule(_new_royalty_table, ok=frozenset({201})),
    ("POST", "/api/admin/ledger-adjustments"): RouteRule(
        fixed(
            "admin/ledger-adjustments",
            json_body={"contributor_id": OWNER, "amount_minor": 100, "currency": "USD", "reason": "goodwill"},
        ),
        ok=frozenset({201}),
    ),
    ("GET", "/api/admin/payout-batches"): RouteRule(fixed("admin/payout-batches")),
    ("POST", "/api/admin/payout-batches"): RouteRule(_new_batch, ok=frozenset({201})),
    ("GET", "/api/admin/payout-batches/{id}"): RouteRule(_on_draft_batch()),
    ("GET", "/api/admin/payout-batches/{id}/payouts"): RouteRule(_on_draft_batch("/payouts")),
    ("GET", "/api/admin/payout-batches/{id}/exclusions"): RouteRule(_on_draft_batch("/exclusions")),
    ("POST", "/api/admin/payout-batches/{id}/approve"): RouteRule(_on_draft_batch("/approve")),
    ("POST", "/api/admin/payout-batches/{id}/cancel"): RouteRule(_on_draft_batch("/cancel")),
}
