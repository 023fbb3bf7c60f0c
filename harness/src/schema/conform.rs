//! What a conformance run found, as written to results.json (schema
//! `sockbench-conform/1`) and read back by `sockbench report` and `gate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::machine::Machine;

/// The schema tag of results.json.
pub const SCHEMA: &str = "sockbench-conform/1";

/// A case's verdict on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Outcome {
    /// The target obeys the rule.
    #[serde(rename = "PASS")]
    Pass,
    /// The target breaks the rule.
    #[serde(rename = "FAIL")]
    Fail,
    /// The target declared it cannot be asked this.
    #[serde(rename = "UNSUPPORTED")]
    Unsupported,
    /// No verdict within the case's deadline.
    #[serde(rename = "TIMEOUT")]
    Timeout,
    /// The harness failed, not the target.
    #[serde(rename = "HARNESS-ERROR")]
    HarnessError,
    /// Not run: the target had stopped accepting connections.
    #[serde(rename = "NOT-RUN")]
    NotRun,
}

impl Outcome {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unsupported => "UNSUPPORTED",
            Outcome::Timeout => "TIMEOUT",
            Outcome::HarnessError => "HARNESS-ERROR",
            Outcome::NotRun => "NOT-RUN",
        }
    }
}

/// A target as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The column name, e.g. `mio` or `server.py`.
    pub name: String,
    /// `backend`, `spawn` or `address`.
    pub kind: String,
    /// The command line or the addresses.
    pub detail: String,
    /// For a target at an address: the case after which it stopped
    /// accepting connections, and the connect error. Later cases are NOT-RUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<String>,
    /// The `--under` condition of this column (none: quiet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Under a condition: the target's own name, whose quiet column it is
    /// compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The dialect it was spoken to in (absent: sockbench's contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// What the run noticed about it, said once (a one-shot server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A case as the report describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Dotted id.
    pub id: String,
    /// Slug.
    pub name: String,
    /// Category name.
    pub category: String,
    /// What it checks.
    pub title: String,
    /// The rule, quoted.
    pub rule: String,
}

/// One case on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRun {
    /// The case id.
    pub case: String,
    /// The target name.
    pub target: String,
    /// The verdict.
    pub outcome: Outcome,
    /// Listed in --known-failing.
    #[serde(default)]
    pub known_failing: bool,
    /// Wall time of the case, server start included.
    pub duration_ms: f64,
    /// What the rule requires (failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the target did (failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Why UNSUPPORTED, TIMEOUT or HARNESS-ERROR; or a note on a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every write and read, for anything but a pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire_log: Vec<WireEvent>,
    /// Events beyond the log's bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wire_log_dropped: usize,
    /// The end of the server's stderr, for anything but a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// The finding this result is explained by (docs/findings.md): first
    /// the case's own guess, then the run's grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// The case's check named the finding itself (where a split fell),
    /// rather than its usual cause: it outranks a server that died of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finding_named: bool,
    /// What the case saw that its finding's title names (a size, a field,
    /// how the bytes were changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_detail: Option<String>,
    /// The outcome of `--rerun` after a failure: a PASS there makes the
    /// case flaky.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<Outcome>,
    /// A flaky case does not fail the run (`--allow-flaky`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky_allowed: bool,
    /// How a started server ended during the case, when it died of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_exit: Option<String>,
    /// What the server's process tree held after the case: zombies left
    /// unreaped, and its CPU share while idle (cases that cut a
    /// connection, and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<AfterCase>,
}

