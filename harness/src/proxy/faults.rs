//! The faults a proxy applies, as typed on the command line, and the
//! seeded cutter that re-segments a byte stream.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::measure::units::{BadValue, duration, parse_size};

/// A range of values `lo..=hi`, typed `N` or `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<T> {
    /// Least.
    pub lo: T,
    /// Most.
    pub hi: T,
}

fn span<T: PartialOrd + Copy>(
    s: &str,
    one: impl Fn(&str) -> Result<T, BadValue>,
) -> Result<Span<T>, BadValue> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(BadValue::Range {
            text: s.into(),
            limit: "the low end is above the high end",
        });
    }
    Ok(Span { lo, hi })
}

/// `--slice 1-64`: each piece written is 1 to 64 bytes (at least 1).
pub fn parse_slice(s: &str) -> Result<Span<usize>, BadValue> {
    let sp = span(s, |t| parse_size(t).map(|n| n as usize))?;
    if sp.lo == 0 {
        return Err(BadValue::Range {
            text: s.into(),
            limit: "a piece is at least 1 byte",
        });
    }
    Ok(sp)
}

/// `--delay 2ms` or `--delay 0-5ms` (the unit of the high end applies to a
/// bare low end): the wait before each burst forwarded.
pub fn parse_delay(s: &str) -> Result<Span<Duration>, BadValue> {
    let unit: String = s
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic() || *c == 'µ')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    span(s, |t| {
        let bare = t.chars().all(|c| c.is_ascii_digit() || c == '.');
        duration(&if bare {
            format!("{t}{unit}")
        } else {
            t.to_owned()
        })
    })
}

/// Everything a proxy does to the streams it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Re-segmentation: sizes of the pieces written, or `None` to forward
    /// each read as it came.
    pub slice: Option<Span<usize>>,
    /// How long a piece smaller than its drawn size waits for the next
    /// read to glue onto (only with `slice`).
    pub glue: Duration,
    /// The wait before each burst (what one read brought, cut into pieces).
    pub delay: Option<Span<Duration>>,
    /// Bytes per second per direction, or `None` for no limit.
    pub throttle: Option<u64>,
    /// Reset both sides once this many bytes went through (both
    /// directions counted).
    pub reset_after: Option<u64>,
    /// Seed of every random choice; connection `i` uses `seed + i`.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            slice: None,
            glue: Duration::from_millis(2),
            delay: None,
            throttle: None,
            reset_after: None,
            seed: 1,
        }
    }
}

/// Cuts a stream into the pieces `Faults` asks for: deterministic for a
/// seed, and the pieces always concatenate to the input.
#[derive(Debug)]
pub struct Cutter {
    rng: StdRng,
    slice: Option<Span<usize>>,
    delay: Option<Span<Duration>>,
    want: usize,
}

impl Cutter {
    /// A cutter for one direction of one connection.
    pub fn new(f: &Faults, seed: u64) -> Cutter {
        let mut c = Cutter {
            rng: StdRng::seed_from_u64(seed),
            slice: f.slice,
            delay: f.delay,
            want: 0,
        };
        c.draw();
        c
    }

    fn draw(&mut self) {
        self.want = match self.slice {
            Some(s) => self.rng.random_range(s.lo..=s.hi),
            None => usize::MAX,
        };
    }

    /// The next piece to write from `pending`: its length, or `None` when
    /// what is pending is shorter than the drawn size and should wait to be
    /// glued to more (unless `flush`, at end of stream or when the glue wait
    /// ran out).
    pub fn next_piece(&mut self, pending: usize, flush: bool) -> Option<usize> {
        if pending == 0 {
            return None;
        }
        if self.slice.is_none() {
            return Some(pending);
        }
        if pending >= self.want {
            let n = self.want;
            self.draw();
            return Some(n);
        }
        flush.then(|| {
            self.draw();
            pending
        })
    }

    /// The wait before the next burst.
    pub fn delay(&mut self) -> Duration {
        match self.delay {
            Some(d) if d.hi > d.lo => self.rng.random_range(d.lo..=d.hi),
            Some(d) => d.lo,
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(parse_slice("1-64"), Ok(Span { lo: 1, hi: 64 }));
        assert_eq!(parse_slice("7"), Ok(Span { lo: 7, hi: 7 }));
        assert_eq!(parse_slice("1-4K"), Ok(Span { lo: 1, hi: 4096 }));
        assert!(parse_slice("0-5").is_err());
        assert!(parse_slice("9-3").is_err());
        assert!(parse_slice("x").is_err());
        let d = parse_delay("0-5ms").unwrap();
        assert_eq!((d.lo, d.hi), (Duration::ZERO, Duration::from_millis(5)));
        let d = parse_delay("1ms-1s").unwrap();
        assert_eq!(
            (d.lo, d.hi),
            (Duration::from_millis(1), Duration::from_secs(1))
        );
        assert_eq!(parse_delay("3ms").unwrap().lo, Duration::from_millis(3));
        assert!(parse_delay("5-2ms").is_err());
    }

    #[test]
    fn pieces_stay_in_range_concatenate_to_the_input_and_follow_the_seed() {
        let f = Faults {
            slice: Some(Span { lo: 1, hi: 5 }),
            ..Faults::default()
        };
        let cut = |seed| {
            let mut c = Cutter::new(&f, seed);
            let mut pieces = Vec::new();
            let (mut pending, mut total) = (0usize, 0usize);
            for read in [3usize, 17, 1, 40, 2] {
                pending += read;
                while let Some(n) = c.next_piece(pending, false) {
                    assert!((1..=5).contains(&n), "{n}");
                    pieces.push(n);
                    pending -= n;
                }
                assert!(pending < 5, "only a short tail waits");
            }
            if let Some(n) = c.next_piece(pending, true) {
                pieces.push(n);
                pending -= n;
            }
            total += pieces.iter().sum::<usize>();
            assert_eq!((total, pending), (63, 0));
            pieces
        };
        assert_eq!(cut(9), cut(9));
        assert_ne!(cut(9), cut(10));
        // Without slicing, a read goes on whole.
        let mut c = Cutter::new(&Faults::default(), 1);
        assert_eq!(c.next_piece(1000, false), Some(1000));
        assert_eq!(c.next_piece(0, true), None);
    }
}
