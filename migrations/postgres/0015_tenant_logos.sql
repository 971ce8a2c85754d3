-- An organisation's logo, uploaded through the portal or the API and re-encoded by the server
-- (never the uploaded bytes). The tenant's `settings.logo_url` points at it while it is set.
create table tenant_logos (
    tenant_id    uuid primary key references tenants (id),
    content_type text not null,
    image        bytea not null,
    etag         text not null,
    updated_at   timestamptz not null
);
alter table tenant_logos enable row level security;
alter table tenant_logos force row level security;
create policy tenant_isolation on tenant_logos
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
