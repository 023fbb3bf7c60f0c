//! Uploads: a temporary file inside the storage directory, written while its
//! MD5 is computed, then flushed and renamed over the target atomically.
//!
//! A reader of `<storage>/<name>` sees the old file or the complete new one;
//! an upload that does not commit leaves nothing (its temporary file is
//! removed on drop, and [`Storage::remove_temporaries`] sweeps what a stuck
//! connection still holds at shutdown).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::digest::Md5;

/// Prefix of temporary upload files; a leading dot keeps them out of plain listings.
pub const TEMP_PREFIX: &str = ".sockbench-";
/// Suffix of temporary upload files.
pub const TEMP_SUFFIX: &str = ".part";

/// Why a name is not a plain file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadFileName {
    /// The upload had no `file_name`.
    #[error("an upload needs a file_name")]
    Missing,
    /// `""`.
    #[error("file_name is empty")]
    Empty,
    /// More than 255 bytes.
    #[error("file_name is longer than 255 bytes")]
    TooLong,
    /// Contains `/` or `\`.
    #[error("file_name contains a path separator")]
    Separator,
    /// Contains NUL.
    #[error("file_name contains a NUL byte")]
    Nul,
    /// `.` or `..`.
    #[error("file_name is `.` or `..`")]
    Dots,
}

/// Checks the protocol's rule: non-empty, at most 255 bytes, no `/` or `\`,
/// no NUL, not `.` or `..`. A name that passes cannot leave the directory.
pub fn validate_file_name(name: &str) -> Result<(), BadFileName> {
    if name.is_empty() {
        Err(BadFileName::Empty)
    } else if name.len() > 255 {
        Err(BadFileName::TooLong)
    } else if name.contains(['/', '\\']) {
        Err(BadFileName::Separator)
    } else if name.contains('\0') {
        Err(BadFileName::Nul)
    } else if name == "." || name == ".." {
        Err(BadFileName::Dots)
    } else {
        Ok(())
    }
}

/// The storage directory and the uploads in progress in it.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    fsync: bool,
    temporaries: Mutex<HashSet<PathBuf>>,
}

impl Storage {
    /// Storage in an existing directory.
    pub fn new(dir: impl Into<PathBuf>, fsync: bool) -> Self {
        Storage {
            dir: dir.into(),
            fsync,
            temporaries: Mutex::default(),
        }
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts an upload of `file_name`, which must already be valid.
    pub fn begin(self: &Arc<Self>, file_name: &str) -> io::Result<Upload> {
        debug_assert!(validate_file_name(file_name).is_ok());
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)?;
        self.lock().insert(temp.path().to_owned());
        let (file, path) = temp.into_parts();
        Ok(Upload {
            storage: Arc::clone(self),
            target: self.dir.join(file_name),
            temp: Some(path),
            file: BufWriter::with_capacity(64 * 1024, file),
            hasher: Md5::new(),
            bytes: 0,
        })
    }

    /// Removes every temporary file of an upload still in progress; for shutdown.
    pub fn remove_temporaries(&self) -> usize {
        let paths: Vec<PathBuf> = self.lock().drain().collect();
        for p in &paths {
            if let Err(e) = std::fs::remove_file(p)
                && e.kind() != io::ErrorKind::NotFound
            {
                log::warn!("cannot remove temporary file {}: {e}", p.display());
            }
        }
        paths.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.temporaries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stored upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Bytes written.
    pub bytes: u64,
    /// Their MD5.
    pub md5: [u8; 16],
}

/// Why an upload was not stored. Either way nothing is left behind.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The body's digest is not the expected one.
    #[error("md5 of the body is {}", sockbench_wire::md5_hex(computed))]
    Mismatch {
        /// The body's actual digest.
        computed: [u8; 16],
    },
    /// The disk failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl CommitError {
    /// A commit of an upload that was never opened (a driver's bug).
    pub fn not_open() -> Self {
        CommitError::Io(io::Error::other("upload was not open"))
    }
}

/// An upload in progress. Dropping it without [`Upload::commit`] removes its
/// temporary file.
#[derive(Debug)]
pub struct Upload {
    storage: Arc<Storage>,
    target: PathBuf,
    temp: Option<tempfile::TempPath>,
    file: BufWriter<File>,
    hasher: Md5,
    bytes: u64,
}

