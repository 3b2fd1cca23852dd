"""Plain async handlers of the moderation service.

Each one is a business rule on its own transaction: read the image (locked), check the rule, change
the row, write the audit entry and put the event in the outbox, all committed together or not at all.
Moderation owns every image's `revision` after processing's first: each event it emits carries the
stored revision plus one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from functions.moderation.models import (
    AuditQuery,
    BulkModerateIn,
    BulkResult,
    CategoryIn,
    CategoryPatch,
    ImagePatch,
    PricingIn,
    QueueQuery,
)
from functions.moderation.policy import ModerationPolicy
from shared.bus.events import (
    ImageApproved,
    ImageFlagged,
    ImageListing,
    ImageProcessed,
    ImageReanalyzed,
    ImageRejected,
    ImageRemoved,
    ImageUpdated,
    PricingUpdated,
)
from shared.bus.inbox import claim_message
from shared.bus.outbox import add_to_outbox
from shared.bus.port import ReceivedMessage
from shared.config import Settings
from shared.db import Database
from shared.pricing import launch_prices

SUBSCRIPTION = "moderation"
POLICY_ACTOR = "moderation-policy"
log = structlog.get_logger()


# --- errors the API turns into problem+json -------------------------------------------------


class ModerationError(Exception):
    status = 400
    slug = "moderation-error"
    title = "Moderation error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ModerationError):
    status, slug, title = 404, "not-found", "Not found"


class StateConflict(ModerationError):
    status, slug, title = 409, "state-conflict", "The image is not in a state that allows this"


class AlreadyExists(ModerationError):
    status, slug, title = 409, "already-exists", "Already exists"


class UnknownCategory(ModerationError):
    status, slug, title = 422, "unknown-category", "Unknown or retired category"


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the audit log records it."""

    sub: str


# --- the image.processed subscription -----------------------------------------------------------


async def handle_image_processed(db: Database, message: ReceivedMessage, policy: ModerationPolicy) -> str:
    """Approve the image automatically or queue it with reasons; returns what happened.

    A redelivery, or a second processing of an image moderation already holds, changes nothing.
    """
    event = ImageProcessed.model_validate(message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "moderation", SUBSCRIPTION, message.message_id):
            return "duplicate"
        reasons = policy.reasons(event.listing, event.near_duplicate_of)
        state = "pending" if reasons else "approved"
        revision = event.revision + 1
        inserted = await conn.fetchrow(
            """
            insert into moderation.images (image_id, contributor_id, revision, state, reasons, listing,
                                           original_blob, file_name, near_duplicate_of, decided_at, decided_by)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                    case when $4 = 'approved' then now() end, case when $4 = 'approved' then $10 end)
            on conflict (image_id) do nothing
            returning decided_at
            """,
            event.image_id,
            event.contributor_id,
            revision,
            state,
            reasons,
            event.listing.model_dump(mode="json"),
            event.original_blob,
            event.file_name,
            event.near_duplicate_of,
            POLICY_ACTOR,
        )
        if inserted is None:
            log.warning("moderation.already_known", image_id=str(event.image_id))
            return "already_known"
        if state == "approved":
            await add_to_outbox(
                conn,
                ImageApproved(
                    image_id=event.image_id,
                    contributor_id=event.contributor_id,
                    revision=revision,
                    approved_at=inserted["decided_at"],
                    original_blob=event.original_blob,
                    file_name=event.file_name,
                    listing=event.listing,
                ),
            )
        else:
            await add_to_outbox(
                conn,
                ImageFlagged(
                    image_id=event.image_id, contributor_id=event.contributor_id, revision=revision, reasons=reasons
                ),
            )
    log.info("moderation.policy_decided", image_id=str(event.image_id), state=state, reasons=reasons)
    return state


class NotYetKnown(RuntimeError):
    """A re-analysis overtook the image's first image.processed: raising lets the bus deliver it again later."""


