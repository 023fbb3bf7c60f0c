//! The cells and table heads that report.md's tables share: numbers with
//! SI suffixes, a measurement with its spread and ratio.

use std::fmt::Write;

use crate::analysis::suspect;
use crate::schema::bench::{Measurement, Status};

/// `12.3k`, `1.23M`: rates at a glance.
pub fn si(v: f64) -> String {
    match v.abs() {
        x if x >= 1e9 => format!("{:.2}G", v / 1e9),
        x if x >= 1e6 => format!("{:.2}M", v / 1e6),
        x if x >= 1e4 => format!("{:.1}k", v / 1e3),
        x if x >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// One result cell: median, spread as CV, ratio to its ceiling.
pub fn cell(m: Option<&Measurement>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m.status != Status::Ok => {
            format!("{} ({})", m.status, m.reason.as_deref().unwrap_or(""))
        }
        Some(m) => {
            let ratio = m.ratio.map_or(String::new(), |r| {
                format!(
                    " · {:.2}×{}",
                    r.median,
                    if suspect(r.median) {
                        " (suspect ceiling)"
                    } else {
                        ""
                    }
                )
            });
            format!("{} ±{:.0}%{ratio}", si(m.value.median), m.value.cv * 100.0)
        }
    }
}

/// A Markdown table head: `first`, then a column per target.
pub fn table_head(s: &mut String, first: &str, names: &[&str]) -> std::fmt::Result {
    write!(s, "| {first} |")?;
    for n in names {
        write!(s, " {n} |")?;
    }
    writeln!(s)?;
    write!(s, "|---|")?;
    for _ in names {
        write!(s, "---|")?;
    }
    writeln!(s)
}
