//! Delta debugging over a program's structure: fewer connections, fewer
//! actions, fewer cuts and pauses, smaller bodies, plainer headers. Each
//! candidate runs against a fresh server; it is kept when it shows the
//! same kind of divergence. Greedy, first improvement, bounded in time.

use std::time::{Duration, Instant};

use sockbench_wire::Endian;

use super::judge::Divergence;
use super::program::{End, Head, Program};

/// What shrinking did.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest program that still diverges.
    pub program: Program,
    /// Its divergence.
    pub divergence: Divergence,
    /// Candidates tried.
    pub tries: usize,
    /// Candidates kept.
    pub kept: usize,
    /// Whether the time ran out before no candidate helped.
    pub timed_out: bool,
}

/// Shrinks `program`, whose run gave `divergence`; `attempt` runs a
/// candidate against a fresh server.
pub fn shrink(
    program: &Program,
    divergence: &Divergence,
    endian: Endian,
    budget: Duration,
    mut attempt: impl FnMut(&Program) -> Option<Divergence>,
) -> Shrunk {
    let start = Instant::now();
    let kind = divergence.kind();
    let mut best = (program.clone(), divergence.clone());
    let (mut tries, mut kept) = (0, 0);
    'outer: loop {
        for mut c in candidates(&best.0) {
            if start.elapsed() > budget {
                return Shrunk {
                    program: best.0,
                    divergence: best.1,
                    tries,
                    kept,
                    timed_out: true,
                };
            }
            c.normalize(endian);
            if c == best.0 || weight(&c) >= weight(&best.0) {
                continue;
            }
            tries += 1;
            if let Some(d) = attempt(&c)
                && d.kind() == kind
            {
                best = (c, d);
                kept += 1;
                continue 'outer;
            }
        }
        return Shrunk {
            program: best.0,
            divergence: best.1,
            tries,
            kept,
            timed_out: false,
        };
    }
}

/// How big a program is: what shrinking makes smaller, most important first.
fn weight(p: &Program) -> (usize, usize, usize, u64, usize) {
    let (actions, bytes, cuts) = p.size();
    let pauses = p
        .conns
        .iter()
        .flat_map(|c| &c.pauses)
        .filter(|&&x| x > 0)
        .count();
    let fancy = p
        .conns
        .iter()
        .flat_map(|c| &c.actions)
        .filter(|a| matches!(a.head, Head::Fields { .. }) && !is_plain(a))
        .count()
        + p.conns.iter().filter(|c| c.end != End::Close).count()
        + p.conns.iter().filter(|c| c.depth != 1).count();
    (p.conns.len() + actions, cuts, pauses, bytes, fancy)
}

fn is_plain(a: &super::program::Action) -> bool {
    matches!(&a.head, Head::Fields { id: None, extra, .. } if extra.is_empty())
}

