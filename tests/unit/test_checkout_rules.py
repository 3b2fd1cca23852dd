"""Small rules of the checkout service: download file names, plan settings, Stripe object shapes."""

from __future__ import annotations

import json
import uuid

import pytest

from functions.checkout.licenses import content_disposition, download_file_name
from functions.checkout.models import StripeInvoice, StripeSubscription
from functions.checkout.stripe_events import _order_id
from functions.checkout.subscriptions import plans
from shared.config import ConfigError, load_settings


def test_the_download_is_named_after_the_contributors_file_or_else_the_image():
    image_id = uuid.UUID(int=7)
    assert download_file_name("Beach.JPG", "c/x.jpg", image_id) == "Beach.JPG"
    assert download_file_name("C:\\photos\\beach.jpg", "c/x.jpg", image_id) == "beach.jpg"
    assert download_file_name("", "c/x.JPEG", image_id) == f"{image_id}.jpeg"


def test_content_disposition_carries_an_ascii_fallback_and_the_exact_utf8_name():
    value = content_disposition('Café "noir".jpg')
    assert value == "attachment; filename=\"Caf_ _noir_.jpg\"; filename*=UTF-8''Caf%C3%A9%20%22noir%22.jpg"


def test_plans_come_from_settings(tmp_path):
    plan_json = json.dumps({"team-50": {"downloads": 50, "amount_minor": 9900, "currency": "EUR"}})
    settings = load_settings(VAR_DIR=tmp_path, SUBSCRIPTION_PLANS=plan_json)
    (plan,) = plans(settings).values()
    assert (plan.name, plan.downloads, plan.amount_minor, plan.currency) == ("team-50", 50, 9900, "EUR")


@pytest.mark.parametrize(
    "bad",
    [
        {"Bad Name": {"downloads": 1, "amount_minor": 1, "currency": "USD"}},
        {"p": {"downloads": 0, "amount_minor": 1, "currency": "USD"}},
        {"p": {"downloads": 1, "amount_minor": 1, "currency": "usd"}},
        {"p": {"downloads": 1, "currency": "USD"}},
        {},
        "not json",
    ],
)
def test_a_malformed_plan_stops_start_up_naming_the_setting(tmp_path, bad):
    with pytest.raises(ConfigError, match="SUBSCRIPTION_PLANS"):
        load_settings(VAR_DIR=tmp_path, SUBSCRIPTION_PLANS=bad if isinstance(bad, str) else json.dumps(bad))


def test_the_subscription_of_an_invoice_is_found_in_old_and_new_api_shapes():
    old = StripeInvoice.model_validate({"id": "in_1", "created": 1, "subscription": "sub_old"})
    new = StripeInvoice.model_validate(
        {
            "id": "in_2",
            "created": 1,
            "parent": {"subscription_details": {"subscription": "sub_new", "metadata": {"plan": "basic-10"}}},
        }
    )
    assert (old.subscription_id, new.subscription_id) == ("sub_old", "sub_new")
    assert new.subscription_metadata == {"plan": "basic-10"}


def test_the_period_end_of_a_subscription_is_read_from_its_items_in_new_api_versions():
    sub = StripeSubscription.model_validate(
        {"id": "sub_1", "status": "active", "items": {"data": [{"current_period_end": 5}, {"current_period_end": 9}]}}
    )
    assert sub.period_end == 9
    assert StripeSubscription.model_validate({"id": "s", "status": "active", "current_period_end": 3}).period_end == 3


def test_a_session_names_its_order_by_metadata_else_by_client_reference_id():
    order, other = uuid.uuid4(), uuid.uuid4()
    assert _order_id({"order_id": str(order)}, str(other)) == order
    assert _order_id({}, str(order)) == order  # metadata without order_id: the reference still names it
    assert _order_id({"order_id": "not-a-uuid"}, str(order)) == order
    assert _order_id({}, None) is None
    assert _order_id({"order_id": "nope"}, "nope") is None
