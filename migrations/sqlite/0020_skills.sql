-- Skills and achievements: the tenant's skills catalogue (each with the criteria of its levels),
-- the skills a course teaches or requires (at a level), people's skills with the level and
-- where it came from, and the achievements people were awarded.
create table skills (
    tenant_id   blob not null references tenants (id),
    id          blob not null,
    name        text not null,
    category    text,
    description text,
    -- The criteria of each level, level 1 first (1–10 levels).
    levels      text not null,
    created_at  text not null,
    updated_at  text not null,
    deleted_at  text,
    primary key (tenant_id, id)
);
create unique index skills_name on skills (tenant_id, lower(name)) where deleted_at is null;

create table course_skills (
    tenant_id blob not null references tenants (id),
    course_id blob not null,
    skill_id  blob not null,
    kind      text not null check (kind in ('teaches', 'requires')),
    level     integer not null check (level between 1 and 10),
    primary key (tenant_id, course_id, skill_id, kind),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, skill_id) references skills (tenant_id, id)
);

create table person_skills (
    tenant_id  blob not null references tenants (id),
    user_id    blob not null,
    skill_id   blob not null,
    level      integer not null check (level between 1 and 10),
    source     text not null check (source in ('course', 'assessment', 'manager', 'import')),
    -- The course whose completion raised it (course, assessment and import).
    course_id  blob,
    note       text,
    updated_by blob,
    updated_at text not null,
    primary key (tenant_id, user_id, skill_id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, skill_id) references skills (tenant_id, id)
);

create table achievements (
    tenant_id  blob not null references tenants (id),
    id         blob not null,
    user_id    blob not null,
    rule       text not null,
    -- What the rule was met for (a department's id; empty for rules met once).
    subject    text not null default '',
    detail     text not null,
    awarded_at text not null,
    primary key (tenant_id, id),
    unique (tenant_id, user_id, rule, subject),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
