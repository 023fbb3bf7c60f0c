//! Admission: whether an accepted connection is served or turned away.
//!
//! One rule for every back-end (docs/protocol.md §6): a connection past
//! `--max-connections` is accepted and closed at once, so its client sees
//! end of stream before any reply instead of hanging in the backlog. It is
//! counted in `tcp.refused` and logged. The back-end's only part is to drop
//! the socket when [`admit`] says [`Refused`].

use std::io::{self, ErrorKind};
use std::sync::Arc;

use crate::server::ServerContext;

/// What to do after a failed `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// A signal, or a connection reset before it was taken: accept again.
    Retry,
    /// Nothing waits (non-blocking listener): wait for the next readiness.
    Drained,
    /// Out of descriptors and the like (logged): back off instead of
    /// spinning, about 20 ms, then accept again.
    Backoff,
}

/// Classifies a failed `accept`.
pub fn accept_failed(e: &io::Error) -> AcceptFailure {
    match e.kind() {
        ErrorKind::WouldBlock => AcceptFailure::Drained,
        ErrorKind::Interrupted | ErrorKind::ConnectionAborted => AcceptFailure::Retry,
        _ => {
            log::warn!("accept failed: {e}");
            AcceptFailure::Backoff
        }
    }
}

/// A served connection's place under the cap, counted in `connections` and
/// `active`; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the connection is counted as open only while this lives"]
pub struct Admitted(Arc<ServerContext>);

/// A connection turned away: the caller closes its socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Counts a newly accepted connection and decides whether it is served.
pub fn admit(ctx: &Arc<ServerContext>) -> Result<Admitted, Refused> {
    let c = &ctx.counters;
    c.opened();
    let admitted = Admitted(Arc::clone(ctx));
    if c.active() <= ctx.config.max_connections as u64 {
        return Ok(admitted);
    }
    drop(admitted);
    c.refused();
    log::debug!(
        "refusing a connection: {} open, --max-connections {}",
        c.active(),
        ctx.config.max_connections
    );
    Err(Refused)
}

impl Admitted {
    /// The server's counters, for what a back-end counts itself (its
    /// system calls).
    pub fn counters(&self) -> &crate::Counters {
        &self.0.counters
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.counters.closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerConfig, Storage};

    #[test]
    fn the_connection_over_the_cap_is_refused_and_counted_and_its_place_is_freed() {
        let config = ServerConfig {
            max_connections: 2,
            ..ServerConfig::default()
        };
        let ctx = ServerContext::new("t", config, Storage::new("/nonexistent", false));
        let a = admit(&ctx).unwrap();
        let _b = admit(&ctx).unwrap();
        assert_eq!(admit(&ctx).unwrap_err(), Refused);
        let (tcp, _) = ctx.counters.snapshot();
        assert_eq!((tcp.connections, tcp.active, tcp.refused), (3, 2, 1));
        drop(a);
        let _c = admit(&ctx).unwrap();
        let (tcp, _) = ctx.counters.snapshot();
        assert_eq!((tcp.connections, tcp.active, tcp.refused), (4, 2, 1));
    }
}
