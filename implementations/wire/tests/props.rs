//! Property tests of the codec: round trips, every segmentation, arbitrary
//! bytes, limits at their boundaries, both byte orders.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sockbench_wire::{
    DecodeError, Decoder, Encoder, Endian, ErrorCode, Event, Position, WireConfig,
};

/// Everything a decoder produced for one stream, frame by frame.
#[derive(Debug, PartialEq)]
struct Decoded {
    /// (raw header, body, ended) per frame.
    frames: Vec<(Vec<u8>, Vec<u8>, bool)>,
    error: Option<ErrorCode>,
    position: Position,
}

/// Feeds `input` cut at `cuts` (offsets, any order, duplicates allowed).
fn decode_cut(config: WireConfig, input: &[u8], cuts: &[usize]) -> Decoded {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    let mut d = Decoder::new(config);
    let mut out = Decoded {
        frames: Vec::new(),
        error: None,
        position: Position::Boundary,
    };
    'outer: for w in points.windows(2) {
        let mut rest = &input[w[0]..w[1]];
        loop {
            match d.decode(&mut rest) {
                Ok(None) => {
                    assert!(rest.is_empty(), "Ok(None) must mean every byte was used");
                    break;
                }
                Ok(Some(Event::Head(_))) => {
                    out.frames
                        .push((d.raw_header().to_vec(), Vec::new(), false))
                }
                Ok(Some(Event::Body(b))) => {
                    assert!(!b.is_empty(), "empty body chunks are noise");
                    out.frames.last_mut().unwrap().1.extend_from_slice(b)
                }
                Ok(Some(Event::End)) => out.frames.last_mut().unwrap().2 = true,
                Err(e) => {
                    out.error = Some(e.code);
                    // Sticky: the same error again, whatever comes next.
                    let mut more: &[u8] = b"\0\0\0\x05hello";
                    assert_eq!(d.decode(&mut more).map(|_| ()).unwrap_err().code, e.code);
                    break 'outer;
                }
            }
        }
    }
    out.position = d.position();
    out
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z\u{e9}\u{2603}]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid request header for a body of `size` bytes, with extra fields and an id.
fn header(size: u64) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::of(json_value()),
        prop::collection::btree_map("x_[a-z\u{e9}\u{4e2d}]{0,8}", json_value(), 0..4),
        prop::option::of(prop_oneof![
            Just("echo"),
            Just("upload"),
            Just("stats"),
            Just("zap")
        ]),
        prop::option::of("\\PC{1,20}"),
    )
        .prop_map(move |(id, extra, op, name)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("file_size".into(), json!(size));
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            if let Some(op) = op {
                m.insert("op".into(), json!(op));
            }
            if let Some(name) = name {
                m.insert("file_name".into(), json!(name));
            }
            serde_json::to_vec(&Value::Object(m)).unwrap()
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (0usize..=200_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

fn frame() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    body().prop_flat_map(|b| (header(b.len() as u64), Just(b)))
}

fn endian() -> impl Strategy<Value = Endian> {
    prop_oneof![Just(Endian::Little), Just(Endian::Big)]
}

fn encode_all(endian: Endian, frames: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, b) in frames {
        Encoder::new(endian).frame(h, b, &mut out).unwrap();
    }
    out
}

