//! Values people type on the command line: byte counts, durations, rates,
//! counts. The bottom layer: every command's arguments parse through here,
//! so `cli` and the commands share one spelling and one error type.

use std::time::Duration;

/// Why a typed value was not accepted (clap prints it after the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    /// Not the kind of value asked for.
    #[error("{text:?} is not {expected}")]
    Not {
        /// What was typed.
        text: String,
        /// What was asked for, with an example.
        expected: &'static str,
    },
    /// A unit suffix that is not one of `units`.
    #[error("{text:?}: unknown unit {unit:?} (use {units})")]
    Unit {
        /// What was typed.
        text: String,
        /// The suffix.
        unit: String,
        /// The suffixes accepted.
        units: &'static str,
    },
    /// A well-formed value outside what the flag takes.
    #[error("{text:?}: {limit}")]
    Range {
        /// What was typed.
        text: String,
        /// The limit it breaks, in words.
        limit: &'static str,
    },
}

fn not(text: &str, expected: &'static str) -> BadValue {
    BadValue::Not {
        text: text.into(),
        expected,
    }
}

fn range(text: &str, limit: &'static str) -> BadValue {
    BadValue::Range {
        text: text.into(),
        limit,
    }
}

/// Parses a byte count: `65536`, `64K`, `64KiB`, `1M`, `2G`, `1T` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, BadValue> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| not(s, "a byte count"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(BadValue::Unit {
                text: s.into(),
                unit: other.into(),
                units: "K, M, G or T",
            });
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| range(s, "does not fit 64 bits"))
}

/// A byte count of at least one that fits in memory.
pub fn positive_size(s: &str) -> Result<usize, BadValue> {
    match parse_size(s)? {
        0 => Err(range(s, "must be at least 1 byte")),
        n => usize::try_from(n).map_err(|_| range(s, "too large")),
    }
}

/// Parses a duration in seconds, fractions allowed (`--idle-timeout 0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, BadValue> {
    let secs: f64 = s.parse().map_err(|_| not(s, "a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| range(s, "not a duration (negative or too long)"))
}

/// `10s`, `250ms`, `2m`, `1.5` (seconds), `0` allowed.
pub fn duration(s: &str) -> Result<Duration, BadValue> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| not(s, "a duration (like 10s or 500ms)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(BadValue::Unit {
                text: s.into(),
                unit: other.into(),
                units: "ms, s, m or h",
            });
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| range(s, "not a duration (too long)"))
}

/// A duration above zero.
pub fn positive_duration(s: &str) -> Result<Duration, BadValue> {
    match duration(s)? {
        d if d.is_zero() => Err(range(s, "must be above zero")),
        d => Ok(d),
    }
}

/// A rate of requests per second above zero.
pub fn positive_rate(s: &str) -> Result<f64, BadValue> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        Ok(_) => Err(range(s, "must be above zero")),
        Err(_) => Err(not(s, "a number of requests per second")),
    }
}

/// A whole number of at least one.
pub fn at_least_one(s: &str) -> Result<usize, BadValue> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(range(s, "must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(not(s, "a positive whole number")),
    }
}

/// Bytes as a person reads them: text in quotes when they are printable
/// UTF-8, else their first bytes in hex; cut at `max` characters.
pub fn show(bytes: &[u8], max: usize) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            let cut: String = t.chars().take(max).collect();
            let more = if cut.len() < t.len() { "…" } else { "" };
            format!("{:?}{more}", cut)
        }
        _ => {
            let n = bytes.len().min(max / 3);
            let more = if n < bytes.len() { " …" } else { "" };
            format!(
                "bytes {}{more}",
                bytes[..n]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        }
    }
}

/// The last line of `text` that is not blank, trimmed (a traceback's
/// verdict, a client's last word).
pub fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert!(matches!(parse_size("1X"), Err(BadValue::Unit { .. })));
        assert!(matches!(
            parse_size("99999999999T"),
            Err(BadValue::Range { .. })
        ));
        assert!(matches!(parse_size(""), Err(BadValue::Not { .. })));
        assert!(positive_size("0").is_err());
    }

    #[test]
    fn durations_rates_and_counts() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(positive_duration("0s").is_err());
        assert_eq!(
            duration("3d").unwrap_err().to_string(),
            "\"3d\": unknown unit \"d\" (use ms, s, m or h)"
        );
        assert!(positive_rate("0").is_err() && positive_rate("-5").is_err());
        assert!(positive_rate("abc").is_err() && positive_rate("inf").is_err());
        assert_eq!(positive_rate("2500"), Ok(2500.0));
        assert_eq!(positive_size("16K"), Ok(16384));
        assert!(positive_duration("-1s").is_err() && duration("5 parsecs").is_err());
        assert_eq!(at_least_one("16"), Ok(16));
        assert!(at_least_one("0").is_err());
    }
}
