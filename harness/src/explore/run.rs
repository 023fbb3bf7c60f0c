//! Servers to explore and the loop that runs programs against them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sockbench_wire::{Endian, WireConfig};

use super::execute::{self, Addrs, Seen};
use super::generate::{Generator, Shape};
use super::judge::{self, Divergence};
use super::model;
use super::program::Program;
use crate::target::TargetSpec;
use crate::target::server::{self as target, Launch};

/// How long the storage directory may take to settle after a program (a
/// server removes a cut upload's temporary file when it sees the end).
const SETTLE: Duration = Duration::from_millis(1500);

/// A server programs run against: started by us (fresh storage we can
/// read) or already running at an address.
pub struct ExploreTarget {
    server: target::Server,
    /// Its addresses (UDP left out when it is not tested).
    pub addrs: Addrs,
    /// Serves connections concurrently.
    pub concurrent: bool,
}

/// The divergence of a server that exited during a program: the finding
/// `process-died` (docs/findings.md).
pub const PROCESS_DIED: &str = "process-died: the server exited during the program";

/// Starts (or, for an address, describes) the target.
pub fn start(spec: &TargetSpec, exe: &Path, udp: bool) -> anyhow::Result<ExploreTarget> {
    let mut launch = Launch::new("explore");
    if spec.spawns() {
        launch = launch.flags(["--no-fsync"]);
    }
    let server = target::Server::start(spec, exe, &launch)?;
    Ok(ExploreTarget {
        addrs: Addrs {
            tcp: server.tcp(),
            udp: server.udp().filter(|_| udp),
        },
        concurrent: server.concurrent(),
        server,
    })
}

