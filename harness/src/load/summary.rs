//! The result of one `sockbench load` run as one JSON object, and the
//! merge of several (run on several hosts at once) into one of the same
//! shape: counts and rates summed, histograms added, percentiles taken
//! from the merged histogram (never averaged).

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::engine::{OpenResult, us_histogram};
use crate::measure::stats::Percentiles;

/// The schema tag of a load summary.
pub const SCHEMA: &str = "sockbench-load/1";

/// The driver is the bottleneck when the 99th percentile of its own send
/// lag passes this (µs): the latencies then include that much of its delay.
pub const DRIVER_LAG_LIMIT_US: u64 = 1000;

/// One load run (or several merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// `sockbench-load/1`.
    pub schema: String,
    /// The target address (merged: every distinct one, comma-separated).
    pub target: String,
    /// Requests per second offered by the schedule.
    pub offered_rate: f64,
    /// Replies received in time per second of the measured duration.
    pub achieved_rate: f64,
    /// Requests sent in the measured duration.
    pub sent: u64,
    /// Replies received within the timeout.
    pub received: u64,
    /// Requests lost to failed connections.
    pub errors: u64,
    /// Requests with no reply within the timeout (sent or not).
    pub timeouts: u64,
    /// Requests that waited for a full window (the server pushing back).
    pub held: u64,
    /// The driver's largest lag behind its own schedule, µs.
    pub fell_behind_us: f64,
    /// The 99th percentile of that lag, µs.
    pub lag_p99_us: f64,
    /// The lag passed [`DRIVER_LAG_LIMIT_US`]: the numbers describe the driver.
    pub driver_limited: bool,
    /// Measured seconds.
    pub duration_s: f64,
    /// Connections (summed over hosts).
    pub connections: usize,
    /// Body bytes per request.
    pub body: usize,
    /// `constant` or `poisson`.
    pub arrival: String,
    /// Most requests in flight per connection.
    pub pipeline: usize,
    /// How many runs this summarises.
    pub hosts: usize,
    /// Latency from the intended send time.
    pub latency_us: Percentiles,
    /// Its histogram, HdrHistogram V2 serialized, base64.
    pub histogram: String,
    /// The driver's lag histogram, the same encoding.
    pub lag_histogram: String,
}

/// What a load run was asked to do.
#[derive(Debug, Clone)]
pub struct Asked {
    /// Target address.
    pub target: String,
    /// Offered rate.
    pub rate: f64,
    /// Connections.
    pub connections: usize,
    /// Body bytes.
    pub body: usize,
    /// Arrival process.
    pub arrival: String,
    /// Window.
    pub pipeline: usize,
}

/// Why summaries cannot be merged or read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Not base64 or not a V2 histogram.
    #[error("histogram: {0}")]
    Histogram(String),
    /// The runs do not describe the same load.
    #[error("cannot merge: {0}")]
    Mismatch(String),
}

