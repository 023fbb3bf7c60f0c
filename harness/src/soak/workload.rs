//! The soak's mixed workload, run until a deadline: connection churn,
//! long-lived connections echoing bodies of every size, uploads with md5
//! mismatches and bad names, errors that keep or close the connection, idle
//! connections and UDP. Paced, not flat out: a soak looks for what grows
//! over time, and every reply is checked, so a wrong byte fails it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sockbench_wire::WireConfig;

use crate::peer::client::{Client, ClientError, Frame};
use crate::peer::frames::payload;

/// What to run against, and until when.
#[derive(Debug, Clone)]
pub struct WorkloadPlan {
    /// The server's TCP address.
    pub tcp: SocketAddr,
    /// Its UDP address, when it has one.
    pub udp: Option<SocketAddr>,
    /// Its byte order and limits.
    pub wire: WireConfig,
    /// Several connections at once (the ready line's `concurrent`); when
    /// false the workload holds one connection at a time.
    pub concurrent: bool,
    /// Idle connections held open.
    pub idle: usize,
    /// When the workload stops.
    pub until: Instant,
    /// Seed of sizes, choices and bodies.
    pub seed: u64,
}

/// The deadline of every wait: a server that takes longer is not answering.
const WAIT: Duration = Duration::from_secs(5);
/// Wrong replies described in full; the rest are counted.
const DESCRIBED: usize = 20;

/// What the workload did and what went wrong, shared by its threads.
#[derive(Debug)]
pub struct SoakTally {
    start: Instant,
    ops: Mutex<BTreeMap<String, u64>>,
    wrong: Mutex<Vec<String>>,
    wrong_total: AtomicU64,
    udp_lost: AtomicU64,
}

impl Default for SoakTally {
    /// An empty tally; wrong replies are timed from now.
    fn default() -> SoakTally {
        SoakTally {
            start: Instant::now(),
            ops: Mutex::default(),
            wrong: Mutex::default(),
            wrong_total: AtomicU64::new(0),
            udp_lost: AtomicU64::new(0),
        }
    }
}

impl SoakTally {
    fn op(&self, kind: &str) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        *ops.entry(kind.to_owned()).or_default() += 1;
    }

    fn wrong(&self, what: String) {
        self.wrong_total.fetch_add(1, Ordering::Relaxed);
        let mut w = self.wrong.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() < DESCRIBED {
            w.push(format!(
                "at {:.1} s: {what}",
                self.start.elapsed().as_secs_f64()
            ));
        }
    }

    /// Operations by kind.
    pub fn ops(&self) -> BTreeMap<String, u64> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first wrong replies, described, and how many there were.
    pub fn wrong_replies(&self) -> (Vec<String>, u64) {
        let w = self.wrong.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (w, self.wrong_total.load(Ordering::Relaxed))
    }

    /// UDP echoes that never came.
    pub fn udp_lost(&self) -> u64 {
        self.udp_lost.load(Ordering::Relaxed)
    }
}

