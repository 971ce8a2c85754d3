-- Skills and achievements: the tenant's skills catalogue (each with the criteria of its levels),
-- the skills a course teaches or requires (at a level), people's skills with the level and
-- where it came from, and the achievements people were awarded.
create table skills (
    tenant_id   uuid not null references tenants (id),
    id          uuid not null,
    name        text not null,
    category    text,
    description text,
    -- The criteria of each level, level 1 first (1–10 levels).
    levels      jsonb not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    deleted_at  timestamptz,
    primary key (tenant_id, id)
);
create unique index skills_name on skills (tenant_id, lower(name)) where deleted_at is null;

create table course_skills (
    tenant_id uuid not null references tenants (id),
    course_id uuid not null,
    skill_id  uuid not null,
    kind      text not null check (kind in ('teaches', 'requires')),
    level     integer not null check (level between 1 and 10),
    primary key (tenant_id, course_id, skill_id, kind),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, skill_id) references skills (tenant_id, id)
);

create table person_skills (
    tenant_id  uuid not null references tenants (id),
    user_id    uuid not null,
    skill_id   uuid not null,
    level      integer not null check (level between 1 and 10),
    source     text not null check (source in ('course', 'assessment', 'manager', 'import')),
    -- The course whose completion raised it (course, assessment and import).
    course_id  uuid,
    note       text,
    updated_by uuid,
    updated_at timestamptz not null,
    primary key (tenant_id, user_id, skill_id),
    foreign key (tenant_id, user_id) references users (tenant_id, id),
    foreign key (tenant_id, skill_id) references skills (tenant_id, id)
);

create table achievements (
    tenant_id  uuid not null references tenants (id),
    id         uuid not null,
    user_id    uuid not null,
    rule       text not null,
    -- What the rule was met for (a department's id; empty for rules met once).
    subject    text not null default '',
    detail     text not null,
    awarded_at timestamptz not null,
    primary key (tenant_id, id),
    unique (tenant_id, user_id, rule, subject),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

do $$
declare t text;
begin
    foreach t in array array['skills', 'course_skills', 'person_skills', 'achievements'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                using (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))
                with check (tenant_id = (select nullif(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    end loop;
end $$;