async def handle_image_reanalyzed(db: Database, message: ReceivedMessage) -> str:
    """Merge a re-embed's tags and embedding into the listing; a live image announces it (image.updated).

    A pending image keeps waiting for its decision with the new listing (image.flagged, same reasons);
    a rejected or removed one shows nowhere, so nothing is announced. Returns what happened.
    """
    event = ImageReanalyzed.model_validate(message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "moderation", SUBSCRIPTION, message.message_id):
            return "duplicate"
        row = await conn.fetchrow(
            f"select {_IMAGE_COLUMNS} from moderation.images where image_id = $1 for update", event.image_id
        )
        if row is None:
            raise NotYetKnown(f"image {event.image_id} is not in moderation yet")
        if row["state"] not in ("approved", "pending"):
            return f"ignored_{row['state']}"
        listing = ImageListing.model_validate(row["listing"])
        new_listing = ImageListing.model_validate(
            {
                **listing.model_dump(mode="json"),
                "tags": [tag.model_dump(mode="json") for tag in event.tags],
                "embedding": event.embedding,
            }
        )
        if new_listing == listing:
            return "unchanged"
        revision = row["revision"] + 1
        await conn.execute(
            "update moderation.images set listing = $2, revision = $3, updated_at = now() where image_id = $1",
            event.image_id,
            new_listing.model_dump(mode="json"),
            revision,
        )
        if row["state"] == "approved":
            announced: ImageUpdated | ImageFlagged = ImageUpdated(
                image_id=event.image_id, contributor_id=row["contributor_id"], revision=revision, listing=new_listing
            )
        else:
            announced = ImageFlagged(
                image_id=event.image_id,
                contributor_id=row["contributor_id"],
                revision=revision,
                reasons=list(row["reasons"]),
                listing=new_listing,
            )
        await add_to_outbox(conn, announced, correlation_id=message.correlation_id)
    log.info("moderation.image_reanalyzed", image_id=str(event.image_id), model_version=event.model_version)
    return "updated"


# --- reading -----------------------------------------------------------------------------------

_IMAGE_COLUMNS = """
    image_id, contributor_id, state, revision, reasons, queued_at, decided_at, decided_by, reject_reason_code,
    reject_note, removed_reason, file_name, original_blob, near_duplicate_of, listing
"""


def _image_view(row: asyncpg.Record) -> dict[str, Any]:
    listing = row["listing"]
    renditions = listing.get("renditions") or {}
    # original_blob is a private path: events carry it, the API does not show it.
    view = {k: row[k] for k in row.keys() if k not in ("listing", "original_blob", "total")}
    return {
        **view,
        "title": listing.get("title", ""),
        "description": listing.get("description", ""),
        "keywords": listing.get("keywords", []),
        "category": listing.get("category"),
        "width": listing["width"],
        "height": listing["height"],
        "safety_score": listing["safety_score"],
        "thumbnail_url": renditions.get("thumbnail_url", ""),
        "preview_url": renditions.get("preview_url", ""),
    }


async def moderation_queue(db: Database, query: QueueQuery) -> dict[str, Any]:
    """Pending images, oldest first, with optional filters; one page and the total."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            select {_IMAGE_COLUMNS}, count(*) over () as total
            from moderation.images
            where state = 'pending'
              and ($1::text is null or $1 = any(reasons))
              and ($2::text is null or contributor_id = $2)
              and ($3::int is null or queued_at <= now() - make_interval(mins => $3))
            order by queued_at, image_id
            limit $4 offset $5
            """,
            query.reason,
            query.contributor,
            query.min_age_minutes,
            query.per_page,
            (query.page - 1) * query.per_page,
        )
        total = rows[0]["total"] if rows else await _queue_total(conn, query)
    items = [_image_view(r) for r in rows]
    return {"items": items, "total": total, "page": query.page, "per_page": query.per_page}


async def _queue_total(conn: asyncpg.Connection, query: QueueQuery) -> int:
    # Past the last page the window count is not there; count separately so `total` stays right.
    return await conn.fetchval(
        """
        select count(*) from moderation.images
        where state = 'pending' and ($1::text is null or $1 = any(reasons))
          and ($2::text is null or contributor_id = $2)
          and ($3::int is null or queued_at <= now() - make_interval(mins => $3))
        """,
        query.reason,
        query.contributor,
        query.min_age_minutes,
    )


