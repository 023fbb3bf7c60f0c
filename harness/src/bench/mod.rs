//! `sockbench bench`: every back-end measured on identical scenarios, each
//! result beside the ceilings measured in the same run.
//!
//! Measurement, statistics, analysis and reporting are separate:
//! - [`driver`]: the closed-loop TCP load; [`crate::udp::seq`]: the UDP probe;
//! - [`ceilings`]: unframed echo, raw UDP echo, raw TCP stream, MD5;
//! - [`anchors`]: iperf3 and sockperf beside the ceilings;
//! - [`crate::measure`]: statistics, /proc, pinning, the scheduling floor;
//! - [`capacity`]: open-loop capacity at a latency target ([`crate::load`]);
//! - [`echo`], [`upload`], [`udp`], [`many`], [`micro`]: the scenarios;
//! - [`context`]: what the scenarios share (options, server, the run);
//! - [`runner`]: targets, order, progress; the schema is [`crate::schema::bench`].

pub mod anchors;
pub mod capacity;
pub mod ceilings;
pub mod codec;
pub mod command;
pub mod context;
pub mod driver;
pub mod echo;
pub mod many;
pub mod micro;
pub mod netem;
pub mod runner;
pub mod udp;
pub mod upload;
