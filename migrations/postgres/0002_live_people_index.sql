-- Counting a tenant's live (not deleted) people is the most frequent aggregate (every page of
-- the people list shows the total); this partial index lets it run as an index-only scan.
create index users_live_by_tenant on users (tenant_id) where deleted_at is null;
