-- Durable background work: one queue for every tenant, and for platform work (no tenant).
-- The columns match the PostgreSQL migration of the same number. SQLite serialises claims with
-- its write lock (`BEGIN IMMEDIATE`); there is no row-level security, so the queue's functions
-- scope a tenant's reads and writes in their queries.
--
-- Times are RFC 3339 text with a fixed six-digit fraction, written by the queue itself, so that
-- comparing and ordering the text compares the times.
create table work_items (
    id                  blob primary key,
    tenant_id           blob references tenants (id),
    kind                text not null,
    payload             text not null,
    status              text not null
                        check (status in ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority            integer not null default 0,
    attempts            integer not null default 0,
    max_attempts        integer not null check (max_attempts >= 1),
    run_after           text not null,
    locked_by           text,
    locked_until        text,
    lease_id            blob,
    heartbeat_at        text,
    progress_done       integer,
    progress_total      integer,
    progress_message    text,
    result              text,
    last_error          text,
    cancel_requested_at text,
    canceled_by         blob,
    created_at          text not null,
    started_at          text,
    finished_at         text,
    created_by          blob,
    dedupe_key          text
);

create index work_items_claim on work_items (status, run_after, priority);

-- At most one unfinished item per (tenant, kind, dedupe key); platform items share one scope.
create unique index work_items_dedupe
    on work_items (coalesce(tenant_id, x'00000000000000000000000000000000'), kind, dedupe_key)
    where dedupe_key is not null and status in ('queued', 'running');

create index work_items_tenant_recent on work_items (tenant_id, created_at);
create index work_items_finished on work_items (finished_at) where finished_at is not null;
