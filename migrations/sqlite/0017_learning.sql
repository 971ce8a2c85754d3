-- Learning takes over the catalogue: courses gain what a catalogue shows (category, difficulty,
-- department, owner, status, whether people may enrol themselves) and a code unique in the
-- tenant; modules and lessons are ordered inside them; prerequisites link courses; people are
-- enrolled, with every change of an enrolment's status kept, and their progress is recorded
-- per lesson. Courses created by imports stay published, as they were visible before.
alter table courses add column category text;
alter table courses add column difficulty text not null default 'beginner'
    check (difficulty in ('beginner', 'intermediate', 'advanced'));
alter table courses add column department_id blob;
alter table courses add column owner_id blob;
alter table courses add column status text not null default 'published'
    check (status in ('draft', 'published', 'archived'));
alter table courses add column self_enrol boolean not null default true;
alter table courses add column created_by blob;
-- Codes become unique among live courses: imports wrote them unchecked, so blank codes are
-- cleared and a code several live courses share is kept by the oldest, the others suffixed.
update courses set code = null where code is not null and trim(code) = '';
update courses set code = code || '~' || lower(substr(hex(courses.id), 21, 12))
 where deleted_at is null and code is not null
   and exists (select 1 from courses o
                where o.tenant_id = courses.tenant_id and o.code = courses.code
                  and o.deleted_at is null and o.id < courses.id);
create unique index courses_code on courses (tenant_id, code)
    where deleted_at is null and code is not null;
create index courses_catalogue on courses (tenant_id, status, title) where deleted_at is null;

alter table course_completions add column source text not null default 'import'
    check (source in ('import', 'portal'));
alter table course_completions add column enrolment_id blob;

create table course_modules (
    tenant_id      blob not null references tenants (id),
    id             blob not null,
    course_id      blob not null,
    position       integer not null,
    title          text not null,
    description    text,
    duration_hours real not null default 0,
    created_at     text not null,
    updated_at     text not null,
    deleted_at     text,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create unique index course_modules_position on course_modules (tenant_id, course_id, position)
    where deleted_at is null;

create table course_lessons (
    tenant_id        blob not null references tenants (id),
    id               blob not null,
    course_id        blob not null,
    module_id        blob not null,
    position         integer not null,
    title            text not null,
    kind             text not null check (kind in ('text', 'file', 'link', 'assessment')),
    body             text,
    url              text,
    duration_minutes integer not null default 0,
    required         boolean not null default true,
    created_at       text not null,
    updated_at       text not null,
    deleted_at       text,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, module_id) references course_modules (tenant_id, id)
);
create unique index course_lessons_position on course_lessons (tenant_id, module_id, position)
    where deleted_at is null;
create index course_lessons_course on course_lessons (tenant_id, course_id);

create table course_prerequisites (
    tenant_id   blob not null references tenants (id),
    course_id   blob not null,
    requires_id blob not null,
    created_at  text not null,
    primary key (tenant_id, course_id, requires_id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, requires_id) references courses (tenant_id, id),
    check (course_id <> requires_id)
);

create table enrolments (
    tenant_id        blob not null references tenants (id),
    id               blob not null,
    course_id        blob not null,
    user_id          blob not null,
    status           text not null
        check (status in ('scheduled', 'in_progress', 'completed', 'cancelled', 'expired')),
    source           text not null check (source in ('self', 'assigned', 'import')),
    assigned_by      blob,
    due_on           text,
    override_reason  text,
    progress_percent integer not null default 0,
    started_at       text,
    completed_at     text,
    created_at       text not null,
    updated_at       text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
-- One open enrolment per person and course.
create unique index enrolments_open on enrolments (tenant_id, course_id, user_id)
    where status in ('scheduled', 'in_progress');
create index enrolments_user on enrolments (tenant_id, user_id, created_at);
create index enrolments_due on enrolments (tenant_id, due_on)
    where status in ('scheduled', 'in_progress') and due_on is not null;

create table enrolment_events (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    enrolment_id blob not null,
    from_status  text,
    to_status    text not null,
    actor_id     blob,
    reason       text,
    at           text not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id)
);
create index enrolment_events_enrolment on enrolment_events (tenant_id, enrolment_id, at);

create table lesson_progress (
    tenant_id     blob not null references tenants (id),
    enrolment_id  blob not null,
    lesson_id     blob not null,
    started_at    text not null,
    completed_at  text,
    seconds_spent integer not null default 0,
    updated_at    text not null,
    primary key (tenant_id, enrolment_id, lesson_id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id)
);
