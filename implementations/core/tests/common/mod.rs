//! Helpers shared by the core tests: a server context over a temporary
//! directory, and a reply parser.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::Value;
use std::time::Instant;

use sockbench_core::{Action, Driver, ServerConfig, ServerContext, Storage};
use sockbench_wire::{Decoder, Event, WireConfig};

pub fn context(config: ServerConfig) -> (tempfile::TempDir, Arc<ServerContext>) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ServerContext::new("test", config, Storage::new(dir.path(), false));
    (dir, ctx)
}

/// A reply frame: parsed header, raw header, body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub header: Value,
    pub raw: Vec<u8>,
    pub body: Vec<u8>,
}

impl Reply {
    /// `echo`, `ok`, `stats` or the error code.
    pub fn kind(&self) -> String {
        let h = &self.header;
        match (h["status"].as_str(), h["op"].as_str()) {
            (Some("error"), _) => h["error"].as_str().unwrap().to_owned(),
            (Some("ok"), Some("upload")) => "ok".into(),
            (Some("ok"), Some("stats")) => "stats".into(),
            _ => "echo".into(),
        }
    }
}

pub fn parse_replies(wire: WireConfig, bytes: &[u8]) -> Vec<Reply> {
    let mut d = Decoder::new(WireConfig::permissive(wire.endian));
    let mut rest = bytes;
    let mut out: Vec<Reply> = Vec::new();
    while let Some(ev) = d
        .decode(&mut rest)
        .expect("server output must be well framed")
    {
        match ev {
            Event::Head(_) => out.push(Reply {
                header: serde_json::from_slice(d.raw_header()).unwrap(),
                raw: d.raw_header().to_vec(),
                body: Vec::new(),
            }),
            Event::Body(b) => out.last_mut().unwrap().body.extend_from_slice(b),
            Event::End => {}
        }
    }
    assert!(rest.is_empty());
    assert_eq!(
        d.position(),
        sockbench_wire::Position::Boundary,
        "output ends mid-frame"
    );
    out
}

/// A driver for a connection accepted now.
pub fn driver(ctx: &Arc<ServerContext>) -> Driver {
    Driver::new(ctx, Instant::now())
}

/// Carries out the driver's writes at `now` as a socket that takes
/// everything would, appending them to `out`; returns the first other
/// action, by name.
pub fn written(d: &mut Driver, now: Instant, out: &mut Vec<u8>) -> String {
    loop {
        match d.next(now) {
            Action::Write(b) => {
                out.extend_from_slice(b);
                let n = b.len();
                d.on_written(n, now);
            }
            other => return format!("{other:?}"),
        }
    }
}

/// Writes what the driver has (an abandoned upload needs nothing here);
/// true when it ends the connection (shuts down writing or closes)
/// instead of reading on.
pub fn flush(d: &mut Driver, out: &mut Vec<u8>) -> bool {
    loop {
        match written(d, Instant::now(), out).as_str() {
            "Read" => return false,
            "AbortUpload" => {}
            _ => return true,
        }
    }
}

/// One read of `piece`, then its replies written; true when the driver ends
/// the connection.
pub fn read(d: &mut Driver, piece: &[u8], out: &mut Vec<u8>) -> bool {
    d.on_read(piece, Instant::now());
    flush(d, out)
}

/// Feeds `input` in `chunk`-sized reads; returns the output and whether it closed.
pub fn drive(d: &mut Driver, input: &[u8], chunk: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        if read(d, piece, &mut out) {
            return (out, true);
        }
    }
    d.on_eof();
    flush(d, &mut out);
    (out, false)
}

/// Names in a directory, sorted.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}
