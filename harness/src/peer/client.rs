//! A framed client with a deadline on every wait: what the tests, the
//! conformance cases and the load driver speak to servers with.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::peer::wirelog::{Dir, WireLog};

use serde_json::Value;
use sockbench_wire::{DecodeError, Decoder, Encoder, Event, Position, WireConfig};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The deadline passed first.
    #[error("nothing arrived within {0:?}")]
    Timeout(Duration),
    /// Part of a reply arrived, then nothing until the deadline: who was
    /// waiting for what, in the words of the findings' evidence.
    #[error("the server sent {had} byte(s) of a reply, then nothing for {waited:?}")]
    Stalled {
        /// Bytes of the reply that had arrived.
        had: usize,
        /// How long the harness waited.
        waited: Duration,
    },
    /// The server closed the connection (or reset it).
    #[error("the server closed the connection{}", if *.mid_frame { " in the middle of a reply" } else { "" })]
    Closed {
        /// Whether a reply had started.
        mid_frame: bool,
    },
    /// The server's bytes are not a frame.
    #[error("the reply is not a valid frame: {0}")]
    Protocol(#[from] DecodeError),
    /// Bytes arrived where the connection should have closed.
    #[error("expected the connection to close, got {0} more byte(s)")]
    NotClosed(usize),
    /// A datagram came back altered.
    #[error("{0}")]
    Datagram(String),
    /// The server's bytes are not what the dialect says.
    #[error("the reply is not a frame of the dialect: {0}")]
    Dialect(String),
}

/// A reply frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The parsed header.
    pub header: Value,
    /// The header bytes as received.
    pub raw: Vec<u8>,
    /// The body.
    pub body: Vec<u8>,
}

impl Frame {
    /// The `error` code of an error reply.
    pub fn error_code(&self) -> Option<&str> {
        (self.header["status"] == "error").then(|| self.header["error"].as_str().unwrap_or("?"))
    }

    /// True for a reply with `"status":"ok"`.
    pub fn is_ok(&self) -> bool {
        self.header["status"] == "ok"
    }
}

/// One TCP connection speaking the protocol.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    decoder: Decoder,
    encoder: Encoder,
    inbuf: Vec<u8>,
    log: Option<(WireLog, u32)>,
    sent: u64,
    received: u64,
}

