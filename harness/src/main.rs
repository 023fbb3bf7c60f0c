//! The `sockbench` command.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOC: sockbench::alloc_count::Counting = sockbench::alloc_count::Counting;
use sockbench::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("SOCKBENCH_LOG", level))
        .format_target(false)
        .init();
    sockbench::sys::raise_fd_limit();
    let result = match cli.command {
        Command::Bench(args) => match sockbench::bench::command::main(args) {
            Ok(code) => return code,
            Err(e) => {
                eprintln!("sockbench bench: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Report(args) => sockbench::report::command::main(args),
        Command::Gate(args) => return sockbench::gate::command::main(args),
        Command::Baseline(args) => sockbench::gate::command::baseline(args),
        Command::UdpProbe(args) => {
            let probe = sockbench::udp::seq::Probe {
                size: args.size,
                rate: args.rate,
                duration: std::time::Duration::from_millis(args.ms),
                drain: std::time::Duration::from_millis(200),
            };
            sockbench::udp::seq::run(args.to, &probe)
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    println!(
                        "{}",
                        serde_json::to_string(&sockbench::udp::netem::ProbeSummary::from(&r))?
                    );
                    Ok(())
                })
        }
        Command::Conform(args) => match sockbench::conform::command::main(args) {
            Ok(code) => return code,
            Err(e) => {
                eprintln!("sockbench conform: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Serve(args) => match args.options() {
            Ok(opts) => sockbench::serve::serve(opts),
            Err(msg) => {
                eprintln!("sockbench serve: {msg}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
