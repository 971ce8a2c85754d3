//! An independent checker of ITC-2007 curriculum-based course timetabling solutions, written
//! from the competition's published rules (not from the solver): it reads the instance and a
//! solution's `course room day period` lines on its own and recounts every violation and cost.
//!
//! Hard: every lecture placed (no more, no fewer); two lectures never in one room at one
//! period; lectures of one course, of one teacher or of one curriculum never at one period;
//! no lecture at a period its course is unavailable. Soft, under the UD2 weights: each student
//! over a room's capacity (1); each day a course falls short of its minimum working days (5);
//! each lecture of a curriculum with no other lecture of that curriculum in the period before
//! or after it on the same day (2); each room a course uses beyond its first (1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a solution is worth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Each hard violation, said in words.
    pub violations: Vec<String>,
    pub capacity: u64,
    pub min_working_days: u64,
    pub compactness: u64,
    pub room_stability: u64,
}

impl Verdict {
    pub fn feasible(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn penalty(&self) -> u64 {
        self.capacity + self.min_working_days + self.compactness + self.room_stability
    }
}

struct Instance {
    days: usize,
    periods: usize,
    /// id → (teacher, lectures, min days, students)
    courses: HashMap<String, (String, usize, usize, usize)>,
    rooms: HashMap<String, usize>,
    curricula: Vec<Vec<String>>,
    unavailable: BTreeSet<(String, usize, usize)>,
}

fn instance(text: &str) -> Instance {
    let mut inst = Instance {
        days: 0,
        periods: 0,
        courses: HashMap::new(),
        rooms: HashMap::new(),
        curricula: Vec::new(),
        unavailable: BTreeSet::new(),
    };
    let mut section = "";
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "Days:" => inst.days = words[1].parse().unwrap(),
            "Periods_per_day:" => inst.periods = words[1].parse().unwrap(),
            "COURSES:" | "ROOMS:" | "CURRICULA:" | "UNAVAILABILITY_CONSTRAINTS:" => {
                section = words[0];
            }
            "END." => break,
            _ if line.contains(": ") || line.ends_with(':') => {}
            _ => match section {
                "COURSES:" => {
                    let n = |i: usize| words[i].parse::<usize>().unwrap();
                    inst.courses
                        .insert(words[0].into(), (words[1].into(), n(2), n(3), n(4)));
                }
                "ROOMS:" => {
                    inst.rooms
                        .insert(words[0].into(), words[1].parse().unwrap());
                }
                "CURRICULA:" => inst
                    .curricula
                    .push(words[2..].iter().map(|s| s.to_string()).collect()),
                "UNAVAILABILITY_CONSTRAINTS:" => {
                    inst.unavailable.insert((
                        words[0].into(),
                        words[1].parse().unwrap(),
                        words[2].parse().unwrap(),
                    ));
                }
                _ => {}
            },
        }
    }
    inst
}

/// A lecture of a solution: (course, room, day, period).
type Lecture = (String, String, usize, usize);

/// Checks `solution` against the instance `ctt`.
pub fn check(ctt: &str, solution: &str) -> Verdict {
    let inst = instance(ctt);
    let mut v = Verdict::default();
    let mut lectures: Vec<Lecture> = Vec::new();
    for line in solution.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Ok(day), Ok(period)) = (w[2].parse::<usize>(), w[3].parse::<usize>()) else {
            v.violations.push(format!("unreadable line `{line}`"));
            continue;
        };
        if !inst.courses.contains_key(w[0]) || !inst.rooms.contains_key(w[1]) {
            v.violations
                .push(format!("unknown course or room in `{line}`"));
            continue;
        }
        if day >= inst.days || period >= inst.periods {
            v.violations.push(format!("outside the week: `{line}`"));
            continue;
        }
        lectures.push((w[0].into(), w[1].into(), day, period));
    }
    // Every lecture, once.
    let mut count: HashMap<&str, usize> = HashMap::new();
    for l in &lectures {
        *count.entry(l.0.as_str()).or_default() += 1;
    }
    for (id, (_, n, _, _)) in &inst.courses {
        let got = count.get(id.as_str()).copied().unwrap_or(0);
        if got != *n {
            v.violations
                .push(format!("course {id}: {got} lectures placed of {n}"));
        }
    }
    // Rooms, then conflicts, period by period.
    let mut by_slot: BTreeMap<(usize, usize), Vec<&Lecture>> = BTreeMap::new();
    for l in &lectures {
        by_slot.entry((l.2, l.3)).or_default().push(l);
    }
    for ((day, period), here) in &by_slot {
        for (i, a) in here.iter().enumerate() {
            for b in &here[i + 1..] {
                if a.1 == b.1 {
                    v.violations
                        .push(format!("room {} twice at day {day} period {period}", a.1));
                }
                let same_teacher = inst.courses[&a.0].0 == inst.courses[&b.0].0;
                let same_curriculum = inst
                    .curricula
                    .iter()
                    .any(|q| q.contains(&a.0) && q.contains(&b.0));
                if a.0 == b.0 || same_teacher || same_curriculum {
                    v.violations
                        .push(format!("{} and {} at day {day} period {period}", a.0, b.0));
                }
            }
            if inst.unavailable.contains(&(a.0.clone(), *day, *period)) {
                v.violations
                    .push(format!("{} at day {day} period {period}, unavailable", a.0));
            }
        }
    }
    // Soft costs.
    for l in &lectures {
        let students = inst.courses[&l.0].3;
        v.capacity += students.saturating_sub(inst.rooms[&l.1]) as u64;
    }
    for (id, (_, _, min_days, _)) in &inst.courses {
        let days: BTreeSet<usize> = lectures
            .iter()
            .filter(|l| &l.0 == id)
            .map(|l| l.2)
            .collect();
        v.min_working_days += 5 * min_days.saturating_sub(days.len()) as u64;
        let rooms: BTreeSet<&str> = lectures
            .iter()
            .filter(|l| &l.0 == id)
            .map(|l| l.1.as_str())
            .collect();
        v.room_stability += rooms.len().saturating_sub(1) as u64;
    }
    for q in &inst.curricula {
        let slots: Vec<(usize, usize)> = lectures
            .iter()
            .filter(|l| q.contains(&l.0))
            .map(|l| (l.2, l.3))
            .collect();
        for &(day, period) in &slots {
            let next_to = slots
                .iter()
                .any(|&(d, p)| d == day && (p + 1 == period || period + 1 == p));
            if !next_to {
                v.compactness += 2;
            }
        }
    }
    v
}
