-- People without email (frontline staff): a person is identified by their employee number
-- within the tenant and signs in with it and a password or a PIN. A PIN is short, so ten
-- consecutive failures lock it until an administrator or foreman sets a new one. People an
-- import adds without a name get one derived from the mapping and are flagged until someone
-- completes their profile.
--
-- SQLite cannot drop a NOT NULL in place, so the table is rebuilt the way SQLite documents:
-- a new table, the rows copied, the old one dropped, the new one renamed. Other tables refer
-- to `users`; migrations run with foreign-key enforcement off (`Db::migrate`), which checks
-- every reference afterwards. The view over the table is dropped and recreated.
drop view directory_people;
create table users_0013 (
    tenant_id             blob not null references tenants (id),
    id                    blob not null,
    email                 text,
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
    supervisor_id         blob,
    manager_id            blob,
    pin_hash              text,
    pin_failed_attempts   integer not null default 0,
    pin_locked_at         text,
    profile_incomplete    boolean not null default 0,
    bio                   text,
    created_at            text not null,
    updated_at            text not null,
    deleted_at            text,
    primary key (tenant_id, id),
    constraint users_email_key unique (tenant_id, email),
    constraint users_username_key unique (tenant_id, username),
    constraint users_employee_number_key unique (tenant_id, employee_number),
    constraint users_reachable_check check (email is not null or employee_number is not null or external_id is not null),
    foreign key (tenant_id, department_id) references departments (tenant_id, id)
);
insert into users_0013 (tenant_id, id, email, username, first_name, last_name, phone, address, employee_number, department_id, position, gender, role, password_hash, is_active, email_verified_at, last_active_at, last_login_at, failed_login_attempts, external_id, supervisor_id, manager_id, created_at, updated_at, deleted_at)
    select tenant_id, id, email, username, first_name, last_name, phone, address, employee_number, department_id, position, gender, role, password_hash, is_active, email_verified_at, last_active_at, last_login_at, failed_login_attempts, external_id, supervisor_id, manager_id, created_at, updated_at, deleted_at from users;
drop table users;
alter table users_0013 rename to users;
create index users_tenant_created on users (tenant_id, created_at, id);
create index users_tenant_department on users (tenant_id, department_id);
create index users_tenant_role on users (tenant_id, role);
create index users_live_by_tenant on users (tenant_id) where deleted_at is null;
create view directory_people as
select tenant_id, id, email, first_name, last_name, phone, role, department_id,
       supervisor_id, manager_id, is_active, created_at, deleted_at
  from users;

-- Profile pictures, resized and re-encoded by the server (never the uploaded bytes).
create table user_avatars (
    tenant_id    blob not null references tenants (id),
    user_id      blob not null,
    content_type text not null,
    image        blob not null,
    etag         text not null,
    updated_at   text not null,
    primary key (tenant_id, user_id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
