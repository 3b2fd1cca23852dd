"""devhost runs the Stripe stand-in for a local run: on STRIPE_STANDIN_PORT, with the app's keys, and stops it."""

from __future__ import annotations

import httpx
import pytest
import stripe

from shared.config import Settings
from tests.e2e.devhost_process import devhost_environment, free_port, start_devhost, stop_devhost

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


def test_devhost_serves_the_stand_in_with_the_apps_key_and_stops_it_on_exit(tmp_path):
    env = devhost_environment(tmp_path / "var")
    env.pop("STRIPE_API_BASE", None)
    env.pop("APP_ENV", None)
    env["STRIPE_STANDIN_PORT"] = str(free_port())
    env["STRIPE_SECRET_KEY"] = "sk_test_devhost_e2e"
    api_base = f"http://127.0.0.1:{env['STRIPE_STANDIN_PORT']}"
    proc = start_devhost(env, tmp_path / "devhost.log")
    try:
        client = stripe.StripeClient(env["STRIPE_SECRET_KEY"], base_addresses={"api": api_base})
        session = client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [
                    {"price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Pier"}},
                     "quantity": 1}
                ],
                "success_url": "http://127.0.0.1/thanks",
            }
        )  # fmt: skip
        assert session.url.startswith(f"{api_base}/pay/")
        assert httpx.get(session.url).status_code == 200
        default_key = Settings.model_fields["STRIPE_SECRET_KEY"].default
        with pytest.raises(stripe.AuthenticationError):
            stripe.StripeClient(default_key, base_addresses={"api": api_base}).v1.checkout.sessions.list()
    finally:
        assert stop_devhost(proc) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{api_base}/v1/checkout/sessions", timeout=2)
