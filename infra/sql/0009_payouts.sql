-- payouts: the contributors' append-only ledger (one balance per currency), royalty level tables,
-- tax profiles (TIN envelope-encrypted), Stripe Connect accounts and payout batches.
-- Written only by functions/payouts.

-- Royalty level tables, versioned: a sale uses the newest table whose effective_at is not after the
-- sale, so publishing a table never changes what earlier sales earned. `levels` is
-- [{"from_download": 1, "rate_bp": 1500}, ...], the n-th download of the calendar year (UTC) earning
-- the rate of the last level whose from_download <= n. Rates in basis points (1500 = 15%).
create table if not exists payouts.royalty_tables (
    version int primary key,
    effective_at timestamptz not null unique,
    levels jsonb not null,
    published_by text not null,
    published_at timestamptz not null default now()
);

-- Shutterstock's structure, the default table, effective since forever.
insert into payouts.royalty_tables (version, effective_at, levels, published_by)
values (
    1,
    '2000-01-01T00:00:00Z',  -- before any sale
    '[{"from_download": 1, "rate_bp": 1500}, {"from_download": 101, "rate_bp": 2000},
      {"from_download": 251, "rate_bp": 2500}, {"from_download": 2501, "rate_bp": 3000},
      {"from_download": 10001, "rate_bp": 3500}, {"from_download": 25001, "rate_bp": 4000}]',
    'default'
)
on conflict do nothing;

-- The ledger: integer minor units, signed (credits > 0, debits < 0); balance = sum of entries per
-- (contributor, currency). An entry becomes payable at available_at (earnings: after the hold period).
create table if not exists payouts.ledger (
    id bigint generated always as identity primary key,
    -- What the entry records, unique: a redelivered event or a retried step can never post twice.
    source_key text not null unique,
    contributor_id text not null,
    currency text not null check (currency ~ '^[A-Z]{3}$'),
    kind text not null check (kind in ('earning', 'reversal', 'payout', 'payout_returned', 'withholding', 'adjustment')),
    amount_minor bigint not null,
    occurred_at timestamptz not null,
    available_at timestamptz not null,
    recorded_at timestamptz not null default now(),
    -- facts of a sale (earning / reversal)
    order_id uuid,
    license_id uuid,
    image_id uuid,
    license_type text,
    sale_amount_minor bigint,      -- what the buyer paid for the line (a subscription download: 0)
    platform_minor bigint,         -- the platform's part of the sale: sale_amount_minor - amount_minor
    royalty_rate_bp int,
    royalty_table_version int,
    download_number int,           -- the n-th download of the contributor's calendar year
    plan_amount_minor bigint,      -- subscription downloads: the plan's price and allotment
    plan_downloads int,
    reverses_entry_id bigint unique references payouts.ledger (id),
    -- payouts
    batch_id uuid,
    payout_id uuid,
    withholding_rate_bp int,
    -- admin adjustments
    reason text,
    actor text,
    check (kind <> 'earning' or amount_minor >= 0),
    check (kind not in ('reversal', 'payout', 'withholding') or amount_minor <= 0),
    check (kind <> 'payout_returned' or amount_minor >= 0),
    check (kind <> 'adjustment' or (amount_minor <> 0 and reason is not null and actor is not null)),
    check (kind <> 'reversal' or reverses_entry_id is not null)
);
create index if not exists ledger_balance on payouts.ledger (contributor_id, currency, available_at) include (amount_minor);
create index if not exists ledger_contributor_time on payouts.ledger (contributor_id, occurred_at);
create index if not exists ledger_order on payouts.ledger (order_id) where order_id is not null;
create index if not exists ledger_available on payouts.ledger (available_at) include (contributor_id, currency, amount_minor);

create or replace function payouts.refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception '% is append-only: % refused', tg_table_schema || '.' || tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end $$;

