-- SMS replies ("YES 123456") arrive at one webhook for every tenant: this index maps the
-- sender's number and the code an approval SMS carried to the tenant and the link, so the reply
-- is handled under that tenant's row-level security. A tenant's transaction sees only its own
-- entries; the webhook, with no tenant bound, looks one up by number and code.
create table approval_sms_codes (
    phone      text not null,
    code       text not null,
    tenant_id  uuid not null references tenants (id),
    link_id    uuid not null,
    expires_at timestamptz not null,
    primary key (phone, code)
);
alter table approval_sms_codes enable row level security;
alter table approval_sms_codes force row level security;
create policy tenant_or_platform on approval_sms_codes
    using (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));

-- Links that act on an account (password reset, email verification): only the token's sha256
-- is stored; each is bound to one person and one purpose, expires, and is redeemed once.
create table account_links (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    token_hash text not null,
    user_id    uuid not null,
    purpose    text not null check (purpose in ('password_reset', 'email_verification')),
    expires_at timestamptz not null,
    used_at    timestamptz,
    created_at timestamptz not null,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
alter table account_links enable row level security;
alter table account_links force row level security;
create policy tenant_isolation on account_links
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
