//! The `sockbench` command.

use std::process::ExitCode;

use clap::Parser as _;

use sockbench::cli::{Cli, Command};
use sockbench::error::Error;

/// The golden vectors' streams, one file each, for `just fuzz`.
fn write_corpus(dir: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string("fixtures/wire/vectors.json")?;
    let vectors = sockbench_wire::vectors::parse(&text)?;
    std::fs::create_dir_all(dir)?;
    for (i, v) in vectors.iter().enumerate() {
        let bytes = sockbench_wire::vectors::assemble(&v.input)?;
        // The fuzz targets read their first byte as settings: 0 is the protocol's defaults.
        std::fs::write(
            dir.join(format!("vector-{i:02}")),
            [&[0u8][..], &bytes].concat(),
        )?;
    }
    println!("{} seeds in {}", vectors.len(), dir.display());
    Ok(())
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print_all(text: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line naming the flag, for a person at the terminal; exit 2.
            // clap lists what is missing on the lines after "...:"; they
            // join the first one, up to the blank line before the usage.
            let text = e.render().to_string();
            let line: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!(
                "sockbench: {}",
                line.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("SOCKBENCH_LOG", level))
        .format_target(false)
        .init();
    sockbench::measure::proc::raise_fd_limit();
    let result = match cli.command {
        Command::Bench(args) => match sockbench::bench::command::main(args) {
            Ok(code) => return code,
            Err(e) => {
                eprintln!("sockbench bench: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Explore(args) => return sockbench::explore::command::explore(args),
        Command::Replay(args) => return sockbench::explore::command::replay(args),
        Command::Load(args) => return sockbench::load::command::load(args),
        Command::Merge(args) => return sockbench::load::command::merge(args),
        Command::Report(args) => sockbench::report::command::main(args),
        Command::Gate(args) => return sockbench::gate::command::main(args),
        Command::FuzzCorpus { dir } => write_corpus(&dir),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            sockbench::cli::completions(shell, &mut text);
            print_all(&text)
        }
        Command::Man { dir } => {
            let mut text = Vec::new();
            sockbench::cli::man(dir.as_deref(), &mut text)
                .map_err(anyhow::Error::from)
                .and_then(|()| print_all(&text))
        }
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
                        serde_json::to_string(&sockbench::schema::udp::ProbeSummary::from(&r))?
                    );
                    Ok(())
                })
        }
        Command::Ceiling { strategy, align } => sockbench::bench::ceilings::serve(&strategy, align),
        Command::Proxy(args) => match sockbench::proxy::command::main(args) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sockbench proxy: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Soak(args) => match sockbench::soak::command::main(args) {
            Ok(code) => return code,
            Err(e) => {
                eprintln!("sockbench soak: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Conform(args) => match sockbench::conform::command::main(args) {
            Ok(code) => return code,
            Err(e) => {
                eprintln!("sockbench conform: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Serve(args) => match args.options() {
            // A back-end this machine cannot run is unusable input: exit 2.
            Ok(opts) => match sockbench::serve::serve(opts) {
                Err(e) if matches!(e.downcast_ref(), Some(Error::Unavailable(_))) => {
                    eprintln!("sockbench serve: {e:#}");
                    return ExitCode::from(2);
                }
                other => other,
            },
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
