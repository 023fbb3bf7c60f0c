//! The sans-IO session on arbitrary bytes in arbitrary chunks, with storage
//! outcomes (open, write and commit succeed or fail) drawn from the input:
//! it never panics, and everything it writes is a well-formed frame stream.

#![no_main]

use std::io;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sockbench_core::{
    CommitError, ServerConfig, ServerContext, Session, Step, Storage, StorageOp, Stored,
};
use sockbench_wire::{Decoder, Position, WireConfig};

fn context() -> Arc<ServerContext> {
    static CTX: OnceLock<Arc<ServerContext>> = OnceLock::new();
    // Storage operations are simulated below: the directory is never touched.
    Arc::clone(CTX.get_or_init(|| {
        ServerContext::new(
            "fuzz",
            ServerConfig::default(),
            Storage::new("/nonexistent", false),
        )
    }))
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(knobs % 17) + 1;
    let mut session = Session::new(context());
    let mut out = Vec::new();
    let mut fate = knobs.rotate_left(3);
    let mut closed = false;
    'feed: for piece in input.chunks(chunk) {
        let mut rest = piece;
        loop {
            match session.feed(&mut rest, &mut out) {
                Step::NeedInput => break,
                Step::Close => {
                    closed = true;
                    break 'feed;
                }
                Step::Storage(op) => {
                    fate = fate.wrapping_mul(31).wrapping_add(7);
                    let fail = fate % 5 == 0;
                    match op {
                        StorageOp::Begin { file_name } => {
                            assert!(
                                sockbench_core::validate_file_name(&file_name).is_ok(),
                                "begin with a bad name"
                            );
                            if fail {
                                session.storage_failed(&io::Error::other("simulated"));
                            }
                        }
                        StorageOp::Write(_) if fail => {
                            session.storage_failed(&io::Error::other("simulated"))
                        }
                        StorageOp::Write(_) => {}
                        StorageOp::Commit { expected } => {
                            let result = match (fail, expected) {
                                (true, _) => Err(CommitError::Io(io::Error::other("simulated"))),
                                (false, Some(e)) if fate % 3 == 0 => Err(CommitError::Mismatch {
                                    computed: e.map(|b| !b),
                                }),
                                _ => Ok(Stored {
                                    bytes: 0,
                                    md5: [0; 16],
                                }),
                            };
                            session.committed(result, &mut out);
                        }
                    }
                }
            }
        }
    }
    if !closed {
        session.eof();
    }
    // The output is frames, whole ones, each with a JSON header.
    let mut d = Decoder::new(WireConfig::permissive(WireConfig::default().endian));
    let mut rest = &out[..];
    // Echoes repeat request headers that parsed and replies carry file_size
    // 0: the decoder parses every header, so a bad one is its error.
    while d
        .decode(&mut rest)
        .expect("the session writes valid frames")
        .is_some()
    {}
    // A long echo is streamed and may be cut by the end of input; anything else ends whole.
    assert!(matches!(
        d.position(),
        Position::Boundary | Position::Body(_)
    ));
});
