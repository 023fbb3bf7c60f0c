//! Reply frames read off a byte stream, whatever their content: what both
//! the executor (to count whole replies) and the judge (to compare them)
//! need, and nothing of either.

use serde_json::Value;
use sockbench_wire::Endian;

/// The length of the whole frame at the front of `bytes`, once it is all
/// there (a header that is not JSON counts as declaring no body).
pub fn frame_len(bytes: &[u8], endian: Endian) -> Option<usize> {
    let (n, header) = split(bytes, endian)?;
    let size = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|v| v.get("file_size").and_then(Value::as_u64))
        .unwrap_or(0);
    let len = 4 + n + usize::try_from(size).ok()?;
    (bytes.len() >= len).then_some(len)
}

/// Takes one whole frame off the front of `rest`.
pub fn next_frame<'a>(rest: &mut &'a [u8], endian: Endian) -> Option<&'a [u8]> {
    let len = frame_len(rest, endian)?;
    let (frame, tail) = rest.split_at(len);
    *rest = tail;
    Some(frame)
}

/// The header length and the header of the frame at the front of `bytes`,
/// once the header is all there.
pub fn split(bytes: &[u8], endian: Endian) -> Option<(usize, &[u8])> {
    let p: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let n = match endian {
        Endian::Little => u32::from_le_bytes(p),
        Endian::Big => u32::from_be_bytes(p),
    } as usize;
    Some((n, bytes.get(4..4 + n)?))
}
