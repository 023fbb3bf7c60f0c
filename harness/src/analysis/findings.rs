//! Failures grouped by cause: a run's findings (docs/findings.md).
//!
//! Each failed result already carries the cause its case could tell
//! (`CaseRun::finding`). Here the run's own evidence overrides it where it
//! knows better: a server that died, a case that passed when run again, a
//! server that looks up a field the dialect does not send. Then the results
//! are grouped per target, root causes first (the order of [`IDS`]), each
//! group with the transcript of its shortest case.

use crate::lang::{Lang, tr_in};
use crate::measure::units::show;
use crate::schema::conform::{
    CaseRun, ConformRun, Dir, Evidence, Finding, Outcome, TargetInfo, WireEvent,
};

/// Every finding id, root causes first: a case is explained by the first
/// of these that claims it.
pub const IDS: [&str; 33] = [
    // Before a death: a server that leaks children dies of it (pids run
    // out), and the leak is what to fix.
    "child-leak",
    "process-died",
    "dialect-mismatch",
    "not-framed",
    "one-shot",
    "stops-answering",
    // A client that never ends shows nothing else.
    "hangs",
    "split-prefix",
    "split-header",
    "split-body",
    "reads-past-body",
    "upload-truncated",
    "path-escape",
    "partial-file",
    "accepts-cut-reply",
    "md5-ignored",
    "bad-name-accepted",
    "udp-truncates",
    "udp-drops-empty",
    "udp-transforms",
    "nagle-stall",
    "id-wrong",
    "spins-when-idle",
    "echo-wrong",
    "output-wrong",
    "session-fails",
    "upload-wrong",
    "malformed-input",
    "limits",
    "connections",
    "udp-wrong",
    "lifecycle",
    "flaky",
];

/// Root causes: a stream misread (or a server gone) garbles everything
/// after it on the connection.
const ROOTS: [&str; 8] = [
    "child-leak",
    "process-died",
    "dialect-mismatch",
    "not-framed",
    "split-prefix",
    "split-header",
    "split-body",
    "reads-past-body",
];

/// What a root cause also produces on TCP: failures of these kinds beside
/// a root are listed as its probable consequences.
const FOLLOW: [&str; 12] = [
    "split-header",
    "split-body",
    "reads-past-body",
    "upload-truncated",
    "partial-file",
    "md5-ignored",
    "echo-wrong",
    "upload-wrong",
    "malformed-input",
    "limits",
    "connections",
    "lifecycle",
];

/// CPU share above which a server with no connection open is spinning.
pub const SPIN_PERCENT: f64 = 50.0;

pub use crate::measure::units::last_line;

/// Assigns every failed result its cause and groups them into the run's
/// findings, target by target.
pub fn derive(run: &mut ConformRun) {
    let targets = run.targets.clone();
    // The first case each target was asked (not UNSUPPORTED).
    let firsts: Vec<Option<String>> = targets
        .iter()
        .map(|t| {
            run.results
                .iter()
                .filter(|r| r.target == t.name && r.outcome != Outcome::Unsupported)
                .map(|r| r.case.clone())
                .min_by_key(|c| case_order(c))
        })
        .collect();
    for r in &mut run.results {
        let Some(i) = targets.iter().position(|t| t.name == r.target) else {
            continue;
        };
        if let Some((id, detail)) = cause(r, &targets[i], firsts[i].as_deref()) {
            r.finding = Some(id.into());
            r.finding_detail = detail;
        } else if r.outcome == Outcome::Pass {
            r.finding = None;
            r.finding_detail = None;
        }
    }
    let mut findings = Vec::new();
    for t in &targets {
        let mine: Vec<&CaseRun> = run.results.iter().filter(|r| r.target == t.name).collect();
        let mut found: Vec<Finding> = IDS
            .iter()
            .filter_map(|id| {
                let cases: Vec<&CaseRun> = mine
                    .iter()
                    .copied()
                    .filter(|r| r.finding.as_deref() == Some(*id))
                    .collect();
                group(id, t, &cases)
            })
            .collect();
        // The first root cause takes in what follows from it.
        if let Some(root) = found.iter().position(|f| ROOTS.contains(&f.id.as_str())) {
            let mut keep = Vec::new();
            let mut follows = Vec::new();
            for (i, f) in found.into_iter().enumerate() {
                if i > root && FOLLOW.contains(&f.id.as_str()) {
                    follows.extend(f.cases);
                } else {
                    keep.push(f);
                }
            }
            follows.sort_by_key(|c| case_order(c));
            keep[root].follows = follows;
            found = keep;
        }
        findings.extend(found);
    }
    // A result a root took in is explained by it.
    for f in &findings {
        for r in run
            .results
            .iter_mut()
            .filter(|r| r.target == f.target && f.follows.contains(&r.case))
        {
            r.finding = Some(f.id.clone());
        }
    }
    run.findings = findings;
}

