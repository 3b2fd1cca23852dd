"""The search API through the real HTTP edge, on real Postgres with documents synced from events."""

from __future__ import annotations

import json
import uuid

import pytest

from functions.search_sync.handlers import handle_message
from shared.bus.events import Event, ImageFlagged, ImageProcessed, ImageRemoved, Price, PricingUpdated
from shared.bus.port import ReceivedMessage
from shared.search.factory import get_search_index
from tests.fixtures.photos import jpeg_bytes, photo
from tests.fixtures.search_corpus import approved, listing


async def publish(app, *events: Event) -> None:
    """Apply events the way the search-sync trigger does."""
    from datetime import UTC, datetime

    index = await get_search_index()
    for event in events:
        now = datetime.now(UTC)
        message = ReceivedMessage(
            message_id=uuid.uuid4().hex,
            topic=event.topic,
            subscription="search-sync",
            subject=event.subject,
            body=event.model_dump(mode="json"),
            correlation_id=None,
            delivery_count=1,
            enqueued_time=now,
            locked_until=now,
            lock_token="",
        )
        await handle_message(app.runtime.db, index, message)


def body(response) -> dict:
    return json.loads(response.get_body())


def problem_names(response) -> set[str]:
    assert response.headers["Content-Type"].startswith("application/problem+json")
    return {e["name"] for e in body(response).get("errors", [])}


async def test_search_returns_priced_items_total_and_facets_that_follow_the_filters(search_app):
    dogs = [
        approved(listing(title="Dog in the snow", category="animals", colors=["white"], width=4000, height=3000)),
        approved(listing(title="Dog on a beach", category="animals", colors=["blue"], width=3000, height=4000)),
        approved(listing(title="Dog drawing", category="art", colors=["white"], usage="editorial")),
    ]
    await publish(search_app, *dogs, approved(listing(title="Cat on a sofa", category="animals")))
    await publish(search_app, PricingUpdated(revision=1, prices={"standard": Price(amount_minor=1500, currency="EUR")}))

    everything = body(await search_app.get("search", {"q": "dog"}))
    animals = body(await search_app.get("search", {"q": "dog", "category": "animals", "per_page": 1}))

    assert everything["total"] == 3
    assert {f["value"]: f["count"] for f in everything["facets"]["category"]} == {"animals": 2, "art": 1}
    assert {f["value"]: f["count"] for f in everything["facets"]["license"]} == {"commercial": 2, "editorial": 1}
    assert animals["total"] == 2 and len(animals["items"]) == 1
    assert {f["value"]: f["count"] for f in animals["facets"]["color"]} == {"white": 1, "blue": 1}
    assert {f["value"]: f["count"] for f in animals["facets"]["category"]} == {"animals": 2}
    item = animals["items"][0]
    assert item["price"] == {"amount_minor": 1500, "currency": "EUR"}
    assert item["thumbnail_url"].startswith("http://blobs/thumbnails/") and item["preview_url"]
    assert {item["width"], item["height"]} == {3000, 4000}
    assert item["contributor_id"] == "carol"
    portrait = body(await search_app.get("search", {"q": "dog", "orientation": "portrait", "license": "commercial"}))
    assert [i["id"] for i in portrait["items"]] == [str(dogs[1].image_id)]


