//! `sockbench learn`: the dialect of a user's own code, from what crossed
//! the wire when their client talked to their server through a recording
//! proxy (or to sockbench listening silently). The inference itself is
//! [`crate::dialect::infer`]; this runs the programs and records.

pub mod command;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::dialect::infer::{Conn, Exchange};
use crate::target::parse_spawn;
use crate::target::server::{Launch, Server};

/// Why learning could not run.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The server did not start.
    #[error("the server did not start: {0}")]
    Server(String),
    /// The client could not be run.
    #[error("cannot run the client {cmd:?}: {why}")]
    Client {
        /// Its command line.
        cmd: String,
        /// Why.
        why: String,
    },
    /// A command line or a file is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A local socket or file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server's command, with `{tcp_port}` (none: listen silently).
    pub server: Option<String>,
    /// The client's command, with `{tcp_port}` and `{file}`.
    pub client: String,
    /// The client's standard input, `{file}` substituted in it.
    pub stdin: Option<PathBuf>,
    /// The file given to the client (none: one learn makes).
    pub file: Option<PathBuf>,
    /// How long the client may run.
    pub deadline: Duration,
}

/// What the client did, beside the exchange.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// Its exit status, or how it was stopped.
    pub status: String,
    /// The end of its output, for a person to read when it failed.
    pub output: String,
}

/// A file of text lines: an upload client sends it whole, an echo client
/// line by line, and neither chokes on it.
fn sample() -> Vec<u8> {
    (0..60)
        .map(|i| format!("line {i:02}: the quick brown fox jumps over the lazy dog\n"))
        .collect::<String>()
        .into_bytes()
}

/// Runs the plan and returns what crossed the wire.
pub fn record(plan: &Plan) -> Result<(Exchange, ClientRun), LearnError> {
    let work = tempfile::Builder::new()
        .prefix("sockbench-learn-")
        .tempdir()?;
    let (file_path, file) = match &plan.file {
        Some(p) => (
            std::fs::canonicalize(p)?.to_string_lossy().into_owned(),
            std::fs::read(p)
                .map_err(|e| LearnError::Invalid(format!("--file {}: {e}", p.display())))?,
        ),
        None => {
            let p = work.path().join("sample.txt");
            std::fs::write(&p, sample())?;
            (p.to_string_lossy().into_owned(), sample())
        }
    };
    let mut server = match &plan.server {
        Some(cmd) => {
            if !cmd.contains("{tcp_port}") {
                return Err(LearnError::Invalid(format!(
                    "--server {cmd:?}: put {{tcp_port}} where the program takes its port"
                )));
            }
            let spec = parse_spawn(cmd).map_err(|e| LearnError::Invalid(format!("{e:#}")))?;
            let exe = std::env::current_exe()?;
            Some(
                Server::start(&spec, &exe, &Launch::new("learn"))
                    .map_err(|e| LearnError::Server(e.to_string()))?,
            )
        }
        None => None,
    };
    let upstream = server.as_ref().map(Server::tcp);
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let conns: Arc<Mutex<Vec<Arc<Mutex<Conn>>>>> = Arc::default();
    let activity = Arc::new(Mutex::new(Instant::now()));
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let conns = Arc::clone(&conns);
        let activity = Arc::clone(&activity);
        let stop = Arc::clone(&stop);
        listener.set_nonblocking(true)?;
        thread::spawn(move || accept_loop(&listener, upstream, &conns, &activity, &stop))
    };
    let run = run_client(plan, port, &file_path, &activity, upstream.is_none());
    // Let the last bytes through, then stop: bounded.
    let quiet_by = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_by
        && activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
            < Duration::from_millis(200)
    {
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let pumps = acceptor.join().unwrap_or_default();
    for p in pumps {
        let _ = p.join();
    }
    let server_exited = match server.as_mut() {
        Some(s) => {
            let by = Instant::now() + Duration::from_secs(1);
            while s.is_running() && Instant::now() < by {
                thread::sleep(Duration::from_millis(20));
            }
            !s.is_running()
        }
        None => false,
    };
    let run = run?;
    let conns = conns
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|c| c.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .collect();
    Ok((
        Exchange {
            conns,
            file_path,
            file,
            server_exited,
            server_seen: server.is_some(),
        },
        run,
    ))
}

