//! The cost of a timetable: its hard violations and its soft penalty, component by component.

use crate::problem::{Problem, Timetable};

/// The weight of each soft cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// Per student over a room's capacity, per lecture.
    pub capacity: u64,
    /// Per day a course falls short of its minimum working days.
    pub min_days: u64,
    /// Per lecture of a curriculum with no lecture of the curriculum next to it the same day.
    pub compactness: u64,
    /// Per room a course uses beyond its first.
    pub stability: u64,
}

impl Weights {
    /// The ITC-2007 weights (UD2): 1, 5, 2, 1.
    pub const UD2: Weights = Weights {
        capacity: 1,
        min_days: 5,
        compactness: 2,
        stability: 1,
    };
}

impl Default for Weights {
    fn default() -> Self {
        Weights::UD2
    }
}

/// The hard violations and soft costs of a timetable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Lectures left out (or more placed than the course has).
    pub unplaced: u64,
    /// Pairs of lectures in one room at one period.
    pub room_clashes: u64,
    /// Pairs of lectures at one period of one course, one teacher or one curriculum.
    pub conflicts: u64,
    /// Lectures at a period their course is unavailable.
    pub unavailable: u64,
    /// The weighted soft costs.
    pub capacity: u64,
    pub min_days: u64,
    pub compactness: u64,
    pub stability: u64,
}

impl Cost {
    /// Whether every hard constraint holds.
    pub fn feasible(&self) -> bool {
        self.unplaced + self.room_clashes + self.conflicts + self.unavailable == 0
    }

    /// The soft penalty.
    pub fn penalty(&self) -> u64 {
        self.capacity + self.min_days + self.compactness + self.stability
    }
}

/// Evaluates `timetable` from scratch.
pub fn evaluate(problem: &Problem, timetable: &Timetable, w: Weights) -> Cost {
    let periods = problem.periods();
    let ppd = problem.periods_per_day;
    let mut cost = Cost::default();
    let mut placed = vec![0usize; problem.courses.len()];
    let mut room_use = vec![0u64; periods * problem.rooms.len()];
    let mut course_at = vec![0u64; periods * problem.courses.len()];
    let mut teacher_at = vec![0u64; periods * problem.teachers.len()];
    let mut curriculum_at = vec![0u64; periods * problem.curricula.len()];
    let curricula_of = problem.curricula_of();
    let mut days = vec![vec![false; problem.days]; problem.courses.len()];
    let mut rooms = vec![vec![false; problem.rooms.len()]; problem.courses.len()];
    for p in &timetable.placements {
        let course = &problem.courses[p.course];
        placed[p.course] += 1;
        room_use[p.period * problem.rooms.len() + p.room] += 1;
        course_at[p.period * problem.courses.len() + p.course] += 1;
        teacher_at[p.period * problem.teachers.len() + course.teacher] += 1;
        for &q in &curricula_of[p.course] {
            curriculum_at[p.period * problem.curricula.len() + q] += 1;
        }
        if problem.unavailable[p.course][p.period] {
            cost.unavailable += 1;
        }
        let cap = problem.rooms[p.room].capacity;
        cost.capacity += w.capacity * course.students.saturating_sub(cap) as u64;
        days[p.course][p.period / ppd] = true;
        rooms[p.course][p.room] = true;
    }
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    cost.room_clashes = room_use.iter().map(|&n| pairs(n)).sum();
    // Lectures of a course at one period clash with each other, then with the rest of their
    // teacher's and curricula's.
    cost.conflicts = course_at.iter().map(|&n| pairs(n)).sum::<u64>()
        + teacher_at.iter().map(|&n| pairs(n)).sum::<u64>()
        + curriculum_at.iter().map(|&n| pairs(n)).sum::<u64>();
    for (c, course) in problem.courses.iter().enumerate() {
        cost.unplaced += placed[c].abs_diff(course.lectures) as u64;
        let d = days[c].iter().filter(|&&x| x).count();
        cost.min_days += w.min_days * course.min_days.saturating_sub(d) as u64;
        let r = rooms[c].iter().filter(|&&x| x).count();
        cost.stability += w.stability * r.saturating_sub(1) as u64;
    }
    let q_count = problem.curricula.len();
    for q in 0..q_count {
        for p in 0..periods {
            let here = curriculum_at[p * q_count + q];
            if here == 0 {
                continue;
            }
            let slot = p % ppd;
            let before = slot > 0 && curriculum_at[(p - 1) * q_count + q] > 0;
            let after = slot + 1 < ppd && curriculum_at[(p + 1) * q_count + q] > 0;
            if !before && !after {
                cost.compactness += w.compactness * here;
            }
        }
    }
    cost
}
