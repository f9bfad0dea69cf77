#!/usr/bin/env python3
"""fdrpc.py SOCKET — a raw control-socket client that passes descriptors.

What another client of vtuned's socket does (vtuned(8), CONTROL PROTOCOL):
it opens the file itself and sends the descriptor with the request line,
in the same sendmsg as the line (SCM_RIGHTS); params.fd is the index of a
descriptor among those sent with that line.

Reads lines from stdin, each "[SPEC ...] JSON": the SPECs before the JSON
name descriptors to send with it, in order (index 0 first):
  r:PATH   PATH opened for reading (O_NONBLOCK, so a FIFO does not block us)
  w:PATH   an existing PATH opened for writing
  new:PATH PATH created for writing (O_CREAT|O_EXCL, mode 0600)
  p:PATH   PATH opened with O_PATH (no access at all)
  sock     one end of a socketpair
Each line's answer is printed (notifications skipped); CLOSED if the daemon
hung up.
"""
import os
import socket
import sys


def open_spec(spec):
    kind, _, path = spec.partition(":")
    if kind == "r":
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    if kind == "w":
        return os.open(path, os.O_WRONLY | os.O_NOCTTY)
    if kind == "new":
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if kind == "p":
        return os.open(path, os.O_PATH)
    if spec == "sock":
        a, b = socket.socketpair()
        b.detach()  # kept open: the daemon must refuse it, not read it
        return a.detach()
    sys.exit("fdrpc.py: bad descriptor spec %r" % spec)


s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    specs = []
    while not line.startswith("{"):
        spec, _, line = line.partition(" ")
        specs.append(spec)
    fds = [open_spec(sp) for sp in specs]
    data = line.encode() + b"\n"
    try:
        if fds:
            # One sendmsg carries the descriptors and the line's first bytes.
            sent = socket.send_fds(s, [data], fds)
            s.sendall(data[sent:])
        else:
            s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    for fd in fds:
        os.close(fd)
    while True:  # skip progress notifications: print the answer
        r = f.readline()
        if not r or b'"method"' not in r:
            break
    print(r.decode().rstrip() if r else "CLOSED")
    sys.stdout.flush()
