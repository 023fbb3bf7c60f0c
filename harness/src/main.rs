//! The `sockbench` command.

use std::process::ExitCode;

use clap::Parser;
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
