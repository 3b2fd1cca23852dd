-- Ingestion owns each image's catalogue record (ARCHITECTURE §2): the upload ticket, the validation
-- outcome, and the state every later image event moves it to. Contributors read it through
-- GET /api/contributor/images.

create table if not exists ingestion.images (
    image_id uuid primary key,
    contributor_id text not null,
    state text not null check (state in (
        'awaiting_upload',  -- ticket issued, file not yet validated
        'quarantined',      -- refused at ingestion; reason_code + reason say why
        'processing',       -- in originals, image.uploaded sent
        'failed',           -- processing gave up for good
        'processed',        -- renditions and ML done; waiting for moderation
        'flagged',          -- queued for a human moderator
        'approved', 'rejected', 'removed'
    )),
    source text not null default 'api' check (source in ('api', 'migration')),
    file_name text not null,
    declared_size bigint not null,
    declared_content_type text not null,
    sidecar jsonb not null default '{}',
    created_at timestamptz not null default now(),
    upload_expires_at timestamptz not null,
    correlation_id text,       -- of the request that asked for the ticket; carried on to image.uploaded
    -- Filled once the file has been inspected.
    incoming_etag text,        -- the blob version decided on: a redelivery of it changes nothing
    ingested_at timestamptz,
    size_bytes bigint,
    content_type text,         -- the real type, from magic bytes
    width int,
    height int,
    sha256 text,
    phash bigint,              -- 64-bit perceptual hash, stored signed
    original_blob text,
    near_duplicate_of uuid,
    duplicate_of uuid,         -- exact duplicate (quarantined): the image it copies
    reason_code text,
    reason text,
    -- Kept current from the images topic; `revision` orders those events.
    revision int not null default 0,
    moderation_reasons jsonb not null default '[]',
    listing jsonb,
    updated_at timestamptz not null default now()
);

-- A contributor's portfolio, newest first (keyset paging), whole or by state.
create index if not exists images_contributor_newest on ingestion.images (contributor_id, created_at desc, image_id desc);
create index if not exists images_contributor_state_newest
    on ingestion.images (contributor_id, state, created_at desc, image_id desc);

-- Tickets that never received their file are forgotten once their upload window has closed.
create index if not exists images_awaiting_upload on ingestion.images (upload_expires_at) where state = 'awaiting_upload';

-- Exact duplicates: one accepted image per content. Quarantined, failed and unfinished rows do not count,
-- so a file refused for a fixable reason can be uploaded again.
create unique index if not exists images_sha256_accepted on ingestion.images (sha256)
    where sha256 is not null and state not in ('awaiting_upload', 'quarantined', 'failed');

-- Near duplicates: the hash cut into four 16-bit bands, one index each (multi-index hashing). A match within
-- distance d differs in some band by at most d / 4 bits, so probing each band's index with the values
-- that close finds all of them (shared/imaging/phash.py).
create index if not exists images_phash_band0 on ingestion.images (((phash >> 48) & 65535))
    where phash is not null and state not in ('awaiting_upload', 'quarantined', 'failed');
create index if not exists images_phash_band1 on ingestion.images (((phash >> 32) & 65535))
    where phash is not null and state not in ('awaiting_upload', 'quarantined', 'failed');
create index if not exists images_phash_band2 on ingestion.images (((phash >> 16) & 65535))
    where phash is not null and state not in ('awaiting_upload', 'quarantined', 'failed');
create index if not exists images_phash_band3 on ingestion.images ((phash & 65535))
    where phash is not null and state not in ('awaiting_upload', 'quarantined', 'failed');


-- The batch migration's manifest: one row per source file, so a re-run skips what is done and retries
-- what failed (functions/ingestion/migration.py).
create table if not exists ingestion.migration_files (
    contributor_id text not null,
    source_root text not null,
    rel_path text not null,
    size_bytes bigint not null,
    mtime_ns bigint not null,
    sha256 text,
    image_id uuid not null,
    state text not null check (state in ('pending', 'uploaded', 'failed')),
    error text,
    attempts int not null default 0,
    updated_at timestamptz not null default now(),
    primary key (contributor_id, source_root, rel_path)
);

create index if not exists migration_files_failed on ingestion.migration_files (contributor_id, source_root)
    where state = 'failed';
