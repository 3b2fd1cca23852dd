"""Nothing is lost when things break: devhost as a real process on the real embedded stack, with uploads and
purchases flowing, while the host is SIGKILLed, Postgres restarts, Azurite and the Stripe stand-in go away,
and poison messages reach every subscription. Each case asserts the end state from the database and blob
storage (tests/e2e/fault_stack.py). Over the module more than 200 uploads go through.

The cases share one stack and run in file order, each starting from the quiet state the previous one
left (every upload done), so each case's end-state checks cover everything uploaded so far.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import time

import httpx
import pytest

from devhost.app_loader import load_app
from devhost.stripe_standin.webhooks import signature_header
from shared.bus.topology import TOPICS
from tests.e2e.fault_stack import (
    Stack,
    Stream,
    assert_paid_orders_have_exactly_their_licences,
    assert_processed_exactly_once,
    build_stack,
    buyer,
    join_streams,
    pay,
    run_streams,
    uploader,
    wait_processed,
)

# Each case waits for every upload so far to finish; the first one also starts the stack.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost"), pytest.mark.timeout(600)]

CONTRIBUTOR = "carol-faults"
_seeds = itertools.count(1)


class Ledger:
    """What the clients were told succeeded, for the end-state checks."""

    def __init__(self) -> None:
        self.uploads: list[str] = []
        self.paid_orders: list[str] = []
        self.for_sale: list[str] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("faults-var")
    stack = build_stack(
        var_dir,
        # Small photos (0.31 MP) keep 200+ uploads quick; the rules are otherwise the production ones.
        MIN_UPLOAD_MEGAPIXELS="0.25",
        MODERATION_MIN_MEGAPIXELS="0.25",
        LOG_LEVEL="INFO",
    )
    try:
        stack.start_host()
        yield stack
    finally:
        stack.stop_host()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            stack.stop_postgres()  # a restarted server is no longer pgserver's to stop
        stack.stop_stripe()
        stack.stop_azurite()


@pytest.fixture(scope="module")
def ledger(stack: Stack) -> Ledger:
    """A first few uploads, approved, so that buyers have something to buy from the start."""
    ledger = Ledger()
    warm_up = Stream("warm-up uploads", _next_seeds(8), uploader(stack, CONTRIBUTOR))
    run_streams(warm_up)
    join_streams(stack, warm_up, timeout=120)
    wait_processed(stack, warm_up.done, timeout=180)
    ledger.uploads += warm_up.done
    ledger.for_sale += [
        str(r["image_id"])
        for r in stack.sql("select image_id from checkout.catalogue where image_id = any($1::uuid[])", warm_up.done)
    ]
    assert ledger.for_sale, "no warm-up image reached the checkout catalogue"
    return ledger


def _next_seeds(n: int) -> list[int]:
    return [next(_seeds) for _ in range(n)]


def _purchases(stack: Stack, ledger: Ledger, name: str, n: int) -> Stream:
    images = [ledger.for_sale[i % len(ledger.for_sale)] for i in range(n)]
    return Stream(name, images, _one_buyer_each(stack, name))


def _one_buyer_each(stack: Stack, name: str):
    counter = itertools.count()

    def purchase(client: httpx.Client, image_id: str) -> str:
        return buyer(stack, f"{name.replace(' ', '-')}-{next(counter)}")(client, image_id)

    return purchase


def _uploads_in_processing(stack: Stack, at_least: int) -> bool:
    rows = stack.sql("select count(*) as n from processing.results")
    return rows[0]["n"] >= at_least


def _settle(stack: Stack, ledger: Ledger, uploads: Stream, purchases: Stream | None = None) -> None:
    join_streams(stack, uploads, *([purchases] if purchases else []), timeout=300)
    ledger.uploads += uploads.done
    ledger.paid_orders += purchases.done if purchases else []
    wait_processed(stack, ledger.uploads, timeout=300)
    stack.until("paid orders licensed", lambda: _all_paid(stack, ledger.paid_orders), timeout=90)
    assert_processed_exactly_once(stack, ledger.uploads)
    assert_paid_orders_have_exactly_their_licences(stack, ledger.paid_orders)


def _all_paid(stack: Stack, order_ids: list[str]) -> bool:
    rows = stack.sql(
        "select count(*) as n from checkout.orders where id = any($1::uuid[]) and status = 'paid'", order_ids
    )
    return rows[0]["n"] == len(order_ids)


# --- the cases -------------------------------------------------------------------------------


def test_a_host_killed_mid_processing_comes_back_and_every_upload_and_order_completes_exactly_once(stack, ledger):
    processed_before = stack.sql("select count(*) as n from processing.results")[0]["n"]
    uploads = Stream("uploads", _next_seeds(80), uploader(stack, CONTRIBUTOR))
    purchases = _purchases(stack, ledger, "kill buyer", 6)
    run_streams(uploads, purchases)
    stack.until("processing under way", lambda: _uploads_in_processing(stack, processed_before + 10), timeout=120)

    stack.kill_host()
    stack.start_host()

    _settle(stack, ledger, uploads, purchases)


def test_postgres_restarting_mid_flow_is_reported_by_health_and_the_host_recovers_without_a_restart(stack, ledger):
    host_pid = stack.host.pid
    processed_before = stack.sql("select count(*) as n from processing.results")[0]["n"]
    uploads = Stream("uploads", _next_seeds(60), uploader(stack, CONTRIBUTOR))
    purchases = _purchases(stack, ledger, "pg buyer", 6)
    run_streams(uploads, purchases)
    stack.until("processing under way", lambda: _uploads_in_processing(stack, processed_before + 10), timeout=120)

    stack.stop_postgres()
    outage = stack.until("health reporting the outage", lambda: _health(stack, 503), timeout=15)
    assert outage["checks"]["database"]["ok"] is False and outage["status"] == "degraded"
    time.sleep(5)  # a while, with the streams knocking
    assert _health(stack, 503), "the outage is reported while it lasts"
    stack.start_postgres()

    stack.until("health back to ok", lambda: _health(stack, 200), timeout=60)
    assert stack.host.poll() is None and stack.host.pid == host_pid  # the pools reconnected by themselves
    _settle(stack, ledger, uploads, purchases)


def test_storage_down_for_30_s_uploads_are_refused_with_503_and_processing_completes_after(stack, ledger):
    processed_before = stack.sql("select count(*) as n from processing.results")[0]["n"]
    uploads = Stream("uploads", _next_seeds(60), uploader(stack, CONTRIBUTOR))
    run_streams(uploads)
    stack.until("processing under way", lambda: _uploads_in_processing(stack, processed_before + 10), timeout=120)

    stack.stop_azurite()
    down_at = time.monotonic()
    started = time.monotonic()
    refused = httpx.post(
        f"{stack.base}/contributor/uploads",
        headers=stack.auth("contributor", CONTRIBUTOR),
        json={"file_name": "x.jpg", "size_bytes": 20_000, "content_type": "image/jpeg"},
        timeout=30,
    )
    assert time.monotonic() - started < 10, "a clear answer, not a hang"
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers.get("retry-after")
    assert (
        stack.until("health reporting storage down", lambda: _health(stack, 503), timeout=15)["checks"]["blob_storage"][
            "ok"
        ]
        is False
    )
    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    stack.start_azurite()

    _settle(stack, ledger, uploads)
    assert stack.sql("select count(*) as n from bus.messages where state = 'deadlettered'")[0]["n"] == 0


def test_stripe_down_at_checkout_is_a_503_the_order_stays_pending_and_a_retry_pays_it(stack, ledger):
    headers = stack.auth("buyer", "dora-faults")
    with httpx.Client(timeout=60) as client:
        added = client.post(f"{stack.base}/cart/items", headers=headers, json={"image_id": ledger.for_sale[0]})
        assert added.status_code in (200, 201), added.text
        stack.stop_stripe()
        started = time.monotonic()
        refused = client.post(f"{stack.base}/checkout", headers=headers)
        assert time.monotonic() - started < 20, "a clear answer, not a hang"
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"].endswith("/payments-unavailable") and refused.headers.get("retry-after")
        (order,) = stack.sql("select id::text as id, status from checkout.orders where buyer_id = 'dora-faults'")
        assert order["status"] == "pending"

        stack.start_stripe()
        retried = client.post(f"{stack.base}/checkout", headers=headers)
        assert retried.status_code == 201, retried.text
        assert retried.json()["order_id"] == order["id"]  # the same order, not a second one
        pay(client, retried.json()["checkout_url"])
    ledger.paid_orders.append(order["id"])
    stack.until("the order paid", lambda: _all_paid(stack, [order["id"]]), timeout=60)
    assert_paid_orders_have_exactly_their_licences(stack, ledger.paid_orders)


def test_a_webhook_arriving_while_the_database_is_down_gets_a_5xx_and_its_retry_takes_effect_once(stack, ledger):
    headers = stack.auth("buyer", "eli-faults")
    with httpx.Client(timeout=60) as client:
        added = client.post(f"{stack.base}/cart/items", headers=headers, json={"image_id": ledger.for_sale[-1]})
        assert added.status_code in (200, 201), added.text
        checkout = client.post(f"{stack.base}/checkout", headers=headers)
        assert checkout.status_code == 201, checkout.text
        order_id = checkout.json()["order_id"]

        stack.stop_postgres()
        try:
            pay(client, checkout.json()["checkout_url"])  # Stripe's side works: it sends the webhook now
            event = _completed_event(stack, client, order_id)
            payload = json.dumps(event).encode()
            answered = client.post(
                f"{stack.base}/webhooks/stripe",
                content=payload,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(payload, stack.env["STRIPE_WEBHOOK_SECRET"], int(time.time())),
                },
            )
            assert 500 <= answered.status_code < 600, answered.text  # so Stripe retries
        finally:
            stack.start_postgres()

    ledger.paid_orders.append(order_id)
    stack.until("the stand-in's retry paying the order", lambda: _all_paid(stack, [order_id]), timeout=60)
    (applied,) = stack.sql("select outcome from checkout.stripe_events where event_id = $1", event["id"])
    assert applied["outcome"] != "duplicate"
    assert_paid_orders_have_exactly_their_licences(stack, ledger.paid_orders)


def test_a_poison_message_in_each_subscription_is_dead_lettered_and_an_admin_replays_or_discards_it(stack, ledger):
    consumed = sorted({(fn.topic, fn.subscription) for fn in load_app().topics})
    poison = {}
    for topic, subscription in consumed:
        subject = TOPICS[topic].subscription(subscription).subjects[0]
        message_id = f"poison-{topic}-{subscription}"
        poison[(topic, subscription)] = message_id
        stack.sql(
            "insert into bus.outbox (id, topic, subject, body) values ($1, $2, $3, $4::jsonb)",
            message_id,
            topic,
            subject,
            json.dumps({"poison": True, "image_id": "not-an-id"}),
        )

    def all_dead() -> list:
        rows = stack.sql(
            "select topic, subscription, message_id, dead_letter_reason, dead_letter_description from bus.messages "
            "where state = 'deadlettered' and message_id = any($1::text[])",
            list(poison.values()),
        )
        mine = [r for r in rows if poison.get((r["topic"], r["subscription"])) == r["message_id"]]
        return mine if len(mine) == len(poison) else []

    dead = stack.until("every subscription dead-lettering its poison message", all_dead, timeout=120)
    for row in dead:
        assert row["dead_letter_reason"] == "MaxDeliveryCountExceeded"
        assert row["dead_letter_description"], "the last error is kept as the description"

    admin = stack.auth("admin", "ada-faults")
    listed = httpx.get(f"{stack.base}/admin/dead-letters", headers=admin, params={"limit": 500}, timeout=30)
    assert listed.status_code == 200, listed.text
    # A subject may fan out to several subscriptions: each copy is dead-lettered in its own.
    letters = [i for i in listed.json()["items"] if i["message_id"].startswith("poison-")]
    assert {(i["topic"], i["subscription"]) for i in letters} == set(poison)
    assert all(i["reason"] == "MaxDeliveryCountExceeded" and i["description"] for i in letters)
    only = httpx.get(
        f"{stack.base}/admin/dead-letters", headers=admin, params={"subscription": "processing"}, timeout=30
    ).json()["items"]
    assert {(i["topic"], i["subscription"]) for i in only} == {("images", "processing")}

    (replayed,) = [i for i in letters if (i["topic"], i["subscription"]) == ("platform", "health")]
    response = httpx.post(f"{stack.base}/admin/dead-letters/{replayed['id']}/replay", headers=admin, timeout=30)
    assert response.status_code == 200, response.text

    def dead_again() -> bool:  # delivered again from scratch, failed again, dead-lettered again
        rows = stack.sql(
            "select dead_lettered_at > now() - interval '60 seconds' as fresh from bus.messages "
            "where message_id = $1 and state = 'deadlettered'",
            replayed["message_id"],
        )
        return bool(rows) and rows[0]["fresh"]

    stack.until("the replayed message redelivered", dead_again, timeout=60)
    discarded = [letter for letter in letters if letter is not replayed]
    for letter in discarded:
        response = httpx.post(f"{stack.base}/admin/dead-letters/{letter['id']}/discard", headers=admin, timeout=30)
        assert response.status_code == 200, response.text
    left = stack.sql("select topic, subscription, message_id from bus.messages where message_id like 'poison-%'")
    assert [r["message_id"] for r in left if (r["topic"], r["subscription"]) in poison] == [replayed["message_id"]]
    expected = [("dead_letter.replay", "ada-faults", replayed["id"])] + [
        ("dead_letter.discard", "ada-faults", letter["id"]) for letter in discarded
    ]

    def audited() -> list:  # each action in the one audit log, filed there by moderation from the outbox event
        rows = stack.sql(
            "select action, actor, target_id from moderation.audit_log where actor = 'ada-faults' order by id"
        )
        found = [(r["action"], r["actor"], r["target_id"]) for r in rows]
        return found if len(found) >= len(expected) else []

    assert stack.until("every dead-letter action in the audit log", audited, timeout=60) == expected


# --- helpers -----------------------------------------------------------------------------------


def _health(stack: Stack, status: int) -> dict | None:
    response = httpx.get(f"{stack.base}/health", timeout=10)
    return response.json() if response.status_code == status else None


def _completed_event(stack: Stack, client: httpx.Client, order_id: str) -> dict:
    def find() -> dict | None:
        events = client.get(
            f"{stack.stripe.base_url}/v1/events",
            params={"type": "checkout.session.completed", "limit": 100},
            headers={"Authorization": f"Bearer {stack.env['STRIPE_SECRET_KEY']}"},
        ).json()["data"]
        return next((e for e in events if e["data"]["object"]["metadata"].get("order_id") == order_id), None)

    return stack.until("the stand-in's checkout.session.completed", find, timeout=15)
