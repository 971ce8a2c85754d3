-- A run tells refusals from caveats: records applied with a caveat ("imported without a
-- department") are warnings, counted and kept apart from the records that were refused. The
-- status gains `succeeded_with_errors` (some records refused); a run whose every record was
-- refused ends `failed`.
alter table connector_runs add column record_warnings integer not null default 0;
alter table connector_runs add column warnings jsonb not null default '[]';
alter table connector_runs drop constraint connector_runs_status_check;
alter table connector_runs add constraint connector_runs_status_check check (status in
    ('running', 'succeeded', 'succeeded_with_errors', 'failed', 'needs_confirmation', 'abandoned'));
