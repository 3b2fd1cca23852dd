"""What the moderation API refuses before anything changes: each bad input names its field."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from functions.moderation.models import (
    REJECT_REASONS,
    AuditQuery,
    BulkModerateIn,
    CategoryIn,
    CategoryPatch,
    ImagePatch,
    PricingIn,
    RejectIn,
)


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.value.errors()}


def test_the_reject_reason_codes_are_the_fixed_list():
    assert set(REJECT_REASONS) == {
        "poor_quality",
        "duplicate",
        "trademark_or_logo",
        "person_without_release",
        "nudity",
        "violence",
        "not_a_photo",
        "other",
    }


def test_an_unknown_reason_code_is_refused():
    with pytest.raises(ValidationError) as exc:
        RejectIn.model_validate({"reason_code": "ugly"})
    assert _fields(exc) == {"reason_code"}


def test_a_reject_without_a_reason_code_is_refused():
    with pytest.raises(ValidationError) as exc:
        RejectIn.model_validate({"note": "blurry"})
    assert _fields(exc) == {"reason_code"}


def test_other_needs_a_note_and_a_blank_note_is_not_one():
    with pytest.raises(ValidationError, match="needs a note"):
        RejectIn.model_validate({"reason_code": "other"})
    with pytest.raises(ValidationError) as exc:
        RejectIn.model_validate({"reason_code": "other", "note": "   "})
    assert _fields(exc) == {"note"}
    assert RejectIn.model_validate({"reason_code": "other", "note": " watermark "}).note == "watermark"
    assert RejectIn.model_validate({"reason_code": "nudity"}).note is None


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_bulk_takes_up_to_500_ids():
    assert len(BulkModerateIn.model_validate({"action": "approve", "image_ids": _ids(500)}).image_ids) == 500
    with pytest.raises(ValidationError) as exc:
        BulkModerateIn.model_validate({"action": "approve", "image_ids": _ids(501)})
    assert _fields(exc) == {"image_ids"}
    with pytest.raises(ValidationError):
        BulkModerateIn.model_validate({"action": "approve", "image_ids": []})


def test_bulk_refuses_repeated_ids_whatever_their_case():
    ids = _ids(3)
    with pytest.raises(ValidationError, match="repeated") as exc:
        BulkModerateIn.model_validate({"action": "approve", "image_ids": [*ids, ids[1].upper()]})
    assert _fields(exc) == {"image_ids"}


def test_bulk_reject_needs_a_reason_and_approve_takes_none():
    with pytest.raises(ValidationError, match="reason_code"):
        BulkModerateIn.model_validate({"action": "reject", "image_ids": _ids(2)})
    with pytest.raises(ValidationError, match="takes no reason_code"):
        BulkModerateIn.model_validate({"action": "approve", "image_ids": _ids(2), "reason_code": "nudity"})
    with pytest.raises(ValidationError, match="needs a note"):
        BulkModerateIn.model_validate({"action": "reject", "image_ids": _ids(2), "reason_code": "other"})
    with pytest.raises(ValidationError) as exc:
        BulkModerateIn.model_validate({"action": "delete", "image_ids": _ids(2)})
    assert _fields(exc) == {"action"}


def test_a_malformed_id_is_not_a_reason_to_refuse_the_whole_bulk_request():
    request = BulkModerateIn.model_validate({"action": "approve", "image_ids": ["not-a-uuid", *_ids(2)]})
    assert request.image_ids[0] == "not-a-uuid"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 101, "x" * 500])
def test_keyword_lists_with_empty_or_overlong_entries_are_refused(bad):
    with pytest.raises(ValidationError) as exc:
        ImagePatch.model_validate({"keywords": ["coffee", bad]})
    assert _fields(exc) == {"keywords.1"}


def test_keywords_are_trimmed_and_must_be_unique():
    assert ImagePatch.model_validate({"keywords": [" coffee ", "cup"]}).keywords == ["coffee", "cup"]
    with pytest.raises(ValidationError, match="repeated: Coffee, coffee"):
        ImagePatch.model_validate({"keywords": ["coffee", "Coffee"]})
    with pytest.raises(ValidationError):
        ImagePatch.model_validate({"keywords": [f"k{i}" for i in range(51)]})


def test_an_edit_must_change_something_and_may_not_null_title_or_keywords():
    with pytest.raises(ValidationError, match="at least one"):
        ImagePatch.model_validate({})
    with pytest.raises(ValidationError) as exc:
        ImagePatch.model_validate({"title": None})
    assert _fields(exc) == {"title"}
    assert ImagePatch.model_validate({"category": None}).model_fields_set == {"category"}
    with pytest.raises(ValidationError) as exc:
        ImagePatch.model_validate({"title": "x", "price": 3})
    assert _fields(exc) == {"price"}


def test_category_slugs_are_lowercase_kebab_case():
    assert CategoryIn.model_validate({"slug": "food-and-drink", "name": "Food & drink"}).slug == "food-and-drink"
    for bad in ("Food", "food_drink", "-food", "food--drink", ""):
        with pytest.raises(ValidationError):
            CategoryIn.model_validate({"slug": bad, "name": "Food"})
    with pytest.raises(ValidationError):
        CategoryPatch.model_validate({})


def test_prices_are_positive_integer_minor_units_with_an_iso_currency_for_both_license_types():
    ok = {"standard": {"amount_minor": 2900, "currency": "USD"}, "enhanced": {"amount_minor": 9900, "currency": "USD"}}
    assert PricingIn.model_validate({"prices": ok}).prices.enhanced.amount_minor == 9900
    for field, value in (("amount_minor", 29.5), ("amount_minor", 0), ("currency", "usd"), ("currency", "DOLLAR")):
        bad = {**ok, "standard": {**ok["standard"], field: value}}
        with pytest.raises(ValidationError) as exc:
            PricingIn.model_validate({"prices": bad})
        assert _fields(exc) == {f"prices.standard.{field}"}
    with pytest.raises(ValidationError) as exc:
        PricingIn.model_validate({"prices": {"standard": ok["standard"]}})
    assert _fields(exc) == {"prices.enhanced"}


def test_audit_times_are_iso_8601_with_a_zone():
    assert AuditQuery.model_validate({"since": "2026-11-02T00:00:00Z"}).since.tzinfo is not None
    for bad in ("2026-11-02T00:00:00", "0.5", "1767225600", "yesterday"):
        with pytest.raises(ValidationError) as exc:
            AuditQuery.model_validate({"since": bad})
        assert _fields(exc) == {"since"}
