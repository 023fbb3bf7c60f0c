//! The `sockbench learn` command: record, infer, write `dialect.toml`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{Plan, record};
use crate::dialect::infer::{annotated, infer};
use crate::measure::units::positive_duration;

/// Flags of `sockbench learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Your server, with `{tcp_port}` where it takes its port, e.g.
    /// 'python3 server.py {tcp_port}'. Without it, sockbench listens
    /// silently in its place (it records what the client sends and never
    /// answers).
    #[arg(long, value_name = "CMD")]
    pub server: Option<String>,
    /// Your client, with `{tcp_port}` and `{file}` (a file learn makes, or
    /// --file), e.g. 'python3 client.py {tcp_port} {file}'.
    #[arg(long, value_name = "CMD")]
    pub client: String,
    /// The client's standard input, for an interactive client (`{file}`
    /// and `{tcp_port}` are substituted in it).
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// The file given to the client as `{file}` (default: 60 lines of text).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The name of the dialect written.
    #[arg(long, default_value = "learned")]
    pub name: String,
    /// Where to write it.
    #[arg(long, default_value = "dialect.toml")]
    pub out: PathBuf,
    /// How long the client may run.
    #[arg(long, default_value = "20s", value_parser = positive_duration)]
    pub timeout: Duration,
}

/// Runs `learn`: exit 0 with the dialect written; 1 when no single
/// dialect fits what crossed the wire (nothing is written then).
pub fn main(args: LearnArgs) -> Result<ExitCode> {
    if !args.client.contains("{tcp_port}") {
        bail!(
            "--client {:?}: put {{tcp_port}} where the program takes the server's port",
            args.client
        );
    }
    crate::target::kill_children_on_signal()?;
    let plan = Plan {
        server: args.server.clone(),
        client: args.client.clone(),
        stdin: args.stdin.clone(),
        file: args.file.clone(),
        deadline: args.timeout,
    };
    let (exchange, client) = record(&plan)?;
    let sent: usize = exchange.conns.iter().map(|c| c.to_server.len()).sum();
    let got: usize = exchange.conns.iter().map(|c| c.to_client.len()).sum();
    eprintln!(
        "sockbench learn: the client ({}) made {} connection(s), sent {sent} bytes and received {got}",
        client.status,
        exchange.conns.len()
    );
    let learned = match infer(&exchange, &args.name) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sockbench learn: {e}");
            if !client.output.trim().is_empty() {
                eprintln!("the client's output ends:\n{}", client.output.trim_end());
            }
            return Ok(ExitCode::from(1));
        }
    };
    let text = annotated(&learned);
    std::fs::write(&args.out, &text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("sockbench learn: {}", learned.dialect.summary());
    for (field, why) in &learned.notes {
        eprintln!("  {field:<16} {why}");
    }
    eprintln!(
        "wrote {}; check your server with: sockbench conform --spawn '{}' --dialect {}",
        args.out.display(),
        args.server.as_deref().unwrap_or("YOUR SERVER {tcp_port}"),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
