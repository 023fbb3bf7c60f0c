//! `sockbench soak`: a mixed workload for a long time, the server's
//! resources sampled every second, a robust trend fitted to each after the
//! warm-up, and a leak judged when one grows past its documented threshold.
//! A server that leaks a file descriptor per md5 mismatch, caches every
//! echoed body or starts a thread per connection that never ends answers
//! every conformance case correctly; this is the check that catches it.

pub mod command;
pub mod sampler;
pub mod trend;
pub mod workload;
