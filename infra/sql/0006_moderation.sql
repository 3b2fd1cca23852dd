-- Moderation: its own copy of every processed image, categories, the admin pricing table and the
-- append-only audit log of admin actions.

create table if not exists moderation.images (
    image_id uuid primary key,
    contributor_id text not null,
    -- The revision of the last event emitted about this image; moderation owns every change after
    -- processing's revision 1, and increments it with each event.
    revision int not null,
    state text not null check (state in ('pending', 'approved', 'rejected', 'removed')),
    reasons text[] not null default '{}',
    listing jsonb not null,
    original_blob text not null default '',
    file_name text not null default '',
    near_duplicate_of uuid,
    queued_at timestamptz not null default now(),
    decided_at timestamptz,
    decided_by text,
    reject_reason_code text,
    reject_note text,
    removed_reason text,
    updated_at timestamptz not null default now()
);

-- The queue: pending images, oldest first.
create index if not exists images_pending_queue on moderation.images (queued_at, image_id) where state = 'pending';
create index if not exists images_contributor on moderation.images (contributor_id);

create table if not exists moderation.categories (
    slug text primary key check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name text not null,
    retired_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index if not exists categories_name on moderation.categories (lower(name));

-- One row: the whole pricing table and its revision (PricingUpdated carries both). Revision 0 is the
-- launch price list, never announced; the first PUT announces revision 1.
create table if not exists moderation.pricing (
    singleton boolean primary key default true check (singleton),
    revision int not null,
    prices jsonb not null,
    updated_at timestamptz not null default now(),
    updated_by text
);
-- Revision 0 = nothing published yet: every service uses the launch prices from the settings.
insert into moderation.pricing (revision, prices) values (0, '{}') on conflict do nothing;

-- Every admin action: who, what, when, the state before and after. Written in the transaction of the change.
create table if not exists moderation.audit_log (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    actor text not null,
    action text not null,
    target_type text not null,
    target_id text not null,
    before jsonb,
    after jsonb,
    correlation_id text
);
create index if not exists audit_log_at on moderation.audit_log (at desc, id desc);
create index if not exists audit_log_target on moderation.audit_log (target_id, at desc);
create index if not exists audit_log_actor on moderation.audit_log (actor, at desc);

-- Append-only at the database level: whatever the application does (or a person with a psql prompt),
-- rows cannot be changed or removed.
create or replace function moderation.audit_log_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'moderation.audit_log is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end $$;

drop trigger if exists audit_log_no_update_delete on moderation.audit_log;
create trigger audit_log_no_update_delete
    before update or delete on moderation.audit_log
    for each row execute function moderation.audit_log_is_append_only();

drop trigger if exists audit_log_no_truncate on moderation.audit_log;
create trigger audit_log_no_truncate
    before truncate on moderation.audit_log
    for each statement execute function moderation.audit_log_is_append_only();
