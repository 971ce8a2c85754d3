-- People without email (frontline staff): a person is identified by their employee number
-- within the tenant and signs in with it and a password or a PIN. A PIN is short, so ten
-- consecutive failures lock it until an administrator or foreman sets a new one. People an
-- import adds without a name get one derived from the mapping and are flagged until someone
-- completes their profile.
alter table users alter column email drop not null;
alter table users add column pin_hash text;
alter table users add column pin_failed_attempts integer not null default 0;
alter table users add column pin_locked_at timestamptz;
alter table users add column profile_incomplete boolean not null default false;
alter table users add column bio text;
alter table users add constraint users_reachable_check
    check (email is not null or employee_number is not null or external_id is not null);

-- Profile pictures, resized and re-encoded by the server (never the uploaded bytes).
create table user_avatars (
    tenant_id    uuid not null references tenants (id),
    user_id      uuid not null,
    content_type text not null,
    image        bytea not null,
    etag         text not null,
    updated_at   timestamptz not null,
    primary key (tenant_id, user_id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
alter table user_avatars enable row level security;
alter table user_avatars force row level security;
create policy tenant_isolation on user_avatars
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
