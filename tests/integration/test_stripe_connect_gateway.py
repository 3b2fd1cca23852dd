"""The payout gateway (`StripeConnectGateway`, the real SDK) against the Stripe stand-in.

Onboarding on the hosted page, the signed Connect event it causes, a transfer replayed after the caller lost
Stripe's answer, refusals, and Stripe being away: each as the payouts service will meet them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import stripe

from devhost.stripe_standin import StripeStandin
from shared.config import load_settings
from shared.payments import (
    PaymentProviderError,
    PaymentProviderUnavailable,
    StripeConnectGateway,
    TransferRefused,
    get_payout_gateway,
    set_payout_gateway,
    stripe_client_from_settings,
)
from tests.e2e.devhost_process import free_port
from tests.fixtures.webhook_receiver import WebhookReceiver

SECRET_KEY = "sk_test_connect_gateway"
WEBHOOK_SECRET = "whsec_connect_gateway_platform"
CONNECT_WEBHOOK_SECRET = "whsec_connect_gateway_connect"

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


class AnswerLost(stripe.HTTPXClient):
    """Stripe does the request, then the connection drops before its answer arrives (or our process dies)."""

    async def request_async(self, method, url, headers, post_data=None):  # type: ignore[override]
        await super().request_async(method, url, headers, post_data)
        raise stripe.APIConnectionError("connection reset after the request was sent")


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    platform = WebhookReceiver(WEBHOOK_SECRET)
    connect = WebhookReceiver(CONNECT_WEBHOOK_SECRET, "/api/webhooks/stripe-connect")
    yield platform, connect
    platform.close()
    connect.close()


@pytest.fixture
def standin(tmp_path, receivers) -> Iterator[StripeStandin]:
    platform, connect = receivers
    with StripeStandin(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_urls=[platform.url],
        connect_webhook_secret=CONNECT_WEBHOOK_SECRET,
        connect_webhook_urls=[connect.url],
        retry_delays=(0.05, 0.1),
        state_path=tmp_path / "stripe" / "state.json",
    ) as running:
        yield running


def _settings(api_base: str):
    return load_settings(STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_API_BASE=api_base)


@pytest.fixture
def gateway(standin) -> Iterator[StripeConnectGateway]:
    set_payout_gateway(None)
    gateway = get_payout_gateway(_settings(standin.base_url))
    assert isinstance(gateway, StripeConnectGateway)
    yield gateway
    set_payout_gateway(None)


@pytest.fixture
def stripe_api(standin) -> stripe.StripeClient:
    """What a person sees in Stripe's dashboard."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": standin.base_url}, max_network_retries=0)


