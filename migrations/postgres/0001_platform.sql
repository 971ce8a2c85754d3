-- TrainFlow platform foundation: tenants, people, sign-in, audit, jobs.
--
-- Conventions (see docs/architecture.md):
--  * every tenant table leads its primary, unique and foreign keys with tenant_id, so the
--    database refuses cross-tenant references and the schema can be distributed by tenant_id;
--  * every tenant table has row-level security ENABLEd and FORCEd with one policy bound to the
--    transaction-local setting app.tenant_id (set by the application's TenantTx);
--  * times are timestamptz written from the application clock; soft delete is deleted_at.

-- ---------------------------------------------------------------- platform-wide tables
create table tenants (
    id           uuid primary key,
    slug         text not null unique,
    name         text not null,
    domain       text unique,                 -- host name that selects this tenant in the portal
    status       text not null default 'active' check (status in ('active', 'suspended', 'deleted')),
    time_zone    text not null default 'UTC',
    locale       text not null default 'en',
    settings     jsonb not null default '{}',
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    suspended_at timestamptz,
    deleted_at   timestamptz
);

create table platform_operators (
    id            uuid primary key,
    email         text not null unique,
    password_hash text not null,
    created_at    timestamptz not null
);

-- Failed sign-in back-off, keyed by sha256 of (tenant, email) and of the client address.
create table auth_throttle (
    key           text primary key,
    failures      integer not null,
    blocked_until timestamptz,
    updated_at    timestamptz not null
);

-- One row per job occurrence: the unique key is the claim that makes an occurrence run once
-- across every instance.
create table job_runs (
    id            uuid primary key,
    job           text not null,
    scheduled_for timestamptz not null,
    instance      text not null,
    status        text not null check (status in ('running', 'succeeded', 'failed')),
    started_at    timestamptz not null,
    finished_at   timestamptz,
    detail        jsonb,
    unique (job, scheduled_for)
);
create index job_runs_recent on job_runs (job, started_at desc);

-- ---------------------------------------------------------------- tenant tables
create table departments (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    name       text not null,
    code       text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    deleted_at timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, name)
);

create table users (
    tenant_id             uuid not null references tenants (id),
    id                    uuid not null,
    email                 text not null,
    username              text not null,
    first_name            text not null default '',
    last_name             text not null default '',
    phone                 text,
    address               text,
    employee_number       text,
    department_id         uuid,
    position              text,
    gender                text,
    role                  text not null check (role in ('employee', 'foreman', 'manager', 'training_officer', 'trainer', 'administrator')),
    password_hash         text,                   -- null for invited people who have not set one
    is_active             boolean not null default true,
    email_verified_at     timestamptz,
    last_active_at        timestamptz,
    last_login_at         timestamptz,
    failed_login_attempts integer not null default 0,
    external_id           text,                   -- id in the HR system that synced this person
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    deleted_at            timestamptz,
    primary key (tenant_id, id),
    constraint users_email_key unique (tenant_id, email),
    constraint users_username_key unique (tenant_id, username),
    constraint users_employee_number_key unique (tenant_id, employee_number),
    foreign key (tenant_id, department_id) references departments (tenant_id, id)
);
create index users_tenant_created on users (tenant_id, created_at, id);
create index users_tenant_department on users (tenant_id, department_id);
create index users_tenant_role on users (tenant_id, role);

-- Refresh tokens: only the sha256 is stored; a family shares one sign-in, so replaying a used
-- token revokes every token of the family.
create table refresh_tokens (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    user_id    uuid not null,
    family_id  uuid not null,
    token_hash text not null,
    issued_at  timestamptz not null,
    expires_at timestamptz not null,
    used_at    timestamptz,
    revoked_at timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index refresh_tokens_family on refresh_tokens (tenant_id, family_id);

-- Portal sessions (cookie = tenant id . random token; only the sha256 is stored).
create table sessions (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    user_id      uuid not null,
    token_hash   text not null,
    csrf_token   text not null,
    created_at   timestamptz not null,
    expires_at   timestamptz not null,
    last_seen_at timestamptz not null,
    revoked_at   timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

-- The audit log: append-only (the application role may only insert and select) and
-- hash-chained per tenant; audit_heads holds each chain's last link and orders its writers.
create table audit_heads (
    tenant_id uuid primary key references tenants (id),
    seq       bigint not null,
    hash      text not null
);

create table audit_log (
    tenant_id    uuid not null references tenants (id),
    seq          bigint not null,
    id           uuid not null,
    occurred_at  timestamptz not null,
    actor_kind   text not null,
    actor_id     uuid,
    action       text not null,
    object_type  text,
    object_id    uuid,
    before_state jsonb,
    after_state  jsonb,
    request_id   text not null,
    ip           text,
    prev_hash    text not null,
    hash         text not null,
    primary key (tenant_id, seq),
    unique (tenant_id, id)
);
create index audit_log_object on audit_log (tenant_id, object_type, object_id);
create index audit_log_actor on audit_log (tenant_id, actor_id, seq);

create function audit_log_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end $$;
create trigger audit_log_no_update before update or delete on audit_log
    for each row execute function audit_log_is_append_only();

-- ---------------------------------------------------------------- row-level security
do $$
declare t text;
begin
    foreach t in array array['departments', 'users', 'refresh_tokens', 'sessions', 'audit_heads', 'audit_log'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
