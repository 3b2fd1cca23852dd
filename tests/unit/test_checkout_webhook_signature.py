"""Webhook verification accepts exactly what Stripe signed with our secret in the last 300 s, and nothing else."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from shared.payments import InvalidWebhook, verify_webhook
from tests.fixtures.checkout import sign_webhook, stripe_event

SECRET = "whsec_unit"
EVENT = stripe_event("checkout.session.completed", {"id": "cs_1", "object": "checkout.session"}, event_id="evt_1")
PAYLOAD = json.dumps(EVENT).encode()


def test_a_payload_signed_by_stripes_own_helper_is_accepted():
    # The SDK's own signer: our test helper and Stripe agree on the scheme.
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD.decode(), SECRET)
    assert header == sign_webhook(PAYLOAD, SECRET, timestamp=int(header.split(",")[0][2:]))
    event = verify_webhook(PAYLOAD, header, SECRET)
    assert (event.id, event.type, event.payload["id"]) == ("evt_1", "checkout.session.completed", "cs_1")


def test_any_of_several_signatures_may_match_while_the_secret_is_rolled():
    t = int(time.time())
    old = sign_webhook(PAYLOAD, "whsec_old", timestamp=t).split(",")[1]
    header = f"{sign_webhook(PAYLOAD, SECRET, timestamp=t)},{old}"
    assert verify_webhook(PAYLOAD, header, SECRET).id == "evt_1"


# Headers are built when the test runs (a lambda), not at collection: a signature made minutes
# earlier by a slow suite would fail on its age instead of on the flaw under test.
@pytest.mark.parametrize(
    ("payload", "header", "reason"),
    [
        pytest.param(PAYLOAD + b" ", lambda: sign_webhook(PAYLOAD, SECRET), "signature", id="body-changed"),
        pytest.param(PAYLOAD, lambda: sign_webhook(PAYLOAD, "whsec_other"), "signature", id="wrong-secret"),
        pytest.param(
            PAYLOAD,
            lambda: sign_webhook(PAYLOAD, SECRET, timestamp=int(time.time()) - 3600),
            "tolerance",
            id="old",
        ),
        pytest.param(PAYLOAD, lambda: None, "No Stripe-Signature header", id="missing"),
        pytest.param(PAYLOAD, lambda: "", "No Stripe-Signature header", id="empty"),
        pytest.param(PAYLOAD, lambda: "v1=abc", "Unable to extract timestamp", id="no-timestamp"),
        pytest.param(PAYLOAD, lambda: f"t={int(time.time())},v0=abc", "No signatures found", id="other-scheme"),
        pytest.param(b"\xff\xfe", lambda: sign_webhook(b"\xff\xfe", SECRET), "UTF-8", id="not-utf8"),
        pytest.param(b"[1, 2", lambda: sign_webhook(b"[1, 2", SECRET), "malformed JSON", id="malformed-json"),
        pytest.param(
            b'{"id": "x"}', lambda: sign_webhook(b'{"id": "x"}', SECRET), "not a Stripe event", id="not-an-event"
        ),
    ],
)
def test_anything_else_is_refused_with_a_reason(payload, header, reason):
    with pytest.raises(InvalidWebhook, match=reason):
        verify_webhook(payload, header(), SECRET)


def test_an_empty_secret_never_verifies_anything():
    with pytest.raises(InvalidWebhook):
        verify_webhook(PAYLOAD, sign_webhook(PAYLOAD, ""), "")
