//! The solver: a greedy construction (most constrained lectures first, each where it costs
//! least), an ejection repair for the lectures construction could not place, then simulated
//! annealing over moves and swaps of lectures that keep every hard constraint, with a
//! geometric cooling over the time budget. Costs are kept incrementally: a move touches only
//! the counters of the course, teacher, curricula, days and rooms it changes.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{
    cost::Weights,
    problem::{Placement, Problem, Timetable},
};

/// How long to search, from which seed, under which weights.
#[derive(Debug, Clone, Copy)]
pub struct SolveOptions {
    pub budget: Duration,
    pub seed: u64,
    pub weights: Weights,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            budget: Duration::from_secs(10),
            seed: 1,
            weights: Weights::UD2,
        }
    }
}

/// How a search is going, as reported about twice a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub elapsed: Duration,
    pub budget: Duration,
    /// Lectures placed of those to place (in the best timetable so far).
    pub placed: usize,
    pub lectures: usize,
    /// The best soft penalty so far (of a timetable placing `placed` lectures).
    pub penalty: u64,
}

const NONE: u32 = u32::MAX;

/// The search state: where each lecture is, and the counters the costs are kept from.
struct State<'a> {
    p: &'a Problem,
    w: Weights,
    rooms: usize,
    periods: usize,
    lecture_course: Vec<usize>,
    curricula_of: Vec<Vec<usize>>,
    /// Per lecture: its period and room, or `NONE`.
    period_of: Vec<u32>,
    room_of: Vec<u32>,
    /// `period * rooms + room` → lecture, or `NONE`.
    occupant: Vec<u32>,
    course_at: Vec<u16>,
    teacher_at: Vec<u16>,
    curriculum_at: Vec<u16>,
    course_day: Vec<u16>,
    course_days: Vec<u16>,
    course_room: Vec<u16>,
    course_rooms: Vec<u16>,
    /// The soft cost of an empty timetable: every course short of all its working days.
    base: i64,
    /// The change from `base` the lectures placed make.
    soft: i64,
    placed: usize,
}

impl<'a> State<'a> {
    fn new(p: &'a Problem, w: Weights) -> Self {
        let (periods, rooms) = (p.periods(), p.rooms.len());
        let lectures = p.lectures();
        State {
            p,
            w,
            rooms,
            periods,
            lecture_course: p.lecture_courses(),
            curricula_of: p.curricula_of(),
            period_of: vec![NONE; lectures],
            room_of: vec![NONE; lectures],
            occupant: vec![NONE; periods * rooms],
            course_at: vec![0; p.courses.len() * periods],
            teacher_at: vec![0; p.teachers.len() * periods],
            curriculum_at: vec![0; p.curricula.len() * periods],
            course_day: vec![0; p.courses.len() * p.days],
            course_days: vec![0; p.courses.len()],
            course_room: vec![0; p.courses.len() * rooms],
            course_rooms: vec![0; p.courses.len()],
            base: p
                .courses
                .iter()
                .map(|c| (w.min_days * c.min_days as u64) as i64)
                .sum(),
            soft: 0,
            placed: 0,
        }
    }

    /// Whether a lecture of course `c` may be at `period` as far as its course, teacher,
    /// curricula and availability go (the room aside).
    fn allowed(&self, c: usize, period: usize) -> bool {
        let n = self.periods;
        !self.p.unavailable[c][period]
            && self.course_at[c * n + period] == 0
            && self.teacher_at[self.p.courses[c].teacher * n + period] == 0
            && self.curricula_of[c]
                .iter()
                .all(|&q| self.curriculum_at[q * n + period] == 0)
    }

    /// Whether curriculum `q` has a lecture at `period` (false outside the week).
    fn busy(&self, q: usize, period: isize) -> bool {
        period >= 0
            && (period as usize) < self.periods
            && self.curriculum_at[q * self.periods + period as usize] > 0
    }