/// Every one-step simplification of `p`, the big steps first.
fn candidates(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    let mut edit = |f: &dyn Fn(&mut Program)| {
        let mut q = p.clone();
        f(&mut q);
        out.push(q);
    };
    if !p.udp.is_empty() {
        edit(&|q| q.udp.clear());
        if !p.conns.is_empty() {
            edit(&|q| q.conns.clear());
        }
    }
    for d in 0..p.udp.len() {
        edit(&|q| {
            q.udp.remove(d);
            renumber(q, None, Some(d));
        });
    }
    for c in 0..p.conns.len() {
        if p.conns.len() > 1 || !p.udp.is_empty() {
            edit(&|q| {
                q.conns.remove(c);
                renumber(q, Some(c), None);
            });
        }
    }
    for c in 0..p.conns.len() {
        let n = p.conns[c].actions.len();
        // Halves first, then one action at a time, from the end.
        if n > 2 {
            edit(&|q| q.conns[c].actions.drain(..n / 2).for_each(drop));
            edit(&|q| q.conns[c].actions.truncate(n - n / 2));
        }
        for i in (0..n).rev() {
            if n > 1 {
                edit(&|q| {
                    q.conns[c].actions.remove(i);
                });
            }
        }
        if !p.conns[c].cuts.is_empty() {
            edit(&|q| {
                q.conns[c].cuts.clear();
                q.conns[c].pauses.clear();
            });
            for k in 0..p.conns[c].cuts.len() {
                edit(&|q| {
                    q.conns[c].cuts.remove(k);
                    if k < q.conns[c].pauses.len() {
                        q.conns[c].pauses.remove(k);
                    }
                });
            }
        }
        if p.conns[c].pauses.iter().any(|&x| x > 0) {
            edit(&|q| q.conns[c].pauses.iter_mut().for_each(|x| *x = 0));
        }
        if p.conns[c].depth != 1 {
            edit(&|q| q.conns[c].depth = 1);
        }
        if p.conns[c].end != End::Close
            && p.conns[c].actions.last().is_some_and(|a| a.sent.is_none())
        {
            edit(&|q| q.conns[c].end = End::Close);
        }
        for i in 0..n {
            let a = &p.conns[c].actions[i];
            if let Head::Fields {
                file_size: None, ..
            } = a.head
            {
                let len = a.body.len;
                for smaller in [0, len / 2, len.saturating_sub(1)] {
                    if smaller < len {
                        edit(&|q| {
                            let a = &mut q.conns[c].actions[i];
                            a.body.len = smaller;
                            if let Some(s) = a.sent {
                                let f = a.frame(sockbench_wire::Endian::Little).len() as u64;
                                a.sent = Some(s.min(f.saturating_sub(1)).max(1));
                            }
                        });
                    }
                }
            }
            if let Head::Fields { id: Some(_), .. } = a.head {
                edit(&|q| {
                    if let Head::Fields { id, .. } = &mut q.conns[c].actions[i].head {
                        *id = None;
                    }
                });
            }
            if let Head::Fields { extra, .. } = &a.head
                && !extra.is_empty()
            {
                edit(&|q| {
                    if let Head::Fields { extra, .. } = &mut q.conns[c].actions[i].head {
                        extra.clear();
                    }
                });
            }
        }
    }
    out
}

/// After removing connection `conn` or datagram `udp`, the schedule's
/// slots past it move down by one.
fn renumber(q: &mut Program, conn: Option<usize>, udp: Option<usize>) {
    use super::program::Slot;
    q.schedule = q
        .schedule
        .iter()
        .filter_map(|s| match *s {
            Slot::Tcp(c) if Some(c) == conn => None,
            Slot::Tcp(c) if conn.is_some_and(|r| c > r) => Some(Slot::Tcp(c - 1)),
            Slot::Udp(d) if Some(d) == udp => None,
            Slot::Udp(d) if udp.is_some_and(|r| d > r) => Some(Slot::Udp(d - 1)),
            other => Some(other),
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::generate::{Generator, default_shape};

    #[test]
    fn shrinking_finds_the_one_action_that_matters() {
        // A fake server that diverges whenever some connection holds a
        // stats request: the minimum is one connection, one action.
        let mut g = Generator::new(3, default_shape(Endian::Little, true));
        let has_stats = |p: &Program| {
            p.conns
                .iter()
                .flat_map(|c| &c.actions)
                .any(|a| a.kind == "stats")
        };
        let p = (0..2000)
            .map(|_| g.program())
            .find(|p| has_stats(p) && p.size().0 >= 6)
            .expect("a big program with a stats request");
        let d = Divergence {
            what: "the reply's id differs".into(),
            conn: Some(0),
            action: Some(0),
            expected: String::new(),
            actual: String::new(),
        };
        let s = shrink(&p, &d, Endian::Little, Duration::from_secs(30), |q| {
            has_stats(q).then(|| d.clone())
        });
        assert!(!s.timed_out);
        assert_eq!(s.program.conns.len(), 1, "{:?}", s.program);
        assert!(s.program.udp.is_empty());
        let c = &s.program.conns[0];
        assert_eq!(c.actions.len(), 1);
        assert_eq!(c.actions[0].kind, "stats");
        assert!(
            c.cuts.is_empty() && c.depth == 1 && c.end == End::Close,
            "{c:?}"
        );
        assert!(is_plain(&c.actions[0]), "{:?}", c.actions[0]);
        assert!(s.kept > 0 && s.tries >= s.kept);
    }
}
