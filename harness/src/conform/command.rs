//! The `sockbench conform` command: choose targets and cases, run, report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use globset::{Glob, GlobMatcher};

use super::case::Case;
use super::list::{ListFormat, list};
use super::runner::{RunOptions, run};
use super::targets::TargetSpec;
use super::under::{Condition, Under};
use crate::dialect::Dialect;
use crate::measure::units::parse_seconds;
use crate::report::conform_md::summary;
use crate::report::junit::Junit;
use crate::report::robustness_md::Robustness;
use crate::report::{write_all, write_conform};
use crate::schema::conform::{ConformRun, KnownFailing};
use crate::target::args::{Preflight, TargetArgs};

/// Flags of `sockbench conform`.
#[derive(Debug, Args)]
pub struct ConformArgs {
    /// What to test: our back-ends, serve-contract commands, or an address.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only cases whose id or name matches one of these globs (`2.*`, `udp-*`).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
    /// The address family spawned servers listen on, for every case
    /// (`ipv6`: `--tcp [::1]:0 --udp [::1]:0`; the oversize limit follows).
    #[arg(long, value_enum, default_value = "ipv4")]
    pub family: AddressFamily,
    /// Also run the cases under these conditions, each a column beside the
    /// quiet one: `idle` (idle connections held open), `load` (a
    /// background echo load), `impaired` (every TCP connection through a
    /// re-segmenting, jittering proxy).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "COND")]
    pub under: Vec<Condition>,
    /// Background echoes per second for `--under load`, per case running
    /// (default: half the target's measured capacity over --jobs).
    #[arg(long, value_parser = crate::measure::units::positive_rate, value_name = "R")]
    pub under_rate: Option<f64>,
    /// Idle connections for `--under idle`.
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub under_idle: usize,
    /// Leave out cases whose id or name matches one of these globs.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Cases expected to fail (`ID` or `TARGET:ID` per line); one that
    /// passes fails the run, because the list is stale.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Seed of every case's randomness (printed in every report).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cases run at once (default: CPUs, at least 2).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Bound on the whole run, in seconds.
    #[arg(long, default_value = "600", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Directory for results.json, report.md and index.html.
    #[arg(long, default_value = "reports/latest/conform")]
    pub out: PathBuf,
    /// Also write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the case x target matrix, with its robustness summary
    /// (crashes, leaked files, memory bounds), as a Markdown document here.
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<PathBuf>,
    /// Print the catalogue instead of running it.
    #[arg(long)]
    pub list: bool,
    /// Format of --list.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ListFormat,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Run a failed case this many times more; one that then passes is
    /// reported as the finding `flaky`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rerun: usize,
    /// A flaky case does not fail the run (it is still reported).
    #[arg(long)]
    pub allow_flaky: bool,
    /// Test a client instead of a server: the command that runs it, with
    /// {tcp_port}, {udp_port}, {file} (input sockbench made), {out} (where
    /// to write a fetched body) and {dir}; exit 127 or 89 means "not
    /// supported".
    #[arg(long, value_name = "CMD", conflicts_with_all = ["under", "backend", "spawn", "tcp", "udp"])]
    pub client: Option<String>,
    /// What the client does: `upload` {file}, `fetch` one framed reply,
    /// `echo` each line of {file}, or `session` (its own checks against a
    /// sockbench server).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "TASK",
        requires = "client"
    )]
    pub client_task: Vec<super::client::Task>,
    /// Where a fetching client puts the body: stdout, or a file ({out}, or
    /// the name in the reply's header, in its directory).
    #[arg(long, value_enum, default_value = "stdout", value_name = "WHERE")]
    pub client_output: super::client::Output,
    /// The echo task over UDP: each line a datagram.
    #[arg(long, requires = "client")]
    pub client_udp: bool,
    /// The client's stdin (an interactive client's answers), with the
    /// placeholders filled in; without it, stdin is empty.
    #[arg(long, value_name = "FILE", requires = "client")]
    pub stdin: Option<PathBuf>,
    /// Random segmentations of the fetch reply the explore case (9.33)
    /// draws; a failure is shrunk to the fewest cuts (0: not run).
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub client_explore: usize,
    /// How long the client has per case before it is said to hang.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECS")]
    pub client_timeout: Duration,
}

impl ConformArgs {
    /// `--seed`, or one from the clock (printed in every report).
    fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
    }

    /// `--jobs`, or the CPUs (at least 2).
    fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        })
    }
}

