//! The `sockbench` command: parse, then hand the subcommand to its library.
//! Every command is `run(Args) -> Result<ExitCode>`; an error is one line
//! naming the command, and its exit code ([`cli::error_code`]).

use std::process::ExitCode;

use sockbench::cli::{self, Command};
use sockbench::{bench, conform, explore, gate, learn, load, proxy, report, soak};

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_logging(&cli);
    sockbench::measure::proc::raise_fd_limit();
    let name = cli.command.name();
    let result = match cli.command {
        Command::Serve(args) => cli::serve(args),
        Command::Conform(args) => conform::command::main(args),
        Command::Bench(args) => bench::command::main(args),
        Command::Explore(args) => explore::command::run(args),
        Command::Replay(args) => explore::command::replay(args),
        Command::Load(args) => load::command::run(args),
        Command::Soak(args) => soak::command::main(args),
        Command::Proxy(args) => proxy::command::main(args),
        Command::Learn(args) => learn::command::main(args),
        Command::Merge(args) => load::command::merge(args),
        Command::Report(args) => report::command::main(args),
        Command::Gate(args) => gate::command::main(args),
        Command::Baseline(args) => gate::command::baseline(args),
        Command::Completions { shell } => cli::completions_command(shell),
        Command::Man { dir } => cli::man_command(dir.as_deref()),
        Command::FuzzCorpus { dir } => cli::fuzz_corpus(&dir),
        Command::UdpProbe(args) => cli::udp_probe(&args),
        Command::Ceiling { strategy, align } => bench::ceilings::serve(&strategy, align),
    };
    result.unwrap_or_else(|e| {
        eprintln!("sockbench {name}: {e:#}");
        ExitCode::from(cli::error_code(name, &e))
    })
}
