-- One schema per service (ARCHITECTURE §1): a service reads and writes only its own.
create extension if not exists vector;

create schema if not exists platform;
create schema if not exists bus;
create schema if not exists ingestion;
create schema if not exists processing;
create schema if not exists moderation;
create schema if not exists search;
create schema if not exists checkout;
create schema if not exists payouts;

-- Inbox per service: a handled message_id is recorded in the same transaction as the
-- handler's effects, so a redelivered message changes nothing.
do $$
declare s text;
begin
  foreach s in array array['platform','ingestion','processing','moderation','search','checkout','payouts'] loop
    execute format(
      'create table if not exists %I.inbox (
         subscription text not null,
         message_id text not null,
         handled_at timestamptz not null default now(),
         primary key (subscription, message_id)
       )', s);
  end loop;
end $$;
