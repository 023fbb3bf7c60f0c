//! Concurrency, isolation and resource bounds, run against every back-end
//! that declares itself concurrent (see `suite!` at the bottom); and the
//! `blocking` back-end's declared one-at-a-time behaviour.

mod common;

/// The suite runs on every back-end or, when true, only the concurrent ones.
const CONCURRENT_ONLY: bool = true;

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, T, md5_hex, names_in};
use serde_json::json;
use sockbench::measure::proc::{raise_fd_limit, rss_bytes};
use sockbench::peer::client::{Client, ClientError};

fn start(backend: &str, extra: &[&str]) -> Server {
    raise_fd_limit();
    let s = Server::start(backend, extra);
    assert!(
        s.proc.ready.concurrent,
        "{backend} must declare itself concurrent"
    );
    s
}

/// Resident anonymous memory: the heap and buffers, not the pages of the
/// executable, which come in as code first runs.
fn anon_bytes(pid: u32) -> u64 {
    let status = procfs::process::Process::new(pid as i32)
        .and_then(|p| p.status())
        .unwrap();
    status.rssanon.unwrap() << 10
}

/// 1,000 connections open at once, each echoing. Before they send, they
/// are idle connections, and an event loop holds each in little memory.
fn thousand_concurrent_connections(backend: &str) {
    let s = start(backend, &[]);
    // Measured past the first 200, which also pay for set-up (a worker's
    // heap arena, tables grown to size).
    let mut clients: Vec<Client> = (0..200).map(|_| s.client()).collect();
    s.stats_until(|v| v["tcp"]["active"].as_u64() > Some(200));
    let before = anon_bytes(s.proc.pid());
    clients.extend((0..800).map(|_| s.client()));
    s.stats_until(|v| v["tcp"]["active"].as_u64() > Some(1000));
    let per_idle = anon_bytes(s.proc.pid()).saturating_sub(before) / 800;
    // A thread per connection holds a stack; the event loops hold under
    // 2 KiB (docs/performance.md). A read buffer kept from a wake that
    // found nothing costs at least a page more.
    if backend != "threaded" {
        assert!(per_idle < 3 << 10, "{per_idle} bytes per idle connection");
        // Receive buffers nobody has filled are not resident: uring's
        // rings alone are 20 MiB when zeroed with memset.
        assert!(
            before < 8 << 20,
            "{} MiB at 200 idle connections",
            before >> 20
        );
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&json!({"file_size": 4, "id": i}), &(i as u32).to_le_bytes())
            .unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.recv(T).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(
            (r.header["id"].as_u64(), r.body.clone()),
            (Some(i as u64), (i as u32).to_le_bytes().to_vec())
        );
    }
    drop(clients);
    // `active` counts the stats connection itself; each poll is a connection.
    let st = s.stats_until(|v| v["tcp"]["active"] == 1);
    assert!(st["tcp"]["connections"].as_u64().unwrap() >= 1001, "{st}");
}

/// "One client's bad input never stops, slows or corrupts another client's
/// connection": stalls inside the prefix, the header and the body.
fn stalled_clients_do_not_delay_others(backend: &str) {
    let s = start(backend, &[]);
    let mut stalls = Vec::new();
    let mut a = s.client();
    a.send_raw(&[7, 0]).unwrap(); // half a prefix
    stalls.push(a);
    let mut b = s.client();
    let f = b.frame(&json!({"file_size": 10}), b"0123456789");
    b.send_raw(&f[..8]).unwrap(); // inside the header
    stalls.push(b);
    let mut c = s.client();
    let f = c.frame(
        &json!({"file_name": "slow", "file_size": 1000}),
        &[0u8; 1000],
    );
    c.send_raw(&f[..f.len() - 500]).unwrap(); // inside an upload's body
    stalls.push(c);
    // The idle timeout is 60 s; these replies are due well within T.
    let mut active = s.client();
    for i in 0..20 {
        let r = active
            .request(&json!({"file_size": 1, "id": i}), b"x", T)
            .unwrap();
        assert_eq!(r.header["id"], i);
    }
    let r = active
        .request(&json!({"file_name": "fast", "file_size": 2}), b"ok", T)
        .unwrap();
    assert!(r.is_ok());
    // The stalled ones finish later, intact.
    let mut c = stalls.pop().unwrap();
    c.send_raw(&f[f.len() - 500..]).unwrap();
    assert!(c.recv(T).unwrap().is_ok());
}