async def test_safe_search_is_on_by_default(search_app):
    risky = approved(listing(title="Beach party", safety_score=0.8))
    await publish(search_app, risky, approved(listing(title="Beach sunset")))

    default = body(await search_app.get("search", {"q": "beach"}))
    unfiltered = body(await search_app.get("search", {"q": "beach", "safe": "false"}))

    assert default["total"] == 1 and unfiltered["total"] == 2


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"per_page": "101"}, "per_page"),
        ({"page": "0"}, "page"),
        ({"mode": "fuzzy"}, "mode"),
        ({"sort": "cheapest"}, "sort"),
        ({"orientation": "round"}, "orientation"),
        ({"license": "personal"}, "license"),
        ({"min_width": "-5"}, "min_width"),
        ({"added_after": "yesterday"}, "added_after"),
        ({"catgory": "animals"}, "catgory"),
        ({"q": "nul\x00byte"}, "q"),
        ({"q": "\nsunset"}, "q"),  # refused before trimming, not trimmed into a valid query
        ({"category": "animals\t"}, "category"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_invalid_parameters_are_a_400_naming_the_parameter(search_app, query, named):
    response = await search_app.get("search", query)

    assert response.status_code == 400
    assert named in problem_names(response)


async def test_image_details_and_a_404_once_removed(search_app):
    event = approved(listing(title="Red tulips", keywords=["tulip", "spring"], description="A field in April"))
    await publish(search_app, event)

    shown = await search_app.get(f"images/{event.image_id}")
    assert shown.status_code == 200
    detail = body(shown)
    assert detail["title"] == "Red tulips" and detail["keywords"] == ["tulip", "spring"]
    assert detail["description"] == "A field in April" and detail["license"] == "commercial"

    await publish(search_app, ImageRemoved(image_id=event.image_id, contributor_id="carol", revision=3, reason="x"))
    gone = await search_app.get(f"images/{event.image_id}")
    assert gone.status_code == 404 and body(gone)["type"].endswith("/image-not-found")
    assert (await search_app.get("images/not-a-uuid")).status_code == 404


async def test_similar_images_exclude_the_image_itself_and_its_exact_duplicates(search_app):
    from tests.fixtures.search_corpus import near, topic_vector

    cat = topic_vector("cat")
    source = approved(listing(title="Cat", embedding=cat, phash="1234567812345678"))
    duplicate = approved(listing(title="Cat copy", embedding=cat, phash="1234567812345678"))
    neighbour = approved(listing(title="Kitten", embedding=near(cat, 0.5, seed=1)))
    stranger = approved(listing(title="Tractor", embedding=topic_vector("tractor")))
    await publish(search_app, source, duplicate, neighbour, stranger)

    similar = body(await search_app.get(f"images/{source.image_id}/similar"))

    assert [i["id"] for i in similar["items"]] == [str(neighbour.image_id)]
    assert (await search_app.get(f"images/{uuid.uuid4()}/similar")).status_code == 404


async def test_keyword_suggestions_match_the_prefix_most_used_first(search_app):
    await publish(
        search_app,
        approved(listing(title="a", keywords=["sunset", "sun"])),
        approved(listing(title="b", keywords=["sunset", "sunflower"])),
        approved(listing(title="c", keywords=["sunset", "sunflower", "beach"])),
    )

    response = body(await search_app.get("keywords/suggest", {"q": "Sun"}))

    assert response["suggestions"] == [
        {"keyword": "sunset", "images": 3},
        {"keyword": "sunflower", "images": 2},
        {"keyword": "sun", "images": 1},
    ]
    assert body(await search_app.get("keywords/suggest", {"q": "%"}))["suggestions"] == []
    assert "q" in problem_names(await search_app.get("keywords/suggest"))


async def test_portfolio_search_shows_the_callers_own_images_in_every_state(search_app):
    mine_pending = ImageProcessed(
        image_id=uuid.uuid4(), contributor_id="carol", revision=1, listing=listing(title="Harbour at night")
    )
    mine_live = approved(listing(title="Harbour by day"), contributor_id="carol")
    theirs = approved(listing(title="Harbour in fog"), contributor_id="dave")
    await publish(search_app, mine_pending, mine_live, theirs)
    token = search_app.token("carol", "contributor")

    response = body(await search_app.get("contributor/search", {"q": "harbour"}, token=token))
    pending_only = body(await search_app.get("contributor/search", {"status": "pending"}, token=token))

    assert {(i["id"], i["status"]) for i in response["items"]} == {
        (str(mine_pending.image_id), "pending"),
        (str(mine_live.image_id), "approved"),
    }
    assert [i["id"] for i in pending_only["items"]] == [str(mine_pending.image_id)]
    assert (await search_app.get("contributor/search", token=search_app.token("bob", "buyer"))).status_code == 403
    assert (await search_app.get("contributor/search")).status_code == 401


async def test_contributors_see_the_ai_keywords_with_confidence_and_whether_search_uses_them(search_app):
    from shared.bus.events import Tag

    tagged = listing(title="Harbour").model_copy(
        update={"tags": [Tag(label="boat", confidence=0.83), Tag(label="submarine", confidence=0.11)]}
    )
    await publish(search_app, ImageProcessed(image_id=uuid.uuid4(), contributor_id="carol", revision=1, listing=tagged))

    mine = body(await search_app.get("contributor/search", token=search_app.token("carol", "contributor")))

    assert mine["items"][0]["ai_keywords"] == [
        {"keyword": "boat", "confidence": 0.83, "indexed": True},
        {"keyword": "submarine", "confidence": 0.11, "indexed": False},
    ]


async def test_admin_search_includes_flagged_images_and_is_admin_only(search_app):
    image_id = uuid.uuid4()
    await publish(
        search_app,
        ImageProcessed(image_id=image_id, contributor_id="carol", revision=1, listing=listing(title="Night club")),
        ImageFlagged(image_id=image_id, contributor_id="carol", revision=2, reasons=["safety score 0.7"]),
    )
    admin = search_app.token("alice", "admin")

    flagged = body(await search_app.get("admin/search", {"status": "flagged", "q": "club"}, token=admin))
    public = body(await search_app.get("search", {"q": "club"}))

    assert [(i["id"], i["status_reason"]) for i in flagged["items"]] == [(str(image_id), "safety score 0.7")]
    assert public["total"] == 0
    contributor = search_app.token("carol", "contributor")
    assert (await search_app.get("admin/search", token=contributor)).status_code == 403


async def test_search_by_image_finds_the_indexed_photo_and_refuses_what_is_not_an_image(search_app):
    from shared.ml import get_image_analyzer

    coffee, cat = photo("coffee"), photo("chelsea")
    embeddings = get_image_analyzer().analyze([coffee, cat])
    in_catalogue = approved(listing(title="Morning coffee", embedding=embeddings[0].embedding.tolist()))
    other = approved(listing(title="Tabby cat", embedding=embeddings[1].embedding.tolist()))
    await publish(search_app, in_catalogue, other)

    response = await search_app.call("POST", "search/by-image", body=jpeg_bytes(coffee), content_type="image/jpeg")

    assert response.status_code == 200
    assert body(response)["items"][0]["id"] == str(in_catalogue.image_id)
    refused = await search_app.call("POST", "search/by-image", body=b"<html></html>", content_type="image/jpeg")
    assert refused.status_code == 415 and body(refused)["code"] == "unsupported-type"
    empty = await search_app.call("POST", "search/by-image", body=b"")
    assert empty.status_code == 400


async def test_a_query_picture_gets_far_smaller_limits_than_an_upload(search_app):
    from functions.search_api.routes import BY_IMAGE_MAX_PIXELS
    from tests.fixtures.bad_images import png_declaring

    # 60 MP would be a fine original, but anyone may send this route pictures to decode.
    response = await search_app.call(
        "POST", "search/by-image", body=png_declaring(10_000, 6_000), content_type="image/png"
    )
    assert 10_000 * 6_000 > BY_IMAGE_MAX_PIXELS
    assert response.status_code == 400 and body(response)["code"] == "too-many-pixels"


async def test_a_truncated_query_picture_is_refused_with_what_to_send_instead(search_app):
    from tests.fixtures.bad_images import truncated_jpeg

    response = await search_app.call(
        "POST", "search/by-image", body=truncated_jpeg(megapixels=1), content_type="image/jpeg"
    )
    assert response.status_code == 400
    assert body(response)["type"].endswith("/image-undecodable")
    assert "complete file" in body(response)["detail"]


async def test_explain_says_which_words_hit_which_fields_and_the_semantic_score_for_admins_only(search_app):
    lighthouse = approved(
        listing(title="Lighthouse at dawn", keywords=["coast", "tower"], tags=["beacon"], description="A calm sea")
    )
    await publish(search_app, lighthouse, approved(listing(title="Harbour crane", keywords=["coast"])))
    admin = search_app.token("alice", "admin")

    explained = body(
        await search_app.get("search", {"q": "lighthouse coast beacon OR tower", "explain": "true"}, token=admin)
    )
    plain = body(await search_app.get("search", {"q": "lighthouse coast"}))

    [item] = [i for i in explained["items"] if i["id"] == str(lighthouse.image_id)]
    why = item["explanation"]
    assert why["matched_words"] == {"title": ["lighthouse"], "keywords": ["coast", "tower"], "tags": ["beacon"]}
    assert why["keyword_rank"] == 1
    # The query's embedding against the image's: a cosine, reported whether or not it clears the floor.
    assert -1 <= why["semantic_score"] <= 1 and isinstance(why["within_floor"], bool)
    assert plain["items"][0]["explanation"] is None
    for token in (None, search_app.token("bob", "buyer"), search_app.token("carol", "contributor")):
        refused = await search_app.get("search", {"q": "lighthouse", "explain": "true"}, token=token)
        assert refused.status_code == 403 and body(refused)["type"].endswith("explain-forbidden")
