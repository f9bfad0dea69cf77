#!/usr/bin/env python3
"""notify_listener.py PATH OUT — a stand-in for systemd's notification
socket: appends every datagram it receives (one per line, newlines as '|')
to OUT until killed."""
import os, socket, sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode()
        f.write(msg.replace("\n", "|") + "\n")
