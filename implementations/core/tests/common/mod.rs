//! Helpers shared by the core tests: a server context over a temporary
//! directory, and a reply parser.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::Value;
use sockbench_core::{Connection, Flow, ServerConfig, ServerContext, Storage};
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
            Event::Head(h) => out.push(Reply {
                header: serde_json::from_slice(&h.raw).unwrap(),
                raw: h.raw,
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

/// Feeds `input` in `chunk`-sized reads; returns the output and whether it closed.
pub fn drive(conn: &mut Connection, input: &[u8], chunk: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        if conn.on_read(piece, &mut out) == Flow::Close {
            return (out, true);
        }
    }
    conn.on_eof();
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