/// 50 idle connections beside an active one; all still work afterwards.
fn idle_connections_beside_an_active_one(backend: &str) {
    let s = start(backend, &[]);
    let mut idle: Vec<Client> = (0..50).map(|_| s.client()).collect();
    let mut active = s.client();
    for i in 0..200 {
        let body = vec![i as u8; i % 300];
        let r = active
            .request(&json!({"file_size": body.len()}), &body, T)
            .unwrap();
        assert_eq!(r.body, body);
    }
    for (i, c) in idle.iter_mut().enumerate() {
        assert_eq!(
            c.request(&json!({"file_size": 1, "id": i}), b"i", T)
                .unwrap()
                .header["id"],
            i
        );
    }
}

/// "A client that sends much and reads nothing does not make the server's
/// memory grow without bound": the server stops reading instead.
fn a_client_that_never_reads_cannot_grow_the_server(backend: &str) {
    let s = start(backend, &[]);
    let pid = s.proc.pid();
    let before = rss_bytes(pid).unwrap();
    let c = s.client();
    let frame = c.frame(&json!({"file_size": 1 << 20}), &vec![9u8; 1 << 20]);
    let mut w = c.stream().try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Bounded: stop when the server has stopped taking bytes, or at 1 GiB / 10 s.
    let (mut sent, start) = (0usize, Instant::now());
    while sent < 1 << 30 && start.elapsed() < Duration::from_secs(10) {
        match w.write(&frame) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let after = rss_bytes(pid).unwrap();
    assert!(
        sent < 256 << 20,
        "the server kept reading: {} MiB accepted",
        sent >> 20
    );
    let growth = after.saturating_sub(before);
    assert!(
        growth < 48 << 20,
        "RSS grew by {} MiB ({} MiB sent)",
        growth >> 20,
        sent >> 20
    );
    // Others are still served meanwhile.
    let mut other = s.client();
    assert_eq!(
        other
            .request(&json!({"file_size": 1}), b"z", T)
            .unwrap()
            .body,
        b"z"
    );
}

/// Concurrent uploads of one name leave one complete file, and a reader
/// never sees a partial one.
fn concurrent_uploads_of_one_name(backend: &str) {
    let s = start(backend, &[]);
    let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 512 * 1024 + i as usize]).collect();
    let target = s.dir().join("same.bin");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (target, contents, stop) = (target.clone(), contents.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut seen = 0;
            let deadline = Instant::now() + T;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(data) = std::fs::read(&target) {
                    assert!(
                        contents.contains(&data),
                        "a reader saw a partial file of {} bytes",
                        data.len()
                    );
                    seen += 1;
                }
            }
            seen
        })
    };
    let barrier = Arc::new(Barrier::new(contents.len()));
    let addr = s.proc.ready.tcp;
    let uploaders: Vec<_> = contents
        .iter()
        .cloned()
        .map(|data| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut c = Client::connect(addr, Default::default(), T).unwrap();
                let frame = c.frame(&json!({"file_name": "same.bin", "file_size": data.len(), "md5": md5_hex(&data)}), &data);
                barrier.wait();
                c.send_raw(&frame).unwrap();
                c.recv(T).unwrap()
            })
        })
        .collect();
    for u in uploaders {
        let r = u.join().unwrap();
        assert!(r.is_ok(), "{}", r.header);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().unwrap();
    let last = std::fs::read(&target).unwrap();
    assert!(
        contents.contains(&last),
        "the file is not one of the uploads"
    );
    assert_eq!(names_in(&s.dir()), ["same.bin"]);
}

