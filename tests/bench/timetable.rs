//! Benchmark: the timetabling solver on the ITC-2007 curriculum-based instances comp01–comp07,
//! each for a fixed budget, every solution checked by the independent validator, its UD2
//! penalty printed beside the best known values and the competition winner's.
//!
//! ```text
//! cargo build --release -p trainflow-tests --bin bench-timetable
//! target/release/bench-timetable        # BENCH_SECONDS=300 BENCH_SEED=1 BENCH_PARALLEL=2
//! ```
//! Instances run `BENCH_PARALLEL` at a time (the solver uses one core); `BENCH_INSTANCES`
//! (`comp01,…,comp07`) picks some.

use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

use common::env_or;
use trainflow_tests::itc_validator;
use trainflow_timetabling::{cost::evaluate, itc, solve, SolveOptions, Weights};

/// (instance, the winner's penalty, the best known where the issue states it).
const REFERENCE: [(&str, u64, Option<u64>); 7] = [
    ("comp01", 5, Some(5)),
    ("comp02", 43, None),
    ("comp03", 72, None),
    ("comp04", 35, Some(35)),
    ("comp05", 298, None),
    ("comp06", 41, None),
    ("comp07", 14, None),
];

fn main() -> anyhow::Result<()> {
    let seconds: f64 = env_or("BENCH_SECONDS", 300.0);
    let seed: u64 = env_or("BENCH_SEED", 1);
    let parallel: usize = env_or("BENCH_PARALLEL", 2).max(1);
    let wanted: String = env_or("BENCH_INSTANCES", String::new());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/itc2007");
    let chosen: Vec<_> = REFERENCE
        .iter()
        .filter(|(n, _, _)| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == *n))
        .cloned()
        .collect();
    println!("ITC-2007 curriculum-based timetabling, {seconds} s per instance, seed {seed}, {parallel} at a time");
    let mut rows = Vec::new();
    for batch in chosen.chunks(parallel) {
        let handles: Vec<_> = batch
            .iter()
            .map(|&(name, winner, best)| {
                let path = dir.join(format!("{name}.ctt"));
                std::thread::spawn(move || -> anyhow::Result<_> {
                    let ctt = std::fs::read_to_string(&path)?;
                    let problem = itc::parse(&ctt)?;
                    let started = Instant::now();
                    let timetable = solve(
                        &problem,
                        SolveOptions {
                            budget: Duration::from_secs_f64(seconds),
                            seed,
                            weights: Weights::UD2,
                        },
                        |_| true,
                    );
                    let took = started.elapsed();
                    let written = itc::write_solution(&problem, &timetable);
                    let verdict = itc_validator::check(&ctt, &written);
                    let own = evaluate(&problem, &timetable, Weights::UD2).penalty();
                    Ok((name, winner, best, verdict, own, took))
                })
            })
            .collect();
        for h in handles {
            let (name, winner, best, verdict, own, took) = h.join().expect("a solver thread")?;
            println!(
                "  {name}: {} penalty {} (solver says {own}) in {:.0} s; winner {winner}{}; ratio {:.2}",
                if verdict.feasible() { "feasible" } else { "INFEASIBLE" },
                verdict.penalty(),
                took.as_secs_f64(),
                best.map(|b| format!(", best known {b}")).unwrap_or_default(),
                verdict.penalty() as f64 / winner as f64,
            );
            rows.push((name, verdict.feasible(), verdict.penalty(), winner));
        }
    }
    let all_feasible = rows.iter().all(|r| r.1);
    let within = rows.iter().all(|r| r.2 <= 2 * r.3);
    println!(
        "all feasible: {all_feasible}; every penalty within 2× the winner's: {within}; comp01 = 5: {}",
        rows.iter().any(|r| r.0 == "comp01" && r.2 == 5)
    );
    Ok(())
}
