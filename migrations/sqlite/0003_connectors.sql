-- Connectors and the learning records they import (SQLite). Same tables, keys and numbers as
-- migrations/postgres; see 0001 for the type mapping.

create table connector_packages (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    connector_id text not null,
    version      text not null,
    name         text not null,
    description  text not null,
    manifest     text not null,            -- the validated manifest, as uploaded
    sha256       text not null,
    size_bytes   integer not null,
    component    blob not null,
    uploaded_by  blob,
    created_at   text not null,
    primary key (tenant_id, id),
    unique (tenant_id, connector_id, version)
);

create table connector_installations (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    connector_id text not null,
    package_id   blob,                      -- null for first-party connectors
    name         text not null,
    config       text not null,
    credentials  blob,                     -- nonce || AES-256-GCM ciphertext; AAD = tenant || installation
    credential_names text not null default '[]',
    http_hosts   text not null default '[]',
    schedule     text,                      -- cron, six fields; null = on demand only
    sync_mode    text not null check (sync_mode in ('incremental', 'full_refresh')),
    enabled      integer not null default 1,
    created_by   blob,
    created_at   text not null,
    updated_at   text not null,
    deleted_at   text,
    primary key (tenant_id, id),
    unique (tenant_id, name),
    foreign key (tenant_id, package_id) references connector_packages (tenant_id, id)
);

create table connector_files (
    tenant_id       blob not null references tenants (id),
    id              blob not null,
    installation_id blob not null,
    filename        text not null,
    size_bytes      integer not null,
    sha256          text not null,
    content         blob not null,
    uploaded_by     blob,
    created_at      text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
create index connector_files_latest on connector_files (tenant_id, installation_id, created_at desc);

create table connector_runs (
    tenant_id         blob not null references tenants (id),
    id                blob not null,
    installation_id   blob not null,
    trigger           text not null check (trigger in ('manual', 'schedule', 'retry')),
    scheduled_for     text,
    file_id           blob,
    sync_mode         text not null,
    status            text not null check (status in ('running', 'succeeded', 'failed', 'needs_confirmation', 'abandoned')),
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
    pending_deletions integer not null default 0,
    retries           integer not null default 0,
    fuel              integer not null default 0,
    peak_memory       integer not null default 0,
    errors            text not null default '[]',   -- the first record errors, capped
    logs              text not null default '[]',   -- the connector's log, capped
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
    tenant_id       blob not null references tenants (id),
    installation_id blob not null,
    stream          text not null,
    file_id         blob,
    cursor          text,
    done            integer not null,
    run_id          blob not null,
    updated_at      text not null,
    primary key (tenant_id, installation_id, stream),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);

create table connector_links (
    tenant_id       blob not null references tenants (id),
    installation_id blob not null,
    stream          text not null,
    external_id     text not null,
    entity_kind     text not null,
    entity_id       blob not null,
    seen_run        blob not null,
    updated_at      text not null,
    primary key (tenant_id, installation_id, stream, external_id),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);
create index connector_links_by_kind on connector_links (tenant_id, installation_id, entity_kind, external_id);

create table connector_kv (
    tenant_id       blob not null references tenants (id),
    installation_id blob not null,
    key             text not null,
    value           blob not null,
    primary key (tenant_id, installation_id, key),
    foreign key (tenant_id, installation_id) references connector_installations (tenant_id, id)
);

create table courses (
    tenant_id      blob not null references tenants (id),
    id             blob not null,
    code           text,
    title          text not null,
    description    text,
    duration_hours real,
    created_at     text not null,
    updated_at     text not null,
    deleted_at     text,
    primary key (tenant_id, id)
);

create table course_completions (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    user_id      blob not null,
    course_id    blob not null,
    completed_on text not null,
    score        real,
    created_at   text not null,
    updated_at   text not null,
    deleted_at   text,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create index course_completions_user on course_completions (tenant_id, user_id);

create table certification_types (
    tenant_id           blob not null references tenants (id),
    id                  blob not null,
    code                text not null,
    name                text not null,
    validity_months     integer,
    renewal_window_days integer not null default 90,
    created_at          text not null,
    updated_at          text not null,
    deleted_at          text,
    primary key (tenant_id, id),
    unique (tenant_id, code)
);

create table certifications (
    tenant_id          blob not null references tenants (id),
    id                 blob not null,
    user_id            blob not null,
    type_id            blob not null,
    issued_on          text not null,
    expires_on         text,
    certificate_number text,
    source             text not null default 'manual',
    created_at         text not null,
    updated_at         text not null,
    deleted_at         text,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, type_id) references certification_types (tenant_id, id)
);
create index certifications_user on certifications (tenant_id, user_id);
create index certifications_expiry on certifications (tenant_id, expires_on) where deleted_at is null;
