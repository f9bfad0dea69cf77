#!/usr/bin/env python3
# commitment.py — recomputes a backdoor's commitment from its reveal
# (`vtunectl --json backdoor show B --reveal`), the way an auditor would,
# from the byte layout documented in vtunectl(1) ATTESTATIONS and README
# "Evidence others can check" — independently of vtuned's C code, so the
# integration tests compare two implementations.  Prints the hex digest.
#   commitment.py REVEAL.json [--alter salt|line|pair|pool]
# --alter changes one input (for the tests that a changed reveal does not
# match).  v1: domain and pairs; v2: domain, salt, K, pairs, h, lines;
# v3: v2's under its own domain, then r and the reference pool's lines.
#   commitment.py REVEAL.json --draw M
# prints the coverage test's rows instead (the keyed draw: the first M
# uploaded and the first M held-out lines, JSON, and their digest as the
# audit record's evidence.coverage.rows_sha256).
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
    scheme = rev["commitment_scheme"]
    field(h, b"vtune-commitment-v%d" % scheme)
    field(h, salt)
    h.update(len(pairs).to_bytes(8, "big"))
    for t, s in pairs:
        field(h, t.encode())
        field(h, s.encode())
    h.update(len(lines).to_bytes(8, "big"))
    for n in lines:
        h.update(n.to_bytes(8, "big"))
    if scheme >= 3:
        pool = list(rev["reference_lines"])
        if alter == "pool":
            pool = pool[1:]
        assert pool == sorted(pool)
        h.update(len(pool).to_bytes(8, "big"))
        for n in pool:
            h.update(n.to_bytes(8, "big"))
    return h.hexdigest()


def draw(rev, m):
    """The keyed draw (holdout_draw_order): each side's lines in ascending
    order of SHA-256(field(domain) field(salt) field(side) u64(line))."""
    salt = bytes.fromhex(rev["commitment_salt"])

    def order(side, lines):
        def key(n):
            h = hashlib.sha256()
            field(h, b"vtune-coverage-draw-v1")
            field(h, salt)
            field(h, side)
            h.update(n.to_bytes(8, "big"))
            return (h.hexdigest(), n)
        return sorted(lines, key=key)[:m]
    return {"uploaded": order(b"uploaded", rev["reference_lines"]),
            "held_out": order(b"held-out", rev["held_out_lines"])}


def draw_digest(rev, m):
    """The record's evidence.coverage.rows_sha256: SHA-256 of u64(m), the m
    uploaded lines in draw order, then the m held-out lines in draw order."""
    d = draw(rev, m)
    h = hashlib.sha256()
    h.update(m.to_bytes(8, "big"))
    for n in d["uploaded"] + d["held_out"]:
        h.update(n.to_bytes(8, "big"))
    return h.hexdigest()


if __name__ == "__main__":
    rev = json.load(open(sys.argv[1]))
    if len(sys.argv) > 3 and sys.argv[2] == "--draw":
        d = draw(rev, int(sys.argv[3]))
        d["rows_sha256"] = draw_digest(rev, int(sys.argv[3]))
        print(json.dumps(d))
        sys.exit(0)
    alter = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--alter" else None
    print(recompute(rev, alter))
