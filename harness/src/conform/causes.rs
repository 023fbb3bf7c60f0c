//! The cause a case's failure usually has: the finding it points to when
//! the check itself could not tell more (docs/findings.md). The run's
//! grouping (analysis::findings) starts from these.

/// The finding a failure of case `id` points to by default.
pub fn usual(id: &str) -> &'static str {
    match id {
        "1.6" | "1.16" | "1.17" => "id-wrong",
        "1.8" | "2.5" | "2.6" | "2.7" | "2.8" | "2.9" | "2.10" | "2.11" | "2.15" | "2.17"
        | "2.20" => "reads-past-body",
        "1.12" | "2.4" | "2.12" | "2.21" | "6.13" => "split-body",
        "1.13" => "nagle-stall",
        "2.1" | "2.2" | "2.13" | "2.14" | "2.16" | "2.19" => "split-prefix",
        "2.3" => "split-header",
        "2.18" | "3.30" => "upload-truncated",
        "3.6" | "3.7" | "3.8" | "3.33" | "4.20" | "4.26" => "md5-ignored",
        "3.10" | "3.11" | "3.24" | "3.31" | "5.7" | "8.5" => "partial-file",
        "3.12" | "3.20" | "3.28" | "3.32" => "path-escape",
        "3.13" | "3.14" | "3.15" | "3.16" | "3.17" | "3.18" | "3.19" | "3.27" | "3.29" => {
            "bad-name-accepted"
        }
        "7.1" => "udp-drops-empty",
        "7.4" | "7.7" | "7.10" => "udp-truncates",
        _ => match id.split('.').next() {
            Some("1") => "echo-wrong",
            Some("2") => "reads-past-body",
            Some("3") => "upload-wrong",
            Some("4") => "malformed-input",
            Some("5") => "limits",
            Some("6") => "connections",
            Some("7") => "udp-wrong",
            _ => "lifecycle",
        },
    }
}

/// Cases that cut a connection in the middle of a frame: after them the
/// server's CPU is sampled while idle (a handler that loops on a closed
/// socket spins).
pub const CUTS: [&str; 7] = ["3.10", "3.11", "3.31", "5.7", "6.5", "6.6", "6.12"];
