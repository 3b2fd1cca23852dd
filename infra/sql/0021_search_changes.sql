-- The change log of the local serving index, so a cached search page outlives the changes that cannot
-- touch it (search_api's result cache: functions/search_api/cache.py, shared/search/changes.py).
--
-- Rows come from statement triggers on the serving table itself (PostgresSearchIndex attaches them, the
-- table being the index's, not a migration's): every row written or deleted, before and after, with what
-- decides whether it matches a query (its lexemes, its embedding, its filter fields). A row is first
-- unstamped (generation null, the writing transaction's id), and `search.bump_generation` stamps the
-- transaction's rows with the generation it moves to, in the same transaction. A step that is not only
-- logged serving-table writes (a price change, a reindex swap, a write to another backend) gets one 'all'
-- row instead: every cached page goes; a step of serving-table writes that changed no row (a rejection of
-- an image that was never public) gets one 'none' row. So every generation step has at least one row, and
-- a reader that misses a step (pruned) knows it.
create table if not exists search.changes (
  id bigserial primary key,
  generation bigint,  -- null until the writing transaction bumps the generation
  tx bigint not null default txid_current(),
  kind text not null check (kind in ('image', 'all', 'none')),
  image_id uuid,
  lexemes text[],  -- tsvector_to_array(tsv): what the keyword leg matches against
  embedding halfvec,  -- what the vector leg measures (null: not in the vector leg)
  category text,
  orientation text,
  colors text[],
  contributor_id text,
  usage text,
  safety_score real,
  width integer,
  height integer,
  added_at timestamptz
);
create index if not exists changes_generation on search.changes (generation);
create index if not exists changes_unstamped on search.changes (tx) where generation is null;

-- Statement trigger of the serving table: each inserted and deleted row, and both sides of each updated
-- row whose content moved (a sale only moves `popularity`, which sort=popular's TTL covers: not logged).
create or replace function search.log_serving_changes() returns trigger
language plpgsql as $$
begin
  if TG_OP = 'INSERT' then
    insert into search.changes (kind, image_id, lexemes, embedding, category, orientation, colors, contributor_id,
                                usage, safety_score, width, height, added_at)
    select 'image', image_id, tsvector_to_array(tsv), embedding, category, orientation, colors, contributor_id,
           usage, safety_score, width, height, added_at
    from new_rows;
  elsif TG_OP = 'DELETE' then
    insert into search.changes (kind, image_id, lexemes, embedding, category, orientation, colors, contributor_id,
                                usage, safety_score, width, height, added_at)
    select 'image', image_id, tsvector_to_array(tsv), embedding, category, orientation, colors, contributor_id,
           usage, safety_score, width, height, added_at
    from old_rows;
  else
    insert into search.changes (kind, image_id, lexemes, embedding, category, orientation, colors, contributor_id,
                                usage, safety_score, width, height, added_at)
    select 'image', r.image_id, tsvector_to_array(r.tsv), r.embedding, r.category, r.orientation, r.colors,
           r.contributor_id, r.usage, r.safety_score, r.width, r.height, r.added_at
    from old_rows o join new_rows n using (image_id),
         lateral (select o.* union all select n.*) r
    where to_jsonb(o) - 'popularity' is distinct from to_jsonb(n) - 'popularity';
  end if;
  return null;
end;
$$;

-- Count a change public search can show, in the caller's transaction (call it as late as possible: the
-- row lock serialises writers until commit). `scope` 'images': the step is exactly this transaction's
-- writes to a serving table that logs them (none logged: nothing visible changed); 'all': every cached
-- page goes.
create or replace function search.bump_generation(scope text) returns bigint
language plpgsql as $$
declare
  g bigint;
  stamped bigint;
begin
  update search.generation set value = value + 1, changed_at = clock_timestamp() returning value into g;
  update search.changes set generation = g where generation is null and tx = txid_current();
  get diagnostics stamped = row_count;
  if scope <> 'images' then
    insert into search.changes (generation, kind) values (g, 'all');
  elsif stamped = 0 then
    insert into search.changes (generation, kind) values (g, 'none');
  end if;
  -- Now and then prune: readers keep up within seconds; a reader further behind sees the gap and drops
  -- everything. Committed unstamped rows were never counted (no bump followed): they can go too.
  if g % 100 = 0 then
    delete from search.changes where generation < g - 20000;
    delete from search.changes where generation is null and tx <> txid_current();
  end if;
  return g;
end;
$$;
