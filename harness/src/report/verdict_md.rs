//! The verdict table in Markdown ([`crate::analysis::verdict`] judges).

use crate::analysis::verdict::{CONFIDENCE, RESAMPLES, verdicts};
use crate::schema::bench::BenchRun;

/// The verdict table in Markdown, for the top of report.md (and, through
/// it, index.html).
pub fn markdown(run: &BenchRun) -> String {
    let vs = verdicts(run);
    if vs.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Verdict\n\n| workload | best | margin over the runner-up | what explains it |\n|---|---|---|---|\n",
    );
    for v in &vs {
        if let Some(met) = v.none_met {
            s.push_str(&format!(
                "| {} ({} configurations) | none | no target met it in every configuration: not ranked (most: {}, {met} of {}) | - |\n",
                v.workload, v.configs, v.best, v.configs
            ));
            continue;
        }
        let pct = |m: f64| {
            if m.is_finite() {
                format!("{:+.0}%", m * 100.0)
            } else {
                "the runner-up has none in some configuration".to_owned()
            }
        };
        let margin = match &v.runner_up {
            None => "the only target".to_owned(),
            // Shares shown rounded down, so a tie never reads "95%".
            Some(r) if v.tie() => format!(
                "**tie** with {r} ({}, ahead in {:.0}% of resamples)",
                pct(v.margin),
                (v.confidence * 100.0).floor()
            ),
            Some(r) => format!(
                "{} over {r} (ahead in {:.0}% of resamples)",
                pct(v.margin),
                (v.confidence * 100.0).floor()
            ),
        };
        s.push_str(&format!(
            "| {} ({} configuration{}) | {} | {} | {} |\n",
            v.workload,
            v.configs,
            if v.configs == 1 { "" } else { "s" },
            v.best,
            margin,
            if v.why.is_empty() { "-" } else { &v.why }
        ));
    }
    s.push_str(&format!(
        "\nScore: the geometric mean over the workload's configurations of each target's median. A tie: the best led the runner-up in fewer than {:.0}% of {} bootstrap resamples of the repetitions.\n",
        CONFIDENCE * 100.0,
        RESAMPLES
    ));
    s
}