/// Runs the workload until `plan.until`; every role on its own thread, or
/// all in turn on one connection at a time for a target that is not
/// concurrent.
pub fn run(plan: &WorkloadPlan, tally: &SoakTally) {
    let end = plan.until;
    let fail = |what: Wrong| tally.wrong(what.to_string());
    let role = |n: u64| StdRng::seed_from_u64(plan.seed.wrapping_add(n));
    if !plan.concurrent {
        let mut rng = role(0);
        let mut next = Instant::now();
        while pace(&mut next, Duration::from_millis(20), end) {
            let step = rng.random_range(0..4u8);
            let r = match step {
                0 => churn(plan, tally, &mut rng),
                1 => Session::open(plan).and_then(|mut s| s.echoes(tally, &mut rng, 8)),
                2 => Session::open(plan).and_then(|mut s| s.uploads(tally, &mut rng, 4)),
                _ => udp(plan, tally, &mut rng),
            };
            if let Err(e) = r {
                fail(e);
            }
        }
        return;
    }
    thread::scope(|s| {
        s.spawn(|| {
            let mut rng = role(1);
            let mut next = Instant::now();
            while pace(&mut next, Duration::from_millis(25), end) {
                if let Err(e) = churn(plan, tally, &mut rng) {
                    fail(e);
                }
            }
        });
        for n in 0..2 {
            s.spawn(move || {
                let mut rng = role(2 + n);
                long_lived(plan, tally, &mut rng, |s, t, r| s.echoes(t, r, 1), 5);
            });
        }
        s.spawn(|| {
            let mut rng = role(4);
            long_lived(plan, tally, &mut rng, |s, t, r| s.uploads(t, r, 1), 40);
        });
        s.spawn(|| idle(plan, tally, &mut role(5)));
        if plan.udp.is_some() {
            s.spawn(|| {
                let mut rng = role(6);
                let mut next = Instant::now();
                while pace(&mut next, Duration::from_millis(20), end) {
                    if let Err(e) = udp(plan, tally, &mut rng) {
                        fail(e);
                    }
                }
            });
        }
    });
}

/// Sleeps until `next`, then moves it on by `gap`; false once `end` passed.
fn pace(next: &mut Instant, gap: Duration, end: Instant) -> bool {
    let now = Instant::now();
    if *next > now {
        thread::sleep(*next - now);
    }
    *next = (*next + gap).max(now);
    Instant::now() < end
}

/// One connection, its requests checked.
struct Session {
    c: Client,
    wire: WireConfig,
    n: u64,
}

impl Session {
    fn open(plan: &WorkloadPlan) -> Result<Session, Wrong> {
        let c = Client::connect(plan.tcp, plan.wire, WAIT)
            .map_err(|source| Wrong::exchange(format!("connect to {}", plan.tcp), source))?;
        Ok(Session {
            c,
            wire: plan.wire,
            n: 0,
        })
    }

    fn request(&mut self, header: &Value, body: &[u8], what: &str) -> Result<Frame, Wrong> {
        self.c
            .request(header, body, WAIT)
            .map_err(|source| Wrong::exchange(what, source))
    }

    /// One echo of a size drawn from every path a server has: empty, small,
    /// glued-sized, and bodies past any hold buffer, streamed.
    fn echo(&mut self, tally: &SoakTally, rng: &mut StdRng, sizes: &[usize]) -> Result<(), Wrong> {
        self.n += 1;
        let size = sizes[rng.random_range(0..sizes.len())];
        let header = json!({"op": "echo", "file_size": size, "id": self.n});
        let body = payload(size, rng.random());
        let f = self.request(&header, &body, &format!("echo of {size} bytes"))?;
        let sent = serde_json::to_vec(&header).unwrap_or_default();
        if f.raw != sent || f.body != body {
            return Err(Wrong::reply(
                format!("echo of {size} bytes"),
                format!(
                    "came back altered ({} header bytes, {} body bytes)",
                    f.raw.len(),
                    f.body.len()
                ),
            ));
        }
        tally.op("echo");
        Ok(())
    }

    /// `count` echoes; one in 16 is an unknown op, an error that keeps the
    /// connection.
    fn echoes(&mut self, tally: &SoakTally, rng: &mut StdRng, count: usize) -> Result<(), Wrong> {
        const SIZES: [usize; 8] = [0, 1, 64, 1024, 4096, 16_384, 65_536, 262_144];
        for _ in 0..count {
            if rng.random_ratio(1, 16) {
                let f = self.request(
                    &json!({"op": "defragment", "file_size": 3}),
                    b"abc",
                    "unknown op",
                )?;
                expect_error(&f, "unknown_op")?;
                tally.op("unknown_op");
            }
            self.echo(tally, rng, &SIZES)?;
        }
        Ok(())
    }

