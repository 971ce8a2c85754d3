-- The directory: what other contexts may read of identity's people and departments and of
-- tenancy's tenants. A context writes another's tables only through the owner's functions and
-- reads them only through these views (or the owner's query functions), so the owners may
-- change their tables behind the views. Each view exposes the columns its readers use and
-- nothing else (no password hashes, no sign-in counters).
--
-- The views are simple selects over one table, which SQLite flattens into the query that uses
-- them: the tables' indexes serve them unchanged. SQLite views are read-only.

-- Owner: identity.
create view directory_people as
select tenant_id, id, email, first_name, last_name, phone, role, department_id,
       supervisor_id, manager_id, is_active, created_at, deleted_at
  from users;

-- Owner: identity.
create view directory_departments as
select tenant_id, id, name, deleted_at
  from departments;

-- Owner: tenancy.
create view directory_tenants as
select id, slug, name, domain, status, time_zone, settings
  from tenants;
