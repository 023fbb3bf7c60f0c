//! The `stats` request (docs/protocol.md, Operations): a server's counters
//! and, where it reports them, its own CPU and memory. Asked on a
//! connection of its own; charted and compared, never judged here, so a
//! server that does not answer in time gives `None`, not an error.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use sockbench_core::{ProcessUse, TcpStats, UdpStats};
use sockbench_wire::WireConfig;

use crate::peer::client::Client;

/// The reply header of a stats request to `addr`, within `timeout` per wait.
pub fn request(addr: SocketAddr, wire: WireConfig, timeout: Duration) -> Option<Value> {
    let mut c = Client::connect(addr, wire, timeout).ok()?;
    let r = c
        .request(&json!({"op": "stats", "file_size": 0}), b"", timeout)
        .ok()?;
    Some(r.header)
}

/// The TCP and UDP counters of a stats reply.
pub fn counters(header: &Value) -> Option<(TcpStats, UdpStats)> {
    Some((
        serde_json::from_value(header.get("tcp")?.clone()).ok()?,
        serde_json::from_value(header.get("udp")?.clone()).ok()?,
    ))
}

/// The optional `process` object of a stats reply.
pub fn process_use(header: &Value) -> Option<ProcessUse> {
    serde_json::from_value(header.get("process")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_is_read_by_its_fields() {
        let h = json!({
            "op": "stats", "status": "ok", "file_size": 0, "backend": "x",
            "tcp": {"connections": 1, "frames": 2, "bytes_in": 3, "bytes_out": 4,
                    "errors": 0, "uploads_ok": 0, "uploads_failed": 0},
            "udp": {"datagrams_in": 5, "datagrams_out": 5, "bytes_in": 9},
            "process": {"cpu_user_s": 0.5, "cpu_sys_s": 0.25, "rss_peak_kib": 1024}
        });
        let (tcp, udp) = counters(&h).unwrap();
        assert_eq!((tcp.frames, udp.datagrams_in), (2, 5));
        assert_eq!(process_use(&h).unwrap().rss_peak_kib, 1024);
        // Optional for outside servers: its absence is None, not a failure.
        assert!(process_use(&json!({"tcp": {}})).is_none());
        assert!(counters(&json!({"tcp": {"frames": 1}})).is_none());
    }
}
