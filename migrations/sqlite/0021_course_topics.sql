-- A course's syllabus: topics, each with its subtopics, ordered and with their hours. A topic
-- has no parent; a subtopic's parent is a topic of the same course. The topics of a course stay
-- within its duration, and the subtopics of a topic within the topic's hours.
create table course_topics (
    tenant_id      blob not null references tenants (id),
    id             blob not null,
    course_id      blob not null,
    parent_id      blob,
    position       integer not null,
    title          text not null,
    description    text,
    duration_hours real not null default 0,
    created_at     text not null,
    updated_at     text not null,
    deleted_at     text,
    primary key (tenant_id, id),
    foreign key (tenant_id, course_id) references courses (tenant_id, id),
    foreign key (tenant_id, parent_id) references course_topics (tenant_id, id),
    check (parent_id is null or parent_id <> id)
);
create unique index course_topics_position on course_topics (tenant_id, course_id, position)
    where deleted_at is null and parent_id is null;
create unique index course_subtopics_position on course_topics (tenant_id, parent_id, position)
    where deleted_at is null and parent_id is not null;
