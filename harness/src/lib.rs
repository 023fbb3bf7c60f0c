//! sockbench: a conformance and benchmark harness for servers that speak the
//! length-prefixed, JSON-headed framing protocol of docs/protocol.md, and the
//! `serve` front end of its four back-ends.
//!
//! - [`serve`]: `sockbench serve`, the process contract.
//! - [`target`]: a server under test, spawned and always reaped.
//! - [`client`]: a framed TCP client and a UDP echo helper, every wait bounded.

pub mod alloc_count;
pub mod backends;
pub mod bench;
pub mod cli;
pub mod client;
pub mod conform;
pub mod error;
pub mod explore;
pub mod frames;
pub mod gate;
pub mod load;
pub mod proxy;
pub mod ready;
pub mod report;
pub mod schema;
pub mod serve;
pub mod soak;
pub mod sys;
pub mod target;
pub mod udp;
pub mod units;
pub mod wirelog;