/// "--max-connections": past the cap a connection is closed at once.
fn connection_cap_refuses_politely(backend: &str) {
    let s = start(backend, &["--max-connections", "2"]);
    let mut a = s.client();
    let mut b = s.client();
    assert_eq!(
        a.request(&json!({"file_size": 1}), b"a", T).unwrap().body,
        b"a"
    );
    assert_eq!(
        b.request(&json!({"file_size": 1}), b"b", T).unwrap().body,
        b"b"
    );
    let mut c = s.client();
    assert!(matches!(
        c.recv(T),
        Err(ClientError::Closed { mid_frame: false })
    ));
    drop((a, c));
    // b and the stats connection itself.
    let st = s.stats_until(|v| v["tcp"]["active"] == 2);
    // c, plus any stats poll that arrived before the server saw a close.
    assert!(st["tcp"]["refused"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(
        b.request(&json!({"file_size": 1}), b"b", T).unwrap().body,
        b"b"
    );
}

/// "--idle-timeout": a client stalled mid-frame is cut off and counted.
fn idle_timeout_cuts_a_stalled_client(backend: &str) {
    let s = start(backend, &["--idle-timeout", "0.3"]);
    let mut c = s.client();
    let f = c.frame(
        &json!({"file_name": "stall", "file_size": 100}),
        &[1u8; 100],
    );
    c.send_raw(&f[..f.len() - 50]).unwrap();
    c.expect_close(T)
        .expect("the server closes a stalled connection");
    let st = s.stats_until(|v| v["tcp"]["errors"] == 1);
    assert_eq!(st["tcp"]["uploads_failed"], 1);
    assert!(names_in(&s.dir()).is_empty());
}

/// SIGTERM with many idle connections and one mid-upload: exit 0, nothing left.
fn sigterm_with_open_connections(backend: &str) {
    let mut s = start(backend, &[]);
    let idle: Vec<Client> = (0..100).map(|_| s.client()).collect();
    let c = s.client();
    let f = c.frame(
        &json!({"file_name": "cut", "file_size": 1 << 20}),
        &vec![3u8; 1 << 20],
    );
    c.stream()
        .try_clone()
        .unwrap()
        .write_all(&f[..1 << 19])
        .unwrap();
    let deadline = Instant::now() + T;
    while names_in(&s.dir()).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let status = s.proc.terminate(T).unwrap();
    assert!(status.success(), "{status}");
    assert!(
        names_in(&s.dir()).is_empty(),
        "left {:?}",
        names_in(&s.dir())
    );
    drop(idle);
}

/// "1,000 connections each declaring a 1 GiB body and sending slowly keep the
/// server's RSS under 64 MiB."
fn slow_gigabyte_declarations_stay_under_64_mib(backend: &str) {
    let s = start(backend, &[]);
    let pid = s.proc.pid();
    let mut conns: Vec<Client> = (0..1000).map(|_| s.client()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let h = if i % 2 == 0 {
            json!({"file_size": 1u64 << 30})
        } else {
            json!({"file_name": format!("g{i}"), "file_size": 1u64 << 30})
        };
        let head = c.frame(&h, b"");
        c.send_raw(&head).unwrap();
    }
    let mut peak = 0;
    for _ in 0..3 {
        for c in conns.iter_mut() {
            c.send_raw(&[5u8; 1024]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        peak = peak.max(rss_bytes(pid).unwrap());
    }
    assert!(
        peak < 64 << 20,
        "RSS {} MiB with 1,000 slow 1 GiB declarations",
        peak >> 20
    );
    drop(conns);
    // Half were uploads: their temporary files go with their connections.
    let st = s.stats_until(|v| v["tcp"]["uploads_failed"] == 500);
    assert_eq!(st["tcp"]["uploads_failed"], 500);
    let deadline = Instant::now() + T;
    while !names_in(&s.dir()).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        names_in(&s.dir()).is_empty(),
        "left {} files",
        names_in(&s.dir()).len()
    );
}

macro_rules! suite {
    ($($backend:ident),* $(,)?) => {
        #[test]
        fn every_backend_is_in_the_suite() {
            common::assert_every_backend(&[$(stringify!($backend)),*], CONCURRENT_ONLY);
        }
        $(
        mod $backend {
            suite!(@tests $backend:
                thousand_concurrent_connections, stalled_clients_do_not_delay_others,
                idle_connections_beside_an_active_one, a_client_that_never_reads_cannot_grow_the_server,
                concurrent_uploads_of_one_name, connection_cap_refuses_politely,
                                idle_timeout_cuts_a_stalled_client, sigterm_with_open_connections,
                slow_gigabyte_declarations_stay_under_64_mib);
        }
        )*
    };
    (@tests $backend:ident: $($test:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            if super::common::available(stringify!($backend)) {
                super::$test(stringify!($backend));
            }
        }
    )*};
}

suite!(threaded, mio, tokio, uring, percore);

/// `blocking` declares it is not concurrent, and is not: a second client
/// waits until the first leaves.
#[test]
fn blocking_serves_one_connection_at_a_time() {
    let s = Server::start("blocking", &[]);
    assert!(!s.proc.ready.concurrent);
    let mut first = s.client();
    assert_eq!(
        first
            .request(&json!({"file_size": 1}), b"1", T)
            .unwrap()
            .body,
        b"1"
    );
    let mut second = s.client();
    second.send(&json!({"file_size": 1}), b"2").unwrap();
    assert!(matches!(
        second.recv(Duration::from_millis(300)),
        Err(ClientError::Timeout(_))
    ));
    drop(first);
    assert_eq!(second.recv(T).unwrap().body, b"2");
}

/// `blocking` too cuts a stalled client after the idle timeout, which is
/// what keeps the others from waiting forever. The client stalls mid-prefix
/// and the header deadline is far beyond the wait, so only the idle
/// timeout can free the server in time.
#[test]
fn blocking_idle_timeout_frees_the_server() {
    let s = Server::start(
        "blocking",
        &["--idle-timeout", "0.3", "--header-timeout", "60"],
    );
    let mut stalled = s.client();
    stalled.send_raw(&[9, 0]).unwrap();
    let mut next = s.client();
    assert_eq!(
        next.request(&json!({"file_size": 1}), b"n", T)
            .unwrap()
            .body,
        b"n"
    );
    stalled.expect_close(T).unwrap();
}