impl Client {
    /// Connects within `timeout`, with TCP_NODELAY.
    pub fn connect(
        addr: SocketAddr,
        wire: WireConfig,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout.max(Duration::from_secs(5))))?;
        Ok(Client {
            stream,
            decoder: Decoder::new(WireConfig::permissive(wire.endian)),
            encoder: Encoder::new(wire.endian),
            inbuf: Vec::new(),
            log: None,
            sent: 0,
            received: 0,
        })
    }

    /// Records every write and read of this connection in `log`.
    pub fn logged(mut self, log: &WireLog) -> Self {
        let id = log.new_connection(self.stream.peer_addr().ok());
        self.log = Some((log.clone(), id));
        self
    }

    fn record(&self, dir: Dir, offset: u64, bytes: &[u8], note: &str) {
        if let Some((log, id)) = &self.log {
            log.record(*id, dir, offset, bytes, note);
        }
    }

    /// The underlying socket, for tests that need to misbehave.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Encodes a frame with `header` (serialized as is) and `body`.
    pub fn frame(&self, header: &Value, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 128);
        // A header serialized from a Value is far below 4 GiB.
        let _ = self.encoder.frame(
            &serde_json::to_vec(header).unwrap_or_default(),
            body,
            &mut out,
        );
        out
    }

    /// Sends one frame in one write.
    pub fn send(&mut self, header: &Value, body: &[u8]) -> Result<(), ClientError> {
        let bytes = self.frame(header, body);
        self.send_raw(&bytes)
    }

    /// Sends bytes as they are, in one write call where the kernel takes them.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let r = self.stream.write_all(bytes);
        match &r {
            Ok(()) => self.record(Dir::Sent, self.sent, bytes, ""),
            Err(e) => self.record(Dir::Sent, self.sent, bytes, &format!("write failed: {e}")),
        }
        self.sent += bytes.len() as u64;
        Ok(r?)
    }

    /// Sends one frame and waits for one reply.
    pub fn request(
        &mut self,
        header: &Value,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Frame, ClientError> {
        self.send(header, body)?;
        self.recv(timeout)
    }

    /// Waits up to `timeout` for the next whole reply.
    pub fn recv(&mut self, timeout: Duration) -> Result<Frame, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut frame: Option<Frame> = None;
        loop {
            let mut rest = &self.inbuf[..];
            let mut done = false;
            while let Some(ev) = self.decoder.decode(&mut rest)? {
                match ev {
                    Event::Head(_) => {
                        let raw = self.decoder.raw_header().to_vec();
                        frame = Some(Frame {
                            header: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                            raw,
                            body: Vec::new(),
                        })
                    }
                    Event::Body(b) => {
                        if let Some(f) = frame.as_mut() {
                            f.body.extend_from_slice(b)
                        }
                    }
                    Event::End => {
                        done = true;
                        break;
                    }
                }
            }
            let used = self.inbuf.len() - rest.len();
            self.inbuf.drain(..used);
            if done {
                if let Some(f) = frame {
                    return Ok(f);
                }
            }
            if let Err(e) = self.fill(deadline, timeout) {
                // The decoder has taken what arrived of the reply.
                return Err(match (e, &frame) {
                    (ClientError::Timeout(waited), Some(f)) => ClientError::Stalled {
                        had: self.inbuf.len() + 4 + f.raw.len() + f.body.len(),
                        waited,
                    },
                    (e, _) => e,
                });
            }
        }
    }

    /// Waits up to `timeout` until `whole` finds one message at the start of
    /// what arrived (its length, or why it cannot be one), and returns its
    /// bytes: replies read in another dialect than the contract's.
    pub fn recv_raw(
        &mut self,
        timeout: Duration,
        whole: impl Fn(&[u8]) -> Option<Result<usize, String>>,
    ) -> Result<Vec<u8>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match whole(&self.inbuf) {
                Some(Ok(n)) => return Ok(self.inbuf.drain(..n).collect()),
                Some(Err(e)) => return Err(ClientError::Dialect(e)),
                None => self.fill(deadline, timeout)?,
            }
        }
    }

    /// Bytes that arrived and were not read as a reply.
    pub fn unread(&self) -> &[u8] {
        &self.inbuf
    }

    /// True once the server has closed its side (or reset): read without
    /// waiting, so a case can tell a server that gave up from a slow one.
    pub fn peer_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let r = self.stream.peek(&mut b);
        let _ = self.stream.set_nonblocking(false);
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
        }
    }

    /// Waits up to `timeout` for the server to close, failing if it sends anything.
    pub fn expect_close(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        if !self.inbuf.is_empty() {
            return Err(ClientError::NotClosed(self.inbuf.len()));
        }
        match self.fill(deadline, timeout) {
            Err(ClientError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(ClientError::NotClosed(self.inbuf.len())),
        }
    }

    /// Half-closes: the server sees end of stream, replies can still arrive.
    pub fn finish_sending(&self) -> io::Result<()> {
        self.record(Dir::Sent, self.sent, &[], "FIN (half-close)");
        self.stream.shutdown(std::net::Shutdown::Write)
    }

    /// A second handle that writes on this connection from another thread,
    /// logged like the client's own writes (its offsets count from the
    /// client's current one).
    pub fn writer(&self) -> io::Result<LoggedHalf> {
        Ok(LoggedHalf {
            stream: self.stream.try_clone()?,
            log: self.log.clone(),
            offset: self.sent,
            dir: Dir::Sent,
        })
    }

    /// A second handle that reads raw bytes from this connection, logged.
    pub fn reader(&self) -> io::Result<LoggedHalf> {
        Ok(LoggedHalf {
            stream: self.stream.try_clone()?,
            log: self.log.clone(),
            offset: self.received,
            dir: Dir::Received,
        })
    }

    /// Resets the connection (RST, via SO_LINGER 0) instead of closing it.
    pub fn reset(self) {
        self.record(Dir::Sent, self.sent, &[], "RST (abortive close)");
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    /// The deadline's error: nothing at all, or a reply begun and stalled.
    fn timed_out(&self, waited: Duration) -> ClientError {
        if self.inbuf.is_empty() {
            ClientError::Timeout(waited)
        } else {
            ClientError::Stalled {
                had: self.inbuf.len(),
                waited,
            }
        }
    }

    /// Reads once, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant, timeout: Duration) -> Result<(), ClientError> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(timeout));
            }
            self.stream.set_read_timeout(Some(deadline - now))?;
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.record(Dir::Received, self.received, &[], "end of stream");
                    let mid_frame =
                        !self.inbuf.is_empty() || self.decoder.position() != Position::Boundary;
                    return Err(ClientError::Closed { mid_frame });
                }
                Ok(n) => {
                    self.record(Dir::Received, self.received, &buf[..n], "");
                    self.received += n as u64;
                    self.inbuf.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let note = format!("nothing within {timeout:?}");
                    self.record(Dir::Received, self.received, &[], &note);
                    return Err(self.timed_out(timeout));
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.record(Dir::Received, self.received, &[], "connection reset");
                    return Err(ClientError::Closed { mid_frame: false });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A raw, logged handle on a client's connection: writes for a writer
/// half, reads for a reader half.
#[derive(Debug)]
pub struct LoggedHalf {
    stream: TcpStream,
    log: Option<(WireLog, u32)>,
    offset: u64,
    dir: Dir,
}

impl LoggedHalf {
    /// The socket, for timeouts.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn record(&mut self, bytes: &[u8], note: &str) {
        if let Some((log, id)) = &self.log {
            log.record(*id, self.dir, self.offset, bytes, note);
        }
        self.offset += bytes.len() as u64;
    }
}

impl Write for LoggedHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.stream.write(buf) {
            Ok(n) => {
                self.record(&buf[..n], "");
                Ok(n)
            }
            Err(e) => {
                if !matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) {
                    self.record(&[], &format!("write failed: {e}"));
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Read for LoggedHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        let note = if n == 0 { "end of stream" } else { "" };
        self.record(&buf[..n], note);
        Ok(n)
    }
}

/// Sends one datagram to `server` and waits up to `timeout` for its echo.
pub fn udp_echo(
    server: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.send(payload)?;
    // One byte more than any datagram can carry, so a full buffer means a cut.
    let mut buf = vec![0u8; 65_536];
    match sock.recv(&mut buf) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(ClientError::Timeout(timeout))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_reply_begun_then_stalled_says_how_much_arrived() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // A header declaring a 100-byte body, then 6 of its bytes.
            let head = br#"{"file_size":100}"#;
            let mut out = (head.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(head);
            out.extend_from_slice(b"abcdef");
            s.write_all(&out).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let mut c = Client::connect(addr, WireConfig::default(), Duration::from_secs(2)).unwrap();
        let e = c.recv(Duration::from_millis(200)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server sent 27 byte(s) of a reply, then nothing for 200ms"
        );
        server.join().unwrap();
    }
}
