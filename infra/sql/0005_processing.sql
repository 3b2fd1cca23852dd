-- Processing (functions/processing): one row per image it has finished with, processed or failed.
-- The row is written in the transaction that claims the image.uploaded message in processing.inbox
-- and queues image.processed / image.processing_failed in the outbox.
create table if not exists processing.results (
    image_id uuid primary key,
    contributor_id text not null,
    message_id text not null,  -- the image.uploaded delivery this result answers
    status text not null check (status in ('processed', 'failed')),
    reason text,  -- why it failed, worded for the contributor; null when processed
    original_blob text not null,
    sha256 text not null,
    width int,
    height int,
    phash text,
    blurhash text,
    renditions jsonb not null default '{}',  -- rendition name -> "container/blob"
    listing jsonb,  -- the ImageListing emitted (metadata, colours, tags, embedding), for reprocessing and audits
    stage_ms jsonb not null default '{}',  -- where the time went: download, decode, render, inference, upload
    deliveries int not null default 1,  -- bus delivery count of the message that finished it
    processed_at timestamptz not null default now()
);

create index if not exists results_failed on processing.results (processed_at) where status = 'failed';
