//! The timetabling solver on ITC-2007 instances, every solution it writes checked by the
//! independent validator (`trainflow_tests::itc_validator`): feasible, and its penalty the one
//! the solver reports. The long runs are the benchmark's (`tests/bench/timetable.rs`).

use std::time::Duration;

use trainflow_tests::itc_validator;
use trainflow_timetabling::{cost::evaluate, itc, solve, SolveOptions, Weights};

fn instance(name: &str) -> String {
    let path = format!("{}/data/itc2007/{name}.ctt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Solves `ctt` for `seconds` and checks what the solver writes with the validator.
fn solved(ctt: &str, seconds: f64, seed: u64) -> (itc_validator::Verdict, u64) {
    let problem = itc::parse(ctt).expect("a valid instance");
    let options = SolveOptions {
        budget: Duration::from_secs_f64(seconds),
        seed,
        weights: Weights::UD2,
    };
    let mut reports = 0;
    let timetable = solve(&problem, options, |_| {
        reports += 1;
        true
    });
    assert!(reports > 0, "the search reports its progress");
    let written = itc::write_solution(&problem, &timetable);
    let own = evaluate(&problem, &timetable, Weights::UD2);
    (itc_validator::check(ctt, &written), own.penalty())
}

#[test]
fn comp01_and_comp04_are_solved_feasibly_and_the_validator_agrees_with_the_penalty() {
    for (name, bound) in [("comp01", 40), ("comp04", 200)] {
        let (verdict, penalty) = solved(&instance(name), 4.0, 1);
        assert!(verdict.feasible(), "{name}: {:?}", verdict.violations);
        assert_eq!(verdict.penalty(), penalty, "{name}: {verdict:?}");
        assert!(penalty <= bound, "{name}: {penalty} after 4 s");
    }
}

#[test]
fn an_instance_that_is_not_one_of_the_seven_is_solved_too() {
    // Two days of three periods, a shared teacher, a curriculum, an unavailable period and a
    // room too small for one course.
    let ctt = "Name: small
Courses: 4
Rooms: 2
Days: 2
Periods_per_day: 3
Curricula: 2
Constraints: 2

COURSES:
math t1 3 2 40
phys t1 2 2 30
chem t2 1 1 35
bio t3 1 1 12

ROOMS:
R1 40
R2 20

CURRICULA:
y1 3 math phys chem
y2 2 chem bio

UNAVAILABILITY_CONSTRAINTS:
math 0 0
chem 1 2

END.
";
    let (verdict, penalty) = solved(ctt, 0.5, 7);
    assert!(verdict.feasible(), "{:?}", verdict.violations);
    assert_eq!(verdict.penalty(), penalty, "{verdict:?}");
    // With a second chemistry lecture the first curriculum needs seven periods of six: the
    // solver says so by placing what it can, and the validator finds the lecture missing.
    let impossible = ctt.replace("chem t2 1 1 35", "chem t2 2 1 35");
    let (verdict, _) = solved(&impossible, 0.5, 7);
    assert!(
        verdict.violations.iter().any(|v| v.contains("placed of")),
        "{verdict:?}"
    );
}

#[test]
fn the_validator_finds_what_a_broken_solution_breaks() {
    let ctt = instance("comp01");
    let problem = itc::parse(&ctt).unwrap();
    let timetable = solve(
        &problem,
        SolveOptions {
            budget: Duration::from_millis(500),
            ..SolveOptions::default()
        },
        |_| true,
    );
    let written = itc::write_solution(&problem, &timetable);
    // A lecture moved onto another's room and period, and one left out.
    let mut lines: Vec<String> = written.lines().map(String::from).collect();
    let first: Vec<String> = lines[0].split(' ').map(String::from).collect();
    let second: Vec<String> = lines[1].split(' ').map(String::from).collect();
    lines[1] = format!("{} {} {} {}", second[0], first[1], first[2], first[3]);
    lines.pop();
    let verdict = itc_validator::check(&ctt, &lines.join("\n"));
    assert!(
        verdict.violations.iter().any(|v| v.contains("twice")),
        "{verdict:?}"
    );
    assert!(
        verdict.violations.iter().any(|v| v.contains("placed of")),
        "{verdict:?}"
    );
}

#[test]
fn a_malformed_instance_is_refused_with_its_line() {
    let bad = instance("comp01").replace("c0001 t000 6 4 130", "c0001 t000 six 4 130");
    let e = itc::parse(&bad).unwrap_err();
    assert_eq!(e.line, 10, "{e}");
    assert!(e.message.contains("lectures"), "{e}");
}
