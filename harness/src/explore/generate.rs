//! The program generator: seeded, so the same seed gives the same
//! programs, and biased to the edges where framing code breaks (sizes at
//! powers of two and buffer sizes plus or minus one, the 64 KiB hold
//! limit, names at the 255-byte limit in multi-byte UTF-8, cuts inside
//! prefixes and headers).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sockbench_wire::{Endian, WireConfig};

use super::program::{Action, Body, Conn, End, Head, Md5, Program, Slot};

/// What the target allows, which shapes the programs.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Its byte order and limits.
    pub wire: WireConfig,
    /// Serves several connections at once; if not, connections run one
    /// after another.
    pub concurrent: bool,
    /// Whether to send UDP at all.
    pub udp: bool,
    /// Whether to open TCP connections at all (a UDP-only target: no).
    pub tcp: bool,
    /// The largest body generated.
    pub max_body: u64,
}

/// The generator for one seed.
pub struct Generator {
    rng: StdRng,
    shape: Shape,
}

/// Sizes around which buffers and limits sit.
const EDGES: [u64; 14] = [
    8, 16, 64, 255, 256, 1024, 1460, 4096, 8192, 16384, 32768, 65536, 131072, 262144,
];

/// File names: a few plain ones (so that names repeat across actions and
/// connections) and the awkward ones.
const PLAIN_NAMES: [&str; 4] = ["a.txt", "data.bin", "x", "report 1.csv"];

