//! Intended send times: the open-loop schedule every connection follows.
//!
//! The offered rate is split evenly over the connections. With `constant`
//! arrivals connection `i` of `C` sends at `(i + k·C) / rate` for k = 0, 1,
//! 2...: each connection keeps its own steady period, and together they
//! offer one request every `1 / rate` seconds, never several at the same
//! instant. With `poisson` arrivals each connection draws exponential gaps
//! of mean `C / rate` from its own seeded generator, so a run replays.
//!
//! Times are nanoseconds from the load's start; nothing here reads a clock.

use rand::{Rng, SeedableRng, rngs::StdRng};

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Arrival {
    /// Evenly spaced (wrk2's model).
    #[default]
    Constant,
    /// Exponential gaps: a Poisson process of the same mean rate.
    Poisson,
}

impl Arrival {
    /// `constant` or `poisson`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Constant => "constant",
            Arrival::Poisson => "poisson",
        }
    }
}

/// One connection's intended send times, in order.
#[derive(Debug, Clone)]
pub struct ConnSchedule {
    arrival: Arrival,
    /// Mean gap between this connection's sends, ns.
    period_ns: f64,
    /// Constant: this connection's offset within its period.
    phase_ns: f64,
    /// The next intended time.
    next_ns: f64,
    /// Requests scheduled so far.
    index: u64,
    rng: StdRng,
}

impl ConnSchedule {
    /// Connection `conn` of `conns` sharing `rate` requests per second.
    pub fn new(arrival: Arrival, rate: f64, conns: usize, conn: usize, seed: u64) -> ConnSchedule {
        let conns = conns.max(1) as f64;
        let period_ns = 1e9 * conns / rate;
        let mut rng =
            StdRng::seed_from_u64(seed ^ (conn as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let first = match arrival {
            Arrival::Constant => period_ns * conn as f64 / conns,
            Arrival::Poisson => exponential(&mut rng, period_ns),
        };
        ConnSchedule {
            arrival,
            period_ns,
            phase_ns: first,
            next_ns: first,
            index: 0,
            rng,
        }
    }

    /// The next intended send time without taking it.
    pub fn peek(&self) -> u64 {
        self.next_ns as u64
    }

    /// Takes the next intended send time.
    pub fn take(&mut self) -> u64 {
        let t = self.peek();
        self.index += 1;
        self.next_ns = match self.arrival {
            // From the index, not by adding up gaps: no drift over millions of sends.
            Arrival::Constant => self.phase_ns + self.index as f64 * self.period_ns,
            Arrival::Poisson => self.next_ns + exponential(&mut self.rng, self.period_ns),
        };
        t
    }
}

/// An exponential variate of mean `mean`.
fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u: f64 = rng.random();
    -(1.0 - u).ln() * mean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(mut s: ConnSchedule, n: usize) -> Vec<u64> {
        (0..n).map(|_| s.take()).collect()
    }

    #[test]
    fn constant_connections_interleave_into_one_even_stream() {
        // 4 connections at 1000/s: together one send per millisecond.
        let mut all: Vec<u64> = (0..4)
            .flat_map(|c| times(ConnSchedule::new(Arrival::Constant, 1000.0, 4, c, 1), 250))
            .collect();
        all.sort_unstable();
        assert_eq!(all.len(), 1000);
        for (k, t) in all.iter().enumerate() {
            let want = k as u64 * 1_000_000;
            assert!(t.abs_diff(want) <= 1, "send {k} at {t} ns, want {want}");
        }
    }

    #[test]
    fn constant_has_no_drift_over_a_long_run() {
        let mut s = ConnSchedule::new(Arrival::Constant, 3.0, 1, 0, 1);
        let mut last = 0;
        for _ in 0..3_000_000 {
            last = s.take();
        }
        // The 3,000,000th send, at 2,999,999 / 3 s.
        let want = 2_999_999.0 / 3.0 * 1e9;
        assert!((last as f64 - want).abs() < 1e3, "{last} vs {want}");
    }

    #[test]
    fn poisson_has_the_mean_rate_and_replays_from_its_seed() {
        let a = times(
            ConnSchedule::new(Arrival::Poisson, 10_000.0, 2, 1, 7),
            20_000,
        );
        let b = times(
            ConnSchedule::new(Arrival::Poisson, 10_000.0, 2, 1, 7),
            20_000,
        );
        assert_eq!(a, b, "same seed, same schedule");
        let c = times(
            ConnSchedule::new(Arrival::Poisson, 10_000.0, 2, 0, 7),
            20_000,
        );
        assert_ne!(a, c, "each connection draws its own gaps");
        // 20,000 gaps of mean 200 us: 4 s, within 3 % (6 standard deviations is 4.2 %).
        let secs = *a.last().unwrap() as f64 / 1e9;
        assert!((secs - 4.0).abs() < 0.12, "{secs}");
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "in order");
        // Exponential gaps: their standard deviation equals their mean.
        let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
    }
}
