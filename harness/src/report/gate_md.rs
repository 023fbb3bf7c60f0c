//! The gate's rows as Markdown, for a pull-request comment.

use std::fmt::Write as _;

use crate::analysis::gate::{GateVerdict, Row, ungated_reasons};

/// The Markdown summary for a pull-request comment: everything that is not
/// a plain pass in the table, the counts, and every row folded below.
pub fn markdown(rows: &[Row]) -> String {
    let count = |v: GateVerdict| rows.iter().filter(|r| r.verdict == v).count();
    let mut s = String::new();
    let verdict = if count(GateVerdict::Regression) > 0 {
        "**FAIL**"
    } else {
        "pass"
    };
    let _ = writeln!(
        s,
        "## sockbench gate: {verdict}\n\n{} regression(s), {} warning(s), {} improvement(s), {} unchanged, {} not gated, of {} metrics.\n",
        count(GateVerdict::Regression),
        count(GateVerdict::Warning),
        count(GateVerdict::Improved),
        count(GateVerdict::Pass),
        count(GateVerdict::Ungated),
        rows.len()
    );
    let table = |s: &mut String, rows: &[&Row]| {
        let _ = writeln!(s, "| metric | baseline | current | change | verdict |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in rows {
            let change = r
                .change
                .map_or("-".into(), |c| format!("{:+.1}%", c * 100.0));
            let note = if r.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.note.replace('|', "\\|"))
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {change} | {}{note} |",
                r.metric.replace('|', "\\|"),
                r.baseline,
                r.current,
                r.verdict.as_str()
            );
        }
    };
    let mut notable: Vec<&Row> = rows
        .iter()
        .filter(|r| r.verdict < GateVerdict::Ungated)
        .collect();
    notable.sort_by_key(|r| r.verdict);
    if !notable.is_empty() {
        table(&mut s, &notable);
    }
    let reasons = ungated_reasons(rows);
    if !reasons.is_empty() {
        let _ = writeln!(s, "\nNot gated:\n");
        for (why, n) in reasons {
            let _ = writeln!(s, "- {n} metric(s): {why}");
        }
    }
    let _ = writeln!(
        s,
        "\n<details><summary>All {} metrics</summary>\n",
        rows.len()
    );
    table(&mut s, &rows.iter().collect::<Vec<_>>());
    let _ = writeln!(s, "\n</details>");
    s
}
