//! End-to-end over real sockets: every rule of the contract, written once
//! and run against every back-end (see `suite!` at the bottom).

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Server, T, code, md5_hex, names_in};
use serde_json::{Value, json};
use sockbench::client::{ClientError, udp_echo};
use sockbench_wire::{Encoder, Endian};

/// "echo: the reply is the request frame itself, byte for byte."
fn echo_is_verbatim(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let raw = "{\"id\":{\"k\":[1,2]},\"file_size\":5,\"op\":\"echo\",\"x\":\"caf\u{e9} \u{2603}\"}";
    let mut frame = Vec::new();
    Encoder::new(Endian::Little)
        .frame(raw.as_bytes(), b"\0\xffbin", &mut frame)
        .unwrap();
    c.send_raw(&frame).unwrap();
    let r = c.recv(T).unwrap();
    assert_eq!(r.raw, raw.as_bytes());
    assert_eq!(r.body, b"\0\xffbin");
    let r = c.request(&json!({"file_size": 0}), b"", T).unwrap();
    assert_eq!(r.header, json!({"file_size": 0}));
    assert!(r.body.is_empty());
}

/// "Clients may pipeline... Replies come back in request order."
fn pipelined_frames_in_one_write(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let mut all = Vec::new();
    for i in 0..200 {
        let body = vec![i as u8; i % 37];
        all.extend(c.frame(&json!({"file_size": body.len(), "id": i}), &body));
    }
    c.send_raw(&all).unwrap();
    for i in 0..200 {
        let r = c.recv(T).unwrap();
        assert_eq!(r.header["id"], i);
        assert_eq!(r.body, vec![i as u8; i % 37]);
    }
}

/// A frame split at every byte (inside the prefix, the header and the body).
fn frame_sent_byte_by_byte(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let frame = c.frame(&json!({"file_size": 5, "id": "slow"}), b"hello");
    for b in &frame {
        c.send_raw(std::slice::from_ref(b)).unwrap();
    }
    let r = c.recv(T).unwrap();
    assert_eq!(
        (r.header["id"].as_str(), &r.body[..]),
        (Some("slow"), &b"hello"[..])
    );
}

/// "Large bodies are streamed through": an 8 MiB echo, read while it is sent.
fn echo_of_8_mib_streams(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let body: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let frame = c.frame(&json!({"file_size": body.len()}), &body);
    let mut writer = c.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&frame));
    let r = c.recv(Duration::from_secs(60)).unwrap();
    sender.join().unwrap().unwrap();
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the echoed body differs");
}

/// "upload: ... renamed over <storage>/<file_name> atomically; the reply is ok with bytes and md5."
fn upload_ok_and_implied(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    let h = json!({"op": "upload", "file_name": "a.bin", "file_size": data.len(), "md5": md5_hex(&data).to_uppercase(), "id": 9});
    let r = c.request(&h, &data, T).unwrap();
    assert!(r.is_ok(), "{}", r.header);
    assert_eq!(r.header["op"], "upload");
    assert_eq!(r.header["file_name"], "a.bin");
    assert_eq!(r.header["bytes"], data.len());
    assert_eq!(r.header["md5"], md5_hex(&data));
    assert_eq!(r.header["file_size"], 0);
    assert_eq!(r.header["id"], 9);
    assert!(std::fs::read(s.dir().join("a.bin")).unwrap() == data);
    // No op: a file_name makes it an upload; no md5: stored as is.
    let r = c
        .request(&json!({"file_name": "b.txt", "file_size": 2}), b"hi", T)
        .unwrap();
    assert!(r.is_ok(), "{}", r.header);
    assert_eq!(std::fs::read(s.dir().join("b.txt")).unwrap(), b"hi");
    assert_eq!(names_in(&s.dir()), ["a.bin", "b.txt"]);
}

