//! sockbench: a conformance and benchmark harness for servers that speak the
//! length-prefixed, JSON-headed framing protocol of docs/protocol.md, and the
//! `serve` front end of its six back-ends.
//!
//! The modules stand on floors; imports only go down (tests/layers.rs,
//! docs/architecture.md):
//!
//! 0. [`measure`]: statistics, /proc, pinning, the scheduling floor, units.
//! 1. [`schema`]: results.json of every command, and nothing above it.
//! 2. [`target`] (a server or client under test), [`peer`] (our side of the
//!    wire), [`serve`] (the serve contract), [`error`].
//! 3. Engines: [`load`] (open loop), [`udp`] (sequenced probe), [`proxy`].
//! 4. Scenarios: [`bench`], [`conform`], [`explore`], [`soak`].
//! 5. [`report`]: renderers, reading the schema only.
//! 6. Commands (`*::command`, [`gate`]), then [`cli`], which only main names.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod conform;
pub mod dialect;
pub mod error;
pub mod explore;
pub mod gate;
pub mod lang;
pub mod learn;
pub mod load;
pub mod measure;
pub mod peer;
pub mod proxy;
pub mod report;
pub mod schema;
pub mod serve;
pub mod soak;
pub mod target;
pub mod udp;

// The message catalogue of findings and reports (crate::lang), English
// the fallback.
rust_i18n::i18n!("locales", fallback = "en");
