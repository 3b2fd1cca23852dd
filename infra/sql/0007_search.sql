-- search_sync's read model (the source of truth for the serving index) and the local serving index.
-- The serving index table itself (search.serving_index) is created by PostgresSearchIndex.ensure_ready,
-- because a full reindex builds a new one aside and swaps it in.

-- Every image search has heard of, in every state, with the newest revision applied. Removed and
-- rejected images stay as tombstones so an older event that arrives late cannot bring them back.
create table if not exists search.documents (
  image_id uuid primary key,
  contributor_id text not null,
  revision integer not null,
  status text not null check (status in ('pending', 'flagged', 'approved', 'rejected', 'removed')),
  status_reason text,
  listing jsonb,  -- the latest ImageListing seen (null if only a status event arrived)
  approved_at timestamptz,
  updated_at timestamptz not null default now()
);
create index if not exists documents_contributor on search.documents (contributor_id, updated_at desc);
create index if not exists documents_status on search.documents (status, updated_at desc);

-- Licenses sold per image (order.completed), kept apart so a sale before approval is not lost.
create table if not exists search.popularity (
  image_id uuid primary key,
  licenses integer not null default 0
);

-- The admin price table (pricing.updated), one row; prices are shown in results.
create table if not exists search.pricing (
  singleton boolean primary key default true check (singleton),
  revision integer not null,
  prices jsonb not null
);

-- Keyword -> number of public images carrying it; prefix suggestions ranked by frequency.
create table if not exists search.keyword_counts (
  keyword text primary key,
  images integer not null check (images >= 0)
);
create index if not exists keyword_counts_prefix on search.keyword_counts (keyword text_pattern_ops);

-- Admin and portfolio search run on this table (every state), by words; low volume, so no vectors.
create index if not exists documents_text on search.documents using gin (
  to_tsvector('english'::regconfig,
    coalesce(listing->>'title', '') || ' ' || coalesce(listing->>'keywords', '') || ' '
    || coalesce(listing->>'description', ''))
);
