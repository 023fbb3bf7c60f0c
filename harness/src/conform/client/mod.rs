//! `sockbench conform --client`: a hostile server for anybody's client.
//!
//! Each case starts the client with its placeholders filled in (a port, a
//! file sockbench made, where to write), serves it as the case's plan says
//! ([`hostile`]), and judges what the client did: what it wrote or
//! printed, how it exited, whether it hung. Results are a `ConformRun`, so
//! reports and findings are the server suite's.
//!
//! - [`cases`]: the catalogue (section 9 of docs/cases.md);
//! - [`hostile`]: the server side, per task and plan;
//! - [`program`]: the client as a process, with its deadline.

pub mod cases;
pub mod hostile;
pub mod program;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

pub use cases::{ClientCase, Expect, Plan, Task};
use hostile::{Script, Seen};
use program::{Ended, Places};

use super::runner::case_seed;
use crate::dialect::{Counts, Dialect, Echo, Reply, codec};
use crate::measure::units::{last_line, show};
use crate::peer::wirelog::WireLog;
use crate::proxy::{Faults, Proxy};
use crate::schema::conform::{CaseInfo, CaseRun, ConformRun, Outcome, TargetInfo};
use crate::target::server::{Launch, Server};
use crate::target::{TargetSpec, process::NO_ADDRESS};

/// Where a fetching client puts the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Printed on stdout (the command client's output).
    Stdout,
    /// Written to `{out}`, or to the name the reply's header carries, in
    /// its working directory (a download).
    File,
}

/// A client run's inputs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's command line, with placeholders.
    pub command: String,
    /// Its column name.
    pub label: String,
    /// What it does.
    pub tasks: Vec<Task>,
    /// Where a fetch's body goes.
    pub output: Output,
    /// Datagrams instead of a stream (the echo task).
    pub udp: bool,
    /// Its stdin (read once: a pipe may be given), placeholders filled in.
    pub stdin: Option<String>,
    /// How to frame.
    pub dialect: Dialect,
    /// The cases selected.
    pub cases: Vec<ClientCase>,
    /// How long the client has per case.
    pub deadline: Duration,
    /// Seed of every body and piece.
    pub seed: u64,
    /// Cases at once.
    pub jobs: usize,
    /// Failed cases are run this many times more (a pass: `flaky`).
    pub reruns: usize,
    /// A flaky case does not fail the run.
    pub allow_flaky: bool,
    /// Random segmentations drawn by the explore case (9.33).
    pub explore: usize,
    /// sockbench itself, for the session task's server.
    pub exe: PathBuf,
}

/// The body a fetch sends by default: three reads of 1,024 and change.
const FETCH_BODY: usize = 3000;
/// The name a fetch reply carries.
const FETCH_NAME: &str = "fetched.bin";
/// The upload's size (a slow reader's is larger, to outlast the buffers).
const UPLOAD_BODY: usize = (1 << 20) + 17;
/// See [`UPLOAD_BODY`].
const SLOW_UPLOAD_BODY: usize = 4 << 20;
/// The largest UDP payload on IPv4.
const UDP_MAX: usize = 65_507;

/// Which cases a client declared by its tasks (and transport) can be asked.
pub fn applicable(c: &ClientCase, tasks: &[Task], udp: bool) -> bool {
    tasks.contains(&c.task) && (c.task != Task::Echo || c.udp() == udp)
}

