"""Tax profiles through the API: validated per form, the TIN sealed at rest and shown as its last 4 only,
never in a response, an event or a log line."""

from __future__ import annotations

import logging

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from shared.crypto import EnvelopeCipher, Sealed, key_wrapper_from_settings

SSN = "287-65-4321"
W9 = {
    "form_type": "W-9",
    "legal_name": "Alice Example",
    "address": {"line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"},
    "country": "US",
    "tin": SSN,
}
W8BEN = {
    "form_type": "W-8BEN",
    "legal_name": "Ana Silva",
    "address": {"line1": "Rua Augusta 10", "city": "Lisboa", "country": "PT"},
    "country": "PT",
    "tin": "PT-987654321",
    "treaty_claim": True,
}


async def _put(api_app, body, sub="contributor-1"):
    return await api_app.request("PUT", "contributor/tax-info", token=api_app.token(sub, "contributor"), json_body=body)


async def test_a_w9_is_stored_with_the_tin_sealed_and_answered_with_its_last_four(api_app):
    response = await _put(api_app, W9)
    assert response.status == 200, response.body
    body = response.json()
    assert (body["form_type"], body["tin_last4"], body["withholding_rate_bp"], body["treaty_claim"]) == (
        "W-9",
        "4321",
        0,
        False,
    )
    got = await api_app.request("GET", "contributor/tax-info", token=api_app.token("contributor-1", "contributor"))
    assert got.json() == body

    row = await api_app.runtime.db.pool.fetchrow("select * from payouts.tax_profiles")
    assert all(SSN not in str(value) and "287654321" not in str(value) for value in row.values())
    cipher = EnvelopeCipher(key_wrapper_from_settings(api_app.settings))
    sealed = Sealed(row["tin_ciphertext"], row["tin_nonce"], row["tin_wrapped_key"], row["tin_kek_id"])
    assert await cipher.open(sealed, "payouts.tax:contributor-1") == SSN


@pytest.mark.parametrize(
    ("body", "rate"),
    [
        (W8BEN, 1000),  # Portugal's treaty rate on royalties
        ({**W8BEN, "treaty_claim": False}, 3000),
        ({**W8BEN, "form_type": "W-8BEN-E", "legal_name": "Silva Imagens Lda"}, 1000),
        ({**W8BEN, "country": "BR", "address": {**W8BEN["address"], "country": "BR"}, "treaty_claim": False}, 3000),
        ({**W9, "tin": "12-3456789"}, 0),  # an EIN
    ],
)
async def test_the_withholding_rate_follows_the_form_and_the_treaty(api_app, body, rate):
    response = await _put(api_app, body)
    assert response.status == 200, response.body
    assert response.json()["withholding_rate_bp"] == rate


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**W9, "country": "DE"}, "country"),
        ({**W9, "tin": "000-12-3456"}, "tin"),
        ({**W9, "tin": "12345"}, "tin"),
        ({**W9, "treaty_claim": True}, "treaty_claim"),
        ({**W8BEN, "country": "US"}, "country"),
        ({**W8BEN, "country": "XX"}, "country"),
        ({**W8BEN, "country": "pt"}, "country"),
        ({**W8BEN, "address": {**W8BEN["address"], "country": "ZZ"}}, "address.country"),
        ({**W8BEN, "country": "BR", "address": {**W8BEN["address"], "country": "BR"}}, "treaty_claim"),
        ({**W8BEN, "tin": "!"}, "tin"),
        ({key: value for key, value in W9.items() if key != "legal_name"}, "legal_name"),
        ({**W9, "form_type": "W-4"}, "form_type"),
        ({**W9, "address": {"line1": "1 Main St", "country": "US"}}, "address.city"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(api_app, body, field):
    response = await _put(api_app, body)
    assert response.status == 422 and response.is_problem, response.body
    assert field in {error["name"] for error in response.json()["errors"]}
    assert await api_app.runtime.db.pool.fetchval("select count(*) from payouts.tax_profiles") == 0


async def test_a_refused_update_leaves_the_stored_profile_as_it_was(api_app):
    await _put(api_app, W9)
    assert (await _put(api_app, {**W9, "tin": "999-99-9999"})).status == 422
    got = await api_app.request("GET", "contributor/tax-info", token=api_app.token("contributor-1", "contributor"))
    assert got.json()["tin_last4"] == "4321"


async def test_the_tin_never_appears_in_a_response_an_event_or_a_log_line(api_app, caplog):
    caplog.set_level(logging.DEBUG)
    token = api_app.token("contributor-1", "contributor")
    with capture_logs(processors=[merge_contextvars]) as logs:
        answers = [
            await _put(api_app, W9),
            await _put(api_app, {**W9, "tin": "287-65-432"}),  # refused: the error must not echo it
            await _put(api_app, {**W9, "country": "DE"}),
            await api_app.request("GET", "contributor/tax-info", token=token),
        ]
    assert [a.status for a in answers] == [200, 422, 422, 200]
    secrets = (SSN, "287654321", "287-65-432", "28765432")
    for answer in answers:
        assert not any(s.encode() in answer.body for s in secrets)
        assert not any(s in str(answer.headers) for s in secrets)
    assert logs, "the requests were logged"
    assert not any(s in str(entry) for entry in logs for s in secrets)
    assert not any(s in record.getMessage() or s in str(record.__dict__) for record in caplog.records for s in secrets)
    events = await api_app.runtime.db.pool.fetch("select body::text as body from bus.outbox")
    assert not any(s in row["body"] for row in events for s in secrets)


async def test_no_profile_yet_is_404(api_app):
    response = await api_app.request("GET", "contributor/tax-info", token=api_app.token("contributor-2", "contributor"))
    assert response.status == 404 and response.is_problem
