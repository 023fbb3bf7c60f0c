//! `sockbench report`: regenerate report.md and index.html from a results.json.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::conform_html::Html;
use super::conform_md::Markdown;
use super::write_all;
use crate::bench::results::BenchRun;
use crate::conform::results::ConformRun;

/// Flags of `sockbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results.json written by bench or conform.
    #[arg(long = "in", default_value = "reports/latest/results.json")]
    pub input: PathBuf,
    /// Output directory (default: the input's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn main(args: ReportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.input.display()))?;
    let dir = args.out.clone().unwrap_or_else(|| {
        args.input
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let schema = value["schema"].as_str().unwrap_or("").to_owned();
    let written = match schema.as_str() {
        crate::bench::results::SCHEMA => {
            let run: BenchRun = serde_json::from_value(value)
                .with_context(|| format!("{}: not a {schema} file", args.input.display()))?;
            write_all(
                &run,
                &dir,
                &[
                    &super::bench_md::BenchMarkdown,
                    &super::bench_html::BenchHtml,
                ],
            )?
        }
        crate::conform::results::SCHEMA => {
            let run: ConformRun = serde_json::from_value(value)
                .with_context(|| format!("{}: not a {schema} file", args.input.display()))?;
            write_all(&run, &dir, &[&Markdown, &Html])?
        }
        other => bail!(
            "{}: unknown schema {other:?} (expected {} or {})",
            args.input.display(),
            crate::bench::results::SCHEMA,
            crate::conform::results::SCHEMA
        ),
    };
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}
