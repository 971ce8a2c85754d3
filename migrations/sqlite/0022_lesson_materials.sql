-- Files attached to a lesson (a handout, slides, a video), uploaded by the catalogue's builders
-- and served only to people who may see the course. The content is kept with its size, the type
-- the server recognised in it (never the one the upload claimed) and its SHA-256.
create table lesson_materials (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    course_id    blob not null,
    lesson_id    blob not null,
    file_name    text not null,
    content_type text not null,
    size_bytes   integer not null check (size_bytes > 0),
    sha256       text not null,
    content      blob not null,
    uploaded_by  blob,
    created_at   text not null,
    updated_at   text not null,
    deleted_at   text,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id)
);
create index lesson_materials_lesson on lesson_materials (tenant_id, lesson_id);
