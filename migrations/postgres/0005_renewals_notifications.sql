-- Certifications and renewals, approval chains and links, notifications and their outbox.

-- ---------------------------------------------------------------- reporting lines
-- A person's foreman (direct supervisor) and line manager, used to route renewal approvals.
alter table users add column supervisor_id uuid;
alter table users add column manager_id uuid;

-- ---------------------------------------------------------------- certification types
alter table certification_types add column description text;
alter table certification_types add column evidence_required boolean not null default false;
-- Course ids whose completion a renewal requires (JSON array).
alter table certification_types add column required_courses jsonb not null default '[]';

-- Each row of `certifications` is one cycle; a renewal closes the cycle it renews.
alter table certifications add column renewed_at timestamptz;
alter table certifications add column renewed_by_request uuid;
create index certifications_cycles on certifications (tenant_id, user_id, type_id, issued_on);

-- One reminder per certification cycle and offset, however often the scan runs.
create table certification_reminders (
    tenant_id        uuid not null references tenants (id),
    certification_id uuid not null,
    offset_days      integer not null,
    sent_at          timestamptz not null,
    primary key (tenant_id, certification_id, offset_days),
    foreign key (tenant_id, certification_id) references certifications (tenant_id, id)
);

-- ---------------------------------------------------------------- approval chains
-- `scope` is 'default' or a certification type id; steps is an ordered JSON array of
-- {relation, user_ids, sla_hours}.
create table approval_chains (
    tenant_id  uuid not null references tenants (id),
    scope      text not null,
    steps      jsonb not null,
    updated_by uuid,
    updated_at timestamptz not null,
    primary key (tenant_id, scope)
);

-- Out-of-office delegation: approvals routed to `user_id` go to `delegate_id` meanwhile.
create table approval_delegations (
    tenant_id   uuid not null references tenants (id),
    id          uuid not null,
    user_id     uuid not null,
    delegate_id uuid not null,
    starts_at   timestamptz not null,
    ends_at     timestamptz not null,
    created_at  timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, delegate_id) references users (tenant_id, id)
);
create index approval_delegations_user on approval_delegations (tenant_id, user_id, ends_at);

-- ---------------------------------------------------------------- renewal requests
create table renewal_requests (
    tenant_id        uuid not null references tenants (id),
    id               uuid not null,
    certification_id uuid not null,
    user_id          uuid not null,
    requested_by     uuid not null,
    status           text not null check (status in ('pending', 'approved', 'rejected', 'returned', 'cancelled')),
    comment          text,
    current_step     integer not null default 0,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    decided_at       timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, certification_id) references certifications (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index renewal_requests_user on renewal_requests (tenant_id, user_id, created_at);
-- At most one open request per certification cycle.
create unique index renewal_requests_open on renewal_requests (tenant_id, certification_id)
    where status = 'pending';

create table renewal_steps (
    tenant_id     uuid not null references tenants (id),
    id            uuid not null,
    request_id    uuid not null,
    position      integer not null,
    relation      text not null,
    named         jsonb not null default '[]',
    approver_id   uuid,
    assigned_from uuid,                          -- the approver this step was re-routed from
    status        text not null check (status in ('waiting', 'pending', 'approved', 'rejected', 'returned', 'cancelled')),
    sla_hours     integer not null,
    due_at        timestamptz,
    reminded_at   timestamptz,
    escalated_at  timestamptz,
    decided_at    timestamptz,
    decided_by    uuid,
    comment       text,
    primary key (tenant_id, id),
    unique (tenant_id, request_id, position),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);
create index renewal_steps_pending on renewal_steps (tenant_id, approver_id) where status = 'pending';
create index renewal_steps_due on renewal_steps (tenant_id, due_at) where status = 'pending';

-- Everything that happened to a request, in order.
create table renewal_events (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    request_id uuid not null,
    at         timestamptz not null,
    actor_id   uuid,
    action     text not null,
    comment    text,
    detail     jsonb not null default '{}',
    primary key (tenant_id, id),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);
create index renewal_events_request on renewal_events (tenant_id, request_id, at);

create table renewal_evidence (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    request_id   uuid not null,
    filename     text not null,
    content_type text not null,
    size_bytes   bigint not null,
    sha256       text not null,
    content      bytea not null,
    uploaded_by  uuid not null,
    created_at   timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);

-- Approve-by-link: only the token's sha256 is stored; bound to one step and one approver;
-- redeemed once by `update … where used_at is null and expires_at > now`.
create table approval_links (
    tenant_id   uuid not null references tenants (id),
    id          uuid not null,
    token_hash  text not null,
    step_id     uuid not null,
    approver_id uuid not null,
    sms_code    text not null,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    used_action text,
    revoked_at  timestamptz,
    created_at  timestamptz not null,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, step_id) references renewal_steps (tenant_id, id)
);
create index approval_links_sms on approval_links (tenant_id, approver_id, sms_code);

-- ---------------------------------------------------------------- notifications
create table notifications (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    user_id    uuid not null,
    kind       text not null check (kind in ('attendance', 'report', 'account', 'session', 'system', 'renewal')),
    priority   text not null check (priority in ('low', 'medium', 'high')),
    title      text not null,
    body       text not null,
    link       text,
    read_at    timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index notifications_inbox on notifications (tenant_id, user_id, created_at desc) where deleted_at is null;

create table notification_preferences (
    tenant_id uuid not null references tenants (id),
    user_id   uuid not null,
    kind      text not null,
    channel   text not null check (channel in ('in_app', 'email', 'sms', 'push')),
    enabled   boolean not null,
    primary key (tenant_id, user_id, kind, channel),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

-- A tenant's own email templates, by template name (text and HTML bodies; subject).
create table email_templates (
    tenant_id  uuid not null references tenants (id),
    name       text not null,
    subject    text not null,
    text_body  text not null,
    html_body  text not null,
    updated_at timestamptz not null,
    primary key (tenant_id, name)
);

-- Messages to deliver, written in the transaction of the event that caused them.
create table outbox (
    tenant_id       uuid not null references tenants (id),
    id              uuid not null,
    channel         text not null check (channel in ('email', 'sms')),
    recipient       text not null,
    subject         text,
    text_body       text not null,
    html_body       text,
    status          text not null check (status in ('pending', 'sent', 'failed')),
    attempts        integer not null default 0,
    last_error      text,
    provider_id     text,
    created_at      timestamptz not null,
    sent_at         timestamptz,
    primary key (tenant_id, id)
);

-- The delivery queue across tenants: ids and due times only (the content stays in the tenant's
-- outbox, behind row-level security). Claimed with `for update skip locked`.
create table delivery_queue (
    id              uuid primary key,
    tenant_id       uuid not null references tenants (id),
    next_attempt_at timestamptz not null,
    claimed_until   timestamptz
);
create index delivery_queue_due on delivery_queue (next_attempt_at);

do $$
declare t text;
begin
    foreach t in array array['certification_reminders', 'approval_chains', 'approval_delegations',
                             'renewal_requests', 'renewal_steps', 'renewal_events', 'renewal_evidence',
                             'approval_links', 'notifications', 'notification_preferences',
                             'email_templates', 'outbox'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
