-- Web Push, the fourth channel: the browsers and phones each person turned push notifications
-- on for (a push-service endpoint and the two keys its messages are encrypted with), and the
-- outbox learns the channel.
create table push_subscriptions (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    user_id      blob not null,
    endpoint     text not null,
    p256dh       text not null,
    auth         text not null,
    user_agent   text,
    created_at   text not null,
    last_sent_at text,
    primary key (tenant_id, id),
    unique (tenant_id, endpoint),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index push_subscriptions_user on push_subscriptions (tenant_id, user_id, created_at);

-- SQLite cannot change a check constraint: the outbox is rebuilt the documented way (new
-- table, copy, drop, rename), with foreign keys off during migrations.
create table outbox_0014 (
    tenant_id       blob not null references tenants (id),
    id              blob not null,
    channel         text not null check (channel in ('email', 'sms', 'push')),
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
insert into outbox_0014 (tenant_id, id, channel, recipient, subject, text_body, html_body,
                         status, attempts, last_error, provider_id, created_at, sent_at)
    select tenant_id, id, channel, recipient, subject, text_body, html_body,
           status, attempts, last_error, provider_id, created_at, sent_at
      from outbox;
drop table outbox;
alter table outbox_0014 rename to outbox;
