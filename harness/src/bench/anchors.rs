//! Anchors: standard tools measured in the same run with the same CPU
//! placement, beside the ceilings they check. iperf3 for the raw TCP
//! stream; sockperf for ping-pong (TCP and UDP), one-way UDP throughput
//! and UDP under load with every message answered. A ceiling well below
//! what iperf3 or sockperf reaches on the same machine is not a ceiling.
//! A tool that is not installed is one line, never a failure.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::context::Run;
use crate::error::Error;
use crate::schema::bench::{Anchor, Measurement, Mode, Status};
use crate::target::process::ToolServer;

impl Anchor {
    /// True when our figure falls short of what the anchor says it should reach.
    pub fn short(&self) -> bool {
        matches!((self.ratio, self.want_at_least), (Some(r), Some(w)) if r < w)
    }
}

/// Whether `tool` can be run here.
pub fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Seconds each tool runs: whole seconds, as both take them.
fn seconds(run: &Run<'_>) -> u64 {
    if run.opts.mode == Mode::Quick { 1 } else { 3 }
}

/// Runs every anchor and relates it to the ceilings measured so far.
pub fn run(run: &mut Run<'_>) -> Vec<Anchor> {
    let t = seconds(run);
    let mut out = Vec::new();
    run.step("anchors: iperf3 TCP stream");
    out.push(tcp_stream(run, t));
    let pp = |run: &Run<'_>, tcp: bool| {
        sockperf(
            run,
            tcp,
            &["pp", "-m", "64", "--full-rtt"],
            t,
            if tcp {
                "TCP ping-pong, 64 B, round trips"
            } else {
                "UDP ping-pong, 64 B, round trips"
            },
            "round trips/s",
            parse_ping_pong,
        )
    };
    run.step("anchors: sockperf TCP ping-pong");
    out.push(relate(pp(run, true), run, "echo/rr/64B/1c", None));
    run.step("anchors: sockperf UDP ping-pong");
    let mut udp_pp = pp(run, false);
    if udp_pp.value.is_some() {
        match udp_ping_pong(run) {
            Ok(ours) => {
                udp_pp.ours = Some(ours);
                udp_pp.ours_is = Some("raw UDP echo, one datagram in flight".into());
                udp_pp.ratio = udp_pp.value.map(|v| ours / v);
            }
            Err(e) => udp_pp.reason = Some(format!("our UDP ping-pong failed: {e}")),
        }
    }
    out.push(udp_pp);
    run.step("anchors: sockperf UDP throughput");
    let tp = sockperf(
        run,
        false,
        &["tp", "-m", "64"],
        t,
        "UDP one-way send rate, 64 B",
        "datagrams/s",
        parse_throughput,
    );
    out.push(tp);
    run.step("anchors: sockperf UDP under load");
    let ul = sockperf(
        run,
        false,
        &["ul", "-m", "64", "--mps=max", "--reply-every", "1"],
        t,
        "UDP under load, 64 B, every message answered: echoes received",
        "datagrams/s",
        parse_under_load,
    );
    out.push(relate(ul, run, "udp/64B", Some(1.0)));
    out
}

/// iperf3 between two runs of our raw TCP stream, best 100 ms window
/// against best 100 ms window over the same length of streaming: the
/// machine's speed drifts within seconds, so a figure from another moment
/// of the run would compare epochs, not streams.
fn tcp_stream(run: &Run<'_>, t: u64) -> Anchor {
    let schedule = super::driver::Schedule {
        warmup: Duration::from_millis(100),
        reps: 5 * t as usize,
        rep: Duration::from_millis(100),
    };
    let cpu = run.opts.pin.map(|p| p.server);
    let before = super::ceilings::tcp_stream(&schedule, cpu);
    let mut a = iperf3(run, t);
    let after = super::ceilings::tcp_stream(&schedule, cpu);
    let ours = before
        .iter()
        .chain(after.iter())
        .flatten()
        .copied()
        .max_by(f64::total_cmp);
    if let (Some(v), Some(o)) = (a.value, ours) {
        a.ours = Some(o);
        a.ours_is = Some(format!(
            "raw loopback TCP, {} KiB blocks, best 100 ms of {} s before and after iperf3",
            super::ceilings::STREAM_BLOCK / 1024,
            t
        ));
        a.ratio = Some(o / v);
        a.want_at_least = Some(0.9);
    }
    a
}

/// Sets our ceiling `key`'s best repetition beside the anchor.
fn relate(mut a: Anchor, run: &Run<'_>, key: &str, want: Option<f64>) -> Anchor {
    let ours: Option<&Measurement> = run
        .ceilings
        .iter()
        .find(|c| c.key == key && c.status == Status::Ok);
    if let (Some(v), Some(c)) = (a.value, ours) {
        a.ours = Some(c.value.max);
        a.ours_is = Some(format!("{} ({key}), best repetition", c.target));
        a.ratio = Some(c.value.max / v);
        a.want_at_least = want;
    }
    a
}

