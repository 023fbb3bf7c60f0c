//! The `sockbench conform` command: choose targets and cases, run, report.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use globset::{Glob, GlobMatcher};
use sockbench_wire::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, Endian, WireConfig};

use super::case::Case;
use super::runner::{RunOptions, run};
use super::targets::TargetSpec;
use crate::report::conform_html::Html;
use crate::report::conform_md::Markdown;
use crate::report::junit::Junit;
use crate::report::{Json, Reporter, write_all};
use crate::schema::conform::KnownFailing;
use crate::schema::conform::{ConformRun, Outcome};
use crate::units::{parse_seconds, parse_size};

/// Flags of `sockbench conform`.
#[derive(Debug, Args)]
pub struct ConformArgs {
    /// Our back-ends to test, each started as `sockbench serve`: `all` or names.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "NAME")]
    pub backend: Vec<String>,
    /// A command that obeys the serve contract, e.g. 'python3 server.py'
    /// (repeatable); `LABEL=CMD` names its column.
    #[arg(long, value_name = "CMD")]
    pub spawn: Vec<String>,
    /// A server already listening on this TCP address (with --udp).
    #[arg(long, requires = "udp")]
    pub tcp: Option<SocketAddr>,
    /// Its UDP address.
    #[arg(long, requires = "tcp")]
    pub udp: Option<SocketAddr>,
    /// Its storage directory, so upload cases can inspect files.
    #[arg(long, requires = "tcp")]
    pub storage: Option<PathBuf>,
    /// Its process id, for memory cases.
    #[arg(long, requires = "tcp")]
    pub pid: Option<u32>,
    /// It serves one connection at a time.
    #[arg(long, requires = "tcp")]
    pub not_concurrent: bool,
    /// Its column name.
    #[arg(long, requires = "tcp", default_value = "address")]
    pub name: String,
    /// Its byte order.
    #[arg(long, requires = "tcp", default_value = "little")]
    pub endian: Endian,
    /// Its --max-header.
    #[arg(long, requires = "tcp", default_value_t = u64::from(DEFAULT_MAX_HEADER), value_parser = parse_size)]
    pub max_header: u64,
    /// Its --max-body.
    #[arg(long, requires = "tcp", default_value_t = DEFAULT_MAX_BODY, value_parser = parse_size)]
    pub max_body: u64,
    /// Only cases whose id or name matches one of these globs (`2.*`, `udp-*`).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
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
}

/// How `--list` prints the catalogue.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// One line per case.
    Text,
    /// docs/cases.md.
    Markdown,
    /// JSON array.
    Json,
}

/// Runs the command; the exit code is 0 only when nothing fails the run.
pub fn main(args: ConformArgs) -> Result<ExitCode> {
    let all = super::catalogue();
    let cases = select(&all, &args.cases, &args.exclude)?;
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
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    crate::target::kill_children_on_signal()?;
    crate::sys::raise_fd_limit();
    let opts = RunOptions {
        targets,
        cases,
        seed,
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        }),
        known_failing,
        watchdog: args.timeout,
        exe: std::env::current_exe().context("cannot find the sockbench executable")?,
        progress: !args.no_progress,
    };
    eprintln!(
        "sockbench conform: {} case(s) on {} target(s), seed {seed}",
        opts.cases.len(),
        opts.targets.len()
    );
    let result = run(&opts);
    let mut written = write_all(&result, &args.out, &[&Json, &Markdown, &Html])?;
    if let Some(path) = &args.junit {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let name = path
            .file_name()
            .context("--junit needs a file name")?
            .to_string_lossy()
            .into_owned();
        written.extend(write_all(
            &result,
            &dir,
            &[&Junit(name) as &dyn Reporter<ConformRun>],
        )?);
    }
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
        std::fs::write(path, matrix(&result, &opts.cases, &cmd.join(" ")))?;
        written.push(path.clone());
    }
    print!("{}", summary(&result));
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    let address = match (args.tcp, args.udp) {
        (Some(tcp), Some(udp)) => Some(TargetSpec::Address {
            label: args.name.clone(),
            tcp,
            udp,
            storage: args.storage.clone(),
            pid: args.pid,
            concurrent: !args.not_concurrent,
            wire: WireConfig {
                endian: args.endian,
                max_header: u32::try_from(args.max_header)
                    .context("--max-header must fit 32 bits")?,
                max_body: args.max_body,
            },
        }),
        _ => None,
    };
    let out = crate::target::resolve(&args.backend, &args.spawn, address)?;
    if out.is_empty() {
        bail!(
            "nothing to test: give --backend all|NAME..., --spawn 'CMD', or --tcp ADDR --udp ADDR"
        );
    }
    Ok(out)
}