/// A dotted case id as numbers, for catalogue order.
fn case_order(id: &str) -> Vec<u32> {
    id.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// The cause of one result, when it did not pass or left something behind.
fn cause(
    r: &CaseRun,
    t: &TargetInfo,
    first: Option<&str>,
) -> Option<(&'static str, Option<String>)> {
    let failed = matches!(
        r.outcome,
        Outcome::Fail | Outcome::Timeout | Outcome::NotRun
    );
    if let Some(how) = r.server_exit.as_ref().filter(|_| !r.finding_named) {
        let last = r.stderr_tail.as_deref().and_then(last_line);
        return Some((
            "process-died",
            Some(match last {
                Some(l) => format!("{how}: {l}"),
                None => how.clone(),
            }),
        ));
    }
    if !failed {
        let after = r.after?;
        if after.zombies > 0 || after.children > 0 {
            return Some((
                "child-leak",
                Some(format!(
                    "{} zombie(s) and {} live child process(es) after case {}",
                    after.zombies, after.children, r.case
                )),
            ));
        }
        return after
            .idle_cpu_percent
            .filter(|p| *p >= SPIN_PERCENT)
            .map(|p| {
                (
                    "spins-when-idle",
                    Some(format!("{p:.0} % of a CPU after case {}", r.case)),
                )
            });
    }
    if r.is_flaky() {
        return Some(("flaky", None));
    }
    if r.outcome == Outcome::NotRun {
        let after = t.stopped_after.clone().unwrap_or_default();
        // Gone after the first case that connected: it served one
        // connection and exited.
        let id = if first.is_some_and(|f| after.split(' ').next() == Some(f)) {
            "one-shot"
        } else {
            "stops-answering"
        };
        return Some((id, Some(format!("after case {after}"))));
    }
    if let Some(field) = r.stderr_tail.as_deref().and_then(key_error) {
        let dialect = t.dialect.as_deref().unwrap_or("sockbench");
        return Some((
            "dialect-mismatch",
            Some(format!(
                "it looks up the header field '{field}', which dialect {dialect} does not send"
            )),
        ));
    }
    if let Some(fields) = r.actual.as_deref().and_then(reply_fields) {
        return Some(("dialect-mismatch", Some(fields)));
    }
    if let Some(a) = r.after {
        if a.zombies > 0 {
            return Some((
                "child-leak",
                Some(format!("{} zombie(s) after case {}", a.zombies, r.case)),
            ));
        }
        if let Some(p) = a.idle_cpu_percent.filter(|p| *p >= SPIN_PERCENT) {
            return Some((
                "spins-when-idle",
                Some(format!("{p:.0} % of a CPU after case {}", r.case)),
            ));
        }
    }
    let id = r.finding.as_deref().unwrap_or("lifecycle");
    Some((
        IDS.iter()
            .copied()
            .find(|i| *i == id)
            .unwrap_or("lifecycle"),
        r.finding_detail.clone(),
    ))
}

/// The field of a Python `KeyError: 'cmd'` in a traceback: the server looks
/// up a header field the request did not have.
fn key_error(stderr: &str) -> Option<String> {
    let at = stderr.rfind("KeyError: '")? + "KeyError: '".len();
    let field: String = stderr[at..].chars().take_while(|c| *c != '\'').collect();
    (!field.is_empty() && field.len() < 64).then_some(field)
}

/// A reply header without the dialect's size field but with another
/// integer field: what it says instead (`total_size` for `file_size`).
fn reply_fields(actual: &str) -> Option<String> {
    let rest = actual.split("a header without the integer field ").nth(1)?;
    let (want, json) = rest.split_once(": ")?;
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    let other: Vec<&String> = v
        .as_object()?
        .iter()
        .filter(|(_, x)| x.is_u64())
        .map(|(k, _)| k)
        .collect();
    let first = other.first()?;
    Some(format!(
        "the reply says {first} where the dialect says {want}: write size = \"{first}\" in it"
    ))
}

/// One finding from the results it explains.
fn group(id: &str, t: &TargetInfo, cases: &[&CaseRun]) -> Option<Finding> {
    // The evidence: the failure with the shortest transcript.
    let shortest = cases
        .iter()
        .filter(|r| r.outcome != Outcome::NotRun)
        .min_by_key(|r| (r.wire_log.len(), r.expected.is_none()))
        .or_else(|| cases.first())?;
    let detail = shortest.finding_detail.clone();
    let d = detail.as_deref().unwrap_or("");
    let mut actual = shortest
        .actual
        .clone()
        .or_else(|| shortest.reason.clone())
        .unwrap_or_default();
    if actual.is_empty() {
        actual = detail.clone().unwrap_or_default();
    }
    // A server that died of it says why in its stderr.
    if id != "process-died"
        && shortest.server_exit.is_some()
        && let Some(last) = shortest.stderr_tail.as_deref().and_then(last_line)
    {
        actual = format!("{actual}; its stderr ended with: {last}");
    }
    if id == "flaky" {
        actual = format!(
            "{}; {}",
            actual,
            tr_in(
                Lang::En,
                "ui.flaky_twice",
                &[
                    ("first", shortest.outcome.as_str()),
                    ("second", shortest.rerun.map_or("-", Outcome::as_str)),
                ]
            )
        );
    }
    let client = t.kind == "client";
    Some(Finding {
        id: id.into(),
        target: t.name.clone(),
        client,
        title: tr_in(Lang::En, &key(id, "title", client), &[("detail", d)]),
        detail,
        cases: cases.iter().map(|r| r.case.clone()).collect(),
        follows: Vec::new(),
        evidence: Evidence {
            case: shortest.case.clone(),
            steps: steps(&shortest.wire_log, shortest.wire_log_dropped, client),
            expected: shortest.expected.clone().unwrap_or_default(),
            actual,
        },
        advice: tr_in(Lang::En, &key(id, "advice", client), &[]),
    })
}

/// At most this many steps of a transcript: its start and its end.
const STEPS: usize = 12;

/// A wire log as numbered steps a person reads: who sent how many bytes,
/// shown as text where they are text.
fn steps(log: &[WireEvent], dropped: usize, client: bool) -> Vec<String> {
    // In a client run sockbench is the server, and the peer the client.
    let peer = if client { "the client" } else { "the server" };
    let line = |i: usize, e: &WireEvent| {
        let bytes = unhex(&e.head);
        let who = match (e.dir, e.conn) {
            (Dir::Sent, 0) => "sockbench sent a datagram of".to_owned(),
            (Dir::Received, 0) if client => "the client sent a datagram of".to_owned(),
            (Dir::Received, 0) => "the server sent back a datagram of".to_owned(),
            (Dir::Sent, c) => format!("sockbench sent on connection {c}"),
            (Dir::Received, c) => format!("{peer} sent on connection {c}"),
        };
        let what = if e.len == 0 && !e.note.is_empty() {
            e.note.clone()
        } else {
            let more = if bytes.len() < e.len { " (start)" } else { "" };
            let note = if e.note.is_empty() || e.note == "udp datagram" {
                String::new()
            } else {
                format!(" [{}]", e.note)
            };
            format!("{} bytes: {}{more}{note}", e.len, show(&bytes, 60))
        };
        format!("{}. at {:.0} ms, {who} {what}", i + 1, e.t_ms)
    };
    let mut out: Vec<String> = Vec::new();
    if log.len() <= STEPS {
        out.extend(log.iter().enumerate().map(|(i, e)| line(i, e)));
    } else {
        let tail = STEPS / 2;
        out.extend(
            log.iter()
                .take(STEPS - tail)
                .enumerate()
                .map(|(i, e)| line(i, e)),
        );
        out.push(format!("… {} more steps …", log.len() - STEPS));
        let from = log.len() - tail;
        out.extend(
            log[from..]
                .iter()
                .enumerate()
                .map(|(i, e)| line(from + i, e)),
        );
    }
    if dropped > 0 {
        out.push(format!("({dropped} more events beyond the log's bound)"));
    }
    out
}

fn unhex(h: &str) -> Vec<u8> {
    let digits: Vec<u8> = h.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// The findings of one target, in order.
pub fn of<'a>(run: &'a ConformRun, target: &str) -> Vec<&'a Finding> {
    run.findings.iter().filter(|f| f.target == target).collect()
}

