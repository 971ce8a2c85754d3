-- A person's calendar feed: the digest of the secret address a calendar application subscribes
-- to (one per person; issuing a new one replaces it, deleting it revokes the address).
create table calendar_feeds (
    tenant_id   uuid not null references tenants (id),
    user_id     uuid not null,
    token_hash  text not null,
    created_at  timestamptz not null,
    primary key (tenant_id, user_id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
alter table calendar_feeds enable row level security;
alter table calendar_feeds force row level security;
create policy tenant_isolation on calendar_feeds
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