async def get_image(db: Database, image_id: uuid.UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(f"select {_IMAGE_COLUMNS} from moderation.images where image_id = $1", image_id)
    if row is None:
        raise NotFound(f"no image {image_id} in moderation")
    return _image_view(row)


# --- decisions ---------------------------------------------------------------------------------


async def _locked_image(conn: asyncpg.Connection, image_id: uuid.UUID) -> asyncpg.Record:
    # FOR UPDATE: a second admin deciding the same image waits here, then sees the first one's decision.
    row = await conn.fetchrow(
        f"select {_IMAGE_COLUMNS} from moderation.images where image_id = $1 for update", image_id
    )
    if row is None:
        raise NotFound(f"no image {image_id} in moderation")
    return row


def _require_state(row: asyncpg.Record, allowed: tuple[str, ...], doing: str) -> None:
    if row["state"] not in allowed:
        raise StateConflict(
            f"image {row['image_id']} is {row['state']}; only {' or '.join(allowed)} images can be {doing}"
        )


def _decision_state(row: asyncpg.Record) -> dict[str, Any]:
    return {"state": row["state"], "revision": row["revision"], "reasons": list(row["reasons"])}


async def audit(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
) -> None:
    """Record an admin action; call it inside the transaction of the change it describes."""
    await conn.execute(
        "insert into moderation.audit_log (actor, action, target_type, target_id, before, after, correlation_id) "
        "values ($1, $2, $3, $4, $5, $6, $7)",
        actor.sub,
        action,
        target_type,
        target_id,
        before,
        after,
        structlog.contextvars.get_contextvars().get("correlation_id"),
    )


async def approve_image(db: Database, image_id: uuid.UUID, actor: Actor) -> dict[str, Any]:
    """A pending image goes live: image.approved with the full listing."""
    async with db.transaction() as conn:
        row = await _locked_image(conn, image_id)
        _require_state(row, ("pending",), "approved")
        revision = row["revision"] + 1
        updated = await conn.fetchrow(
            "update moderation.images set state = 'approved', revision = $2, decided_at = now(), decided_by = $3, "
            f"updated_at = now() where image_id = $1 returning {_IMAGE_COLUMNS}",
            image_id,
            revision,
            actor.sub,
        )
        await add_to_outbox(
            conn,
            ImageApproved(
                image_id=image_id,
                contributor_id=row["contributor_id"],
                revision=revision,
                approved_at=updated["decided_at"],
                original_blob=row["original_blob"],
                file_name=row["file_name"],
                listing=ImageListing.model_validate(row["listing"]),
            ),
        )
        await audit(
            conn, actor, "image.approve", "image", str(image_id), _decision_state(row), _decision_state(updated)
        )
    return _image_view(updated)


async def reject_image(
    db: Database, image_id: uuid.UUID, actor: Actor, reason_code: str, note: str | None
) -> dict[str, Any]:
    """A pending image is refused with a reason the contributor sees: image.rejected."""
    async with db.transaction() as conn:
        row = await _locked_image(conn, image_id)
        _require_state(row, ("pending",), "rejected")
        revision = row["revision"] + 1
        updated = await conn.fetchrow(
            "update moderation.images set state = 'rejected', revision = $2, decided_at = now(), decided_by = $3, "
            "reject_reason_code = $4, reject_note = $5, updated_at = now() "
            f"where image_id = $1 returning {_IMAGE_COLUMNS}",
            image_id,
            revision,
            actor.sub,
            reason_code,
            note,
        )
        await add_to_outbox(
            conn,
            ImageRejected(
                image_id=image_id,
                contributor_id=row["contributor_id"],
                revision=revision,
                reason_code=reason_code,
                note=note,
            ),
        )
        after = {**_decision_state(updated), "reason_code": reason_code, "note": note}
        await audit(conn, actor, "image.reject", "image", str(image_id), _decision_state(row), after)
    return _image_view(updated)


async def moderate_in_bulk(db: Database, request: BulkModerateIn, actor: Actor) -> list[BulkResult]:
    """Decide each id on its own transaction: a bad or undecidable id fails alone, the rest proceed."""
    results = []
    for raw_id in request.image_ids:
        try:
            image_id = uuid.UUID(raw_id.strip())
        except ValueError:
            results.append(BulkResult(image_id=raw_id, status=400, error="invalid-id", detail="not a UUID"))
            continue
        try:
            if request.action == "approve":
                view = await approve_image(db, image_id, actor)
            else:
                view = await reject_image(db, image_id, actor, request.reason_code or "", request.note)
        except ModerationError as exc:
            results.append(BulkResult(image_id=str(image_id), status=exc.status, error=exc.slug, detail=exc.detail))
        else:
            results.append(BulkResult(image_id=str(image_id), status=200, state=view["state"]))
    return results


# --- edits and takedowns ---------------------------------------------------------------------------


async def edit_image(
    db: Database,
    image_id: uuid.UUID,
    patch: ImagePatch,
    actor: Actor,
    policy: ModerationPolicy,
    *,
    owner: str | None = None,
) -> dict[str, Any]:
    """Change title, description, keywords or category; with `owner`, only that contributor's image.

    A live image announces its new listing (image.updated). A pending one is re-checked by the policy
    and announces its new reasons (image.flagged), so the contributor sees e.g. missing_keywords go;
    it still waits for an admin's decision.
    """
    changes = patch.model_dump(include=patch.model_fields_set)
    async with db.transaction() as conn:
        row = await _locked_image(conn, image_id)
        if owner is not None and row["contributor_id"] != owner:
            # Someone else's image answers exactly like a missing one.
            raise NotFound(f"no image {image_id} in moderation")
        _require_state(row, ("pending", "approved"), "edited")
        if changes.get("category") is not None:
            active = await conn.fetchval(
                "select true from moderation.categories where slug = $1 and retired_at is null", changes["category"]
            )
            if not active:
                raise UnknownCategory(f"category {changes['category']!r} does not exist or is retired")
        listing = ImageListing.model_validate(row["listing"])
        before = {key: getattr(listing, key) for key in changes}
        new_listing = ImageListing.model_validate({**listing.model_dump(mode="json"), **changes})
        revision = row["revision"] + 1
        reasons = list(row["reasons"])
        if row["state"] == "pending":
            reasons = policy.reasons(new_listing, row["near_duplicate_of"])
        updated = await conn.fetchrow(
            "update moderation.images set listing = $2, revision = $3, reasons = $4, updated_at = now() "
            f"where image_id = $1 returning {_IMAGE_COLUMNS}",
            image_id,
            new_listing.model_dump(mode="json"),
            revision,
            reasons,
        )
        if row["state"] == "approved":
            event = ImageUpdated(
                image_id=image_id, contributor_id=row["contributor_id"], revision=revision, listing=new_listing
            )
        else:
            event = ImageFlagged(
                image_id=image_id,
                contributor_id=row["contributor_id"],
                revision=revision,
                reasons=reasons,
                listing=new_listing,
            )
        await add_to_outbox(conn, event)
        await audit(conn, actor, "image.edit", "image", str(image_id), before, changes)
    return _image_view(updated)


async def take_down_image(db: Database, image_id: uuid.UUID, reason: str, actor: Actor) -> dict[str, Any]:
    """A live image leaves search and carts (image.removed). Licenses already sold stay valid and
    downloadable: checkout keeps serving them, the event only stops new sales."""
    async with db.transaction() as conn:
        row = await _locked_image(conn, image_id)
        _require_state(row, ("approved",), "taken down")
        revision = row["revision"] + 1
        updated = await conn.fetchrow(
            "update moderation.images set state = 'removed', revision = $2, removed_reason = $3, updated_at = now() "
            f"where image_id = $1 returning {_IMAGE_COLUMNS}",
            image_id,
            revision,
            reason,
        )
        await add_to_outbox(
            conn,
            ImageRemoved(image_id=image_id, contributor_id=row["contributor_id"], revision=revision, reason=reason),
        )
        after = {**_decision_state(updated), "reason": reason}
        await audit(conn, actor, "image.takedown", "image", str(image_id), _decision_state(row), after)
    return _image_view(updated)


# --- categories ----------------------------------------------------------------------------------

_CATEGORY_COLUMNS = "slug, name, retired_at is not null as retired, retired_at, created_at"


async def list_categories(db: Database, *, include_retired: bool) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"select {_CATEGORY_COLUMNS} from moderation.categories where $1 or retired_at is null order by name",
            include_retired,
        )
    return [dict(r) for r in rows]


