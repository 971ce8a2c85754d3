//! The curriculum-based course timetabling model.

/// A course: `lectures` lectures to place, taught by `teacher`, to `students`, spread over at
/// least `min_days` days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: String,
    /// Index into [`Problem::teachers`].
    pub teacher: usize,
    pub lectures: usize,
    pub min_days: usize,
    pub students: usize,
}

/// A room and how many it seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub capacity: usize,
}

/// A curriculum (a class group): courses no two lectures of which may share a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Curriculum {
    pub id: String,
    /// Indexes into [`Problem::courses`].
    pub courses: Vec<usize>,
}

/// A timetabling problem: days of `periods_per_day` periods each; period `p` is day
/// `p / periods_per_day`, slot `p % periods_per_day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub name: String,
    pub days: usize,
    pub periods_per_day: usize,
    pub courses: Vec<Course>,
    pub rooms: Vec<Room>,
    pub curricula: Vec<Curriculum>,
    pub teachers: Vec<String>,
    /// `unavailable[course][period]`: the course may not be taught then.
    pub unavailable: Vec<Vec<bool>>,
}

impl Problem {
    /// Periods in the week.
    pub fn periods(&self) -> usize {
        self.days * self.periods_per_day
    }

    /// Lectures to place, in all.
    pub fn lectures(&self) -> usize {
        self.courses.iter().map(|c| c.lectures).sum()
    }

    /// The course of each lecture, lecture by lecture (a course's lectures are consecutive).
    pub fn lecture_courses(&self) -> Vec<usize> {
        self.courses
            .iter()
            .enumerate()
            .flat_map(|(c, course)| std::iter::repeat_n(c, course.lectures))
            .collect()
    }

    /// The curricula each course belongs to.
    pub fn curricula_of(&self) -> Vec<Vec<usize>> {
        let mut of = vec![Vec::new(); self.courses.len()];
        for (q, curriculum) in self.curricula.iter().enumerate() {
            for &c in &curriculum.courses {
                if !of[c].contains(&q) {
                    of[c].push(q);
                }
            }
        }
        of
    }

    /// Checks the model's own consistency: indexes in range, the unavailability table's shape,
    /// a week and rooms to place lectures in.
    pub fn check(&self) -> Result<(), String> {
        if self.days == 0 || self.periods_per_day == 0 {
            return Err("a week needs at least one day of one period".into());
        }
        if self.rooms.is_empty() && self.lectures() > 0 {
            return Err("lectures need at least one room".into());
        }
        for c in &self.courses {
            if c.teacher >= self.teachers.len() {
                return Err(format!("course {}: no such teacher", c.id));
            }
            if c.min_days > self.days {
                return Err(format!(
                    "course {}: {} working days asked of a {}-day week",
                    c.id, c.min_days, self.days
                ));
            }
        }
        for q in &self.curricula {
            if q.courses.iter().any(|&c| c >= self.courses.len()) {
                return Err(format!("curriculum {}: no such course", q.id));
            }
        }
        if self.unavailable.len() != self.courses.len()
            || self.unavailable.iter().any(|u| u.len() != self.periods())
        {
            return Err("the unavailability table does not match the courses and periods".into());
        }
        Ok(())
    }
}

/// Where one lecture is: its course, room and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub course: usize,
    pub room: usize,
    pub period: usize,
}

/// A timetable: the placements of the lectures placed (a complete one places every lecture).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timetable {
    pub placements: Vec<Placement>,
}
