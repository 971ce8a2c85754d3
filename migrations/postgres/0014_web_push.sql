-- Web Push, the fourth channel: the browsers and phones each person turned push notifications
-- on for (a push-service endpoint and the two keys its messages are encrypted with), and the
-- outbox learns the channel.
create table push_subscriptions (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    user_id      uuid not null,
    endpoint     text not null,
    p256dh       text not null,
    auth         text not null,
    user_agent   text,
    created_at   timestamptz not null,
    last_sent_at timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, endpoint),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index push_subscriptions_user on push_subscriptions (tenant_id, user_id, created_at);
alter table push_subscriptions enable row level security;
alter table push_subscriptions force row level security;
create policy tenant_isolation on push_subscriptions
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));

alter table outbox drop constraint outbox_channel_check;
alter table outbox add constraint outbox_channel_check
    check (channel in ('email', 'sms', 'push'));
