"""A purchase end to end on devhost: search result -> cart -> checkout -> the Stripe stand-in's payment
page -> signed webhook -> license -> download of the original's exact bytes.

Needs the whole pipeline (ingestion, processing, moderation, search) and the Stripe stand-in running
under devhost; nothing is faked.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import httpx
import pytest

from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("purchase-e2e-var")
    env = devhost_environment(var_dir)
    env.pop("STRIPE_API_BASE", None)  # devhost starts the stand-in
    log_path = var_dir.parent / f"devhost-purchase-{env['DEVHOST_PORT']}.log"
    proc = start_devhost(env, log_path)
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "log": log_path}
    finally:
        stop_devhost(proc)


def _auth(devhost, role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(devhost['env'], '--role', role, '--sub', sub)}"}


def _until(devhost, what: str, probe, timeout: float = 90):
    """Poll `probe` until it returns something truthy; fail with the devhost log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except httpx.TimeoutException:  # a loaded machine (models loading on few cores): ask again
            result = None
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {timeout:.0f} s; devhost log:\n{devhost['log'].read_text()[-4000:]}")


def _approved_image(devhost, original: bytes) -> str:
    carol = _auth(devhost, "contributor", "carol-buyable")
    ticket = httpx.post(
        f"{devhost['base']}/contributor/uploads",
        headers=carol,
        json={
            "file_name": "espresso.jpg",
            "size_bytes": len(original),
            "content_type": "image/jpeg",
            "sidecar": {"title": "Espresso cup on a wooden table", "keywords": ["espresso", "coffee", "cup"]},
        },
        timeout=30,
    )
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    assert httpx.put(ticket["upload_url"], content=original, headers=ticket["headers"], timeout=60).status_code == 201
    image_id = ticket["image_id"]

    def state():
        image = httpx.get(f"{devhost['base']}/contributor/images/{image_id}", headers=carol, timeout=10).json()
        assert image["state"] != "quarantined", image
        return image["state"] if image["state"] in {"approved", "flagged", "processed"} else None

    if _until(devhost, "processing", state, timeout=120) != "approved":
        # Moderation queued it for a person: act as that person.
        admin = _auth(devhost, "admin", "mod-e2e")
        approved = httpx.post(f"{devhost['base']}/admin/images/{image_id}/approve", headers=admin, timeout=30)
        assert approved.status_code == 200, approved.text
        _until(devhost, "approval", lambda: state() == "approved")
    return image_id


@pytest.mark.timeout(400)  # upload, processing, moderation and search come first
def test_a_buyer_finds_buys_pays_and_downloads_the_original(devhost):
    original = jpeg_bytes(photo("coffee", megapixels=5))  # above the 4 MP minimum
    image_id = _approved_image(devhost, original)
    bob = _auth(devhost, "buyer", "bob-e2e")
    api = devhost["base"]

    def found():
        results = httpx.get(f"{api}/search", params={"q": "espresso cup"}, timeout=10).json()
        return image_id in [item["id"] for item in results["items"]]

    _until(devhost, "the image showing up in search", found)

    def added():  # checkout learns of the image from the bus, maybe a moment after search does
        response = httpx.post(f"{api}/cart/items", headers=bob, json={"image_id": image_id}, timeout=10)
        return response if response.status_code == 201 else None

    cart = _until(devhost, "adding to the cart", added, timeout=30).json()
    assert [item["image_id"] for item in cart["items"]] == [image_id]

    checkout = httpx.post(f"{api}/checkout", headers=bob, timeout=30)
    assert checkout.status_code == 201, checkout.text
    order_id, checkout_url = checkout.json()["order_id"], checkout.json()["checkout_url"]

    with httpx.Client(timeout=30) as browser:
        page = browser.get(checkout_url)
        assert page.status_code == 200
        (pay_path,) = set(re.findall(r'(?:form)?action="([^"]*/pay)"', page.text))
        paid = browser.post(urljoin(checkout_url, pay_path), data={})
        assert paid.status_code in (302, 303), paid.text
        assert paid.headers["location"].startswith(devhost["env"].get("PUBLIC_BASE_URL", "http://localhost"))

    def order_paid():
        orders = httpx.get(f"{api}/orders", headers=bob, timeout=10).json()["orders"]
        return next((o for o in orders if o["id"] == order_id and o["status"] == "paid"), None)

    _until(devhost, "the webhook marking the order paid", order_paid, timeout=60)
    (license_,) = httpx.get(f"{api}/licenses", headers=bob, timeout=10).json()["licenses"]
    assert (license_["image_id"], license_["order_id"], license_["usable"]) == (image_id, order_id, True)

    download = httpx.get(f"{api}/licenses/{license_['id']}/download", headers=bob, timeout=10)
    assert download.status_code == 302
    got = httpx.get(download.headers["location"], timeout=30)
    assert got.status_code == 200
    assert got.content == original
    assert "espresso.jpg" in got.headers["content-disposition"]

    eve = _auth(devhost, "buyer", "eve-e2e")
    assert httpx.get(f"{api}/licenses/{license_['id']}/download", headers=eve, timeout=10).status_code == 404
    assert httpx.get(f"{api}/cart", headers=bob, timeout=10).json()["items"] == []  # bought: out of the cart
