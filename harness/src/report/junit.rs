//! JUnit XML for CI systems: a test suite per target, a test case per case.

use std::fmt::Write;

use anyhow::Result;

use super::{Reporter, escape};
use crate::schema::conform::{ConformRun, Outcome};

/// JUnit XML, written to the file given with `--junit`.
pub struct Junit(pub String);

impl Reporter<ConformRun> for Junit {
    fn file_name(&self) -> &str {
        &self.0
    }

    fn render(&self, run: &ConformRun) -> Result<String> {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failing = run.results.iter().filter(|r| r.fails_run()).count();
        writeln!(
            s,
            "<testsuites name=\"sockbench conform\" tests=\"{}\" failures=\"{failing}\" time=\"{:.3}\">",
            run.results.len(),
            run.duration_s
        )?;
        for t in &run.targets {
            let results: Vec<_> = run.results.iter().filter(|r| r.target == t.name).collect();
            let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
            let failures = results
                .iter()
                .filter(|r| r.fails_run() && matches!(r.outcome, Outcome::Fail | Outcome::Pass))
                .count();
            let errors = count(Outcome::Timeout) + count(Outcome::HarnessError);
            let time: f64 = results.iter().map(|r| r.duration_ms).sum::<f64>() / 1e3;
            writeln!(
                s,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{}\" time=\"{time:.3}\">",
                escape(&t.name),
                results.len(),
                count(Outcome::Unsupported)
            )?;
            writeln!(
                s,
                "    <properties><property name=\"seed\" value=\"{}\"/><property name=\"command\" value=\"{}\"/></properties>",
                run.seed,
                escape(&t.detail)
            )?;
            for r in results {
                let info = run.cases.iter().find(|c| c.id == r.case);
                let name = format!("{} {}", r.case, info.map_or("", |i| i.name.as_str()));
                let class = format!(
                    "conform.{}.{}",
                    t.name,
                    info.map_or("", |i| i.category.as_str()).replace(' ', "_")
                );
                write!(
                    s,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    escape(&class),
                    escape(&name),
                    r.duration_ms / 1e3
                )?;
                let detail = || {
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
                    escape(&d)
                };
                let message = escape(r.actual.as_deref().or(r.reason.as_deref()).unwrap_or(""));
                match (r.outcome, r.fails_run()) {
                    (Outcome::Unsupported, _) => {
                        writeln!(s, "><skipped message=\"{message}\"/></testcase>")?
                    }
                    (Outcome::Pass, false) => writeln!(s, "/>")?,
                    (Outcome::Pass, true) => writeln!(
                        s,
                        "><failure message=\"stale known-failing entry: the case passes\"/></testcase>"
                    )?,
                    (Outcome::Fail, false) => writeln!(
                        s,
                        "><skipped message=\"known failing: {message}\"/></testcase>"
                    )?,
                    (Outcome::Fail, true) => writeln!(
                        s,
                        "><failure message=\"{message}\">{}</failure></testcase>",
                        detail()
                    )?,
                    (_, _) => writeln!(
                        s,
                        "><error message=\"{} {message}\">{}</error></testcase>",
                        r.outcome.as_str(),
                        detail()
                    )?,
                }
            }
            writeln!(s, "  </testsuite>")?;
        }
        writeln!(s, "</testsuites>")?;
        Ok(s)
    }
}
