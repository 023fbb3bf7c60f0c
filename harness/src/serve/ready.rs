//! The `serve` ready line: one JSON object on stdout once both sockets listen.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `{"backend":"mio","tcp":"127.0.0.1:40123","udp":"127.0.0.1:40124","pid":4242,...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyLine {
    /// The back-end's name (any string for outside servers).
    pub backend: String,
    /// Where TCP listens.
    pub tcp: SocketAddr,
    /// Where UDP listens.
    pub udp: SocketAddr,
    /// The server's process id.
    pub pid: u32,
    /// Whether several connections are served at once. Outside servers
    /// that do not say are assumed to be.
    #[serde(default = "yes")]
    pub concurrent: bool,
}

fn yes() -> bool {
    true
}
