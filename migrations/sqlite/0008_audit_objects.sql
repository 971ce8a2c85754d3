-- The objects a batch entry of the audit log changed: one row per object and entry (`seq` is
-- audit_log.seq), so the history of one object finds the batch entries that name it. Written
-- with their entry and never changed.
create table audit_objects (
    tenant_id   blob not null,
    object_type text not null,
    object_id   blob not null,
    seq         integer not null,
    primary key (tenant_id, object_id, seq)
);

create trigger audit_objects_no_update before update on audit_objects
begin select raise(abort, 'audit_objects is append-only'); end;
create trigger audit_objects_no_delete before delete on audit_objects
begin select raise(abort, 'audit_objects is append-only'); end;
