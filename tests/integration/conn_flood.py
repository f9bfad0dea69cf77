#!/usr/bin/env python3
"""conn_flood.py — drives vtuned's control-socket bounds (issue 13 item 3).

Usage: conn_flood.py SOCKET DAEMON_PID LIMIT MAX_BUFFERED CHUNK OUT_JSON

Against a daemon configured with control.max_connections = LIMIT and
control.max_buffered = MAX_BUFFERED (bytes), and a short
control.partial_line_timeout, it:
  1. opens LIMIT connections, each proven accepted by a status round trip;
     one more must get one JSON-RPC error line naming the limit, then EOF;
  2. closes a few, keeps one idle (no partial bytes), and has every other
     one send CHUNK bytes of an unfinished line (no newline);
  3. while they are held, asks `status` on a fresh connection;
  4. waits (bounded) for the daemon to close every partial sender, and
     collects what each was told;
  5. checks that the idle connection is still served;
reading the daemon's RSS (VmRSS, /proc) before, while held and after.
Everything it observed goes to OUT_JSON as facts for the shell test to
assert; it asserts nothing itself.  Waits are bounded by deadlines.
"""
import array
import fcntl
import json
import select
import socket
import sys
import termios
import time

SOCK, PID = sys.argv[1], int(sys.argv[2])
LIMIT, MAXBUF, CHUNK = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
OUT = sys.argv[6]
STATUS = b'{"jsonrpc":"2.0","id":1,"method":"status","params":{}}\n'


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def unread(s):
    """Bytes this socket sent that the daemon has not read yet (SIOCOUTQ)."""
    b = array.array("i", [0])
    try:
        fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b, True)
    except OSError:
        return 0
    return b[0]


def read_by_daemon(socks, timeout):
    """Waits until the daemon read (or refused) everything sent on socks."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(unread(s) == 0 for s in socks):
            return True
        time.sleep(0.05)
    return False


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    return s


def read_line(s, timeout):
    """One line, or b'' at EOF, or None when nothing came in time."""
    end = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return None
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            return buf
        buf += d
    return buf.split(b"\n", 1)[0]


def roundtrip(s):
    s.sendall(STATUS)
    line = read_line(s, 10)
    return json.loads(line) if line else None


def eof_within(s, timeout):
    """Reads until EOF; returns (saw_eof, the JSON lines read)."""
    end = time.monotonic() + timeout
    msgs, buf = [], b""
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            continue
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            msgs += [json.loads(x) for x in buf.split(b"\n") if x.strip()]
            return True, msgs
        buf += d
    return False, msgs


facts = {}
for s in [connect() for _ in range(3)]:  # warm the daemon up
    roundtrip(s)
    s.close()
facts["rss_before_kib"] = rss_kib()

# 1. The connection limit.
conns = []
for i in range(LIMIT):
    s = connect()
    r = roundtrip(s)
    if not r or "result" not in r:
        facts.setdefault("not_accepted", []).append(i)
    conns.append(s)
extra = connect()
line = read_line(extra, 10)
facts["over_limit_line"] = json.loads(line) if line else None
facts["over_limit_eof"] = eof_within(extra, 10)[0]
extra.close()

# 2. Partial lines, well over max_buffered in total.
for s in conns[:3]:
    s.close()
conns = conns[3:]
idle, senders = conns[0], conns[1:]
sent_ok = 0
for s in senders:
    try:
        s.sendall(b'{"jsonrpc":"2.0","id":2,"method":"status","params":{"x":"' + b"a" * CHUNK)
        sent_ok += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
facts["senders"] = len(senders)
facts["bytes_offered"] = len(senders) * CHUNK
# Measure once the daemon has read all of it (or refused it).
facts["all_read"] = read_by_daemon(senders, 20)
facts["rss_held_kib"] = rss_kib()

# 3. status while the partial lines are held (a fresh connection: a slot
#    is free since three were closed).
s = connect()
r = roundtrip(s)
facts["status_while_held"] = bool(r and "result" in r)
s.close()

# 4. Every sender is closed: at once (over max_buffered) or by the
#    partial-line timeout, each told why.
busy = timeout = other = still_open = 0
deadline = time.monotonic() + 20  # one bound for them all
for s in senders:
    eof, msgs = eof_within(s, max(0.1, deadline - time.monotonic()))
    if not eof:
        still_open += 1
    text = " ".join(m.get("error", {}).get("message", "") for m in msgs)
    if "control.max_buffered" in text:
        busy += 1
    elif "control.partial_line_timeout" in text:
        timeout += 1
    else:
        other += 1
    s.close()
facts.update(closed_busy=busy, closed_timeout=timeout, closed_other=other,
             still_open=still_open)

# 5. The idle connection was left alone.
r = roundtrip(idle)
facts["idle_still_served"] = bool(r and "result" in r)
idle.close()
# A fresh round trip after the closes: libuv runs close callbacks (where
# buffers are freed) in the loop iteration that closed them, before it
# can accept and answer this one.
for _ in range(2):
    s = connect()
    r = roundtrip(s)
    facts["status_after"] = bool(r and "result" in r)
    s.close()
facts["rss_after_kib"] = rss_kib()
with open(OUT, "w") as f:
    json.dump(facts, f, indent=1)
