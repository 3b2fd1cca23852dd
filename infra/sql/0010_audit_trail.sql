-- One audit trail for every service (issue 12). Moderation keeps the one append-only table; other
-- services put an `audit.recorded` event in their outbox in the transaction of the change it records,
-- and moderation's subscription appends it here. `audit_id` is the event's id: a redelivered event
-- meets the unique index and appends nothing. Moderation's own rows say service 'moderation'.

alter table moderation.audit_log add column if not exists service text not null default 'moderation';
-- Volatile default: existing rows get their own id in the rewrite (ALTER, not UPDATE, so the
-- append-only triggers are not involved).
alter table moderation.audit_log add column if not exists audit_id uuid not null default gen_random_uuid();

create unique index if not exists audit_log_audit_id on moderation.audit_log (audit_id);
create index if not exists audit_log_service on moderation.audit_log (service, at desc, id desc);
