//! One connection of the event loop: a non-blocking socket, what its edges
//! said, and the core [`Driver`] whose actions it carries out until it would block.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use sockbench_core::{Action, Admitted, Driver};

/// A connection of the event loop.
pub struct Conn {
    /// The socket, registered with the loop.
    pub stream: TcpStream,
    /// The connection's rules.
    pub driver: Driver,
    /// Edges: cleared by `WouldBlock`, or a short read unless `hup` (no edge follows a FIN).
    readable: bool,
    writable: bool,
    hup: bool,
    admitted: Admitted,
    /// Tells this connection's timer entries from those of an earlier
    /// connection with the same key.
    pub generation: u64,
    /// The deadline its timer entry waits for, if one is armed.
    pub armed: Option<Instant>,
}

impl Conn {
    /// A freshly accepted connection; its edges are still to come.
    pub fn new(stream: TcpStream, driver: Driver, admitted: Admitted, generation: u64) -> Conn {
        Conn {
            stream,
            driver,
            readable: false,
            writable: false,
            hup: false,
            admitted,
            generation,
            armed: None,
        }
    }

    /// Records an edge and acts on it (see [`Conn::pump`]); true when the
    /// connection is over.
    pub fn on_event(&mut self, e: &Event, buf: &mut [u8], direct: bool) -> bool {
        let hup = e.is_read_closed() || e.is_error();
        self.readable |= e.is_readable() || hup;
        self.writable |= e.is_writable();
        self.hup |= hup;
        self.pump(buf, direct)
    }

    /// Writes the pending replies and a run of echoes still in the read
    /// buffer in one call; what is not written is copied into the driver.
    fn write_direct(&mut self, tail: &[u8], now: Instant) {
        let mut n = 0;
        if self.writable {
            self.admitted.counters().syscalls(1);
            match self.stream.write_vectored(&self.driver.direct_slices(tail)) {
                Ok(written) => n = written,
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.driver.on_error(&e),
            }
        }
        self.driver.on_written_direct(n, tail, now);
    }

    /// Carries out the driver's actions until the socket would block, reading
    /// into the loop's `buf` (each call counted); true when the connection is
    /// over. With `direct`, a read's run of echoes is written from `buf`
    /// ([`Driver::on_read_direct`]) instead of copied into the driver.
    pub fn pump(&mut self, buf: &mut [u8], direct: bool) -> bool {
        loop {
            let counters = self.admitted.counters();
            let now = Instant::now();
            let read = match self.driver.next(now) {
                Action::Close => return true,
                Action::ShutdownWrite => {
                    let _ = self.stream.shutdown(Shutdown::Write);
                    continue;
                }
                Action::AbortUpload => continue,
                Action::Write(bytes) if self.writable => {
                    counters.syscalls(1);
                    match self.stream.write(bytes) {
                        Ok(n) => self.driver.on_written(n, now),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable = false,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => self.driver.on_error(&e),
                    }
                    continue;
                }
                // Reading goes on while a write waits, up to the backpressure mark.
                Action::Write(_) => self.readable && self.driver.wants_read(),
                Action::Read => self.readable,
            };
            if !read {
                return false;
            }
            counters.syscalls(1);
            match self.stream.read(buf) {
                Ok(0) => self.driver.on_eof(),
                // A short read emptied the socket; later bytes raise an edge.
                Ok(n) => {
                    self.readable = self.hup || n == buf.len();
                    if !direct {
                        self.driver.on_read(&buf[..n], now);
                    } else {
                        let tail = self.driver.on_read_direct(&buf[..n], now);
                        if !tail.is_empty() {
                            self.write_direct(tail, now);
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.driver.on_error(&e),
            }
        }
    }
}
