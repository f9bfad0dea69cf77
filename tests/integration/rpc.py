#!/usr/bin/env python3
"""rpc.py SOCKET — raw control-socket client for protocol tests.

Reads lines from stdin; each line is sent as is (a JSON-RPC request, or
garbage on purpose) and the reply lines are printed.  Special lines:
  !big N        send a line of N bytes without a newline-terminated JSON
  !expect-close read until the daemon closes the connection, print CLOSED
"""
import socket, sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("!big "):
        n = int(line.split()[1])
        try:
            s.sendall(b"x" * n + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        continue
    if line == "!expect-close":
        try:
            while True:
                r = f.readline()
                if not r:
                    break
                print(r.decode().rstrip())
        except ConnectionResetError:
            pass
        print("CLOSED")
        break
    s.sendall(line.encode() + b"\n")
    r = f.readline()
    print(r.decode().rstrip() if r else "CLOSED")
    sys.stdout.flush()
