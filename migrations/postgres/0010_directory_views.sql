-- The directory: what other contexts may read of identity's people and departments and of
-- tenancy's tenants. A context writes another's tables only through the owner's functions and
-- reads them only through these views (or the owner's query functions), so the owners may
-- change their tables behind the views. Each view exposes the columns its readers use and
-- nothing else (no password hashes, no sign-in counters).
--
-- security_invoker: the underlying table's row-level security and privileges are checked for
-- the caller (trainflow_app), not for the view's owner, so a tenant transaction sees only its
-- tenant's rows through a view exactly as through the table. The views are simple selects over
-- one table, which the planner inlines: the tables' indexes serve them unchanged.
--
-- Grants: `Db::migrate` grants the application role SELECT on every relation after each
-- migration and revokes writes on views, so these are read-only for the application.

-- Owner: identity.
create view directory_people with (security_invoker = true) as
select tenant_id, id, email, first_name, last_name, phone, role, department_id,
       supervisor_id, manager_id, is_active, created_at, deleted_at
  from users;

-- Owner: identity.
create view directory_departments with (security_invoker = true) as
select tenant_id, id, name, deleted_at
  from departments;

-- Owner: tenancy. Platform-wide, like the table (no row-level security).
create view directory_tenants with (security_invoker = true) as
select id, slug, name, domain, status, time_zone, settings
  from tenants;
