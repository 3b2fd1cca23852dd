"""The automatic moderation policy: an image goes live on its own only when nothing needs a human."""

from __future__ import annotations

import uuid

import pytest

from functions.moderation.policy import ModerationPolicy
from shared.config import load_settings
from tests.fixtures.moderation import listing

POLICY = ModerationPolicy(max_safety_score=0.3, min_keywords=5, min_megapixels=4.0, require_title=True)


def test_a_safe_titled_well_keyworded_large_original_has_no_reasons():
    assert POLICY.reasons(listing(), None) == []


@pytest.mark.parametrize(
    ("overrides", "near_duplicate_of", "expected"),
    [
        ({"safety_score": 0.3}, None, ["nsfw_score"]),
        ({"safety_score": 0.97}, None, ["nsfw_score"]),
        ({}, uuid.uuid4(), ["near_duplicate_of"]),
        ({"width": 1999, "height": 2000}, None, ["low_resolution"]),
        ({"title": "   "}, None, ["missing_title"]),
        ({"keywords": ["coffee", "cup", "cafe", "morning"]}, None, ["missing_keywords"]),
        # Repeats and blanks do not count towards the minimum.
        ({"keywords": ["coffee", "Coffee", "cup", "cafe", "morning", " "]}, None, ["missing_keywords"]),
        (
            {"safety_score": 0.5, "title": "", "keywords": [], "width": 640, "height": 480},
            uuid.uuid4(),
            ["nsfw_score", "near_duplicate_of", "low_resolution", "missing_title", "missing_keywords"],
        ),
    ],
)
def test_each_failed_rule_is_reported_as_its_reason(overrides, near_duplicate_of, expected):
    assert POLICY.reasons(listing(**overrides), near_duplicate_of) == expected


def test_exactly_the_minimum_resolution_passes():
    assert POLICY.reasons(listing(width=2000, height=2000), None) == []


def test_thresholds_come_from_the_settings():
    policy = ModerationPolicy.from_settings(
        load_settings(
            MODERATION_MAX_SAFETY_SCORE=0.9,
            MODERATION_MIN_KEYWORDS=0,
            MODERATION_MIN_MEGAPIXELS=0.1,
            MODERATION_REQUIRE_TITLE=False,
        )
    )
    lenient = listing(safety_score=0.5, title="", keywords=[], width=400, height=300)
    assert policy.reasons(lenient, None) == []
    assert POLICY.reasons(lenient, None) == ["nsfw_score", "low_resolution", "missing_title", "missing_keywords"]
