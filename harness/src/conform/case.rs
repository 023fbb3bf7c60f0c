//! What a conformance case is, what it may ask of the target, and the
//! context it runs with.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use sockbench_wire::{Endian, WireConfig};

use crate::dialect::Dialect;
use crate::peer::client::{Client, ClientError, Frame};
use crate::peer::wirelog::{Dir, WireLog, hex};
use crate::target::process::Spawned;

/// The categories, in catalogue order.
pub const CATEGORIES: [&str; 8] = [
    "framing basics",
    "segmentation",
    "upload and MD5",
    "malformed input",
    "limits and resources",
    "concurrency and faults",
    "UDP",
    "lifecycle",
];

/// A condition of `--under`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Condition {
    /// Nothing else: the plain catalogue.
    Quiet,
    /// Idle connections held open to the server during every case.
    Idle,
    /// A background echo load during every case.
    Load,
    /// Every TCP connection of the case through a proxy that re-segments
    /// (seeded) and delays.
    Impaired,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::Quiet => "quiet",
            Condition::Idle => "idle",
            Condition::Load => "load",
            Condition::Impaired => "impaired",
        })
    }
}

/// What a case needs from its target beyond the protocol itself; a target
/// that cannot provide it makes the case UNSUPPORTED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Several connections served at once (the ready line's `concurrent`).
    pub concurrency: bool,
    /// Read access to the storage directory.
    pub storage: bool,
    /// The server is our child: signals, exit status, ready line.
    pub lifecycle: bool,
    /// The server's process id, for /proc measurements.
    pub process: bool,
}

/// Which servers a case can be asked of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// Only those speaking the whole sockbench contract (error replies,
    /// stats, the op field, limits).
    Contract,
    /// Any dialect that has what this names (`uploads`, `a TCP echo`,
    /// ...): the case writes its requests and reads its answers through
    /// the dialect, and judges by the echo or the disk.
    Any(&'static str),
}

/// How the harness asks a spawned server to be configured for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// `--endian`.
    pub endian: Endian,
    /// `--max-header`, when the case tests that limit.
    pub max_header: Option<u32>,
    /// `--max-body`, when the case tests that limit.
    pub max_body: Option<u64>,
    /// Listen on ::1 instead of 127.0.0.1.
    pub ipv6: bool,
    /// `--header-timeout` and `--idle-timeout` in milliseconds: flags of
    /// sockbench's own `serve`, beyond the contract, so a case that sets
    /// them runs only against our back-ends.
    pub header_timeout_ms: Option<u64>,
    /// See `header_timeout_ms`.
    pub idle_timeout_ms: Option<u64>,
}

impl Setup {
    /// The protocol's defaults.
    pub const DEFAULT: Setup = Setup {
        endian: Endian::Little,
        max_header: None,
        max_body: None,
        ipv6: false,
        header_timeout_ms: None,
        idle_timeout_ms: None,
    };

