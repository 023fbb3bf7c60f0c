//! The UDP echo through the ring: `SLOTS` receives in flight on the
//! socket, each with its own buffer and `msghdr`; a datagram's echo is a
//! `sendmsg` from the same slot, and the slot receives again once it is sent.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;

use io_uring::{opcode, squeue, types};
use sockbench_core::{Counters, Echo, UDP_BUFFER, UdpEcho};
use socket2::{SockAddr, SockAddrStorage};

/// Receives kept in flight: datagrams of a burst are taken while earlier
/// echoes are still being sent.
pub const SLOTS: usize = 16;

/// One receive-then-echo slot. It must not move while an operation is in
/// flight: the kernel holds pointers into it.
pub struct Slot<'c> {
    buf: Vec<u8>,
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
    /// The echo being sent, counted when its datagram arrived.
    echo: Option<Echo<'c>>,
}

impl<'c> Slot<'c> {
    /// A slot with its buffer; its pointers are set when it is armed.
    pub fn new() -> Slot<'c> {
        // SAFETY: all-zero is a valid sockaddr_storage, iovec and msghdr.
        let (addr, iov, msg) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Slot {
            buf: vec![0; UDP_BUFFER],
            addr,
            iov,
            msg,
            echo: None,
        }
    }

    fn point(&mut self, len: usize) {
        self.iov.iov_base = self.buf.as_mut_ptr().cast();
        self.iov.iov_len = len;
        self.msg.msg_name = std::ptr::from_mut(&mut self.addr).cast();
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        self.msg.msg_control = std::ptr::null_mut();
        self.msg.msg_controllen = 0;
        self.msg.msg_flags = 0;
    }

    /// A receive into the slot, which must stay put and untouched until
    /// the completion.
    pub fn recv(&mut self, fd: types::Fd) -> squeue::Entry {
        self.point(self.buf.len());
        self.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        opcode::RecvMsg::new(fd, &mut self.msg).build()
    }

    /// The receive completed with `res`: `Ok(Some(send))` echoes the
    /// datagram (counted now), `Ok(None)` receives again, `Err` is the
    /// receive's error.
    pub fn received(
        &mut self,
        res: i32,
        fd: types::Fd,
        counters: &'c Counters,
    ) -> io::Result<Option<squeue::Entry>> {
        if res < 0 {
            return Err(io::Error::from_raw_os_error(-res));
        }
        let len = res as usize;
        let Some(from) = self.source() else {
            return Ok(None);
        };
        self.echo = Some(UdpEcho(counters).received(len, from));
        self.point(len);
        Ok(Some(opcode::SendMsg::new(fd, &self.msg).build()))
    }

    /// The echo's send completed with `res`.
    pub fn sent(&mut self, res: i32) {
        let result = match res {
            r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
            r => Ok(r),
        };
        if let Some(echo) = self.echo.take() {
            echo.sent(&result);
        }
    }

    /// Where the datagram just received came from.
    fn source(&self) -> Option<SocketAddr> {
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: sockaddr_storage is a platform sockaddr type, and the
        // kernel wrote an address of `msg_namelen` bytes into `addr`.
        unsafe {
            *storage.view_as::<libc::sockaddr_storage>() = self.addr;
            SockAddr::new(storage, self.msg.msg_namelen)
        }
        .as_socket()
    }
}