fn missing(tool: &str, measures: &str, unit: &str, why: String) -> Anchor {
    Anchor {
        tool: tool.into(),
        measures: measures.into(),
        command: String::new(),
        value: None,
        unit: unit.into(),
        reason: Some(why),
        ours: None,
        ours_is: None,
        ratio: None,
        want_at_least: None,
    }
}

/// A loopback port free a moment ago.
fn free_port(udp: bool) -> std::io::Result<u16> {
    if udp {
        Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
    } else {
        Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
    }
}

fn start_server(run: &Run<'_>, tool: &str, args: &[String]) -> std::io::Result<ToolServer> {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    if let Some(p) = run.opts.pin {
        p.pin_server(&mut cmd);
    }
    ToolServer::start(cmd)
}

/// An outside tool's failure.
fn failed(program: &str, detail: impl Into<String>) -> Error {
    Error::Tool {
        program: program.into(),
        detail: detail.into(),
    }
}

/// Runs a client to completion within `limit`, returning its stdout.
fn client(args: &[String], tool: &str, limit: Duration) -> Result<String, Error> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(tool, format!("cannot start: {e}")))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    what: format!("{tool} to finish"),
                    after: limit,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(failed(tool, e.to_string())),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(tool, e.to_string()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = text.lines().last().unwrap_or("").trim().to_owned();
        return Err(failed(tool, format!("exited with {}: {last}", out.status)));
    }
    Ok(text)
}

