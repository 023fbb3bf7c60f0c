//! `sockbench conform`: the conformance suite.
//!
//! - [`case`]: what a case is and the context it runs with;
//! - [`cases`]: the catalogue, by category;
//! - [`targets`]: our back-ends, any serve-contract command, or an address;
//! - [`runner`]: parallel and serial execution, deadlines, the watchdog;
//! - [`client`]: `--client`, a hostile server for anybody's client;
//! - outcomes and the results.json schema: [`crate::schema::conform`].

pub mod case;
pub mod cases;
pub mod causes;
pub mod client;
pub mod command;
pub mod disk;
pub mod list;
pub mod runner;
pub mod targets;
pub mod under;

pub use cases::catalogue;
