//! The results files that `gate`, `report` and outside tools read, as
//! types: what a benchmark run measured (`sockbench-bench/1`), what a
//! conformance run found (`sockbench-conform/1`), and the machine both ran
//! on. The bottom layer of the harness: it imports only the plain data
//! types it is made of (statistics, capacity steps, netem probes), never a
//! runner, so the schema reads on its own.

pub mod bench;
pub mod conform;
pub mod load;
pub mod machine;
pub mod soak;
pub mod udp;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A results.json of either kind, told apart by its `schema` field.
#[derive(Debug, Clone)]
pub enum Results {
    /// `sockbench-bench/1`.
    Bench(Box<bench::BenchRun>),
    /// `sockbench-conform/1`.
    Conform(Box<conform::ConformRun>),
    /// `sockbench-soak/1`.
    Soak(Box<soak::SoakRun>),
}

/// Why a results file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON, or not the shape its schema says.
    #[error("{}: {what}: {source}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// `not JSON`, or `does not match schema X`.
        what: String,
        /// Where the parse stopped.
        source: serde_json::Error,
    },
    /// A `schema` this build does not know.
    #[error("{}: unknown schema {found:?} (expected {}, {} or {})", path.display(), bench::SCHEMA, conform::SCHEMA, soak::SCHEMA)]
    Unknown {
        /// The file.
        path: PathBuf,
        /// Its `schema` field.
        found: String,
    },
}

impl Results {
    /// Reads and parses a results.json of any kind.
    pub fn read(path: &Path) -> Result<Results, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
            path: path.to_owned(),
            source,
        })?;
        let shape = |what: String| {
            move |source| SchemaError::Shape {
                path: path.to_owned(),
                what,
                source,
            }
        };
        let v: Value = serde_json::from_str(&text).map_err(shape("not JSON".into()))?;
        let schema = v["schema"].as_str().unwrap_or("").to_owned();
        let mismatch = shape(format!("does not match schema {schema}"));
        match schema.as_str() {
            bench::SCHEMA => Ok(Results::Bench(serde_json::from_value(v).map_err(mismatch)?)),
            conform::SCHEMA => Ok(Results::Conform(
                serde_json::from_value(v).map_err(mismatch)?,
            )),
            soak::SCHEMA => Ok(Results::Soak(serde_json::from_value(v).map_err(mismatch)?)),
            _ => Err(SchemaError::Unknown {
                path: path.to_owned(),
                found: schema,
            }),
        }
    }
}
