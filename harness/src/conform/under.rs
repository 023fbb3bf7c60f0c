//! Conditions the catalogue runs under (`conform --under`): what else is
//! going on while a case runs. A server that answers every case on a quiet
//! machine can still fail while 5,000 other connections sit idle, while
//! other clients load it, or when the network cuts and delays its bytes.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::case::Case;
pub use super::case::Condition;
use super::targets::{Instance, NotReady};
use crate::error::Error;
use crate::load::engine::{self, OpenLoad, OpenResult, Phases};
use crate::load::schedule::Arrival;
use crate::peer::frames::echo_frame;
use crate::proxy::faults::Span;
use crate::proxy::{Faults, Proxy};

/// How the conditions are set up.
#[derive(Debug, Clone, Copy)]
pub struct Under {
    /// Idle connections for `idle`.
    pub idle: usize,
    /// Background requests per second for `load`, per case running.
    pub rate: f64,
}

/// What a condition holds while one case runs: released when dropped.
#[derive(Default)]
pub struct Held {
    proxy: Option<Proxy>,
    idle: Vec<TcpStream>,
    load: Option<(Arc<AtomicBool>, JoinHandle<Option<OpenResult>>)>,
}

/// The impairment of `impaired`: pieces of 1 to 512 bytes, a short tail
/// glued to the next read for up to 2 ms, 0 to 1 ms of jitter per burst.
pub fn impairment(seed: u64) -> Faults {
    Faults {
        slice: Some(Span { lo: 1, hi: 512 }),
        glue: Duration::from_millis(2),
        delay: Some(Span {
            lo: Duration::ZERO,
            hi: Duration::from_millis(1),
        }),
        throttle: None,
        reset_after: None,
        seed,
    }
}

/// Sets `cond` up around `inst` for `case`; returns what it holds and the
/// TCP address the case should use.
pub fn apply(
    cond: Condition,
    under: &Under,
    inst: &Instance,
    case: &Case,
    seed: u64,
) -> Result<(Held, SocketAddr), NotReady> {
    let mut held = Held::default();
    if matches!(cond, Condition::Idle | Condition::Load) && !inst.server.concurrent() {
        return Err(NotReady::Unsupported(format!(
            "--under {cond} needs a target that serves connections concurrently"
        )));
    }
    if let Some(why) = case.unfit_under(cond) {
        return Err(NotReady::Unsupported(format!(
            "not asked under {cond}: {why}"
        )));
    }
    match cond {
        Condition::Quiet => {}
        Condition::Idle => {
            held.idle = open_idle(inst, under.idle).map_err(NotReady::Failed)?;
        }
        Condition::Load => {
            let stop = Arc::new(AtomicBool::new(false));
            let load = OpenLoad {
                addr: inst.server.tcp(),
                frame: echo_frame(64, seed, inst.wire.endian),
                conns: 4,
                rate: under.rate,
                arrival: Arrival::Constant,
                window: 16,
                seed,
                timeout: Duration::from_secs(10),
                // Sleeps between sends: the case needs the CPU more.
                spin: Duration::ZERO,
                stop: Some(stop.clone()),
            };
            let phases = Phases {
                warmup: Duration::ZERO,
                windows: vec![case.timeout + Duration::from_secs(10)],
            };
            let h = std::thread::Builder::new()
                .name("background-load".into())
                .spawn(move || engine::run(&load, &phases, &mut |_| {}).ok())
                .map_err(|e| NotReady::Harness(format!("cannot start the background load: {e}")))?;
            held.load = Some((stop, h));
        }
        Condition::Impaired => {
            // The proxy listens on the target's family.
            let listen: SocketAddr = if inst.server.tcp().is_ipv6() {
                (std::net::Ipv6Addr::LOCALHOST, 0).into()
            } else {
                ([127, 0, 0, 1], 0).into()
            };
            let proxy = Proxy::start(listen, inst.server.tcp(), impairment(seed))
                .map_err(|e| NotReady::Harness(format!("cannot start the impairing proxy: {e}")))?;
            let addr = proxy.addr();
            held.proxy = Some(proxy);
            return Ok((held, addr));
        }
    }
    Ok((held, inst.server.tcp()))
}

/// Opens `n` connections and proves each served with one echo (all sent,
/// then all read), so the server has accepted and set up every one before
/// the case measures anything; then they sit idle.
fn open_idle(inst: &Instance, n: usize) -> Result<Vec<TcpStream>, String> {
    use std::io::{Read, Write};
    let frame = echo_frame(1, 7, inst.wire.endian);
    let what = |i: usize, e: std::io::Error| {
        format!("{n} idle connections held open; connection {}: {e}", i + 1)
    };
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect_timeout(&inst.server.tcp(), Duration::from_secs(5))
            .map_err(|e| what(i, e))?;
        s.write_all(&frame).map_err(|e| what(i, e))?;
        conns.push(s);
    }
    let mut back = vec![0u8; frame.len()];
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| what(i, e))?;
        s.read_exact(&mut back).map_err(|e| what(i, e))?;
        if back != frame {
            return Err(format!(
                "idle connection {}: its echo came back altered",
                i + 1
            ));
        }
    }
    Ok(conns)
}

impl Held {
    /// Ends what the condition started. A background load that met a wrong
    /// reply, a failed connection or a stall is the target's failure: the
    /// case's, described here. `ignore_load` for cases that end the server.
    pub fn finish(mut self, ignore_load: bool) -> Option<String> {
        let (stop, h) = self.load.take()?;
        stop.store(true, Ordering::Relaxed);
        let r = h.join().ok().flatten();
        if ignore_load {
            return None;
        }
        let Some(r) = r else {
            return Some("the background load could not connect".into());
        };
        if let Some(f) = r.failures.first() {
            return Some(format!("the background load failed: {f}"));
        }
        let timeouts: u64 = r.windows.iter().map(|w| w.timeouts).sum();
        let received: u64 = r.windows.iter().map(|w| w.received).sum();
        (timeouts > 0).then(|| {
            format!("the background load: {timeouts} request(s) had no reply within 10 s ({received} answered)")
        })
    }
}

/// The background rate for `load` when none is given: half of what one
/// server of this target echoes flat out, split over the cases that run at
/// once, so the machine as a whole carries about half the target's capacity.
pub fn half_capacity(inst: &Instance, jobs: usize) -> Result<f64, Error> {
    let load = OpenLoad {
        addr: inst.server.tcp(),
        frame: echo_frame(64, 1, inst.wire.endian),
        conns: 4,
        // Above any server here: what comes back in the window is capacity.
        rate: 2e7,
        arrival: Arrival::Constant,
        window: 16,
        seed: 1,
        timeout: Duration::from_secs(5),
        spin: Duration::ZERO,
        stop: None,
    };
    let phases = Phases {
        warmup: Duration::from_millis(200),
        windows: vec![Duration::from_secs(1)],
    };
    let r = engine::run(&load, &phases, &mut |_| {}).map_err(|e| Error::Misbehaved {
        what: format!("the capacity probe: {e}"),
    })?;
    let w = r.windows.first().ok_or_else(|| Error::Misbehaved {
        what: "the capacity probe measured no window".into(),
    })?;
    if let Some(f) = r.failures.first() {
        return Err(Error::Misbehaved {
            what: format!("the capacity probe failed: {f}"),
        });
    }
    Ok((w.received as f64 / w.secs / 2.0 / jobs.max(1) as f64).max(1.0))
}
