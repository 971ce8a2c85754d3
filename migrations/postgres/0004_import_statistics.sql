-- Long imports grow users and connector_links faster than autovacuum refreshes their
-- statistics, and a plan made for a near-empty table applies the page's key lookups as a filter
-- over every row of the tenant. The application role does not own the tables and may not
-- ANALYZE them, so the refresh is a function that runs as the schema owner; it names its tables
-- itself and takes no argument.
create function refresh_import_statistics() returns void
    language plpgsql
    security definer
    set search_path = public
as $$
begin
    analyze users;
    analyze connector_links;
    analyze course_completions;
    analyze certifications;
end
$$;

-- The link's installation key already carries the tenant (installations reference tenants), so
-- its own foreign key to tenants only doubled the check on every imported record.
alter table connector_links drop constraint connector_links_tenant_id_fkey;
