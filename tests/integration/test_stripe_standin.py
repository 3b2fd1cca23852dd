"""The local Stripe stand-in, driven by the real `stripe` SDK with only the API base changed.

Webhooks go to a small HTTP receiver in the test and are verified with the SDK's own
`stripe.Webhook.construct_event`, so a signature that differs from Stripe's scheme fails here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
import stripe

from devhost.stripe_standin import StripeStandin
from tests.fixtures.webhook_receiver import WebhookReceiver

SECRET_KEY = "sk_test_standin_tests"
WEBHOOK_SECRET = "whsec_standin_tests"
CONNECT_WEBHOOK_SECRET = "whsec_standin_connect_tests"


@pytest.fixture
def receiver():
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    yield receiver
    receiver.close()


@pytest.fixture
def connect_receiver():
    receiver = WebhookReceiver(CONNECT_WEBHOOK_SECRET, "/api/webhooks/stripe-connect")
    yield receiver
    receiver.close()


@pytest.fixture
def standin(receiver, connect_receiver):
    with StripeStandin(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_urls=[receiver.url],
        connect_webhook_secret=CONNECT_WEBHOOK_SECRET,
        connect_webhook_urls=[connect_receiver.url],
        retry_delays=(0.05, 0.1, 0.2),
    ) as running:
        yield running


@pytest.fixture
def client(standin) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": standin.base_url}, max_network_retries=0)


def line(name: str, unit_amount: int | str, quantity: int | None = 1, currency: str = "usd", **price_data) -> dict:
    item: dict = {
        "price_data": {"currency": currency, "unit_amount": unit_amount, "product_data": {"name": name}, **price_data}
    }
    if quantity is not None:
        item["quantity"] = quantity
    return item


def payment_session(client: stripe.StripeClient, **extra) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [line("Coffee at dawn", 1500), line("Harbour, enhanced", 4900, quantity=2)],
            "metadata": {"order_id": "ord_42"},
            "client_reference_id": "buyer-7",
            "customer_email": "buyer@example.test",
            "success_url": "http://shop.test/thanks?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://shop.test/cart",
            **extra,
        }
    )


def subscription_session(client: stripe.StripeClient) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [line("Basic: 10 images a month", 2900, currency="eur", recurring={"interval": "month"})],
            "subscription_data": {"metadata": {"plan": "basic-10", "buyer": "buyer-7"}},
            "client_reference_id": "buyer-7",
            "success_url": "http://shop.test/subscribed",
            "cancel_url": "http://shop.test/plans",
        }
    )


def pay(session: stripe.checkout.Session) -> httpx.Response:
    return httpx.post(f"{session.url}/pay", follow_redirects=False)


def advance(client: stripe.StripeClient, subscription_id: str) -> stripe.Subscription:
    raw = client.raw_request("post", f"/v1/test_helpers/subscriptions/{subscription_id}/advance")
    return client.deserialize(raw, api_mode="V1")


# --- checkout sessions ----------------------------------------------------------------------------------------------


def test_a_payment_session_is_created_open_and_unpaid_with_the_totals_of_its_lines(client, standin):
    session = payment_session(client)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"{standin.base_url}/pay/{session.id}"
    assert (session.amount_total, session.currency) == (1500 + 2 * 4900, "usd")
    assert (session.status, session.payment_status, session.payment_intent) == ("open", "unpaid", None)
    assert session.metadata.to_dict() == {"order_id": "ord_42"}
    assert session.client_reference_id == "buyer-7"
    assert session.expires_at > session.created

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()
    lines = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(li.description, li.quantity, li.amount_total) for li in lines.data] == [
        ("Coffee at dawn", 1, 1500),
        ("Harbour, enhanced", 2, 9800),
    ]
    expanded = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})
    assert [li.price.unit_amount for li in expanded.line_items.data] == [1500, 4900]


def test_paying_on_the_hosted_page_completes_the_session_and_delivers_a_signed_webhook(client, receiver):
    session = payment_session(client)

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Coffee at dawn" in page.text and "Harbour, enhanced" in page.text and "113.00 USD" in page.text

    answer = pay(session)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"http://shop.test/thanks?session={session.id}"

    paid = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]})
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    assert paid.payment_intent.status == "succeeded"
    assert paid.payment_intent.amount_received == session.amount_total
    assert paid.customer_details.email == "buyer@example.test"

    [event] = receiver.wait_for(1)
    assert event.type == "checkout.session.completed"
    assert event.object == "event" and event.livemode is False and event.api_version
    assert event.id.startswith("evt_")
    assert event.data.object.id == session.id
    assert event.data.object.payment_status == "paid"
    assert event.data.object.metadata["order_id"] == "ord_42"
    assert client.v1.events.retrieve(event.id).to_dict() == event.to_dict()


def test_webhook_signatures_follow_stripes_scheme_and_fail_with_another_secret(client, receiver):
    pay(payment_session(client))
    receiver.wait_for(1)
    [(headers, body)] = receiver.deliveries

    timestamp, signature = (part.split("=", 1)[1] for part in headers["Stripe-Signature"].split(","))
    assert abs(int(timestamp) - time.time()) < 300
    assert stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", WEBHOOK_SECRET) == signature
    with pytest.raises(stripe.SignatureVerificationError):
        receiver.events(secret="whsec_someone_else")


def test_paying_twice_changes_nothing_the_second_time(client, receiver):
    session = payment_session(client)
    pay(session)
    first = client.v1.checkout.sessions.retrieve(session.id)

    again = pay(session)

    assert again.status_code == 303
    assert client.v1.checkout.sessions.retrieve(session.id).payment_intent == first.payment_intent
    client.v1.refunds.create({"payment_intent": first.payment_intent})  # same stream: arrives after any repeat
    assert [e.type for e in receiver.wait_for(2)] == ["checkout.session.completed", "charge.refunded"]


def test_cancel_returns_the_buyer_to_the_cancel_url_and_leaves_the_session_open(client, receiver):
    session = payment_session(client)

    answer = httpx.post(f"{session.url}/cancel")

    assert answer.status_code == 303
    assert answer.headers["location"] == "http://shop.test/cart"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    client.v1.checkout.sessions.expire(session.id)
    assert [e.type for e in receiver.wait_for(1)] == ["checkout.session.expired"]


def test_an_expired_session_cannot_be_paid_and_its_expiry_is_announced(client, receiver):
    session = payment_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert (expired.status, expired.url) == ("expired", None)
    assert pay(session).status_code == 410
    [event] = receiver.wait_for(1)
    assert event.type == "checkout.session.expired"
    assert event.data.object.id == session.id
    with pytest.raises(stripe.InvalidRequestError, match="can be expired"):
        client.v1.checkout.sessions.expire(session.id)


def test_the_same_idempotency_key_returns_the_same_session(client):
    key = "order-ord_42"
    params = {
        "mode": "payment",
        "line_items": [line("Coffee", 1500)],
        "success_url": "http://shop.test/thanks",
    }

    first = client.v1.checkout.sessions.create(params, {"idempotency_key": key})
    second = client.v1.checkout.sessions.create(params, {"idempotency_key": key})
    other = client.v1.checkout.sessions.create(params, {"idempotency_key": "order-ord_43"})

    assert second.id == first.id
    assert other.id != first.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create({**params, "client_reference_id": "someone"}, {"idempotency_key": key})


# --- errors ---------------------------------------------------------------------------------------------------------


def test_a_wrong_api_key_is_refused_with_a_stripe_shaped_401(standin):
    stranger = stripe.StripeClient("sk_test_not_ours", base_addresses={"api": standin.base_url})

    with pytest.raises(stripe.AuthenticationError) as refused:
        stranger.v1.checkout.sessions.list()

    assert refused.value.http_status == 401
    assert refused.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key" in refused.value.json_body["error"]["message"]
    anonymous = httpx.get(f"{standin.base_url}/v1/checkout/sessions")
    assert anonymous.status_code == 401
    assert "did not provide an API key" in anonymous.json()["error"]["message"]


def test_the_secret_key_is_also_accepted_as_the_basic_auth_user(standin):
    answer = httpx.get(f"{standin.base_url}/v1/checkout/sessions", auth=(SECRET_KEY, ""))

    assert answer.status_code == 200
    assert answer.json()["object"] == "list"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"line_items": [line("x", 100, quantity=None)]}, "line_items[0][quantity]"),
        ({"line_items": [line("x", "ten")]}, "line_items[0][price_data][unit_amount]"),
        ({"line_items": [line("x", 100, recurring={"interval": "month"})]}, "line_items[0][price_data][recurring]"),
        ({"line_items": [{"price": "price_unknown", "quantity": 1}]}, "line_items[0][price]"),
        ({"mode": "setup"}, "mode"),
        ({"success_url": None}, "success_url"),
        ({"expires_at": int(time.time()) + 60}, "expires_at"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_session_parameters_are_refused_naming_the_parameter(client, change, param):
    before = client.v1.checkout.sessions.list().data

    with pytest.raises(stripe.InvalidRequestError) as refused:
        payment_session(client, **change)

    assert refused.value.http_status == 400
    assert refused.value.param == param
    assert client.v1.checkout.sessions.list().data == before


def test_line_items_in_different_currencies_are_refused(client):
    with pytest.raises(stripe.InvalidRequestError, match="same currency"):
        payment_session(
            client,
            line_items=[line("a", 100, currency="usd"), line("b", 100, currency="eur")],
        )


def test_an_unknown_object_is_a_404_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.retrieve("cs_test_nothing_here")

    assert refused.value.http_status == 404
    assert refused.value.code == "resource_missing"


# --- refunds --------------------------------------------------------------------------------------------------------


def test_refunds_update_the_charge_and_announce_charge_refunded(client, receiver):
    session = payment_session(client)
    pay(session)
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    receiver.wait_for(1)

    partial = client.v1.refunds.create({"payment_intent": intent_id, "amount": 1500, "reason": "requested_by_customer"})
    rest = client.v1.refunds.create({"payment_intent": intent_id})

    assert (partial.object, partial.status, partial.amount) == ("refund", "succeeded", 1500)
    assert rest.amount == session.amount_total - 1500
    charge = client.v1.charges.retrieve(partial.charge)
    assert (charge.amount_refunded, charge.refunded, charge.payment_intent) == (session.amount_total, True, intent_id)
    events = receiver.wait_for(3)
    assert [e.type for e in events] == ["checkout.session.completed", "charge.refunded", "charge.refunded"]
    assert [(e.data.object.amount_refunded, e.data.object.refunded) for e in events[1:]] == [
        (1500, False),
        (session.amount_total, True),
    ]
    assert events[1].data.previous_attributes.to_dict() == {"amount_refunded": 0, "refunded": False}


def test_refunding_more_than_was_paid_is_refused(client):
    session = payment_session(client)
    pay(session)
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": intent_id, "amount": session.amount_total + 1})
    client.v1.refunds.create({"payment_intent": intent_id})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"payment_intent": intent_id})

    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    assert again.value.code == "charge_already_refunded"


# --- subscriptions --------------------------------------------------------------------------------------------------


def test_paying_a_subscription_creates_customer_subscription_and_paid_invoice(client, receiver):
    session = subscription_session(client)
    assert (session.mode, session.amount_total, session.currency) == ("subscription", 2900, "eur")
    assert "/ month" in httpx.get(session.url).text

    assert pay(session).headers["location"] == "http://shop.test/subscribed"

    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription", "invoice"]})
    subscription, invoice = done.subscription, done.invoice
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.customer.startswith("cus_") and subscription.customer == done.customer
    assert subscription.status == "active"
    assert subscription.metadata.to_dict() == {"plan": "basic-10", "buyer": "buyer-7"}
    start = datetime.fromtimestamp(subscription.current_period_start, UTC)
    end = datetime.fromtimestamp(subscription.current_period_end, UTC)
    assert 28 <= (end - start).days <= 31
    assert (end.month - start.month) % 12 == 1
    assert subscription["items"].data[0].current_period_end == subscription.current_period_end
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == ("paid", 2900, "subscription_create")
    assert invoice.parent.subscription_details.subscription == subscription.id

    events = receiver.wait_for(3)
    assert [e.type for e in events] == ["checkout.session.completed", "customer.subscription.created", "invoice.paid"]
    assert events[0].data.object.subscription == subscription.id
    assert events[2].data.object.parent.subscription_details.metadata["plan"] == "basic-10"


def test_advancing_a_subscription_renews_it_with_a_new_paid_invoice(client, receiver):
    session = subscription_session(client)
    pay(session)
    first = client.v1.subscriptions.retrieve(client.v1.checkout.sessions.retrieve(session.id).subscription)

    renewed = advance(client, first.id)

    assert renewed.current_period_start == first.current_period_end
    assert renewed.current_period_end > renewed.current_period_start
    assert renewed.latest_invoice != first.latest_invoice
    events = receiver.wait_for(5)
    assert [e.type for e in events[3:]] == ["customer.subscription.updated", "invoice.paid"]
    assert events[3].data.previous_attributes.current_period_end == first.current_period_end
    invoice = events[4].data.object
    assert (invoice.id, invoice.billing_reason, invoice.amount_paid) == (
        renewed.latest_invoice,
        "subscription_cycle",
        2900,
    )
    assert invoice.lines.data[0].period.start == renewed.current_period_start


def test_cancel_at_period_end_ends_the_subscription_when_the_period_ends(client, receiver):
    session = subscription_session(client)
    pay(session)
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription

    updated = client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    assert (updated.status, updated.cancel_at_period_end, updated.cancel_at) == (
        "active",
        True,
        updated.current_period_end,
    )
    ended = advance(client, sub_id)

    assert (ended.status, ended.ended_at) == ("canceled", updated.current_period_end)
    events = receiver.wait_for(5)
    assert [e.type for e in events[3:]] == ["customer.subscription.updated", "customer.subscription.deleted"]
    assert events[3].data.previous_attributes.cancel_at_period_end is False
    with pytest.raises(stripe.InvalidRequestError):
        advance(client, sub_id)


def test_deleting_a_subscription_cancels_it_at_once(client, receiver):
    session = subscription_session(client)
    pay(session)
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription

    canceled = client.v1.subscriptions.cancel(sub_id)

    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"
    events = receiver.wait_for(4)
    assert events[3].type == "customer.subscription.deleted"
    assert events[3].data.object.id == sub_id


# --- delivery -------------------------------------------------------------------------------------------------------


def test_failed_deliveries_are_retried_with_a_fresh_signature_and_keep_their_stream_in_order(client, receiver):
    receiver.failures["checkout.session.completed"] = 2
    session = subscription_session(client)

    answer = pay(session)  # answers at once; the failing endpoint is retried in the background

    assert answer.status_code == 303
    receiver.wait_for(5)
    events = receiver.events()  # all verify, the failed attempts included
    assert [e.type for e in events] == [
        "checkout.session.completed",
        "checkout.session.completed",
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
    assert len({e.id for e in events[:3]}) == 1


def test_a_bank_debit_that_clears_completes_unpaid_then_announces_the_payment(client, receiver):
    session = payment_session(client)

    answer = httpx.post(f"{session.url}/pay", data={"payment": "delayed_success"})

    assert answer.status_code == 303
    events = receiver.wait_for(2)
    assert [(e.type, e.data.object.payment_status) for e in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_succeeded", "paid"),
    ]
    intent = client.v1.payment_intents.retrieve(events[0].data.object.payment_intent)
    assert (intent.status, intent.amount_received) == ("succeeded", session.amount_total)


def test_a_bank_debit_that_fails_leaves_the_session_unpaid_and_nothing_to_refund(client, receiver):
    session = payment_session(client)

    httpx.post(f"{session.url}/pay", data={"payment": "delayed_failure"})

    events = receiver.wait_for(2)
    assert [(e.type, e.data.object.payment_status) for e in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
    ]
    intent_id = events[0].data.object.payment_intent
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": intent_id})


# --- Connect --------------------------------------------------------------------------------------------------------


def _onboard(client: stripe.StripeClient, account_id: str, outcome: str = "verified") -> httpx.Response:
    link = client.v1.account_links.create(
        {"account": account_id, "type": "account_onboarding", "refresh_url": "http://shop.test/again",
         "return_url": "http://shop.test/payouts"}
    )  # fmt: skip
    page = httpx.get(link.url).text
    assert "Finish onboarding" in page and f'value="{outcome}"' in page
    finished = httpx.post(link.url, data={"outcome": outcome})
    assert httpx.get(link.url).status_code == 404  # a link serves once
    return finished


def _express_account(client: stripe.StripeClient, email: str = "ana@example.test") -> stripe.Account:
    return client.v1.accounts.create(
        {"type": "express", "email": email, "capabilities": {"transfers": {"requested": True}}}
    )


def test_transfers_reach_a_connected_account_only_once_it_is_onboarded(client, receiver, connect_receiver):
    account = _express_account(client)
    assert account.requirements.disabled_reason == "requirements.past_due"
    transfer = {"amount": 1234, "currency": "usd", "destination": account.id, "transfer_group": "batch-1"}
    with pytest.raises(stripe.InvalidRequestError) as not_yet:
        client.v1.transfers.create(transfer)
    assert not_yet.value.code == "insufficient_capabilities_for_transfer"

    finished = _onboard(client, account.id)
    assert (finished.status_code, finished.headers["location"]) == (303, "http://shop.test/payouts")

    onboarded = client.v1.accounts.retrieve(account.id)
    assert (onboarded.payouts_enabled, onboarded.capabilities.transfers) == (True, "active")
    assert onboarded.requirements.disabled_reason is None
    sent = client.v1.transfers.create(transfer, {"idempotency_key": "payout-batch-1-ana"})
    assert client.v1.transfers.create(transfer, {"idempotency_key": "payout-batch-1-ana"}).id == sent.id
    assert (sent.amount, sent.destination, sent.transfer_group) == (1234, account.id, "batch-1")
    assert client.v1.transfers.retrieve(sent.id).id == sent.id

    # The account's change is a Connect event, signed with the Connect endpoint's secret; the transfer is the
    # platform's own event, for the account endpoint.
    (updated,) = connect_receiver.wait_for(1)
    assert (updated.type, updated.account) == ("account.updated", account.id)
    assert updated.data.previous_attributes.payouts_enabled is False
    (created,) = receiver.wait_for(1)
    assert (created.type, created.data.object.id) == ("transfer.created", sent.id)
    assert "account" not in created
    with pytest.raises(stripe.SignatureVerificationError):
        connect_receiver.events(secret=WEBHOOK_SECRET)


def test_the_same_transfer_key_with_other_parameters_is_an_idempotency_error(client):
    account = _express_account(client)
    _onboard(client, account.id)
    transfer = {"amount": 500, "currency": "eur", "destination": account.id}
    client.v1.transfers.create(transfer, {"idempotency_key": "payout-b-ana"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.transfers.create({**transfer, "amount": 501}, {"idempotency_key": "payout-b-ana"})
    assert [t.amount for t in client.v1.transfers.list({"destination": account.id}).data] == [500]


def test_transfers_are_listed_newest_first_by_destination_and_page_like_stripe(client):
    ana, bo = _express_account(client), _express_account(client, "bo@example.test")
    for account in (ana, bo):
        _onboard(client, account.id)
    sent = [
        client.v1.transfers.create({"amount": 100 + n, "currency": "usd", "destination": ana.id}).id for n in range(3)
    ]
    client.v1.transfers.create({"amount": 999, "currency": "usd", "destination": bo.id, "transfer_group": "g"})

    first = client.v1.transfers.list({"destination": ana.id, "limit": 2})
    assert ([t.id for t in first.data], first.has_more) == (sent[:0:-1], True)
    rest = client.v1.transfers.list({"destination": ana.id, "limit": 2, "starting_after": first.data[-1].id})
    assert ([t.id for t in rest.data], rest.has_more) == ([sent[0]], False)
    assert [t.amount for t in client.v1.transfers.list({"transfer_group": "g"}).data] == [999]
    assert len(list(client.v1.transfers.list({"limit": 1}).auto_paging_iter())) == 4


def test_details_that_fail_verification_leave_the_account_restricted_and_transfers_refused(client, connect_receiver):
    account = _express_account(client)
    _onboard(client, account.id, outcome="verification_failed")

    restricted = client.v1.accounts.retrieve(account.id)
    assert (restricted.details_submitted, restricted.payouts_enabled) == (True, False)
    assert restricted.requirements.disabled_reason == "requirements.past_due"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.transfers.create({"amount": 100, "currency": "usd", "destination": account.id})
    assert (refused.value.http_status, refused.value.code) == (400, "insufficient_capabilities_for_transfer")
    (updated,) = connect_receiver.wait_for(1)
    assert updated.data.object.details_submitted is True and updated.data.object.payouts_enabled is False


def test_a_rejected_account_takes_no_more_transfers(client, connect_receiver):
    account = _express_account(client)
    _onboard(client, account.id)
    client.v1.transfers.create({"amount": 100, "currency": "usd", "destination": account.id})

    rejected = client.v1.accounts.reject(account.id, {"reason": "fraud"})

    assert (rejected.payouts_enabled, rejected.requirements.disabled_reason) == (False, "rejected.fraud")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.transfers.create({"amount": 100, "currency": "usd", "destination": account.id})
    assert refused.value.code == "insufficient_capabilities_for_transfer"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.reject(account.id, {"reason": "because"})
    events = connect_receiver.wait_for(2)
    assert [e.data.object.payouts_enabled for e in events] == [True, False]


def test_a_port_another_server_listens_on_is_left_to_it_and_a_free_one_is_used():
    import socket

    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    standin = StripeStandin(secret_key="sk_test_x", webhook_secret="whsec_x", webhook_urls=[], port=port)
    try:
        with pytest.raises(RuntimeError, match="cannot listen"):
            standin.start()
        url = standin.start(any_port_if_taken=True)
        assert standin.port != port
        assert httpx.get(f"{url}/v1/checkout/sessions", auth=("sk_test_x", "")).status_code == 200
    finally:
        standin.stop()
        taken.close()
