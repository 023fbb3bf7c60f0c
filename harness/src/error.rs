//! The harness's one error type for everything below the commands: what
//! failed, in which category, with the context a person needs on one line.
//! Commands add their own context (anyhow) and choose the exit code.

use std::time::Duration;

/// A failure while measuring or checking a server, or preparing to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed while doing `what`.
    #[error("{what}: {source}")]
    Io {
        /// What was being done ("connection 3 to 127.0.0.1:4000").
        what: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A server could not be reached at all.
    #[error("{addr} cannot be reached: {reason}")]
    Unreachable {
        /// Where it was looked for.
        addr: std::net::SocketAddr,
        /// Why not (the connect error, or what the preflight got).
        reason: String,
    },
    /// The server under test closed, answered wrongly or broke the protocol.
    #[error("{what}")]
    Misbehaved {
        /// What it did, in the user's terms.
        what: String,
    },
    /// Nothing came within the deadline.
    #[error("{what}: nothing within {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// An outside program (ip, tc, iperf3, sockperf) failed or is missing.
    #[error("{program}: {detail}")]
    Tool {
        /// The program.
        program: String,
        /// What it said, or why it could not run.
        detail: String,
    },
    /// Something this machine lacks (root, a tool, a kernel feature): the
    /// check that needs it is reported as not run, with this reason.
    #[error("{what} is unavailable here: {why}")]
    Unavailable {
        /// What cannot run ("back-end uring", "netem mode").
        what: String,
        /// Why, and what would fix it.
        why: String,
    },
    /// An input the harness cannot use (a malformed value or file).
    #[error("{input}: {why}")]
    Invalid {
        /// The flag or file.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// The framed client's own error.
    #[error(transparent)]
    Client(#[from] crate::peer::client::ClientError),
}

impl Error {
    /// A closure that wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Results of the harness's lower layers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
