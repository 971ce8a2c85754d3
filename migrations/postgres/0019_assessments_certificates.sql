-- Assessments: question banks per course, the quiz of an assessment lesson drawn from a bank,
-- and people's attempts (each keeps the paper it was given, so a later edit of the bank changes
-- neither what was asked nor how it was scored). Certificates: what completing a course
-- issues, with a verification code that anyone may check; the code's registry names only the
-- tenant that issued it, so the public check can open that tenant's rows.
create table question_banks (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    course_id  uuid not null,
    name       text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    deleted_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create unique index question_banks_name on question_banks (tenant_id, course_id, name)
    where deleted_at is null;

create table questions (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    bank_id    uuid not null,
    kind       text not null
        check (kind in ('single_choice', 'multiple_choice', 'true_false', 'short_answer')),
    prompt     text not null,
    options    jsonb not null default '[]',
    correct    jsonb not null default '[]',
    accepted   jsonb not null default '[]',
    points     integer not null default 1,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    deleted_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, bank_id) references question_banks (tenant_id, id)
);
create index questions_bank on questions (tenant_id, bank_id, created_at);

create table quizzes (
    tenant_id          uuid not null references tenants (id),
    lesson_id          uuid not null,
    course_id          uuid not null,
    bank_id            uuid not null,
    selection          text not null check (selection in ('fixed', 'random')),
    question_count     integer,
    shuffle_options    boolean not null,
    time_limit_minutes integer,
    max_attempts       integer,
    pass_percent       integer not null,
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    primary key (tenant_id, lesson_id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id),
    foreign key (tenant_id, bank_id) references question_banks (tenant_id, id)
);

create table quiz_attempts (
    tenant_id    uuid not null references tenants (id),
    id           uuid not null,
    lesson_id    uuid not null,
    enrolment_id uuid not null,
    user_id      uuid not null,
    number       integer not null,
    status       text not null check (status in ('in_progress', 'submitted', 'timed_out')),
    paper        jsonb not null,
    answers      jsonb,
    score        integer,
    max_score    integer not null,
    percent      integer,
    passed       boolean,
    started_at   timestamptz not null,
    deadline_at  timestamptz,
    submitted_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id)
);
create unique index quiz_attempts_number on quiz_attempts (tenant_id, enrolment_id, lesson_id, number);
create unique index quiz_attempts_open on quiz_attempts (tenant_id, enrolment_id, lesson_id)
    where status = 'in_progress';

create table course_certificates (
    tenant_id     uuid not null references tenants (id),
    id            uuid not null,
    code          text not null,
    user_id       uuid not null,
    course_id     uuid not null,
    enrolment_id  uuid,
    holder_name   text not null,
    course_title  text not null,
    issued_on     date not null,
    valid_until   date,
    revoked_at    timestamptz,
    revoke_reason text,
    created_at    timestamptz not null,
    primary key (tenant_id, id),
    unique (code),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create index course_certificates_user on course_certificates (tenant_id, user_id, issued_on);
create unique index course_certificates_enrolment on course_certificates (tenant_id, enrolment_id)
    where enrolment_id is not null;

-- How long a course's certificate is valid (none: it does not expire).
alter table courses add column certificate_months integer;

create table certificate_codes (
    code      text primary key,
    tenant_id uuid not null references tenants (id)
);

do $$
declare t text;
begin
    foreach t in array array['question_banks', 'questions', 'quizzes', 'quiz_attempts',
                             'course_certificates'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
-- Anyone may look a code up (that is what it is for); only its tenant writes it.
alter table certificate_codes enable row level security;
alter table certificate_codes force row level security;
create policy lookup on certificate_codes for select using (true);
create policy tenant_writes on certificate_codes for insert
    with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid));
