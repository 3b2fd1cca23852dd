"""A contributor is paid end to end on devhost: upload -> approve -> a buyer pays on the Stripe stand-in ->
webhook -> earning (held, then payable once the hold has passed) -> tax profile -> Connect onboarding on
the stand-in's hosted page -> admin batch -> approve -> transfer on the stand-in -> payout.paid -> the
contributor sees the payout.

The hold is a few seconds here (PAYOUT_HOLD_DAYS accepts fractions) and the threshold 1.00, so one sale
is enough; nothing else is faked.
"""

from __future__ import annotations

import re
from functools import partial
from urllib.parse import urljoin

import httpx
import pytest

from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost
from tests.e2e.payouts_flow import HOLD_SECONDS, W9, buy, payable_balance, short_hold
from tests.e2e.test_purchase_e2e import _approved_image, _auth, _until
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("payouts-e2e-var")
    env = devhost_environment(var_dir)
    env.pop("STRIPE_API_BASE", None)  # devhost starts the stand-in
    short_hold(env)
    log_path = var_dir.parent / f"devhost-payouts-{env['DEVHOST_PORT']}.log"
    proc = start_devhost(env, log_path)
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "log": log_path}
    finally:
        stop_devhost(proc)


def _onboard(devhost, carol) -> str:
    api = devhost["base"]
    created = httpx.post(f"{api}/contributor/payout-account", headers=carol, json={"country": "US"}, timeout=30)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["payouts_enabled"] is False
    with httpx.Client(timeout=30) as browser:
        page = browser.get(account["onboarding_url"])
        assert page.status_code == 200
        (finish_path,) = set(re.findall(r'action="([^"]*/onboard/[^"]*)"', page.text))
        finished = browser.post(urljoin(account["onboarding_url"], finish_path), data={"outcome": "verified"})
        assert finished.status_code in (200, 302, 303), finished.text

    def enabled():  # account.updated reaches /api/webhooks/stripe-connect, signed with the Connect secret
        status = httpx.get(f"{api}/contributor/payout-account", headers=carol, timeout=10).json()
        return status["payouts_enabled"]

    _until(devhost, "the Connect webhook enabling payouts", enabled, timeout=60)
    return account["account_id"]


@pytest.mark.timeout(500)  # upload, processing, moderation, search and checkout come first
def test_a_contributor_sells_an_image_and_is_paid_through_stripe_connect(devhost):
    api = devhost["base"]
    carol = _auth(devhost, "contributor", "carol-buyable")  # the uploader of _approved_image
    image_id = _approved_image(devhost, jpeg_bytes(photo("coffee", megapixels=5)))
    buy(api, _auth(devhost, "buyer", "bob-payouts"), image_id, partial(_until, devhost))

    def earned():
        body = httpx.get(f"{api}/contributor/earnings", headers=carol, params={"group_by": "image"}, timeout=10).json()
        return body if body["balances"] else None

    earnings = _until(devhost, "the sale reaching the ledger", earned, timeout=90)
    assert earnings["groups"][0]["key"] == image_id
    (balance,) = earnings["balances"]
    assert balance["held_minor"] > 0 and balance["payable_minor"] == 0  # held first

    saved = httpx.put(f"{api}/contributor/tax-info", headers=carol, json=W9, timeout=30)
    assert saved.status_code == 200 and saved.json()["tin_last4"] == "4321"
    account_id = _onboard(devhost, carol)

    amount = _until(devhost, "the hold passing", partial(payable_balance, api, carol), timeout=HOLD_SECONDS * 3)
    assert amount == balance["held_minor"]

    admin = _auth(devhost, "admin", "finance-e2e")
    created = httpx.post(f"{api}/admin/payout-batches", headers=admin, json={}, timeout=60)
    assert created.status_code == 201, created.text
    batch = created.json()
    assert [(p["contributor_id"], p["amount_minor"]) for p in batch["payouts"]] == [("carol-buyable", amount)]
    approved = httpx.post(f"{api}/admin/payout-batches/{batch['id']}/approve", headers=admin, timeout=30)
    assert approved.status_code == 200, approved.text

    def paid():
        payouts = httpx.get(f"{api}/contributor/payouts", headers=carol, timeout=10).json()["payouts"]
        return payouts if payouts and payouts[0]["status"] == "paid" else None

    (payout,) = _until(devhost, "the transfer and payout.paid", paid, timeout=90)
    assert (payout["net_minor"], payout["withholding_minor"]) == (amount, 0)

    standin = f"http://127.0.0.1:{devhost['env']['STRIPE_STANDIN_PORT']}"
    transfers = httpx.get(
        f"{standin}/v1/transfers", headers={"Authorization": "Bearer sk_test_local_standin"}, timeout=10
    ).json()["data"]
    assert [(t["destination"], t["amount"], t["id"]) for t in transfers] == [
        (account_id, amount, payout["transfer_id"])
    ]
    after = httpx.get(f"{api}/contributor/earnings", headers=carol, timeout=10).json()
    assert after["balances"][0]["payable_minor"] == 0

    def audited():  # moderation appends payouts' audit.recorded events to the one audit log
        page = httpx.get(f"{api}/admin/audit-log", headers=admin, params={"service": "payouts"}, timeout=10).json()
        actions = {entry["action"] for entry in page["items"] if entry["target_id"] == batch["id"]}
        return actions if {"payout_batch.create", "payout_batch.approve"} <= actions else None

    _until(devhost, "the batch's audit entries in the one audit log", audited, timeout=60)
