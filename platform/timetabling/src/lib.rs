//! Timetabling: placing every lecture of a term in a period and a room so that no trainer,
//! class group (curriculum) or room is double-booked and nothing is scheduled when a course's
//! trainer is unavailable, while keeping the soft costs of the ITC-2007 curriculum-based course
//! timetabling track low.
//!
//! * [`problem`] — the model: courses with their trainer, lectures, minimum working days and
//!   students; rooms with their capacity; curricula (class groups) of courses that must not
//!   overlap; unavailable periods. The term's data becomes one of these, and so does an
//!   ITC-2007 `.ctt` instance ([`itc`]).
//! * [`cost`] — the penalty of a timetable under [`cost::Weights`] (UD2 by default).
//! * [`solver`] — a greedy construction with ejection repair, then simulated annealing over
//!   moves and swaps, within a time budget and reproducible for a seed.

pub mod cost;
pub mod itc;
pub mod problem;
pub mod solver;

pub use cost::{Cost, Weights};
pub use problem::{Placement, Problem, Timetable};
pub use solver::{solve, Progress, SolveOptions};
