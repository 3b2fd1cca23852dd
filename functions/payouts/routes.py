"""Payouts HTTP routes: the contributor's earnings, level, tax info, payout account and payouts; the admin's
royalty tables, ledger adjustments and payout batches; the Stripe Connect webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from functions.payouts import accounts, admin_ledger, batches, reports, tax
from functions.payouts.blueprint import bp
from functions.payouts.models import (
    AdjustmentIn,
    BatchCreateIn,
    BatchesOut,
    BatchExclusionsPage,
    BatchLinesQuery,
    BatchOut,
    BatchPayoutsPage,
    EarningsCsvQuery,
    EarningsOut,
    EarningsQuery,
    LedgerEntryOut,
    LevelOut,
    PayoutAccountIn,
    PayoutAccountOut,
    PayoutOut,
    PayoutSettingsIn,
    PayoutSettingsOut,
    PayoutsOut,
    RoyaltyTableIn,
    RoyaltyTableOut,
    RoyaltyTablesOut,
    WebhookOut,
)
from functions.payouts.royalties import LevelTable
from shared.crypto import EnvelopeCipher, key_wrapper_from_settings
from shared.http import ANYONE, ApiRequest, ApiResponse, Problem, api
from shared.payments import InvalidWebhook, get_payout_gateway, verify_webhook
from shared.runtime import get_runtime

CONTRIBUTOR = {"contributor"}
ADMIN = {"admin"}
TAGS = ["payouts"]


def _now() -> datetime:
    return datetime.now(UTC)


def _period(query_from: datetime | None, query_to: datetime | None) -> tuple[datetime, datetime]:
    now = _now()
    start = query_from or datetime(now.year, 1, 1, tzinfo=UTC)
    end = query_to or now
    if end <= start:
        raise Problem(
            400,
            "invalid-query",
            "Invalid query parameters",
            "Check: to.",
            errors=[{"name": "to", "in": "query", "reason": "must be after from"}],
        )
    return start, end


def _batch_id(request: ApiRequest) -> UUID:
    try:
        return UUID(request.path_params.get("id", ""))
    except ValueError:
        raise Problem(404, "batch-not-found", "Payout batch not found") from None


# --- contributor: earnings, level, payouts ------------------------------------------------------


@api(
    bp,
    "GET",
    "contributor/earnings",
    roles=CONTRIBUTOR,
    summary="The caller's earnings grouped by day, month or image, per licence type, with balances",
    query_model=EarningsQuery,
    response_model=EarningsOut,
    errors=(404,),
    tags=TAGS,
)
async def get_earnings(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    query: EarningsQuery = request.query
    start, end = _period(query.from_, query.to)
    return await reports.earnings(
        runtime.db,
        request.require_principal().sub,
        start=start,
        end=end,
        group_by=query.group_by,
        image_id=query.image_id,
        now=_now(),
    )


@api(
    bp,
    "GET",
    "contributor/earnings.csv",
    roles=CONTRIBUTOR,
    summary="The caller's ledger entries of a period as CSV (text/csv)",
    query_model=EarningsCsvQuery,
    tags=TAGS,
)
async def get_earnings_csv(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    query: EarningsCsvQuery = request.query
    start, end = _period(query.from_, query.to)
    body = await reports.earnings_csv(runtime.db, request.require_principal().sub, start=start, end=end)
    return ApiResponse(
        200,
        body,
        headers={"Content-Disposition": 'attachment; filename="earnings.csv"', "Cache-Control": "no-store"},
        content_type="text/csv; charset=utf-8",
    )


@api(
    bp,
    "GET",
    "contributor/level",
    roles=CONTRIBUTOR,
    summary="The caller's royalty level and progress to the next",
    response_model=LevelOut,
    tags=TAGS,
)
async def get_level(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return await reports.level(runtime.db, request.require_principal().sub, _now())


@api(
    bp,
    "GET",
    "contributor/payouts",
    roles=CONTRIBUTOR,
    summary="The caller's payouts, newest first",
    response_model=PayoutsOut,
    tags=TAGS,
)
async def get_payouts(request: ApiRequest) -> PayoutsOut:
    runtime = await get_runtime()
    rows = await reports.list_payouts(runtime.db, request.require_principal().sub)
    return PayoutsOut(payouts=[PayoutOut.model_validate(r) for r in rows])


@api(
    bp,
    "GET",
    "contributor/payouts/{id:guid}",
    roles=CONTRIBUTOR,
    summary="One of the caller's payouts",
    response_model=PayoutOut,
    errors=(404,),
    tags=TAGS,
)
async def get_payout(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    try:
        payout_id = UUID(request.path_params.get("id", ""))
    except ValueError:
        raise Problem(404, "payout-not-found", "Payout not found") from None
    return await reports.get_payout(runtime.db, request.require_principal().sub, payout_id)


@api(
    bp,
    "GET",
    "contributor/payout-settings",
    roles=CONTRIBUTOR,
    summary="The caller's payout threshold",
    response_model=PayoutSettingsOut,
    tags=TAGS,
)
async def get_payout_settings(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return await reports.payout_settings(
        runtime.db, request.require_principal().sub, runtime.settings.PAYOUT_DEFAULT_THRESHOLD_MINOR
    )


@api(
    bp,
    "PUT",
    "contributor/payout-settings",
    roles=CONTRIBUTOR,
    summary="Raise the caller's payout threshold (never below the default)",
    body_model=PayoutSettingsIn,
    response_model=PayoutSettingsOut,
    tags=TAGS,
)
async def put_payout_settings(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    body: PayoutSettingsIn = request.body
    return await reports.set_payout_threshold(
        runtime.db,
        request.require_principal().sub,
        body.threshold_minor,
        runtime.settings.PAYOUT_DEFAULT_THRESHOLD_MINOR,
    )


# --- contributor: tax info and payout account ---------------------------------------------------


@api(
    bp,
    "GET",
    "contributor/tax-info",
    roles=CONTRIBUTOR,
    summary="The caller's tax profile (the tax id's last 4 characters only)",
    response_model=tax.TaxInfoOut,
    errors=(404,),
    tags=TAGS,
)
async def get_tax_info(request: ApiRequest) -> tax.TaxInfoOut:
    runtime = await get_runtime()
    found = await tax.get_tax_info(runtime.db, request.require_principal().sub)
    if found is None:
        raise Problem(404, "no-tax-info", "No tax information", "Submit a W-9, W-8BEN or W-8BEN-E first.")
    return found


@api(
    bp,
    "PUT",
    "contributor/tax-info",
    roles=CONTRIBUTOR,
    summary="Submit or replace the caller's tax form (validated per form; the tax id is encrypted at rest)",
    body_model=tax.TaxInfoIn,
    response_model=tax.TaxInfoOut,
    tags=TAGS,
)
async def put_tax_info(request: ApiRequest) -> tax.TaxInfoOut:
    runtime = await get_runtime()
    cipher = EnvelopeCipher(key_wrapper_from_settings(runtime.settings))
    return await tax.save_tax_info(runtime.db, cipher, request.require_principal().sub, request.body)


@api(
    bp,
    "GET",
    "contributor/payout-account",
    roles=CONTRIBUTOR,
    summary="The caller's Stripe Connect account and whether payouts are enabled",
    response_model=PayoutAccountOut,
    errors=(404,),
    tags=TAGS,
)
async def get_payout_account(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    found = await accounts.account_status(runtime.db, request.require_principal().sub)
    if found is None:
        raise Problem(404, "no-payout-account", "No payout account", "Create one with POST contributor/payout-account.")
    return found


@api(
    bp,
    "POST",
    "contributor/payout-account",
    roles=CONTRIBUTOR,
    summary="Create the caller's Stripe Connect Express account (once) and a fresh onboarding link",
    body_model=PayoutAccountIn,
    response_model=PayoutAccountOut,
    status=201,
    errors=(502, 503),
    tags=TAGS,
)
async def post_payout_account(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    body: PayoutAccountIn = request.body
    return await accounts.start_onboarding(
        runtime.db,
        get_payout_gateway(runtime.settings),
        request.require_principal().sub,
        body.country,
        body.email,
        runtime.settings.PAYOUT_ONBOARDING_RETURN_URL,
    )


@api(
    bp,
    "POST",
    "webhooks/stripe-connect",
    roles=ANYONE,
    summary="Stripe Connect webhook endpoint (account.updated; signature-verified, idempotent)",
    required_headers=("Stripe-Signature",),
    response_model=WebhookOut,
    tags=TAGS,
    rate_limited=False,  # Stripe's retries must never be throttled away; the signature is the gate
)
async def stripe_connect_webhook(request: ApiRequest) -> WebhookOut:
    runtime = await get_runtime()
    try:
        # The raw bytes, verified with the Connect endpoint's own secret (not the payments endpoint's).
        event = verify_webhook(
            request.http.get_body() or b"",
            request.headers.get("stripe-signature"),
            runtime.settings.STRIPE_CONNECT_WEBHOOK_SECRET,
        )
    except InvalidWebhook as exc:
        raise Problem(400, "invalid-webhook", "Invalid Stripe webhook", str(exc)) from None
    return WebhookOut(outcome=await accounts.apply_connect_event(runtime.db, event))


# --- admin: royalty tables and adjustments ------------------------------------------------------


@api(
    bp,
    "GET",
    "admin/royalty-tables",
    roles=ADMIN,
    summary="Every royalty table version, newest first",
    response_model=RoyaltyTablesOut,
    tags=TAGS,
)
async def get_royalty_tables(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return {"tables": await admin_ledger.list_royalty_tables(runtime.db)}


@api(
    bp,
    "POST",
    "admin/royalty-tables",
    roles=ADMIN,
    summary="Publish a new royalty table version for sales from its effective time on",
    body_model=RoyaltyTableIn,
    response_model=RoyaltyTableOut,
    status=201,
    errors=(409,),
    tags=TAGS,
)
async def post_royalty_table(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    body: RoyaltyTableIn = request.body
    try:
        table = LevelTable(levels=body.levels)
    except ValueError as exc:
        raise Problem(
            422,
            "invalid-royalty-table",
            "Invalid royalty table",
            "Check: levels.",
            errors=[{"name": "levels", "in": "body", "reason": "must start at download 1 and strictly increase"}],
        ) from exc
    return await admin_ledger.publish_royalty_table(
        runtime.db, table, body.effective_at, request.require_principal().sub, _now()
    )


@api(
    bp,
    "POST",
    "admin/ledger-adjustments",
    roles=ADMIN,
    summary="Credit or debit a contributor's balance with a reason (audited)",
    body_model=AdjustmentIn,
    response_model=LedgerEntryOut,
    status=201,
    tags=TAGS,
)
async def post_adjustment(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    body: AdjustmentIn = request.body
    if body.amount_minor == 0:
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            "Check: amount_minor.",
            errors=[{"name": "amount_minor", "in": "body", "reason": "must not be 0"}],
        )
    return await admin_ledger.adjust_balance(
        runtime.db,
        contributor_id=body.contributor_id,
        amount_minor=body.amount_minor,
        currency=body.currency,
        reason=body.reason,
        actor=request.require_principal().sub,
        now=_now(),
    )


# --- admin: payout batches ----------------------------------------------------------------------


@api(
    bp,
    "GET",
    "admin/payout-batches",
    roles=ADMIN,
    summary="Payout batches, newest first, with totals",
    response_model=BatchesOut,
    tags=TAGS,
)
async def get_batches(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return {"batches": await batches.list_batches(runtime.db)}


@api(
    bp,
    "POST",
    "admin/payout-batches",
    roles=ADMIN,
    summary="Create the draft batch of a period (200 with the existing one if the period has one)",
    body_model=BatchCreateIn,
    response_model=BatchOut,
    status=201,
    also_status=(200,),
    tags=TAGS,
)
async def post_batch(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    body: BatchCreateIn = request.body
    now = _now()
    batch, created = await batches.create_batch(
        runtime.db,
        period=body.period or batches.previous_period(now),
        actor=request.require_principal().sub,
        now=now,
        default_threshold_minor=runtime.settings.PAYOUT_DEFAULT_THRESHOLD_MINOR,
    )
    return ApiResponse(201 if created else 200, BatchOut.model_validate(batch))


@api(
    bp,
    "GET",
    "admin/payout-batches/{id:guid}",
    roles=ADMIN,
    summary="One batch: totals per currency and per exclusion reason, its payouts and exclusions",
    response_model=BatchOut,
    errors=(404,),
    tags=TAGS,
)
async def get_batch(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return await batches.get_batch(runtime.db, _batch_id(request))


@api(
    bp,
    "GET",
    "admin/payout-batches/{id:guid}/payouts",
    roles=ADMIN,
    summary="A batch's payouts, a page at a time by contributor (the detail view holds the first page)",
    query_model=BatchLinesQuery,
    response_model=BatchPayoutsPage,
    errors=(404,),
    tags=TAGS,
)
async def get_batch_payouts(request: ApiRequest) -> dict:
    return await _batch_lines(request, "payouts")


@api(
    bp,
    "GET",
    "admin/payout-batches/{id:guid}/exclusions",
    roles=ADMIN,
    summary="Who a batch left out and why, a page at a time by reason (the detail view holds the first page)",
    query_model=BatchLinesQuery,
    response_model=BatchExclusionsPage,
    errors=(404,),
    tags=TAGS,
)
async def get_batch_exclusions(request: ApiRequest) -> dict:
    return await _batch_lines(request, "exclusions")


async def _batch_lines(request: ApiRequest, kind: str) -> dict:
    runtime = await get_runtime()
    query: BatchLinesQuery = request.query
    return await batches.batch_lines(runtime.db, _batch_id(request), kind, cursor=query.cursor, per_page=query.per_page)


@api(
    bp,
    "POST",
    "admin/payout-batches/{id:guid}/approve",
    roles=ADMIN,
    summary="Approve a draft batch: each payout is transferred through Stripe Connect",
    response_model=BatchOut,
    errors=(404, 409),
    tags=TAGS,
)
async def approve_batch(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return await batches.approve_batch(runtime.db, _batch_id(request), request.require_principal().sub)


@api(
    bp,
    "POST",
    "admin/payout-batches/{id:guid}/cancel",
    roles=ADMIN,
    summary="Cancel a draft batch (its period may then get a new one)",
    response_model=BatchOut,
    errors=(404, 409),
    tags=TAGS,
)
async def cancel_batch(request: ApiRequest) -> dict:
    runtime = await get_runtime()
    return await batches.cancel_batch(runtime.db, _batch_id(request), request.require_principal().sub)
