-- The search index generation: one counter that every change visible to public search moves, in the
-- same transaction as the change (search_sync's serving-index writes, a price change, a reindex swap).
-- search_api keys its result cache by it, so a change shows in the very next search on every instance.
-- A row with a lock, not a sequence: nextval is visible before the change commits, a row update is not.
create table if not exists search.generation (
  singleton boolean primary key default true check (singleton),
  value bigint not null,
  changed_at timestamptz not null default clock_timestamp()  -- when the newest change was written
);
insert into search.generation (value) values (1) on conflict (singleton) do nothing;
