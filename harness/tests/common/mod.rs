//! Helpers for the end-to-end tests: spawn `sockbench serve`, connect, poll.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use serde_json::{Value, json};
use sockbench::peer::client::{Client, Frame};
use sockbench::target::process::Spawned;
use sockbench_wire::WireConfig;

/// The deadline of every wait in these tests.
pub const T: Duration = Duration::from_secs(10);

pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sockbench"))
}

/// The workspace root, where fixtures/ and docs/ are.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `sockbench COMMAND ARGS --no-progress --out OUT` from the root.
pub fn run_out(command: &str, args: &[&str], out: &Path) -> Output {
    Command::new(exe())
        .arg(command)
        .args(args)
        .args(["--no-progress", "--out"])
        .arg(out)
        .current_dir(root())
        .output()
        .expect("sockbench runs")
}

/// The results.json a run `o` wrote into `out`; a missing one fails with
/// what the run printed.
pub fn results_of<R: DeserializeOwned>(out: &Path, o: &Output) -> R {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap_or_else(|e| {
        panic!(
            "no results.json ({e}):\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    serde_json::from_str(&text).expect("results.json parses")
}

/// A server of `backend` with its own storage directory.
pub struct Server {
    pub proc: Spawned,
    pub storage: tempfile::TempDir,
    pub wire: WireConfig,
}

impl Server {
    pub fn start(backend: &str, extra: &[&str]) -> Server {
        let storage = tempfile::tempdir().unwrap();
        let dir = storage.path().to_str().unwrap().to_owned();
        let mut args = vec!["--storage", &dir, "--no-fsync", "--grace", "1"];
        args.extend_from_slice(extra);
        let proc = Spawned::backend(exe(), backend, &args, T).unwrap();
        let endian = if extra.contains(&"big") {
            sockbench_wire::Endian::Big
        } else {
            Default::default()
        };
        Server {
            proc,
            storage,
            wire: WireConfig {
                endian,
                ..WireConfig::default()
            },
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.proc.ready.tcp, self.wire, T).unwrap()
    }

    pub fn dir(&self) -> PathBuf {
        self.storage.path().to_owned()
    }

    /// One stats reply on a fresh connection (which counts in `connections`
    /// and `active`).
    pub fn stats(&self) -> Value {
        self.try_stats().unwrap()
    }

    fn try_stats(&self) -> Result<Value, sockbench::peer::client::ClientError> {
        let mut c = Client::connect(self.proc.ready.tcp, self.wire, T)?;
        let r = c.request(&json!({"op": "stats", "file_size": 0}), b"", T)?;
        assert!(r.is_ok(), "{:?}", r.header);
        Ok(r.header)
    }

    /// Polls stats until `pred` holds (the server sees a close
    /// asynchronously). A poll refused by a connection cap is retried.
    pub fn stats_until(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let s = self.try_stats();
            match &s {
                Ok(v) if pred(v) => return v.clone(),
                _ => assert!(
                    Instant::now() < deadline,
                    "stats never satisfied the condition: {s:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Names in a directory, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    sockbench_wire::md5_hex(&Md5::digest(data).into())
}

pub fn code(f: &Frame) -> &str {
    f.error_code().unwrap_or("<not an error>")
}

/// Fails unless `listed` names every back-end of the harness's one list
/// (only the concurrent ones when `concurrent_only`), in its order: a
/// suite that lists back-ends by hand cannot miss a new one.
pub fn assert_every_backend(listed: &[&str], concurrent_only: bool) {
    let want: Vec<&str> = sockbench::serve::backends::all()
        .iter()
        .filter(|b| !concurrent_only || b.capabilities().concurrent)
        .map(|b| b.name())
        .collect();
    assert_eq!(listed, want.as_slice(), "the suite's back-ends");
}

/// The command that runs the Python fixtures: the interpreter `python3`
/// resolves to (past a version manager's shim) with `-S`, resolved once.
/// The fixtures use the standard library only, and the suites start them
/// about 1,700 times: through a pyenv shim with site imports each start
/// cost 0.16 s of CPU against 0.1 s, and the broken-server run took 268 s
/// against 157 s.
pub fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let o = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed for the fixtures");
        let exe = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        assert!(
            o.status.success() && !exe.is_empty() && !exe.contains(' '),
            "python3 names no interpreter: {exe:?}"
        );
        format!("{exe} -S")
    })
}

/// True when `backend` can run on this machine. When it cannot (io_uring
/// missing or forbidden), the refusal is what is checked instead: `serve`
/// exits 2 with one line giving the probe's reason. The caller then has
/// nothing more to check here, and stderr says so.
pub fn available(backend: &str) -> bool {
    let probe = sockbench::serve::backends::find(backend).map(|b| b.probe());
    let Some(Err(why)) = probe else {
        return true;
    };
    let o = std::process::Command::new(exe())
        .args(["serve", "--backend", backend])
        .args(["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{backend}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&why.0), "{err}");
    eprintln!("{backend} is unavailable here ({why}): only its refusal was checked");
    false
}