    /// Whether the case needs flags only sockbench's own `serve` takes.
    pub fn ours_only(&self) -> bool {
        self.header_timeout_ms.is_some() || self.idle_timeout_ms.is_some()
    }
}

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Stable dotted id, e.g. `2.5`.
    pub id: &'static str,
    /// A short slug, e.g. `chop-sizes`.
    pub name: &'static str,
    /// What it checks, in a sentence.
    pub title: &'static str,
    /// The rule of docs/protocol.md it checks, quoted, with its section.
    pub rule: &'static str,
    /// What the target must provide.
    pub needs: Needs,
    /// How a spawned server is configured.
    pub setup: Setup,
    /// Runs alone: it measures, or loads the machine.
    pub serial: bool,
    /// Its deadline.
    pub timeout: Duration,
    /// Conditions it cannot be asked under, and why (`--under` makes it
    /// UNSUPPORTED there with the reason): what it measures is what the
    /// condition changes.
    pub not_under: [Option<(Condition, &'static str)>; 2],
    /// Which servers it can be asked of.
    pub speaks: Speaks,
    /// The check.
    pub run: fn(&mut Ctx<'_>) -> CaseResult,
}

impl Case {
    /// A case with default needs and setup, a 30 s deadline, run in parallel.
    pub fn new(
        id: &'static str,
        name: &'static str,
        title: &'static str,
        rule: &'static str,
        run: fn(&mut Ctx<'_>) -> CaseResult,
    ) -> Case {
        Case {
            id,
            name,
            title,
            rule,
            needs: Needs::default(),
            setup: Setup::DEFAULT,
            serial: false,
            timeout: Duration::from_secs(30),
            not_under: [None; 2],
            speaks: Speaks::Contract,
            run,
        }
    }

    /// Runs in every dialect that has `what` (through `Ctx::dialect`).
    pub fn any_dialect(mut self, what: &'static str) -> Case {
        self.speaks = Speaks::Any(what);
        self
    }

    /// Needs a concurrent target.
    pub fn concurrent(mut self) -> Case {
        self.needs.concurrency = true;
        self
    }

    /// Needs to read the storage directory.
    pub fn storage(mut self) -> Case {
        self.needs.storage = true;
        self
    }

    /// Needs a spawned target (signals, exit status).
    pub fn lifecycle(mut self) -> Case {
        self.needs.lifecycle = true;
        self
    }

    /// Needs the server's process id.
    pub fn process(mut self) -> Case {
        self.needs.process = true;
        self
    }

    /// Not asked under `cond`, for `why`.
    pub fn not_under(mut self, cond: Condition, why: &'static str) -> Case {
        if let Some(slot) = self.not_under.iter_mut().find(|s| s.is_none()) {
            *slot = Some((cond, why));
        }
        self
    }

    /// Why it is not asked under `cond`, if it is not.
    pub fn unfit_under(&self, cond: Condition) -> Option<&'static str> {
        self.not_under
            .iter()
            .flatten()
            .find(|(c, _)| *c == cond)
            .map(|(_, why)| *why)
    }

    /// Runs alone, after the parallel cases.
    pub fn serial(mut self) -> Case {
        self.serial = true;
        self
    }

    /// A 120 s deadline instead of 30 s.
    pub fn slow(mut self) -> Case {
        self.timeout = Duration::from_secs(120);
        self
    }

    /// Changes how a spawned server is configured.
    pub fn setup(mut self, f: impl FnOnce(&mut Setup)) -> Case {
        f(&mut self.setup);
        self
    }

    /// The category number (the id's first component).
    pub fn category(&self) -> usize {
        self.id
            .split('.')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// The category's name.
    pub fn category_name(&self) -> &'static str {
        CATEGORIES
            .get(self.category().wrapping_sub(1))
            .copied()
            .unwrap_or("?")
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Case({} {})", self.id, self.name)
    }
}

/// Why a case did not pass.
#[derive(Debug)]
pub enum CaseError {
    /// The target broke the rule.
    Fail(Failure),
    /// The target cannot be asked this (declared or structural).
    Unsupported(String),
    /// The harness itself failed.
    Harness(String),
}

impl CaseError {
    /// Names the failure's cause (docs/findings.md) and what filled it,
    /// unless a deeper check named one already.
    pub fn finding(self, id: &'static str, detail: Option<String>) -> CaseError {
        match self {
            CaseError::Fail(mut f) if f.finding.is_none() => {
                f.finding = Some(id);
                f.detail = detail;
                CaseError::Fail(f)
            }
            other => other,
        }
    }

    /// Adds where it happened to a failure's expectation.
    pub fn context(self, note: &str) -> CaseError {
        match self {
            CaseError::Fail(mut f) => {
                f.expected = format!("{} ({note})", f.expected);
                CaseError::Fail(f)
            }
            other => other,
        }
    }
}

/// Expected versus actual, in words a person can check.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What the rule requires.
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// The cause, when the check could tell it (a split inside the
    /// prefix, a datagram cut at a size); else the case's usual one.
    pub finding: Option<&'static str>,
    /// What fills the finding's title.
    pub detail: Option<String>,
}

/// The result of a case's check.
pub type CaseResult = Result<(), CaseError>;

/// A failure.
pub fn fail(expected: impl Into<String>, actual: impl Into<String>) -> CaseError {
    CaseError::Fail(Failure {
        expected: expected.into(),
        actual: actual.into(),
        finding: None,
        detail: None,
    })
}

/// Fails unless `cond`, describing the actual state lazily.
pub fn ensure(
    cond: bool,
    expected: impl Into<String>,
    actual: impl FnOnce() -> String,
) -> CaseResult {
    if cond {
        Ok(())
    } else {
        Err(fail(expected, actual()))
    }
}

/// A reply, shortened for a failure message.
pub fn describe(f: &Frame) -> String {
    let mut h = String::from_utf8_lossy(&f.raw).into_owned();
    if h.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| h.is_char_boundary(i))
            .unwrap_or(0);
        h.truncate(cut);
        h.push('…');
    }
    if f.body.is_empty() {
        format!("reply header {h}")
    } else {
        format!("reply header {h} with a {}-byte body", f.body.len())
    }
}

pub use crate::measure::units::show;

/// A way a server may change the bytes it echoes.
type Change = fn(&[u8]) -> Vec<u8>;