    /// `count` uploads over 8 reused names (storage stays bounded); of
    /// every 12, 3 carry a wrong md5, 2 a bad name and 1 a malformed md5,
    /// all errors that keep the connection.
    fn uploads(&mut self, tally: &SoakTally, rng: &mut StdRng, count: usize) -> Result<(), Wrong> {
        for _ in 0..count {
            self.n += 1;
            let size = rng.random_range(1..=128 * 1024);
            let body = payload(size, rng.random());
            let md5 = sockbench_wire::md5_hex(&Md5::digest(&body).into());
            let name = format!("soak-{}", self.n % 8);
            let (header, want) = match self.n % 12 {
                1 | 5 | 9 => (
                    json!({"op": "upload", "file_name": name, "file_size": size, "md5": "0".repeat(32)}),
                    "md5_mismatch",
                ),
                2 | 7 => (
                    json!({"op": "upload", "file_name": "../soak-escape", "file_size": size}),
                    "bad_file_name",
                ),
                3 => (
                    json!({"op": "upload", "file_name": name, "file_size": size, "md5": "xyz"}),
                    "bad_md5",
                ),
                _ => (
                    json!({"op": "upload", "file_name": name, "file_size": size, "md5": md5}),
                    "ok",
                ),
            };
            let f = self.request(&header, &body, &format!("upload of {size} bytes"))?;
            if want == "ok" {
                if !f.is_ok() || f.header["bytes"] != size || f.header["md5"] != md5.as_str() {
                    return Err(Wrong::reply(
                        format!("upload of {size} bytes"),
                        format!("reply {}", f.header),
                    ));
                }
            } else {
                expect_error(&f, want)?;
                if want == "md5_mismatch" && f.header["md5"] != md5.as_str() {
                    return Err(Wrong::reply(
                        "md5_mismatch",
                        format!("without the computed md5: {}", f.header),
                    ));
                }
            }
            tally.op(if want == "ok" { "upload_ok" } else { want });
        }
        Ok(())
    }
}

fn expect_error(f: &Frame, code: &str) -> Result<(), Wrong> {
    if f.error_code() == Some(code) {
        Ok(())
    } else {
        Err(Wrong::reply(
            format!("expected error {code}"),
            format!("got {}", f.header),
        ))
    }
}

/// What went wrong in one exchange of the soak: counted and described,
/// never fatal to the run.
#[derive(Debug, thiserror::Error)]
pub enum Wrong {
    /// Connecting, sending or receiving failed.
    #[error("{what}: {source}")]
    Exchange {
        /// What was being done.
        what: String,
        /// How it failed.
        #[source]
        source: ClientError,
    },
    /// A reply the protocol does not allow.
    #[error("{what}: {got}")]
    Reply {
        /// What was asked.
        what: String,
        /// What came back.
        got: String,
    },
}

impl Wrong {
    fn exchange(what: impl Into<String>, source: ClientError) -> Wrong {
        Wrong::Exchange {
            what: what.into(),
            source,
        }
    }

    fn reply(what: impl Into<String>, got: impl Into<String>) -> Wrong {
        Wrong::Reply {
            what: what.into(),
            got: got.into(),
        }
    }
}

/// A connection for 1 to 3 echoes, then one of: a clean close, a fatal
/// error (bad JSON: the reply, then the server closes), or a frame cut off
/// mid-header (no reply; the server discards it).
fn churn(plan: &WorkloadPlan, tally: &SoakTally, rng: &mut StdRng) -> Result<(), Wrong> {
    let mut s = Session::open(plan)?;
    for _ in 0..rng.random_range(1..=3) {
        s.echo(tally, rng, &[0, 5, 100, 2048])?;
    }
    match rng.random_range(0..8u8) {
        0 => {
            let bad = b"{\"file_size\":";
            let mut frame = s.wire.endian.write_u32(bad.len() as u32).to_vec();
            frame.extend_from_slice(bad);
            s.c.send_raw(&frame)
                .map_err(|e| Wrong::exchange("bad json", e))?;
            let f =
                s.c.recv(WAIT)
                    .map_err(|e| Wrong::exchange("bad json reply", e))?;
            expect_error(&f, "bad_json")?;
            match s.c.expect_close(WAIT) {
                Ok(()) | Err(ClientError::Io(_)) => tally.op("bad_json_closed"),
                Err(e) => {
                    return Err(Wrong::reply(
                        "after bad_json",
                        format!("the connection stayed open: {e}"),
                    ));
                }
            }
        }
        1 => {
            let mut frame = s.wire.endian.write_u32(40).to_vec();
            frame.extend_from_slice(b"{\"file_si");
            s.c.send_raw(&frame)
                .map_err(|e| Wrong::exchange("cut frame", e))?;
            tally.op("cut_off");
        }
        _ => tally.op("churn_closed"),
    }
    tally.op("connection");
    Ok(())
}