/// The server's process tree just after a case, with no connection open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterCase {
    /// Child processes exited but not reaped (state Z).
    pub zombies: usize,
    /// Live descendants of the server process.
    pub children: usize,
    /// CPU share of the whole tree over a short idle window, in percent
    /// (absent: not sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_cpu_percent: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CaseRun {
    /// A result of `case` on `target` with nothing said yet.
    pub fn new(case: &str, target: &str, outcome: Outcome) -> CaseRun {
        CaseRun {
            case: case.into(),
            target: target.into(),
            outcome,
            known_failing: false,
            duration_ms: 0.0,
            expected: None,
            actual: None,
            reason: None,
            wire_log: Vec::new(),
            wire_log_dropped: 0,
            stderr_tail: None,
            finding: None,
            finding_named: false,
            finding_detail: None,
            rerun: None,
            flaky_allowed: false,
            server_exit: None,
            after: None,
        }
    }

    /// True when this result makes the run fail: a failure not listed as
    /// known, a listed case that passes (a stale list), a timeout or a
    /// harness error.
    pub fn fails_run(&self) -> bool {
        if self.flaky_allowed && self.is_flaky() {
            return false;
        }
        match self.outcome {
            // A pass after which the server left something behind (a
            // zombie child, a spinning thread) fails the run through its
            // finding.
            Outcome::Pass => self.known_failing || self.finding.is_some(),
            Outcome::Fail | Outcome::Timeout => !self.known_failing,
            // A case not run is not a pass.
            Outcome::HarnessError | Outcome::NotRun => true,
            Outcome::Unsupported => false,
        }
    }

    /// Failed, then passed when run again.
    pub fn is_flaky(&self) -> bool {
        matches!(self.outcome, Outcome::Fail | Outcome::Timeout)
            && self.rerun == Some(Outcome::Pass)
    }

    /// The cell text: the outcome, qualified by the known-failing list.
    pub fn label(&self) -> String {
        match (self.outcome, self.known_failing) {
            (Outcome::Pass, true) => "PASS (stale known-failing)".into(),
            (Outcome::Pass, false) if self.finding.is_some() => {
                format!("PASS ({})", self.finding.as_deref().unwrap_or(""))
            }
            (o, true) => format!("{} (known)", o.as_str()),
            (o, false) => o.as_str().into(),
        }
    }
}

/// Counts of outcomes for one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// PASS.
    pub pass: usize,
    /// FAIL.
    pub fail: usize,
    /// UNSUPPORTED.
    pub unsupported: usize,
    /// TIMEOUT.
    pub timeout: usize,
    /// HARNESS-ERROR.
    pub harness_error: usize,
    /// NOT-RUN.
    #[serde(default)]
    pub not_run: usize,
    /// Results that fail the run.
    pub failing: usize,
}

/// A whole conformance run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformRun {
    /// `sockbench-conform/1`.
    pub schema: String,
    /// sockbench's version.
    pub tool_version: String,
    /// The seed every case's randomness derives from; `--seed` replays it.
    pub seed: u64,
    /// Where it ran.
    pub machine: Machine,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall time of the run.
    pub duration_s: f64,
    /// The targets, in column order.
    pub targets: Vec<TargetInfo>,
    /// The cases run, in id order.
    pub cases: Vec<CaseInfo>,
    /// Every (case, target) result.
    pub results: Vec<CaseRun>,
    /// The failures grouped by cause, root causes first.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

impl ConformRun {
    /// A run that began at `started` and ends now, on this machine, by this
    /// build; its findings are derived afterwards.
    pub fn new(
        seed: u64,
        started: std::time::Instant,
        targets: Vec<TargetInfo>,
        cases: Vec<CaseInfo>,
        results: Vec<CaseRun>,
    ) -> ConformRun {
        let ran = started.elapsed();
        ConformRun {
            schema: SCHEMA.into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            seed,
            machine: Machine::probe(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .saturating_sub(ran.as_secs()),
            duration_s: ran.as_secs_f64(),
            targets,
            cases,
            results,
            findings: Vec::new(),
        }
    }
}

/// A cause that explains one or more results (docs/findings.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id, e.g. `split-prefix`.
    pub id: String,
    /// The target column it was found on.
    pub target: String,
    /// Found on a client (`conform --client`): worded for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client: bool,
    /// One line in the user's terms (English; reports render it in their
    /// language from the id and `detail`).
    pub title: String,
    /// What fills the title's blank (a size, a field, an exit status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The cases it explains, in catalogue order.
    pub cases: Vec<String>,
    /// Cases that failed in other ways a framing bug like this one also
    /// produces (a wrong reply, a lost file): probably its consequences,
    /// not new problems. Fix this first and run again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<String>,
    /// The shortest case's transcript.
    pub evidence: Evidence,
    /// What to change, in one line (English).
    pub advice: String,
}

