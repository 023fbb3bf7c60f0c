//! `sockbench gate`: compare a current run with a baseline and fail on a
//! regression. The judgement is [`crate::analysis::gate`]; here are the
//! command, its confirming rerun ([`rerun`]) and the interleaved A/B mode
//! ([`ab`]).
//!
//! Exit codes: 0 pass, 1 regression, 2 unusable input (with one line why).

pub mod ab;
pub mod command;
pub mod rerun;
