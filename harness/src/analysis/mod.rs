//! Judging apart from drawing: what a result means, computed once from the
//! schema and read by every renderer and by the gate.
//!
//! - [`findings`]: a conformance run's failures grouped by cause;
//! - [`verdict`]: the best target per workload, ties by bootstrap;
//! - [`gate`]: a run against a baseline, row by row;
//! - [`pool`]: several runs pooled into one baseline;
//! - [`SUSPECT`]: when a ratio to a ceiling says the ceiling is not one.

pub mod findings;
pub mod gate;
pub mod pool;
pub mod verdict;

/// A target above this ratio to its ceiling beat the bare path: that
/// ceiling bounds nothing, and reports and the gate say so.
pub const SUSPECT: f64 = 1.05;

/// Whether a ratio to a ceiling makes the ceiling suspect.
pub fn suspect(ratio: f64) -> bool {
    ratio > SUSPECT
}
