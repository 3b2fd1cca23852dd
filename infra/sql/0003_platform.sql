-- Bus round-trip probes: written by the platform.ping trigger, read by the admin ping route.
create table if not exists platform.bus_pings (
    nonce text primary key,
    message_id text not null,
    correlation_id text,
    delivery_count int not null,
    received_at timestamptz not null default now()
);