    /// Whether the lecture of `q` at `period` is isolated (none of `q` next to it that day).
    fn isolated(&self, q: usize, period: usize) -> bool {
        let ppd = self.p.periods_per_day;
        let slot = period % ppd;
        let at = period as isize;
        self.busy(q, at)
            && !(slot > 0 && self.busy(q, at - 1))
            && !(slot + 1 < ppd && self.busy(q, at + 1))
    }

    /// The isolated lectures of `q` at `period` and its neighbours the same day.
    fn isolated_around(&self, q: usize, period: usize) -> i64 {
        let ppd = self.p.periods_per_day;
        let slot = period % ppd;
        let mut n = self.isolated(q, period) as i64;
        if slot > 0 {
            n += self.isolated(q, period - 1) as i64;
        }
        if slot + 1 < ppd {
            n += self.isolated(q, period + 1) as i64;
        }
        n
    }

    /// Places lecture `l` at (`period`, `room`), both free for it; the change of the soft cost.
    fn insert(&mut self, l: usize, period: usize, room: usize) -> i64 {
        let c = self.lecture_course[l];
        let course = &self.p.courses[c];
        let (n, w) = (self.periods, self.w);
        let mut delta =
            w.capacity as i64 * course.students.saturating_sub(self.p.rooms[room].capacity) as i64;
        let day = period / self.p.periods_per_day;
        let cd = c * self.p.days + day;
        if self.course_day[cd] == 0 {
            let have = self.course_days[c] as usize;
            if have < course.min_days {
                delta -= w.min_days as i64;
            }
            self.course_days[c] += 1;
        }
        self.course_day[cd] += 1;
        let cr = c * self.rooms + room;
        if self.course_room[cr] == 0 {
            if self.course_rooms[c] > 0 {
                delta += w.stability as i64;
            }
            self.course_rooms[c] += 1;
        }
        self.course_room[cr] += 1;
        for i in 0..self.curricula_of[c].len() {
            let q = self.curricula_of[c][i];
            let before = self.isolated_around(q, period);
            self.curriculum_at[q * n + period] += 1;
            delta += w.compactness as i64 * (self.isolated_around(q, period) - before);
        }
        self.course_at[c * n + period] += 1;
        self.teacher_at[course.teacher * n + period] += 1;
        self.occupant[period * self.rooms + room] = l as u32;
        self.period_of[l] = period as u32;
        self.room_of[l] = room as u32;
        self.soft += delta;
        self.placed += 1;
        delta
    }

    /// Takes lecture `l` out; the change of the soft cost.
    fn remove(&mut self, l: usize) -> i64 {
        let (period, room) = (self.period_of[l] as usize, self.room_of[l] as usize);
        let c = self.lecture_course[l];
        let course = &self.p.courses[c];
        let (n, w) = (self.periods, self.w);
        let mut delta = -(w.capacity as i64)
            * course.students.saturating_sub(self.p.rooms[room].capacity) as i64;
        let day = period / self.p.periods_per_day;
        let cd = c * self.p.days + day;
        self.course_day[cd] -= 1;
        if self.course_day[cd] == 0 {
            self.course_days[c] -= 1;
            if (self.course_days[c] as usize) < course.min_days {
                delta += w.min_days as i64;
            }
        }
        let cr = c * self.rooms + room;
        self.course_room[cr] -= 1;
        if self.course_room[cr] == 0 {
            self.course_rooms[c] -= 1;
            if self.course_rooms[c] > 0 {
                delta -= w.stability as i64;
            }
        }
        for i in 0..self.curricula_of[c].len() {
            let q = self.curricula_of[c][i];
            let before = self.isolated_around(q, period);
            self.curriculum_at[q * n + period] -= 1;
            delta += w.compactness as i64 * (self.isolated_around(q, period) - before);
        }
        self.course_at[c * n + period] -= 1;
        self.teacher_at[course.teacher * n + period] -= 1;
        self.occupant[period * self.rooms + room] = NONE;
        self.period_of[l] = NONE;
        self.room_of[l] = NONE;
        self.soft += delta;
        self.placed -= 1;
        delta
    }

