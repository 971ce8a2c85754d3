-- Certifications and renewals, approval chains and links, notifications and their outbox.

-- ---------------------------------------------------------------- reporting lines
-- A person's foreman (direct supervisor) and line manager, used to route renewal approvals.
alter table users add column supervisor_id blob;
alter table users add column manager_id blob;

-- ---------------------------------------------------------------- certification types
alter table certification_types add column description text;
alter table certification_types add column evidence_required boolean not null default 0;
-- Course ids whose completion a renewal requires (JSON array).
alter table certification_types add column required_courses text not null default '[]';

-- Each row of `certifications` is one cycle; a renewal closes the cycle it renews.
alter table certifications add column renewed_at text;
alter table certifications add column renewed_by_request blob;
create index certifications_cycles on certifications (tenant_id, user_id, type_id, issued_on);

-- One reminder per certification cycle and offset, however often the scan runs.
create table certification_reminders (
    tenant_id        blob not null references tenants (id),
    certification_id blob not null,
    offset_days      integer not null,
    sent_at          text not null,
    primary key (tenant_id, certification_id, offset_days),
    foreign key (tenant_id, certification_id) references certifications (tenant_id, id)
);

-- ---------------------------------------------------------------- approval chains
-- `scope` is 'default' or a certification type id; steps is an ordered JSON array of
-- {relation, user_ids, sla_hours}.
create table approval_chains (
    tenant_id  blob not null references tenants (id),
    scope      text not null,
    steps      text not null,
    updated_by blob,
    updated_at text not null,
    primary key (tenant_id, scope)
);

-- Out-of-office delegation: approvals routed to `user_id` go to `delegate_id` meanwhile.
create table approval_delegations (
    tenant_id   blob not null references tenants (id),
    id          blob not null,
    user_id     blob not null,
    delegate_id blob not null,
    starts_at   text not null,
    ends_at     text not null,
    created_at  text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, delegate_id) references users (tenant_id, id)
);
create index approval_delegations_user on approval_delegations (tenant_id, user_id, ends_at);

-- ---------------------------------------------------------------- renewal requests
create table renewal_requests (
    tenant_id        blob not null references tenants (id),
    id               blob not null,
    certification_id blob not null,
    user_id          blob not null,
    requested_by     blob not null,
    status           text not null check (status in ('pending', 'approved', 'rejected', 'returned', 'cancelled')),
    comment          text,
    current_step     integer not null default 0,
    created_at       text not null,
    updated_at       text not null,
    decided_at       text,
    primary key (tenant_id, id),
    foreign key (tenant_id, certification_id) references certifications (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index renewal_requests_user on renewal_requests (tenant_id, user_id, created_at);
-- At most one open request per certification cycle.
create unique index renewal_requests_open on renewal_requests (tenant_id, certification_id)
    where status = 'pending';

create table renewal_steps (
    tenant_id     blob not null references tenants (id),
    id            blob not null,
    request_id    blob not null,
    position      integer not null,
    relation      text not null,
    named         text not null default '[]',
    approver_id   blob,
    assigned_from blob,                          -- the approver this step was re-routed from
    status        text not null check (status in ('waiting', 'pending', 'approved', 'rejected', 'returned', 'cancelled')),
    sla_hours     integer not null,
    due_at        text,
    reminded_at   text,
    escalated_at  text,
    decided_at    text,
    decided_by    blob,
    comment       text,
    primary key (tenant_id, id),
    unique (tenant_id, request_id, position),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);
create index renewal_steps_pending on renewal_steps (tenant_id, approver_id) where status = 'pending';
create index renewal_steps_due on renewal_steps (tenant_id, due_at) where status = 'pending';

-- Everything that happened to a request, in order.
create table renewal_events (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    request_id blob not null,
    at         text not null,
    actor_id   blob,
    action     text not null,
    comment    text,
    detail     text not null default '{}',
    primary key (tenant_id, id),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);
create index renewal_events_request on renewal_events (tenant_id, request_id, at);

create table renewal_evidence (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    request_id   blob not null,
    filename     text not null,
    content_type text not null,
    size_bytes   integer not null,
    sha256       text not null,
    content      blob not null,
    uploaded_by  blob not null,
    created_at   text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, request_id) references renewal_requests (tenant_id, id)
);

-- Approve-by-link: only the token's sha256 is stored; bound to one step and one approver;
-- redeemed once by `update … where used_at is null and expires_at > now`.
create table approval_links (
    tenant_id   blob not null references tenants (id),
    id          blob not null,
    token_hash  text not null,
    step_id     blob not null,
    approver_id blob not null,
    sms_code    text not null,
    expires_at  text not null,
    used_at     text,
    used_action text,
    revoked_at  text,
    created_at  text not null,
    primary key (tenant_id, id),
    unique (tenant_id, token_hash),
    foreign key (tenant_id, step_id) references renewal_steps (tenant_id, id)
);
create index approval_links_sms on approval_links (tenant_id, approver_id, sms_code);

-- ---------------------------------------------------------------- notifications
create table notifications (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    user_id    blob not null,
    kind       text not null check (kind in ('attendance', 'report', 'account', 'session', 'system', 'renewal')),
    priority   text not null check (priority in ('low', 'medium', 'high')),
    title      text not null,
    body       text not null,
    link       text,
    read_at    text,
    deleted_at text,
    created_at text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index notifications_inbox on notifications (tenant_id, user_id, created_at desc) where deleted_at is null;

create table notification_preferences (
    tenant_id blob not null references tenants (id),
    user_id   blob not null,
    kind      text not null,
    channel   text not null check (channel in ('in_app', 'email', 'sms', 'push')),
    enabled   boolean not null,
    primary key (tenant_id, user_id, kind, channel),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

-- A tenant's own email templates, by template name (text and HTML bodies; subject).
create table email_templates (
    tenant_id  blob not null references tenants (id),
    name       text not null,
    subject    text not null,
    text_body  text not null,
    html_body  text not null,
    updated_at text not null,
    primary key (tenant_id, name)
);

-- Messages to deliver, written in the transaction of the event that caused them.
create table outbox (
    tenant_id       blob not null references tenants (id),
    id              blob not null,
    channel         text not null check (channel in ('email', 'sms')),
    recipient       text not null,
    subject         text,
    text_body       text not null,
    html_body       text,
    status          text not null check (status in ('pending', 'sent', 'failed')),
    attempts        integer not null default 0,
    last_error      text,
    provider_id     text,
    created_at      text not null,
    sent_at         text,
    primary key (tenant_id, id)
);

-- The delivery queue across tenants: ids and due times only (the content stays in the tenant's
-- outbox, behind row-level security). Claimed with `for update skip locked`.
create table delivery_queue (
    id              blob primary key,
    tenant_id       blob not null references tenants (id),
    next_attempt_at text not null,
    claimed_until   text
);
create index delivery_queue_due on delivery_queue (next_attempt_at);