do $$
declare t text;
begin
  foreach t in array array['ledger', 'royalty_tables'] loop
    execute format('drop trigger if exists %I on payouts.%I', t || '_no_update_delete', t);
    execute format('create trigger %I before update or delete on payouts.%I '
                   'for each row execute function payouts.refuse_change()', t || '_no_update_delete', t);
    execute format('drop trigger if exists %I on payouts.%I', t || '_no_truncate', t);
    execute format('create trigger %I before truncate on payouts.%I '
                   'for each statement execute function payouts.refuse_change()', t || '_no_truncate', t);
  end loop;
end $$;

-- Downloads per contributor and calendar year (UTC): the row lock serialises one contributor's
-- sales, so the n-th download of the year is counted exactly once.
create table if not exists payouts.download_counts (
    contributor_id text not null,
    year int not null,
    downloads int not null check (downloads >= 0),
    primary key (contributor_id, year)
);

-- Orders whose refund arrived before their completion (the bus does not promise order).
create table if not exists payouts.refunded_orders (
    order_id uuid primary key,
    refunded_at timestamptz not null default now()
);

-- The contributor's own payout threshold (minor units, any currency); absent: the default setting.
create table if not exists payouts.payout_settings (
    contributor_id text primary key,
    threshold_minor bigint not null check (threshold_minor > 0),
    updated_at timestamptz not null default now()
);

-- Tax profiles. The TIN is stored only envelope-encrypted (AES-256-GCM under a data key wrapped by
-- the key-encryption key named in tin_kek_id) plus its last 4 characters for display.
create table if not exists payouts.tax_profiles (
    contributor_id text primary key,
    form_type text not null check (form_type in ('W-9', 'W-8BEN', 'W-8BEN-E')),
    legal_name text not null,
    address jsonb not null,
    country text not null check (country ~ '^[A-Z]{2}$'),
    tin_ciphertext bytea not null,
    tin_nonce bytea not null,
    tin_wrapped_key bytea not null,
    tin_kek_id text not null,
    tin_last4 text not null,
    treaty_country text,
    withholding_rate_bp int not null check (withholding_rate_bp between 0 and 10000),
    updated_at timestamptz not null default now()
);

-- Stripe Connect Express accounts; payouts_enabled comes from account.updated webhooks.
create table if not exists payouts.connect_accounts (
    contributor_id text primary key,
    account_id text not null unique,
    country text not null,
    payouts_enabled boolean not null default false,
    details_submitted boolean not null default false,
    last_event_created bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Connect webhook events applied (each once).
create table if not exists payouts.stripe_events (
    event_id text primary key,
    type text not null,
    received_at timestamptz not null default now()
);

-- Payout batches: one live (not cancelled) batch per period.
create table if not exists payouts.batches (
    id uuid primary key,
    period text not null check (period ~ '^[0-9]{4}-[0-9]{2}$'),
    status text not null check (status in ('draft', 'approved', 'cancelled')),
    cutoff_at timestamptz not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    approved_by text,
    approved_at timestamptz,
    cancelled_by text,
    cancelled_at timestamptz
);
create unique index if not exists batches_one_live_per_period on payouts.batches (period) where status <> 'cancelled';

-- One item per contributor and currency: the payable amount at batch creation, and what happened.
create table if not exists payouts.payouts (
    id uuid primary key,
    batch_id uuid not null references payouts.batches (id),
    contributor_id text not null,
    currency text not null,
    amount_minor bigint not null check (amount_minor > 0),
    account_id text not null,
    idempotency_key text not null unique,
    status text not null check (status in ('draft', 'approved', 'sending', 'paid', 'failed', 'cancelled')),
    gross_minor bigint,          -- what was debited when sending (never above the payable balance then)
    withholding_minor bigint,
    withholding_rate_bp int,
    net_minor bigint,
    transfer_id text,
    failure_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (batch_id, contributor_id, currency)
);
create index if not exists payouts_by_contributor on payouts.payouts (contributor_id, created_at desc);

-- Everyone a batch left out, and why.
create table if not exists payouts.batch_exclusions (
    batch_id uuid not null references payouts.batches (id),
    contributor_id text not null,
    currency text not null,
    payable_minor bigint not null,
    reason text not null check (reason in ('below_threshold', 'no_tax_profile', 'onboarding_incomplete', 'negative_balance')),
    primary key (batch_id, contributor_id, currency)
);