async def _complete_onboarding(gateway: StripeConnectGateway, account_id: str, outcome: str = "verified") -> None:
    url = await gateway.create_onboarding_link(
        account_id=account_id, refresh_url="http://shop.test/payouts/again", return_url="http://shop.test/payouts"
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        (action,) = set(re.findall(r'action="([^"]+)"', page.text))
        done = await browser.post(httpx.URL(url).join(action), data={"outcome": outcome})
    assert (done.status_code, done.headers["location"]) == (303, "http://shop.test/payouts")


async def _payable_account(gateway: StripeConnectGateway, contributor: str = "ana") -> str:
    account_id = await gateway.create_connected_account(contributor_id=contributor, country="us", email=None)
    await _complete_onboarding(gateway, account_id)
    return account_id


async def test_onboarding_on_the_hosted_page_enables_payouts_and_announces_it_signed_for_connect(
    gateway, receivers, stripe_api
):
    platform, connect = receivers
    account_id = await gateway.create_connected_account(contributor_id="ana", country="DE", email="ana@example.test")
    assert await gateway.create_connected_account(contributor_id="ana", country="DE", email="ana@example.test") == (
        account_id
    )  # the same contributor asking again gets the same account
    before = await gateway.retrieve_account(account_id)
    assert (before.payouts_enabled, before.details_submitted) == (False, False)

    await _complete_onboarding(gateway, account_id)

    after = await gateway.retrieve_account(account_id)
    assert (after.account_id, after.payouts_enabled, after.details_submitted) == (account_id, True, True)
    (event,) = connect.wait_for(1)  # verified with the Connect endpoint's secret, as the app will
    assert (event.type, event.account, event.data.object.payouts_enabled) == ("account.updated", account_id, True)
    assert platform.deliveries == []
    made = stripe_api.v1.accounts.retrieve(account_id)
    assert (made.type, made.country, made.metadata["contributor_id"]) == ("express", "DE", "ana")
    assert made.capabilities.transfers == "active"


async def test_a_transfer_replayed_after_a_crash_moves_the_money_once(standin, gateway, stripe_api, receivers):
    account_id = await _payable_account(gateway)
    crashing = StripeConnectGateway(
        stripe.StripeClient(SECRET_KEY, base_addresses={"api": standin.base_url}, http_client=AnswerLost())
    )
    request = {
        "amount_minor": 4250,
        "currency": "USD",
        "destination": account_id,
        "idempotency_key": "payout-batch7-ana",
        "metadata": {"batch_id": "batch7", "contributor_id": "ana"},
    }
    with pytest.raises(PaymentProviderUnavailable):
        await crashing.transfer(**request)  # Stripe made it; we never heard (the SDK's own retries included)

    # The worker comes back (a fresh process, a fresh client) and settles the same item again.
    replayed = await StripeConnectGateway(stripe_client_from_settings(_settings(standin.base_url))).transfer(**request)

    made = stripe_api.v1.transfers.list({"destination": account_id}).data
    assert [(t.id, t.amount, t.currency) for t in made] == [(replayed.transfer_id, 4250, "usd")]
    assert (replayed.amount_minor, replayed.currency) == (4250, "USD")
    assert made[0].metadata["batch_id"] == "batch7"
    platform, _ = receivers
    assert [e.type for e in platform.wait_for(1)] == ["transfer.created"]


async def test_a_transfer_to_an_account_that_failed_verification_is_refused(gateway, stripe_api):
    account_id = await gateway.create_connected_account(contributor_id="bo", country="US", email=None)
    await _complete_onboarding(gateway, account_id, outcome="verification_failed")
    assert (await gateway.retrieve_account(account_id)).payouts_enabled is False

    with pytest.raises(TransferRefused, match="insufficient_capabilities_for_transfer"):
        await gateway.transfer(
            amount_minor=3500, currency="USD", destination=account_id, idempotency_key="payout-b1-bo", metadata={}
        )
    assert stripe_api.v1.transfers.list({"destination": account_id}).data == []


async def test_a_transfer_to_an_account_closed_after_onboarding_is_refused(gateway, stripe_api):
    account_id = await _payable_account(gateway, "cy")
    stripe_api.v1.accounts.reject(account_id, {"reason": "terms_of_service"})

    with pytest.raises(TransferRefused):
        await gateway.transfer(
            amount_minor=3500, currency="EUR", destination=account_id, idempotency_key="payout-b2-cy", metadata={}
        )


async def test_a_key_reused_for_another_amount_is_not_a_refusal(gateway):
    # A transfer exists under the key: calling it "refused" would put money back that was paid.
    account_id = await _payable_account(gateway, "di")
    sent = {"currency": "USD", "destination": account_id, "idempotency_key": "payout-b3-di", "metadata": {}}
    await gateway.transfer(amount_minor=1000, **sent)

    with pytest.raises(PaymentProviderError) as raised:
        await gateway.transfer(amount_minor=1001, **sent)
    assert not isinstance(raised.value, (TransferRefused, PaymentProviderUnavailable))


async def test_bad_input_is_refused_before_stripe_is_asked(gateway):
    with pytest.raises(ValueError, match="positive"):
        await gateway.transfer(amount_minor=0, currency="USD", destination="acct_x", idempotency_key="k", metadata={})
    with pytest.raises(ValueError, match="ISO 3166"):
        await gateway.create_connected_account(contributor_id="ana", country="USA", email=None)


async def test_an_unknown_account_is_a_provider_error(gateway):
    with pytest.raises(PaymentProviderError) as raised:
        await gateway.retrieve_account("acct_nobodyhere")
    assert not isinstance(raised.value, PaymentProviderUnavailable)


async def test_stripe_unreachable_is_unavailable_not_refused():
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    gateway = StripeConnectGateway(stripe_client_from_settings(_settings(nothing_listens)))

    with pytest.raises(PaymentProviderUnavailable):
        await gateway.transfer(
            amount_minor=100, currency="USD", destination="acct_x", idempotency_key="payout-b4-x", metadata={}
        )
    with pytest.raises(PaymentProviderUnavailable):
        await gateway.create_connected_account(contributor_id="ana", country="US", email=None)


async def test_a_wrong_key_is_an_error_not_unavailability(standin):
    gateway = StripeConnectGateway(
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": standin.base_url}, max_network_retries=0)
    )
    with pytest.raises(PaymentProviderError, match="credentials"):
        await gateway.retrieve_account("acct_x")