/// HdrHistogram V2, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail for a valid histogram.
    let _ = V2Serializer::new().serialize(h, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode`].
pub fn decode(text: &str) -> Result<Histogram<u64>, SummaryError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| SummaryError::Histogram(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| SummaryError::Histogram(format!("{e:?}")))
}

impl LoadSummary {
    /// Summarises a run's measured windows.
    pub fn of(asked: &Asked, r: &OpenResult) -> LoadSummary {
        let mut latency = us_histogram();
        let mut lag = us_histogram();
        let (mut sent, mut received, mut errors, mut timeouts, mut held) = (0, 0, 0, 0, 0);
        let mut secs = 0.0;
        for w in &r.windows {
            let _ = latency.add(&w.latency);
            let _ = lag.add(&w.lag);
            sent += w.sent;
            received += w.received;
            errors += w.errors;
            timeouts += w.timeouts;
            held += w.held;
            secs += w.secs;
        }
        Self::from_parts(
            asked,
            latency,
            lag,
            [sent, received, errors, timeouts, held],
            secs,
        )
    }

    fn from_parts(
        asked: &Asked,
        latency: Histogram<u64>,
        lag: Histogram<u64>,
        [sent, received, errors, timeouts, held]: [u64; 5],
        secs: f64,
    ) -> LoadSummary {
        let lag_p99 = if lag.is_empty() {
            0
        } else {
            lag.value_at_quantile(0.99)
        };
        LoadSummary {
            schema: SCHEMA.into(),
            target: asked.target.clone(),
            offered_rate: asked.rate,
            achieved_rate: if secs > 0.0 {
                received as f64 / secs
            } else {
                0.0
            },
            sent,
            received,
            errors,
            timeouts,
            held,
            fell_behind_us: lag.max() as f64,
            lag_p99_us: lag_p99 as f64,
            driver_limited: lag_p99 > DRIVER_LAG_LIMIT_US,
            duration_s: secs,
            connections: asked.connections,
            body: asked.body,
            arrival: asked.arrival.clone(),
            pipeline: asked.pipeline,
            hosts: 1,
            latency_us: Percentiles::of(&latency),
            histogram: encode(&latency),
            lag_histogram: encode(&lag),
        }
    }

    /// Merges runs made at the same time on several hosts against one target.
    pub fn merge(parts: &[LoadSummary]) -> Result<LoadSummary, SummaryError> {
        let first = parts
            .first()
            .ok_or_else(|| SummaryError::Mismatch("nothing to merge".into()))?;
        let mut latency = us_histogram();
        let mut lag = us_histogram();
        let mut out = first.clone();
        let mut targets: Vec<&str> = Vec::new();
        let (mut offered, mut achieved) = (0.0, 0.0);
        let mut counts = [0u64; 5];
        let (mut conns, mut hosts) = (0, 0);
        let mut limited = false;
        for p in parts {
            if p.body != first.body {
                return Err(SummaryError::Mismatch(format!(
                    "bodies of {} and {} bytes are different loads",
                    first.body, p.body
                )));
            }
            latency
                .add(decode(&p.histogram)?)
                .map_err(|e| SummaryError::Histogram(format!("{e:?}")))?;
            lag.add(decode(&p.lag_histogram)?)
                .map_err(|e| SummaryError::Histogram(format!("{e:?}")))?;
            offered += p.offered_rate;
            achieved += p.achieved_rate;
            for (c, v) in counts
                .iter_mut()
                .zip([p.sent, p.received, p.errors, p.timeouts, p.held])
            {
                *c += v;
            }
            conns += p.connections;
            hosts += p.hosts;
            limited |= p.driver_limited;
            if !targets.contains(&p.target.as_str()) {
                targets.push(&p.target);
            }
            out.duration_s = out.duration_s.max(p.duration_s);
        }
        let lag_p99 = if lag.is_empty() {
            0
        } else {
            lag.value_at_quantile(0.99)
        };
        out.target = targets.join(",");
        out.offered_rate = offered;
        out.achieved_rate = achieved;
        [out.sent, out.received, out.errors, out.timeouts, out.held] = counts;
        out.connections = conns;
        out.hosts = hosts;
        out.fell_behind_us = lag.max() as f64;
        out.lag_p99_us = lag_p99 as f64;
        out.driver_limited = limited;
        out.latency_us = Percentiles::of(&latency);
        out.histogram = encode(&latency);
        out.lag_histogram = encode(&lag);
        Ok(out)
    }

    /// The latency histogram.
    pub fn latency_histogram(&self) -> Result<Histogram<u64>, SummaryError> {
        decode(&self.histogram)
    }

    /// A few lines for a person at the terminal.
    pub fn human(&self) -> String {
        let l = &self.latency_us;
        let mut s = format!(
            "{} x{} host(s): offered {:.0}/s, achieved {:.0}/s over {:.1} s ({} connections, {} B bodies, {} arrivals, window {})\n\
             sent {} received {} errors {} timeouts {} held by a full window {}\n\
             latency from intended send (µs): p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}\n\
             driver lag: p99 {:.0} µs, max {:.0} µs",
            self.target,
            self.hosts,
            self.offered_rate,
            self.achieved_rate,
            self.duration_s,
            self.connections,
            self.body,
            self.arrival,
            self.pipeline,
            self.sent,
            self.received,
            self.errors,
            self.timeouts,
            self.held,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.lag_p99_us,
            self.fell_behind_us,
        );
        if self.driver_limited {
            s.push_str(&format!(
                "\nDRIVER-LIMITED: the driver fell behind its own schedule (lag p99 over {DRIVER_LAG_LIMIT_US} µs); \
                 these latencies include its delay. Use fewer connections per driver, or more hosts and `sockbench merge`."
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::engine::Window;

    fn window(values: &[u64], lags: &[u64], secs: f64) -> Window {
        let mut latency = us_histogram();
        let mut lag = us_histogram();
        for v in values {
            latency.record(*v).unwrap();
        }
        for v in lags {
            lag.record(*v).unwrap();
        }
        Window {
            secs,
            sent: values.len() as u64 + 1,
            received: values.len() as u64,
            errors: 0,
            timeouts: 1,
            held: 2,
            latency,
            lag,
        }
    }

    fn asked(rate: f64, conns: usize) -> Asked {
        Asked {
            target: "127.0.0.1:1".into(),
            rate,
            connections: conns,
            body: 64,
            arrival: "constant".into(),
            pipeline: 8,
        }
    }

    fn result(w: Window) -> OpenResult {
        OpenResult {
            windows: vec![w],
            cpu_s: 0.0,
            failures: vec![],
        }
    }

    /// Two halves of one load, merged, equal the whole.
    #[test]
    fn two_halves_merged_equal_the_whole() {
        let values: Vec<u64> = (1..=10_000u64).map(|i| (i * 7919) % 50_000 + 1).collect();
        let lags: Vec<u64> = (1..=10_000u64).map(|i| i % 300).collect();
        let (a, b) = values.split_at(3_000);
        let (la, lb) = lags.split_at(3_000);
        let whole = LoadSummary::of(&asked(2000.0, 32), &result(window(&values, &lags, 2.0)));
        let ha = LoadSummary::of(&asked(1000.0, 16), &result(window(a, la, 2.0)));
        let hb = LoadSummary::of(&asked(1000.0, 16), &result(window(b, lb, 2.0)));
        // Through JSON, as the command reads them.
        let ha: LoadSummary = serde_json::from_str(&serde_json::to_string(&ha).unwrap()).unwrap();
        let merged = LoadSummary::merge(&[ha, hb]).unwrap();
        assert_eq!(merged.latency_us, whole.latency_us);
        assert_eq!(merged.histogram, whole.histogram);
        assert_eq!(merged.received, whole.received);
        assert_eq!(
            merged.sent,
            whole.sent + 1,
            "each half had one unanswered send"
        );
        assert_eq!(merged.timeouts, 2);
        assert_eq!(merged.connections, 32);
        assert_eq!(merged.hosts, 2);
        assert!((merged.offered_rate - 2000.0).abs() < 1e-9);
        assert!((merged.achieved_rate - whole.achieved_rate).abs() < 1e-9);
        assert_eq!(merged.fell_behind_us, whole.fell_behind_us);
        assert_eq!(merged.lag_p99_us, whole.lag_p99_us);
        // Merging a merge changes nothing but the count of hosts.
        let again = LoadSummary::merge(std::slice::from_ref(&merged)).unwrap();
        assert_eq!(again, merged);
    }

    #[test]
    fn percentiles_come_from_the_histogram_and_round_trip() {
        let s = LoadSummary::of(
            &asked(10.0, 1),
            &result(window(&[100, 200, 300, 40_000], &[5], 1.0)),
        );
        assert_eq!(s.latency_us.p50, 200.0);
        assert!((s.latency_us.max - 40_000.0).abs() <= 40.0);
        let h = s.latency_histogram().unwrap();
        assert_eq!(h.len(), 4);
        assert!(!s.driver_limited);
        assert!(decode("not base64!").is_err());
        let mut other = s.clone();
        other.body = 65;
        assert!(LoadSummary::merge(&[s, other]).is_err());
    }

    #[test]
    fn a_lagging_driver_is_flagged() {
        let lags = vec![5_000u64; 100];
        let s = LoadSummary::of(&asked(10.0, 1), &result(window(&[100], &lags, 1.0)));
        assert!(s.driver_limited && s.human().contains("DRIVER-LIMITED"));
    }
}
