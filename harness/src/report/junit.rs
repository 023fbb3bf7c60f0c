//! JUnit XML for CI systems, through quick-junit: a test suite per target,
//! a test case per case. quick-junit escapes the text and drops what XML
//! cannot carry (control characters, ANSI escapes).

use std::time::Duration;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::Reporter;
use crate::schema::conform::{CaseRun, ConformRun, Outcome};

/// JUnit XML, written to the file given with `--junit`.
pub struct Junit(pub String);

impl Reporter<ConformRun> for Junit {
    fn file_name(&self) -> &str {
        &self.0
    }

    fn render(&self, run: &ConformRun) -> Result<String> {
        let mut report = Report::new("sockbench conform");
        report.set_time(Duration::from_secs_f64(run.duration_s.max(0.0)));
        for t in &run.targets {
            let mut suite = TestSuite::new(&t.name);
            suite.add_property(Property::new("seed", run.seed.to_string()));
            suite.add_property(Property::new("command", &t.detail));
            let mut time = 0.0;
            for r in run.results.iter().filter(|r| r.target == t.name) {
                time += r.duration_ms / 1e3;
                let info = run.cases.iter().find(|c| c.id == r.case);
                let message = r.actual.as_deref().or(r.reason.as_deref()).unwrap_or("");
                let status = match (r.outcome, r.fails_run()) {
                    (Outcome::Pass, false) => TestCaseStatus::success(),
                    (Outcome::Unsupported, _) => skipped(message.to_owned()),
                    (Outcome::Fail, false) => skipped(format!("known failing: {message}")),
                    (Outcome::Pass, true) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message("stale known-failing entry: the case passes");
                        s
                    }
                    (o, _) => {
                        let (kind, message) = match o {
                            Outcome::Fail => (NonSuccessKind::Failure, message.to_owned()),
                            _ => (NonSuccessKind::Error, format!("{} {message}", o.as_str())),
                        };
                        let mut s = TestCaseStatus::non_success(kind);
                        s.set_message(message).set_description(detail(r));
                        s
                    }
                };
                let name = format!("{} {}", r.case, info.map_or("", |i| i.name.as_str()));
                let mut case = TestCase::new(name, status);
                let category = info.map_or("", |i| i.category.as_str()).replace(' ', "_");
                case.set_classname(format!("conform.{}.{category}", t.name))
                    .set_time(Duration::from_secs_f64(r.duration_ms.max(0.0) / 1e3));
                suite.add_test_case(case);
            }
            suite.set_time(Duration::from_secs_f64(time));
            report.add_test_suite(suite);
        }
        Ok(report.to_string()?)
    }
}

fn skipped(message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(message);
    s
}

/// Expected, actual, the note and the wire log, as the failure's text.
fn detail(r: &CaseRun) -> String {
    let mut d = String::new();
    for (k, v) in [
        ("expected", &r.expected),
        ("actual", &r.actual),
        ("note", &r.reason),
    ] {
        if let Some(v) = v {
            d.push_str(&format!("{k}: {v}\n"));
        }
    }
    for e in &r.wire_log {
        d.push_str(&format!(
            "{:9.2}ms conn {} {:?} @{} {}B {} {}\n",
            e.t_ms, e.conn, e.dir, e.offset, e.len, e.head, e.note
        ));
    }
    d
}
