"""Journeys 2 and 3 in Chromium against devhost on the real embedded stack.

2. A contributor signs in and drops three photos (one good, one byte-for-byte copy of it, one too
   small): each ends in its right state with its reason on screen.
3. An admin approves one image from the review queue with the keyboard and rejects another with a
   reason picked by number; the contributor sees both outcomes.

Every key page is screenshotted at 375 and 1440 px under var/screenshots/ and checked with axe-core.
"""

from __future__ import annotations

import base64
import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import DESKTOP, PHONE, Shots, at_both_widths, sign_in
from tests.e2e.devhost_process import token
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("browser"), pytest.mark.timeout(600)]

CONTRIBUTOR = "carol-studio"
ADMIN = "ada-admin"
OUTCOME_TIMEOUT_MS = 180_000  # validation, processing (models on CPU) and moderation, on a shared machine


def drop_files(page: Page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """A real drop event carrying `files`, as a person dragging them from their desktop makes."""
    payload = [{"name": n, "type": t, "b64": base64.b64encode(data).decode()} for n, t, data in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
              const bin = atob(f.b64);
              const bytes = new Uint8Array(bin.length);
              for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
              dt.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def tab_rows(page: Page, nav_name: str) -> dict:
    """How a tab bar lies at the current width: its rows, and whether any tab reaches past the screen."""
    return page.get_by_role("navigation", name=nav_name).evaluate(
        """(nav) => {
            const tabs = [...nav.querySelectorAll("li")].map((li) => li.getBoundingClientRect());
            return {
              rows: new Set(tabs.map((r) => Math.round(r.top))).size,
              overflows: nav.scrollWidth > nav.clientWidth || Math.max(...tabs.map((r) => r.right)) > window.innerWidth,
            };
        }"""
    )


def console_tabs(page: Page) -> dict:
    """How the console's sliding tab strip lies at the current width: its rows, whether the page itself
    scrolls sideways, whether the strip slides, the edges that show a "more" cue, and whether the current
    and the focused tab (if any) show whole inside the strip."""
    return page.get_by_role("navigation", name="Console").evaluate(
        """(nav) => {
            const ul = nav.querySelector("ul");
            const strip = ul.getBoundingClientRect();
            const whole = (el) => {
              if (!el) return null;
              const r = el.getBoundingClientRect();
              return r.left >= strip.left - 1 && r.right <= strip.right + 1;
            };
            const focused = nav.contains(document.activeElement) ? document.activeElement : null;
            const tops = [...nav.querySelectorAll("li")].map((li) => Math.round(li.getBoundingClientRect().top));
            return {
              rows: new Set(tops).size,
              page_scrolls: document.documentElement.scrollWidth > window.innerWidth,
              slides: ul.scrollWidth > ul.clientWidth,
              cues: nav.dataset.more,
              current_whole: whole(nav.querySelector('[aria-current="page"]')),
              focused: focused && {
                text: focused.innerText,
                whole: whole(focused),
                ring: getComputedStyle(focused).outlineStyle,
              },
            };
        }"""
    )


def row(page: Page, file_name: str, within: str = "Uploads"):
    return page.get_by_role("list", name=within, exact=True).locator(f'li[data-file="{file_name}"]')


def test_journey_2_a_contributor_drops_three_photos_and_each_ends_in_its_state_with_its_reason(
    portal, new_page, axe_report
):
    shots = Shots("2 contributor uploads")
    page = new_page(bypass_csp=True)  # the sign-in page's CSP forbids inline scripts, axe's included
    sign_in(page, "/contributor/", CONTRIBUTOR, "contributor", shots, axe_report)
    expect(page.get_by_role("heading", name="Upload photos", level=1)).to_be_visible()
    at_both_widths(page, "studio before upload", shots, axe_report)
    expect(page.get_by_role("heading", name="Upload your first photos")).to_be_visible()
    for width in (360, 375):  # the phones contributors check their uploads on
        page.set_viewport_size({**PHONE, "width": width})
        assert tab_rows(page, "Studio") == {"rows": 1, "overflows": False}, f"studio tabs at {width} px"
    page.set_viewport_size(DESKTOP)

    good = jpeg_bytes(photo("coffee", megapixels=5))
    small = jpeg_bytes(photo("astronaut"))  # 512 x 512: 0.3 MP
    drop_files(
        page,
        "[data-testid=dropzone]",
        [
            ("espresso.jpg", "image/jpeg", good),
            ("espresso-copy.jpg", "image/jpeg", good),
            ("tiny.jpg", "image/jpeg", small),
        ],
    )

    tiny = row(page, "tiny.jpg")
    expect(tiny.get_by_test_id("stage")).to_have_text("Not accepted", timeout=OUTCOME_TIMEOUT_MS)
    expect(tiny.get_by_test_id("reason")).to_contain_text("512 x 512 pixels (0.3 MP); the minimum is 4 MP")
    expect(tiny.get_by_test_id("reason")).to_contain_text("Upload the full-size export")

    # The two identical files race: whichever storage validates first is the photo, the other its duplicate.
    accepted = re.compile(r"^(In review|Approved · live|Processed|Validated · processing)$")
    for name in ("espresso.jpg", "espresso-copy.jpg"):
        expect(row(page, name).get_by_test_id("stage")).to_have_text(
            re.compile(r"^(Not accepted|In review|Approved · live)$"), timeout=OUTCOME_TIMEOUT_MS
        )
    stages = {n: row(page, n).get_by_test_id("stage").inner_text() for n in ("espresso.jpg", "espresso-copy.jpg")}
    assert sorted(stages.values())[-1] == "Not accepted" and accepted.match(sorted(stages.values())[0]), stages
    duplicate = next(n for n, s in stages.items() if s == "Not accepted")
    expect(row(page, duplicate).get_by_test_id("reason")).to_contain_text(
        "identical to a photo already in your portfolio"
    )
    expect(row(page, duplicate).get_by_test_id("reason")).to_contain_text("Nothing to do.")
    expect(page.get_by_role("status").filter(has_text="3 files")).to_be_visible()
    # Latest uploads reads the queue's own poll: the same three photos, in the same words.
    for name in ("tiny.jpg", "espresso.jpg", "espresso-copy.jpg"):
        said = row(page, name).get_by_test_id("stage").inner_text()
        expect(row(page, name, "Latest uploads").get_by_test_id("stage")).to_have_text(said)
    at_both_widths(page, "studio after upload", shots, axe_report)

    # The accepted photo's details: AI suggestions one click away, saved through the API.
    kept = next(n for n in stages if n != duplicate)
    expect(row(page, kept).get_by_role("link", name=re.compile("Edit details"))).to_be_visible(timeout=60_000)
    row(page, kept).get_by_role("link", name=re.compile("Edit details")).click()
    page.wait_for_url(re.compile(r"/contributor/image/\?id="))
    page.get_by_label("Title").fill("Espresso on a marble counter")
    suggestions = page.get_by_role("group", name="Suggested keywords")
    expect(suggestions).to_be_visible()
    suggestions.get_by_role("button", name=re.compile("^Add all")).click()
    page.get_by_role("textbox", name=re.compile("^Keywords")).fill("coffee, crema, morning")
    page.get_by_role("textbox", name=re.compile("^Keywords")).press("Enter")
    expect(page.get_by_role("list", name="Keywords").get_by_text("crema")).to_be_visible()
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    at_both_widths(page, "details editor", shots, axe_report)

    page.goto("/contributor/portfolio/")
    expect(page.get_by_text("Espresso on a marble counter")).to_be_visible(timeout=30_000)
    at_both_widths(page, "portfolio", shots, axe_report)

    page.goto("/contributor/earnings/")
    expect(page.get_by_role("heading", name="Your level")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Level 1 of \d+: you earn"))).to_be_visible()
    at_both_widths(page, "earnings", shots, axe_report)

    # A tax form with a wrong country: the API's reason shows next to that field.
    page.goto("/contributor/payouts/")
    page.get_by_label("Legal name").fill("Carol Studio")
    page.get_by_label("Street address").fill("Rua Augusta 10")
    page.get_by_label("City").fill("Lisboa")
    page.get_by_label("Country of address (e.g. PT)").fill("PT")
    page.get_by_label("Country of tax residence (e.g. PT)").fill("XX")
    page.get_by_label("Tax id (SSN, EIN or foreign TIN)").fill("123456789")
    page.get_by_role("button", name="Save tax form").click()
    country = page.get_by_label("Country of tax residence (e.g. PT)")
    expect(country).to_have_attribute("aria-invalid", "true")
    expect(country).to_be_focused()  # the first field to fix, its reason read out with it
    expect(page.locator(f"#{country.get_attribute('aria-describedby')}")).to_contain_text("ISO 3166-1")
    at_both_widths(page, "getting paid with a field error", shots, axe_report)
    assert page.errors == []


def _upload_through_the_api(portal, headers, name: str, data: bytes) -> str:
    ticket = httpx.post(
        f"{portal['api']}/contributor/uploads",
        headers=headers,
        json={"file_name": name, "size_bytes": len(data), "content_type": "image/jpeg"},
        timeout=120,  # the machine is shared; a busy minute is not a failure
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    assert httpx.put(body["upload_url"], content=data, headers=body["headers"], timeout=120).status_code == 201
    return body["image_id"]


def _wait_until_in_review(portal, headers, image_ids: list[str]) -> None:
    deadline = time.monotonic() + OUTCOME_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        states = [
            httpx.get(f"{portal['api']}/contributor/images/{i}", headers=headers, timeout=60).json()["state"]
            for i in image_ids
        ]
        if all(s == "flagged" for s in states):
            return
        time.sleep(0.5)
    pytest.fail(f"images not in review in time: {states}")


def test_journey_3_an_admin_decides_from_the_keyboard_and_the_contributor_sees_both_outcomes(
    portal, new_page, axe_report
):
    shots = Shots("3 admin moderation")
    contributor = {"Authorization": f"Bearer {token(portal['env'], '--role', 'contributor', '--sub', CONTRIBUTOR)}"}
    # No title: the policy sends both to a person (missing_title).
    approve_id = _upload_through_the_api(portal, contributor, "rocket.jpg", jpeg_bytes(photo("rocket", megapixels=5)))
    reject_id = _upload_through_the_api(portal, contributor, "cat.jpg", jpeg_bytes(photo("chelsea", megapixels=5)))
    _wait_until_in_review(portal, contributor, [approve_id, reject_id])

    page = new_page(bypass_csp=True)  # axe is injected inline; the pages' CSP rightly forbids that
    sign_in(page, "/admin/", ADMIN, "admin")
    queue = page.get_by_role("list", name=re.compile("^Queue"))
    expect(queue.locator(f'li[data-image-id="{approve_id}"]')).to_be_visible()
    at_both_widths(page, "review queue", shots, axe_report)
    # Seven tabs on one row at every width: on phones a strip that slides, its cue on the side that hides
    # tabs, the current tab in view; at 1440 px all of them show and no cue does.
    for width in (360, 375):  # the phones an admin checks the queue on
        page.set_viewport_size({**PHONE, "width": width})
        expect(page.get_by_role("navigation", name="Console")).to_have_attribute("data-more", "end")
        tabs = console_tabs(page)
        assert tabs | {"focused": None} == {
            "rows": 1,
            "page_scrolls": False,
            "slides": True,
            "cues": "end",
            "current_whole": True,
            "focused": None,
        }, f"console tabs at {width} px: {tabs}"
    console = page.get_by_role("navigation", name="Console")
    expect(console.get_by_role("link", name="Queue", exact=True)).to_have_attribute("aria-current", "page")
    # From the keyboard, every tab is reached and shows whole, with its focus ring, as the focus moves on.
    console.get_by_role("link").first.focus()
    page.keyboard.press("Shift+Tab")  # onto the header, so the tabs are then reached as a keyboard user does
    page.keyboard.press("Tab")
    reached = []
    for _ in range(7):
        focused = console_tabs(page)["focused"]
        assert focused is not None and focused["whole"] and focused["ring"] == "solid", focused
        reached.append(focused["text"])
        page.keyboard.press("Tab")
    assert reached == ["Queue", "Search", "Categories", "Pricing", "Payouts", "Royalties", "Audit log"]
    expect(console).to_have_attribute("data-more", "start")
    # The strip growing taller (the resize observer reports height too) leaves where the user slid it;
    # only a new width brings the current tab back into view.
    strip = console.locator("ul")
    strip.evaluate("(ul) => { ul.style.height = `${ul.clientHeight + 6}px`; }")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    expect(console).to_have_attribute("data-more", "start")
    strip.evaluate("(ul) => { ul.style.height = ''; }")
    shots.take(page, "console tabs slid to the end", full_page=False)
    # A tap on the cue slides the strip back, and the end's cue comes back.
    start_cue = console.locator(".section-nav-cue.start")
    expect(start_cue, f"the start cue after tabbing to the end: {console_tabs(page)}").to_be_visible()
    start_cue.click()
    expect(console).to_have_attribute("data-more", re.compile(r"(^| )end$"))
    page.evaluate("document.activeElement.blur()")  # the queue's j/k/a/r come next
    page.set_viewport_size(DESKTOP)
    expect(console).to_have_attribute("data-more", "")
    assert console_tabs(page) | {"focused": None} == {
        "rows": 1,
        "page_scrolls": False,
        "slides": False,
        "cues": "",
        "current_whole": True,
        "focused": None,
    }
    assert console.get_by_role("link").all_inner_texts() == [
        "Review queue",
        "Search & takedown",
        "Categories",
        "Pricing",
        "Payouts",
        "Royalty levels",
        "Audit log",
    ]

    def move_to(image_id: str) -> None:
        for _ in range(50):
            if queue.locator('li[aria-current="true"]').get_attribute("data-image-id") == image_id:
                return
            ids = queue.locator("li").evaluate_all("(rows) => rows.map((r) => r.dataset.imageId)")
            here = ids.index(queue.locator('li[aria-current="true"]').get_attribute("data-image-id"))
            page.keyboard.press("j" if ids.index(image_id) > here else "k")
        pytest.fail(f"could not reach {image_id} with j/k")

    move_to(approve_id)
    expect(page.get_by_test_id("preview")).to_contain_text("No title")
    page.keyboard.press("a")
    expect(queue.locator(f'li[data-image-id="{approve_id}"]')).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Approved")).to_have_count(1)

    move_to(reject_id)
    page.keyboard.press("r")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    at_both_widths(page, "reject reasons", shots, axe_report)
    page.keyboard.press("1")
    expect(dialog).to_be_hidden()
    expect(queue.locator(f'li[data-image-id="{reject_id}"]')).to_have_count(0)

    page.goto(f"/admin/audit/?actor={ADMIN}")
    expect(page.get_by_role("cell", name=reject_id)).to_be_visible()
    expect(page.get_by_role("cell", name=approve_id)).to_be_visible()
    at_both_widths(page, "audit log", shots, axe_report)
    # Arriving on the last tab at phone width, the strip has slid to show it, and the cue says what is before.
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_role("navigation", name="Console")).to_have_attribute("data-more", "start")
    assert console_tabs(page)["current_whole"] is True
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/payouts/")
    page.get_by_role("button", name="Create draft batch").click()
    expect(page.get_by_role("status").filter(has_text="Draft batch for")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Approve and pay"))).to_be_visible()
    at_both_widths(page, "payout batches", shots, axe_report)
    for path, name in (
        ("/admin/search/?status=approved", "search and takedown"),
        ("/admin/categories/", "categories"),
        ("/admin/pricing/", "pricing"),
        ("/admin/royalties/", "royalty levels"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        at_both_widths(page, name, shots, axe_report)
    assert page.errors == []

    studio = new_page(bypass_csp=True)
    sign_in(studio, "/contributor/", CONTRIBUTOR, "contributor")
    latest = "Latest uploads"
    expect(row(studio, "rocket.jpg", latest).get_by_test_id("stage")).to_have_text("Approved · live", timeout=60_000)
    expect(row(studio, "cat.jpg", latest).get_by_test_id("stage")).to_have_text("Rejected", timeout=60_000)
    expect(row(studio, "cat.jpg", latest).get_by_test_id("reason")).to_have_text(
        "Reviewer's reason: Poor quality (blur, noise, exposure)."
    )
    at_both_widths(studio, "studio after review", shots, axe_report)
    assert studio.errors == []