/// A finding's evidence: the numbered steps of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The case it is taken from.
    pub case: String,
    /// What the harness did and saw, in order.
    pub steps: Vec<String>,
    /// What the rule expected.
    pub expected: String,
    /// What happened instead.
    pub actual: String,
}

impl ConformRun {
    /// The result of `case` on `target`.
    pub fn result(&self, case: &str, target: &str) -> Option<&CaseRun> {
        self.results
            .iter()
            .find(|r| r.case == case && r.target == target)
    }

    /// Outcome counts per target, in target order.
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        let mut m: BTreeMap<String, Counts> = self
            .targets
            .iter()
            .map(|t| (t.name.clone(), Counts::default()))
            .collect();
        for r in &self.results {
            let c = m.entry(r.target.clone()).or_default();
            match r.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Unsupported => c.unsupported += 1,
                Outcome::Timeout => c.timeout += 1,
                Outcome::HarnessError => c.harness_error += 1,
                Outcome::NotRun => c.not_run += 1,
            }
            if r.fails_run() {
                c.failing += 1;
            }
        }
        m
    }

    /// True when nothing fails the run.
    pub fn passed(&self) -> bool {
        !self.results.iter().any(CaseRun::fails_run)
    }
}

/// A `--known-failing` file, read by `conform` and `gate` alike: one case
/// per line, `ID` (on every target) or `TARGET:ID`; `#` starts a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownFailing(std::collections::BTreeSet<(Option<String>, String)>);

/// A known-failing line naming no case of the catalogue: a typo that
/// would silently hide a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: no case has the id {id:?}")]
pub struct UnknownCase {
    /// 1-based line number.
    pub line: usize,
    /// The id as written.
    pub id: String,
}

impl KnownFailing {
    /// Parses a known-failing file; `is_case` says which ids exist.
    pub fn parse(text: &str, is_case: impl Fn(&str) -> bool) -> Result<Self, UnknownCase> {
        let mut set = std::collections::BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (target, id) = match line.rsplit_once(':') {
                Some((t, id)) => (Some(t.trim().to_owned()), id.trim()),
                None => (None, line),
            };
            if !is_case(id) {
                return Err(UnknownCase {
                    line: n + 1,
                    id: id.to_owned(),
                });
            }
            set.insert((target, id.to_owned()));
        }
        Ok(KnownFailing(set))
    }

    /// True when `case` is listed for `target` or for every target.
    pub fn contains(&self, target: &str, case: &str) -> bool {
        self.0.contains(&(None, case.to_owned()))
            || self.0.contains(&(Some(target.to_owned()), case.to_owned()))
    }
}

/// Direction of a transfer, seen from the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Harness to server.
    Sent,
    /// Server to harness.
    Received,
}

/// One write or read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    /// Milliseconds since the log began.
    pub t_ms: f64,
    /// Which connection (1, 2, ...; 0 for UDP).
    pub conn: u32,
    /// Direction.
    pub dir: Dir,
    /// Stream offset of the first byte, in this direction.
    pub offset: u64,
    /// Bytes moved (0 for end of stream, reset or timeout).
    pub len: usize,
    /// The first bytes, in hex.
    pub head: String,
    /// What else happened ("end of stream", "nothing within 5s", ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_failing_lines_name_a_case_for_every_target_or_one_and_typos_are_errors() {
        let text = "# a comment\n4.1\nmio: 6.19  # trailing comment\n\n";
        let k = KnownFailing::parse(text, |id| ["4.1", "6.19"].contains(&id)).unwrap();
        assert!(k.contains("tokio", "4.1") && k.contains("mio", "4.1"));
        assert!(k.contains("mio", "6.19") && !k.contains("tokio", "6.19"));
        let e = KnownFailing::parse("4.1\n6.91\n", |id| id == "4.1").unwrap_err();
        assert_eq!(e.to_string(), "line 2: no case has the id \"6.91\"");
    }
}
