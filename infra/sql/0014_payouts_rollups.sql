-- Payouts: rollups of the ledger by UTC day, kept by a statement trigger in the transaction of every
-- insert (nothing can post around them), so a contributor's earnings by day or month and their
-- balance read a few hundred rows instead of every entry. Derived data: the ledger stays the truth.

create table if not exists payouts.earnings_days (
    contributor_id text not null,
    day date not null,                 -- occurred_at, UTC
    license_type text not null,
    currency text not null,
    downloads int not null,            -- earnings
    refunds int not null,              -- reversals
    earned_minor bigint not null,      -- earnings + reversals
    primary key (contributor_id, day, license_type, currency)
);

create table if not exists payouts.balance_days (
    contributor_id text not null,
    currency text not null,
    day date not null,                 -- available_at, UTC
    amount_minor bigint not null,
    primary key (contributor_id, day, currency)
);

create or replace function payouts.roll_up_ledger() returns trigger
language plpgsql as $$
begin
    insert into payouts.earnings_days as d (contributor_id, day, license_type, currency, downloads, refunds, earned_minor)
    select contributor_id, (occurred_at at time zone 'UTC')::date, coalesce(license_type, ''), currency,
           count(*) filter (where kind = 'earning'), count(*) filter (where kind = 'reversal'), sum(amount_minor)
    from new_entries where kind in ('earning', 'reversal')
    group by 1, 2, 3, 4
    on conflict (contributor_id, day, license_type, currency) do update
        set downloads = d.downloads + excluded.downloads, refunds = d.refunds + excluded.refunds,
            earned_minor = d.earned_minor + excluded.earned_minor;
    insert into payouts.balance_days as b (contributor_id, currency, day, amount_minor)
    select contributor_id, currency, (available_at at time zone 'UTC')::date, sum(amount_minor)
    from new_entries group by 1, 2, 3
    on conflict (contributor_id, day, currency) do update set amount_minor = b.amount_minor + excluded.amount_minor;
    return null;
end $$;

-- What was posted before this migration (the migration runs in one transaction with the trigger's creation).
insert into payouts.earnings_days (contributor_id, day, license_type, currency, downloads, refunds, earned_minor)
select contributor_id, (occurred_at at time zone 'UTC')::date, coalesce(license_type, ''), currency,
       count(*) filter (where kind = 'earning'), count(*) filter (where kind = 'reversal'), sum(amount_minor)
from payouts.ledger where kind in ('earning', 'reversal') group by 1, 2, 3, 4
on conflict do nothing;
insert into payouts.balance_days (contributor_id, currency, day, amount_minor)
select contributor_id, currency, (available_at at time zone 'UTC')::date, sum(amount_minor)
from payouts.ledger group by 1, 2, 3
on conflict do nothing;

drop trigger if exists ledger_roll_up on payouts.ledger;
create trigger ledger_roll_up after insert on payouts.ledger
    referencing new table as new_entries for each statement execute function payouts.roll_up_ledger();

-- Today's part of a payable balance, and one image's sales, straight from the ledger.
drop index if exists payouts.ledger_balance;
create index if not exists ledger_available_by_contributor on payouts.ledger (contributor_id, available_at)
    include (currency, amount_minor);
create index if not exists ledger_contributor_image on payouts.ledger (contributor_id, image_id) where image_id is not null;
