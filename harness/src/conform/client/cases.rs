//! The client cases: each is one way the network may legally deliver what
//! a server sends (or one way a server may legally behave), asked of one
//! task of the client.

use std::fmt;

/// What the client under test does, as it declares with `--client-task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Task {
    /// Sends `{file}` as one upload frame (and reads the reply, if the
    /// dialect has one).
    Upload,
    /// Sends anything (a command, a request), then writes the one framed
    /// reply's body to `{out}` or stdout.
    Fetch,
    /// Sends each line of `{file}` as a frame, prints each echoed body.
    Echo,
    /// Runs its own checks against a server of the `sockbench` contract
    /// (our blocking back-end behind the case's delivery); judged by its
    /// exit status.
    Session,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Upload => "upload",
            Task::Fetch => "fetch",
            Task::Echo => "echo",
            Task::Session => "session",
        })
    }
}

/// How the hostile server delivers its replies (or behaves) in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Each reply in one write.
    Whole,
    /// The prefix one byte per write, with pauses between.
    SplitPrefix,
    /// The header cut in two, with a pause between.
    SplitHeader,
    /// The body in pieces of 100, 1,000 and the rest, with pauses.
    SplitBody,
    /// Everything in seeded random pieces of 1-16 bytes, with pauses.
    Pieces,
    /// The reply glued to a second frame in the same write.
    Glued,
    /// A fetched body of this many bytes.
    Body(usize),
    /// A header of exactly this many bytes (0: a zero prefix, nothing else).
    Header(usize),
    /// A reset (RST) in the middle of the body.
    Reset,
    /// An orderly close (FIN) in the middle of the body.
    Close,
    /// Accepts and reads, never answers.
    Silent,
    /// A small receive buffer, and nothing read for the first 500 ms.
    SlowReader,
    /// Random segmentations of the fetch reply (`--client-explore N`),
    /// a failure shrunk to the fewest cuts.
    Explore,
    /// UDP: each datagram echoed once.
    UdpEcho,
    /// UDP: the echo of a 65,507-byte datagram.
    UdpLarge,
    /// UDP: the first echo lost (never sent).
    UdpLost,
}

/// What a client case expects of a client that obeys the lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The task's result exact, and an exit of 0 within the deadline.
    Exact,
    /// The cut or malformed reply reported: an exit other than 0 within
    /// the deadline.
    Refused,
    /// An exit within the deadline, whatever its status.
    GivesUp,
}

/// One client case.
#[derive(Debug, Clone, Copy)]
pub struct ClientCase {
    /// Dotted id, in section 9.
    pub id: &'static str,
    /// Slug.
    pub name: &'static str,
    /// The task it asks of the client.
    pub task: Task,
    /// How the server side behaves.
    pub plan: Plan,
    /// What a correct client does.
    pub expect: Expect,
    /// What it checks, in one line.
    pub title: &'static str,
    /// The rule it holds the client to.
    pub rule: &'static str,
    /// The finding a failure here usually is (docs/findings.md).
    pub finding: &'static str,
}

/// The section's name in docs/cases.md.
pub const CATEGORY: &str = "clients";

/// A prefix read assumed complete.
const R_PREFIX: &str =
    "TCP may deliver the prefix in pieces: read until all of its bytes have arrived";
/// A header read assumed complete.
const R_HEADER: &str =
    "TCP may deliver the header in pieces: read until header_len bytes have arrived";
/// A body read assumed complete.
const R_BODY: &str =
    "TCP may deliver the body in pieces of any size: count the bytes received, not the calls";

// Eight fields, each a column of docs/cases.md: named by position so the
// catalogue reads as a table.
#[allow(clippy::too_many_arguments)]
const fn case(
    id: &'static str,
    name: &'static str,
    task: Task,
    plan: Plan,
    expect: Expect,
    title: &'static str,
    rule: &'static str,
    finding: &'static str,
) -> ClientCase {
    ClientCase {
        id,
        name,
        task,
        plan,
        expect,
        title,
        rule,
        finding,
    }
}