/// The catalogue in `format`.
pub fn list(cases: &[Case], format: ListFormat) -> Result<String> {
    let mut s = String::new();
    match format {
        ListFormat::Text => {
            for c in cases {
                writeln!(s, "{:<5} {:<36} {}", c.id, c.name, c.title)?;
            }
        }
        ListFormat::Json => {
            let v: Vec<_> = cases
                .iter()
                .map(|c| serde_json::json!({"id": c.id, "name": c.name, "category": c.category_name(), "title": c.title, "rule": c.rule, "needs": needs(c)}))
                .collect();
            s = serde_json::to_string_pretty(&v)? + "\n";
        }
        ListFormat::Markdown => {
            writeln!(s, "# Conformance cases")?;
            writeln!(s)?;
            writeln!(
                s,
                "Generated by `sockbench conform --list --format markdown`; do not edit by hand"
            )?;
            writeln!(
                s,
                "(a test fails when this file and the catalogue differ). Each case quotes the rule"
            )?;
            writeln!(
                s,
                "of [protocol.md](protocol.md) it checks, by section. {} cases.",
                cases.len()
            )?;
            writeln!(s)?;
            writeln!(
                s,
                "A target that cannot provide what a case needs makes it UNSUPPORTED: `concurrent` (the"
            )?;
            writeln!(
                s,
                "ready line's `concurrent`), `storage` (the harness can read the storage directory),"
            )?;
            writeln!(
                s,
                "`lifecycle` (the harness started the server), `process` (its pid, for memory). Cases"
            )?;
            writeln!(s, "marked `serial` run alone, after the parallel ones.")?;
            let mut category = "";
            for c in cases {
                if c.category_name() != category {
                    category = c.category_name();
                    writeln!(s)?;
                    writeln!(s, "## {}. {}", c.category(), category)?;
                    writeln!(s)?;
                    writeln!(s, "| id | name | checks | rule | needs |")?;
                    writeln!(s, "|---|---|---|---|---|")?;
                }
                writeln!(
                    s,
                    "| {} | `{}` | {} | {} | {} |",
                    c.id,
                    c.name,
                    c.title.replace('|', "\\|"),
                    c.rule.replace('|', "\\|"),
                    needs(c)
                )?;
            }
        }
    }
    Ok(s)
}

