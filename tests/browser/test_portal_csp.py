"""The portals run under their strict Content-Security-Policy in a real Chromium: every page of the Next.js
export hydrates (its inline flight scripts are allowed by hash) and the browser reports no violation, while
the policy holds no 'unsafe-inline' or 'unsafe-eval' for scripts and forbids framing."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("browser")]

PAGES = ["/", "/cart/", "/account/", "/contributor/", "/contributor/portfolio/", "/admin/", "/admin/pricing/"]


def test_every_portal_page_hydrates_under_its_csp_without_a_violation(portal, new_page):
    page = new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    for path in PAGES:
        response = page.goto(path, wait_until="networkidle")
        assert response is not None and response.status == 200, path
        policy = {part.split()[0]: part.split()[1:] for part in response.headers["content-security-policy"].split("; ")}
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
        assert policy["frame-ancestors"] == ["'none'"]
        # window.next is set by Next's client runtime once the inline bootstrap ran: blocked, it stays unset.
        assert page.evaluate("() => Boolean(window.next && window.next.version)"), f"{path} did not hydrate"
    violations = [text for text in console if "Content Security Policy" in text]
    assert violations == []
    assert page.errors == []


def test_the_portal_pages_carry_the_security_headers(portal):
    response = httpx.get(f"{portal['origin']}/", timeout=30)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
