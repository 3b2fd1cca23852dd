"""Payouts through its HTTP routes, in-process: the contributor's earnings, statement, level, payouts and
payout account; the Connect webhook; the admin's batch from creation to paid over the bus."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from functions.payouts.earnings import handle_orders_message
from shared.payments import set_payout_gateway
from tests.fixtures.checkout import sign_webhook, stripe_event
from tests.fixtures.payouts import HOLD, download, orders_message, refund, sale

NOW = datetime.now(UTC)


@pytest.fixture
def connect(fake_connect):
    set_payout_gateway(fake_connect)
    yield fake_connect
    set_payout_gateway(None)


async def _sell(api_app, event):
    assert await handle_orders_message(api_app.runtime.db, orders_message(event), HOLD) != "duplicate"


def _as(api_app, sub="contributor-1", role="contributor"):
    return api_app.token(sub, role)


async def test_earnings_are_grouped_by_month_day_or_image_per_licence_type(api_app):
    year = NOW.year
    nov, dec = datetime(year - 1, 11, 3, 10, tzinfo=UTC), datetime(year - 1, 12, 24, 18, tzinfo=UTC)
    first = sale(amount_minor=1000, at=nov, lines=2)
    await _sell(api_app, first)
    await _sell(api_app, sale(amount_minor=5000, at=dec, license_type="enhanced"))
    await _sell(api_app, download(plan_amount_minor=4900, plan_downloads=10, at=dec))
    await _sell(api_app, refund(first))
    await _sell(api_app, sale("contributor-2", amount_minor=9999, at=dec))  # someone else's
    query = {"from": f"{year - 1}-01-01T00:00:00Z", "to": f"{year}-01-01T00:00:00Z"}

    by_month = await api_app.request(
        "GET", "contributor/earnings", token=_as(api_app), query={**query, "group_by": "month"}
    )
    assert by_month.status == 200, by_month.body
    body = by_month.json()
    assert [
        (g["key"], [(x["license_type"], x["downloads"], x["refunds"], x["earned_minor"]) for x in g["lines"]])
        for g in body["groups"]
    ] == [
        (f"{year - 1}-11", [("standard", 2, 0, 300)]),
        (f"{year - 1}-12", [("enhanced", 1, 0, 750), ("standard", 1, 0, 73)]),
    ]
    assert {(t["license_type"], t["earned_minor"]) for t in body["totals"]} == {("enhanced", 750), ("standard", 373)}
    # The refund is booked when it happens (this year), not back-dated into the month of the sale.
    this_year = await api_app.request("GET", "contributor/earnings", token=_as(api_app), query={"group_by": "month"})
    assert [(x["downloads"], x["refunds"], x["earned_minor"]) for x in this_year.json()["totals"]] == [(0, 2, -300)]
    assert body["balances"] == [{"currency": "USD", "balance_minor": 823, "payable_minor": 823, "held_minor": 0}]

    by_day = await api_app.request(
        "GET", "contributor/earnings", token=_as(api_app), query={**query, "group_by": "day"}
    )
    assert [g["key"] for g in by_day.json()["groups"]] == [f"{year - 1}-11-03", f"{year - 1}-12-24"]

    by_image = await api_app.request(
        "GET", "contributor/earnings", token=_as(api_app), query={**query, "group_by": "image"}
    )
    assert len(by_image.json()["groups"]) == 4  # the two images of the refunded order, the enhanced sale, the download

    only_december = await api_app.request(
        "GET",
        "contributor/earnings",
        token=_as(api_app),
        query={"from": dec.isoformat(), "to": query["to"], "group_by": "month"},
    )
    assert [g["key"] for g in only_december.json()["groups"]] == [f"{year - 1}-12"]


async def test_another_contributors_image_earnings_are_404(api_app):
    theirs = sale("contributor-2", at=NOW)
    await _sell(api_app, theirs)
    image = str(theirs.lines[0].image_id)
    mine = await api_app.request(
        "GET", "contributor/earnings", token=_as(api_app, "contributor-2"), query={"image_id": image}
    )
    assert mine.status == 200 and mine.json()["groups"][0]["lines"][0]["downloads"] == 1
    other = await api_app.request("GET", "contributor/earnings", token=_as(api_app), query={"image_id": image})
    assert other.status == 404 and other.is_problem


async def test_the_statement_csv_lists_every_entry_of_the_period(api_app):
    order = sale(amount_minor=1999, at=NOW - timedelta(days=2))
    await _sell(api_app, order)
    await _sell(api_app, refund(order))
    response = await api_app.request("GET", "contributor/earnings.csv", token=_as(api_app))
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert [(r["kind"], r["amount_minor"], r["royalty_rate_bp"]) for r in rows] == [
        ("earning", "299", "1500"),
        ("reversal", "-299", "1500"),
    ]
    assert rows[0]["order_id"] == str(order.order_id) and rows[0]["occurred_at"].endswith("Z")


async def test_the_level_shows_progress_to_the_next(api_app):
    await _sell(api_app, sale(amount_minor=100, lines=120, at=NOW))
    response = await api_app.request("GET", "contributor/level", token=_as(api_app))
    assert response.json() | {"resets_at": None} == {
        "year": NOW.year,
        "downloads_this_year": 120,
        "level": 2,
        "levels": 6,
        "rate_bp": 2000,
        "next_level_rate_bp": 2500,
        "next_level_from_download": 251,
        "downloads_to_next_level": 130,
        "royalty_table_version": 1,
        "resets_at": None,
    }


async def test_bad_earnings_queries_are_400(api_app):
    for query in (
        {"group_by": "week"},
        {"from": "yesterday"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ):
        response = await api_app.request("GET", "contributor/earnings", token=_as(api_app), query=query)
        assert response.status == 400 and response.is_problem, query


async def test_a_payout_account_gets_an_onboarding_link_and_the_connect_webhook_enables_payouts(api_app, connect):
    created = await api_app.request(
        "POST", "contributor/payout-account", token=_as(api_app), json_body={"country": "US"}
    )
    assert created.status == 201, created.body
    account = created.json()
    assert account["onboarding_url"].startswith("https://") and account["payouts_enabled"] is False
    again = await api_app.request("POST", "contributor/payout-account", token=_as(api_app), json_body={"country": "US"})
    assert again.json()["account_id"] == account["account_id"]  # one account per contributor

    payload = json.dumps(
        stripe_event(
            "account.updated",
            {"id": account["account_id"], "object": "account", "payouts_enabled": True, "details_submitted": True},
        )
    ).encode()
    secret = api_app.settings.STRIPE_CONNECT_WEBHOOK_SECRET
    headers = {"Content-Type": "application/json"}
    forged = await api_app.request(
        "POST",
        "webhooks/stripe-connect",
        body=payload,
        headers={**headers, "Stripe-Signature": sign_webhook(payload, "whsec_other")},
    )
    assert forged.status == 400 and forged.is_problem
    payments_secret = await api_app.request(  # signed for the payments endpoint, not the Connect one
        "POST",
        "webhooks/stripe-connect",
        body=payload,
        headers={**headers, "Stripe-Signature": sign_webhook(payload, api_app.settings.STRIPE_WEBHOOK_SECRET)},
    )
    assert payments_secret.status == 400
    status = await api_app.request("GET", "contributor/payout-account", token=_as(api_app))
    assert status.json()["payouts_enabled"] is False

    signed = {**headers, "Stripe-Signature": sign_webhook(payload, secret)}
    applied = await api_app.request("POST", "webhooks/stripe-connect", body=payload, headers=signed)
    assert (applied.status, applied.json()) == (200, {"outcome": "payouts-enabled"})
    repeated = await api_app.request("POST", "webhooks/stripe-connect", body=payload, headers=signed)
    assert repeated.json() == {"outcome": "duplicate"}
    status = await api_app.request("GET", "contributor/payout-account", token=_as(api_app))
    assert status.json()["payouts_enabled"] is True and status.json()["onboarding_url"] is None


async def _eventually(check, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def test_an_admin_batch_is_created_approved_and_paid_through_the_bus(api_app, connect):
    admin = _as(api_app, "admin-1", "admin")
    await _sell(api_app, sale(amount_minor=40000, at=NOW - HOLD - timedelta(days=1)))  # 60.00 earned
    w9 = {
        "form_type": "W-9",
        "legal_name": "Alice Example",
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "country": "US",
        "tin": "287-65-4321",
    }
    assert (await api_app.request("PUT", "contributor/tax-info", token=_as(api_app), json_body=w9)).status == 200
    account = (
        await api_app.request("POST", "contributor/payout-account", token=_as(api_app), json_body={"country": "US"})
    ).json()
    await api_app.runtime.db.pool.execute(
        "update payouts.connect_accounts set payouts_enabled = true where account_id = $1", account["account_id"]
    )

    created = await api_app.request("POST", "admin/payout-batches", token=admin, json_body={"period": "2026-11"})
    assert created.status == 201, created.body
    batch = created.json()
    assert batch["totals"] == [
        {"currency": "USD", "payouts": 1, "amount_minor": 6000, "net_paid_minor": 0, "withholding_minor": 0}
    ]
    same = await api_app.request("POST", "admin/payout-batches", token=admin, json_body={"period": "2026-11"})
    assert (same.status, same.json()["id"]) == (200, batch["id"])
    listed = await api_app.request("GET", "admin/payout-batches", token=admin)
    assert [b["id"] for b in listed.json()["batches"]] == [batch["id"]] and listed.json()["batches"][0][
        "payouts"
    ] is None
    assert (await api_app.request("GET", "contributor/payouts", token=_as(api_app))).json() == {
        "payouts": []
    }  # a draft

    api_app.start_subscription("payouts_transfer")
    approved = await api_app.request("POST", f"admin/payout-batches/{batch['id']}/approve", token=admin)
    assert approved.status == 200 and approved.json()["status"] == "approved"
    again = await api_app.request("POST", f"admin/payout-batches/{batch['id']}/approve", token=admin)
    assert again.status == 409 and again.is_problem

    async def paid():
        response = await api_app.request("GET", "contributor/payouts", token=_as(api_app))
        payouts = response.json()["payouts"]
        return payouts if payouts and payouts[0]["status"] == "paid" else None

    (payout,) = await _eventually(paid)
    assert (payout["net_minor"], payout["withholding_minor"], payout["period"]) == (6000, 0, "2026-11")
    assert list(connect.transfers) == [f"payout-{batch['id']}-contributor-1"]
    one = await api_app.request("GET", f"contributor/payouts/{payout['id']}", token=_as(api_app))
    assert one.json() == payout
    other = await api_app.request("GET", f"contributor/payouts/{payout['id']}", token=_as(api_app, "contributor-2"))
    assert other.status == 404
    earnings = await api_app.request("GET", "contributor/earnings", token=_as(api_app))
    assert earnings.json()["balances"][0]["payable_minor"] == 0
    detail = await api_app.request("GET", f"admin/payout-batches/{batch['id']}", token=admin)
    assert detail.json()["payout_statuses"] == {"paid": 1}
    assert detail.json()["totals"][0]["net_paid_minor"] == 6000


async def test_admin_royalty_tables_and_adjustments_through_the_api(api_app):
    admin = _as(api_app, "admin-1", "admin")
    effective = (NOW + timedelta(days=30)).isoformat()
    levels = [{"from_download": 1, "rate_bp": 2000}, {"from_download": 51, "rate_bp": 3000}]
    published = await api_app.request(
        "POST", "admin/royalty-tables", token=admin, json_body={"effective_at": effective, "levels": levels}
    )
    assert published.status == 201 and published.json()["version"] == 2
    bad = await api_app.request(
        "POST",
        "admin/royalty-tables",
        token=admin,
        json_body={"effective_at": effective, "levels": [{"from_download": 5, "rate_bp": 1}]},
    )
    assert bad.status == 422 and bad.json()["errors"][0]["name"] == "levels"
    tables = (await api_app.request("GET", "admin/royalty-tables", token=admin)).json()["tables"]
    assert [t["version"] for t in tables] == [2, 1]

    adjusted = await api_app.request(
        "POST",
        "admin/ledger-adjustments",
        token=admin,
        json_body={"contributor_id": "contributor-1", "amount_minor": 250, "currency": "USD", "reason": "goodwill"},
    )
    assert adjusted.status == 201 and adjusted.json()["kind"] == "adjustment"
    zero = await api_app.request(
        "POST",
        "admin/ledger-adjustments",
        token=admin,
        json_body={"contributor_id": "contributor-1", "amount_minor": 0, "currency": "USD", "reason": "nothing"},
    )
    assert zero.status == 422
    mine = await api_app.request("GET", "contributor/earnings", token=_as(api_app))
    assert mine.json()["balances"][0]["payable_minor"] == 250
