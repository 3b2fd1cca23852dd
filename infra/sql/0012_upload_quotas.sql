-- Per-contributor daily upload quotas (issue 15): one row per contributor and UTC day, counting the
-- tickets handed out and the bytes they declared. Durable, so a restart or a second worker cannot reset a
-- day's budget; incremented in the ticket's own transaction, so a refused ticket counts nothing.

create table if not exists ingestion.upload_quota_usage (
    contributor_id text not null,
    day date not null,
    files int not null default 0 check (files >= 0),
    bytes bigint not null default 0 check (bytes >= 0),
    primary key (contributor_id, day)
);

-- Old days are only history; the housekeeping timer deletes them by day.
create index if not exists upload_quota_usage_day on ingestion.upload_quota_usage (day);
