//! `sockbench report`: regenerate report.md and index.html from a results.json.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::conform_html::Html;
use super::conform_md::Markdown;
use super::write_all;
use crate::schema::Results;

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
    let results = Results::read(&args.input)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        args.input
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let written = match results {
        Results::Bench(run) => write_all(
            &*run,
            &dir,
            &[
                &super::bench_md::BenchMarkdown,
                &super::bench_html::BenchHtml,
            ],
        )?,
        Results::Conform(run) => write_all(&*run, &dir, &[&Markdown, &Html])?,
    };
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}