def _category_state(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "retired": row["retired"]}


async def create_category(db: Database, new: CategoryIn, actor: Actor) -> dict[str, Any]:
    async with db.transaction() as conn:
        try:
            row = await conn.fetchrow(
                f"insert into moderation.categories (slug, name) values ($1, $2) returning {_CATEGORY_COLUMNS}",
                new.slug,
                new.name,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"a category with slug {new.slug!r} or name {new.name!r} exists") from None
        await audit(conn, actor, "category.create", "category", new.slug, None, _category_state(row))
    return dict(row)


async def change_category(db: Database, slug: str, patch: CategoryPatch, actor: Actor) -> dict[str, Any]:
    """Rename, retire (no longer offered for new edits; images keep it) or bring back a category."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            f"select {_CATEGORY_COLUMNS} from moderation.categories where slug = $1 for update", slug
        )
        if row is None:
            raise NotFound(f"no category {slug!r}")
        try:
            updated = await conn.fetchrow(
                f"""
                update moderation.categories
                set name = coalesce($2, name),
                    retired_at = case when $3::boolean is null then retired_at
                                      when $3 then coalesce(retired_at, now()) end,
                    updated_at = now()
                where slug = $1 returning {_CATEGORY_COLUMNS}
                """,
                slug,
                patch.name,
                patch.retired,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"another category is named {patch.name!r}") from None
        await audit(conn, actor, "category.change", "category", slug, _category_state(row), _category_state(updated))
    return dict(updated)


# --- pricing -------------------------------------------------------------------------------------


async def get_pricing(db: Database, settings: Settings) -> dict[str, Any]:
    """The published price list; before the first PUT (revision 0), the launch prices every service uses."""
    async with db.connection() as conn:
        row = dict(await conn.fetchrow("select revision, prices, updated_at, updated_by from moderation.pricing"))
    if row["revision"] == 0:
        row["prices"] = {name: price.model_dump() for name, price in launch_prices(settings).items()}
    return row


async def set_pricing(db: Database, pricing: PricingIn, actor: Actor) -> dict[str, Any]:
    """Replace the price list and announce it (pricing.updated, next revision). The same list again changes
    nothing, so a retried PUT does not announce twice."""
    prices = pricing.prices.model_dump(mode="json")
    async with db.transaction() as conn:
        row = await conn.fetchrow("select revision, prices, updated_at, updated_by from moderation.pricing for update")
        if row["prices"] == prices and row["revision"] > 0:
            return dict(row)
        updated = await conn.fetchrow(
            "update moderation.pricing set revision = revision + 1, prices = $1, updated_at = now(), updated_by = $2 "
            "returning revision, prices, updated_at, updated_by",
            prices,
            actor.sub,
        )
        await add_to_outbox(conn, PricingUpdated(revision=updated["revision"], prices=prices))
        await audit(
            conn,
            actor,
            "pricing.update",
            "pricing",
            "pricing",
            {"revision": row["revision"], "prices": row["prices"]},
            {"revision": updated["revision"], "prices": prices},
        )
    return dict(updated)


# --- audit log -----------------------------------------------------------------------------------


_AUDIT_FILTER = """
    from moderation.audit_log
    where ($1::text is null or actor = $1)
      and ($2::text is null or action = $2)
      and ($3::text is null or target_id = $3)
      and ($4::timestamptz is null or at >= $4)
      and ($5::timestamptz is null or at < $5)
      and ($6::text is null or service = $6)
"""


async def read_audit_log(db: Database, query: AuditQuery) -> dict[str, Any]:
    """Newest first, filtered, one page and the total; every service's entries (see audit_trail.py)."""
    filters = (query.actor, query.action, query.target, query.since, query.until, query.service)
    async with db.connection() as conn:
        rows = await conn.fetch(
            "select id, at, service, actor, action, target_type, target_id, before, after, correlation_id, "
            f"count(*) over () as total {_AUDIT_FILTER} order by at desc, id desc limit $7 offset $8",
            *filters,
            query.per_page,
            (query.page - 1) * query.per_page,
        )
        # Past the last page the window count is not there; count separately so `total` stays right.
        total = rows[0]["total"] if rows else await conn.fetchval(f"select count(*) {_AUDIT_FILTER}", *filters)
    items = [{k: r[k] for k in r.keys() if k != "total"} for r in rows]
    return {"items": items, "total": total, "page": query.page, "per_page": query.per_page}
