//! The disk as the oracle: what a server stored is read back from its
//! storage directory and compared with what was sent, whether or not it
//! replied. A write outside the directory is seen where it landed: a
//! started server's storage sits inside a sandbox directory the harness
//! watches, so `../x` from the storage lands in view.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::case::{CaseError, Ctx, fail};
use crate::peer::client::Client;

/// How long a directory must stay unchanged to count as settled: a server
/// that will not store a file has stopped writing well before.
pub const SETTLE: Duration = Duration::from_millis(1000);

/// After the server closed the connection or exited, a shorter quiet
/// suffices: nothing more is coming.
const SETTLE_CLOSED: Duration = Duration::from_millis(200);

/// The files under a directory, by path relative to it, with contents.
pub type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// Every regular file under `root` (recursively), read whole; `skip` is a
/// subdirectory left out.
pub fn snapshot(root: &Path, skip: Option<&Path>) -> Snapshot {
    let mut out = Snapshot::new();
    let mut todo = vec![root.to_path_buf()];
    // Bounded: a storage directory of a case holds a few dozen files.
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if Some(p.as_path()) == skip {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t) if t.is_file() => {
                    let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
                    out.insert(rel, std::fs::read(&p).unwrap_or_default());
                }
                _ => {}
            }
        }
    }
    out
}

/// Where a case looks: the storage, and the places a write outside it
/// would land.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The storage directory.
    pub storage: PathBuf,
    /// The sandbox around it (a started server), watched whole.
    pub sandbox: Option<PathBuf>,
    /// Paths outside the storage a case's names point at (for a server
    /// given by address, whose surroundings are not ours to list).
    pub escapes: Vec<PathBuf>,
}

impl Disk {
    /// The case's disk, or UNSUPPORTED when the storage is not known.
    pub fn of(ctx: &Ctx<'_>) -> Result<Disk, CaseError> {
        Ok(Disk {
            storage: ctx.storage()?.to_path_buf(),
            sandbox: ctx.sandbox.clone(),
            escapes: Vec::new(),
        })
    }

    /// The storage's files now.
    pub fn files(&self) -> Snapshot {
        snapshot(&self.storage, None)
    }

    /// Files written outside the storage, by absolute path.
    pub fn outside(&self) -> Vec<(PathBuf, usize)> {
        let mut out: Vec<(PathBuf, usize)> = match &self.sandbox {
            Some(sb) => snapshot(sb, Some(&self.storage))
                .into_iter()
                .map(|(p, b)| (sb.join(p), b.len()))
                .collect(),
            None => Vec::new(),
        };
        // An escape inside the sandbox was found above under its plain
        // path; `storage/../x` is the same file.
        let seen: Vec<PathBuf> = out
            .iter()
            .filter_map(|(p, _)| std::fs::canonicalize(p).ok())
            .collect();
        for e in &self.escapes {
            if let Ok(m) = std::fs::metadata(e)
                && m.is_file()
                && std::fs::canonicalize(e).is_ok_and(|c| !seen.contains(&c))
            {
                out.push((e.clone(), m.len() as usize));
            }
        }
        out
    }

