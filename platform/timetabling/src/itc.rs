//! The ITC-2007 curriculum-based course timetabling formats: instances (`.ctt`) and solutions
//! (one `course room day period` line per lecture).

use std::collections::HashMap;

use crate::problem::{Course, Curriculum, Placement, Problem, Room, Timetable};

/// What is wrong with a `.ctt` instance or a solution, and on which line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> FormatError {
    FormatError {
        line,
        message: message.into(),
    }
}

/// Reads a `.ctt` instance.
pub fn parse(text: &str) -> Result<Problem, FormatError> {
    let mut header: HashMap<String, (usize, String)> = HashMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let mut section: Option<(usize, String)> = None;
    for (n, line) in lines.by_ref() {
        if line.ends_with(':') && !line.contains(' ') {
            section = Some((n, line.trim_end_matches(':').to_ascii_uppercase()));
            break;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| err(n, "expected `Key: value`"))?;
        header.insert(
            key.trim().to_ascii_lowercase(),
            (n, value.trim().to_string()),
        );
    }
    let number = |key: &str| -> Result<usize, FormatError> {
        let (n, v) = header
            .get(key)
            .ok_or_else(|| err(0, format!("the header has no `{key}`")))?;
        v.parse()
            .map_err(|_| err(*n, format!("`{key}` is not a number")))
    };
    let name = header
        .get("name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let (n_courses, n_rooms, days, ppd, n_curricula, n_constraints) = (
        number("courses")?,
        number("rooms")?,
        number("days")?,
        number("periods_per_day")?,
        number("curricula")?,
        number("constraints")?,
    );
    let mut problem = Problem {
        name,
        days,
        periods_per_day: ppd,
        courses: Vec::with_capacity(n_courses),
        rooms: Vec::with_capacity(n_rooms),
        curricula: Vec::with_capacity(n_curricula),
        teachers: Vec::new(),
        unavailable: Vec::new(),
    };
    let mut teachers: HashMap<String, usize> = HashMap::new();
    let mut course_index: HashMap<String, usize> = HashMap::new();
    let mut room_seen: HashMap<String, usize> = HashMap::new();
    let mut constraints = 0;
    let mut ended = false;
    let field = |n: usize, parts: &[&str], i: usize, what: &str| -> Result<usize, FormatError> {
        parts
            .get(i)
            .ok_or_else(|| err(n, format!("missing {what}")))?
            .parse()
            .map_err(|_| err(n, format!("{what} is not a number")))
    };
    for (n, line) in lines {
        if line.ends_with(':') && !line.contains(' ') || line == "END." {
            if line == "END." {
                ended = true;
                break;
            }
            section = Some((n, line.trim_end_matches(':').to_ascii_uppercase()));
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let Some((_, name)) = &section else {
            return Err(err(n, "a line outside any section"));
        };
        match name.as_str() {
            "COURSES" => {
                let id = parts[0].to_string();
                let teacher = parts.get(1).ok_or_else(|| err(n, "missing teacher"))?;
                let next = teachers.len();
                let t = *teachers.entry(teacher.to_string()).or_insert(next);
                if t == next {
                    problem.teachers.push(teacher.to_string());
                }
                if course_index
                    .insert(id.clone(), problem.courses.len())
                    .is_some()
                {
                    return Err(err(n, format!("course {id} twice")));
                }
                problem.courses.push(Course {
                    id,
                    teacher: t,
                    lectures: field(n, &parts, 2, "the number of lectures")?,
                    min_days: field(n, &parts, 3, "the minimum working days")?,
                    students: field(n, &parts, 4, "the number of students")?,
                });
            }
            "ROOMS" => {
                let id = parts[0].to_string();
                if room_seen.insert(id.clone(), problem.rooms.len()).is_some() {
                    return Err(err(n, format!("room {id} twice")));
                }
                problem.rooms.push(Room {
                    id,
                    capacity: field(n, &parts, 1, "the capacity")?,
                });
            }
            "CURRICULA" => {
                let count = field(n, &parts, 1, "the number of courses")?;
                if parts.len() != count + 2 {
                    return Err(err(
                        n,
                        format!(
                            "curriculum {} lists {} courses, not {count}",
                            parts[0],
                            parts.len() - 2
                        ),
                    ));
                }
                let courses = parts[2..]
                    .iter()
                    .map(|c| {
                        course_index
                            .get(*c)
                            .copied()
                            .ok_or_else(|| err(n, format!("no course {c}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                problem.curricula.push(Curriculum {
                    id: parts[0].to_string(),
                    courses,
                });
            }
            "UNAVAILABILITY_CONSTRAINTS" => {
                if problem.unavailable.is_empty() {
                    problem.unavailable = vec![vec![false; days * ppd]; problem.courses.len()];
                }
                let c = *course_index
                    .get(parts[0])
                    .ok_or_else(|| err(n, format!("no course {}", parts[0])))?;
                let (d, p) = (
                    field(n, &parts, 1, "the day")?,
                    field(n, &parts, 2, "the period")?,
                );
                if d >= days || p >= ppd {
                    return Err(err(n, "a day or period outside the week"));
                }
                problem.unavailable[c][d * ppd + p] = true;
                constraints += 1;
            }
            other => return Err(err(n, format!("unknown section {other}"))),
        }
    }
    if !ended {
        return Err(err(0, "no `END.`"));
    }
    if problem.unavailable.is_empty() {
        problem.unavailable = vec![vec![false; days * ppd]; problem.courses.len()];
    }
    for (what, want, got) in [
        ("courses", n_courses, problem.courses.len()),
        ("rooms", n_rooms, problem.rooms.len()),
        ("curricula", n_curricula, problem.curricula.len()),
        ("constraints", n_constraints, constraints),
    ] {
        if want != got {
            return Err(err(
                0,
                format!("the header says {want} {what}, the file has {got}"),
            ));
        }
    }
    problem.check().map_err(|m| err(0, m))?;
    Ok(problem)
}

/// A timetable in the competition's solution format: `course room day period`, one line per
/// lecture, by course.
pub fn write_solution(problem: &Problem, timetable: &Timetable) -> String {
    let mut placements = timetable.placements.clone();
    placements.sort_by_key(|p| (p.course, p.period, p.room));
    let mut out = String::new();
    for p in placements {
        out.push_str(&format!(
            "{} {} {} {}\n",
            problem.courses[p.course].id,
            problem.rooms[p.room].id,
            p.period / problem.periods_per_day,
            p.period % problem.periods_per_day
        ));
    }
    out
}

/// Reads a solution of `problem`.
pub fn parse_solution(problem: &Problem, text: &str) -> Result<Timetable, FormatError> {
    let courses: HashMap<&str, usize> = problem
        .courses
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let rooms: HashMap<&str, usize> = problem
        .rooms
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut placements = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() != 4 {
            return Err(err(n, "expected `course room day period`"));
        }
        let course = *courses
            .get(parts[0])
            .ok_or_else(|| err(n, format!("no course {}", parts[0])))?;
        let room = *rooms
            .get(parts[1])
            .ok_or_else(|| err(n, format!("no room {}", parts[1])))?;
        let day: usize = parts[2]
            .parse()
            .map_err(|_| err(n, "the day is not a number"))?;
        let slot: usize = parts[3]
            .parse()
            .map_err(|_| err(n, "the period is not a number"))?;
        if day >= problem.days || slot >= problem.periods_per_day {
            return Err(err(n, "a day or period outside the week"));
        }
        placements.push(Placement {
            course,
            room,
            period: day * problem.periods_per_day + slot,
        });
    }
    Ok(Timetable { placements })
}
