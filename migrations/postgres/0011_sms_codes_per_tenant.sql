-- SMS reply codes are drawn at random, unique among a number's open approval links within a
-- tenant. The key takes the tenant: two tenants may hand one number the same code without one
-- taking the other's row; the webhook finds a reply's candidates by number and code and acts
-- only on a link still open (on none when several are).
alter table approval_sms_codes drop constraint approval_sms_codes_pkey;
alter table approval_sms_codes add primary key (tenant_id, phone, code);
create index approval_sms_codes_reply on approval_sms_codes (phone, code);