/// One connection for the whole soak, `step` every `gap_ms`; a connection
/// that fails is counted wrong and opened again.
fn long_lived(
    plan: &WorkloadPlan,
    tally: &SoakTally,
    rng: &mut StdRng,
    step: impl Fn(&mut Session, &SoakTally, &mut StdRng) -> Result<(), Wrong>,
    gap_ms: u64,
) {
    let mut next = Instant::now();
    let mut session: Option<Session> = None;
    while pace(&mut next, Duration::from_millis(gap_ms), plan.until) {
        let s = match session.as_mut() {
            Some(s) => s,
            None => match Session::open(plan) {
                Ok(s) => session.insert(s),
                Err(e) => {
                    tally.wrong(e.to_string());
                    continue;
                }
            },
        };
        if let Err(e) = step(s, tally, rng) {
            tally.wrong(e.to_string());
            session = None;
        }
    }
}

/// Holds `plan.idle` silent connections, each replaced after 5 to 45 s
/// (below our servers' 60 s idle timeout) once an echo proves it still
/// works. One the server closed while idle is counted, not judged: the
/// protocol lets a server time idle connections out.
fn idle(plan: &WorkloadPlan, tally: &SoakTally, rng: &mut StdRng) {
    let mut held: Vec<(Session, Instant)> = Vec::new();
    let mut next = Instant::now();
    while pace(&mut next, Duration::from_millis(100), plan.until) {
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) = held.into_iter().partition(|(_, at)| *at <= now);
        held = keep;
        for (mut s, _) in due {
            match s.c.request(&json!({"file_size": 2}), b"hi", WAIT) {
                Ok(f) if f.body == b"hi" => tally.op("idle_checked"),
                Ok(f) => tally.wrong(format!("idle connection's echo: {}", f.header)),
                Err(ClientError::Closed { .. } | ClientError::Io(_)) => {
                    tally.op("idle_closed_by_server")
                }
                Err(e) => tally.wrong(format!("idle connection's echo: {e}")),
            }
        }
        while held.len() < plan.idle && Instant::now() < plan.until {
            match Session::open(plan) {
                Ok(s) => {
                    let life = Duration::from_millis(rng.random_range(5_000..45_000));
                    held.push((s, Instant::now() + life));
                }
                Err(e) => {
                    tally.wrong(format!("idle connection: {e}"));
                    break;
                }
            }
        }
    }
}

/// One datagram of 0 to 8 KiB; its echo must be the same bytes. A lost
/// one is counted (UDP may lose it), a changed one is wrong.
fn udp(plan: &WorkloadPlan, tally: &SoakTally, rng: &mut StdRng) -> Result<(), Wrong> {
    let Some(addr) = plan.udp else {
        return Ok(());
    };
    let size = rng.random_range(0..=8192);
    let p = payload(size, rng.random());
    match crate::peer::client::udp_echo(addr, &p, Duration::from_secs(1)) {
        Ok(got) if got == p => {
            tally.op("udp");
            Ok(())
        }
        Ok(got) => Err(Wrong::reply(
            format!("a {size}-byte datagram"),
            format!("came back as {} different bytes", got.len()),
        )),
        Err(ClientError::Timeout(_)) => {
            tally.udp_lost.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Wrong::exchange(format!("udp echo of {size} bytes"), e)),
    }
}
