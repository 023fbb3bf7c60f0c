//! Category 7, UDP: datagrams are echoed verbatim from 0 bytes to the maximum, keep
//! their boundaries, and an oversize send is refused, never cut.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::conform::case::{Case, CaseError, CaseResult, Ctx, difference, ensure, fail, show};
use crate::peer::wirelog::Dir;

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const ECHO: &str = "§5 The UDP socket echoes every datagram, verbatim, to its sender: any size from 0 bytes up to 65,507 bytes on IPv4 (65,527 on IPv6).";
    const OVERSIZE: &str = "§5 A sender asked to send more than the maximum gets a clear error (EMSGSIZE), never a silent truncation or split.";
    vec![
        Case::new(
            "7.1",
            "udp-empty",
            "An empty datagram is echoed.",
            "§5 an empty datagram is legal.",
            |c| sized(c, 0),
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.2",
            "udp-1-byte",
            "A 1-byte datagram is echoed.",
            ECHO,
            |c| sized(c, 1),
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.3",
            "udp-1472",
            "A 1,472-byte datagram (one Ethernet MTU) is echoed.",
            ECHO,
            |c| sized(c, 1472),
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.4",
            "udp-65507",
            "A 65,507-byte datagram, the IPv4 maximum, is echoed whole.",
            ECHO,
            |c| sized(c, 65_507),
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.5",
            "udp-boundaries",
            "Three datagrams sent back to back come back as three, sizes kept.",
            "§5 datagrams keep their boundaries: each is echoed verbatim.",
            boundaries,
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.6",
            "udp-oversize-refused",
            "Sending one byte over the family's maximum (65,508 bytes on IPv4, 65,528 on IPv6) fails with EMSGSIZE and nothing reaches the server.",
            OVERSIZE,
            oversize_refused,
        ),
        Case::new(
            "7.7",
            "udp-no-truncation",
            "2,000, 8,192 and 32,768-byte datagrams come back whole (the server's buffer is at least 65,536 bytes).",
            "§5 The server receives into a buffer of at least 65,536 bytes, so nothing is truncated.",
            no_truncation,
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.8",
            "udp-burst",
            "A burst of 64 sequenced 1,000-byte datagrams is echoed, each intact.",
            ECHO,
            burst,
        )
        .any_dialect("a UDP echo")
        .serial(),
        Case::new(
            "7.9",
            "udp-two-senders",
            "Each of two senders gets its own datagram back.",
            "§5 echoes every datagram to its sender.",
            two_senders,
        )
        .any_dialect("a UDP echo"),
        Case::new(
            "7.10",
            "udp-ipv6-maximum",
            "Over ::1, 65,527 bytes are echoed and 65,528 are refused.",
            "§5 up to 65,527 bytes on IPv6.",
            ipv6_maximum,
        )
        .any_dialect("a UDP echo")
        .setup(|s| s.ipv6 = true),
        Case::new(
            "7.11",
            "udp-stats",
            "Datagrams are counted in udp.datagrams_in, datagrams_out and bytes_in.",
            "§2 stats: udp.datagrams_in, datagrams_out, bytes_in.",
            udp_stats,
        ),
    ]
}

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn sized(ctx: &mut Ctx<'_>, n: usize) -> CaseResult {
    let p = payload(n, 1);
    let got = ctx.udp_echo(&p)?;
    mismatch(format!("the same {n} bytes back"), &ctx.udp_back(&p), &got)
}

/// Fails unless `got` is `want`, naming the usual ways a UDP echo differs:
/// cut at a buffer's size, or changed (upper-cased).
fn mismatch(expected: String, want: &[u8], got: &[u8]) -> CaseResult {
    if got == want {
        return Ok(());
    }
    let (why, named) = difference(want, got);
    let e = fail(expected, why);
    Err(match named {
        Some(("truncated", size)) => e.finding("udp-truncates", Some(size)),
        Some((_, how)) => e.finding("udp-transforms", Some(how)),
        None => e,
    })
}

