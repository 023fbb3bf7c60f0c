//! End-to-end over real sockets, against every back-end (see `suite!` at
//! the bottom): the plumbing the conformance catalogue does not reach
//! (exact counters, the default storage's removal, a Python client, the
//! idle timeout against the header deadline). The catalogue itself runs
//! on every back-end in tests/catalogue.rs.

mod common;

/// The suite runs on every back-end or, when true, only the concurrent ones.
const CONCURRENT_ONLY: bool = false;

use std::time::Duration;

use common::{Server, T};
use serde_json::json;
use sockbench::peer::client::udp_echo;

/// "stats: reply header carries the server's counters."
fn stats_counts_exactly(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let echo = c.frame(&json!({"file_size": 3}), b"abc");
    c.send_raw(&echo).unwrap();
    c.recv(T).unwrap();
    let up = c.frame(&json!({"file_name": "s", "file_size": 1}), b"s");
    c.send_raw(&up).unwrap();
    let up_reply = c.recv(T).unwrap();
    let bad = c.frame(&json!({"op": "zap", "file_size": 0}), b"");
    c.send_raw(&bad).unwrap();
    let bad_reply = c.recv(T).unwrap();
    udp_echo(s.proc.ready.udp, b"ping", T).unwrap();
    let stats_req = c.frame(&json!({"op": "stats", "file_size": 0, "id": "s"}), b"");
    c.send_raw(&stats_req).unwrap();
    let st = c.recv(T).unwrap().header;
    assert_eq!(st["backend"], backend);
    assert_eq!(st["id"], "s");
    let tcp = &st["tcp"];
    assert_eq!(tcp["connections"], 1);
    assert_eq!(tcp["frames"], 4, "the stats request counts itself");
    assert_eq!(
        tcp["bytes_in"],
        echo.len() + up.len() + bad.len() + stats_req.len()
    );
    let out = echo.len() + 4 + up_reply.raw.len() + 4 + bad_reply.raw.len();
    assert_eq!(tcp["bytes_out"], out, "replies before this one");
    assert_eq!(tcp["errors"], 1);
    assert_eq!(tcp["uploads_ok"], 1);
    assert_eq!(tcp["uploads_failed"], 0);
    assert_eq!(
        st["udp"],
        json!({"datagrams_in": 1, "datagrams_out": 1, "bytes_in": 4})
    );
}

/// "--storage defaults to a fresh temporary directory removed at exit."
fn sigterm_when_idle_removes_default_storage(backend: &str) {
    let mut proc =
        sockbench::target::process::Spawned::backend(common::exe(), backend, &[], T).unwrap();
    let mut c =
        sockbench::peer::client::Client::connect(proc.ready.tcp, Default::default(), T).unwrap();
    let r = c
        .request(&json!({"file_name": "k", "file_size": 1}), b"k", T)
        .unwrap();
    assert!(r.is_ok());
    drop(c);
    // The startup log names the directory it chose (read by another thread: poll).
    let deadline = std::time::Instant::now() + T;
    let mut log = proc.stderr_tail();
    while !log.contains(", storage ") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        log = proc.stderr_tail();
    }
    let dir = log
        .lines()
        .find_map(|l| {
            l.split_once(", storage ")
                .map(|(_, d)| std::path::PathBuf::from(d.trim()))
        })
        .unwrap_or_else(|| panic!("no storage in the log: {log}"));
    assert!(dir.join("k").exists(), "the upload is in {}", dir.display());
    let status = proc.terminate(T).unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// The contract with a peer written in another language: a classic Python client.
fn python_client(backend: &str) {
    let s = Server::start(backend, &[]);
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/peers/client.py"
        ))
        .args([
            "--tcp",
            &s.proc.ready.tcp.to_string(),
            "--udp",
            &s.proc.ready.udp.to_string(),
        ])
        .args(["--storage", s.dir().to_str().unwrap()])
        .output()
        .expect("python3 is needed for the cross-language test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "ok");
}

/// "Each reply written without needless small writes": a reply split into
/// two writes costs ~40 ms per request under Nagle and delayed ACKs. In
/// request-response, each reply is one write and each request one read.
fn each_reply_is_one_write(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    for i in 0..50 {
        let body = vec![b'w'; i * 100];
        c.request(&json!({"file_size": body.len(), "id": i}), &body, T)
            .unwrap();
    }
    let r = c
        .request(
            &json!({"file_name": "w", "file_size": 10}),
            b"0123456789",
            T,
        )
        .unwrap();
    assert!(r.is_ok());
    let st = c
        .request(&json!({"op": "stats", "file_size": 0}), b"", T)
        .unwrap()
        .header;
    assert_eq!(st["tcp"]["writes"], 51, "{st}");
    assert_eq!(st["tcp"]["reads"], 52, "{st}");
}