/// The background rate of `--under load` on `spec`: half its capacity,
/// measured on a server of its own, over the cases run at once.
fn load_rate(
    spec: &TargetSpec,
    exe: &Path,
    jobs: usize,
    all: &[Case],
    dialect: &Dialect,
) -> Result<f64> {
    let Some(probe) = all
        .iter()
        .find(|c| c.setup == super::case::Setup::DEFAULT && !c.needs.lifecycle)
    else {
        bail!("no case to start a server for the capacity probe");
    };
    match super::targets::instantiate(spec, probe, exe, dialect) {
        Ok(inst) => {
            let rate = super::under::half_capacity(&inst, jobs)
                .map_err(|e| anyhow::anyhow!("{}: {e}", spec.name()))?;
            eprintln!(
                "sockbench conform: --under load on {}: {rate:.0} echoes/s in the background of each case",
                spec.name()
            );
            Ok(rate)
        }
        // The cases say why (unsupported here, or it does not start).
        Err(_) => Ok(1.0),
    }
}

/// An address family of `--family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressFamily {
    /// 127.0.0.1.
    Ipv4,
    /// ::1.
    Ipv6,
}

/// Runs the command; the exit code is 0 only when nothing fails the run.
pub fn main(args: ConformArgs) -> Result<ExitCode> {
    if let Some(command) = &args.client {
        return client(&args, command);
    }
    let all = super::catalogue();
    let mut cases = select(&all, &args.cases, &args.exclude)?;
    if args.family == AddressFamily::Ipv6 {
        for c in &mut cases {
            c.setup.ipv6 = true;
        }
    }
    if args.list {
        print!("{}", list(&cases, args.format)?);
        return Ok(ExitCode::SUCCESS);
    }
    let targets = targets(&args)?;
    let known_failing = match &args.known_failing {
        None => KnownFailing::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            KnownFailing::parse(&text, |id| all.iter().any(|c| c.id == id))
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
    };
    let seed = args.seed();
    crate::target::kill_children_on_signal()?;
    crate::measure::proc::raise_fd_limit();
    let jobs = args.jobs();
    let dialect = args.target.dialect()?;
    if !dialect.contract && args.under.contains(&Condition::Load) {
        bail!(
            "--under load runs a background echo of the sockbench contract; dialect {} has none",
            dialect.name
        );
    }
    let mut conditions = vec![Condition::Quiet];
    for c in &args.under {
        if !conditions.contains(c) {
            conditions.push(*c);
        }
    }
    let exe = std::env::current_exe().context("cannot find the sockbench executable")?;
    let under = targets
        .iter()
        .map(|t| {
            let rate = match args.under_rate {
                Some(r) => r,
                None if conditions.contains(&Condition::Load) => {
                    load_rate(t, &exe, jobs, &all, &dialect)?
                }
                None => 1.0,
            };
            Ok(Under {
                idle: args.under_idle,
                rate,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = RunOptions {
        targets,
        cases,
        seed,
        jobs,
        known_failing,
        watchdog: args.timeout,
        exe,
        progress: !args.no_progress,
        conditions,
        under,
        dialect,
        reruns: args.rerun,
        allow_flaky: args.allow_flaky,
    };
    eprintln!(
        "sockbench conform: {} case(s) on {} target(s), seed {seed}",
        opts.cases.len(),
        opts.targets.len()
    );
    let mut result = run(&opts);
    let mut written = derive_and_write(&mut result, &args)?;
    if let Some(path) = &args.matrix {
        // The command as typed, less where this run's other files went.
        let mut cmd: Vec<String> = Vec::new();
        let mut skip = false;
        for a in std::env::args().skip(1) {
            if std::mem::take(&mut skip) {
                continue;
            }
            match a.as_str() {
                "--out" | "--junit" => skip = true,
                "--no-progress" => {}
                _ => cmd.push(if a.contains('*') || a.contains(',') {
                    format!("'{a}'")
                } else {
                    a
                }),
            }
        }
        let (dir, file_name) = split(path, "--matrix")?;
        let doc = Robustness {
            file_name,
            command: cmd.join(" "),
            storage_cases: opts
                .cases
                .iter()
                .filter(|c| c.needs.storage)
                .map(|c| c.id.to_owned())
                .collect(),
            existing: std::fs::read_to_string(path).unwrap_or_default(),
            idle: args.under_idle,
        };
        written.extend(write_all(&result, &dir, &[&doc])?);
    }
    Ok(finish(&result, written))
}

/// `--client`: the client cases of its tasks, then the same reports.
fn client(args: &ConformArgs, command: &str) -> Result<ExitCode> {
    use super::client::{self as c, ClientOptions};
    if args.client_task.is_empty() {
        bail!(
            "say what the client does: --client-task upload|fetch|echo|session (comma-separated)"
        );
    }
    let stdin = match &args.stdin {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --stdin {}", p.display()))?,
        ),
        None => None,
    };
    let all = c::cases::catalogue();
    let inc = matchers(&args.cases)?;
    let exc = matchers(&args.exclude)?;
    let hit = |ms: &[GlobMatcher], k: &c::ClientCase| {
        ms.iter().any(|m| m.is_match(k.id) || m.is_match(k.name))
    };
    let cases: Vec<_> = all
        .into_iter()
        .filter(|k| c::applicable(k, &args.client_task, args.client_udp))
        .filter(|k| (inc.is_empty() || hit(&inc, k)) && !hit(&exc, k))
        .collect();
    if cases.is_empty() {
        bail!(
            "no client case matches --client-task {:?}{} --cases {:?} --exclude {:?}",
            args.client_task,
            if args.client_udp { " --client-udp" } else { "" },
            args.cases,
            args.exclude
        );
    }
    let label = match crate::target::parse_spawn(command)? {
        TargetSpec::Spawn { label, .. } => label,
        other => other.name(),
    };
    let seed = args.seed();
    crate::target::kill_children_on_signal()?;
    let opts = ClientOptions {
        command: command.to_owned(),
        label,
        tasks: args.client_task.clone(),
        output: args.client_output,
        udp: args.client_udp,
        stdin,
        dialect: args.target.dialect()?,
        cases,
        deadline: args.client_timeout,
        seed,
        jobs: args.jobs(),
        reruns: args.rerun,
        allow_flaky: args.allow_flaky,
        explore: args.client_explore,
        exe: std::env::current_exe().context("cannot find the sockbench executable")?,
    };
    eprintln!(
        "sockbench conform --client: {} case(s) on {}, dialect {}, seed {seed}",
        opts.cases.len(),
        opts.label,
        opts.dialect.name
    );
    let mut result = c::run(&opts);
    let written = derive_and_write(&mut result, args)?;
    Ok(finish(&result, written))
}

/// The run's findings, then its documents (and --junit): what was written.
fn derive_and_write(result: &mut ConformRun, args: &ConformArgs) -> Result<Vec<PathBuf>> {
    crate::analysis::findings::derive(result);
    let mut written = write_conform(result, &args.out, true)?;
    if let Some(path) = &args.junit {
        let (dir, name) = split(path, "--junit")?;
        written.extend(write_all(result, &dir, &[&Junit(name)])?);
    }
    Ok(written)
}

/// The summary and where the documents went; the exit code.
fn finish(result: &ConformRun, written: Vec<PathBuf>) -> ExitCode {
    print!("{}", summary(result));
    for p in written {
        println!("wrote {}", p.display());
    }
    if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn matchers(globs: &[String]) -> Result<Vec<GlobMatcher>> {
    globs
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            Ok(Glob::new(g)
                .with_context(|| format!("bad glob {g:?}"))?
                .compile_matcher())
        })
        .collect()
}

/// The cases matching `include` (all when empty) and not `exclude`.
pub fn select(all: &[Case], include: &[String], exclude: &[String]) -> Result<Vec<Case>> {
    let inc = matchers(include)?;
    let exc = matchers(exclude)?;
    let hit =
        |ms: &[GlobMatcher], c: &Case| ms.iter().any(|m| m.is_match(c.id) || m.is_match(c.name));
    let picked: Vec<Case> = all
        .iter()
        .filter(|c| (inc.is_empty() || hit(&inc, c)) && !hit(&exc, c))
        .copied()
        .collect();
    if picked.is_empty() {
        bail!("no case matches --cases {include:?} --exclude {exclude:?}");
    }
    Ok(picked)
}

fn targets(args: &ConformArgs) -> Result<Vec<TargetSpec>> {
    // One line and exit 2, before any case: a typo in --tcp is not 97 FAILs.
    let out = args.target.resolve(Preflight::Reach, &[])?;
    if out.is_empty() {
        bail!(
            "nothing to test: give --backend all|NAME..., --spawn 'CMD', or --tcp ADDR [--udp ADDR]"
        );
    }
    Ok(out)
}

/// A file path's directory (`.` when bare) and name, for a reporter.
fn split(path: &Path, flag: &str) -> Result<(PathBuf, String)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let name = path
        .file_name()
        .with_context(|| format!("{flag} needs a file name"))?
        .to_string_lossy()
        .into_owned();
    Ok((dir, name))
}
