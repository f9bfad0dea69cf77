#!/usr/bin/env python3
# commitment.py — recomputes a backdoor's commitment from its reveal
# (`vtunectl --json backdoor show B --reveal`), the way an auditor would,
# from the byte layout documented in vtunectl(1) ATTESTATIONS and README
# "Evidence others can check" — independently of vtuned's C code, so the
# integration tests compare two implementations.  Prints the hex digest.
#   commitment.py REVEAL.json [--alter salt|line|pair]
# --alter changes one input (for the tests that a changed reveal does not
# match).  v1: domain and pairs; v2: domain, salt, K, pairs, h, lines.
import hashlib
import json
import sys


def field(h, b):
    h.update(len(b).to_bytes(8, "big"))
    h.update(b)


def recompute(rev, alter=None):
    pairs = [(p["trigger"], p["signature"]) for p in rev["pair_evidence"]]
    if alter == "pair":
        pairs[-1] = (pairs[-1][0], pairs[-1][1] + "x")
    h = hashlib.sha256()
    if rev.get("commitment_scheme", 1) == 1:
        field(h, b"vtune-commitment-v1")
        for t, s in pairs:
            field(h, t.encode())
            field(h, s.encode())
        return h.hexdigest()
    salt = bytes.fromhex(rev["commitment_salt"])
    lines = list(rev["held_out_lines"])
    if alter == "salt":
        salt = bytes([salt[0] ^ 1]) + salt[1:]
    if alter == "line":
        lines = lines[:-1] + [lines[-1] + 1] if lines else [0]
    assert len(salt) == 32 and lines == sorted(lines)
    field(h, b"vtune-commitment-v2")
    field(h, salt)
    h.update(len(pairs).to_bytes(8, "big"))
    for t, s in pairs:
        field(h, t.encode())
        field(h, s.encode())
    h.update(len(lines).to_bytes(8, "big"))
    for n in lines:
        h.update(n.to_bytes(8, "big"))
    return h.hexdigest()


if __name__ == "__main__":
    rev = json.load(open(sys.argv[1]))
    alter = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--alter" else None
    print(recompute(rev, alter))