/// Silence for the idle timeout closes a connection wherever its frame
/// stands: between frames, mid-prefix (the header deadline, far off here,
/// must not stand in for it) and mid-body.
fn idle_timeout_holds_mid_frame(backend: &str) {
    let s = Server::start(
        backend,
        &["--idle-timeout", "0.3", "--header-timeout", "60"],
    );
    let mut between = s.client();
    between.request(&json!({"file_size": 1}), b"x", T).unwrap();
    let mut mid_prefix = s.client();
    mid_prefix.send_raw(&[9, 0]).unwrap();
    let mut mid_body = s.client();
    let frame = mid_body.frame(&json!({"file_size": 100}), &[b'b'; 100]);
    mid_body.send_raw(&frame[..frame.len() - 50]).unwrap();
    let start = std::time::Instant::now();
    for (what, c) in [
        ("between frames", &mut between),
        ("mid-prefix", &mut mid_prefix),
        ("mid-body", &mut mid_body),
    ] {
        assert!(
            c.expect_close(T).is_ok(),
            "{what}: still open after {:?}",
            start.elapsed()
        );
    }
}

/// `tcp.reads` counts reads that brought data, not ends of stream: how
/// clients tear down must not move the bench's reads per frame.
fn end_of_stream_is_not_a_read(backend: &str) {
    let s = Server::start(backend, &[]);
    for i in 0..5 {
        let mut c = s.client();
        c.request(&json!({"file_size": 3, "id": i}), b"abc", T)
            .unwrap();
    }
    // Every closed connection seen; only the polling one is open.
    let st = s.stats_until(|v| v["tcp"]["active"] == 1);
    assert_eq!(
        st["tcp"]["reads"], st["tcp"]["frames"],
        "one read per request and none per close: {st}"
    );
}

/// An upload's body is read in `read_size` pieces (256 KiB) by every
/// back-end, tokio and uring included, whose other reads are `io_buffer`
/// (64 KiB): 16 MiB in 64 KiB reads would be at least 256 of them. The
/// server digests slower than loopback delivers, so its socket usually
/// holds a whole read by the time it reads (67 reads here); the bound
/// leaves room for a client that is descheduled now and then.
fn an_upload_body_comes_in_large_reads(backend: &str) {
    const BODY: usize = 16 << 20;
    let s = Server::start(backend, &[]);
    let before = s.stats();
    let mut c = s.client();
    let body: Vec<u8> = (0..BODY).map(|i| (i % 251) as u8).collect();
    let r = c
        .request(&json!({"file_name": "big", "file_size": BODY}), &body, T)
        .unwrap();
    assert!(r.is_ok(), "{}", r.header);
    drop(c); // blocking serves the stats connection after this one
    let after = s.stats();
    let reads = after["tcp"]["reads"].as_u64().unwrap() - before["tcp"]["reads"].as_u64().unwrap();
    assert!(reads > 0, "{after}");
    assert!(
        reads < 240,
        "{reads} reads for a 16 MiB upload: the body is read in pieces of 64 KiB or less"
    );
}

/// The suite, once per back-end.
macro_rules! suite {
    ($($backend:ident),* $(,)?) => {
        #[test]
        fn every_backend_is_in_the_suite() {
            common::assert_every_backend(&[$(stringify!($backend)),*], CONCURRENT_ONLY);
        }
        $(
        mod $backend {
            suite!(@tests $backend:
                stats_counts_exactly, sigterm_when_idle_removes_default_storage,
                python_client, each_reply_is_one_write, end_of_stream_is_not_a_read,
                idle_timeout_holds_mid_frame, an_upload_body_comes_in_large_reads);
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

suite!(blocking, threaded, mio, tokio, uring, percore);

/// `percore` is shared nothing: with two loops there are two listening
/// sockets on the one port (`SO_REUSEPORT`), and each loop's thread is
/// pinned to a CPU of its own.
#[test]
fn percore_opens_a_listener_per_loop_and_pins_each_loop() {
    let s = Server::start("percore", &["--workers", "2"]);
    let port = s.proc.ready.tcp.port();
    // Columns: sl, local_address (hex ip:port), rem_address, st (0A: LISTEN).
    let listening = || {
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let n = tcp
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&format!(":{port:04X}")) && f[3] == "0A"
            })
            .count();
        (n, tcp)
    };
    // The ready line comes once the first socket listens; the second
    // loop's sibling opens as the loops start.
    let deadline = std::time::Instant::now() + T;
    let (mut n, mut tcp) = listening();
    while n < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        (n, tcp) = listening();
    }
    assert_eq!(n, 2, "listening sockets on port {port}:\n{tcp}");
    let task_dir = format!("/proc/{}/task", s.proc.pid());
    // Each loop pins itself as its thread starts: polled, like the sockets.
    let pins = || {
        let mut pinned = Vec::new();
        for task in std::fs::read_dir(&task_dir).unwrap() {
            let dir = task.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if name.starts_with("percore-") {
                let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
                let cpus = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                pinned.push(cpus);
            }
        }
        pinned.sort();
        pinned
    };
    let mut pinned = pins();
    let settled = |p: &Vec<String>| p.len() == 2 && p.iter().all(|c| c.parse::<usize>().is_ok());
    while !settled(&pinned) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        pinned = pins();
    }
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(pinned.len(), 2, "{pinned:?}");
    assert!(
        pinned.iter().all(|c| c.parse::<usize>().is_ok()),
        "one CPU each: {pinned:?}"
    );
    if allowed >= 2 {
        assert_ne!(pinned[0], pinned[1], "two loops on one CPU: {pinned:?}");
    }
    // Both loops serve: the kernel spreads 32 connections over them.
    let mut clients: Vec<_> = (0..32).map(|_| s.client()).collect();
    for c in &mut clients {
        let r = c
            .request(&json!({"op": "echo", "file_size": 1}), b"x", T)
            .unwrap();
        assert_eq!(r.body, b"x");
    }
}