impl Generator {
    /// A generator whose programs depend only on `seed` and `shape`.
    pub fn new(seed: u64, shape: Shape) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            shape,
        }
    }

    /// The next program.
    pub fn program(&mut self) -> Program {
        let n_conns = match self.shape.tcp {
            true => *pick(&mut self.rng, &[1, 1, 1, 2, 2, 3, 4]),
            false => 0,
        };
        let conns: Vec<Conn> = (0..n_conns).map(|_| self.conn()).collect();
        let udp: Vec<Body> = if self.shape.udp && (!self.shape.tcp || self.rng.random_bool(0.3)) {
            (0..self.rng.random_range(1..=3))
                .map(|_| self.datagram())
                .collect()
        } else {
            Vec::new()
        };
        let mut p = Program {
            conns,
            udp,
            schedule: Vec::new(),
        };
        self.schedule(&mut p);
        p
    }

    /// One connection of small echoes, one at a time: the program that
    /// times round trips (a reply held back by Nagle's algorithm is right,
    /// and 40 ms late).
    pub fn ping_pong(&mut self) -> Program {
        let actions: Vec<Action> = (0..12)
            .map(|_| {
                let len = self.rng.random_range(1..=64);
                Action {
                    kind: "echo_ping_pong".into(),
                    ..self.fields(None, None, Md5::None, len)
                }
            })
            .collect();
        // A cut at every frame boundary: with depth 1 each frame then goes
        // out alone, after the reply to the one before.
        let cuts = frame_boundaries(&actions, self.shape.wire.endian);
        let mut p = Program {
            conns: vec![Conn {
                pauses: vec![0; cuts.len()],
                actions,
                cuts,
                depth: 1,
                end: End::Close,
            }],
            udp: Vec::new(),
            schedule: Vec::new(),
        };
        self.schedule(&mut p);
        p
    }

    fn conn(&mut self) -> Conn {
        let n = *pick(&mut self.rng, &[1, 1, 2, 2, 3, 4, 5, 6, 8]);
        let mut actions: Vec<Action> = (0..n).map(|_| self.action()).collect();
        let end = *pick(
            &mut self.rng,
            &[
                End::Close,
                End::Close,
                End::Close,
                End::HalfClose,
                End::Reset,
            ],
        );
        // A fatal error can only be a connection's last action.
        if self.rng.random_bool(0.12) {
            let f = self.fatal();
            actions.push(f);
        } else if end != End::Close && self.rng.random_bool(0.5) {
            // Cut short inside the last frame: no reply, nothing stored.
            let last = actions.len() - 1;
            let len = actions[last].frame(self.shape.wire.endian).len() as u64;
            if len > 1 {
                actions[last].sent = Some(self.rng.random_range(1..len));
                actions[last].kind.push_str("_truncated");
            }
        }
        let stream: Vec<u64> = actions
            .iter()
            .map(|a| a.wire(self.shape.wire.endian).len() as u64)
            .collect();
        let cuts = self.cuts(&stream, &actions);
        let pauses = cuts
            .iter()
            .map(|_| {
                if self.rng.random_bool(0.2) {
                    self.rng.random_range(1..=15)
                } else {
                    0
                }
            })
            .collect();
        Conn {
            actions,
            cuts,
            pauses,
            depth: *pick(&mut self.rng, &[1, 1, 2, 3, 4, 64]),
            end,
        }
    }

    /// Cut points: some anywhere, most at the places a parser keeps
    /// state: inside the prefix, inside the header, right after it, one
    /// byte either side of a frame boundary.
    fn cuts(&mut self, frames: &[u64], actions: &[Action]) -> Vec<u64> {
        let total: u64 = frames.iter().sum();
        if total < 2 {
            return Vec::new();
        }
        let mut starts = Vec::new();
        let mut at = 0;
        for (len, a) in frames.iter().zip(actions) {
            starts.push((at, *len, a.header().0.len() as u64));
            at += len;
        }
        let n = *pick(&mut self.rng, &[0, 0, 1, 2, 3, 5, 8]);
        let mut cuts: Vec<u64> = (0..n)
            .map(|_| {
                let (s, len, h) = *pick(&mut self.rng, &starts);
                let c = match self.rng.random_range(0..6) {
                    0 => self.rng.random_range(0..total),
                    1 => s + self.rng.random_range(1..=3),
                    2 => s + 4 + self.rng.random_range(0..=h),
                    3 => s + 4 + h + self.rng.random_range(0..=1),
                    4 => s + len,
                    _ => s + len + 1,
                };
                c.min(total - 1).max(1)
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }

    fn schedule(&mut self, p: &mut Program) {
        let mut queues: Vec<Vec<Slot>> = p
            .conns
            .iter()
            .enumerate()
            .map(|(i, c)| vec![Slot::Tcp(i); c.cuts.len() + 2])
            .collect();
        queues.extend((0..p.udp.len()).map(|d| vec![Slot::Udp(d)]));
        if !self.shape.concurrent {
            // One connection at a time: a server that serves one would
            // never read the second while the first is open.
            p.schedule = queues.concat();
            return;
        }
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len())
                .filter(|&i| !queues[i].is_empty())
                .collect();
            let q = *pick(&mut self.rng, &live);
            p.schedule.push(queues[q].remove(0));
        }
    }

    fn size(&mut self) -> u64 {
        let r = &mut self.rng;
        match r.random_range(0..100) {
            0..45 => r.random_range(0..=17),
            45..80 => {
                let e = *pick(r, &EDGES[..11]);
                e + r.random_range(0..=2) - 1
            }
            80..95 => 65536 + r.random_range(0..=8) - 4,
            _ => {
                let big = *pick(r, &[262145, 1 << 20, (3 << 20) + 7]);
                big.min(self.shape.max_body)
            }
        }
    }

    fn body(&mut self, len: u64) -> Body {
        Body {
            len: len.min(self.shape.max_body),
            fill: self.rng.random(),
        }
    }

    fn id(&mut self) -> Option<Value> {
        let r = &mut self.rng;
        match r.random_range(0..10) {
            0..4 => None,
            4 => Some(json!(r.random_range(0..1000))),
            5 => Some(json!(format!("req-{}", r.random_range(0..100)))),
            6 => Some(Value::Null),
            7 => Some(json!([1, "two", {"three": 3}])),
            8 => Some(json!({"n": r.random_range(0..9), "é": true})),
            _ => Some(json!(r.random_bool(0.5))),
        }
    }

    fn extra(&mut self) -> Vec<(String, Value)> {
        if self.rng.random_bool(0.8) {
            return Vec::new();
        }
        let mut v = vec![("note".into(), json!("ignored, and kept for echo"))];
        if self.rng.random_bool(0.5) {
            v.push(("nested".into(), json!({"a": [1, 2, {"b": null}]})));
        }
        v
    }

    fn fields(&mut self, op: Option<&str>, name: Option<String>, md5: Md5, body: u64) -> Action {
        let body = self.body(body);
        Action {
            kind: String::new(),
            head: Head::Fields {
                op: op.map(str::to_owned),
                file_name: name,
                md5,
                id: self.id(),
                extra: self.extra(),
                file_size: None,
            },
            body,
            sent: None,
        }
    }

    fn name(&mut self) -> String {
        let r = &mut self.rng;
        match r.random_range(0..10) {
            0..6 => (*pick(r, &PLAIN_NAMES)).to_owned(),
            // At the 255-byte limit in two- and three-byte characters.
            6 => "é".repeat(127),
            7 => "日".repeat(85),
            8 => format!("{}é", "n".repeat(253)),
            _ => "ü-名前.txt".to_owned(),
        }
    }

    fn bad_name(&mut self) -> String {
        let r = &mut self.rng;
        (*pick(
            r,
            &[
                "",
                ".",
                "..",
                "a/b",
                "..\\x",
                "nul\0byte",
                // One byte over the limit, in characters well under it.
                &"é".repeat(128),
                &"日".repeat(86),
                &format!("{}é", "n".repeat(254)),
            ],
        ))
        .to_owned()
    }

    fn action(&mut self) -> Action {
        let k = self.rng.random_range(0..100);
        let (kind, action) = match k {
            0..40 => {
                let len = self.size();
                let op = *pick(&mut self.rng, &[None, Some("echo")]);
                ("echo", self.fields(op, None, Md5::None, len))
            }
            40..45 => {
                // A frame of exactly the 64 KiB hold limit, or one byte
                // either side: the body size follows from the header's.
                let mut a = self.fields(None, None, Md5::None, 65000);
                // file_size keeps five digits, so the header's length is fixed.
                let h = a.header().0.len() as u64;
                a.body.len = (65536 - 4 - h) + self.rng.random_range(0..=2) - 1;
                ("echo_hold_edge", a)
            }
            45..53 => ("stats", self.fields(Some("stats"), None, Md5::None, 0)),
            53..66 => {
                let (len, name, upper) = (self.size(), self.name(), self.rng.random_bool(0.3));
                let op = *pick(&mut self.rng, &[None, Some("upload")]);
                (
                    "upload",
                    self.fields(op, Some(name), Md5::Right(upper), len),
                )
            }
            66..72 => {
                let (len, name) = (self.size(), self.name());
                (
                    "upload_no_md5",
                    self.fields(Some("upload"), Some(name), Md5::None, len),
                )
            }
            72..78 => {
                let (len, name) = (self.size(), self.name());
                (
                    "upload_wrong_md5",
                    self.fields(None, Some(name), Md5::Wrong, len),
                )
            }
            78..83 => {
                let (len, name) = (self.size(), self.name());
                let bad = (*pick(
                    &mut self.rng,
                    &[
                        "abc",
                        "",
                        "g0000000000000000000000000000000",
                        "0123456789abcdef0123456789abcdef0",
                    ],
                ))
                .to_owned();
                (
                    "upload_bad_md5",
                    self.fields(None, Some(name), Md5::Malformed(bad), len),
                )
            }
            83..92 => {
                let (len, name) = (self.size().min(70_000), self.bad_name());
                (
                    "upload_bad_name",
                    self.fields(Some("upload"), Some(name), Md5::None, len),
                )
            }
            _ => {
                let len = self.size().min(70_000);
                let op = (*pick(&mut self.rng, &["bogus", "ECHO", "Stats", ""])).to_owned();
                ("unknown_op", self.fields(Some(&op), None, Md5::None, len))
            }
        };
        Action {
            kind: kind.into(),
            ..action
        }
    }

    fn fatal(&mut self) -> Action {
        let max_header = self.shape.wire.max_header;
        let max_body = self.shape.wire.max_body;
        let raw = |text: &str, prefix: Option<u32>| Head::Raw {
            text: text.into(),
            prefix,
        };
        let (kind, head) = match self.rng.random_range(0..8) {
            0 => ("fatal_bad_length", raw("", Some(0))),
            1 => (
                "fatal_bad_length",
                raw("", Some(max_header.saturating_add(1))),
            ),
            2 => ("fatal_bad_json", raw(r#"{"file_size": 3"#, None)),
            3 => ("fatal_bad_json", raw("not json at all", None)),
            4 => ("fatal_bad_header", raw(r#"[1,2,3]"#, None)),
            5 => {
                let v = (*pick(
                    &mut self.rng,
                    &[
                        r#"{"file_size":-1}"#,
                        r#"{"file_size":"3"}"#,
                        r#"{"file_size":1.5}"#,
                        r#"{"op":"echo"}"#,
                        r#"{"op":5,"file_size":0}"#,
                    ],
                ))
                .to_owned();
                ("fatal_bad_header", raw(&v, None))
            }
            _ => {
                let mut a = self.fields(None, None, Md5::None, 0);
                if let Head::Fields { file_size, .. } = &mut a.head {
                    *file_size = Some(json!(max_body.saturating_add(1)));
                }
                return Action {
                    kind: "fatal_too_large".into(),
                    ..a
                };
            }
        };
        Action {
            kind: kind.into(),
            head,
            body: Body { len: 0, fill: 0 },
            sent: None,
        }
    }

    fn datagram(&mut self) -> Body {
        let r = &mut self.rng;
        let len = match r.random_range(0..10) {
            0 => 0,
            1..5 => r.random_range(1..=64),
            5..8 => *pick(r, &[1471, 1472, 1473, 8192, 9000, 32768]),
            _ => *pick(r, &[65506, 65507, 60000]),
        };
        Body {
            len,
            fill: r.random(),
        }
    }
}

/// Offsets where one frame ends and the next begins.
pub fn frame_boundaries(actions: &[Action], endian: Endian) -> Vec<u64> {
    let mut at = 0;
    let mut out = Vec::new();
    for a in &actions[..actions.len().saturating_sub(1)] {
        at += a.wire(endian).len() as u64;
        out.push(at);
    }
    out
}

fn pick<'a, T>(rng: &mut StdRng, from: &'a [T]) -> &'a T {
    &from[rng.random_range(0..from.len())]
}

/// The shape for a target with the contract's defaults.
pub fn default_shape(endian: Endian, concurrent: bool) -> Shape {
    Shape {
        wire: WireConfig {
            endian,
            max_header: sockbench_wire::DEFAULT_MAX_HEADER,
            max_body: sockbench_wire::DEFAULT_MAX_BODY,
        },
        concurrent,
        udp: true,
        tcp: true,
        max_body: 4 << 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_programs_and_another_does_not() {
        let shape = default_shape(Endian::Little, true);
        let a: Vec<Program> = {
            let mut g = Generator::new(5, shape);
            (0..50).map(|_| g.program()).collect()
        };
        let b: Vec<Program> = {
            let mut g = Generator::new(5, shape);
            (0..50).map(|_| g.program()).collect()
        };
        let c: Vec<Program> = {
            let mut g = Generator::new(6, shape);
            (0..50).map(|_| g.program()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn programs_are_well_formed() {
        let mut g = Generator::new(1, default_shape(Endian::Little, false));
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let p = g.program();
            let mut q = p.clone();
            q.normalize(Endian::Little);
            assert_eq!(p, q, "a generated program is already normal");
            for (i, c) in p.conns.iter().enumerate() {
                let len = p.stream(i, Endian::Little).len() as u64;
                assert!(c.cuts.windows(2).all(|w| w[0] < w[1]));
                assert!(c.cuts.iter().all(|&x| x > 0 && x < len));
                // Only the last action may be fatal or cut short.
                for a in &c.actions[..c.actions.len() - 1] {
                    assert!(a.sent.is_none() && !a.kind.starts_with("fatal"), "{a:?}");
                }
                kinds.extend(c.actions.iter().map(|a| a.kind.clone()));
            }
            // Not concurrent: each connection's slots are contiguous.
            let order: Vec<usize> = p
                .schedule
                .iter()
                .filter_map(|s| match s {
                    Slot::Tcp(c) => Some(*c),
                    Slot::Udp(_) => None,
                })
                .collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
        }
        for k in [
            "echo",
            "echo_hold_edge",
            "stats",
            "upload",
            "upload_wrong_md5",
            "upload_bad_name",
            "unknown_op",
            "fatal_bad_json",
            "fatal_too_large",
            "echo_truncated",
        ] {
            assert!(kinds.contains(k), "{k} never generated: {kinds:?}");
        }
    }
}
