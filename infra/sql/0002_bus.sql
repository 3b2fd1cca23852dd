-- The local bus (ARCHITECTURE §4): transactional outbox, and a Postgres transport with
-- Azure Service Bus semantics (topics fanned out to subscriptions, peek-lock, delivery
-- count, dead-letter, scheduled messages, duplicate detection on message_id).

-- Outbox: written in the producer's own transaction, published by the relay.
create table bus.outbox (
    seq bigint generated always as identity,
    id text primary key,  -- the message_id on the bus
    topic text not null,
    subject text not null,
    correlation_id text,
    body jsonb not null,
    application_properties jsonb not null default '{}',
    scheduled_at timestamptz,
    created_at timestamptz not null default now(),
    published_at timestamptz,
    -- A relay leases rows while it publishes them (no connection or lock held over the network call);
    -- a row the broker keeps refusing backs off and, after many attempts, is parked with its error.
    claimed_until timestamptz,
    attempts int not null default 0,
    last_error text,
    failed_at timestamptz
);

-- The relay only ever reads the unpublished tail, oldest first.
create index outbox_unpublished on bus.outbox (seq) where published_at is null and failed_at is null;
create index outbox_failed on bus.outbox (failed_at) where failed_at is not null;
create index outbox_published_at on bus.outbox (published_at) where published_at is not null;

create function bus.notify_outbox() returns trigger language plpgsql as $$
begin
    perform pg_notify('bus_outbox', '');
    return null;
end $$;

-- Fires at commit only, so the relay wakes exactly when there is something to publish.
create trigger outbox_notify after insert on bus.outbox
    for each statement execute function bus.notify_outbox();


-- One row per (message, subscription) it was routed to: a subscription is a queue.
create table bus.messages (
    seq bigint generated always as identity primary key,
    topic text not null,
    subscription text not null,
    message_id text not null,
    subject text not null,
    body jsonb not null,
    correlation_id text,
    application_properties jsonb not null default '{}',
    enqueued_at timestamptz not null default now(),
    visible_at timestamptz not null default now(),  -- scheduled enqueue time
    delivery_count int not null default 0,
    lock_token uuid,
    locked_until timestamptz,
    -- Receivable from: the later of the scheduled time and the end of the current lock.
    -- One column keeps the receive query a pure index range scan (no skipping locked rows).
    available_at timestamptz generated always as (greatest(visible_at, locked_until)) stored,
    state text not null default 'active' check (state in ('active', 'deadlettered')),
    dead_letter_reason text,
    dead_letter_description text,
    dead_lettered_at timestamptz,
    last_error text
) with (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);
-- (a queue table churns: every row is inserted, updated per delivery and deleted)

-- Head of a subscription: where topic/subscription match, available_at <= now(), oldest first.
create index messages_receivable on bus.messages (topic, subscription, available_at, seq)
    where state = 'active';
-- Settlement finds a delivery by its lock token alone.
create unique index messages_lock_token on bus.messages (lock_token) where lock_token is not null;
create index messages_dead_letters on bus.messages (topic, subscription, dead_lettered_at, seq)
    where state = 'deadlettered';

create function bus.notify_messages() returns trigger language plpgsql as $$
begin
    perform pg_notify('bus_messages', t.topic || '/' || t.subscription)
    from (select distinct topic, subscription from new_rows) t;
    return null;
end $$;

-- Waiting receivers wake on commit instead of polling.
create trigger messages_notify after insert on bus.messages
    referencing new table as new_rows
    for each statement execute function bus.notify_messages();


-- Duplicate detection: a message_id seen on a topic within its window is dropped.
create table bus.duplicates (
    topic text not null,
    message_id text not null,
    first_seen timestamptz not null default now(),
    expires_at timestamptz not null,
    primary key (topic, message_id)
);

create index duplicates_expires_at on bus.duplicates (expires_at);
