-- Connectors: partner packages, installations, uploaded files, runs, cursors and the links
-- between source records and TrainFlow objects; and the learning records connectors import
-- (courses, completions, certification types and certifications).

create table connector_packages (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    connector_id text not null,
    version      text not null,
    name         text not null,
    description  text not null,
    manifest     jsonb not null,            -- the validated manifest, as uploaded
    sha256       text not null,
    size_bytes   bigint not null,
    component    bytea not null,
    uploaded_by  uuid,
    created_at   timestamptz not null,
    primary key (tenant_id, id),
    unique (tenant_id, connector_id, version)
);

create table connector_installations (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    connector_id text not null,
    package_id   uuid,                      -- null for first-party connectors
    name         text not null,
    config       jsonb not null,
    credentials  bytea,                     -- nonce || AES-256-GCM ciphertext; AAD = tenant || installation
    credential_names jsonb not null default '[]',
    http_hosts   jsonb not null default '[]',
    schedule     text,                      -- cron, six fields; null = on demand only
    sync_mode    text not null check (sync_mode in ('incremental', 'full_refresh')),
    enabled      boolean not null default true,
    created_by   uuid,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    deleted_at   timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, name),
    foreign key (tenant_id, package_id) references connector_packages (tenant_id, id)
);

create table connector_files (
    tenant_id       uuid not null references tenants (id),
    id              uuid not null,
    installation_id uuid not null,
    filename        text not null,
    size_bytes      bigint not null,
    sha256          text not null,
    content         bytea not null,
    uploaded_by     uuid,
    created_at      timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
create index connector_files_latest on connector_files (tenant_id, installation_id, created_at desc);

create table connector_runs (
    tenant_id         uuid not null references tenants (id),
    id                uuid not null,
    installation_id   uuid not null,
    trigger           text not null check (trigger in ('manual', 'schedule', 'retry')),
    scheduled_for     timestamptz,
    file_id           uuid,
    sync_mode         text not null,
    status            text not null check (status in ('running', 'succeeded', 'failed', 'needs_confirmation', 'abandoned')),
    instance          text not null,
    requested_by      uuid,
    started_at        timestamptz not null,
    heartbeat_at      timestamptz not null,
    finished_at       timestamptz,
    pages             integer not null default 0,
    created           integer not null default 0,
    updated           integer not null default 0,
    deactivated       integer not null default 0,
    record_errors     integer not null default 0,
    pending_deletions integer not null default 0,
    retries           integer not null default 0,
    fuel              bigint not null default 0,
    peak_memory       bigint not null default 0,
    errors            jsonb not null default '[]',   -- the first record errors, capped
    logs              jsonb not null default '[]',   -- the connector's log, capped
    error             text,
    primary key (tenant_id, id),
    unique (tenant_id, installation_id, scheduled_for),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
-- At most one run at a time per installation.
create unique index connector_runs_one_active on connector_runs (tenant_id, installation_id)
    where status = 'running';
create index connector_runs_recent on connector_runs (tenant_id, installation_id, started_at desc);

create table connector_cursors (
    tenant_id       uuid not null references tenants (id),
    installation_id uuid not null,
    stream          text not null,
    file_id         uuid,
    cursor          text,
    done            boolean not null,
    run_id          uuid not null,
    updated_at      timestamptz not null,
    primary key (tenant_id, installation_id, stream),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);

create table connector_links (
    tenant_id       uuid not null references tenants (id),
    installation_id uuid not null,
    stream          text not null,
    external_id     text not null,
    entity_kind     text not null,
    entity_id       uuid not null,
    seen_run        uuid not null,
    updated_at      timestamptz not null,
    primary key (tenant_id, installation_id, stream, external_id),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
create index connector_links_by_kind on connector_links (tenant_id, installation_id, entity_kind, external_id);

create table connector_kv (
    tenant_id       uuid not null references tenants (id),
    installation_id uuid not null,
    key             text not null,
    value           bytea not null,
    primary key (tenant_id, installation_id, key),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);

create table courses (
    tenant_id      uuid not null references tenants (id),
    id             uuid not null,
    code           text,
    title          text not null,
    description    text,
    duration_hours real,
    created_at     timestamptz not null,
    updated_at     timestamptz not null,
    deleted_at     timestamptz,
    primary key (tenant_id, id)
);

create table course_completions (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    user_id      uuid not null,
    course_id    uuid not null,
    completed_on date not null,
    score        real,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    deleted_at   timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create index course_completions_user on course_completions (tenant_id, user_id);

create table certification_types (
    tenant_id           uuid not null references tenants (id),
    id                  uuid not null,
    code                text not null,
    name                text not null,
    validity_months     integer,
    renewal_window_days integer not null default 90,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    deleted_at          timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, code)
);

create table certifications (
    tenant_id          uuid not null references tenants (id),
    id                 uuid not null,
    user_id            uuid not null,
    type_id            uuid not null,
    issued_on          date not null,
    expires_on         date,
    certificate_number text,
    source             text not null default 'manual',
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    deleted_at         timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, type_id) references certification_types (tenant_id, id)
);
create index certifications_user on certifications (tenant_id, user_id);
create index certifications_expiry on certifications (tenant_id, expires_on) where deleted_at is null;

do $$
declare t text;
begin
    foreach t in array array['connector_packages', 'connector_installations', 'connector_files',
                             'connector_runs', 'connector_cursors', 'connector_links', 'connector_kv',
                             'courses', 'course_completions', 'certification_types', 'certifications'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
