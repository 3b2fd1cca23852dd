"""Which changed images could move a cached search page (shared/search/matching.py): never "no" for an
image the query matches; "no" for the images it clearly does not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from shared.search.matching import (
    Anything,
    ImageState,
    Lexeme,
    MatchRule,
    Not,
    Op,
    anchors,
    half,
    parse_tsquery,
    text_may_match,
)
from shared.search.port import SearchFilters

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def image(*lexemes: str, embedding=None, **fields) -> ImageState:
    base = {
        "category": "nature",
        "orientation": "landscape",
        "colors": ("blue",),
        "contributor_id": "carol",
        "usage": "commercial",
        "safety_score": 0.01,
        "width": 4000,
        "height": 3000,
        "added_at": T0,
    }
    return ImageState(lexemes=frozenset(lexemes), embedding=embedding, **{**base, **fields})


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("'dog' & 'beach'", Op("&", Lexeme("dog"), Lexeme("beach"))),
        ("'dog' & !'cat'", Op("&", Lexeme("dog"), Not(Lexeme("cat")))),
        ("'red' <-> 'dog'", Op("<->", Lexeme("red"), Lexeme("dog"))),
        ("'dog' | 'citi'", Op("|", Lexeme("dog"), Lexeme("citi"))),
        (
            "'a' <2> 'b' & ( 'c' | 'd' )",
            Op("&", Op("<->", Lexeme("a"), Lexeme("b")), Op("|", Lexeme("c"), Lexeme("d"))),
        ),
        ("'dog':*", Lexeme("dog", prefix=True)),
        ("'o''neil':AB", Lexeme("o'neil")),
        ("", Anything()),
        ("'dog' &", Anything()),  # unreadable: may match anything
    ],
)
def test_postgres_text_form_of_a_tsquery_parses_into_its_tree(text, tree):
    assert parse_tsquery(text) == tree


def test_a_query_may_match_an_image_unless_a_needed_lexeme_is_missing():
    dog_not_cat = parse_tsquery("'dog' & !'cat'")
    assert text_may_match(dog_not_cat, frozenset({"dog"}))
    assert text_may_match(dog_not_cat, frozenset({"dog", "cat"}))  # a negation is never trusted to exclude
    assert not text_may_match(dog_not_cat, frozenset({"cat", "beach"}))
    either = parse_tsquery("'dog' | 'citi'")
    assert text_may_match(either, frozenset({"citi"})) and not text_may_match(either, frozenset({"beach"}))
    assert text_may_match(parse_tsquery("'dog':*"), frozenset({"doghous"}))
    assert text_may_match(parse_tsquery("!'dog'"), frozenset())


def test_anchors_are_lexemes_of_which_every_image_a_query_may_match_holds_one():
    assert anchors(parse_tsquery("'dog' & 'beach'")) in ({"dog"}, {"beach"})
    assert anchors(parse_tsquery("'dog' | 'citi'")) == {"dog", "citi"}
    assert anchors(parse_tsquery("'dog' & !'cat'")) == {"dog"}
    assert anchors(parse_tsquery("!'cat'")) is None
    assert anchors(parse_tsquery("'dog' | !'cat'")) is None
    assert anchors(Anything()) is None


def test_a_page_may_be_moved_only_by_an_image_that_passes_its_filters_and_one_of_its_legs():
    query = half(np.eye(8)[0])
    rule = MatchRule(SearchFilters(category="nature"), parse_tsquery("'dog'"), query, max_distance=0.6)
    near, far = half(np.eye(8)[0] + 0.1 * np.eye(8)[1]), half(np.eye(8)[1])

    assert rule.may_match(image("dog", embedding=far))
    assert rule.may_match(image("boat", embedding=near))
    assert not rule.may_match(image("boat", embedding=far))
    assert not rule.may_match(image("boat"))  # no embedding: not in the vector leg
    assert not rule.may_match(image("dog", embedding=near, category="city"))
    assert rule.may_match(image("boat", embedding=np.zeros(8, dtype=np.float32)))  # no distance: may
    assert rule.may_match(image("boat", embedding=half(np.ones(4))))  # another model's size: may


def test_every_filter_is_applied_as_sql_applies_it():
    rule = MatchRule(SearchFilters(), None, None)  # browse: every image that passes the filters
    assert rule.browse and rule.may_match(image())
    cases = {
        "orientation": ({"orientation": "portrait"}, {"orientation": "portrait"}),
        "color": ({"color": "red"}, {"colors": ("red",)}),
        "contributor_id": ({"contributor_id": "dan"}, {"contributor_id": "dan"}),
        "usage": ({"usage": "editorial"}, {"usage": "editorial"}),
        "max_safety_score": ({"max_safety_score": 0.5}, {"safety_score": 0.49}),
        "min_width": ({"min_width": 5000}, {"width": 5000}),
        "min_height": ({"min_height": 3001}, {"height": 3001}),
        "added_after": ({"added_after": T0}, {"added_at": T0.replace(second=1)}),
    }
    for name, (filters, passing) in cases.items():
        rule = MatchRule(SearchFilters(**filters))
        assert rule.may_match(image(**passing)), name
        assert not rule.may_match(image(safety_score=0.5)), name
