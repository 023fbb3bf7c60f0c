//! UDP measured exactly: through the impairment relay the probe's counts
//! equal what the relay's record predicts, for every back-end and for
//! seeds and rates from proptest; oversize datagrams are refused with a
//! clear error and truncation is detected.

mod common;

/// The suite runs on every back-end or, when true, only the concurrent ones.
const CONCURRENT_ONLY: bool = false;

use std::net::UdpSocket;
use std::time::Duration;

use common::Server;
use proptest::prelude::*;
use sockbench::udp::relay::{Impairment, Relay, RelayConfig};
use sockbench::udp::seq::{self, Probe, check_size};

fn impaired(seed: u64) -> RelayConfig {
    RelayConfig {
        seed,
        to_server: Impairment {
            drop: 0.03,
            burst: 3,
            drop_indices: vec![0, 7],
            duplicate: 0.02,
            reorder: 0.03,
            reorder_depth: 4,
            corrupt: 0.01,
            ..Impairment::default()
        },
        to_client: Impairment {
            drop: 0.02,
            burst: 1,
            duplicate: 0.02,
            reorder: 0.02,
            reorder_depth: 2,
            corrupt: 0.02,
            ..Impairment::default()
        },
    }
}

/// Runs a probe through a relay to `server` and checks every count.
fn exact(
    server: std::net::SocketAddr,
    config: &RelayConfig,
    rate: f64,
    size: usize,
) -> anyhow::Result<()> {
    let relay = Relay::start(server, config)?;
    let probe = Probe {
        size,
        rate,
        duration: Duration::from_millis(250),
        drain: Duration::from_millis(150),
    };
    let got = seq::run(relay.addr, &probe)?;
    std::thread::sleep(Duration::from_millis(20));
    let record = relay.record();
    let want = record.expected(got.sent);
    let measured = (
        got.received,
        got.duplicates,
        got.out_of_order,
        got.corrupted,
        got.lost,
    );
    let injected = (
        want.received,
        want.duplicates,
        want.out_of_order,
        want.corrupted,
        want.lost,
    );
    if measured != injected {
        anyhow::bail!(
            "measured (received, dup, reordered, corrupted, lost) {measured:?} != relay's {injected:?}; record {:?} {:?}",
            record.to_server,
            record.to_client
        );
    }
    // Every drop, in either direction, is loss the probe saw.
    if record.to_server.received != got.sent {
        anyhow::bail!(
            "the relay saw {} of {} sent",
            record.to_server.received,
            got.sent
        );
    }
    Ok(())
}

macro_rules! per_backend {
    ($($backend:ident),*) => {
        #[test]
        fn every_backend_is_in_the_suite() {
            common::assert_every_backend(&[$(stringify!($backend)),*], CONCURRENT_ONLY);
        }
        $(
        mod $backend {
            #[test]
            fn probe_counts_equal_the_relay_record() {
                if !super::common::available(stringify!($backend)) {
                    return;
                }
                let s = super::Server::start(stringify!($backend), &[]);
                for seed in [1, 2, 3] {
                    super::exact(s.proc.ready.udp, &super::impaired(seed), 2000.0, 200).unwrap();
                }
            }
        }
        )*
    };
}

per_backend!(blocking, threaded, mio, tokio, uring, percore);

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_seed_and_rate_is_measured_exactly(seed in any::<u64>(), rate in 300.0f64..4000.0, size in 16usize..1500) {
        let s = Server::start("mio", &[]);
        exact(s.proc.ready.udp, &impaired(seed), rate, size)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn delay_and_jitter_reorder_and_are_still_counted_exactly() {
    let s = Server::start("mio", &[]);
    let config = RelayConfig {
        seed: 9,
        to_server: Impairment {
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(5),
            ..Impairment::default()
        },
        to_client: Impairment {
            drop: 0.05,
            burst: 2,
            ..Impairment::default()
        },
    };
    exact(s.proc.ready.udp, &config, 3000.0, 64).unwrap();
}

#[test]
fn oversize_is_refused_with_the_family_limit_named() {
    let v4: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let v6: std::net::SocketAddr = "[::1]:9".parse().unwrap();
    assert!(check_size(v4, 65_507).is_ok());
    let e = check_size(v4, 65_508).unwrap_err().to_string();
    assert!(
        e.contains("65508") && e.contains("IPv4") && e.contains("65507"),
        "{e}"
    );
    assert!(check_size(v6, 65_527).is_ok());
    let e = check_size(v6, 65_528).unwrap_err().to_string();
    assert!(e.contains("IPv6") && e.contains("65527"), "{e}");
    // The kernel agrees: one byte more is EMSGSIZE, never a cut datagram.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = sock.send_to(&vec![0u8; 65_508], "127.0.0.1:9").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(90), "{err}");
    let probe = Probe {
        size: 65_508,
        rate: 10.0,
        duration: Duration::from_millis(10),
        drain: Duration::ZERO,
    };
    assert!(
        seq::run(v4, &probe)
            .unwrap_err()
            .to_string()
            .contains("IPv4 maximum")
    );
}

#[test]
fn empty_and_maximum_datagrams_on_both_families() {
    for (backend, v6) in [
        ("mio", false),
        ("tokio", true),
        ("threaded", true),
        ("blocking", false),
    ] {
        let args: &[&str] = if v6 {
            &["--udp", "[::1]:0", "--tcp", "[::1]:0"]
        } else {
            &[]
        };
        let s = Server::start(backend, args);
        let max = seq::max_payload(s.proc.ready.udp);
        for size in [0, 1, 1472, max] {
            let p: Vec<u8> = (0..size).map(|i| (i % 199) as u8).collect();
            let got = sockbench::peer::client::udp_echo(s.proc.ready.udp, &p, common::T).unwrap();
            assert!(got == p, "{backend} {size}");
        }
        assert!(check_size(s.proc.ready.udp, max + 1).is_err());
    }
}
