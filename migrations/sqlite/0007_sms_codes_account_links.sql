-- SMS replies arrive at one webhook for every tenant: the sender's number and code lead to the
-- tenant and the approval link.
create table approval_sms_codes (
    phone      text not null,
    code       text not null,
    tenant_id  blob not null references tenants (id),
    link_id    blob not null,
    expires_at text not null,
    primary key (phone, code)
);

-- Links that act on an account (password reset, email verification).
create table account_links (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    token_hash text not null,
    user_id    blob not null,
    purpose    text not null check (purpose in ('password_reset', 'email_verification')),
    expires_at text not null,
    used_at    text,
    created_at text not null,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