    fn penalty(&self) -> u64 {
        (self.base + self.soft).max(0) as u64
    }

    /// The cheapest free (period, room) for lecture `l`, if any.
    fn cheapest(&mut self, l: usize, rng: &mut StdRng) -> Option<(usize, usize)> {
        let c = self.lecture_course[l];
        let mut best: Option<(i64, u32, usize, usize)> = None;
        for period in 0..self.periods {
            if !self.allowed(c, period) {
                continue;
            }
            for room in 0..self.rooms {
                if self.occupant[period * self.rooms + room] != NONE {
                    continue;
                }
                let delta = self.insert(l, period, room);
                self.remove(l);
                let tie = rng.gen::<u32>();
                if best.is_none_or(|(d, t, _, _)| (delta, tie) < (d, t)) {
                    best = Some((delta, tie, period, room));
                }
            }
        }
        best.map(|(_, _, p, r)| (p, r))
    }

    /// The lectures that keep a lecture of course `c` from `period`: those of its course,
    /// teacher and curricula there.
    fn blockers(&self, c: usize, period: usize, out: &mut Vec<usize>) {
        out.clear();
        let teacher = self.p.courses[c].teacher;
        for room in 0..self.rooms {
            let o = self.occupant[period * self.rooms + room];
            if o == NONE {
                continue;
            }
            let oc = self.lecture_course[o as usize];
            if oc == c
                || self.p.courses[oc].teacher == teacher
                || self.curricula_of[oc]
                    .iter()
                    .any(|q| self.curricula_of[c].contains(q))
            {
                out.push(o as usize);
            }
        }
    }

    fn timetable(&self) -> Timetable {
        Timetable {
            placements: (0..self.period_of.len())
                .filter(|&l| self.period_of[l] != NONE)
                .map(|l| Placement {
                    course: self.lecture_course[l],
                    room: self.room_of[l] as usize,
                    period: self.period_of[l] as usize,
                })
                .collect(),
        }
    }
}

