//! Runs cases on targets: in parallel where they are independent (each on
//! its own freshly started server), serially where they measure or the
//! target is shared; every case under a deadline, the whole run under a
//! watchdog, every child reaped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rustix::process::{Pid, Signal, kill_process};

use super::case::{Case, CaseError, Ctx};
use super::targets::{Instance, NotReady, TargetSpec, dialect_of, instantiate};
use super::under::{self, Condition, Under};
use crate::dialect::{Dialect, Life};
use crate::peer::wirelog::WireLog;
use crate::schema::conform::{
    AfterCase, CaseInfo, CaseRun, ConformRun, KnownFailing, Outcome, TargetInfo,
};
use crate::target::kill_all_children;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The targets, in column order.
    pub targets: Vec<TargetSpec>,
    /// The cases, in id order.
    pub cases: Vec<Case>,
    /// The run's seed.
    pub seed: u64,
    /// Cases run at once.
    pub jobs: usize,
    /// Known failures.
    pub known_failing: KnownFailing,
    /// Bound on the whole run; cases not started by then are TIMEOUT.
    pub watchdog: Duration,
    /// The sockbench executable, for `--backend` targets.
    pub exe: PathBuf,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// The conditions, each a column per target (`quiet` alone by default).
    pub conditions: Vec<Condition>,
    /// How the conditions are set up, per target (the load's rate is).
    pub under: Vec<Under>,
    /// The dialect of the targets that are not our back-ends.
    pub dialect: Dialect,
    /// How many times a failed case is run again; one that then passes
    /// is flaky.
    pub reruns: usize,
    /// A flaky case does not fail the run.
    pub allow_flaky: bool,
}

impl RunOptions {
    /// The columns: every target under every condition.
    fn columns(&self) -> Vec<(usize, Condition)> {
        (0..self.targets.len())
            .flat_map(|t| self.conditions.iter().map(move |&k| (t, k)))
            .collect()
    }
}

/// A column's name: the target's, with the condition unless quiet.
pub fn column_name(spec: &TargetSpec, cond: Condition) -> String {
    match cond {
        Condition::Quiet => spec.name(),
        c => format!("{}@{c}", spec.name()),
    }
}

