//! Open-loop load: requests sent on a schedule of intended times, latency
//! measured from those times (no coordinated omission), and the search for
//! capacity at a latency target.
//!
//! - [`schedule`]: intended send times (constant or Poisson), no clock;
//! - [`engine`]: the mio event loop that keeps to the schedule;
//! - [`summary`]: one run as JSON, and the merge of several;
//! - [`search`]: ramp and bisect for the highest rate meeting a target;
//! - [`command`]: `sockbench load` and `sockbench merge`.

pub mod command;
pub mod engine;
pub mod schedule;
pub mod search;
pub mod summary;