/// Searches for a timetable of `problem` within the budget; `report` hears how it goes about
/// twice a second and stops the search by answering `false`. The best timetable found: it
/// places every lecture unless none was found that does.
pub fn solve(
    problem: &Problem,
    options: SolveOptions,
    mut report: impl FnMut(&Progress) -> bool,
) -> Timetable {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut s = State::new(problem, options.weights);
    let lectures = problem.lectures();
    if lectures == 0 || problem.rooms.is_empty() {
        return Timetable::default();
    }
    let mut next_report = Duration::from_millis(500);
    let mut tell = |s: &State, best_placed: usize, best: u64, force: bool| -> bool {
        let elapsed = started.elapsed();
        if !force && elapsed < next_report {
            return true;
        }
        next_report = elapsed + Duration::from_millis(500);
        report(&Progress {
            elapsed,
            budget: options.budget,
            placed: best_placed.max(s.placed),
            lectures,
            penalty: best,
        })
    };

    // 1. Construction: the most constrained courses' lectures first.
    let periods = problem.periods();
    let mut order: Vec<usize> = (0..lectures).collect();
    let degree: Vec<usize> = (0..problem.courses.len())
        .map(|c| {
            let free = (0..periods).filter(|&p| !problem.unavailable[c][p]).count();
            let neighbours: usize = problem
                .courses
                .iter()
                .enumerate()
                .filter(|&(o, oc)| {
                    o != c
                        && (oc.teacher == problem.courses[c].teacher
                            || s.curricula_of[o]
                                .iter()
                                .any(|q| s.curricula_of[c].contains(q)))
                })
                .map(|(_, oc)| oc.lectures)
                .sum();
            // Fewer free periods, then more lectures competing: harder.
            (periods - free) * 10_000 + neighbours
        })
        .collect();
    order.sort_by_key(|&l| std::cmp::Reverse(degree[s.lecture_course[l]]));
    let mut unplaced = Vec::new();
    for &l in &order {
        match s.cheapest(l, &mut rng) {
            Some((p, r)) => {
                s.insert(l, p, r);
            }
            None => unplaced.push(l),
        }
    }

    // 2. Repair: place an unplaced lecture where it ejects fewest, the ejected wait their turn.
    let repair_until = options.budget.mul_f64(0.3);
    let mut tabu = vec![0u64; lectures];
    let mut step: u64 = 0;
    let mut blockers = Vec::new();
    let mut best_unplaced = unplaced.len();
    let mut best = s.timetable();
    while !unplaced.is_empty() && started.elapsed() < repair_until {
        step += 1;
        let i = rng.gen_range(0..unplaced.len());
        let l = unplaced.swap_remove(i);
        let c = s.lecture_course[l];
        let mut choice: Option<(usize, u32, usize)> = None;
        for period in 0..periods {
            if problem.unavailable[c][period] {
                continue;
            }
            s.blockers(c, period, &mut blockers);
            if blockers.iter().any(|&b| tabu[b] > step) {
                continue;
            }
            let room_free = (0..s.rooms).any(|r| s.occupant[period * s.rooms + r] == NONE);
            let cost = blockers.len() + usize::from(!room_free && blockers.is_empty());
            let tie = rng.gen::<u32>();
            if choice.is_none_or(|(k, t, _)| (cost, tie) < (k, t)) {
                choice = Some((cost, tie, period));
            }
        }
        let Some((_, _, period)) = choice else {
            unplaced.push(l);
            continue;
        };
        s.blockers(c, period, &mut blockers);
        for &b in &blockers {
            s.remove(b);
            unplaced.push(b);
        }
        let free = (0..s.rooms).find(|&r| s.occupant[period * s.rooms + r] == NONE);
        let room = match free {
            Some(r) => r,
            None => {
                let r = rng.gen_range(0..s.rooms);
                let o = s.occupant[period * s.rooms + r] as usize;
                s.remove(o);
                unplaced.push(o);
                r
            }
        };
        s.insert(l, period, room);
        tabu[l] = step + 10 + rng.gen_range(0..10);
        if unplaced.len() < best_unplaced {
            best_unplaced = unplaced.len();
            best = s.timetable();
        }
        if !tell(&s, lectures - best_unplaced, s.penalty(), false) {
            return best;
        }
    }
    if !unplaced.is_empty() {
        // No complete timetable in the time given to repair: the fullest one found.
        tell(&s, lectures - best_unplaced, s.penalty(), true);
        return best;
    }

    // 3. Annealing over moves and swaps that keep the timetable feasible.
    let mut best_penalty = s.penalty();
    best = s.timetable();
    let (t0, t1) = (2.0f64, 0.05f64);
    let search_start = started.elapsed();
    let span = options
        .budget
        .saturating_sub(search_start)
        .as_secs_f64()
        .max(1e-3);
    let mut temperature = t0;
    let mut iter: u64 = 0;
    loop {
        iter += 1;
        if iter.is_multiple_of(512) {
            let elapsed = started.elapsed();
            if elapsed >= options.budget {
                break;
            }
            let f = ((elapsed - search_start).as_secs_f64() / span).min(1.0);
            temperature = t0 * (t1 / t0).powf(f);
            if !tell(&s, lectures, best_penalty, false) {
                break;
            }
        }
        let l = rng.gen_range(0..lectures);
        let (p1, r1) = (s.period_of[l] as usize, s.room_of[l] as usize);
        let c = s.lecture_course[l];
        // A room of the same period half of the time (a cheap move), else any slot.
        let p2 = if rng.gen_bool(0.2) {
            p1
        } else {
            rng.gen_range(0..periods)
        };
        let r2 = rng.gen_range(0..s.rooms);
        if (p1, r1) == (p2, r2) {
            continue;
        }
        let other = s.occupant[p2 * s.rooms + r2];
        let mut delta = s.remove(l);
        if other == NONE {
            if !s.allowed(c, p2) {
                s.insert(l, p1, r1);
                continue;
            }
            delta += s.insert(l, p2, r2);
            if accept(delta, temperature, &mut rng) {
                if (s.penalty()) < best_penalty {
                    best_penalty = s.penalty();
                    best = s.timetable();
                }
            } else {
                s.remove(l);
                s.insert(l, p1, r1);
            }
            continue;
        }
        let m = other as usize;
        let mc = s.lecture_course[m];
        if mc == c {
            s.insert(l, p1, r1);
            continue;
        }
        delta += s.remove(m);
        if !s.allowed(c, p2) {
            s.insert(m, p2, r2);
            s.insert(l, p1, r1);
            continue;
        }
        delta += s.insert(l, p2, r2);
        if !s.allowed(mc, p1) {
            s.remove(l);
            s.insert(m, p2, r2);
            s.insert(l, p1, r1);
            continue;
        }
        delta += s.insert(m, p1, r1);
        if accept(delta, temperature, &mut rng) {
            if s.penalty() < best_penalty {
                best_penalty = s.penalty();
                best = s.timetable();
            }
        } else {
            s.remove(m);
            s.remove(l);
            s.insert(m, p2, r2);
            s.insert(l, p1, r1);
        }
    }
    tell(&s, lectures, best_penalty, true);
    best
}

