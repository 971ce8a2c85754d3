-- People without email (frontline staff): a person is identified by their employee number
-- within the tenant and signs in with it and a password or a PIN. A PIN is short, so ten
-- consecutive failures lock it until an administrator or foreman sets a new one. People an
-- import adds without a name get one derived from the mapping and are flagged until someone
-- completes their profile.
alter table users alter column email drop not null;
alter table users add column pin_hash text;
alter table users add column pin_failed_attempts integer not null default 0;
alter table users add column pin_locked_at timestamptz;
alter table users add column profile_incomplete boolean not null default false;
alter table users add constraint users_reachable_check
    check (email is not null or employee_number is not null or external_id is not null);