/// Runs every case on every target.
pub fn run(opts: &RunOptions) -> ConformRun {
    let started = Instant::now();
    let stop_by = started + opts.watchdog;
    hard_stop(opts.watchdog);
    let columns = opts.columns();
    let jobs: Vec<(usize, usize)> = (0..columns.len())
        .flat_map(|t| (0..opts.cases.len()).map(move |c| (t, c)))
        .collect();
    let (parallel, serial): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .partition(|&(t, c)| opts.targets[columns[t].0].spawns() && !opts.cases[c].serial);
    let bar = if opts.progress {
        ProgressBar::new((parallel.len() + serial.len()) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("conform {bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let one_shot: Vec<AtomicBool> = columns.iter().map(|_| AtomicBool::new(false)).collect();
    let one = |&(t, c): &(usize, usize)| {
        let (spec, cond) = columns[t];
        let (r, exited) = run_job(
            &opts.targets[spec],
            cond,
            spec,
            &opts.cases[c],
            opts,
            stop_by,
        );
        if exited {
            one_shot[t].store(true, Ordering::Relaxed);
        }
        bar.set_message(format!("{} {} {}", r.target, r.case, r.outcome.as_str()));
        bar.inc(1);
        r
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build();
    let pool = pool.ok();
    let mut results: Vec<CaseRun> = match &pool {
        Some(pool) => pool.install(|| parallel.par_iter().map(one).collect()),
        None => parallel.iter().map(one).collect(),
    };
    // Serial jobs include every case on an address target, in catalogue
    // order. When a case there does not pass and the address no longer
    // accepts connections, the target has died or stopped listening: that is
    // said once, and its later cases are NOT-RUN rather than a FAIL each.
    let mut stopped: Vec<Option<String>> = vec![None; columns.len()];
    for job @ &(t, c) in &serial {
        let (spec, cond) = columns[t];
        if let Some(after) = &stopped[t] {
            results.push(not_run(&opts.targets[spec], cond, &opts.cases[c], after));
            bar.inc(1);
            continue;
        }
        let r = one(job);
        // Seen in /proc/net, not by a connection: a one-shot server's
        // only accept belongs to the cases.
        if let TargetSpec::Address { tcp, .. } = &opts.targets[spec]
            && *tcp != crate::target::process::NO_ADDRESS
            && !matches!(r.outcome, Outcome::Pass | Outcome::Unsupported)
            && let Err(e) = crate::target::listening(*tcp)
        {
            stopped[t] = Some(format!("{} ({e})", r.case));
        }
        results.push(r);
    }
    bar.finish_and_clear();
    let names: Vec<String> = columns
        .iter()
        .map(|&(t, k)| column_name(&opts.targets[t], k))
        .collect();
    // A failure is run again, as it ran the first time (in parallel or
    // alone); the first outcome stays the verdict, the rerun's beside it.
    let again: Vec<(usize, (usize, usize))> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            opts.reruns > 0
                && matches!(r.outcome, Outcome::Fail | Outcome::Timeout)
                && !r.known_failing
        })
        .filter_map(|(i, r)| {
            let t = names.iter().position(|n| *n == r.target)?;
            let c = opts.cases.iter().position(|c| c.id == r.case)?;
            stopped[t].is_none().then_some((i, (t, c)))
        })
        .collect();
    let rerun = |&(i, (t, c)): &(usize, (usize, usize))| {
        let (spec, cond) = columns[t];
        let mut last = Outcome::Fail;
        for _ in 0..opts.reruns {
            last = run_job(
                &opts.targets[spec],
                cond,
                spec,
                &opts.cases[c],
                opts,
                stop_by,
            )
            .0
            .outcome;
            if last == Outcome::Pass {
                break;
            }
        }
        (i, last)
    };
    let (alone, together): (Vec<_>, Vec<_>) = again
        .into_iter()
        .partition(|&(_, (t, c))| opts.cases[c].serial || !opts.targets[columns[t].0].spawns());
    let mut again: Vec<(usize, Outcome)> = match &pool {
        Some(pool) => pool.install(|| together.par_iter().map(rerun).collect()),
        None => together.iter().map(rerun).collect(),
    };
    again.extend(alone.iter().map(rerun));
    for (i, o) in again {
        results[i].rerun = Some(o);
        results[i].flaky_allowed = opts.allow_flaky;
    }
    let order = |r: &CaseRun| {
        let t = names.iter().position(|n| *n == r.target).unwrap_or(0);
        let c = opts.cases.iter().position(|c| c.id == r.case).unwrap_or(0);
        (t, c)
    };
    results.sort_by_key(order);
    ConformRun::new(
        opts.seed,
        started,
        columns
            .iter()
            .zip(stopped)
            .zip(&one_shot)
            .map(|((&(t, cond), stopped_after), one_shot)| {
                let info = super::targets::info(&opts.targets[t], &opts.exe);
                let dialect = dialect_of(&opts.targets[t], &opts.dialect);
                let mut notes = Vec::new();
                if one_shot.load(Ordering::Relaxed) && dialect.life != Life::OneConnection {
                    notes.push(
                        "a one-shot server (it exited after serving its connection): started again for each case".to_owned(),
                    );
                }
                TargetInfo {
                    name: column_name(&opts.targets[t], cond),
                    stopped_after,
                    dialect: (!dialect.contract).then(|| dialect.name.clone()),
                    notes,
                    condition: (cond != Condition::Quiet).then(|| cond.to_string()),
                    base: (cond != Condition::Quiet).then(|| info.name.clone()),
                    ..info
                }
            })
            .collect(),
        opts
            .cases
            .iter()
            .map(|c| CaseInfo {
                id: c.id.into(),
                name: c.name.into(),
                category: c.category_name().into(),
                title: c.title.into(),
                rule: c.rule.into(),
            })
            .collect(),
        results,
    )
}

/// If the run outlives its watchdog by every case's worst deadline, the
/// harness is stuck: kill the children and exit rather than hang.
fn hard_stop(watchdog: Duration) {
    let limit = watchdog + Duration::from_secs(180);
    let _ = thread::Builder::new().name("watchdog".into()).spawn(move || {
        thread::sleep(limit);
        kill_all_children();
        eprintln!("sockbench conform: the run exceeded its watchdog by 3 minutes; child servers killed");
        std::process::exit(3);
    });
}

/// A stable per-case seed: the run's seed mixed with the case id (FNV-1a).
pub fn case_seed(seed: u64, id: &str) -> u64 {
    id.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The result of a case skipped because its target stopped answering.
fn not_run(spec: &TargetSpec, cond: Condition, case: &Case, after: &str) -> CaseRun {
    CaseRun {
        reason: Some(format!(
            "not run: the target stopped accepting connections after case {after}"
        )),
        ..CaseRun::new(case.id, &column_name(spec, cond), Outcome::NotRun)
    }
}

/// One case on one column; true beside it when a started server exited
/// on its own during a case that did not stop it (a one-shot server).
fn run_job(
    spec: &TargetSpec,
    cond: Condition,
    t: usize,
    case: &Case,
    opts: &RunOptions,
    stop_by: Instant,
) -> (CaseRun, bool) {
    let start = Instant::now();
    let target = column_name(spec, cond);
    let mut result = CaseRun {
        known_failing: opts.known_failing.contains(&target, case.id),
        ..CaseRun::new(case.id, &target, Outcome::Pass)
    };
    if Instant::now() >= stop_by {
        result.outcome = Outcome::Timeout;
        result.reason = Some(format!(
            "not run: the run's watchdog ({:?}) expired",
            opts.watchdog
        ));
        return (result, false);
    }
    let seed = case_seed(opts.seed, case.id);
    let condition = instantiate(spec, case, &opts.exe, &opts.dialect).and_then(|mut i| {
        let (held, tcp) = under::apply(cond, &opts.under[t], &i, case, seed)?;
        i.case_tcp = tcp;
        Ok((i, held))
    });
    let (instance, held) = match condition {
        Ok(i) => i,
        Err(NotReady::Unsupported(why)) => {
            result.outcome = Outcome::Unsupported;
            result.reason = Some(why);
            result.duration_ms = start.elapsed().as_secs_f64() * 1e3;
            return (result, false);
        }
        Err(NotReady::Failed(why)) => {
            result.outcome = Outcome::Fail;
            result.expected = Some("the server to start and print its ready line".into());
            result.actual = Some(why);
            result.duration_ms = start.elapsed().as_secs_f64() * 1e3;
            return (result, false);
        }
        Err(NotReady::Harness(why)) => {
            result.outcome = Outcome::HarnessError;
            result.reason = Some(why);
            return (result, false);
        }
    };
    let log = WireLog::default();
    let started_here = instance.server.is_started();
    let (outcome, instance) = execute(case, instance, &log, seed);
    apply(&mut result, outcome, started_here);
    // A case that ends the server ends the background load's connections too.
    if let Some(why) = held.finish(case.needs.lifecycle)
        && result.outcome == Outcome::Pass
    {
        result.outcome = Outcome::Fail;
        result.expected = Some(format!("the case to pass while under {cond}"));
        result.actual = Some(why);
    }
    let mut exited = false;
    if let Some(mut inst) = instance {
        let plain = spec.is_plain();
        let one_connection = inst.dialect.life == Life::OneConnection;
        if let Some(server) = inst.server.child() {
            let died = !case.needs.lifecycle && !server.is_running();
            // A plain program that exits cleanly after its connection is a
            // one-shot server: said once for the run; each case starts it
            // again anyway. A crash is still a failure.
            let clean = died
                && server
                    .wait_exit(Duration::ZERO)
                    .is_some_and(|s| s.success());
            exited = died && plain && (clean || one_connection);
            if died && !exited {
                let how = server
                    .wait_exit(Duration::ZERO)
                    .map_or_else(|| "it is gone".to_owned(), |s| s.to_string());
                if result.outcome == Outcome::Pass {
                    result.outcome = Outcome::Fail;
                    result.expected = Some("the server to keep running".into());
                    result.actual = Some(format!("it exited ({how})"));
                }
                result.server_exit = Some(how);
            }
            if !died && !case.needs.lifecycle {
                result.after = Some(after_case(server.pid(), case, result.outcome));
            }
            if result.outcome != Outcome::Pass {
                result.stderr_tail = Some(server.stderr_tail());
            }
        }
    }
    if result.outcome != Outcome::Pass {
        let (events, dropped) = log.snapshot();
        result.wire_log = events;
        result.wire_log_dropped = dropped;
    }
    result.duration_ms = start.elapsed().as_secs_f64() * 1e3;
    (result, exited)
}

/// What the server's process tree holds once a case is over: zombies and
/// live children (given up to 300 ms to end), and after a case that
/// cut a connection or failed, its CPU share over 200 ms of quiet.
fn after_case(pid: u32, case: &Case, outcome: Outcome) -> AfterCase {
    use crate::measure::proc;
    let settle = Instant::now() + Duration::from_millis(300);
    let mut tree = proc::tree(pid);
    while (tree.zombies > 0 || tree.live > 0) && Instant::now() < settle {
        thread::sleep(Duration::from_millis(20));
        tree = proc::tree(pid);
    }
    let idle_cpu_percent = (outcome != Outcome::Pass || super::causes::CUTS.contains(&case.id))
        .then(|| {
            let window = Duration::from_millis(200);
            let (c0, t0) = (proc::tree_cpu(pid), Instant::now());
            thread::sleep(window);
            (proc::tree_cpu(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0
        });
    AfterCase {
        zombies: tree.zombies,
        children: tree.live,
        idle_cpu_percent,
    }
}

enum Finish {
    Done(Result<(), CaseError>),
    Panicked(String),
    TimedOut(Duration),
}

/// Runs the case on its own thread under its deadline. On timeout the
/// server is killed, which ends the case's waits, and the instance is lost
/// with the thread (its `Drop` reaps the child).
fn execute(
    case: &Case,
    instance: Instance,
    log: &WireLog,
    seed: u64,
) -> (Finish, Option<Instance>) {
    let (tx, rx) = mpsc::channel();
    let pid = instance
        .server
        .pid()
        .filter(|_| instance.server.is_started());
    let run = case.run;
    let log = log.clone();
    let spawned = thread::Builder::new()
        .name(format!("case-{}", case.id))
        .spawn(move || {
            let mut instance = instance;
            let verdict = {
                let server = &mut instance.server;
                let mut ctx = Ctx::new(instance.case_tcp, server.udp(), instance.wire, seed);
                ctx.log = log;
                ctx.dialect = instance.dialect.clone();
                ctx.sandbox = server.sandbox().map(std::path::Path::to_path_buf);
                ctx.storage = server.storage().map(std::path::Path::to_path_buf);
                ctx.pid = server.pid();
                ctx.concurrent = server.concurrent();
                ctx.server = server.child();
                match catch_unwind(AssertUnwindSafe(|| run(&mut ctx))) {
                    Ok(r) => Finish::Done(r),
                    Err(p) => Finish::Panicked(
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default(),
                    ),
                }
            };
            let _ = tx.send((verdict, instance));
        });
    if let Err(e) = spawned {
        return (
            Finish::Done(Err(CaseError::Harness(format!(
                "cannot start a case thread: {e}"
            )))),
            None,
        );
    }
    match rx.recv_timeout(case.timeout) {
        Ok((verdict, instance)) => (verdict, Some(instance)),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| Pid::from_raw(p as i32)) {
                let _ = kill_process(pid, Signal::KILL);
            }
            // The case's waits end once the server is gone; give it a moment.
            let instance = rx.recv_timeout(Duration::from_secs(5)).ok().map(|(_, i)| i);
            (Finish::TimedOut(case.timeout), instance)
        }
    }
}

fn apply(result: &mut CaseRun, verdict: Finish, started_here: bool) {
    match verdict {
        Finish::Done(Ok(())) => result.outcome = Outcome::Pass,
        Finish::Done(Err(CaseError::Fail(f))) => {
            result.outcome = Outcome::Fail;
            result.expected = Some(f.expected);
            result.actual = Some(f.actual);
            result.finding_named = f.finding.is_some();
            result.finding = Some(
                f.finding
                    .unwrap_or(super::causes::usual(&result.case))
                    .into(),
            );
            result.finding_detail = f.detail;
        }
        Finish::Done(Err(CaseError::Unsupported(why))) => {
            result.outcome = Outcome::Unsupported;
            result.reason = Some(why);
        }
        Finish::Done(Err(CaseError::Harness(why))) => {
            result.outcome = Outcome::HarnessError;
            result.reason = Some(why);
        }
        Finish::Panicked(msg) => {
            result.outcome = Outcome::HarnessError;
            result.reason = Some(format!("the case panicked: {msg}"));
        }
        Finish::TimedOut(limit) => {
            result.outcome = Outcome::Timeout;
            result.finding = Some(super::causes::usual(&result.case).into());
            result.reason = Some(if started_here {
                format!("no verdict within the case's deadline of {limit:?}; the server was killed")
            } else {
                format!(
                    "no verdict within the case's deadline of {limit:?}; the server, given by address, was left running"
                )
            });
        }
    }
}