/// Accepts until told to stop; each connection pumped (or, without a
/// server, only read) on threads whose handles are returned.
fn accept_loop(
    listener: &TcpListener,
    upstream: Option<SocketAddr>,
    conns: &Mutex<Vec<Arc<Mutex<Conn>>>>,
    activity: &Arc<Mutex<Instant>>,
    stop: &AtomicBool,
) -> Vec<thread::JoinHandle<()>> {
    let mut pumps = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok((client, _)) = listener.accept() else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = client.set_nonblocking(false);
        let rec = Arc::new(Mutex::new(Conn::default()));
        conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&rec));
        let server =
            upstream.and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).ok());
        let client_done = Arc::new(AtomicBool::new(false));
        if let Some(server) = server {
            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            let (r, a, d) = (
                Arc::clone(&rec),
                Arc::clone(activity),
                Arc::clone(&client_done),
            );
            pumps.push(thread::spawn(move || {
                pump(client, Some(server), &r, &a, true, &|| {
                    d.store(true, Ordering::SeqCst)
                });
            }));
            let (r, a, d) = (Arc::clone(&rec), Arc::clone(activity), client_done);
            pumps.push(thread::spawn(move || {
                let r2 = Arc::clone(&r);
                pump(s2, Some(c2), &r, &a, false, &|| {
                    if !d.load(Ordering::SeqCst) {
                        r2.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .server_closed_first = true;
                    }
                });
            }));
        } else {
            let (r, a) = (Arc::clone(&rec), Arc::clone(activity));
            pumps.push(thread::spawn(move || {
                pump(client, None, &r, &a, true, &|| {})
            }));
        }
    }
    pumps
}

/// Copies `from` to `to` (nowhere for a silent listener), recording what
/// passed; at end of stream, says so (`at_end`, before the half-close is
/// passed on, so which side closed first is told right). Every read waits
/// at most a second, so a stop is seen.
fn pump(
    mut from: TcpStream,
    mut to: Option<TcpStream>,
    rec: &Mutex<Conn>,
    activity: &Mutex<Instant>,
    to_server: bool,
    at_end: &dyn Fn(),
) {
    let silent = to.is_none();
    let _ = from.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 64 * 1024];
    let until = Instant::now() + Duration::from_secs(120);
    while Instant::now() < until {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                *activity.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
                {
                    let mut r = rec.lock().unwrap_or_else(PoisonError::into_inner);
                    if to_server {
                        r.to_server.extend_from_slice(&buf[..n]);
                    } else {
                        r.to_client.extend_from_slice(&buf[..n]);
                    }
                }
                if let Some(to) = to.as_mut()
                    && to.write_all(&buf[..n]).is_err()
                {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Idle: a silent listener ends once the client went quiet
                // after sending; a proxied connection waits for its ends.
                let idle = activity
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .elapsed();
                if silent && idle > Duration::from_secs(2) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    at_end();
    match to {
        Some(to) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        None => {
            let _ = from.shutdown(Shutdown::Both);
        }
    }
}

/// Runs the client with its placeholders filled, until it exits or the
/// deadline (or, with a silent listener, until it has sent and then gone
/// quiet: it may wait forever for a reply that will not come).
fn run_client(
    plan: &Plan,
    port: u16,
    file: &str,
    activity: &Mutex<Instant>,
    silent: bool,
) -> Result<ClientRun, LearnError> {
    let fill = |s: &str| {
        s.replace("{tcp_port}", &port.to_string())
            .replace("{file}", file)
    };
    let argv = shlex::split(&plan.client)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| LearnError::Invalid(format!("cannot parse --client {:?}", plan.client)))?;
    let argv: Vec<String> = argv.iter().map(|a| fill(a)).collect();
    let out_dir = tempfile::tempdir()?;
    let out_path = out_dir.path().join("output");
    let out = std::fs::File::create(&out_path)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null());
    let stdin_text = match &plan.stdin {
        Some(p) => Some(fill(&std::fs::read_to_string(p).map_err(|e| {
            LearnError::Invalid(format!("--stdin {}: {e}", p.display()))
        })?)),
        None => None,
    };
    if stdin_text.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| LearnError::Client {
        cmd: plan.client.clone(),
        why: e.to_string(),
    })?;
    if let (Some(text), Some(mut input)) = (stdin_text, child.stdin.take()) {
        let _ = input.write_all(text.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s.to_string();
        }
        let idle = activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed();
        let sent = idle < started.elapsed();
        if silent && sent && idle > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            break "stopped: it waited for a reply after sending (learn listened silently)".into();
        }
        if started.elapsed() > plan.deadline {
            let _ = child.kill();
            let _ = child.wait();
            break format!("killed after {:?}", plan.deadline);
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read(&out_path).unwrap_or_default();
    let tail = String::from_utf8_lossy(&output[output.len().saturating_sub(2000)..]).into_owned();
    Ok(ClientRun {
        status,
        output: tail,
    })
}
