//! An upload written by a blocking worker, so file writes and fsync never
//! run on the runtime's threads. Chunks travel over a bounded channel, which
//! is also the upload's backpressure.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use sockbench_core::{CommitError, Storage, Stored};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

enum Msg {
    Data(Bytes),
    Commit(Option<[u8; 16]>),
}

/// The async side of an upload. Dropping it abandons the upload, and the
/// worker removes the temporary file.
pub struct UploadWorker {
    tx: mpsc::Sender<Msg>,
    worker: JoinHandle<Result<Stored, CommitError>>,
}

impl UploadWorker {
    /// Starts a worker creating `file_name`'s temporary file.
    pub fn start(storage: &Arc<Storage>, file_name: String) -> UploadWorker {
        let (tx, mut rx) = mpsc::channel::<Msg>(8);
        let storage = Arc::clone(storage);
        let worker = tokio::task::spawn_blocking(move || {
            let mut upload = storage.begin(&file_name)?;
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    Msg::Data(chunk) => upload.write(&chunk)?,
                    Msg::Commit(expected) => return upload.commit(expected),
                }
            }
            Err(io::Error::other("upload abandoned").into())
        });
        UploadWorker { tx, worker }
    }

    /// Hands a chunk to the worker; `Err` is the disk error that stopped it.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), io::Error> {
        if self.tx.send(Msg::Data(chunk)).await.is_ok() {
            return Ok(());
        }
        // The worker stopped on an error; it is the reason.
        Err(match (&mut self.worker).await {
            Ok(Err(CommitError::Io(e))) => e,
            Ok(_) => io::Error::other("upload worker stopped"),
            Err(e) => io::Error::other(e),
        })
    }

    /// Abandons the upload and waits until its temporary file is gone.
    pub async fn abort(self) {
        drop(self.tx);
        let _ = self.worker.await;
    }

    /// Ends the body and waits for the commit.
    pub async fn commit(self, expected: Option<[u8; 16]>) -> Result<Stored, CommitError> {
        // If the worker already failed, the send fails and the join says why.
        let _ = self.tx.send(Msg::Commit(expected)).await;
        match self.worker.await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(e).into()),
        }
    }
}