/// A finding's title and advice in `lang`.
pub fn words(f: &Finding, lang: Lang) -> (String, String) {
    let d = f.detail.as_deref().unwrap_or("");
    (
        tr_in(lang, &key(&f.id, "title", f.client), &[("detail", d)]),
        tr_in(lang, &key(&f.id, "advice", f.client), &[]),
    )
}

/// The catalogue key of a finding's `part`: a client's own wording where
/// the server's would mislead (`process-died.client_title`).
fn key(id: &str, part: &str, client: bool) -> String {
    let own = format!("{id}.client_{part}");
    if client && crate::lang::has(Lang::En, &own) {
        own
    } else {
        format!("{id}.{part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::has;

    #[test]
    fn every_id_has_words_in_both_languages() {
        for id in IDS {
            for part in ["title", "advice"] {
                let key = format!("{id}.{part}");
                assert!(has(Lang::En, &key), "{key} missing in en");
                assert!(has(Lang::ZhCn, &key), "{key} missing in zh-CN");
            }
        }
    }

    #[test]
    fn every_client_wording_has_its_chinese_and_is_chosen_for_clients() {
        for id in IDS {
            for part in ["client_title", "client_advice"] {
                let key = format!("{id}.{part}");
                if has(Lang::En, &key) {
                    assert!(has(Lang::ZhCn, &key), "{key} missing in zh-CN");
                }
            }
        }
        assert_eq!(
            key("process-died", "title", true),
            "process-died.client_title"
        );
        assert_eq!(key("process-died", "title", false), "process-died.title");
        // No client wording of its own: the shared one.
        assert_eq!(key("split-prefix", "advice", true), "split-prefix.advice");
    }

    #[test]
    fn a_traceback_and_a_reply_header_name_the_dialect_difference() {
        let tb = "Traceback (most recent call last):\n  File \"s.py\", line 9\nKeyError: 'cmd'\n";
        assert_eq!(key_error(tb).as_deref(), Some("cmd"));
        assert_eq!(key_error("ValueError: x"), None);
        let a =
            "a header without the integer field file_size: {\"total_size\": 5, \"name\": \"x\"}";
        let said = reply_fields(a).unwrap();
        assert!(
            said.contains("total_size") && said.contains("file_size"),
            "{said}"
        );
    }
}
