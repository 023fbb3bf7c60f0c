//! `sockbench explore`: model-based testing of any server. Seeded programs
//! (frames over several connections and UDP, cut and interleaved at
//! random) run against the server; `core::Session` predicts every reply;
//! a divergence is shrunk and written as a repro that `replay` and a
//! standalone Python script run again.
//!
//! Layers, bottom to top: `program` (the data), `replies` (frames off a
//! stream) <- `generate`, `model` (the oracle) <- `execute` (the wire) <-
//! `judge` <- `shrink`, `run` (servers and the loop) <- `repro` <- `command`.

pub mod command;
pub mod execute;
pub mod generate;
pub mod judge;
pub mod model;
pub mod program;
pub mod replies;
pub mod repro;
pub mod run;
pub mod shrink;