fn config(endian: Endian) -> WireConfig {
    WireConfig {
        endian,
        ..WireConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn round_trip((h, b) in frame(), endian in endian()) {
        let stream = encode_all(endian, &[(h.clone(), b.clone())]);
        let got = decode_cut(config(endian), &stream, &[]);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.position, Position::Boundary);
        prop_assert_eq!(got.frames, vec![(h.clone(), b.clone(), true)]);
        // The parsed fields agree with what was written.
        let parsed = sockbench_wire::Header::parse(&h).unwrap();
        let v: Value = serde_json::from_slice(&h).unwrap();
        prop_assert_eq!(parsed.file_size, b.len() as u64);
        prop_assert_eq!(parsed.id(&h).map(|r| serde_json::from_str::<Value>(r.get()).unwrap()), v.get("id").cloned());
        let name = parsed.file_name.map(|t| t.get(&h).into_owned());
        prop_assert_eq!(name.as_deref(), v.get("file_name").and_then(Value::as_str));
    }

    #[test]
    fn any_segmentation_decodes_the_same(
        frames in prop::collection::vec(frame(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        endian in endian(),
    ) {
        let stream = encode_all(endian, &frames);
        let want: Vec<_> = frames.iter().map(|(h, b)| (h.clone(), b.clone(), true)).collect();
        let whole = decode_cut(config(endian), &stream, &[]);
        prop_assert_eq!(&whole.frames, &want);
        let cut = decode_cut(config(endian), &stream, &cuts);
        prop_assert_eq!(&cut, &whole);
        // Splits inside every frame's prefix and header, in the worst place: byte by byte
        // for small streams.
        if stream.len() < 4096 {
            let bytewise: Vec<usize> = (0..stream.len()).collect();
            prop_assert_eq!(&decode_cut(config(endian), &stream, &bytewise), &whole);
        }
    }

    #[test]
    fn arbitrary_bytes_end_in_frames_or_one_error(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        endian in endian(),
        max_header in 1u32..2000,
    ) {
        let cfg = WireConfig { endian, max_header, max_body: 10_000 };
        let whole = decode_cut(cfg, &bytes, &[]);
        let cut = decode_cut(cfg, &bytes, &cuts);
        prop_assert_eq!(&cut, &whole);
        if let Some(code) = whole.error {
            prop_assert!(code.is_fatal(), "the decoder only reports fatal codes, got {}", code);
            prop_assert_eq!(whole.position, Position::Failed);
        }
    }

    #[test]
    fn mostly_valid_streams_with_noise_never_panic(
        frames in prop::collection::vec(frame(), 1..4),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        endian in endian(),
    ) {
        let mut stream = encode_all(endian, &frames);
        for (at, byte) in flips {
            let n = stream.len();
            stream[at % n] = byte;
        }
        let whole = decode_cut(config(endian), &stream, &[]);
        let bytewise: Vec<usize> = (0..stream.len().min(3000)).collect();
        prop_assert_eq!(&decode_cut(config(endian), &stream, &bytewise), &whole);
    }

    #[test]
    fn header_limit_holds_at_below_and_above(extra in 0usize..500, endian in endian()) {
        let h = format!("{{\"file_size\":0,\"pad\":\"{}\"}}", "p".repeat(extra)).into_bytes();
        let len = h.len() as u32;
        let stream = encode_all(endian, &[(h.clone(), Vec::new())]);
        for (max_header, ok) in [(len + 1, true), (len, true), (len - 1, false)] {
            let cfg = WireConfig { endian, max_header, max_body: 0 };
            let got = decode_cut(cfg, &stream, &[]);
            if ok {
                prop_assert_eq!(got.error, None);
                prop_assert_eq!(got.frames.len(), 1);
            } else {
                prop_assert_eq!(got.error, Some(ErrorCode::BadLength));
                prop_assert!(got.frames.is_empty());
            }
        }
    }

    #[test]
    fn body_limit_holds_at_below_and_above(size in 0u64..5000, endian in endian()) {
        let h = format!("{{\"file_size\":{size}}}").into_bytes();
        let b = vec![7u8; size as usize];
        let stream = encode_all(endian, &[(h, b)]);
        for (max_body, ok) in [(size + 1, true), (size, true), (size.wrapping_sub(1), false)] {
            if size == 0 && !ok {
                continue; // no limit lies below zero
            }
            let cfg = WireConfig { endian, max_header: 1000, max_body };
            let got = decode_cut(cfg, &stream, &[]);
            prop_assert_eq!(got.error, (!ok).then_some(ErrorCode::TooLarge));
        }
    }

    #[test]
    fn declared_lengths_never_allocate(len in 1u32.., endian in endian()) {
        // A prefix declaring up to 4 GiB of header, with only a few bytes behind it:
        // the decoder holds those bytes, never the declared amount.
        let mut stream = endian.write_u32(len).to_vec();
        stream.extend_from_slice(b"{\"file_size\"");
        let cfg = WireConfig::permissive(endian);
        let mut d = Decoder::new(cfg);
        let mut rest = &stream[..];
        let r: Result<_, DecodeError> = d.decode(&mut rest).map(|e| e.is_some());
        if (len as usize) <= 12 {
            // A short declared length makes a (likely bad) header of the bytes at hand.
            prop_assert!(matches!(r, Err(_) | Ok(true)));
        } else {
            prop_assert_eq!(r.unwrap(), false);
            prop_assert_eq!(d.position(), Position::Header);
        }
    }
}

#[test]
fn the_other_byte_order_is_a_bad_length_not_a_hang() {
    let h = br#"{"file_size":0}"#;
    let stream = encode_all(Endian::Big, &[(h.to_vec(), Vec::new())]);
    let got = decode_cut(config(Endian::Little), &stream, &[]);
    assert_eq!(got.error, Some(ErrorCode::BadLength));
}

#[test]
fn a_64_kib_frame_split_into_every_chop_size_up_to_2048() {
    let body: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 251) as u8).collect();
    let h = format!("{{\"file_size\":{}}}", body.len()).into_bytes();
    let stream = encode_all(
        Endian::Little,
        &[(h.clone(), body.clone()), (h.clone(), body.clone())],
    );
    for chop in 1..=2048usize {
        let cuts: Vec<usize> = (chop..stream.len()).step_by(chop).collect();
        let got = decode_cut(config(Endian::Little), &stream, &cuts);
        assert_eq!(got.frames.len(), 2, "chop {chop}");
        assert!(
            got.frames.iter().all(|f| f.0 == h && f.1 == body && f.2),
            "chop {chop}"
        );
    }
}

const KEYS: &[&str] = &[
    "\"file_size\"",
    "\"file_size\"",
    "\"op\"",
    "\"id\"",
    "\"md5\"",
    "\"file_name\"",
    "\"x\"",
    "\"file\\u005fsize\"",
    "\"\u{e9}\"",
];

