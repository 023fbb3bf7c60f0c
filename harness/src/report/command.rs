//! `sockbench report`: regenerate report.md and index.html from a results.json.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::schema::Results;

/// Flags of `sockbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results.json written by bench, conform or soak.
    #[arg(long = "in", default_value = "reports/latest/results.json")]
    pub input: PathBuf,
    /// Output directory (default: the input's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn main(args: ReportArgs) -> Result<ExitCode> {
    let results = Results::read(&args.input)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        args.input
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let written = super::write_results(&results, &dir, false)?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
