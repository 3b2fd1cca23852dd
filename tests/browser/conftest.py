"""Fixtures for browser journeys: one devhost on the real embedded stack with the portals, one Chromium.

Every journey shares the one devhost (session scope) to keep the suite short, so each seeds photos no
other journey uploads: the same bytes would be refused as an exact duplicate, a crop would be flagged.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from shared.config import PROJECT_ROOT
from tests.browser.harness import SCREENSHOTS, AxeReport, launch_chromium
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost
from tests.e2e.payouts_flow import short_hold


@pytest.fixture(scope="package")
def portal():
    """devhost with the portals served at / (built first if their sources changed)."""
    # Under var/, not pytest's 0700 temp root: the embedded Postgres runs as its own user and must
    # reach its data dir, and a concurrent pytest run may narrow that root again at any moment.
    (PROJECT_ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="browser-e2e-", dir=PROJECT_ROOT / "var"))
    env = devhost_environment(var_dir)
    env.pop("STRIPE_API_BASE", None)  # devhost starts the Stripe stand-in
    origin = f"http://127.0.0.1:{env['DEVHOST_PORT']}"
    env["PUBLIC_BASE_URL"] = origin  # Stripe's hosted page returns the buyer here
    env["DEVHOST_PORTALS"] = "true"
    short_hold(env)  # journey 4 pays a contributor for a sale made seconds before
    env["PAYOUT_ONBOARDING_RETURN_URL"] = f"{origin}/contributor/payouts/"  # back from Stripe's onboarding page
    log_path = var_dir / "devhost.log"
    proc = start_devhost(env, log_path)
    try:
        deadline = time.monotonic() + 600  # a first build of the portals takes a minute or two
        while httpx.get(f"{origin}/", timeout=620).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail(f"the portal never answered at {origin}/:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield {"origin": origin, "api": f"{origin}/api", "env": env, "log": log_path}
    finally:
        stop_devhost(proc)
        shutil.rmtree(var_dir, ignore_errors=True)


# Package scope, not session: Playwright's sync API keeps an event loop running in the main thread while it is
# open, and every later test on the same xdist worker that calls asyncio.run() would fail. The browser tests
# run together on one worker (xdist_group "browser"), so this closes it right after the last of them.
@pytest.fixture(scope="package")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def axe_report():
    return AxeReport(SCREENSHOTS / "axe.json")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed
    return report


@pytest.fixture
def new_page(request, chromium, portal):
    """A fresh browser context (its own sessionStorage and cookies) per call; console errors collected.

    When the test fails, each page's last state is saved as var/screenshots/failed/<test>-<n>.png.
    """
    contexts = []

    def make(**options):
        context = chromium.new_context(base_url=portal["origin"], viewport={"width": 1440, "height": 900}, **options)
        context.set_default_timeout(45_000)  # a shared 2-core machine can be slow
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield make
    for n, context in enumerate(contexts):
        if getattr(request.node, "browser_failed", False):
            for page in context.pages:
                SCREENSHOTS.joinpath("failed").mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / "failed" / f"{request.node.name}-{n}.png"), full_page=True)
        context.close()
