-- Durable background work: one queue for every tenant, and for platform work (no tenant).
-- A worker claims a due item (`for update skip locked`), holds it under a lease it renews while
-- the handler runs, and records the outcome. A worker that dies stops renewing; once its lease
-- lapses another worker takes the item again, up to `max_attempts`.
create table work_items (
    id                  uuid primary key,
    tenant_id           uuid references tenants (id),
    kind                text not null,
    payload             jsonb not null,
    status              text not null
                        check (status in ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority            integer not null default 0,
    attempts            integer not null default 0,
    max_attempts        integer not null check (max_attempts >= 1),
    -- Not claimed before this time: the enqueuer's schedule, then the back-off after a failure.
    run_after           timestamptz not null,
    -- The instance holding (or, once finished, last holding) the item.
    locked_by           text,
    locked_until        timestamptz,
    -- Fences a claim: only the holder of the current lease may report progress or an outcome,
    -- so a worker that lost its lease cannot overwrite the next attempt.
    lease_id            uuid,
    heartbeat_at        timestamptz,
    progress_done       bigint,
    progress_total      bigint,
    progress_message    text,
    result              jsonb,
    last_error          text,
    cancel_requested_at timestamptz,
    canceled_by         uuid,
    created_at          timestamptz not null,
    started_at          timestamptz,
    finished_at         timestamptz,
    created_by          uuid,
    dedupe_key          text
);

-- The claim: due queued items, the highest priority first.
create index work_items_claim on work_items (status, run_after, priority);

-- At most one unfinished item per (tenant, kind, dedupe key). Platform items have no tenant and
-- share one scope; the all-zero UUID stands in for it because nulls are never equal in a key.
create unique index work_items_dedupe
    on work_items (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, dedupe_key)
    where dedupe_key is not null and status in ('queued', 'running');

-- History: a tenant's items newest first, and the prune of finished items.
create index work_items_tenant_recent on work_items (tenant_id, created_at);
create index work_items_finished on work_items (finished_at) where finished_at is not null;

-- Like the delivery queue, the table spans tenants: workers claim with no tenant bound. A
-- tenant's transaction sees and writes only its own items; only the platform scope, with no
-- tenant bound, sees them all (platform items included).
alter table work_items enable row level security;
alter table work_items force row level security;
create policy tenant_or_platform on work_items
    using (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