/// "md5 given and different: the temporary file is removed and the reply is md5_mismatch."
fn md5_mismatch_keeps_the_old_file(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let r = c
        .request(&json!({"file_name": "f", "file_size": 3}), b"old", T)
        .unwrap();
    assert!(r.is_ok());
    let h = json!({"file_name": "f", "file_size": 3, "md5": md5_hex(b"xxx"), "id": "m"});
    let r = c.request(&h, b"new", T).unwrap();
    assert_eq!(code(&r), "md5_mismatch");
    assert_eq!(r.header["md5"], md5_hex(b"new"));
    assert_eq!(r.header["id"], "m");
    assert_eq!(std::fs::read(s.dir().join("f")).unwrap(), b"old");
    assert_eq!(names_in(&s.dir()), ["f"]);
    // The connection goes on.
    let r = c.request(&json!({"file_size": 1}), b"!", T).unwrap();
    assert_eq!(r.body, b"!");
}

/// "file_name must be a plain name ... nothing is written outside the storage directory, ever."
fn bad_file_names_are_refused(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let long = "n".repeat(256);
    for name in ["../x", "a/b", "..", ".", "", "a\0b", "a\\b", &long] {
        let r = c
            .request(
                &json!({"file_name": name, "file_size": 2, "id": name}),
                b"hi",
                T,
            )
            .unwrap();
        assert_eq!(code(&r), "bad_file_name", "name {name:?}");
        assert_eq!(r.header["id"], name);
    }
    let r = c
        .request(&json!({"op": "upload", "file_size": 0}), b"", T)
        .unwrap();
    assert_eq!(code(&r), "bad_file_name", "upload without a name");
    assert!(names_in(&s.dir()).is_empty());
    assert!(!s.dir().parent().unwrap().join("x").exists());
    let r = c.request(&json!({"file_size": 1}), b"!", T).unwrap();
    assert_eq!(r.body, b"!", "the connection goes on");
}

/// "A connection that ends mid-body leaves no file and no temporary file behind."
fn truncated_upload_leaves_nothing(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let frame = c.frame(
        &json!({"file_name": "t.bin", "file_size": 100_000}),
        &vec![1u8; 100_000],
    );
    c.send_raw(&frame[..60_000]).unwrap();
    c.finish_sending().unwrap();
    c.expect_close(T)
        .expect("no reply to a truncated frame, then the close");
    drop(c);
    let stats = s.stats_until(|v| v["tcp"]["uploads_failed"] == 1);
    assert_eq!(stats["tcp"]["errors"], 1);
    assert!(
        names_in(&s.dir()).is_empty(),
        "left {:?}",
        names_in(&s.dir())
    );
}

