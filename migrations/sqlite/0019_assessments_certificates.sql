-- Assessments: question banks per course, the quiz of an assessment lesson drawn from a bank,
-- and people's attempts (each keeps the paper it was given, so a later edit of the bank changes
-- neither what was asked nor how it was scored). Certificates: what completing a course
-- issues, with a verification code that anyone may check; the code's registry names only the
-- tenant that issued it, so the public check can open that tenant's rows.
create table question_banks (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    course_id  blob not null,
    name       text not null,
    created_at text not null,
    updated_at text not null,
    deleted_at text,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id)
);
create unique index question_banks_name on question_banks (tenant_id, course_id, name)
    where deleted_at is null;

create table questions (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    bank_id    blob not null,
    kind       text not null
        check (kind in ('single_choice', 'multiple_choice', 'true_false', 'short_answer')),
    prompt     text not null,
    options    text not null default '[]',
    correct    text not null default '[]',
    accepted   text not null default '[]',
    points     integer not null default 1,
    created_at text not null,
    updated_at text not null,
    deleted_at text,
    primary key (tenant_id, id),
    foreign key (tenant_id, bank_id) references question_banks (tenant_id, id)
);
create index questions_bank on questions (tenant_id, bank_id, created_at);

create table quizzes (
    tenant_id          blob not null references tenants (id),
    lesson_id          blob not null,
    course_id          blob not null,
    bank_id            blob not null,
    selection          text not null check (selection in ('fixed', 'random')),
    question_count     integer,
    shuffle_options    boolean not null,
    time_limit_minutes integer,
    max_attempts       integer,
    pass_percent       integer not null,
    created_at         text not null,
    updated_at         text not null,
    primary key (tenant_id, lesson_id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id),
    foreign key (tenant_id, bank_id) references question_banks (tenant_id, id)
);

create table quiz_attempts (
    tenant_id    blob not null references tenants (id),
    id           blob not null,
    lesson_id    blob not null,
    enrolment_id blob not null,
    user_id      blob not null,
    number       integer not null,
    status       text not null check (status in ('in_progress', 'submitted', 'timed_out')),
    paper        text not null,
    answers      text,
    score        integer,
    max_score    integer not null,
    percent      integer,
    passed       boolean,
    started_at   text not null,
    deadline_at  text,
    submitted_at text,
    primary key (tenant_id, id),
    foreign key (tenant_id, lesson_id) references course_lessons (tenant_id, id),
    foreign key (tenant_id, enrolment_id) references enrolments (tenant_id, id)
);
create unique index quiz_attempts_number on quiz_attempts (tenant_id, enrolment_id, lesson_id, number);
create unique index quiz_attempts_open on quiz_attempts (tenant_id, enrolment_id, lesson_id)
    where status = 'in_progress';

create table course_certificates (
    tenant_id     blob not null references tenants (id),
    id            blob not null,
    code          text not null,
    user_id       blob not null,
    course_id     blob not null,
    enrolment_id  blob,
    holder_name   text not null,
    course_title  text not null,
    issued_on     text not null,
    valid_until   text,
    revoked_at    text,
    revoke_reason text,
    created_at    text not null,
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
    tenant_id blob not null references tenants (id)
);

