//! The oracle: `core::Session`, the one owner of the protocol's rules, run
//! in-process over in-memory storage. Fed each connection's bytes it
//! predicts every reply, whether the server closes, and what the storage
//! directory holds at the end. Delivery (cuts, pauses, interleaving) does
//! not enter: a correct server's replies do not depend on it, which is
//! the property explore tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use md5::{Digest, Md5};
use sockbench_core::{
    CommitError, Eof, ServerConfig, ServerContext, Session, Step, Storage, StorageOp, Stored,
};
use sockbench_wire::WireConfig;

use super::program::{End, Program};

/// What one action should get back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Nothing (a frame cut short, or one after which the server closed).
    None,
    /// An echo: these bytes exactly.
    Echo(Vec<u8>),
    /// Any other reply: this frame, compared by meaning.
    Frame(Vec<u8>),
    /// A streamed echo cut short: any prefix of this frame.
    Partial(Vec<u8>),
}

/// One connection's expected behaviour.
#[derive(Debug, Clone)]
pub struct ConnExpect {
    /// One entry per action.
    pub replies: Vec<Reply>,
    /// The server must close the connection (a fatal error, or the client
    /// half-closed and every reply is out).
    pub closes: bool,
    /// Which action got a fatal error, if one did.
    pub fatal: Option<usize>,
}

impl ConnExpect {
    /// Whole reply frames due once actions `0..=i` are answered.
    pub fn frames_through(&self, i: usize) -> usize {
        self.replies
            .iter()
            .take(i + 1)
            .filter(|r| matches!(r, Reply::Echo(_) | Reply::Frame(_)))
            .count()
    }
}

/// The whole program's expected outcome.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Per connection.
    pub conns: Vec<ConnExpect>,
    /// File name -> the MD5s its final content may have: each
    /// connection's last successful upload of it (their order across
    /// connections is the scheduler's).
    pub files: BTreeMap<String, Vec<String>>,
}

/// Runs the model over `program`.
pub fn expect(program: &Program, wire: WireConfig) -> Expect {
    let config = ServerConfig {
        wire,
        ..ServerConfig::default()
    };
    // The session never touches this directory: storage operations come
    // back to us as steps.
    let ctx = ServerContext::new("model", config, Storage::new("/nonexistent", false));
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut conns = Vec::new();
    for c in 0..program.conns.len() {
        let (exp, last_ok) = connection(program, c, wire, &ctx);
        for (name, md5) in last_ok {
            files.entry(name).or_default().push(md5);
        }
        conns.push(exp);
    }
    Expect { conns, files }
}

