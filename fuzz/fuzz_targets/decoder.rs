//! The decoder on arbitrary bytes in arbitrary chunks: it never panics, it
//! uses every byte it is given or fails for good, and cutting the stream
//! differently never changes what it decodes. The input read as one header
//! parses the same with the fast path as with serde_json alone.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench_wire::{Decoder, Endian, Event, Header, WireConfig};

/// Everything a decode produced: (raw header, body, ended) per frame, and the error.
fn decode(
    config: WireConfig,
    input: &[u8],
    chunk: usize,
) -> (Vec<(Vec<u8>, Vec<u8>, bool)>, Option<String>) {
    let mut d = Decoder::new(config);
    let mut frames: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        let mut rest = piece;
        loop {
            match d.decode(&mut rest) {
                Ok(None) => {
                    assert!(rest.is_empty(), "Ok(None) left bytes unused");
                    break;
                }
                Ok(Some(Event::Head(_))) => frames.push((d.raw_header().to_vec(), Vec::new(), false)),
                Ok(Some(Event::Body(b))) => frames
                    .last_mut()
                    .expect("body after a head")
                    .1
                    .extend_from_slice(b),
                Ok(Some(Event::End)) => frames.last_mut().expect("end after a head").2 = true,
                Err(e) => {
                    assert!(e.code.is_fatal());
                    let again = d
                        .decode(&mut &b"more"[..])
                        .map(|_| ())
                        .expect_err("errors are sticky");
                    assert_eq!(again.code, e.code);
                    return (frames, Some(e.code.to_string()));
                }
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let config = WireConfig {
        endian: if knobs & 1 == 0 {
            Endian::Little
        } else {
            Endian::Big
        },
        max_header: [16, 256, 65_536][usize::from(knobs >> 1) % 3],
        max_body: [0, 100, 1 << 40][usize::from(knobs >> 3) % 3],
    };
    let fields = |h: Header| (h.file_size, h.resolved_op().is_ok(), h.id(input).map(|v| v.get()));
    let fast = Header::parse(input).map(fields).map_err(|e| (e.code, e.id));
    let full = Header::parse_full(input).map(fields).map_err(|e| (e.code, e.id));
    assert_eq!(
        fast.as_ref().map_err(|e| (e.0, e.1.as_ref().map(|v| v.get()))),
        full.as_ref().map_err(|e| (e.0, e.1.as_ref().map(|v| v.get()))),
        "fast and full parsers differ"
    );
    let whole = decode(config, input, usize::MAX);
    for chunk in [1, 3, usize::from(knobs >> 5) + 2] {
        assert_eq!(decode(config, input, chunk), whole, "chunks of {chunk}");
    }
});
