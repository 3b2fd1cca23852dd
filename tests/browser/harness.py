"""Driving the portals in Debian's Chromium with Playwright: launch, screenshots, axe-core.

Shared by every browser journey (public portal, contributor studio, admin console). Nothing is
downloaded: Chromium comes from apt (devhost/setup.sh) and axe-core from the portals' npm packages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = PROJECT_ROOT / "portals" / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__axe-core.min.js"  # answered by the test browser, never by devhost
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1440, "height": 900}
# Chromium must not reach for Google's services: this machine's network refuses them, slowly.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def launch_chromium(playwright: Any) -> Any:
    """Headless Debian Chromium; Playwright gives each launch a fresh, empty profile directory."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run devhost/setup.sh (as root it installs it with apt)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class AxeReport:
    """Every page's axe result of one run, written next to the screenshots for the note."""

    path: Path
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, url: str, violations: list[dict[str, Any]]) -> None:
        self.pages[name] = {
            "url": url,
            "violations": [
                {"id": v["id"], "impact": v.get("impact"), "help": v["help"], "nodes": len(v["nodes"])}
                for v in violations
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.pages, indent=2))


def check_axe(page: Any, name: str, report: AxeReport | None = None) -> list[dict[str, Any]]:
    """Runs axe-core in the page; fails on any serious or critical violation, returns the others."""
    if not AXE_JS.exists():
        pytest.fail("axe-core is missing from portals/node_modules: run devhost/setup.sh")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Served as a same-origin file by the browser itself, so the pages' CSP (script-src 'self', no
        # inline) stays on while axe runs; a page whose CSP allows no script at all needs bypass_csp.
        if not getattr(page, "axe_routed", False):
            page.route(
                f"**{AXE_PATH}", lambda route: route.fulfill(body=AXE_JS.read_text(), content_type="text/javascript")
            )
            page.axe_routed = True
        page.add_script_tag(url=AXE_PATH)
    result = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    violations = result["violations"]
    if report is not None:
        report.add(name, page.url, violations)
    bad = [v for v in violations if v.get("impact") in ("serious", "critical")]
    if bad:
        lines = [
            f"- {v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(str(n["target"]) for n in v["nodes"][:4])
            for v in bad
        ]
        pytest.fail(f"axe-core: serious/critical violations on {name} ({page.url}):\n" + "\n".join(lines))
    return violations


@dataclass
class Shots:
    """Screenshots of one journey under var/screenshots/<journey>/, at phone and desktop width."""

    journey: str
    root: Path = SCREENSHOTS

    @property
    def folder(self) -> Path:
        return self.root / _slug(self.journey)

    def take(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        width = page.viewport_size["width"] if page.viewport_size else 0
        path = self.folder / f"{_slug(name)}-{width}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def at_both_widths(page: Any, name: str, shots: Shots, report: AxeReport | None = None) -> None:
    """Looks at the current page at 375 and 1440 px: screenshot, no sideways scroll, axe; ends at 1440."""
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # layout settles after the resize
        shots.take(page, name)
        assert no_horizontal_scroll(page), f"{name} scrolls sideways at {size['width']} px"
        check_axe(page, f"{name} @{size['width']}", report)


def sign_in(
    page: Any, path: str, sub: str, role: str, shots: Shots | None = None, report: AxeReport | None = None
) -> None:
    """Open a guarded page, press its Sign in, pick a user and role on the local sign-in page."""
    page.goto(path)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/auth/authorize"))
    if shots is not None:
        at_both_widths(page, "sign in", shots, report)
    page.get_by_label("User id").fill(sub)
    page.get_by_role("radio", name=re.compile(f"^{role.capitalize()}")).check()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(path) + r"$"))
