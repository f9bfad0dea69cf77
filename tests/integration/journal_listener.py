#!/usr/bin/env python3
"""journal_listener.py PATH OUT — a stand-in for journald's native socket:
binds the datagram socket PATH, parses each record of systemd's native
protocol (NAME=value lines, or NAME, a 64-bit little-endian length and
the bytes for a value holding a newline) and appends it to OUT as one JSON
object per line, until killed."""
import json, socket, struct, sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)


def parse(b):
    rec, i = {}, 0
    while i < len(b):
        nl = b.index(b"\n", i)
        line = b[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", b[nl + 1:nl + 9])
            v = b[nl + 9:nl + 9 + n]
            assert b[nl + 9 + n:nl + 10 + n] == b"\n", "binary field not ended by a newline"
            i = nl + 10 + n
        rec[k.decode()] = v.decode(errors="replace")
    return rec


with open(out, "a", buffering=1) as f:
    while True:
        f.write(json.dumps(parse(s.recv(65536))) + "\n")
