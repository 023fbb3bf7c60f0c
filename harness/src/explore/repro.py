#!/usr/bin/env python3
"""A divergence found by `sockbench explore`, as a standalone replay.

Usage: python3 repro.py --tcp HOST:PORT [--udp HOST:PORT] [--storage DIR]

Sends the shrunk program below (the same bytes, cut at the same places, in
the same order) and compares what comes back with what the protocol's
model predicts: echoes byte for byte, other replies by status, error, op,
id, bytes, md5, file_name and file_size; with --storage, the files the
server's storage directory holds afterwards (start the server on an empty
one: every file there counts). Exit 1 when the divergence
reproduces, 0 when the server behaves as the model, 2 on bad usage or an
unreachable server. Python 3 standard library only.
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

REPRO = json.loads('__REPRO__')
DEADLINE = 3.0
MEANING = ["status", "error", "op", "id", "bytes", "md5", "file_name", "file_size"]
FMT = "<I" if REPRO["endian"] == "little" else ">I"


def body(len_, fill):
    block = bytes((i * 31 + fill) & 255 for i in range(256))
    return (block * (len_ // 256 + 1))[:len_]


def frame(a, cut=True):
    data = struct.pack(FMT, a["prefix"]) + a["header"].encode("utf-8")
    if a["with_body"]:
        data += body(a["body"]["len"], a["body"]["fill"])
    if cut and a.get("sent") is not None:
        data = data[: a["sent"]]
    return data


class Conn:
    def __init__(self, plan, expected, addr):
        self.plan, self.expected = plan, expected
        self.sock = socket.create_connection(addr, timeout=DEADLINE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buf, self.eof, self.error, self.closing = bytearray(), False, None, False
        # Whole reply frames so far: waits count frames, since a stats
        # reply's length depends on the server's counters.
        self.frames, self.parsed = 0, 0
        self.frame_times, self.sent_at = [], [None] * len(plan["actions"])
        self.cond = threading.Condition()
        self.stream = b"".join(frame(a) for a in plan["actions"])
        self.bounds = [0] + plan["cuts"] + [len(self.stream)]
        self.starts, at = [], 0
        for a in plan["actions"]:
            self.starts.append(at)
            at += len(frame(a))
        self.next = 0
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        while True:
            try:
                data = self.sock.recv(262144)
            except OSError as e:
                with self.cond:
                    if not self.closing:
                        self.error = str(e)
                    self.cond.notify_all()
                return
            with self.cond:
                if not data:
                    if not self.closing:
                        self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += data
                while True:
                    got = split(self.buf[self.parsed :])
                    if got is None:
                        break
                    self.parsed += got[0]
                    self.frames += 1
                    self.frame_times.append(time.monotonic())
                self.cond.notify_all()

    def wait(self, done, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.cond:
            while not done() and not self.eof and self.error is None:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return done()

    def due(self, i):
        return sum(r["reply"] in ("echo", "frame") for r in self.expected["replies"][: i + 1])

    def step(self):
        if self.next + 1 < len(self.bounds):
            lo, hi = self.bounds[self.next], self.bounds[self.next + 1]
            pause = self.plan["pauses"][self.next] if self.next < len(self.plan["pauses"]) else 0
            self.next += 1
            starting = [i for i, s in enumerate(self.starts) if lo <= s < hi]
            # Pipelining depth, as far as the awaited action went out whole.
            if starting and starting[-1] >= self.plan["depth"]:
                whole = [j for j in range(starting[-1] - self.plan["depth"] + 1)
                         if self.starts[j + 1] <= lo]
                if whole:
                    due = self.due(whole[-1])
                    self.wait(lambda: self.frames >= due)
            try:
                self.sock.sendall(self.stream[lo:hi])
                ends = self.starts[1:] + [len(self.stream)]
                for i, end in enumerate(ends):
                    if lo < end <= hi:
                        self.sent_at[i] = time.monotonic()
            except OSError as e:
                self.error = self.error or f"sending bytes {lo}..{hi}: {e}"
            if pause:
                time.sleep(pause / 1000)
            return False
        end = self.plan["end"]
        if end == "half_close":
            self.sock.shutdown(socket.SHUT_WR)
        if self.expected["closes"]:
            self.wait(lambda: self.eof or self.error is not None)
        else:
            total = self.due(len(self.expected["replies"]) - 1)
            self.wait(lambda: self.frames >= total)
        self.wait(lambda: False, 0.002)
        with self.cond:
            self.closing = True
        if end == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        return True


def split(data):
    if len(data) < 4:
        return None
    (n,) = struct.unpack(FMT, data[:4])
    if len(data) < 4 + n:
        return None
    try:
        head = json.loads(data[4 : 4 + n])
    except ValueError:
        head = None
    size = head.get("file_size", 0) if isinstance(head, dict) else 0
    if not isinstance(size, int) or len(data) < 4 + n + size:
        return None
    return 4 + n + size, head


def show(data):
    got = split(data)
    if got is None:
        return repr(bytes(data[:64]))
    n, head = got
    text = data[4 : 4 + struct.unpack(FMT, data[:4])[0]].decode("utf-8", "replace")[:300]
    extra = n - 4 - len(data[4 : 4 + struct.unpack(FMT, data[:4])[0]])
    return text + (f" + {extra}-byte body" if extra else "")


def judge(c, conn, exp):
    rest = bytes(conn.buf)
    for i, (a, r) in enumerate(zip(conn.plan["actions"], exp["replies"])):
        where = f"connection {c}, action {i}"
        if r["reply"] == "none":
            continue
        want = frame(a, cut=False)
        if r["reply"] == "partial":
            n = min(len(rest), len(want))
            if rest[:n] != want[:n]:
                return f"{where}: a streamed echo cut short differs", show(want), show(rest)
            rest = rest[n:]
            continue
        if r["reply"] == "frame":
            want = struct.pack(FMT, len(r["header"].encode())) + r["header"].encode()
        got = split(rest)
        if got is None:
            why = "the server closed the connection before this reply" if conn.eof else "no reply"
            return f"{where}: {why}", show(want), (conn.error or f"{len(rest)} bytes: {rest[:64]!r}")
        n, head = got
        if r["reply"] == "echo":
            if rest[:n] != want:
                return f"{where}: the echo differs from its request", show(want), show(rest[:n])
        else:
            exp_head = json.loads(r["header"])
            for k in MEANING:
                a_, b_ = exp_head.get(k), head.get(k) if isinstance(head, dict) else None
                if k == "md5" and isinstance(a_, str) and isinstance(b_, str):
                    a_, b_ = a_.lower(), b_.lower()
                if a_ != b_:
                    return f"{where}: the reply's {k} differs", r["header"], show(rest[:n])
        rest = rest[n:]
    if rest:
        return f"connection {c}: bytes after the last reply", "nothing", repr(rest[:64])
    if exp["closes"] and not conn.eof and conn.error is None:
        return f"connection {c}: the connection stayed open", "the server closes", "still open after 3 s"
    if not exp["closes"] and conn.eof:
        return f"connection {c}: the server closed a connection it should keep", "open", "closed"
    return None


def stall(c, conn):
    """One small frame per send, each after the previous reply: is the median round trip over 20 ms?"""
    plan = conn.plan
    small = all(a.get("sent") is None and len(frame(a)) <= 1024 for a in plan["actions"])
    ends, at = [], 0
    for a in plan["actions"][:-1]:
        at += len(frame(a))
        ends.append(at)
    if plan["depth"] != 1 or plan["cuts"] != ends or not small:
        return None
    rtts, f = [], 0
    for i, r in enumerate(conn.expected["replies"]):
        if r["reply"] not in ("echo", "frame"):
            continue
        if conn.sent_at[i] is not None and f < len(conn.frame_times):
            rtts.append((conn.frame_times[f] - conn.sent_at[i]) * 1000)
        f += 1
    if len(rtts) < 8:
        return None
    rtts.sort()
    median = rtts[len(rtts) // 2]
    if median > 20:
        return (f"connection {c}: the replies stall", "a median round trip under 20 ms",
                f"{median:.1f} ms over {len(rtts)} round trips")
    return None


def udp_echo(addr, payload):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        for _ in range(3):
            s.sendto(payload, addr)
            try:
                data, frm = s.recvfrom(65536)
                return data
            except socket.timeout:
                continue
    finally:
        s.close()
    return None


def storage_differs(dir_):
    """The storage directory against the model: each file one of the uploads
    that may be last, nothing else (no temporaries)."""
    want = REPRO["files"]
    have = {}
    for name in os.listdir(dir_):
        with open(os.path.join(dir_, name), "rb") as f:
            have[name] = hashlib.md5(f.read()).hexdigest()
    for name, md5 in sorted(have.items()):
        if name not in want:
            return f"a file the model does not have is in storage: {name[:40]!r} (md5 {md5})"
        if md5 not in want[name]:
            return f"{name[:40]!r} has md5 {md5}, expected {' or '.join(want[name])}"
    for name in want:
        if name not in have:
            return f"an upload that succeeded is not in storage: {name[:40]!r}"
    return None


def addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcp", required=True, type=addr, help="HOST:PORT of the server's TCP socket")
    ap.add_argument("--udp", type=addr, help="HOST:PORT of its UDP socket (needed when the program sends UDP)")
    ap.add_argument("--storage", help="the server's storage directory, empty before the run")
    args = ap.parse_args()
    if REPRO["storage_divergence"] and args.storage is None:
        print("repro.py: this divergence is in the storage directory: give --storage DIR", file=sys.stderr)
        return 2
    print(f"divergence found by sockbench explore: {REPRO['divergence']}")
    if REPRO["udp"] and args.udp is None:
        print("repro.py: this program sends UDP: give --udp HOST:PORT", file=sys.stderr)
        return 2
    conns, done = {}, set()
    udp_got = {}
    for kind, i in REPRO["schedule"]:
        if kind == "udp":
            udp_got[i] = udp_echo(args.udp, body(REPRO["udp"][i]["len"], REPRO["udp"][i]["fill"]))
            continue
        if i not in conns:
            try:
                conns[i] = Conn(REPRO["conns"][i], REPRO["expected"][i], args.tcp)
            except OSError as e:
                print(f"repro.py: cannot connect to {args.tcp[0]}:{args.tcp[1]}: {e}", file=sys.stderr)
                return 2
        if i not in done and conns[i].step():
            done.add(i)
    for c, conn in sorted(conns.items()):
        bad = judge(c, conn, REPRO["expected"][c]) or stall(c, conn)
        if bad:
            what, exp, act = bad
            print(f"REPRODUCED: {what}\n  expected: {exp}\n  actual:   {act}")
            return 1
    for i, d in enumerate(REPRO["udp"]):
        want = body(d["len"], d["fill"])
        got = udp_got.get(i)
        if got != want:
            print(f"REPRODUCED: datagram {i} ({len(want)} bytes): "
                  f"{'no echo' if got is None else f'echo of {len(got)} bytes differs'}")
            return 1
    if args.storage is not None:
        end = time.monotonic() + 1.5
        bad = storage_differs(args.storage)
        while bad and time.monotonic() < end:
            time.sleep(0.05)
            bad = storage_differs(args.storage)
        if bad:
            print(f"REPRODUCED: {bad}")
            return 1
    print("no divergence: the server behaves as the model on this program")
    return 0


if __name__ == "__main__":
    sys.exit(main())
