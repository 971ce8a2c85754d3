-- A person's calendar feed: the digest of the secret address a calendar application subscribes
-- to (one per person; issuing a new one replaces it, deleting it revokes the address).
create table calendar_feeds (
    tenant_id   blob not null references tenants (id),
    user_id     blob not null,
    token_hash  text not null,
    created_at  text not null,
    primary key (tenant_id, user_id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
