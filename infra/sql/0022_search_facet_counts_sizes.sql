-- Browsing by size (the portal's size presets: "large", "extra large") from the kept counts too. Without
-- it, a size-filtered browse counted every filtered image over the facets index: 140-160 ms at 1M images
-- for the 64k editorial images at least 5,000 px wide, most of it grouping their colour sets.
--
-- Each row also carries the images' width class: width_bucket(width, <the trigger's breakpoints>), 0 below
-- the first breakpoint. A minimum width equal to a breakpoint is then "size >= its class"; any other
-- minimum width still counts the images. The breakpoints are the trigger's second argument
-- (SEARCH_COUNTED_MIN_WIDTHS); a trigger attached before them has none, and every row is class 0.
alter table search.facet_counts add column if not exists size smallint not null default 0;

create or replace function search.facet_counts_delta() returns trigger
language plpgsql as $$
declare
  threshold real := TG_ARGV[0]::real;
  widths int[] := case when TG_NARGS > 1 then TG_ARGV[1]::int[] else '{}'::int[] end;
  added jsonb := '[]';
  removed jsonb := '[]';
begin
  if TG_OP = 'TRUNCATE' then
    delete from search.facet_counts where relid = TG_RELID;
    return null;
  end if;
  -- A transition table exists only for the events that have it: each is read in its own branch.
  if TG_OP in ('INSERT', 'UPDATE') then
    select coalesce(jsonb_agg(jsonb_build_array(
             category, orientation, usage, safety_score < threshold, colors, width_bucket(width, widths))), '[]')
      into added from new_rows;
  end if;
  if TG_OP in ('DELETE', 'UPDATE') then
    select coalesce(jsonb_agg(jsonb_build_array(
             category, orientation, usage, safety_score < threshold, colors, width_bucket(width, widths))), '[]')
      into removed from old_rows;
  end if;
  insert into search.facet_counts (relid, category, orientation, usage, safe, size, color_a, color_b, n)
  with changed as (
    select 1 as sign, r from jsonb_array_elements(added) r
    union all
    select -1, r from jsonb_array_elements(removed) r
  ), per_row as (
    select sign, r->>0 as category, r->>1 as orientation, r->>2 as usage, (r->>3)::boolean as safe,
           (r->>5)::smallint as size, null::text as color_a, null::text as color_b
    from changed
    union all
    select sign, r->>0, r->>1, r->>2, (r->>3)::boolean, (r->>5)::smallint, a, b
    from changed,
         lateral (select distinct jsonb_array_elements_text(r->4)) ca(a),
         lateral (select distinct jsonb_array_elements_text(r->4)) cb(b)
  )
  select TG_RELID, category, orientation, usage, safe, size, color_a, color_b, sum(sign)
  from per_row group by category, orientation, usage, safe, size, color_a, color_b having sum(sign) <> 0;
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
  insert into search.facet_counts (relid, category, orientation, usage, safe, size, color_a, color_b, n)
  select table_oid, category, orientation, usage, safe, size, color_a, color_b, sum(n)
  from gone group by category, orientation, usage, safe, size, color_a, color_b having sum(n) <> 0;
$$;