fn accept(delta: i64, temperature: f64, rng: &mut StdRng) -> bool {
    delta <= 0 || rng.gen::<f64>() < (-(delta as f64) / temperature).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cost::evaluate, itc};

    const TINY: &str = "Name: tiny
Courses: 3
Rooms: 2
Days: 2
Periods_per_day: 2
Curricula: 1
Constraints: 1

COURSES:
a t1 2 2 30
b t2 2 1 10
c t1 1 1 50

ROOMS:
big 40
small 10

CURRICULA:
q 2 a b

UNAVAILABILITY_CONSTRAINTS:
c 0 0

END.
";

    #[test]
    fn the_incremental_costs_agree_with_an_evaluation_from_scratch() {
        let p = itc::parse(TINY).unwrap();
        let mut s = State::new(&p, Weights::UD2);
        let mut rng = StdRng::seed_from_u64(7);
        let check = |s: &State| {
            let cost = evaluate(&p, &s.timetable(), Weights::UD2);
            assert!(
                cost.room_clashes + cost.conflicts + cost.unavailable == 0,
                "{cost:?}"
            );
            assert_eq!(s.penalty(), cost.penalty(), "{cost:?}");
        };
        for l in 0..p.lectures() {
            let (period, room) = s.cheapest(l, &mut rng).expect("a slot");
            s.insert(l, period, room);
            check(&s);
        }
        // Lectures taken out and put back wherever they fit keep the two in step.
        for _ in 0..500 {
            let l = rng.gen_range(0..p.lectures());
            s.remove(l);
            check(&s);
            let (period, room) = s.cheapest(l, &mut rng).expect("its own slot at least");
            s.insert(l, period, room);
            check(&s);
        }
    }

    #[test]
    fn a_solved_timetable_is_feasible_and_its_penalty_is_what_an_evaluation_says() {
        let p = itc::parse(TINY).unwrap();
        let options = SolveOptions {
            budget: Duration::from_millis(300),
            ..SolveOptions::default()
        };
        let t = solve(&p, options, |_| true);
        let cost = evaluate(&p, &t, Weights::UD2);
        assert!(cost.feasible(), "{cost:?}");
        let text = itc::write_solution(&p, &t);
        assert_eq!(itc::parse_solution(&p, &text).unwrap().placements.len(), 5);
    }
}
