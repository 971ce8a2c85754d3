-- Learning takes over the catalogue: courses gain what a catalogue shows (category, difficulty,
-- department, owner, status, whether people may enrol themselves) and a code unique in the
-- tenant; modules and lessons are ordered inside them; prerequisites link courses; people are
-- enrolled, with every change of an enrolment's status kept, and their progress is recorded
-- per lesson. Courses created by imports stay published, as they were visible before.
alter table courses add column category text;
alter table courses add column difficulty text not null default 'beginner'
    check (difficulty in ('beginner', 'intermediate', 'advanced'));
alter table courses add column department_id uuid;
alter table courses add column owner_id uuid;
alter table courses add column status text not null default 'published'
    check (status in ('draft', 'published', 'archived'));
alter table courses add column self_enrol boolean not null default true;
alter table courses add column created_by uuid;
-- Hours as the API has them (a double), not the four-byte `real` of the first import tables.
alter table courses alter column duration_hours type double precision;
-- Codes become unique among live courses: imports wrote them unchecked, so blank codes are
-- cleared and a code several live courses share is kept by the oldest, the others suffixed.
update courses set code = null where code is not null and trim(code) = '';
update courses set code = code || '~' || right(courses.id::text, 12)
 where deleted_at is null and code is not null
   and exists (select 1 from courses o
                where o.tenant_id = courses.tenant_id and o.code = courses.code
                  and o.deleted_at is null and o.id < courses.id);
create unique index courses_code on courses (tenant_id, code)
    where deleted_at is null and code is not null;
create index courses_catalogue on courses (tenant_id, status, title) where deleted_at is null;

alter table course_completions add column source text not null default 'import'
    check (source in ('import', 'portal'));
alter table course_completions add column enrolment_id uuid;

create table course_modules (
    tenant_id      uuid not null references tenants (id),
    id             uuid not null,
    course_id      uuid not null,
    position       integer not null,
    title          text not null,
    description    text,
    duration_hours double precision not null default 0,
    created_at     timestamptz not null,
    updated_at     timestamptz not null,
    deleted_at     timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create unique index course_modules_position on course_modules (tenant_id, course_id, position)
    where deleted_at is null;

create table course_lessons (
    tenant_id        uuid not null references tenants (id),
    id               uuid not null,
    course_id        uuid not null,
    module_id        uuid not null,
    position         integer not null,
    title            text not null,
    kind             text not null check (kind in ('text', 'file', 'link', 'assessment')),
    body             text,
    url              text,
    duration_minutes integer not null default 0,
    required         boolean not null default true,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    deleted_at       timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, module_id) references course_modules (tenant_id, id)
);
create unique index course_lessons_position on course_lessons (tenant_id, module_id, position)
    where deleted_at is null;
create index course_lessons_course on course_lessons (tenant_id, course_id);

create table course_prerequisites (
    tenant_id   uuid not null references tenants (id),
    course_id   uuid not null,
    requires_id uuid not null,
    created_at  timestamptz not null,
    primary key (tenant_id, course_id, requires_id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, requires_id) references courses (tenant_id, id),
    check (course_id <> requires_id)
);

create table enrolments (
    tenant_id        uuid not null references tenants (id),
    id               uuid not null,
    course_id        uuid not null,
    user_id          uuid not null,
    status           text not null
        check (status in ('scheduled', 'in_progress', 'completed', 'cancelled', 'expired')),
    source           text not null check (source in ('self', 'assigned', 'import')),
    assigned_by      uuid,
    due_on           date,
    override_reason  text,
    progress_percent integer not null default 0,
    started_at       timestamptz,
    completed_at     timestamptz,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
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
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    enrolment_id uuid not null,
    from_status  text,
    to_status    text not null,
    actor_id     uuid,
    reason       text,
    at           timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id)
);
create index enrolment_events_enrolment on enrolment_events (tenant_id, enrolment_id, at);

create table lesson_progress (
    tenant_id     uuid not null references tenants (id),
    enrolment_id  uuid not null,
    lesson_id     uuid not null,
    started_at    timestamptz not null,
    completed_at  timestamptz,
    seconds_spent integer not null default 0,
    updated_at    timestamptz not null,
    primary key (tenant_id, enrolment_id, lesson_id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id)
);

do $$
declare t text;
begin
    foreach t in array array['course_modules', 'course_lessons', 'course_prerequisites',
                             'enrolments', 'enrolment_events', 'lesson_progress'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
