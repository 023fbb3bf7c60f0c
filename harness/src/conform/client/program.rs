//! The client under test as a process: started in the case's directory
//! with its placeholders filled in, given its stdin, waited for with a
//! deadline, and killed (its whole process group) when it does not end.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use crate::target::absolute_in;
use crate::target::process::{track, untrack};

/// The places and ports a client command's placeholders name.
#[derive(Debug, Clone)]
pub struct Places {
    /// The hostile server's TCP port.
    pub tcp_port: u16,
    /// Its UDP port.
    pub udp_port: u16,
    /// The input file sockbench made.
    pub file: PathBuf,
    /// Where the client writes a fetched body, with `--client-output file`.
    pub out: PathBuf,
    /// The case's directory (also the client's working directory).
    pub dir: PathBuf,
}

impl Places {
    /// `text` with every placeholder filled in.
    pub fn fill(&self, text: &str) -> String {
        text.replace("{tcp_port}", &self.tcp_port.to_string())
            .replace("{udp_port}", &self.udp_port.to_string())
            .replace("{file}", &self.file.to_string_lossy())
            .replace("{out}", &self.out.to_string_lossy())
            .replace("{dir}", &self.dir.to_string_lossy())
    }
}

/// The placeholders a client command may use.
pub const PLACEHOLDERS: [&str; 5] = ["{tcp_port}", "{udp_port}", "{file}", "{out}", "{dir}"];

/// How a client run ended.
#[derive(Debug)]
pub struct Ended {
    /// Its exit status, or `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// How long it ran.
    pub took: Duration,
    /// Where its stdout went.
    pub stdout: PathBuf,
    /// Its stderr.
    pub stderr: String,
}

impl Ended {
    /// Its stdout, at most `max` bytes of it.
    pub fn stdout(&self, max: u64) -> Vec<u8> {
        use std::io::Read as _;
        let mut v = Vec::new();
        if let Ok(f) = File::open(&self.stdout) {
            let _ = f.take(max).read_to_end(&mut v);
        }
        v
    }
}

/// Why a client could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The command line does not parse.
    #[error("cannot parse --client {0:?}")]
    Parse(String),
    /// The program could not be run.
    #[error("cannot start the client {command:?}: {source}")]
    Spawn {
        /// The command as filled in.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Runs `command` (filled in from `places`) in `places.dir`, with `stdin`
/// (text whose placeholders are filled in too) or nothing on its stdin;
/// kills its process group once `deadline` has passed.
pub fn run(
    command: &str,
    places: &Places,
    stdin: Option<&str>,
    deadline: Duration,
) -> Result<Ended, StartError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let argv: Vec<String> = shlex::split(command)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| StartError::Parse(command.to_owned()))?
        .iter()
        .map(|a| absolute_in(&cwd, places.fill(a)))
        .collect();
    let stdout = places.dir.join(".client-stdout");
    let stderr = places.dir.join(".client-stderr");
    let spawn_err = |source| StartError::Spawn {
        command: argv.join(" "),
        source,
    };
    let input = match stdin {
        Some(text) => {
            let filled = places.dir.join(".client-stdin");
            std::fs::write(&filled, places.fill(text)).map_err(spawn_err)?;
            Stdio::from(File::open(&filled).map_err(spawn_err)?)
        }
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&places.dir)
        .stdin(input)
        .stdout(File::create(&stdout).map_err(spawn_err)?)
        .stderr(File::create(&stderr).map_err(spawn_err)?)
        // Its own group: a client that forks (or a shell wrapper) dies whole.
        .process_group(0)
        .env("PYTHONUNBUFFERED", "1");
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(spawn_err)?;
    track(child.id());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => break None,
        }
    };
    let took = start.elapsed();
    // Whatever it left running in its group goes too.
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
    let _ = child.wait();
    untrack(child.id());
    let stderr = std::fs::read(&stderr).unwrap_or_default();
    let tail = &stderr[stderr.len().saturating_sub(16 * 1024)..];
    Ok(Ended {
        status,
        took,
        stdout,
        stderr: String::from_utf8_lossy(tail).into_owned(),
    })
}