    /// Fails at once if anything was written outside the storage, naming
    /// where it landed.
    pub fn check_outside(&self) -> Result<(), CaseError> {
        let out = self.outside();
        if out.is_empty() {
            return Ok(());
        }
        // A file the case provoked outside a server's storage given by
        // address lands in the user's directories: said, then removed (its
        // name is the case's own, so nothing else is touched).
        for (p, _) in &out {
            if self.escapes.contains(p) {
                let _ = std::fs::remove_file(p);
            }
        }
        Err(fail(
            "nothing written outside the storage directory",
            out.iter()
                .map(|(p, n)| format!("a {n}-byte file written outside it, at {}", p.display()))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }

    /// Polls until the storage holds exactly `want`, checking for writes
    /// outside it on every look. Gives up when the directory settles
    /// without matching (sooner once the server closed the connection or
    /// exited), or at `wait`; the failure says how it differs.
    pub fn expect(
        &self,
        ctx: &mut Ctx<'_>,
        conn: Option<&mut Client>,
        want: &Snapshot,
        what: &str,
    ) -> Result<(), CaseError> {
        let got = self.settle(ctx, conn, |s| s == want)?;
        if &got.files == want {
            return Ok(());
        }
        let e = fail(what.to_owned(), describe(want, &got));
        Err(match named(want, &got) {
            Some(id) => e.finding(id, None),
            None => e,
        })
    }

    /// Polls until `done` holds of the storage or it settles; returns the
    /// last look. A write outside fails at once.
    pub fn settle(
        &self,
        ctx: &mut Ctx<'_>,
        mut conn: Option<&mut Client>,
        done: impl Fn(&Snapshot) -> bool,
    ) -> Result<Look, CaseError> {
        let start = Instant::now();
        let deadline = start + ctx.wait;
        let mut last = self.files();
        let mut changed = Instant::now();
        loop {
            self.check_outside()?;
            if done(&last) {
                return Ok(Look::new(last, false, None));
            }
            let closed = conn.as_deref_mut().is_some_and(Client::peer_closed);
            let exited = ctx
                .server
                .as_deref_mut()
                .and_then(|s| (!s.is_running()).then(|| s.wait_exit(Duration::ZERO)))
                .flatten();
            let quiet = changed.elapsed();
            if Instant::now() >= deadline
                || quiet >= SETTLE
                || ((closed || exited.is_some()) && quiet >= SETTLE_CLOSED)
            {
                return Ok(Look::new(last, closed, exited.map(|s| s.to_string())));
            }
            std::thread::sleep(Duration::from_millis(10));
            let now = self.files();
            if now != last {
                last = now;
                changed = Instant::now();
            }
        }
    }
}

/// What the storage held when a wait ended, and why it ended.
#[derive(Debug, Clone)]
pub struct Look {
    /// The files.
    pub files: Snapshot,
    /// The server had closed the connection.
    pub closed: bool,
    /// The server process had exited, with this status.
    pub exited: Option<String>,
}

impl Look {
    fn new(files: Snapshot, closed: bool, exited: Option<String>) -> Look {
        Look {
            files,
            closed,
            exited,
        }
    }
}

/// The cause the storage shows, when its first difference is one the
/// lesson's bugs leave: a file holding the next upload's bytes too, or
/// only the start of its own.
pub fn named(want: &Snapshot, got: &Look) -> Option<&'static str> {
    want.iter()
        .find_map(|(name, body)| match got.files.get(name) {
            Some(b) if b.len() > body.len() && b.starts_with(body) => Some("reads-past-body"),
            Some(b) if b.len() < body.len() && body.starts_with(b) => Some("upload-truncated"),
            _ => None,
        })
}

/// How the storage differs from what was sent, in a user's words.
pub fn describe(want: &Snapshot, got: &Look) -> String {
    let mut parts = Vec::new();
    for (name, body) in want {
        let shown = name.display();
        match got.files.get(name) {
            None => parts.push(format!("no file {shown}")),
            Some(b) if b.len() > body.len() && b.starts_with(body) => parts.push(format!(
                "{shown} has {} bytes where {} were sent: {} bytes more, starting {:?} (the next frame's bytes read into this file)",
                b.len(),
                body.len(),
                b.len() - body.len(),
                String::from_utf8_lossy(&b[body.len()..(body.len() + 24).min(b.len())])
            )),
            Some(b) if b.len() < body.len() => parts.push(format!(
                "{shown} has {} of the {} bytes sent (truncated{})",
                b.len(),
                body.len(),
                if body.starts_with(b) {
                    ""
                } else {
                    ", and they differ"
                }
            )),
            Some(b) if b != body => {
                let at = b.iter().zip(body).position(|(x, y)| x != y).unwrap_or(0);
                parts.push(format!(
                    "{shown} has the right size ({} bytes) but differs from byte {at}",
                    b.len()
                ));
            }
            Some(_) => {}
        }
    }
    for (name, b) in &got.files {
        if !want.contains_key(name) {
            parts.push(format!(
                "an unexpected file {} ({} bytes)",
                name.display(),
                b.len()
            ));
        }
    }
    if let Some(status) = &got.exited {
        parts.push(format!("the server process exited ({status})"));
    } else if got.closed {
        parts.push("the server closed the connection".into());
    }
    if parts.is_empty() {
        "the files as sent".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_is_said_in_a_users_words() {
        let mut want = Snapshot::new();
        want.insert("a".into(), b"hello".to_vec());
        want.insert("b".into(), b"world".to_vec());
        want.insert("c".into(), b"12345".to_vec());
        let mut files = Snapshot::new();
        files.insert("a".into(), b"hello\x2a\0\0\0{\"file_size\"".to_vec());
        files.insert("b".into(), b"wor".to_vec());
        files.insert("x.tmp".into(), b"12".to_vec());
        let text = describe(
            &want,
            &Look {
                files,
                closed: true,
                exited: None,
            },
        );
        assert!(text.contains("a has 21 bytes where 5 were sent"), "{text}");
        assert!(text.contains("next frame's bytes"), "{text}");
        assert!(
            text.contains("b has 3 of the 5 bytes sent (truncated)"),
            "{text}"
        );
        assert!(text.contains("no file c"), "{text}");
        assert!(text.contains("unexpected file x.tmp (2 bytes)"), "{text}");
        assert!(text.contains("closed the connection"), "{text}");
    }

    #[test]
    fn a_write_outside_the_storage_is_found_where_it_landed() {
        let sb = tempfile::tempdir().unwrap();
        let storage = sb.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        std::fs::write(storage.join("in"), b"x").unwrap();
        let disk = Disk {
            storage: storage.clone(),
            sandbox: Some(sb.path().to_path_buf()),
            escapes: Vec::new(),
        };
        assert!(disk.check_outside().is_ok());
        std::fs::write(sb.path().join("escaped"), b"abc").unwrap();
        let Err(CaseError::Fail(f)) = disk.check_outside() else {
            panic!("not caught")
        };
        assert!(
            f.actual
                .contains(&sb.path().join("escaped").display().to_string())
        );
        assert_eq!(disk.files().len(), 1);
    }
}
