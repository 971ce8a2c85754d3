-- SMS reply codes are drawn at random, unique among a number's open approval links within a
-- tenant. The key takes the tenant: two tenants may hand one number the same code without one
-- taking the other's row; the webhook finds a reply's candidates by number and code and acts
-- only on a link still open (on none when several are). SQLite cannot change a primary key in
-- place, so the table is rebuilt.
alter table approval_sms_codes rename to approval_sms_codes_0007;
create table approval_sms_codes (
    phone      text not null,
    code       text not null,
    tenant_id  blob not null references tenants (id),
    link_id    blob not null,
    expires_at text not null,
    primary key (tenant_id, phone, code)
);
insert into approval_sms_codes (phone, code, tenant_id, link_id, expires_at)
    select phone, code, tenant_id, link_id, expires_at from approval_sms_codes_0007;
drop table approval_sms_codes_0007;
create index approval_sms_codes_reply on approval_sms_codes (phone, code);
