//! The golden vectors' `replies`: what a server answers to each stream.

mod common;

use common::{context, drive, driver, names_in, parse_replies};
use sockbench_core::ServerConfig;
use sockbench_wire::vectors::{self, assemble};

#[test]
fn every_vector_gets_the_expected_replies_in_any_chunking() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/wire/vectors.json"
    );
    let all = vectors::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    for v in &all {
        let input = assemble(&v.input).unwrap();
        let wire = v.config.wire().unwrap();
        for chunk in [usize::MAX, 1, 5, 64] {
            let config = ServerConfig {
                wire,
                ..ServerConfig::default()
            };
            let (dir, ctx) = context(config);
            if v.storage.as_deref() == Some("missing") {
                std::fs::remove_dir(dir.path()).unwrap();
            }
            let mut conn = driver(&ctx);
            let (out, closed) = drive(&mut conn, &input, chunk);
            let replies = parse_replies(wire, &out);
            let mut kinds: Vec<String> = replies.iter().map(|r| r.kind()).collect();
            if closed {
                kinds.push("close".into());
            }
            assert_eq!(
                kinds, v.expect.replies,
                "vector {:?}, chunks of {chunk}",
                v.name
            );
            for (i, r) in replies.iter().enumerate() {
                let Some(want) = v.expect.frames.get(i) else {
                    continue;
                };
                let body = assemble(&want.body).unwrap();
                match r.kind().as_str() {
                    "echo" => {
                        assert_eq!(r.raw, want.header.as_bytes(), "{}: echo header", v.name);
                        assert_eq!(r.body, body, "{}: echo body", v.name);
                    }
                    "ok" => {
                        let name = r.header["file_name"].as_str().unwrap();
                        assert_eq!(
                            std::fs::read(dir.path().join(name)).unwrap(),
                            body,
                            "{}",
                            v.name
                        );
                        assert_eq!(r.header["bytes"], body.len());
                    }
                    _ => {}
                }
                // Replies copy the request's id.
                let req: serde_json::Value = serde_json::from_str(&want.header).unwrap();
                assert_eq!(r.header.get("id"), req.get("id"), "{}: id", v.name);
            }
            // Whatever happened, no temporary file is left behind.
            let temps: Vec<String> = names_in(dir.path())
                .into_iter()
                .filter(|n| n.starts_with(sockbench_core::TEMP_PREFIX))
                .collect();
            assert!(temps.is_empty(), "{}: left {temps:?}", v.name);
        }
    }
}
