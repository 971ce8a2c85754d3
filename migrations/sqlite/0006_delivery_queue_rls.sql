-- The PostgreSQL migration of the same number puts row-level security on the delivery queue;
-- SQLite has none (tenant scoping is in the queries), so this step keeps the versions aligned.
select 1;
