-- TrainFlow platform foundation: tenants, people, sign-in, audit, jobs (SQLite).
-- Same tables, keys and numbers as migrations/postgres; UUIDs are 16-byte blobs, times are
-- RFC 3339 text written from the application clock, JSON is text. SQLite has no row-level
-- security: tenant isolation rests on the application's TenantTx (one instance only).

create table tenants (
    id           blob primary key,
    slug         text not null unique,
    name         text not null,
    domain       text unique,
    status       text not null default 'active' check (status in ('active', 'suspended', 'deleted')),
    time_zone    text not null default 'UTC',
    locale       text not null default 'en',
    settings     text not null default '{}',
    created_at   text not null,
    updated_at   text not null,
    suspended_at text,
    deleted_at   text
);

create table platform_operators (
    id            blob primary key,
    email         text not null unique,
    password_hash text not null,
    created_at    text not null
);

create table auth_throttle (
    key           text primary key,
    failures      integer not null,
    blocked_until text,
    updated_at    text not null
);

create table job_runs (
    id            blob primary key,
    job           text not null,
    scheduled_for text not null,
    instance      text not null,
    status        text not null check (status in ('running', 'succeeded', 'failed')),
    started_at    text not null,
    finished_at   text,
    detail        text,
    unique (job, scheduled_for)
);
create index job_runs_recent on job_runs (job, started_at desc);

create table departments (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    name       text not null,
    code       text,
    created_at text not null,
    updated_at text not null,
    deleted_at text,
    primary key (tenant_id, id),
    unique (tenant_id, name)
);

create table users (
    tenant_id             blob not null references tenants (id),
    id                    blob not null,
    email                 text not null,
    username              text not null,
    first_name            text not null default '',
    last_name             text not null default '',
    phone                 text,
    address               text,
    employee_number       text,
    department_id         blob,
    position              text,
    gender                text,
    role                  text not null check (role in ('employee', 'foreman', 'manager', 'training_officer', 'trainer', 'administrator')),
    password_hash         text,
    is_active             boolean not null default 1,
    email_verified_at     text,
    last_active_at        text,
    last_login_at         text,
    failed_login_attempts integer not null default 0,
    external_id           text,
    created_at            text not null,
    updated_at            text not null,
    deleted_at            text,
    primary key (tenant_id, id),
    constraint users_email_key unique (tenant_id, email),
    constraint users_username_key unique (tenant_id, username),
    constraint users_employee_number_key unique (tenant_id, employee_number),
    foreign key (tenant_id, department_id) references departments (tenant_id, id)
);
create index users_tenant_created on users (tenant_id, created_at, id);
create index users_tenant_department on users (tenant_id, department_id);
create index users_tenant_role on users (tenant_id, role);

create table refresh_tokens (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    user_id    blob not null,
    family_id  blob not null,
    token_hash text not null,
    issued_at  text not null,
    expires_at text not null,
    used_at    text,
    revoked_at text,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index refresh_tokens_family on refresh_tokens (tenant_id, family_id);

create table sessions (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    user_id      blob not null,
    token_hash   text not null,
    csrf_token   text not null,
    created_at   text not null,
    expires_at   text not null,
    last_seen_at text not null,
    revoked_at   text,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

create table audit_heads (
    tenant_id blob primary key references tenants (id),
    seq       integer not null,
    hash      text not null
);

create table audit_log (
    tenant_id    blob not null references tenants (id),
    seq          integer not null,
    id           blob not null,
    occurred_at  text not null,
    actor_kind   text not null,
    actor_id     blob,
    action       text not null,
    object_type  text,
    object_id    blob,
    before_state text,
    after_state  text,
    request_id   text not null,
    ip           text,
    prev_hash    text not null,
    hash         text not null,
    primary key (tenant_id, seq),
    unique (tenant_id, id)
);
create index audit_log_object on audit_log (tenant_id, object_type, object_id);
create index audit_log_actor on audit_log (tenant_id, actor_id, seq);

create trigger audit_log_no_update before update on audit_log
begin select raise(abort, 'audit_log is append-only'); end;
create trigger audit_log_no_delete before delete on audit_log
begin select raise(abort, 'audit_log is append-only'); end;
