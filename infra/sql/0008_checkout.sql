-- checkout service: its copy of the catalogue and prices, carts, orders, licenses, subscriptions,
-- and the Stripe events it has applied. Written only by functions/checkout.

-- What checkout knows about an image, built from images-topic events alone. `revision` orders
-- events: an older one never overwrites a newer state. original_blob/contributor never change.
create table if not exists checkout.catalogue (
    image_id uuid primary key,
    contributor_id text not null default '',
    original_blob text not null default '',
    file_name text not null default '',
    title text not null default '',
    available boolean not null,
    revision int not null,
    updated_at timestamptz not null default now()
);

-- The admin pricing table as last published (one row); absent until the first pricing.updated.
create table if not exists checkout.price_list (
    singleton boolean primary key default true check (singleton),
    revision int not null,
    prices jsonb not null,
    updated_at timestamptz not null default now()
);

create table if not exists checkout.cart_items (
    buyer_id text not null,
    image_id uuid not null,
    license_type text not null check (license_type in ('standard', 'enhanced')),
    added_at timestamptz not null default now(),
    primary key (buyer_id, image_id)
);

-- pending -> paid | flagged | failed | expired | refunded. Money in integer minor units.
create table if not exists checkout.orders (
    id uuid primary key,
    buyer_id text not null,
    status text not null check (status in ('pending', 'paid', 'flagged', 'failed', 'expired', 'refunded')),
    amount_minor bigint not null check (amount_minor >= 0),
    currency text not null check (currency ~ '^[A-Z]{3}$'),
    stripe_session_id text unique,
    stripe_payment_intent text,
    checkout_url text,
    status_reason text,
    amount_refunded_minor bigint not null default 0,
    created_at timestamptz not null default now(),
    paid_at timestamptz,
    refunded_at timestamptz,
    updated_at timestamptz not null default now()
);
create index if not exists orders_by_buyer on checkout.orders (buyer_id, created_at desc);
create index if not exists orders_by_payment_intent on checkout.orders (stripe_payment_intent)
    where stripe_payment_intent is not null;

-- One line per image, with the price and the catalogue facts as they were when the order was placed.
create table if not exists checkout.order_lines (
    order_id uuid not null references checkout.orders (id),
    image_id uuid not null,
    license_type text not null check (license_type in ('standard', 'enhanced')),
    amount_minor bigint not null check (amount_minor >= 0),
    currency text not null,
    title text not null default '',
    contributor_id text not null,
    original_blob text not null,
    file_name text not null default '',
    primary key (order_id, image_id)
);

-- A license is issued by a paid order line or by one download of a subscription allotment.
create table if not exists checkout.licenses (
    id uuid primary key,
    buyer_id text not null,
    image_id uuid not null,
    license_type text not null check (license_type in ('standard', 'enhanced')),
    order_id uuid references checkout.orders (id),
    subscription_id text,
    contributor_id text not null,
    original_blob text not null,
    file_name text not null default '',
    title text not null default '',
    issued_at timestamptz not null default now(),
    revoked_at timestamptz,
    download_count int not null default 0,
    last_downloaded_at timestamptz,
    check ((order_id is null) <> (subscription_id is null))
);
create unique index if not exists licenses_one_per_order_line on checkout.licenses (order_id, image_id)
    where order_id is not null;
create unique index if not exists licenses_one_per_subscriber_image
    on checkout.licenses (buyer_id, image_id, license_type)
    where subscription_id is not null and revoked_at is null;
create index if not exists licenses_by_buyer on checkout.licenses (buyer_id, issued_at desc);

-- Subscriptions, keyed by Stripe's id. `remaining` is taken one at a time by a single UPDATE.
create table if not exists checkout.subscriptions (
    stripe_subscription_id text primary key,
    buyer_id text not null,
    plan text not null,
    status text not null,
    allotment int not null check (allotment >= 0),
    remaining int not null check (remaining >= 0),
    current_period_end timestamptz,
    stripe_customer_id text,
    status_event_created bigint not null default 0,
    last_invoice_id text,
    last_invoice_created bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index if not exists subscriptions_by_buyer on checkout.subscriptions (buyer_id);

-- Subscription checkouts we opened (who asked for which plan), before Stripe has a subscription.
create table if not exists checkout.subscription_checkouts (
    id uuid primary key,
    buyer_id text not null,
    plan text not null,
    stripe_session_id text unique,
    stripe_subscription_id text,
    created_at timestamptz not null default now()
);

-- Refunds of charges whose order we could not name yet (the refund overtook the completion event).
create table if not exists checkout.unmatched_refunds (
    payment_intent text primary key,
    charge_id text not null,
    amount_refunded_minor bigint not null,
    currency text not null,
    fully_refunded boolean not null,
    recorded_at timestamptz not null default now()
);

-- Every Stripe event applied, recorded in the transaction that applied it: a redelivery finds it here.
create table if not exists checkout.stripe_events (
    event_id text primary key,
    type text not null,
    created bigint not null,
    outcome text not null,
    received_at timestamptz not null default now()
);
