-- Dry runs: a run may be a rehearsal that applies every page in a transaction it rolls back,
-- and keeps only its report. Every run keeps a sample of the changes it made (or, dry, would
-- make) per stream; a run that applies a dry run names it.
alter table connector_runs add column dry_run boolean not null default false;
alter table connector_runs add column changes text not null default '[]';
alter table connector_runs add column applies_dry_run blob;
create index connector_runs_applies on connector_runs (tenant_id, applies_dry_run)
    where applies_dry_run is not null;