fn socket(ctx: &Ctx<'_>) -> Result<UdpSocket, CaseError> {
    let udp = ctx.udp()?;
    let local: SocketAddr = if udp.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let s = UdpSocket::bind(local).map_err(|e| CaseError::Harness(e.to_string()))?;
    s.connect(udp)
        .map_err(|e| CaseError::Harness(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| CaseError::Harness(e.to_string()))?;
    Ok(s)
}

/// Receives datagrams until `n` arrived or the wait ends.
fn receive(ctx: &Ctx<'_>, s: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + ctx.wait;
    while got.len() < n && Instant::now() < deadline {
        if let Ok(k) = s.recv(&mut buf) {
            ctx.log
                .record(0, Dir::Received, 0, &buf[..k], "udp datagram");
            got.push(buf[..k].to_vec());
        }
    }
    got
}

fn send(ctx: &Ctx<'_>, s: &UdpSocket, p: &[u8]) -> CaseResult {
    ctx.log.record(0, Dir::Sent, 0, p, "udp datagram");
    s.send(p).map(|_| ()).map_err(|e| {
        // A refused send is the ICMP port unreachable of an earlier
        // datagram: the target's UDP port is closed. That is its fault, and
        // evidence, not the harness's.
        let what = format!("to send a {}-byte datagram", p.len());
        if e.kind() == ErrorKind::ConnectionRefused {
            ctx.log
                .record(0, Dir::Received, 0, &[], &format!("ICMP: {e}"));
            fail(
                what,
                format!("the target's UDP port is closed (ICMP port unreachable: {e})"),
            )
        } else {
            CaseError::Harness(format!("{what}: {e}"))
        }
    })
}

fn boundaries(ctx: &mut Ctx<'_>) -> CaseResult {
    let s = socket(ctx)?;
    let sent = [payload(10, 2), payload(1000, 3), payload(60_000, 4)];
    for p in &sent {
        send(ctx, &s, p)?;
    }
    let mut got = receive(ctx, &s, 3);
    got.sort_by_key(Vec::len);
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    let want: Vec<Vec<u8>> = sent.iter().map(|p| ctx.udp_back(p)).collect();
    if got.len() == want.len() {
        for (w, g) in want.iter().zip(&got) {
            mismatch(
                "three datagrams of 10, 1000 and 60000 bytes, each intact".into(),
                w,
                g,
            )?;
        }
    }
    ensure(
        got == want,
        "three datagrams of 10, 1000 and 60000 bytes, each intact",
        || format!("datagrams of {sizes:?} bytes"),
    )
}

fn expect_emsgsize(ctx: &Ctx<'_>, s: &UdpSocket, n: usize, limit: &str) -> CaseResult {
    match s.send(&vec![0u8; n]) {
        Err(e)
            if e.raw_os_error() == Some(libc_emsgsize()) || e.kind() == ErrorKind::InvalidInput =>
        {
            ctx.log
                .record(0, Dir::Sent, 0, &[], &format!("{n}-byte send refused: {e}"));
            Ok(())
        }
        Err(e) => Err(fail(
            format!("EMSGSIZE for {n} bytes (above the {limit} maximum)"),
            e.to_string(),
        )),
        Ok(k) => Err(fail(
            format!("EMSGSIZE for {n} bytes (above the {limit} maximum)"),
            format!("the kernel sent {k} bytes"),
        )),
    }
}

/// EMSGSIZE on Linux.
const fn libc_emsgsize() -> i32 {
    90
}

fn oversize_refused(ctx: &mut Ctx<'_>) -> CaseResult {
    ctx.udp()?;
    let before = ctx.stats()?["udp"]["datagrams_in"].as_u64().unwrap_or(0);
    let s = socket(ctx)?;
    // The limit follows the target's family: 65,508 bytes is legal on IPv6.
    let (over, family) = if ctx.udp()?.is_ipv4() {
        (65_508, "IPv4")
    } else {
        (65_528, "IPv6")
    };
    expect_emsgsize(ctx, &s, over, family)?;
    // A small datagram after it proves the socket and server are fine, and
    // orders the check: the oversize one, had it gone, would be counted first.
    send(ctx, &s, b"after")?;
    ensure(
        receive(ctx, &s, 1).first().is_some_and(|d| d == b"after"),
        "the echo of a datagram sent after the refused one",
        || "nothing".into(),
    )?;
    let after = ctx.stats()?["udp"]["datagrams_in"].as_u64().unwrap_or(0);
    ensure(
        after == before + 1,
        "only the small datagram counted by the server",
        || format!("datagrams_in grew by {}", after - before),
    )
}

fn no_truncation(ctx: &mut Ctx<'_>) -> CaseResult {
    for n in [2000, 8192, 32_768] {
        sized(ctx, n)?;
    }
    Ok(())
}

fn burst(ctx: &mut Ctx<'_>) -> CaseResult {
    let s = socket(ctx)?;
    let sent: Vec<Vec<u8>> = (0..64u32)
        .map(|i| {
            let mut p = i.to_le_bytes().to_vec();
            p.extend(payload(996, i as u8));
            p
        })
        .collect();
    for p in &sent {
        send(ctx, &s, p)?;
    }
    let mut got = receive(ctx, &s, 64);
    got.sort();
    let mut want: Vec<Vec<u8>> = sent.iter().map(|p| ctx.udp_back(p)).collect();
    want.sort();
    if let Some(g) = got.iter().find(|g| !want.contains(g))
        && let Some(w) = want
            .iter()
            .find(|w| w.len() >= 4 && g.len() >= 4 && w[..4] == g[..4])
    {
        mismatch("all 64 datagrams back, each intact".into(), w, g)?;
    }
    ensure(got == want, "all 64 datagrams back, each intact", || {
        let intact = got.iter().filter(|g| want.contains(g)).count();
        format!("{} back, {intact} intact", got.len())
    })
}

fn two_senders(ctx: &mut Ctx<'_>) -> CaseResult {
    let a = socket(ctx)?;
    let b = socket(ctx)?;
    send(ctx, &a, b"from a")?;
    send(ctx, &b, b"from b")?;
    let ga = receive(ctx, &a, 1);
    let gb = receive(ctx, &b, 1);
    for (want, got) in [(b"from a", &ga), (b"from b", &gb)] {
        if let [g] = &got[..] {
            mismatch(
                format!("{} back to its sender", show(want, 10)),
                &ctx.udp_back(want),
                g,
            )?;
        }
    }
    ensure(
        ga == [ctx.udp_back(b"from a")] && gb == [ctx.udp_back(b"from b")],
        "each sender gets its own datagram",
        || {
            let all = |d: &[Vec<u8>]| d.iter().map(|g| show(g, 20)).collect::<Vec<_>>().join(", ");
            format!("a got [{}], b got [{}]", all(&ga), all(&gb))
        },
    )
}

fn ipv6_maximum(ctx: &mut Ctx<'_>) -> CaseResult {
    if ctx.udp()?.is_ipv4() {
        return Err(CaseError::Unsupported(
            "the target's UDP address is IPv4".into(),
        ));
    }
    sized(ctx, 65_527)?;
    let s = socket(ctx)?;
    expect_emsgsize(ctx, &s, 65_528, "IPv6")
}

fn udp_stats(ctx: &mut Ctx<'_>) -> CaseResult {
    ctx.udp()?;
    let before = ctx.stats()?;
    for n in [0usize, 5, 100] {
        ctx.udp_echo(&payload(n, 9))?;
    }
    let delta = |after: &serde_json::Value, k: &str| {
        after["udp"][k].as_u64().unwrap_or(0) as i64 - before["udp"][k].as_u64().unwrap_or(0) as i64
    };
    let counted = |v: &serde_json::Value| {
        delta(v, "datagrams_in") == 3
            && delta(v, "datagrams_out") == 3
            && delta(v, "bytes_in") == 105
    };
    // A server may count an echo just after sending it, so a stats request
    // racing the last echo can see it uncounted: poll briefly.
    let after = ctx.stats_until(counted)?;
    let delta = |k: &str| delta(&after, k);
    ensure(
        delta("datagrams_in") == 3 && delta("datagrams_out") == 3 && delta("bytes_in") == 105,
        "udp.datagrams_in +3, datagrams_out +3, bytes_in +105",
        || {
            format!(
                "+{}, +{}, +{}",
                delta("datagrams_in"),
                delta("datagrams_out"),
                delta("bytes_in")
            )
        },
    )
}