/// One connection through a fresh session; also its last successful
/// upload of each name.
fn connection(
    program: &Program,
    c: usize,
    wire: WireConfig,
    ctx: &Arc<ServerContext>,
) -> (ConnExpect, BTreeMap<String, String>) {
    let conn = &program.conns[c];
    let mut session = Session::new(Arc::clone(ctx));
    let mut upload: Option<(String, Md5, u64)> = None;
    let mut last_ok = BTreeMap::new();
    let mut replies = Vec::new();
    let mut fatal = None;
    for (i, action) in conn.actions.iter().enumerate() {
        if fatal.is_some() {
            replies.push(Reply::None);
            continue;
        }
        let bytes = action.wire(wire.endian);
        let mut input: &[u8] = &bytes;
        let mut out = Vec::new();
        loop {
            match session.feed(&mut input, &mut out) {
                Step::NeedInput => break,
                Step::Close => {
                    fatal = Some(i);
                    break;
                }
                Step::Storage(StorageOp::Begin { file_name }) => {
                    upload = Some((file_name, Md5::new(), 0));
                }
                Step::Storage(StorageOp::Write(chunk)) => {
                    if let Some((_, h, n)) = &mut upload {
                        h.update(chunk);
                        *n += chunk.len() as u64;
                    }
                }
                Step::Storage(StorageOp::Commit { expected }) => {
                    let (name, h, bytes) = upload.take().unwrap_or_default();
                    let md5: [u8; 16] = h.finalize().into();
                    let result = match expected {
                        Some(e) if e != md5 => Err(CommitError::Mismatch { computed: md5 }),
                        _ => {
                            last_ok.insert(name, sockbench_wire::md5_hex(&md5));
                            Ok(Stored { bytes, md5 })
                        }
                    };
                    session.committed(result, &mut out);
                }
            }
        }
        let cut = action.sent.is_some();
        if cut && session.eof() == Eof::Truncated {
            upload = None;
        }
        let echo = !cut && out == action.frame(wire.endian);
        replies.push(if out.is_empty() {
            Reply::None
        } else if cut {
            // Only a streamed echo answers before its frame is complete.
            Reply::Partial(action.frame(wire.endian))
        } else if echo {
            Reply::Echo(out)
        } else {
            Reply::Frame(out)
        });
    }
    let closes = fatal.is_some() || conn.end == End::HalfClose;
    (
        ConnExpect {
            replies,
            closes,
            fatal,
        },
        last_ok,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::program::{Action, Body, Conn, Head, Md5 as M};
    use serde_json::json;

    fn wire() -> WireConfig {
        WireConfig::default()
    }

    fn act(kind: &str, op: Option<&str>, name: Option<&str>, md5: M, len: u64) -> Action {
        Action {
            kind: kind.into(),
            head: Head::Fields {
                op: op.map(Into::into),
                file_name: name.map(Into::into),
                md5,
                id: Some(json!(1)),
                extra: vec![],
                file_size: None,
            },
            body: Body { len, fill: 9 },
            sent: None,
        }
    }

    fn one(actions: Vec<Action>, end: End) -> Program {
        let mut p = Program {
            conns: vec![Conn {
                actions,
                cuts: vec![],
                pauses: vec![],
                depth: 1,
                end,
            }],
            udp: vec![],
            schedule: vec![],
        };
        p.normalize(wire().endian);
        p
    }

    #[test]
    fn the_model_predicts_echoes_errors_uploads_and_closes() {
        let mut bad = act("fatal", None, None, M::None, 0);
        bad.head = Head::Raw {
            text: "nope".into(),
            prefix: None,
        };
        let p = one(
            vec![
                act("echo", None, None, M::None, 5),
                act("upload", None, Some("f"), M::Right(false), 100),
                act("upload_wrong_md5", None, Some("f"), M::Wrong, 7),
                act("unknown_op", Some("bogus"), None, M::None, 3),
                bad,
            ],
            End::Close,
        );
        let e = expect(&p, wire());
        let c = &e.conns[0];
        assert_eq!(
            c.replies[0],
            Reply::Echo(p.conns[0].actions[0].frame(wire().endian))
        );
        let text = |r: &Reply| match r {
            Reply::Frame(b) => String::from_utf8_lossy(&b[4..]).into_owned(),
            other => panic!("{other:?}"),
        };
        assert!(text(&c.replies[1]).contains(r#""status":"ok""#));
        assert!(text(&c.replies[2]).contains("md5_mismatch"));
        assert!(text(&c.replies[3]).contains("unknown_op"));
        assert!(text(&c.replies[4]).contains("bad_json"));
        assert_eq!((c.fatal, c.closes), (Some(4), true));
        // Only the good upload is stored.
        let want = crate::explore::program::md5_hex(&Body { len: 100, fill: 9 }.bytes());
        assert_eq!(e.files.get("f"), Some(&vec![want]));
    }

    #[test]
    fn a_frame_cut_short_gets_nothing_but_a_streamed_echo_may_have_begun() {
        let mut small = act("echo", None, None, M::None, 100);
        small.sent = Some(50);
        let e = expect(&one(vec![small], End::HalfClose), wire());
        assert_eq!(e.conns[0].replies, vec![Reply::None]);
        assert!(e.conns[0].closes, "a half-close is answered by a close");

        let mut big = act("echo", None, None, M::None, 200_000);
        big.sent = Some(100_000);
        let e = expect(&one(vec![big], End::Reset), wire());
        assert!(matches!(e.conns[0].replies[0], Reply::Partial(_)));
        assert!(!e.conns[0].closes);

        let mut up = act("upload", None, Some("g"), M::None, 1000);
        up.sent = Some(500);
        let e = expect(&one(vec![up], End::Reset), wire());
        assert!(e.files.is_empty(), "a cut upload stores nothing");
    }
}
