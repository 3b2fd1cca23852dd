"""Journey 4 in Chromium against devhost on the real embedded stack: an admin creates and approves a
payout batch, and the contributor sees the payout.

A sale is seeded over HTTP (upload -> pipeline -> a buyer pays on the Stripe stand-in), so the contributor
has a balance that turns payable seconds later (the browser devhost runs with a short hold). Then, in
pages only: the contributor fills the W-9 on the studio's getting-paid page and finishes onboarding on the
stand-in's hosted Connect page; the admin creates a batch for a month, finds the contributor in it and
approves it; the contributor sees the payout paid, with its amount, on their earnings page.

Every key page is screenshotted at 375 and 1440 px under var/screenshots/4-payouts/ and checked with axe-core.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import partial

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import Shots, at_both_widths, sign_in
from tests.browser.seeding import auth, publish, until, upload
from tests.e2e.payouts_flow import HOLD_SECONDS, W9, buy, payable_balance
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("browser"), pytest.mark.timeout(600)]

CONTRIBUTOR = "pia-payouts"  # sells only in this journey, so the batch's line for them is this sale
ADMIN = "fin-admin"
TITLE = "Red motorcycle seen from the left"


def _money(amount_minor: int) -> str:
    """USD as the pages write it (Intl, en-US in this Chromium)."""
    return f"${amount_minor / 100:,.2f}"


def _reload_until(page: Page, locator, timeout_s: float = 90) -> None:
    """The page reads the API once; events land a moment later, so look again as a person would."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if locator.count() and locator.first.is_visible():
            return
        page.wait_for_timeout(1000)
        page.reload()
        page.wait_for_load_state("networkidle")
    expect(locator.first).to_be_visible()  # fails with Playwright's own message


@pytest.fixture(scope="module")
def sale(portal):
    """One approved photo of CONTRIBUTOR, bought and paid; returns the payable amount once the hold passed."""
    image_id = upload(
        portal,
        CONTRIBUTOR,
        jpeg_bytes(photo("motorcycle", megapixels=5)),
        "motorcycle.jpg",
        TITLE,
        ["motorcycle", "red", "vehicle"],
    )
    publish(portal, CONTRIBUTOR, [image_id])
    wait = partial(until, portal)
    buy(portal["api"], auth(portal, "buyer", "bob-journey4"), image_id, wait)
    contributor = auth(portal, "contributor", CONTRIBUTOR)
    return wait("the sale turning payable", partial(payable_balance, portal["api"], contributor), HOLD_SECONDS * 6)


def test_journey_4_an_admin_creates_and_approves_a_payout_batch_and_the_contributor_sees_the_payout(
    portal, new_page, sale, axe_report
):
    shots = Shots("4 payouts")
    period = datetime.now(UTC).strftime("%Y-%m")  # not last month, the default journey 3's draft takes

    # The contributor fills the W-9 on the getting-paid page.
    studio = new_page(bypass_csp=True)  # axe is injected inline; the pages' CSP rightly forbids that
    sign_in(studio, "/contributor/payouts/", CONTRIBUTOR, "contributor")
    studio.get_by_label("Form", exact=True).select_option("W-9")
    studio.get_by_label("Legal name").fill(W9["legal_name"])
    studio.get_by_label("Street address").fill(W9["address"]["line1"])
    studio.get_by_label("City").fill(W9["address"]["city"])
    studio.get_by_label("Country of address (e.g. PT)").fill(W9["address"]["country"])
    studio.get_by_label("Country of tax residence (e.g. PT)").fill(W9["country"])
    studio.get_by_label("Tax id (SSN, EIN or foreign TIN)").fill(W9["tin"])
    studio.get_by_role("button", name="Save tax form").click()
    expect(studio.get_by_role("status").filter(has_text="Tax form saved.")).to_be_visible()
    at_both_widths(studio, "getting paid with the tax form saved", shots, axe_report)

    # Onboarding on the Stripe stand-in's hosted page, then back to the studio.
    studio.get_by_label("Country (e.g. PT)").fill("US")
    studio.get_by_role("button", name="Set up payouts on Stripe").click()
    studio.wait_for_url(re.compile(r"/onboard/"))
    expect(studio.get_by_role("heading", name="Set up payouts")).to_be_visible()
    shots.take(studio, "stripe onboarding stand-in")  # Stripe's page, not ours: looked at, not audited
    studio.get_by_role("button", name="Finish onboarding").click()
    studio.wait_for_url(re.compile(r"/contributor/payouts/$"))
    _reload_until(studio, studio.get_by_text("Payouts are on: Stripe account for US."))
    at_both_widths(studio, "getting paid with payouts on", shots, axe_report)
    assert studio.errors == []

    # The admin creates this month's batch, finds the contributor in it and approves it.
    console = new_page(bypass_csp=True)
    sign_in(console, "/admin/payouts/", ADMIN, "admin")
    console.get_by_label("Period (YYYY-MM, empty for last month)").fill(period)
    console.get_by_role("button", name="Create draft batch").click()
    expect(console.get_by_role("status").filter(has_text=f"Draft batch for {period} created")).to_be_visible()
    batch = console.locator("section.batch").filter(has=console.get_by_role("heading", name=f"Payouts for {period}"))
    line = batch.get_by_role("table", name=f"Payouts in {period}").get_by_role("row").filter(has_text=CONTRIBUTOR)
    expect(line).to_have_count(1)
    expect(line).to_contain_text("draft")
    expect(line.locator("td[data-label=Amount]")).to_have_text(_money(sale))
    at_both_widths(console, "draft payout batch", shots, axe_report)
    batch.get_by_role("button", name=f"Approve and pay {period}").click()
    expect(console.get_by_role("status").filter(has_text=f"Batch {period} approved")).to_be_visible()
    expect(batch.locator(".pill")).to_have_text("approved")
    at_both_widths(console, "approved payout batch", shots, axe_report)
    assert console.errors == []

    # The contributor sees the payout paid, with its amount.
    studio.goto("/contributor/earnings/")
    payouts = studio.locator("section", has=studio.get_by_role("heading", name="Payouts", exact=True))
    paid = payouts.get_by_role("row").filter(has_text=period).filter(has_text="Paid")
    _reload_until(studio, paid)
    expect(paid.locator("td[data-label=Amount]")).to_have_text(_money(sale))
    expect(paid.locator('td[data-label="Paid to you"]')).to_have_text(_money(sale))
    expect(paid.locator('td[data-label="Tax withheld"]')).to_have_text(_money(0))
    paid.scroll_into_view_if_needed()
    at_both_widths(studio, "earnings with the payout paid", shots, axe_report)

    # The per-photo table names the photo by its title, and the ledger downloads as CSV.
    by_photo = studio.locator("section", has=studio.get_by_role("heading", name="By photo"))
    expect(by_photo.get_by_role("link", name=TITLE)).to_be_visible()
    with studio.expect_download() as download:
        studio.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "earnings.csv"
    csv_text = open(download.value.path(), encoding="utf-8").read()
    header, *rows = csv_text.splitlines()
    assert header.startswith("occurred_at,kind,image_id,"), header
    assert [row for row in rows if ",earning," in row], csv_text  # the sale, line by line as the ledger holds it
    assert studio.errors == []