/// Every fatal row of the error table: "reply, close".
fn fatal_errors_reply_then_close(backend: &str) {
    let s = Server::start(backend, &["--max-header", "1000", "--max-body", "4096"]);
    let frame_of = |h: &str| {
        let mut v = (h.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(h.as_bytes());
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_length", vec![0, 0, 0, 0]),
        ("bad_length", 1001u32.to_le_bytes().to_vec()),
        ("bad_length", u32::MAX.to_le_bytes().to_vec()),
        ("bad_json", frame_of("{nope")),
        (
            "bad_json",
            [&4u32.to_le_bytes()[..], b"{\xff\xfe}"].concat(),
        ),
        ("bad_header", frame_of("[1]")),
        ("bad_header", frame_of(r#"{"op":"echo"}"#)),
        ("bad_header", frame_of(r#"{"file_size":-1}"#)),
        ("bad_header", frame_of(r#"{"file_size":1.5}"#)),
        ("bad_header", frame_of(r#"{"file_size":"2"}"#)),
        ("bad_header", frame_of(r#"{"file_size":0,"file_name":7}"#)),
        ("too_large", frame_of(r#"{"file_size":4097}"#)),
    ];
    for (want, bytes) in cases {
        let mut c = s.client();
        // Garbage after the fatal frame must not be answered.
        c.send_raw(&[&bytes[..], &[0u8; 64][..]].concat()).unwrap();
        let r = c.recv(T).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(
            code(&r),
            want,
            "input {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(r.header["status"], "error");
        assert!(r.header["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(r.header["file_size"], 0);
        c.expect_close(T).unwrap_or_else(|e| panic!("{want}: {e}"));
    }
    // Limits hold at the boundary.
    let mut c = s.client();
    let r = c
        .request(&json!({"file_size": 4096}), &[5u8; 4096], T)
        .unwrap();
    assert_eq!(r.body.len(), 4096);
}

/// The non-fatal rows: "drain the body, reply, keep the connection".
fn non_fatal_errors_keep_the_connection(backend: &str) {
    let s = Server::start(backend, &[]);
    let mut c = s.client();
    let r = c
        .request(&json!({"op": "delete", "file_size": 3, "id": 1}), b"abc", T)
        .unwrap();
    assert_eq!((code(&r), &r.header["id"]), ("unknown_op", &json!(1)));
    let r = c
        .request(
            &json!({"file_name": "f", "md5": "xyz", "file_size": 3}),
            b"abc",
            T,
        )
        .unwrap();
    assert_eq!(code(&r), "bad_md5");
    let r = c
        .request(&json!({"file_size": 2, "id": "after"}), b"ok", T)
        .unwrap();
    assert_eq!(r.body, b"ok");
    assert!(names_in(&s.dir()).is_empty());
}

/// "The UDP socket echoes every datagram, verbatim ... from 0 bytes ... up to 65,507 bytes on IPv4."
fn udp_echo_of_every_size(backend: &str) {
    let s = Server::start(backend, &[]);
    for size in [0usize, 1, 1472, 65_507] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 256) as u8).collect();
        let got = udp_echo(s.proc.ready.udp, &payload, T).unwrap();
        assert!(
            got == payload,
            "{size}-byte datagram came back as {} bytes",
            got.len()
        );
    }
    let st = s.stats();
    assert_eq!(st["udp"]["datagrams_in"], 4);
    assert_eq!(st["udp"]["datagrams_out"], 4);
    assert_eq!(st["udp"]["bytes_in"], 1 + 1472 + 65_507);
}

/// 65,527 bytes, the IPv6 maximum, over ::1 (the host must have an IPv6 loopback).
fn udp_echo_ipv6_maximum(backend: &str) {
    let s = Server::start(backend, &["--udp", "[::1]:0", "--tcp", "[::1]:0"]);
    let payload = vec![0xa5u8; 65_527];
    assert!(udp_echo(s.proc.ready.udp, &payload, T).unwrap() == payload);
    let mut c = s.client();
    assert_eq!(
        c.request(&json!({"file_size": 1}), b"6", T).unwrap().body,
        b"6"
    );
}

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

/// "SIGINT or SIGTERM: stop accepting, finish ..., remove temporary files, exit 0."
fn sigterm_mid_upload_exits_0_and_leaves_nothing(backend: &str) {
    let mut s = Server::start(backend, &[]);
    let mut c = s.client();
    let frame = c.frame(
        &json!({"file_name": "big", "file_size": 1_000_000}),
        &vec![0u8; 1_000_000],
    );
    c.send_raw(&frame[..500_000]).unwrap();
    // The temporary file exists once the server has read some of the body.
    let deadline = std::time::Instant::now() + T;
    while names_in(&s.dir()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(names_in(&s.dir()).len(), 1, "the upload is in progress");
    let status = s.proc.terminate(T).unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        names_in(&s.dir()).is_empty(),
        "left {:?}",
        names_in(&s.dir())
    );
    assert!(matches!(c.recv(T), Err(ClientError::Closed { .. })));
}

/// "--storage defaults to a fresh temporary directory removed at exit."
fn sigterm_when_idle_removes_default_storage(backend: &str) {
    let mut proc = sockbench::target::Spawned::backend(common::exe(), backend, &[], T).unwrap();
    let mut c = sockbench::client::Client::connect(proc.ready.tcp, Default::default(), T).unwrap();
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

/// "--endian big switches every peer to network order."
fn big_endian_everywhere(backend: &str) {
    let s = Server::start(backend, &["--endian", "big"]);
    let mut c = s.client();
    let r = c
        .request(&json!({"file_size": 4, "id": "be"}), b"abcd", T)
        .unwrap();
    assert_eq!(r.body, b"abcd");
    let r = c
        .request(&json!({"file_name": "be.txt", "file_size": 2}), b"be", T)
        .unwrap();
    assert!(r.is_ok());
    // A little-endian prefix of 15 reads as a huge big-endian length.
    let mut raw = Vec::new();
    Encoder::new(Endian::Little)
        .frame(br#"{"file_size":0}"#, b"", &mut raw)
        .unwrap();
    c.send_raw(&raw).unwrap();
    assert_eq!(code(&c.recv(T).unwrap()), "bad_length");
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

/// Counts reported back as JSON numbers a client can read.
fn stats_shape(backend: &str) {
    let s = Server::start(backend, &[]);
    let st = s.stats();
    for k in [
        "connections",
        "frames",
        "bytes_in",
        "bytes_out",
        "errors",
        "uploads_ok",
        "uploads_failed",
    ] {
        assert!(st["tcp"][k].is_u64(), "tcp.{k} in {st}");
    }
    for k in ["datagrams_in", "datagrams_out", "bytes_in"] {
        assert!(st["udp"][k].is_u64(), "udp.{k} in {st}");
    }
    assert_eq!(
        (
            st["op"].clone(),
            st["status"].clone(),
            st["file_size"].clone()
        ),
        (json!("stats"), json!("ok"), json!(0))
    );
    let _: Value = st;
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

/// "--header-timeout": a slowloris trickling a header a byte at a time, each
/// byte well within the idle timeout, is cut off when the header is late.
fn header_deadline_stops_a_slowloris(backend: &str) {
    let s = Server::start(backend, &["--header-timeout", "0.4"]);
    let mut c = s.client();
    let frame = c.frame(&json!({"file_size": 0, "pad": "slowly, slowly"}), b"");
    let start = std::time::Instant::now();
    let mut sent = 0;
    for b in &frame {
        if c.send_raw(std::slice::from_ref(b)).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        sent < frame.len(),
        "the whole header got through in {:?}",
        start.elapsed()
    );
    assert!(matches!(c.recv(T), Err(ClientError::Closed { .. })));
    let st = s.stats_until(|v| v["tcp"]["errors"] == 1);
    assert_eq!(st["tcp"]["errors"], 1, "counted as a truncated frame");
}

/// The suite, once per back-end.
macro_rules! suite {
    ($($backend:ident),* $(,)?) => {$(
        mod $backend {
            suite!(@tests $backend:
                echo_is_verbatim, pipelined_frames_in_one_write, frame_sent_byte_by_byte,
                echo_of_8_mib_streams, upload_ok_and_implied, md5_mismatch_keeps_the_old_file,
                bad_file_names_are_refused, truncated_upload_leaves_nothing,
                fatal_errors_reply_then_close, non_fatal_errors_keep_the_connection,
                udp_echo_of_every_size, udp_echo_ipv6_maximum, stats_counts_exactly,
                sigterm_mid_upload_exits_0_and_leaves_nothing,
                sigterm_when_idle_removes_default_storage, big_endian_everywhere,
                                python_client, stats_shape, each_reply_is_one_write,
                header_deadline_stops_a_slowloris, end_of_stream_is_not_a_read,
                idle_timeout_holds_mid_frame);
        }
    )*};
    (@tests $backend:ident: $($test:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            super::$test(stringify!($backend));
        }
    )*};
}

suite!(blocking, threaded, mio, tokio);
