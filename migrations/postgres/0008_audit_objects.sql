-- The objects a batch entry of the audit log changed (an imported page lists every person or
-- certification it created, updated, deactivated or deleted): one row per object and entry, so
-- the history of one object finds the batch entries that name it. `seq` is the entry's position
-- in the tenant's chain (audit_log.seq). Rows are written with their entry, in its statement,
-- and like the log itself are never changed. No foreign keys: the entry is written in the same
-- statement and is never removed, and a key check per object would add 1,000 lookups to every
-- imported page.
create table audit_objects (
    tenant_id   uuid not null,
    object_type text not null,
    object_id   uuid not null,
    seq         bigint not null,
    primary key (tenant_id, object_id, seq)
);

create function audit_objects_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_objects is append-only';
end $$;
create trigger audit_objects_no_update before update or delete on audit_objects
    for each row execute function audit_objects_is_append_only();

alter table audit_objects enable row level security;
alter table audit_objects force row level security;
create policy tenant_isolation on audit_objects
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