/// How `got` differs from `want`, named when it is one of the usual ways
/// (cut short, case changed, nothing): the finding's id beside the words
/// and what fills its title.
pub fn difference(want: &[u8], got: &[u8]) -> (String, Option<(&'static str, String)>) {
    let sizes = format!("{} bytes sent, {} came back", want.len(), got.len());
    if got.len() < want.len() && want.starts_with(got) {
        let why = format!("{sizes}: the first {} bytes, the rest cut off", got.len());
        return (why, Some(("truncated", got.len().to_string())));
    }
    if got.len() == want.len() {
        let changes: [(&str, Change); 3] = [
            ("upper-cased", |b| b.to_ascii_uppercase()),
            ("lower-cased", |b| b.to_ascii_lowercase()),
            ("reversed", |b| b.iter().rev().copied().collect()),
        ];
        for (name, f) in changes {
            if got != want && f(want) == got {
                let why = format!(
                    "{} where {} was sent: {name}",
                    show(got, 40),
                    show(want, 40)
                );
                return (why, Some(("transformed", name.to_owned())));
            }
        }
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    (
        format!(
            "{sizes}, differing from byte {at}: {} where {} was sent",
            show(got, 40),
            show(want, 40)
        ),
        None,
    )
}

/// Fails unless the reply is the error `code`.
pub fn expect_code(f: &Frame, code: &str) -> CaseResult {
    ensure(
        f.error_code() == Some(code),
        format!("an error reply with \"error\":\"{code}\""),
        || describe(f),
    )
}

/// Fails unless the reply is the echo of `raw` and `body`, byte for byte.
pub fn expect_echo(f: &Frame, raw: &[u8], body: &[u8]) -> CaseResult {
    ensure(
        f.raw == raw,
        format!("the echo of header {}", String::from_utf8_lossy(raw)),
        || describe(f),
    )?;
    ensure(
        f.body == body,
        format!("the echo of a {}-byte body", body.len()),
        || {
            let at = f
                .body
                .iter()
                .zip(body)
                .position(|(a, b)| a != b)
                .unwrap_or(f.body.len().min(body.len()));
            format!("a {}-byte body differing from byte {at}", f.body.len())
        },
    )
}

/// Fails unless the reply is `"status":"ok"`.
pub fn expect_ok(f: &Frame) -> CaseResult {
    ensure(f.is_ok(), "a reply with \"status\":\"ok\"", || describe(f))
}

/// The context a case runs in.
pub struct Ctx<'a> {
    /// The target's TCP address.
    pub tcp: SocketAddr,
    /// The target's UDP address, when it has one.
    pub udp: Option<SocketAddr>,
    /// Byte order and limits the target enforces.
    pub wire: WireConfig,
    /// The storage directory, when the harness can read it.
    pub storage: Option<PathBuf>,
    /// The server's process id, when known.
    pub pid: Option<u32>,
    /// Whether the target serves connections concurrently.
    pub concurrent: bool,
    /// The case's wire log.
    pub log: WireLog,
    /// Seeded randomness for this case.
    pub rng: StdRng,
    /// The deadline of each wait.
    pub wait: Duration,
    /// The spawned server, for lifecycle cases.
    pub server: Option<&'a mut Spawned>,
    /// How the target frames, names and answers.
    pub dialect: Dialect,
    /// The directory the storage sits in, for a server the harness
    /// started: where a write to `../x` lands.
    pub sandbox: Option<PathBuf>,
}

impl<'a> Ctx<'a> {
    /// A context; `seed` is the case's own seed.
    pub fn new(tcp: SocketAddr, udp: Option<SocketAddr>, wire: WireConfig, seed: u64) -> Self {
        Ctx {
            tcp,
            udp,
            wire,
            storage: None,
            pid: None,
            concurrent: true,
            log: WireLog::default(),
            rng: StdRng::seed_from_u64(seed),
            wait: Duration::from_secs(5),
            server: None,
            dialect: Dialect::sockbench(),
            sandbox: None,
        }
    }

    /// A new logged connection.
    pub fn connect(&self) -> Result<Client, CaseError> {
        Client::connect(self.tcp, self.wire, self.wait)
            .map(|c| c.logged(&self.log))
            .map_err(|e| fail(format!("a TCP connection to {}", self.tcp), e.to_string()))
    }

    /// Waits for the next reply, failing with `what` when none comes.
    pub fn recv(&self, c: &mut Client, what: &str) -> Result<Frame, CaseError> {
        c.recv(self.wait)
            .map_err(|e| fail(what.to_owned(), e.to_string()))
    }

    /// Sends a frame and waits for its reply.
    pub fn request(&self, c: &mut Client, header: &Value, body: &[u8]) -> Result<Frame, CaseError> {
        self.request_within(c, header, body, self.wait)
    }

    /// [`Ctx::request`] with its own wait for the reply.
    pub fn request_within(
        &self,
        c: &mut Client,
        header: &Value,
        body: &[u8],
        wait: Duration,
    ) -> Result<Frame, CaseError> {
        c.send(header, body)
            .map_err(|e| fail("to send a request", e.to_string()))?;
        c.recv(wait)
            .map_err(|e| fail(format!("a reply to {header}"), e.to_string()))
    }

    /// Sends bytes.
    pub fn send(&self, c: &mut Client, bytes: &[u8]) -> CaseResult {
        c.send_raw(bytes)
            .map_err(|e| fail("the server to accept the bytes", e.to_string()))
    }

    /// Fails unless the server closes the connection without sending more.
    /// A closing server does so within milliseconds, so this waits less.
    pub fn expect_close(&self, c: &mut Client) -> CaseResult {
        match c.expect_close(self.wait.min(Duration::from_secs(3))) {
            Ok(()) => Ok(()),
            Err(e) => Err(fail("the server to close the connection", e.to_string())),
        }
    }

    /// Fails unless nothing arrives for `quiet` (the connection stays open).
    pub fn expect_silence(&self, c: &mut Client, quiet: Duration, what: &str) -> CaseResult {
        match c.recv(quiet) {
            Err(ClientError::Timeout(_)) => Ok(()),
            Ok(f) => Err(fail(what.to_owned(), describe(&f))),
            Err(e) => Err(fail(what.to_owned(), e.to_string())),
        }
    }

    /// The UDP address, or UNSUPPORTED for a TCP-only target or a
    /// dialect whose server does not echo UDP.
    pub fn udp(&self) -> Result<SocketAddr, CaseError> {
        if self.dialect.udp == crate::dialect::Echo::None {
            return Err(CaseError::Unsupported(format!(
                "dialect {}: the server does not echo UDP",
                self.dialect.name
            )));
        }
        self.udp
            .ok_or_else(|| CaseError::Unsupported("no UDP address was given (--udp)".into()))
    }

    /// What the target's UDP echo of `sent` is (the dialect may upper-case).
    pub fn udp_back(&self, sent: &[u8]) -> Vec<u8> {
        self.dialect.udp.apply(sent).unwrap_or_default()
    }

    /// The storage directory, or UNSUPPORTED.
    pub fn storage(&self) -> Result<&Path, CaseError> {
        self.storage
            .as_deref()
            .ok_or_else(|| CaseError::Unsupported("the storage directory is not known".into()))
    }

    /// The spawned server, or UNSUPPORTED.
    pub fn server(&mut self) -> Result<&mut Spawned, CaseError> {
        self.server.as_deref_mut().ok_or_else(|| {
            CaseError::Unsupported("the server was not started by the harness".into())
        })
    }

    /// One stats reply, on a new connection.
    pub fn stats(&self) -> Result<Value, CaseError> {
        let mut c = self.connect()?;
        let r = self.request(&mut c, &json!({"op": "stats", "file_size": 0}), b"")?;
        expect_ok(&r)?;
        Ok(r.header)
    }

    /// Polls stats until `pred` holds or the wait ends; returns the last reply.
    pub fn stats_until(&self, pred: impl Fn(&Value) -> bool) -> Result<Value, CaseError> {
        let deadline = Instant::now() + self.wait;
        loop {
            let s = self.stats()?;
            if pred(&s) || Instant::now() >= deadline {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a datagram and waits for its echo (logged as connection 0).
    pub fn udp_echo(&self, payload: &[u8]) -> Result<Vec<u8>, CaseError> {
        let udp = self.udp()?;
        self.log.record(0, Dir::Sent, 0, payload, "udp datagram");
        match crate::peer::client::udp_echo(udp, payload, self.wait) {
            Ok(got) => {
                self.log.record(0, Dir::Received, 0, &got, "udp datagram");
                Ok(got)
            }
            Err(e) => {
                self.log.record(0, Dir::Received, 0, &[], &e.to_string());
                Err(fail(
                    format!("the echo of a {}-byte datagram", payload.len()),
                    e.to_string(),
                ))
            }
        }
    }

    /// A frame's bytes: prefix in the target's byte order, `header` as given, `body`.
    pub fn frame_bytes(&self, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = self.wire.endian.write_u32(header.len() as u32).to_vec();
        out.extend_from_slice(header);
        out.extend_from_slice(body);
        out
    }

    /// A short random tag from the case's seed, for names that must not
    /// collide with anything already on disk.
    pub fn rng_tag(&mut self) -> String {
        use rand::Rng;
        format!("{:08x}", self.rng.random::<u32>())
    }

    /// A header as compact JSON bytes.
    pub fn header(&self, v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap_or_default()
    }
}

/// A short description of bytes for messages: length and leading hex.
pub fn bytes_note(b: &[u8]) -> String {
    format!("{} bytes ({}…)", b.len(), hex(&b[..b.len().min(16)]))
}