impl ExploreTarget {
    /// Runs one program and judges it. The storage directory, when ours,
    /// is emptied first so that only this program's uploads count; a
    /// directory we were given is read, never emptied.
    pub fn try_program(&mut self, p: &Program, wire: WireConfig) -> (Option<Divergence>, Seen) {
        let expect = model::expect(p, wire);
        let ours = self.server.is_started();
        if ours && let Some(dir) = self.server.storage() {
            clear(dir);
        }
        let seen = execute::run(p, &expect, self.addrs, wire.endian);
        let mut d = judge::judge(p, &expect, &seen, wire.endian, None);
        if d.is_none()
            && ours
            && let Some(dir) = self.server.storage()
        {
            let deadline = Instant::now() + SETTLE;
            loop {
                let files = judge::list_storage(dir).unwrap_or_default();
                let diff = judge::storage_differs(&expect.files, &files);
                if diff.is_none() || Instant::now() > deadline {
                    d = diff;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !self.server.is_running() {
            let tail = self.server.stderr_tail();
            let last = tail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let how = self
                .server
                .child()
                .and_then(|c| c.wait_exit(Duration::ZERO))
                .map_or_else(|| "it exited".to_owned(), |s| s.to_string());
            // A dead server refuses what follows: that is not a divergence
            // of its own but the death, said as the finding it is.
            d = Some(Divergence {
                what: PROCESS_DIED.into(),
                conn: None,
                action: None,
                expected: "the server keeps serving".into(),
                actual: format!("{how}; its stderr ends: {last}"),
            });
        }
        (d, seen)
    }

    /// Stops a spawned server. Killed, not asked: its graceful exit is
    /// not what explore tests, and shrinking starts dozens of them (the
    /// Python peer's two-second grace made each try cost seconds).
    pub fn stop(mut self) {
        if let Some(s) = self.server.child() {
            s.kill();
        }
    }
}

fn clear(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The seed of program `k` of a run seeded `seed`: programs do not depend
/// on how many jobs ran them.
pub fn program_seed(seed: u64, k: u64) -> u64 {
    // SplitMix64's finalizer: neighbouring k give unrelated seeds.
    let mut z = seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The program numbered `k`; every eighth is a ping-pong that times
/// round trips.
pub fn program(seed: u64, k: u64, shape: Shape) -> Program {
    let mut g = Generator::new(program_seed(seed, k), shape);
    if k % 8 == 0 && shape.tcp {
        g.ping_pong()
    } else {
        g.program()
    }
}

/// Counts over a run, for the summary.
#[derive(Debug, Default, Clone)]
pub struct ExploreTally {
    /// Programs run to the end.
    pub programs: u64,
    /// Actions (frames and datagrams) sent.
    pub actions: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// How often each action kind was sent.
    pub kinds: std::collections::BTreeMap<String, u64>,
    /// Where cuts fell: inside a prefix, a header, a body, or at a frame boundary.
    pub cuts: std::collections::BTreeMap<&'static str, u64>,
}

impl ExploreTally {
    fn add(&mut self, p: &Program, endian: Endian) {
        let (actions, bytes, _) = p.size();
        self.programs += 1;
        self.actions += actions as u64;
        self.bytes += bytes;
        for c in &p.conns {
            let mut at = 0u64;
            let mut spans = Vec::new();
            for a in &c.actions {
                *self.kinds.entry(a.kind.clone()).or_default() += 1;
                let len = a.wire(endian).len() as u64;
                let h = a.header().0.len() as u64;
                spans.push((at, h, len));
                at += len;
            }
            for &cut in &c.cuts {
                let place = spans
                    .iter()
                    .find(|(s, _, len)| cut >= *s && cut < s + len)
                    .map_or("boundary", |&(s, h, _)| {
                        if cut == s {
                            "boundary"
                        } else if cut < s + 4 {
                            "prefix"
                        } else if cut < s + 4 + h {
                            "header"
                        } else {
                            "body"
                        }
                    });
                *self.cuts.entry(place).or_default() += 1;
            }
        }
        if !p.udp.is_empty() {
            *self.kinds.entry("udp".into()).or_default() += p.udp.len() as u64;
        }
    }
}

/// A divergence found, with the program that showed it.
#[derive(Debug, Clone)]
pub struct Found {
    /// Which program.
    pub k: u64,
    /// The program.
    pub program: Program,
    /// What differed.
    pub divergence: Divergence,
    /// The wire log of the run that showed it.
    pub log: Vec<String>,
    /// When it was found, from the start.
    pub after: Duration,
}

/// What one explore run found.
pub struct ExploreOutcome {
    /// Counts.
    pub tally: ExploreTally,
    /// The first divergence, if any.
    pub found: Option<Found>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct ExplorePlan {
    /// The run's seed.
    pub seed: u64,
    /// Stop after this long.
    pub time: Duration,
    /// Stop after this many programs.
    pub programs: Option<u64>,
    /// Programs in parallel (a server each, when spawned).
    pub jobs: usize,
    /// Program shape; `concurrent` is taken from the server.
    pub shape: Shape,
}

/// Runs programs against servers made by `make` until the time or count
/// runs out or one diverges.
pub fn explore(
    plan: ExplorePlan,
    make: &(dyn Fn() -> anyhow::Result<ExploreTarget> + Sync),
) -> anyhow::Result<ExploreOutcome> {
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(ExploreTally::default());
    let found: Mutex<Option<Found>> = Mutex::new(None);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..plan.jobs.max(1) {
            s.spawn(|| {
                let mut server = match make() {
                    Ok(srv) => srv,
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(e);
                        stop.store(true, Ordering::SeqCst);
                        return;
                    }
                };
                let shape = Shape {
                    concurrent: plan.shape.concurrent && server.concurrent,
                    ..plan.shape
                };
                while !stop.load(Ordering::SeqCst) && start.elapsed() < plan.time {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if plan.programs.is_some_and(|n| k >= n) {
                        break;
                    }
                    let p = program(plan.seed, k, shape);
                    let t = Instant::now();
                    let (d, seen) = server.try_program(&p, shape.wire);
                    log::debug!(
                        "program {k}: {:.0} ms\n{}",
                        t.elapsed().as_secs_f64() * 1e3,
                        wire_log(&seen).join("\n")
                    );
                    if let Some(d) = d {
                        stop.store(true, Ordering::SeqCst);
                        let mut f = found.lock().unwrap_or_else(PoisonError::into_inner);
                        // With several jobs, the lowest-numbered program wins.
                        if f.as_ref().is_none_or(|f| f.k > k) {
                            *f = Some(Found {
                                k,
                                program: p,
                                divergence: d,
                                log: wire_log(&seen),
                                after: start.elapsed(),
                            });
                        }
                        break;
                    }
                    tally
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .add(&p, shape.wire.endian);
                }
                server.stop();
            });
        }
    });
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e);
    }
    Ok(ExploreOutcome {
        tally: tally.into_inner().unwrap_or_else(PoisonError::into_inner),
        found: found.into_inner().unwrap_or_else(PoisonError::into_inner),
        elapsed: start.elapsed(),
    })
}

/// The wire log of a run, connection by connection.
pub fn wire_log(seen: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    for (c, conn) in seen.conns.iter().enumerate() {
        out.push(format!("connection {c}:"));
        out.extend(conn.log.iter().map(|l| format!("  {l}")));
        if let Some(e) = &conn.refused {
            out.push(format!("  {e}"));
        }
    }
    for (d, u) in seen.udp.iter().enumerate() {
        out.push(format!(
            "datagram {d}: {}",
            u.as_ref().map_or("no echo".to_owned(), |b| format!(
                "echo of {} bytes",
                b.len()
            ))
        ));
    }
    out
}