/// Waits until a TCP port accepts, for a server just started.
fn wait_listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// iperf3's TCP stream: 128 KiB writes (its default), MB/s received.
fn iperf3(run: &Run<'_>, t: u64) -> Anchor {
    let (measures, unit) = (
        "TCP stream, one connection, best 100 ms interval (sender side)",
        "MB/s",
    );
    if !installed("iperf3") {
        return missing("iperf3", measures, unit, "iperf3 is not installed".into());
    }
    let go = || -> Result<(f64, String), Error> {
        let port = free_port(false)
            .map_err(Error::io("finding a free port"))?
            .to_string();
        let _server = start_server(
            run,
            "iperf3",
            &["-s", "-B", "127.0.0.1", "-p", &port].map(String::from),
        )
        .map_err(|e| failed("iperf3", format!("cannot start the server: {e}")))?;
        // iperf3 -s has no ready line; its control port accepting is one
        // (it shrugs off the probe connection and serves on, until killed).
        if !wait_listening(port.parse().unwrap_or(0)) {
            return Err(failed("iperf3", "the server did not listen within 3 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
        let args: Vec<String> = [
            "-c",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            &t.to_string(),
            "-l",
            "128K",
            "-J",
        ]
        .map(String::from)
        .to_vec();
        let shown = format!("iperf3 {}", args.join(" "));
        let out = client(&args, "iperf3", Duration::from_secs(t + 10))?;
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| failed("iperf3", format!("-J output: {e}")))?;
        // The best 100 ms interval, as ours is the best 100 ms repetition.
        let bps = v["intervals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["sum"]["bits_per_second"].as_f64())
            .max_by(f64::total_cmp)
            .ok_or_else(|| failed("iperf3", "-J output has no intervals[].sum.bits_per_second"))?;
        Ok((bps / 8e6, shown))
    };
    match go() {
        Ok((mb, command)) => Anchor {
            command,
            value: Some(mb),
            ..missing("iperf3", measures, unit, String::new())
        }
        .cleared(),
        Err(e) => missing("iperf3", measures, unit, e.to_string()),
    }
}

impl Anchor {
    fn cleared(mut self) -> Anchor {
        self.reason = None;
        self
    }
}

/// One sockperf client against a `sockperf sr` on the server's CPU.
fn sockperf(
    run: &Run<'_>,
    tcp: bool,
    mode: &[&str],
    t: u64,
    measures: &str,
    unit: &str,
    parse: fn(&str) -> Option<f64>,
) -> Anchor {
    if !installed("sockperf") {
        return missing(
            "sockperf",
            measures,
            unit,
            "sockperf is not installed".into(),
        );
    }
    let go = || -> Result<(f64, String, Option<f64>), Error> {
        let port = free_port(!tcp)
            .map_err(Error::io("finding a free port"))?
            .to_string();
        let mut sargs: Vec<String> = ["sr", "-i", "127.0.0.1", "-p", &port]
            .map(String::from)
            .to_vec();
        if tcp {
            sargs.push("--tcp".into());
        }
        let _server = start_server(run, "sockperf", &sargs)
            .map_err(|e| failed("sockperf", format!("cannot start sr: {e}")))?;
        // A UDP server cannot be probed without disturbing it: give it the
        // moment it needs to bind.
        if tcp {
            if !wait_listening(port.parse().unwrap_or(0)) {
                return Err(failed("sockperf", "sr --tcp did not listen within 3 s"));
            }
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
        args.extend(["-i", "127.0.0.1", "-p", &port, "-t", &t.to_string()].map(String::from));
        if tcp {
            args.push("--tcp".into());
        }
        let shown = format!("sockperf {}", args.join(" "));
        let out = client(&args, "sockperf", Duration::from_secs(t + 10))?;
        let v = parse(&out).ok_or_else(|| {
            failed(
                "sockperf",
                format!("no figure in the output of {shown} (its summary lines changed?)"),
            )
        })?;
        // One-way throughput depends on the receiver (a full socket drops
        // early and cheaply), so ours goes to the very same server.
        let ours = if mode.first() == Some(&"tp") {
            let to = SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap_or(0)));
            let d = Duration::from_secs(t);
            Some(
                crate::udp::seq::one_way(to, 64, d)
                    .map_err(Error::io("our sender against sockperf sr"))?,
            )
        } else {
            None
        };
        Ok((v, shown, ours))
    };
    match go() {
        Ok((v, command, ours)) => {
            let mut a = Anchor {
                command,
                value: Some(v),
                ..missing("sockperf", measures, unit, String::new())
            }
            .cleared();
            if let Some(o) = ours {
                a.ours = Some(o);
                a.ours_is =
                    Some("our UDP sender (sendmmsg), one-way into the same sockperf sr".into());
                a.ratio = Some(o / v);
                a.want_at_least = Some(0.9);
            }
            a
        }
        Err(e) => missing("sockperf", measures, unit, e.to_string()),
    }
}

/// The number after `key` in `line` (up to the next space, `;` or `)`).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `sockperf pp --full-rtt`: "Summary: Round trip is 29.829 usec".
fn parse_ping_pong(out: &str) -> Option<f64> {
    let us = out.lines().find_map(|l| number_after(l, "Round trip is"))?;
    (us > 0.0).then(|| 1e6 / us)
}

/// `sockperf tp`: "Summary: Message Rate is 133893 [msg/sec]".
fn parse_throughput(out: &str) -> Option<f64> {
    out.lines().find_map(|l| number_after(l, "Message Rate is"))
}

/// `sockperf ul`: "[Valid Duration] RunTime=0.550 sec; SentMessages=62625;
/// ReceivedMessages=48163": echoes received per second of the measured part.
fn parse_under_load(out: &str) -> Option<f64> {
    let l = out.lines().find(|l| l.contains("[Valid Duration]"))?;
    let secs = number_after(l, "RunTime=")?;
    let got = number_after(l, "ReceivedMessages=")?;
    (secs > 0.0).then(|| got / secs)
}

/// Our UDP ping-pong: one 64-byte datagram at a time to the raw UDP echo,
/// round trips per second over the same time sockperf gets.
fn udp_ping_pong(run: &Run<'_>) -> anyhow::Result<f64> {
    let c = super::ceilings::spawn(
        &run.opts.exe,
        super::ceilings::Strategy::EventLoop,
        0,
        run.opts.pin,
    )?;
    let s = crate::udp::seq::socket_for(c.udp)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let msg = [0x5au8; 64];
    let mut buf = [0u8; 128];
    let warm = Instant::now() + Duration::from_millis(200);
    let end_of = |from: Instant| from + Duration::from_secs(seconds(run));
    while Instant::now() < warm {
        s.send(&msg)?;
        let _ = s.recv(&mut buf);
    }
    let start = Instant::now();
    let end = end_of(start);
    let mut trips = 0u64;
    while Instant::now() < end {
        s.send(&msg)?;
        // A lost echo costs one timeout, never a hang.
        if s.recv(&mut buf).is_ok() {
            trips += 1;
        }
    }
    Ok(trips as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockperf_summaries_parse() {
        let pp = "sockperf: ====> avg-rtt=29.829 (std-dev=24.469)\nsockperf: Summary: Round trip is 29.829 usec\n";
        assert!((parse_ping_pong(pp).unwrap() - 1e6 / 29.829).abs() < 1e-6);
        let tp = "sockperf: Summary: Message Rate is 133893 [msg/sec]\n";
        assert_eq!(parse_throughput(tp), Some(133_893.0));
        let ul = "sockperf: [Total Run] RunTime=1.000 sec; SentMessages=111612; ReceivedMessages=84055\n\
                  sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=62625; ReceivedMessages=48163\n";
        assert!((parse_under_load(ul).unwrap() - 48_163.0 / 0.55).abs() < 1e-6);
        assert_eq!(parse_throughput("nothing here"), None);
        assert_eq!(
            parse_under_load("sockperf: [Valid Duration] RunTime=0 sec; ReceivedMessages=5"),
            None
        );
    }

    #[test]
    fn a_short_ceiling_is_flagged_only_against_its_own_bar() {
        let a = |ratio, want| Anchor {
            ratio,
            want_at_least: want,
            ..missing("iperf3", "x", "MB/s", String::new())
        };
        assert!(a(Some(0.8), Some(0.9)).short());
        assert!(!a(Some(0.95), Some(0.9)).short());
        assert!(!a(Some(0.5), None).short());
        assert!(!a(None, Some(0.9)).short());
    }
}
