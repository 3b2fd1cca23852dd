"""Journey 1 of the portals: a guest finds an image, a buyer pays for two licences and downloads the
original, all through pages in Debian's Chromium against devhost on the real embedded stack.

Every key page is screenshotted at 375 and 1440 px under var/screenshots/public-journey/ and checked
with axe-core (serious or critical violations fail), and none may scroll sideways on a phone.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from devhost.portals import first_load_js
from tests.browser.harness import Shots, at_both_widths
from tests.browser.seeding import publish, upload
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CATALOGUE = {
    # name: (photo, title, keywords); all three answer "morning", two are landscape, one square;
    # the close-up is a crop of the espresso, so it is the espresso's similar image.
    "espresso": ("coffee", "Espresso cup on a wooden table", ["espresso", "coffee", "cup", "morning"]),
    "closeup": ("coffee-crop", "Espresso close-up, saucer and spoon", ["espresso", "saucer", "morning"]),
    "astronaut": ("astronaut", "Astronaut portrait before the morning launch", ["astronaut", "space", "morning"]),
}


def _picture(source: str):
    if source != "coffee-crop":
        return photo(source, megapixels=5)
    whole = photo("coffee")
    w, h = whole.size
    crop = whole.crop((int(w * 0.15), int(h * 0.1), int(w * 0.85), int(h * 0.9)))
    scale = (5_000_000 / (crop.width * crop.height)) ** 0.5
    return crop.resize((round(crop.width * scale), round(crop.height * scale)))


@pytest.fixture(scope="module")
def catalogue(portal):
    originals = {name: jpeg_bytes(_picture(source)) for name, (source, _, _) in CATALOGUE.items()}
    ids = {
        name: upload(portal, "carol", originals[name], f"{name}.jpg", title, keywords)
        for name, (_, title, keywords) in CATALOGUE.items()
    }
    publish(portal, "carol", list(ids.values()))
    return {name: {"id": ids[name], "original": originals[name], "title": CATALOGUE[name][1]} for name in ids}


def _sign_in_on_provider_page(page, user: str, role: str) -> None:
    page.wait_for_url(re.compile(r"/auth/authorize"))
    page.get_by_label("User id").fill(user)
    page.get_by_role("radio", name=re.compile(role, re.I)).check()
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.timeout(900)
def test_a_guest_finds_an_image_signs_in_buys_two_licences_and_downloads_the_original(
    new_page, portal, catalogue, axe_report
):
    shots = Shots("public journey")
    page = new_page(accept_downloads=True)

    # A guest opens the marketplace: one wide search box, the newest images below it.
    page.goto("/")
    page.get_by_role("list", name="Newest images").get_by_role("listitem").first.wait_for()
    at_both_widths(page, "home", shots, axe_report)

    # Types a word: keyword suggestions appear; the search keeps the words in the box and the URL.
    box = page.get_by_role("combobox", name="Search images")
    box.fill("morn")
    page.get_by_role("option", name=re.compile("^morning")).wait_for()
    shots.take(page, "suggestions", full_page=False)
    box.press("ArrowDown")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/\?q=morning"))
    results = page.get_by_role("list", name="Search results")
    expect(results.get_by_role("listitem")).to_have_count(3)
    at_both_widths(page, "results", shots, axe_report)

    # Narrows by a facet: Orientation > Landscape becomes a removable chip and part of the URL.
    page.get_by_role("navigation", name="Filters").get_by_role("link", name=re.compile(r"^Landscape")).click()
    page.wait_for_url(re.compile(r"orientation=landscape"))
    page.get_by_role("link", name="Remove filter Landscape").wait_for()
    expect(results.get_by_role("listitem")).to_have_count(2)
    expect(results.get_by_role("link", name=catalogue["astronaut"]["title"])).to_have_count(0)  # the square one
    at_both_widths(page, "results-filtered", shots, axe_report)

    # Opens the espresso image: watermarked preview, licences with prices, keywords, similar images.
    results.get_by_role("link", name=catalogue["espresso"]["title"]).click()
    page.get_by_role("heading", level=1, name=catalogue["espresso"]["title"]).wait_for()
    similar = page.get_by_role("list", name="Similar images")
    similar.get_by_role("listitem").first.wait_for()
    assert page.get_by_role("navigation", name="Keywords").get_by_role("link", name="espresso").count() == 1
    assert re.search(r"\d", page.get_by_role("group", name="Licence").inner_text())  # prices shown
    at_both_widths(page, "image", shots, axe_report)

    # Opens a similar one.
    similar.get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/image/\?id=(?!" + catalogue["espresso"]["id"] + ")"))
    page.get_by_role("heading", level=1).wait_for()
    similar_title = page.get_by_role("heading", level=1).inner_text()
    assert similar_title == catalogue["closeup"]["title"]
    similar_id = page.url.split("id=")[1]

    # Signs in as a buyer on the provider's page and comes back to the same image.
    page.get_by_role("button", name="Sign in").click()
    _sign_in_on_provider_page(page, "bob", "buyer")
    page.wait_for_url(re.compile(r"/image/\?id=" + similar_id))
    page.get_by_role("link", name="Account").wait_for()

    # Adds two licences: the similar image (standard) and the espresso (enhanced).
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_text("Standard licence added to your cart").wait_for()
    page.goto(f"/image/?id={catalogue['espresso']['id']}")
    page.get_by_role("radio", name=re.compile("Enhanced licence")).check()
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_text("Enhanced licence added to your cart").wait_for()

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    cart = page.get_by_role("list", name="Images in your cart")
    expect(cart.get_by_role("listitem")).to_have_count(2)
    at_both_widths(page, "cart", shots, axe_report)

    # Pays on the stand-in's hosted page and comes back to the order, which turns paid by itself.
    page.get_by_role("button", name="Check out").click()
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(r"/checkout/return/\?order_id="))
    page.get_by_role("heading", name=re.compile("Payment received")).wait_for(timeout=90_000)
    at_both_widths(page, "order-paid", shots, axe_report)

    # Downloads the original: the bytes are exactly what the contributor uploaded.
    with page.expect_download() as download_info:
        page.get_by_role("button", name=f"Download {catalogue['espresso']['title']}").click()
    download = download_info.value
    with open(download.path(), "rb") as fh:
        assert fh.read() == catalogue["espresso"]["original"]
    assert download.suggested_filename == "espresso.jpg"

    # The account keeps the orders, the licences with their download buttons and the plans.
    page.goto("/account/")
    page.get_by_role("heading", name="Licences and downloads").wait_for()
    page.get_by_role("button", name=f"Download {catalogue['espresso']['title']}").wait_for()
    page.get_by_text("paid").first.wait_for()
    at_both_widths(page, "account", shots, axe_report)

    assert page.errors == [], f"uncaught errors in the page: {page.errors}"


def test_the_search_page_ships_at_most_150_kb_of_javascript_gzipped_on_first_load(portal):
    sizes = first_load_js("index.html")  # the export devhost just built and serves
    gzipped = sum(gz for _, gz in sizes.values())
    assert gzipped <= 150_000, f"first load of / is {gzipped / 1000:.1f} kB gzipped: {sizes}"
