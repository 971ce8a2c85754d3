-- A run tells refusals from caveats: records applied with a caveat ("imported without a
-- department") are warnings, counted and kept apart from the records that were refused. The
-- status gains `succeeded_with_errors` (some records refused); a run whose every record was
-- refused ends `failed`. SQLite cannot change a check constraint in place, so the table is
-- rebuilt (no other table refers to it).
alter table connector_runs rename to connector_runs_0011;
create table connector_runs (
    tenant_id         blob not null references tenants (id),
    id                blob not null,
    installation_id   blob not null,
    trigger           text not null check (trigger in ('manual', 'schedule', 'retry')),
    scheduled_for     text,
    file_id           blob,
    sync_mode         text not null,
    status            text not null check (status in ('running', 'succeeded', 'succeeded_with_errors',
                                                      'failed', 'needs_confirmation', 'abandoned')),
    instance          text not null,
    requested_by      blob,
    started_at        text not null,
    heartbeat_at      text not null,
    finished_at       text,
    pages             integer not null default 0,
    created           integer not null default 0,
    updated           integer not null default 0,
    deactivated       integer not null default 0,
    record_errors     integer not null default 0,
    record_warnings   integer not null default 0,
    pending_deletions integer not null default 0,
    retries           integer not null default 0,
    fuel              integer not null default 0,
    peak_memory       integer not null default 0,
    errors            text not null default '[]',   -- the first record errors, capped
    warnings          text not null default '[]',   -- the first caveats, capped
    logs              text not null default '[]',   -- the connector's log, capped
    error             text,
    primary key (tenant_id, id),
    unique (tenant_id, installation_id, scheduled_for),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
insert into connector_runs (tenant_id, id, installation_id, trigger, scheduled_for, file_id,
        sync_mode, status, instance, requested_by, started_at, heartbeat_at, finished_at, pages,
        created, updated, deactivated, record_errors, pending_deletions, retries, fuel,
        peak_memory, errors, logs, error)
    select tenant_id, id, installation_id, trigger, scheduled_for, file_id, sync_mode, status,
           instance, requested_by, started_at, heartbeat_at, finished_at, pages, created, updated,
           deactivated, record_errors, pending_deletions, retries, fuel, peak_memory, errors,
           logs, error
      from connector_runs_0011;
drop table connector_runs_0011;
-- At most one run at a time per installation.
create unique index connector_runs_one_active on connector_runs (tenant_id, installation_id)
    where status = 'running';
create index connector_runs_recent on connector_runs (tenant_id, installation_id, started_at desc);
