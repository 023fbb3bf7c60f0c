//! The measurement floor: what every command measures with, and nothing
//! else of the harness. It imports no other module of the crate
//! (tests/layers.rs holds it to that), so the results schema above it and
//! every engine and scenario can use it.
//!
//! - [`stats`]: medians, spread, latency percentiles from HdrHistogram;
//! - [`proc`]: CPU time, memory, descriptors and threads from /proc, one
//!   sampler through procfs; the open-file limit;
//! - [`pin`]: CPU pinning of the load driver and the server;
//! - [`floor`]: the machine's scheduling floor (stolen CPU time);
//! - [`alloc_count`]: the counting allocator of the codec table;
//! - [`units`]: values with units as people type them (sizes, durations,
//!   rates).

pub mod alloc_count;
pub mod floor;
pub mod pin;
pub mod proc;
pub mod stats;
pub mod units;
