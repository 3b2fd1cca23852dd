-- Facet counts of the local serving index, kept by its writes, so browsing (no words) with the
-- low-cardinality filters (category, orientation, colour, license type, safe search) counts a few
-- hundred rows instead of every filtered image (a scan of the whole table at 1M images).
--
-- Rows are signed deltas, inserted (never updated) by statement triggers on the serving table, so
-- concurrent writers never wait on a shared counter row; readers sum them, and a write now and then
-- folds them together. `relid` is the serving table's oid: it survives the rename of a reindex swap,
-- so a table built aside carries its own counts into place.
--
-- Per image: one row with colour_a = colour_b = null (the image), and one per ordered pair of its
-- colours (a, b), a = b included, so a colour filter still yields every facet of the filtered set.
create table if not exists search.facet_counts (
  relid oid not null,
  category text,
  orientation text not null,
  usage text not null,
  safe boolean not null,  -- safety_score < the threshold the trigger was created with (its argument)
  color_a text,
  color_b text,
  n bigint not null,
  -- 0: an image row, 1: a colour of it (a = b), 2: a pair of its colours; browse without a colour filter
  -- reads kinds 0 and 1 only (a few thousand rows at 1M images, not every pair).
  kind smallint generated always as (
    case when color_a is null then 0 when color_a = color_b then 1 else 2 end
  ) stored
);
create index if not exists facet_counts_kind on search.facet_counts (relid, kind, color_a);

-- Statement trigger of the serving table (PostgresSearchIndex attaches it: the table is created by
-- the index, not by a migration). TG_ARGV[0] is the safe-search threshold.
create or replace function search.facet_counts_delta() returns trigger
language plpgsql as $$
declare
  threshold real := TG_ARGV[0]::real;
  added jsonb := '[]';
  removed jsonb := '[]';
begin
  if TG_OP = 'TRUNCATE' then
    delete from search.facet_counts where relid = TG_RELID;
    return null;
  end if;
  -- A transition table exists only for the events that have it: each is read in its own branch.
  if TG_OP in ('INSERT', 'UPDATE') then
    select coalesce(jsonb_agg(jsonb_build_array(category, orientation, usage, safety_score < threshold, colors)), '[]')
      into added from new_rows;
  end if;
  if TG_OP in ('DELETE', 'UPDATE') then
    select coalesce(jsonb_agg(jsonb_build_array(category, orientation, usage, safety_score < threshold, colors)), '[]')
      into removed from old_rows;
  end if;
  insert into search.facet_counts (relid, category, orientation, usage, safe, color_a, color_b, n)
  with changed as (
    select 1 as sign, r from jsonb_array_elements(added) r
    union all
    select -1, r from jsonb_array_elements(removed) r
  ), per_row as (
    select sign, r->>0 as category, r->>1 as orientation, r->>2 as usage, (r->>3)::boolean as safe,
           null::text as color_a, null::text as color_b
    from changed
    union all
    select sign, r->>0, r->>1, r->>2, (r->>3)::boolean, a, b
    from changed,
         lateral (select distinct jsonb_array_elements_text(r->4)) ca(a),
         lateral (select distinct jsonb_array_elements_text(r->4)) cb(b)
  )
  select TG_RELID, category, orientation, usage, safe, color_a, color_b, sum(sign)
  from per_row group by category, orientation, usage, safe, color_a, color_b having sum(sign) <> 0;
  -- Now and then fold the deltas into one row per key (one writer at a time; the others skip).
  if random() < 0.01 and pg_try_advisory_xact_lock(hashtext('search.facet_counts ' || TG_RELID)) then
    perform search.facet_counts_fold(TG_RELID);
  end if;
  return null;
end;
$$;

create or replace function search.facet_counts_fold(table_oid oid) returns void
language sql as $$
  with gone as (delete from search.facet_counts where relid = table_oid returning *)
  insert into search.facet_counts (relid, category, orientation, usage, safe, color_a, color_b, n)
  select table_oid, category, orientation, usage, safe, color_a, color_b, sum(n)
  from gone group by category, orientation, usage, safe, color_a, color_b having sum(n) <> 0;
$$;
