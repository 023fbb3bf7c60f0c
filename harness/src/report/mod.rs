//! Reports: one results type, many renderings (terminal, JSON, Markdown,
//! HTML, JUnit), each a [`Reporter`]; writing them all is one call, and
//! [`write_results`] says once which reporters draw which kind of result.

pub mod bench_families;
pub mod bench_html;
pub mod bench_md;
pub mod cells;
pub mod charts;
pub mod command;
pub mod conform_html;
pub mod conform_md;
pub mod findings;
pub mod gate_md;
pub mod junit;
pub mod robustness_md;
pub mod soak_html;
pub mod soak_md;
pub mod verdict_md;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::schema::Results;
use crate::schema::bench::BenchRun;
use crate::schema::conform::ConformRun;
use crate::schema::soak::SoakRun;

/// The HTML reports' self-check, run by the browser when the page has
/// loaded: an SVG chart that lays out to zero size says so on the console.
/// The pages write nothing else there, so the browser test fails on any
/// console line (this one, or an uncaught error).
pub const SELF_CHECK: &str = "<script>addEventListener('load',()=>{document.querySelectorAll('svg').forEach((s,i)=>{const r=s.getBoundingClientRect();if(!(r.width>0&&r.height>0))console.error('sockbench self-check: SVG chart '+(i+1)+' has zero size')})})</script>";

/// One rendering of results of type `T` into one file.
pub trait Reporter<T> {
    /// The file it writes, e.g. `report.md`.
    fn file_name(&self) -> &str;
    /// The file's content.
    fn render(&self, data: &T) -> Result<String>;
}

/// results.json: the data itself, pretty-printed.
pub struct Json;

impl<T: Serialize> Reporter<T> for Json {
    fn file_name(&self) -> &str {
        "results.json"
    }

    fn render(&self, data: &T) -> Result<String> {
        Ok(serde_json::to_string_pretty(data)? + "\n")
    }
}

/// Writes every reporter's file into `dir` (created if missing).
pub fn write_all<T>(data: &T, dir: &Path, reporters: &[&dyn Reporter<T>]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    reporters
        .iter()
        .map(|r| {
            let path = dir.join(r.file_name());
            let text = r
                .render(data)
                .with_context(|| format!("cannot render {}", r.file_name()))?;
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// `reporters` with [`Json`] in front when `json` is asked for.
fn with_json<'a, T: Serialize>(
    json: bool,
    reporters: &[&'a dyn Reporter<T>],
) -> Vec<&'a dyn Reporter<T>> {
    let mut all: Vec<&'a dyn Reporter<T>> = Vec::new();
    if json {
        all.push(&Json);
    }
    all.extend_from_slice(reporters);
    all
}

/// A bench run's documents (results.json too when `json`): report.md and
/// index.html.
pub fn write_bench(run: &BenchRun, dir: &Path, json: bool) -> Result<Vec<PathBuf>> {
    write_all(
        run,
        dir,
        &with_json(json, &[&bench_md::BenchMarkdown, &bench_html::BenchHtml]),
    )
}

/// A conformance run's documents (results.json too when `json`).
pub fn write_conform(run: &ConformRun, dir: &Path, json: bool) -> Result<Vec<PathBuf>> {
    write_all(
        run,
        dir,
        &with_json(
            json,
            &[&conform_md::ConformMarkdown, &conform_html::ConformHtml],
        ),
    )
}

/// A soak's documents (results.json too when `json`).
pub fn write_soak(run: &SoakRun, dir: &Path, json: bool) -> Result<Vec<PathBuf>> {
    write_all(
        run,
        dir,
        &with_json(json, &[&soak_md::SoakMarkdown, &soak_html::SoakHtml]),
    )
}

/// The documents of a result of any kind: the one place that says which
/// reporters draw which results.
pub fn write_results(results: &Results, dir: &Path, json: bool) -> Result<Vec<PathBuf>> {
    match results {
        Results::Bench(run) => write_bench(run, dir, json),
        Results::Conform(run) => write_conform(run, dir, json),
        Results::Soak(run) => write_soak(run, dir, json),
    }
}

/// Escapes text for HTML; a control character shows as `\xNN` (JUnit goes
/// through quick-junit, which drops them).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The title of docs/robustness.md, written when a block starts the file.
pub const ROBUSTNESS_TITLE: &str =
    "# Robustness: malformed input, faults, conditions and time, on every back-end\n";

/// `existing` (a document of generated blocks) with the block `name`
/// replaced by `body`, or added at the end. Blocks are marked
/// `<!-- begin NAME -->` ... `<!-- end NAME -->`, so two commands can keep
/// one document (conform's matrix and soak's table in docs/robustness.md);
/// a file with no marked block at all is replaced, under `title`.
pub fn splice(existing: &str, title: &str, name: &str, body: &str) -> String {
    let (begin, end) = (
        format!("<!-- begin {name} -->"),
        format!("<!-- end {name} -->"),
    );
    let block = format!("{begin}\n{}\n{end}\n", body.trim_end());
    if !existing.contains("<!-- begin ") {
        return format!("{title}\n{block}");
    }
    match (existing.find(&begin), existing.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            let after = &existing[b + end.len()..];
            format!(
                "{}{block}{}",
                &existing[..a],
                after.strip_prefix('\n').unwrap_or(after)
            )
        }
        _ => format!("{}\n\n{block}", existing.trim_end()),
    }
}

#[cfg(test)]
mod splice_tests {
    use super::splice;

    #[test]
    fn blocks_are_replaced_in_place_or_added_and_others_kept() {
        let one = splice("old hand-written text", "# T\n", "a", "A1");
        assert_eq!(one, "# T\n\n<!-- begin a -->\nA1\n<!-- end a -->\n");
        let two = splice(&one, "# T\n", "b", "B1\n");
        assert!(
            two.ends_with("<!-- begin b -->\nB1\n<!-- end b -->\n"),
            "{two}"
        );
        let three = splice(&two, "# T\n", "a", "A2");
        assert!(three.contains("A2") && !three.contains("A1") && three.contains("B1"));
        assert!(three.find("A2") < three.find("B1"), "a stays first");
        assert_eq!(splice(&three, "# T\n", "a", "A2"), three, "idempotent");
    }
}