fn needs(c: &Case) -> String {
    let mut v = Vec::new();
    for (flag, name) in [
        (c.needs.concurrency, "concurrent"),
        (c.needs.storage, "storage"),
        (c.needs.lifecycle, "lifecycle"),
        (c.needs.process, "process"),
        (c.serial, "serial"),
    ] {
        if flag {
            v.push(name);
        }
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// Cases whose failure means unbounded memory.
const MEMORY_CASES: [&str; 5] = ["5.6", "5.7", "5.8", "5.9", "6.17"];

/// The robustness document: the matrix of every case on every target, with
/// crashes, leaked files and memory bounds counted.
pub fn matrix(run: &ConformRun, cases: &[Case], command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Robustness: malformed input and faults on every back-end
"
    );
    let _ = writeln!(s, "Generated by `sockbench {command}` (seed {}, {} cases, {:.0} s); regenerate with `just robustness`, do not edit by hand.
", run.seed, run.cases.len(), run.duration_s);
    let died = run
        .results
        .iter()
        .filter(|r| {
            r.expected.as_deref() == Some("the server to keep running")
                || matches!(r.outcome, Outcome::Timeout | Outcome::HarnessError)
        })
        .count();
    let leaks = run
        .results
        .iter()
        .filter(|r| {
            r.outcome == Outcome::Fail && cases.iter().any(|c| c.id == r.case && c.needs.storage)
        })
        .count();
    let memory: Vec<String> = run
        .results
        .iter()
        .filter(|r| MEMORY_CASES.contains(&r.case.as_str()) && r.outcome == Outcome::Fail)
        .map(|r| format!("{} on {}", r.case, r.target))
        .collect();
    let fails = run
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    let _ = writeln!(
        s,
        "- crashes: **{died}** (a server that died during a case, a TIMEOUT or a HARNESS-ERROR)"
    );
    let _ = writeln!(
        s,
        "- leaked files: **{leaks}** (failures among the cases that inspect the storage directory)"
    );
    let _ = writeln!(
        s,
        "- memory out of bounds: **{}** ({})",
        memory.len(),
        if memory.is_empty() {
            "5.6-5.9 and 6.17 pass wherever they run".to_owned()
        } else {
            memory.join(", ")
        }
    );
    let _ = writeln!(s, "- failures in all: **{fails}**; UNSUPPORTED cells are cases a target declares it cannot be asked (blocking is not concurrent)
");
    let _ = write!(s, "| case | checks |");
    for t in &run.targets {
        let _ = write!(s, " {} |", t.name);
    }
    let _ = write!(
        s,
        "
|---|---|"
    );
    for _ in &run.targets {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s);
    for c in &run.cases {
        let _ = write!(
            s,
            "| {} `{}` | {} |",
            c.id,
            c.name,
            c.title.replace('|', "\\|")
        );
        for t in &run.targets {
            let _ = write!(
                s,
                " {} |",
                run.result(&c.id, &t.name).map_or("-".into(), |r| r.label())
            );
        }
        let _ = writeln!(s);
    }
    s
}

/// The terminal summary.
pub fn summary(run: &ConformRun) -> String {
    let mut s = String::new();
    let counts = run.counts();
    let _ = writeln!(
        s,
        "\nseed {} ({} cases, {:.1} s)",
        run.seed,
        run.cases.len(),
        run.duration_s
    );
    for t in &run.targets {
        let c = counts.get(&t.name).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<14} {:>3} PASS {:>3} FAIL {:>3} UNSUPPORTED {:>3} TIMEOUT {:>3} HARNESS-ERROR  {}",
            t.name,
            c.pass,
            c.fail,
            c.unsupported,
            c.timeout,
            c.harness_error,
            if c.failing == 0 { "ok" } else { "FAILS" }
        );
    }
    for r in run.results.iter().filter(|r| r.fails_run()) {
        let name = run
            .cases
            .iter()
            .find(|c| c.id == r.case)
            .map_or("", |c| c.name.as_str());
        let _ = writeln!(s, "  {} {} {} on {}", r.label(), r.case, name, r.target);
        if r.outcome == Outcome::Fail {
            let _ = writeln!(
                s,
                "      expected: {}",
                r.expected.as_deref().unwrap_or("-")
            );
            let _ = writeln!(s, "      actual:   {}", r.actual.as_deref().unwrap_or("-"));
        } else if let Some(why) = &r.reason {
            let _ = writeln!(s, "      {why}");
        }
    }
    let _ = writeln!(
        s,
        "{}",
        if run.passed() {
            "conform: ok"
        } else {
            "conform: FAILED"
        }
    );
    s
}
