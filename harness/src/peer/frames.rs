//! The requests the load drivers send (seeded, incompressible bodies and
//! echo frames built from them) and the check of their echoes. Below both
//! `bench` and `load`.

use sockbench_wire::Endian;

use crate::error::Error;

/// The lower-case hex MD5 of `data`: the digest an upload's header carries.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    sockbench_wire::md5_hex(&Md5::digest(data).into())
}

/// A payload of `n` bytes from `seed`: varied, so no layer can compress it.
pub fn payload(n: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// An echo request of `body` bytes from `seed`, in `endian` order.
pub fn echo_frame(body: usize, seed: u64, endian: Endian) -> Vec<u8> {
    let header = format!("{{\"file_size\":{body}}}");
    let len = header.len() as u32;
    let mut f = match endian {
        Endian::Little => len.to_le_bytes(),
        Endian::Big => len.to_be_bytes(),
    }
    .to_vec();
    f.extend_from_slice(header.as_bytes());
    f.extend(payload(body, seed));
    f
}

/// Checks `got` against the echo of `frame`, continuing at offset `*rpos`
/// of the reply in progress; calls `done` for each reply completed. The
/// closed-loop driver and the open-loop engine share it: a wrong server cannot score in either.
pub fn match_echo(
    got: &[u8],
    frame: &[u8],
    rpos: &mut usize,
    mut done: impl FnMut() -> Result<(), Error>,
) -> Result<(), Error> {
    let flen = frame.len();
    let mut off = 0;
    while off < got.len() {
        let take = (got.len() - off).min(flen - *rpos);
        if got[off..off + take] != frame[*rpos..*rpos + take] {
            return Err(Error::Misbehaved {
                what: format!(
                    "a reply differs from its request at byte {} of the frame",
                    *rpos
                ),
            });
        }
        *rpos += take;
        off += take;
        if *rpos == flen {
            *rpos = 0;
            done()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_byte_order() {
        let f = echo_frame(3, 1, Endian::Big);
        assert_eq!(&f[..4], &[0, 0, 0, 15]);
        assert_eq!(&f[4..19], b"{\"file_size\":3}");
        assert_eq!(f.len(), 4 + 15 + 3);
        assert_eq!(&echo_frame(3, 1, Endian::Little)[..4], &[15, 0, 0, 0]);
    }
}