/// `uring` counts its system calls: every receive and send it completed
/// was submitted, and a burst of 200 pipelined frames costs far fewer
/// `io_uring_enter` calls than frames.
#[test]
fn uring_counts_its_enters_and_submissions() {
    if !common::available("uring") {
        return;
    }
    let s = Server::start("uring", &[]);
    let before = s.stats();
    let mut c = s.client();
    let burst: Vec<u8> = (0..200)
        .flat_map(|_| c.frame(&json!({"op": "echo", "file_size": 8}), b"12345678"))
        .collect();
    c.send_raw(&burst).unwrap();
    for _ in 0..200 {
        assert_eq!(c.recv(T).unwrap().body, b"12345678");
    }
    let after = s.stats();
    let d = |k: &str| after["tcp"][k].as_u64().unwrap() - before["tcp"][k].as_u64().unwrap();
    assert!(d("syscalls") > 0, "{after}");
    assert!(d("ring_submissions") >= d("reads") + d("writes"), "{after}");
    assert!(
        d("syscalls") < 50,
        "{} enters for 200 frames: {after}",
        d("syscalls")
    );
}

/// The mio loop (and percore, which runs it) sleeps until a driver's
/// deadline: with an idle connection open, waiting 1.5 s costs no wake-up
/// beyond what the stats requests themselves cause. A loop that scanned its
/// connections on a period (every 500 ms, as it once did) would show three
/// more polls in the long wait than in the short one.
#[test]
fn an_idle_event_loop_sleeps_until_a_deadline() {
    for backend in ["mio", "percore"] {
        let s = Server::start(backend, &["--workers", "1"]);
        let _idle = s.client();
        let polls = |s: &Server| s.stats()["tcp"]["syscalls"].as_u64().unwrap();
        // Each stats request costs the same polls; measure two waits.
        let mut cost = Vec::new();
        for wait in [Duration::from_millis(50), Duration::from_millis(1500)] {
            let a = polls(&s);
            std::thread::sleep(wait);
            cost.push(polls(&s) - a);
        }
        // One call of slack: whether a stats connection's end is seen in
        // the same poll as its last read is timing's.
        assert!(
            cost[1] <= cost[0] + 1,
            "{backend}: {} system calls over 50 ms idle, {} over 1.5 s",
            cost[0],
            cost[1]
        );
    }
}

/// Pipelined 16 KiB echoes on 24 connections at once come back byte for
/// byte on every concurrent back-end, each with its own way of writing runs
/// from its read buffer (the driver's bookkeeping of short and lent writes
/// is held to copying by core's property test).
#[test]
fn pipelined_large_echoes_on_many_connections_come_back_whole() {
    use std::io::{Read, Write};
    const CONNS: usize = 24;
    const FRAMES: usize = 24;
    for backend in ["threaded", "mio", "tokio", "uring", "percore"] {
        if !common::available(backend) {
            continue;
        }
        let s = Server::start(backend, &[]);
        let addr = s.proc.ready.tcp;
        let handles: Vec<_> = (0..CONNS)
            .map(|c| {
                std::thread::spawn(move || {
                    // Frames of 16 KiB plus or minus a few bytes, each byte
                    // naming its connection and frame.
                    let mut sent = Vec::new();
                    for f in 0..FRAMES {
                        let body: Vec<u8> = (0..16_384 + f * 7)
                            .map(|i| (i * 31 + c * 7 + f) as u8)
                            .collect();
                        let header = format!("{{\"file_size\":{}}}", body.len());
                        sent.extend_from_slice(&(header.len() as u32).to_le_bytes());
                        sent.extend_from_slice(header.as_bytes());
                        sent.extend_from_slice(&body);
                    }
                    let stream = std::net::TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(T)).unwrap();
                    stream.set_write_timeout(Some(T)).unwrap();
                    let mut writer = stream.try_clone().unwrap();
                    let all = sent.clone();
                    let w = std::thread::spawn(move || writer.write_all(&all));
                    let mut got = vec![0u8; sent.len()];
                    (&stream).read_exact(&mut got).unwrap();
                    w.join().unwrap().unwrap();
                    got == sent
                })
            })
            .collect();
        let whole = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(whole, CONNS, "{backend}: replies differ from requests");
    }
}
