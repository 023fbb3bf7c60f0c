//! Batched datagram I/O: `sendmmsg` and `recvmmsg`, one system call for up
//! to [`BATCH`] datagrams. A sender that pays a system call per datagram
//! tops out below what a good server echoes (on the 2-core CI machine
//! about 170-300k 64-byte datagrams/s), and the UDP scenario then measures
//! the sender; batched, it offers several times more.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Most datagrams per system call.
pub const BATCH: usize = 64;

/// Source addresses of a received batch, to send replies back to.
pub struct Peers {
    raw: [libc::sockaddr_storage; BATCH],
    lens: [libc::socklen_t; BATCH],
}

impl Peers {
    /// Room for a batch of addresses.
    pub fn new() -> Box<Peers> {
        // SAFETY: sockaddr_storage and socklen_t are plain C data for which
        // all-zero is valid (an unspecified address of length 0).
        #[allow(unsafe_code)]
        Box::new(unsafe { std::mem::zeroed() })
    }
}

/// Sends each of `msgs` as one datagram: on a connected socket with `to`
/// `None`; with `Some((peers, first))`, message i to address `first + i`
/// of `peers` (as received, so a partly sent batch can resume).
/// Returns how many the kernel took (those first ones), at least one unless
/// it is an error.
pub fn send(sock: &UdpSocket, msgs: &[&[u8]], to: Option<(&Peers, usize)>) -> io::Result<usize> {
    let n = match to {
        Some((_, first)) => msgs.len().min(BATCH.saturating_sub(first)),
        None => msgs.len().min(BATCH),
    };
    if n == 0 {
        return Ok(0);
    }
    let mut iov: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is a plain C struct for which all-zero is a valid
    // value (no address, no control data).
    #[allow(unsafe_code)]
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        // sendmmsg only reads through iov_base; the cast to *mut is what
        // the C signature asks for.
        iov[i] = libc::iovec {
            iov_base: msgs[i].as_ptr() as *mut libc::c_void,
            iov_len: msgs[i].len(),
        };
        hdrs[i].msg_hdr.msg_iov = &mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
        if let Some((p, first)) = to {
            // Read only, like iov_base.
            hdrs[i].msg_hdr.msg_name = (&p.raw[first + i] as *const libc::sockaddr_storage)
                .cast_mut()
                .cast();
            hdrs[i].msg_hdr.msg_namelen = p.lens[first + i];
        }
    }
    // SAFETY: `hdrs[..n]` point at `iov[..n]`, which point at the live
    // slices of `msgs`, and at the addresses of `to`; all outlive the call,
    // and the kernel writes only the msg_len fields of `hdrs`.
    #[allow(unsafe_code)]
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), n as u32, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Receives up to `bufs.len()` (at most [`BATCH`]) datagrams, blocking
/// (under the socket's read timeout) only for the first. `lens[i]` gets
/// datagram i's real length, which is more than `bufs[i].len()` when the
/// kernel cut it to fit; `from`, when given, gets the source addresses.
/// Returns how many arrived.
pub fn recv(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
    mut from: Option<&mut Peers>,
) -> io::Result<usize> {
    let n = bufs.len().min(lens.len()).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut iov: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: as in `send`, all-zero is a valid mmsghdr.
    #[allow(unsafe_code)]
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        iov[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: bufs[i].len(),
        };
        hdrs[i].msg_hdr.msg_iov = &mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
        if let Some(p) = from.as_deref_mut() {
            hdrs[i].msg_hdr.msg_name = (&mut p.raw[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        }
    }
    // MSG_TRUNC makes each msg_len the datagram's real length, so a cut
    // datagram is never mistaken for a whole one.
    let flags = libc::MSG_WAITFORONE | libc::MSG_TRUNC;
    // SAFETY: each iovec points at a distinct live buffer of `bufs` with
    // its true length, and each name at a whole sockaddr_storage of
    // `from`, so the kernel writes only inside them; no timeout
    // pointer is passed (the socket's SO_RCVTIMEO bounds the wait).
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as u32,
            flags,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = r as usize;
    for i in 0..got {
        lens[i] = hdrs[i].msg_len as usize;
        if let Some(p) = from.as_deref_mut() {
            p.lens[i] = hdrs[i].msg_hdr.msg_namelen;
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_arrives_whole_and_in_order_and_a_cut_datagram_shows_its_length() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10 + i as usize]).collect();
        let msgs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        assert_eq!(send(&tx, &msgs, None).unwrap(), 10);
        // Buffers of 15 bytes: datagrams 6..9 (16-19 bytes) are cut.
        let mut bufs = vec![vec![0u8; 15]; BATCH];
        let mut lens = vec![0usize; BATCH];
        let mut got = 0;
        while got < 10 {
            let n = recv(&rx, &mut bufs[got..], &mut lens[got..], None).unwrap();
            assert!(n > 0);
            got += n;
        }
        for i in 0..10 {
            assert_eq!(lens[i], 10 + i, "datagram {i}'s real length");
            let kept = lens[i].min(15);
            assert!(bufs[i][..kept].iter().all(|&b| b == i as u8));
        }
    }

    #[test]
    fn more_than_a_batch_is_sent_a_batch_at_a_time() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let one = [7u8; 4];
        let msgs = vec![&one[..]; BATCH + 5];
        assert_eq!(send(&tx, &msgs, None).unwrap(), BATCH);
        assert_eq!(send(&tx, &[], None).unwrap(), 0);
    }

    #[test]
    fn replies_go_back_to_each_sender() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        echo.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| {
                let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                c.connect(echo.local_addr().unwrap()).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c
            })
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.send(&[i as u8; 3]).unwrap();
        }
        let mut bufs = vec![vec![0u8; 16]; 3];
        let mut lens = vec![0usize; 3];
        let mut peers = Peers::new();
        let mut got = 0;
        while got < 3 {
            // One batch at a time so the addresses stay aligned.
            let n = recv(&echo, &mut bufs, &mut lens, Some(&mut peers)).unwrap();
            let msgs: Vec<&[u8]> = (0..n).map(|i| &bufs[i][..lens[i]]).collect();
            assert_eq!(send(&echo, &msgs, Some((&peers, 0))).unwrap(), n);
            got += n;
        }
        for (i, c) in clients.iter().enumerate() {
            let mut b = [0u8; 16];
            let n = c.recv(&mut b).unwrap();
            assert_eq!(
                &b[..n],
                &[i as u8; 3],
                "client {i} got its own datagram back"
            );
        }
    }
}
