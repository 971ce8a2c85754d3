-- The delivery queue spans tenants: the delivery job claims from it with no tenant bound. A
-- tenant's transaction still sees and writes only its own entries (the same second wall as
-- every tenant table); only the platform scope, with no tenant bound, sees them all.
alter table delivery_queue enable row level security;
alter table delivery_queue force row level security;
create policy tenant_or_platform on delivery_queue
    using (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (nullif(current_setting('app.tenant_id', true), '') is null
           or tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