impl Upload {
    /// Appends a piece of the body.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Ends the body: checks the digest, flushes, renames over the target.
    pub fn commit(mut self, expected: Option<[u8; 16]>) -> Result<Stored, CommitError> {
        let md5 = std::mem::take(&mut self.hasher).finish()?;
        if expected.is_some_and(|e| e != md5) {
            return Err(CommitError::Mismatch { computed: md5 });
        }
        self.file.flush()?;
        if self.storage.fsync {
            self.file.get_ref().sync_all()?;
        }
        let temp = self.temp.take().expect("an upload commits once");
        let temp_path = temp.to_path_buf();
        // On failure the returned TempPath drops here and removes the file.
        let renamed = temp.persist(&self.target).map_err(|e| e.error);
        self.storage.lock().remove(&temp_path);
        renamed?;
        if self.storage.fsync {
            // The rename itself must be durable before the client hears "ok".
            File::open(&self.storage.dir)?.sync_all()?;
        }
        Ok(Stored {
            bytes: self.bytes,
            md5,
        })
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            self.storage.lock().remove(&temp.to_path_buf());
            // TempPath removes the file as it drops.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(fsync: bool) -> (tempfile::TempDir, Arc<Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Storage::new(dir.path(), fsync));
        (dir, s)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn file_name_rules() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\\b",
            "a\0b",
            &"n".repeat(256),
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a",
            ".hidden",
            "...",
            "caf\u{e9}.txt",
            &"n".repeat(255),
            "a b",
        ] {
            assert_eq!(validate_file_name(good), Ok(()), "{good:?} refused");
        }
        // 255 bytes, not 255 characters.
        assert!(validate_file_name(&"\u{e9}".repeat(128)).is_err());
    }

    #[test]
    fn commit_renames_and_reports_the_digest() {
        for fsync in [true, false] {
            let (dir, s) = storage(fsync);
            let mut u = s.begin("f.txt").unwrap();
            u.write(b"ab").unwrap();
            u.write(b"c").unwrap();
            let stored = u.commit(None).unwrap();
            assert_eq!(stored.bytes, 3);
            assert_eq!(
                sockbench_wire::md5_hex(&stored.md5),
                "900150983cd24fb0d6963f7d28e17f72"
            );
            assert_eq!(std::fs::read(dir.path().join("f.txt")).unwrap(), b"abc");
            assert_eq!(names_in(dir.path()), ["f.txt"]);
        }
    }

    #[test]
    fn mismatch_keeps_the_old_file_and_leaves_no_temporary() {
        let (dir, s) = storage(false);
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        let mut u = s.begin("f").unwrap();
        u.write(b"new").unwrap();
        let e = u.commit(Some([0; 16])).unwrap_err();
        assert!(matches!(e, CommitError::Mismatch { .. }));
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
        assert_eq!(names_in(dir.path()), ["f"]);
    }

    #[test]
    fn dropped_upload_leaves_nothing() {
        let (dir, s) = storage(false);
        let mut u = s.begin("f").unwrap();
        u.write(b"partial").unwrap();
        assert_eq!(names_in(dir.path()).len(), 1);
        drop(u);
        assert!(names_in(dir.path()).is_empty());
        assert_eq!(s.remove_temporaries(), 0);
    }

    #[test]
    fn shutdown_sweep_removes_what_is_still_open() {
        let (dir, s) = storage(false);
        let mut u = s.begin("f").unwrap();
        u.write(b"partial").unwrap();
        assert_eq!(s.remove_temporaries(), 1);
        assert!(names_in(dir.path()).is_empty());
        drop(u);
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let (dir, s) = storage(false);
        drop(dir);
        assert!(s.begin("f").is_err());
    }

    #[test]
    fn a_symlink_in_storage_is_replaced_not_followed() {
        let (dir, s) = storage(false);
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("link")).unwrap();
        let mut u = s.begin("link").unwrap();
        u.write(b"evil").unwrap();
        u.commit(None).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            !std::fs::symlink_metadata(dir.path().join("link"))
                .unwrap()
                .is_symlink()
        );
    }
}
