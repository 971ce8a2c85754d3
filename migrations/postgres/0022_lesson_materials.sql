-- Files attached to a lesson (a handout, slides, a video), uploaded by the catalogue's builders
-- and served only to people who may see the course. The content is kept with its size, the type
-- the server recognised in it (never the one the upload claimed) and its SHA-256.
create table lesson_materials (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    course_id    uuid not null,
    lesson_id    uuid not null,
    file_name    text not null,
    content_type text not null,
    size_bytes   bigint not null check (size_bytes > 0),
    sha256       text not null,
    content      bytea not null,
    uploaded_by  uuid,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    deleted_at   timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id)
);
create index lesson_materials_lesson on lesson_materials (tenant_id, lesson_id);

alter table lesson_materials enable row level security;
alter table lesson_materials force row level security;
create policy tenant_isolation on lesson_materials
    using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
