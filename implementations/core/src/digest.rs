//! MD5, the upload's digest. With the `openssl` feature (the default), from
//! OpenSSL, the fastest implementation here (docs/performance.md gives the
//! rates; `cargo bench --bench codec -- md5`), or md-5 where OpenSSL refuses
//! MD5 (a FIPS-only build). Without the feature, md-5 alone: pure Rust, no C
//! library at build or run time, which is what the Python wheel ships.

use md5::Digest as _;
#[cfg(feature = "openssl")]
use openssl::hash::{Hasher, MessageDigest};

/// An MD5 computation in progress.
pub struct Md5(Inner);

enum Inner {
    #[cfg(feature = "openssl")]
    OpenSsl(Hasher),
    Rust(md5::Md5),
    /// OpenSSL failed mid-stream: the digest is lost, and `finish` says so.
    #[cfg(feature = "openssl")]
    Failed,
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.implementation())
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl Md5 {
    /// A fresh digest.
    pub fn new() -> Md5 {
        #[cfg(feature = "openssl")]
        if let Ok(h) = Hasher::new(MessageDigest::md5()) {
            return Md5(Inner::OpenSsl(h));
        }
        Md5(Inner::Rust(md5::Md5::new()))
    }

    /// Which implementation computes this digest: `Md5(openssl)` or
    /// `Md5(md-5)`, for logs and the bench's notes.
    pub fn implementation(&self) -> &'static str {
        match self.0 {
            #[cfg(feature = "openssl")]
            Inner::OpenSsl(_) => "Md5(openssl)",
            Inner::Rust(_) => "Md5(md-5)",
            #[cfg(feature = "openssl")]
            Inner::Failed => "Md5(failed)",
        }
    }

    /// Digests `data` next.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            #[cfg(feature = "openssl")]
            Inner::OpenSsl(h) => {
                if h.update(data).is_err() {
                    self.0 = Inner::Failed;
                }
            }
            Inner::Rust(h) => h.update(data),
            #[cfg(feature = "openssl")]
            Inner::Failed => {}
        }
    }

    /// The digest of everything given; an error if OpenSSL failed on the way.
    pub fn finish(self) -> std::io::Result<[u8; 16]> {
        match self.0 {
            #[cfg(feature = "openssl")]
            Inner::OpenSsl(mut h) => {
                let failed = || std::io::Error::other("OpenSSL's MD5 failed");
                let d = h.finish().map_err(|_| failed())?;
                <[u8; 16]>::try_from(&d[..]).map_err(|_| failed())
            }
            Inner::Rust(h) => Ok(h.finalize().into()),
            #[cfg(feature = "openssl")]
            Inner::Failed => Err(std::io::Error::other("OpenSSL's MD5 failed")),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> std::io::Result<[u8; 16]> {
        let mut h = Md5::new();
        h.update(data);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_implementations_agree_on_the_rfc_vectors() {
        for (input, hex) in [
            (&b""[..], "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            let mut ours = Md5::new();
            // The feature decides the implementation: a build that asked for
            // OpenSSL and silently got md-5 would be slower than it says.
            let want = if cfg!(feature = "openssl") {
                "Md5(openssl)"
            } else {
                "Md5(md-5)"
            };
            assert_eq!(ours.implementation(), want);
            // In two pieces: the state carries over.
            let (a, b) = input.split_at(input.len() / 2);
            ours.update(a);
            ours.update(b);
            let rust: [u8; 16] = md5::Md5::digest(input).into();
            assert_eq!(sockbench_wire::md5_hex(&ours.finish().unwrap()), hex);
            assert_eq!(sockbench_wire::md5_hex(&rust), hex);
        }
    }
}
