-- An organisation's logo, uploaded through the portal or the API and re-encoded by the server
-- (never the uploaded bytes). The tenant's `settings.logo_url` points at it while it is set.
create table tenant_logos (
    tenant_id    blob primary key references tenants (id),
    content_type text not null,
    image        blob not null,
    etag         text not null,
    updated_at   text not null
);