const VALUES: &[&str] = &[
    "0",
    "7",
    "64",
    "1.5",
    "1e2",
    "2E1",
    "-0",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "9999999999999999999",
    "10000000000000000000",
    "\"echo\"",
    "\"upload\"",
    "\"stats\"",
    "\"zap\"",
    "\"a b.txt\"",
    "\"a\\\"b\"",
    "\"\\ud800\"",
    "\"\\u0041\"",
    "\"\u{e9}\u{2603}\"",
    "\"\"",
    "true",
    "false",
    "null",
    "[1,\"x\"]",
    "{}",
    "{\"a\":1}",
];

/// Values that are not JSON, each next to the valid one it resembles.
const NOT_VALUES: &[&str] = &["01", "00", "-", "1.", "tru", "nul", "\"\t\"", "[", "\""];

const WS: &[&str] = &["", "", "", " ", "\t", "\n", "\r", " \n "];

/// Objects of known and unknown fields with values of every type, valid
/// and not, in any whitespace, sometimes with one token spliced in.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let ws = || prop::sample::select(WS);
    let value = || {
        prop_oneof![
            12 => prop::sample::select(VALUES),
            1 => prop::sample::select(NOT_VALUES),
        ]
    };
    let pair = (prop::sample::select(KEYS), value(), ws(), ws());
    let size = (Just("\"file_size\""), value(), ws(), ws());
    (
        (prop::collection::vec(pair, 0..5), size, any::<usize>()).prop_map(
            |(mut pairs, size, at)| {
                let n = pairs.len() + 1;
                pairs.insert(at % n, size);
                pairs
            },
        ),
        ws(),
        ws(),
        prop::option::weighted(
            0.2,
            (
                any::<usize>(),
                prop::sample::select(&[",", "}", "{", ":", "x", "\""][..]),
            ),
        ),
    )
        .prop_map(|(pairs, before, after, splice)| {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(k, v, w1, w2)| format!("{w1}{k}{w2}:{w1}{v}{w2}"))
                .collect();
            let mut text = format!("{before}{{{}}}{after}", fields.join(","));
            if let Some((at, token)) = splice {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, token);
            }
            text.into_bytes()
        })
}

/// What a parse found, comparable across parsers.
fn outcome(raw: &[u8], r: Result<sockbench_wire::Header, DecodeError>) -> String {
    match r {
        Ok(h) => format!(
            "ok {} {:?} {:?} {:?} {:?}",
            h.file_size,
            h.resolved_op().map_err(|t| t.get(raw).into_owned()),
            h.file_name.map(|t| t.get(raw).into_owned()),
            h.md5.map(|t| t.get(raw).into_owned()),
            h.id(raw).map(|v| v.get().to_owned()),
        ),
        Err(e) => format!("{} {:?}", e.code, e.id.map(|v| v.get().to_owned())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_path_finds_what_serde_json_finds(
        raw in prop_oneof![header_like(), header(64), header(0)],
        flip in prop::option::of((any::<usize>(), any::<u8>())),
    ) {
        let mut raw = raw;
        if let (Some((at, byte)), false) = (flip, raw.is_empty()) {
            let n = raw.len();
            raw[at % n] = byte;
        }
        let fast = outcome(&raw, sockbench_wire::Header::parse(&raw));
        let full = outcome(&raw, sockbench_wire::Header::parse_full(&raw));
        prop_assert_eq!(fast, full, "{}", String::from_utf8_lossy(&raw));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The shortcut for whole frames says what decoding says, or nothing.
    #[test]
    fn peek_frame_agrees_with_decode(
        frames in prop::collection::vec(frame(), 1..4),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cut in any::<usize>(),
        endian in endian(),
    ) {
        let mut stream = encode_all(endian, &frames);
        for (at, byte) in flips {
            let n = stream.len();
            stream[at % n] = byte;
        }
        stream.truncate(cut % (stream.len() + 1));
        let mut d = Decoder::new(config(endian));
        let mut rest = &stream[..];
        while let Some((header, len)) = d.peek_frame(rest) {
            let before = rest.len();
            let mut body = 0;
            match d.decode(&mut rest) {
                Ok(Some(Event::Head(h))) => prop_assert_eq!(h.file_size, header.file_size),
                other => prop_assert!(false, "peeked a frame, decoded {:?}", other),
            }
            loop {
                match d.decode(&mut rest) {
                    Ok(Some(Event::Body(b))) => body += b.len() as u64,
                    Ok(Some(Event::End)) => break,
                    other => prop_assert!(false, "inside a peeked frame: {:?}", other),
                }
            }
            prop_assert_eq!(body, header.file_size);
            prop_assert_eq!(before - rest.len(), len);
        }
        // Where it says nothing, decoding needs more bytes or fails.
        let mut probe = rest;
        let decoded_whole = loop {
            match d.decode(&mut probe) {
                Ok(Some(Event::End)) => break true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break false,
            }
        };
        prop_assert!(!decoded_whole, "a whole frame was not peeked");
    }
}