/// Runs every case on the client, in parallel; the run's results.
pub fn run(opts: &ClientOptions) -> ConformRun {
    let started = Instant::now();
    let session = opts
        .cases
        .iter()
        .any(|c| c.task == Task::Session && opts.dialect.contract)
        .then(|| {
            Server::start(
                &TargetSpec::Backend("blocking".into()),
                &opts.exe,
                &Launch::new("the session task's server"),
            )
            .map_err(|e| e.to_string())
        });
    let next = AtomicUsize::new(0);
    let mut results: Vec<CaseRun> = thread::scope(|s| {
        let workers: Vec<_> = (0..opts.jobs.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(c) = opts.cases.get(i) else { break };
                        out.push(with_reruns(c, opts, session.as_ref()));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|r| opts.cases.iter().position(|c| c.id == r.case));
    ConformRun::new(
        opts.seed,
        started,
        vec![TargetInfo {
            name: opts.label.clone(),
            kind: "client".into(),
            detail: opts.command.clone(),
            stopped_after: None,
            condition: None,
            base: None,
            dialect: (opts.dialect.name != "sockbench").then(|| opts.dialect.name.clone()),
            notes: vec![format!(
                "tasks: {}",
                opts.tasks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }],
        opts.cases
            .iter()
            .map(|c| CaseInfo {
                id: c.id.into(),
                name: c.name.into(),
                category: cases::CATEGORY.into(),
                title: c.title.into(),
                rule: c.rule.into(),
            })
            .collect(),
        results,
    )
}

/// A case, run again after a failure as `--rerun` says.
fn with_reruns(
    c: &ClientCase,
    opts: &ClientOptions,
    session: Option<&Result<Server, String>>,
) -> CaseRun {
    if c.plan == Plan::Explore {
        return explore(c, opts, session);
    }
    let mut r = one(c, opts, session, opts.seed, &[]);
    if matches!(r.outcome, Outcome::Fail) {
        for i in 0..opts.reruns {
            let again = one(c, opts, session, opts.seed.wrapping_add(i as u64 + 1), &[]);
            r.rerun = Some(again.outcome);
            if again.outcome == Outcome::Pass {
                r.flaky_allowed = opts.allow_flaky;
                break;
            }
        }
    }
    r
}

/// At most this many client runs shrink an explored failure.
const SHRINK_RUNS: usize = 40;

/// The explore case: `opts.explore` random segmentations of the fetch
/// reply (cuts drawn in the prefix, the header and the body alike); the
/// first that fails is shrunk by dropping cuts while it still fails.
fn explore(
    c: &ClientCase,
    opts: &ClientOptions,
    session: Option<&Result<Server, String>>,
) -> CaseRun {
    let start = Instant::now();
    let mut r = CaseRun::new(c.id, &opts.label, Outcome::Pass);
    if opts.explore == 0 {
        r.outcome = Outcome::Unsupported;
        r.reason = Some("--client-explore 0: no segmentation drawn".into());
        return r;
    }
    if let Some(why) = unsupported(c, &opts.dialect) {
        r.outcome = Outcome::Unsupported;
        r.reason = Some(why);
        return r;
    }
    // The reply's layout, as `one` will build it for this seed.
    let body = fetch_body(FETCH_BODY, opts.output, &mut case_rng(c, opts.seed));
    let (reply, w, h) = hostile::framed(&opts.dialect, FETCH_NAME, &body, None);
    let at = |cut: usize| {
        if cut < w {
            "prefix"
        } else if cut < w + h {
            "header"
        } else {
            "body"
        }
    };
    let mut draws = StdRng::seed_from_u64(opts.seed ^ 0x5eed);
    for i in 0..opts.explore {
        let mut cuts: Vec<usize> = (0..draws.random_range(1..=4))
            .map(|_| match draws.random_range(0..3) {
                0 => draws.random_range(1..w.max(2)),
                1 if h > 1 => draws.random_range(w + 1..w + h),
                _ => draws.random_range(w + h + 1..reply.len().max(w + h + 2)),
            })
            .filter(|&k| k < reply.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let first = one(c, opts, session, opts.seed, &cuts);
        if first.outcome != Outcome::Fail {
            continue;
        }
        let mut failed = first;
        let mut runs = 0;
        'shrink: loop {
            for j in 0..cuts.len() {
                if runs >= SHRINK_RUNS {
                    break 'shrink;
                }
                let mut fewer = cuts.clone();
                fewer.remove(j);
                runs += 1;
                let again = one(c, opts, session, opts.seed, &fewer);
                if again.outcome == Outcome::Fail {
                    cuts = fewer;
                    failed = again;
                    continue 'shrink;
                }
            }
            break;
        }
        let place = cuts.first().map_or("body", |&k| at(k));
        let shown: Vec<String> = cuts
            .iter()
            .map(|k| format!("{k} (in the {})", at(*k)))
            .collect();
        failed.actual = Some(format!(
            "draw {} of {} failed; shrunk ({runs} more run(s)) to {} cut(s), after byte(s) {}: {}",
            i + 1,
            opts.explore,
            cuts.len(),
            shown.join(", "),
            failed.actual.unwrap_or_default()
        ));
        // Where the first remaining cut falls names the read that broke.
        failed.finding = Some(format!("split-{place}"));
        failed.finding_named = true;
        failed.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        return failed;
    }
    r.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    r
}

/// The random source of a case's bytes: the same for every run of it.
fn case_rng(c: &ClientCase, seed: u64) -> StdRng {
    StdRng::seed_from_u64(case_seed(seed, c.id))
}

/// Why a case cannot be asked of this client in this dialect.
fn unsupported(c: &ClientCase, d: &Dialect) -> Option<String> {
    let header = d.prefix.counts == Counts::Header;
    let why = match (c.task, c.plan) {
        (Task::Session, _) if !d.contract => {
            "the session task is the sockbench contract's; this dialect is not".to_owned()
        }
        (Task::Upload, _) if !d.uploads() || !header => {
            format!("dialect {} has no uploads", d.name)
        }
        (Task::Upload, Plan::SplitPrefix | Plan::Silent) if d.upload_reply == Reply::None => {
            format!("dialect {} sends no reply to an upload", d.name)
        }
        (Task::Echo, _) if c.udp() && d.udp == Echo::None => {
            format!("dialect {} has no UDP echo", d.name)
        }
        (Task::Echo, _) if !c.udp() && !d.echoes() => {
            format!("dialect {} has no TCP echo", d.name)
        }
        (_, Plan::SplitHeader | Plan::Header(_)) if !header => {
            format!("dialect {} frames without a header", d.name)
        }
        _ => return None,
    };
    Some(why)
}

/// The lines an echoing client sends: text, one long enough to be split.
fn echo_lines(plan: Plan) -> Vec<Vec<u8>> {
    match plan {
        Plan::UdpLarge => vec!["large datagram ".bytes().cycle().take(UDP_MAX).collect()],
        Plan::UdpEcho | Plan::UdpLost => vec![
            b"hello".to_vec(),
            "sticky packets 粘包".as_bytes().to_vec(),
            b"bye".to_vec(),
        ],
        _ => vec![
            b"hello".to_vec(),
            "sticky packets 粘包".as_bytes().to_vec(),
            b"0123456789abcdefghijklmnopqrstuvwxyz"
                .iter()
                .copied()
                .cycle()
                .take(FETCH_BODY)
                .collect(),
            b"bye".to_vec(),
        ],
    }
}

/// A body of `n` bytes: printable text (lines of 64) for stdout, any
/// bytes for a file.
fn fetch_body(n: usize, output: Output, rng: &mut StdRng) -> Vec<u8> {
    const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -";
    (0..n)
        .map(|i| match output {
            Output::Stdout if i % 65 == 64 => b'\n',
            Output::Stdout => TEXT[rng.random_range(0..TEXT.len())],
            Output::File => rng.random(),
        })
        .collect()
}

/// What the client was given: the file and what it should produce.
struct Given {
    file: PathBuf,
    /// A fetch's body.
    body: Arc<Vec<u8>>,
    /// An upload's bytes, or the echo lines.
    sent: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

fn prepare(
    c: &ClientCase,
    opts: &ClientOptions,
    dir: &Path,
    rng: &mut StdRng,
) -> std::io::Result<Given> {
    let mut g = Given {
        file: dir.join("input.txt"),
        body: Arc::new(Vec::new()),
        sent: Vec::new(),
        lines: Vec::new(),
    };
    match c.task {
        Task::Fetch => {
            let n = match c.plan {
                Plan::Body(n) => n,
                _ => FETCH_BODY,
            };
            g.body = Arc::new(fetch_body(n, opts.output, rng));
            // What a download client may ask for by name.
            std::fs::write(&g.file, format!("{FETCH_NAME}\n"))?;
        }
        Task::Upload => {
            let n = if c.plan == Plan::SlowReader {
                SLOW_UPLOAD_BODY
            } else {
                UPLOAD_BODY
            };
            g.sent = (0..n).map(|_| rng.random()).collect();
            g.file = dir.join(format!("upload-{}.bin", c.id.replace('.', "-")));
            std::fs::write(&g.file, &g.sent)?;
        }
        Task::Echo => {
            g.lines = echo_lines(c.plan);
            g.file = dir.join("lines.txt");
            std::fs::write(&g.file, g.lines.join(&b"\n"[..]))?;
        }
        Task::Session => std::fs::write(&g.file, b"")?,
    }
    Ok(g)
}

/// One run of one case.
fn one(
    c: &ClientCase,
    opts: &ClientOptions,
    session: Option<&Result<Server, String>>,
    seed: u64,
    cuts: &[usize],
) -> CaseRun {
    let start = Instant::now();
    let mut r = CaseRun::new(c.id, &opts.label, Outcome::Pass);
    if let Some(why) = unsupported(c, &opts.dialect) {
        r.outcome = Outcome::Unsupported;
        r.reason = Some(why);
        return r;
    }
    let harness = |mut r: CaseRun, e: String| {
        r.outcome = Outcome::HarnessError;
        r.reason = Some(e);
        r
    };
    let seed_of_case = case_seed(seed, c.id);
    let mut rng = case_rng(c, seed);
    let dir = match tempfile::Builder::new()
        .prefix("sockbench-client-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return harness(r, format!("cannot make the case's directory: {e}")),
    };
    let given = match prepare(c, opts, dir.path(), &mut rng) {
        Ok(g) => g,
        Err(e) => return harness(r, format!("cannot write the client's input: {e}")),
    };
    let listener = match hostile::listen(c.plan) {
        Ok(l) => l,
        Err(e) => return harness(r, format!("cannot listen on 127.0.0.1: {e}")),
    };
    let udp = match UdpSocket::bind("127.0.0.1:0") {
        Ok(u) => u,
        Err(e) => return harness(r, format!("cannot bind UDP on 127.0.0.1: {e}")),
    };
    let port = |a: std::io::Result<SocketAddr>| a.map_or(0, |a| a.port());
    let mut places = Places {
        tcp_port: port(listener.local_addr()),
        udp_port: port(udp.local_addr()),
        file: given.file.clone(),
        out: dir.path().join("out.bin"),
        dir: dir.path().to_path_buf(),
    };
    // The session task's server is ours, behind a proxy that delivers as
    // the plan says.
    let _proxy = match (c.task, session) {
        (Task::Session, Some(Ok(server))) => {
            let faults = match c.plan {
                Plan::Pieces => Faults {
                    slice: Some(crate::proxy::faults::Span { lo: 1, hi: 16 }),
                    seed: seed_of_case,
                    ..Faults::default()
                },
                _ => Faults::default(),
            };
            match Proxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), server.tcp(), faults) {
                Ok(p) => {
                    places.tcp_port = p.addr().port();
                    places.udp_port = server
                        .udp()
                        .filter(|a| *a != NO_ADDRESS)
                        .map_or(0, |a| a.port());
                    Some(p)
                }
                Err(e) => return harness(r, format!("cannot start the proxy: {e}")),
            }
        }
        (Task::Session, Some(Err(e))) => {
            return harness(r, format!("cannot start our server: {e}"));
        }
        _ => None,
    };
    let script = Script {
        dialect: opts.dialect.clone(),
        task: c.task,
        plan: c.plan,
        body: given.body.clone(),
        name: FETCH_NAME.into(),
        seed: seed_of_case,
        cuts: cuts.to_vec(),
    };
    let log = WireLog::default();
    let stop = AtomicBool::new(false);
    // The server side may outlive the client a little (draining).
    let until = Instant::now() + opts.deadline + Duration::from_secs(2);
    let (ended, seen) = thread::scope(|s| {
        let server = s.spawn(|| match (c.task, c.udp()) {
            (Task::Session, _) => Seen::default(),
            (_, true) => hostile::serve_udp(&udp, &opts.dialect, c.plan, &log, &stop, until),
            (_, false) => hostile::serve_tcp(&listener, &script, &log, &stop, until),
        });
        let ended = program::run(&opts.command, &places, opts.stdin.as_deref(), opts.deadline);
        stop.store(true, Ordering::SeqCst);
        (ended, server.join().unwrap_or_default())
    });
    let ended = match ended {
        Ok(e) => e,
        Err(e) => return harness(r, e.to_string()),
    };
    let (events, dropped) = log.snapshot();
    let v = judge(c, opts, &given, &ended, &seen, &places);
    r.outcome = v.outcome;
    r.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    if r.outcome != Outcome::Pass {
        r.expected = Some(v.expected);
        r.actual = Some(v.actual);
        r.reason = v.reason.or(seen.trouble);
        r.wire_log = events;
        r.wire_log_dropped = dropped;
        r.stderr_tail = Some(ended.stderr.clone()).filter(|s| !s.trim().is_empty());
        r.finding = v.finding.map(Into::into);
        r.finding_named = v.finding.is_some();
        r.finding_detail = v.detail;
    }
    r
}

/// A verdict and its evidence.
struct Verdict {
    outcome: Outcome,
    expected: String,
    actual: String,
    reason: Option<String>,
    finding: Option<&'static str>,
    detail: Option<String>,
}

/// How the process ended, in words.
fn how_it_ended(e: &Ended, deadline: Duration) -> String {
    match e.status {
        None => format!("it was still running after {deadline:?} (killed)"),
        Some(s) => match s.code() {
            Some(code) => format!("it exited with status {code}"),
            None => format!("it ended by {s}"),
        },
    }
}

/// The last line of its stderr, when it printed a traceback or an error.
fn last_words(e: &Ended) -> Option<String> {
    last_line(&e.stderr).map(str::to_owned)
}

/// Whether an interactive client's exit is the end of its input: Python's
/// `input()` raises EOFError once `--stdin` runs out, as it would at a
/// terminal's Ctrl-D.
fn end_of_input(e: &Ended, stdin: bool) -> bool {
    stdin && last_words(e).is_some_and(|l| l.starts_with("EOFError"))
}

/// How many leading bytes of `want` appear in `got` from where its first
/// bytes do.
fn printed_prefix(got: &[u8], want: &[u8]) -> usize {
    let probe = &want[..want.len().min(16)];
    if probe.is_empty() {
        return 0;
    }
    got.windows(probe.len())
        .enumerate()
        .filter(|(_, w)| *w == probe)
        .map(|(at, _)| {
            got[at..]
                .iter()
                .zip(want)
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn judge(
    c: &ClientCase,
    opts: &ClientOptions,
    g: &Given,
    e: &Ended,
    seen: &Seen,
    places: &Places,
) -> Verdict {
    let mut v = Verdict {
        outcome: Outcome::Fail,
        expected: c.rule.to_owned(),
        actual: how_it_ended(e, opts.deadline),
        reason: None,
        finding: None,
        detail: None,
    };
    let stdout = e.stdout(96 << 20);
    let said = |actual: &str| {
        let mut a = actual.to_owned();
        if !stdout.is_empty() {
            a.push_str(&format!(
                "; it printed {} byte(s): {}",
                stdout.len(),
                show(&stdout[..stdout.len().min(200)], 80)
            ));
        }
        if let Some(l) = last_words(e) {
            a.push_str(&format!("; its stderr ended with: {l}"));
        }
        a
    };
    let Some(status) = e.status else {
        v.actual = said(&format!(
            "{}{}",
            how_it_ended(e, opts.deadline),
            if seen.connected {
                ""
            } else {
                "; it never connected"
            }
        ));
        v.finding = Some("hangs");
        v.detail = Some(format!("{:?}", opts.deadline));
        return v;
    };
    if matches!(status.code(), Some(127 | 89)) {
        v.outcome = Outcome::Unsupported;
        v.reason = Some(format!(
            "the client exited {}: it does not do this (exit 127 or 89 means unsupported)",
            status.code().unwrap_or_default()
        ));
        return v;
    }
    match c.expect {
        Expect::GivesUp => {
            v.outcome = Outcome::Pass;
            return v;
        }
        Expect::Refused => {
            // An interactive client that went on to its next command took
            // the reply as whole too.
            if status.success() || end_of_input(e, opts.stdin.is_some()) {
                let cut = seen
                    .cut_at
                    .map(|n| format!(" after the reply was cut at byte {n}"))
                    .unwrap_or_default();
                let how = if status.success() {
                    "it exited with status 0"
                } else {
                    "it read its next command"
                };
                v.actual = said(&format!("{how}{cut}, as if the reply were whole"));
                v.finding = Some("accepts-cut-reply");
            } else {
                v.outcome = Outcome::Pass;
            }
            return v;
        }
        Expect::Exact => {}
    }
    let ok_exit = status.success() || end_of_input(e, opts.stdin.is_some());
    let split = matches!(
        c.plan,
        Plan::SplitPrefix
            | Plan::SplitHeader
            | Plan::SplitBody
            | Plan::Pieces
            | Plan::Header(_)
            | Plan::Explore
    );
    if !ok_exit {
        v.actual = said(&how_it_ended(e, opts.deadline));
        // A traceback's last line; else what it printed last (a check
        // that failed says so on stdout); else how it ended.
        let words = last_words(e)
            .or_else(|| last_line(&String::from_utf8_lossy(&stdout)).map(str::to_owned))
            .unwrap_or_else(|| how_it_ended(e, opts.deadline));
        if split || c.task == Task::Session {
            v.finding = Some(c.finding);
            v.detail = Some(words);
        } else {
            v.finding = Some("process-died");
            v.detail = Some(format!("{}: {words}", how_it_ended(e, opts.deadline)));
        }
        return v;
    }
    let wrong: Option<(String, &'static str, Option<String>)> = match (c.task, c.udp()) {
        (Task::Session, _) => None,
        (Task::Fetch, _) => fetch_wrong(c, opts, g, &stdout, places),
        (Task::Upload, _) => upload_wrong(&opts.dialect, g, seen),
        (Task::Echo, udp) => echo_wrong(c, &opts.dialect, g, &stdout, udp),
    };
    match wrong {
        None => v.outcome = Outcome::Pass,
        Some((actual, finding, detail)) => {
            v.actual = said(&actual);
            v.finding = Some(finding);
            v.detail = detail;
        }
    }
    v
}

/// What is wrong with a fetch's output, if anything.
fn fetch_wrong(
    c: &ClientCase,
    opts: &ClientOptions,
    g: &Given,
    stdout: &[u8],
    places: &Places,
) -> Option<(String, &'static str, Option<String>)> {
    let want = g.body.as_slice();
    match opts.output {
        Output::Stdout => {
            let glued = c.plan == Plan::Glued && contains(stdout, hostile::NEXT);
            if contains(stdout, want) && !glued {
                return None;
            }
            if glued {
                return Some((
                    format!(
                        "it printed the body and then bytes of the next frame ({:?})",
                        String::from_utf8_lossy(hostile::NEXT)
                    ),
                    "reads-past-body",
                    None,
                ));
            }
            let m = printed_prefix(stdout, want);
            Some((
                format!(
                    "it printed the first {m} of the body's {} bytes, not all of them",
                    want.len()
                ),
                c.finding,
                Some(format!("{m} of {} bytes", want.len())),
            ))
        }
        Output::File => {
            let named = places.dir.join(FETCH_NAME);
            let path = [&places.out, &named].into_iter().find(|p| p.exists());
            let Some(path) = path else {
                return Some((
                    format!(
                        "it wrote no file: neither {} nor {FETCH_NAME} in its directory",
                        places.out.display()
                    ),
                    c.finding,
                    None,
                ));
            };
            let got = std::fs::read(path).unwrap_or_default();
            if got == want {
                return None;
            }
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if got.len() > want.len() && got.starts_with(want) {
                return Some((
                    format!(
                        "{file} holds the {}-byte body and {} more bytes after it",
                        want.len(),
                        got.len() - want.len()
                    ),
                    "reads-past-body",
                    None,
                ));
            }
            let m = got.iter().zip(want).take_while(|(a, b)| a == b).count();
            let what = if m == got.len() {
                format!(
                    "{file} holds the first {m} of the body's {} bytes",
                    want.len()
                )
            } else {
                format!(
                    "{file} holds {} bytes, differing from the body's {} at byte {m}",
                    got.len(),
                    want.len()
                )
            };
            Some((
                what,
                c.finding,
                Some(format!("{} of {} bytes", got.len(), want.len())),
            ))
        }
    }
}

/// What is wrong with the upload the server received, if anything.
fn upload_wrong(
    d: &Dialect,
    g: &Given,
    seen: &Seen,
) -> Option<(String, &'static str, Option<String>)> {
    use md5::Digest as _;
    let got = &seen.received;
    let w = usize::from(d.prefix.width);
    let n = match codec::frame_len(d, got) {
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            return Some((
                format!(
                    "it sent something that is not an upload of dialect {}: {e}",
                    d.name
                ),
                "upload-wrong",
                None,
            ));
        }
        None => {
            let hl = codec::read_prefix(d, got)
                .and_then(Result::ok)
                .map_or(0, |v| v as usize);
            let body = got.len().saturating_sub(w + hl);
            return Some((
                format!(
                    "{} of the file's {} bytes arrived before it closed the connection ({} bytes in all)",
                    body.min(g.sent.len()),
                    g.sent.len(),
                    got.len()
                ),
                "upload-truncated",
                Some(format!("{body} of {} bytes", g.sent.len())),
            ));
        }
    };
    let hl = codec::read_prefix(d, got)
        .and_then(Result::ok)
        .map_or(0, |v| v as usize);
    let head: serde_json::Value = serde_json::from_slice(&got[w..w + hl]).unwrap_or_default();
    let body = &got[w + hl..n];
    if body != g.sent.as_slice() {
        let m = body.iter().zip(&g.sent).take_while(|(a, b)| a == b).count();
        return Some((
            format!(
                "the body differs from the file at byte {m} ({} bytes sent)",
                body.len()
            ),
            "upload-wrong",
            None,
        ));
    }
    let field = |f: &Option<String>| {
        f.as_ref()
            .and_then(|f| head.get(f).map(|v| (f.clone(), v.clone())))
    };
    let base = g
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((f, v)) = field(&d.fields.name)
        && v.as_str() != Some(base.as_str())
    {
        return Some((
            format!("the header's {f} is {v}, not the file's name {base:?}"),
            "upload-wrong",
            None,
        ));
    }
    if let Some((f, v)) = field(&d.fields.digest) {
        let md5 = sockbench_wire::md5_hex(&md5::Md5::digest(&g.sent).into());
        if v.as_str() != Some(md5.as_str()) {
            return Some((
                format!("the header's {f} is {v}, the file's MD5 is {md5}"),
                "upload-wrong",
                None,
            ));
        }
    }
    None
}

/// What is wrong with the printed echoes, if anything.
fn echo_wrong(
    c: &ClientCase,
    d: &Dialect,
    g: &Given,
    stdout: &[u8],
    udp: bool,
) -> Option<(String, &'static str, Option<String>)> {
    let how = if udp { d.udp } else { d.echo };
    let mut at = 0;
    for (i, line) in g.lines.iter().enumerate() {
        let want = how.apply(line).unwrap_or_default();
        match stdout[at..]
            .windows(want.len().max(1))
            .position(|w| w == want.as_slice())
        {
            Some(p) => at += p + want.len(),
            None => {
                let m = printed_prefix(&stdout[at..], &want);
                let detail = if udp && m > 0 {
                    Some(m.to_string())
                } else {
                    Some(format!("{m} of {} bytes", want.len()))
                };
                return Some((
                    format!(
                        "the echo of line {} ({} bytes) was not printed whole: {m} of its bytes were",
                        i + 1,
                        want.len()
                    ),
                    c.finding,
                    detail,
                ));
            }
        }
    }
    None
}
