//! The golden vectors of fixtures/wire, decoded whole and one byte at a time.

use sockbench_wire::vectors::{self, Vector, assemble};
use sockbench_wire::{Decoder, Event, Position};

fn load() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/wire/vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    vectors::parse(&text).unwrap()
}

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<(String, Vec<u8>)>,
    error: Option<String>,
    end: &'static str,
}

fn run(v: &Vector, chunk: usize) -> Outcome {
    let input = assemble(&v.input).unwrap();
    let mut d = Decoder::new(v.config.wire().unwrap());
    let mut out = Outcome {
        frames: Vec::new(),
        error: None,
        end: "",
    };
    'chunks: for piece in input.chunks(chunk) {
        let mut rest = piece;
        loop {
            match d.decode(&mut rest) {
                Ok(None) => break,
                Ok(Some(Event::Head(_))) => out.frames.push((
                    String::from_utf8(d.raw_header().to_vec()).unwrap(),
                    Vec::new(),
                )),
                Ok(Some(Event::Body(b))) => out.frames.last_mut().unwrap().1.extend_from_slice(b),
                Ok(Some(Event::End)) => {}
                Err(e) => {
                    out.error = Some(e.code.as_str().to_owned());
                    break 'chunks;
                }
            }
        }
    }
    out.end = match d.position() {
        Position::Boundary => "boundary",
        Position::Prefix => "prefix",
        Position::Header => "header",
        Position::Body(_) => "body",
        Position::Failed => "failed",
    };
    out
}

#[test]
fn every_vector_decodes_as_expected_in_any_chunking() {
    let all = load();
    assert!(
        all.len() >= 40,
        "the vector file lost vectors: {}",
        all.len()
    );
    for v in &all {
        let want = Outcome {
            frames: v
                .expect
                .frames
                .iter()
                .map(|f| (f.header.clone(), assemble(&f.body).unwrap()))
                .collect(),
            error: v.expect.error.clone(),
            end: match v.expect.end.as_str() {
                "boundary" => "boundary",
                "prefix" => "prefix",
                "header" => "header",
                "body" => "body",
                "failed" => "failed",
                other => panic!("{}: unknown end {other:?}", v.name),
            },
        };
        // A truncated body frame shows its head only; compare the complete ones.
        for chunk in [usize::MAX, 1, 2, 3, 7] {
            let mut got = run(v, chunk);
            if want.end == "body" {
                got.frames.pop();
            }
            assert_eq!(got, want, "vector {:?} with chunks of {chunk}", v.name);
        }
    }
}

#[test]
fn every_error_code_of_the_table_has_a_vector() {
    let all = load();
    for code in sockbench_wire::ErrorCode::ALL {
        assert!(
            all.iter()
                .any(|v| v.expect.replies.iter().any(|r| r == code.as_str())),
            "no vector for {code}"
        );
    }
}