/// Every client case, in id order.
pub fn catalogue() -> Vec<ClientCase> {
    use Expect::{Exact, GivesUp, Refused};
    use Plan::*;
    use Task::{Echo, Fetch, Session, Upload};
    vec![
        case(
            "9.1",
            "fetch-whole",
            Fetch,
            Whole,
            Exact,
            "a reply in one write is written out exactly",
            "the body of the framed reply, byte for byte, and nothing else",
            "output-wrong",
        ),
        case(
            "9.2",
            "fetch-split-prefix",
            Fetch,
            SplitPrefix,
            Exact,
            "a reply whose prefix arrives one byte at a time",
            R_PREFIX,
            "split-prefix",
        ),
        case(
            "9.3",
            "fetch-split-header",
            Fetch,
            SplitHeader,
            Exact,
            "a reply whose header arrives in two pieces",
            R_HEADER,
            "split-header",
        ),
        case(
            "9.4",
            "fetch-split-body",
            Fetch,
            SplitBody,
            Exact,
            "a 3,000-byte body in pieces of 100, 1,000 and 1,900 bytes",
            R_BODY,
            "split-body",
        ),
        case(
            "9.5",
            "fetch-pieces",
            Fetch,
            Pieces,
            Exact,
            "the whole reply in random pieces of 1-16 bytes, with pauses",
            "any segmentation of the stream is legal",
            "split-body",
        ),
        case(
            "9.6",
            "fetch-glued",
            Fetch,
            Glued,
            Exact,
            "the reply glued to a second frame in the same segment",
            "read exactly the body's length; bytes after it belong to the next frame",
            "reads-past-body",
        ),
        case(
            "9.7",
            "fetch-body-0",
            Fetch,
            Body(0),
            Exact,
            "a body of 0 bytes",
            "a body of 0 bytes is legal: the reply ends with its header",
            "output-wrong",
        ),
        case(
            "9.8",
            "fetch-body-1",
            Fetch,
            Body(1),
            Exact,
            "a body of 1 byte",
            "bodies of every size are legal",
            "output-wrong",
        ),
        case(
            "9.9",
            "fetch-body-1023",
            Fetch,
            Body(1023),
            Exact,
            "a body of 1,023 bytes (one less than the usual recv size)",
            "bodies of every size are legal",
            "output-wrong",
        ),
        case(
            "9.10",
            "fetch-body-1024",
            Fetch,
            Body(1024),
            Exact,
            "a body of 1,024 bytes (the usual recv size)",
            "bodies of every size are legal",
            "output-wrong",
        ),
        case(
            "9.11",
            "fetch-body-1025",
            Fetch,
            Body(1025),
            Exact,
            "a body of 1,025 bytes (one more than the usual recv size)",
            "bodies of every size are legal",
            "output-wrong",
        ),
        case(
            "9.12",
            "fetch-body-64MiB",
            Fetch,
            Body(64 << 20),
            Exact,
            "a body of 64 MiB",
            "bodies larger than any buffer are legal: stream them",
            "split-body",
        ),
        case(
            "9.13",
            "fetch-header-0",
            Fetch,
            Header(0),
            Refused,
            "a reply whose prefix says 0 header bytes (header dialects)",
            "a malformed reply is reported: the client exits with an error, it does not wait or crash silently",
            "accepts-cut-reply",
        ),
        case(
            "9.14",
            "fetch-header-64KiB",
            Fetch,
            Header(65_536),
            Exact,
            "a header of 65,536 bytes (the protocol's maximum), padded",
            "headers up to --max-header are legal; read header_len bytes, whatever their number",
            "split-header",
        ),
        case(
            "9.15",
            "fetch-reset",
            Fetch,
            Reset,
            Refused,
            "a reset in the middle of the body",
            "a reply cut short is an error: exit other than 0, and never as if the body were whole",
            "accepts-cut-reply",
        ),
        case(
            "9.16",
            "fetch-close",
            Fetch,
            Close,
            Refused,
            "the server closes in the middle of the body",
            "recv returning b'' before the body is complete is an error, not a reason to loop forever",
            "accepts-cut-reply",
        ),
        case(
            "9.17",
            "fetch-silent",
            Fetch,
            Silent,
            GivesUp,
            "a server that accepts and never answers",
            "every wait has a deadline: the client gives up on its own",
            "hangs",
        ),
        case(
            "9.18",
            "upload-whole",
            Upload,
            Whole,
            Exact,
            "an upload arrives exactly: prefix, header with the file's name, size and MD5, body",
            "the body is the file, byte for byte; the size and digest fields describe it",
            "upload-wrong",
        ),
        case(
            "9.19",
            "upload-slow-reader",
            Upload,
            SlowReader,
            Exact,
            "a 4 MiB upload to a server whose receive window fills",
            "send() may take fewer bytes than given: use sendall, or loop on what send returned",
            "upload-truncated",
        ),
        case(
            "9.20",
            "upload-reply-split",
            Upload,
            SplitPrefix,
            Exact,
            "the upload's reply (where the dialect has one) arrives in pieces",
            "TCP may deliver the reply in pieces: read until it is whole",
            "split-prefix",
        ),
        case(
            "9.21",
            "upload-silent",
            Upload,
            Silent,
            GivesUp,
            "a server that reads the upload and never answers (where the dialect has a reply)",
            "every wait has a deadline: the client gives up on its own",
            "hangs",
        ),
        case(
            "9.22",
            "echo-whole",
            Echo,
            Whole,
            Exact,
            "each echo in one write is printed as sent (or as the dialect transforms it)",
            "one framed reply per frame sent, its body printed",
            "echo-wrong",
        ),
        case(
            "9.23",
            "echo-split-prefix",
            Echo,
            SplitPrefix,
            Exact,
            "echoes whose prefix arrives one byte at a time",
            R_PREFIX,
            "split-prefix",
        ),
        case(
            "9.24",
            "echo-split-header",
            Echo,
            SplitHeader,
            Exact,
            "echoes whose header arrives in two pieces (header dialects)",
            R_HEADER,
            "split-header",
        ),
        case(
            "9.25",
            "echo-split-body",
            Echo,
            SplitBody,
            Exact,
            "echoes whose body arrives in pieces of 100, 1,000 and the rest",
            R_BODY,
            "split-body",
        ),
        case(
            "9.26",
            "echo-pieces",
            Echo,
            Pieces,
            Exact,
            "every echo in random pieces of 1-16 bytes, with pauses",
            "any segmentation of the stream is legal",
            "split-body",
        ),
        case(
            "9.27",
            "echo-silent",
            Echo,
            Silent,
            GivesUp,
            "a server that reads the first frame and never answers",
            "every wait has a deadline: the client gives up on its own",
            "hangs",
        ),
        case(
            "9.28",
            "udp-echo",
            Echo,
            UdpEcho,
            Exact,
            "UDP (--client-udp): each line a datagram, each echo printed",
            "a datagram is a message: one sendto, one recvfrom",
            "udp-wrong",
        ),
        case(
            "9.29",
            "udp-large",
            Echo,
            UdpLarge,
            Exact,
            "UDP: the echo of a 65,507-byte datagram",
            "a datagram may carry 65,507 bytes: receive into a 65,536-byte buffer",
            "udp-truncates",
        ),
        case(
            "9.30",
            "udp-lost",
            Echo,
            UdpLost,
            GivesUp,
            "UDP: the first echo never comes",
            "datagrams may be lost: the client waits with a deadline (and may resend)",
            "hangs",
        ),
        case(
            "9.31",
            "session-whole",
            Session,
            Whole,
            Exact,
            "the client's own checks against a sockbench server (our blocking back-end)",
            "the client's checks pass: it exits 0",
            "session-fails",
        ),
        case(
            "9.32",
            "session-pieces",
            Session,
            Pieces,
            Exact,
            "the same, every byte the server sends in random pieces of 1-16 bytes",
            "any segmentation of the stream is legal",
            "session-fails",
        ),
        case(
            "9.33",
            "fetch-explore",
            Fetch,
            Explore,
            Exact,
            "random segmentations of the reply (--client-explore N draws, 12 by default); a failure is shrunk to the fewest cuts",
            "any segmentation of the stream is legal",
            "split-body",
        ),
    ]
}

impl ClientCase {
    /// Whether the case runs over UDP.
    pub fn udp(&self) -> bool {
        matches!(self.plan, Plan::UdpEcho | Plan::UdpLarge | Plan::UdpLost)
    }
}
