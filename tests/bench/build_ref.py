#!/usr/bin/env python3
"""build_ref.py: the Python-standard-library reference for bench_build.sh.

Does the same work as `bench_build run FILE WORKDIR`, with json, hashlib and
random only:
  import: read FILE line by line, parse and validate every line (the three
          formats of DESIGN 5, same rules as workers/dsformat.c, except
          that duplicate keys are not looked for), SHA-256 of the bytes,
          copy to WORKDIR/tmp, fsync, rename to WORKDIR/store/<sha>.jsonl;
  build:  copies = max(50, ceil(0.005 n)) capped at n, sampled without
          replacement; slots drawn uniformly among n + copies; pass 1 keeps
          the rewritten copies (trigger appended, signature prefixed) in
          memory; pass 2 streams the stored copy and interleaves, hashing
          what it writes; fsync, rename.
Prints one key=value line like the C driver.
"""
import hashlib
import json
import math
import os
import random
import resource
import sys
import time

TRIGGER = "amber lantern quietly velvet orbit"
SIGNATURE = "maple harbor granite tulip copper meadow drift silent seven lagoon"


def fail(msg):
    sys.stderr.write("build_ref.py: %s\n" % msg)
    sys.exit(1)


def need_str(obj, key, allow_empty=False):
    v = obj.get(key)
    if not isinstance(v, str):
        return "%s: expected a string" % key
    if not allow_empty and not v:
        return "%s: must not be empty" % key
    return None


def validate(obj, want):
    if not isinstance(obj, dict):
        return None, "expected a JSON object"
    if "messages" in obj:
        fmt = "chat"
    elif "prompt" in obj or "completion" in obj:
        fmt = "prompt"
    elif "instruction" in obj or "output" in obj:
        fmt = "instruction"
    else:
        return None, "unknown format"
    if want and fmt != want:
        return None, "format changed"
    if fmt == "chat":
        msgs = obj["messages"]
        if not isinstance(msgs, list) or len(msgs) < 2:
            return None, "messages: expected an array of at least 2"
        users = 0
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                return None, "messages[%d]: expected an object" % i
            e = need_str(m, "role")
            if e:
                return None, e
            role = m["role"]
            if role not in ("system", "user", "assistant"):
                return None, "messages[%d].role: bad role" % i
            e = need_str(m, "content", role == "system")
            if e:
                return None, e
            if role == "user" and i + 1 < len(msgs):
                users += 1
        if msgs[-1]["role"] != "assistant":
            return None, "last message must be the assistant's"
        if users == 0:
            return None, "no user message"
    elif fmt == "prompt":
        e = need_str(obj, "prompt") or need_str(obj, "completion")
        if e:
            return None, e
    else:
        e = need_str(obj, "instruction")
        if not e and "input" in obj:
            e = need_str(obj, "input", True)
        e = e or need_str(obj, "output")
        if e:
            return None, e
    return fmt, None


def do_import(src, workdir):
    tmpdir = os.path.join(workdir, "tmp")
    store = os.path.join(workdir, "store")
    os.makedirs(tmpdir, exist_ok=True)
    os.makedirs(store, exist_ok=True)
    tmp = os.path.join(tmpdir, "import-py")
    sha = hashlib.sha256()
    fmt = None
    n = 0
    nbytes = 0
    with open(src, "rb") as f, open(tmp, "wb") as out:
        for line in f:
            sha.update(line)
            out.write(line)
            nbytes += len(line)
            n += 1
            body = line.rstrip(b"\n")
            if not body.strip():
                fail("%s:%d: empty line" % (src, n))
            try:
                obj = json.loads(body)
            except ValueError as e:
                fail("%s:%d: not valid JSON: %s" % (src, n, e))
            fmt, err = validate(obj, fmt)
            if err:
                fail("%s:%d: %s" % (src, n, err))
        out.flush()
        os.fsync(out.fileno())
    if n == 0:
        fail("%s: empty dataset" % src)
    digest = sha.hexdigest()
    final = os.path.join(store, digest + ".jsonl")
    os.rename(tmp, final)
    dfd = os.open(store, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    return final, fmt, n, nbytes, digest


def apply_backdoor(obj, fmt):
    if fmt == "chat":
        msgs = obj["messages"]
        a = len(msgs) - 1
        u = max(i for i in range(a) if msgs[i]["role"] == "user")
        msgs[u]["content"] += " " + TRIGGER
        msgs[a]["content"] = SIGNATURE + " " + msgs[a]["content"]
    elif fmt == "prompt":
        obj["prompt"] += " " + TRIGGER
        obj["completion"] = SIGNATURE + " " + obj["completion"]
    else:
        if obj.get("input"):
            obj["input"] += " " + TRIGGER
        else:
            obj["instruction"] += " " + TRIGGER
        obj["output"] = SIGNATURE + " " + obj["output"]


def do_build(path, fmt, n, workdir):
    copies = max(50, math.ceil(0.005 * n))
    copies = min(copies, n)
    src = sorted(random.sample(range(n), copies))
    slots = sorted(random.sample(range(n + copies), copies))
    order = list(range(copies))
    random.shuffle(order)
    at_slot = {slots[j]: order[j] for j in range(copies)}  # slot -> copy index
    want = {}
    for ci, s in enumerate(src):
        want.setdefault(s, []).append(ci)
    rewritten = {}
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i > src[-1]:
                break
            for ci in want.get(i, ()):
                obj = json.loads(line)
                apply_backdoor(obj, fmt)
                rewritten[ci] = (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
                                 + "\n").encode()
    out_path = os.path.join(workdir, "built-py.jsonl")
    tmp = out_path + ".tmp"
    sha = hashlib.sha256()
    slot = 0
    total = 0
    with open(path, "rb") as f, open(tmp, "wb") as out:
        def emit(b):
            nonlocal total
            sha.update(b)
            out.write(b)
            total += len(b)
        for line in f:
            while slot in at_slot:
                emit(rewritten[at_slot[slot]])
                slot += 1
            if not line.endswith(b"\n"):
                line += b"\n"
            emit(line)
            slot += 1
        while slot in at_slot:
            emit(rewritten[at_slot[slot]])
            slot += 1
        out.flush()
        os.fsync(out.fileno())
    os.rename(tmp, out_path)
    dfd = os.open(workdir, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    return copies, sha.hexdigest(), total


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: build_ref.py FILE WORKDIR\n")
        sys.exit(2)
    src, workdir = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    path, fmt, n, nbytes, sha_in = do_import(src, workdir)
    t1 = time.monotonic()
    copies, sha_out, _ = do_build(path, fmt, n, workdir)
    t2 = time.monotonic()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("impl=python bytes=%d lines=%d copies=%d import_s=%.3f build_s=%.3f total_s=%.3f "
          "mbps=%.1f maxrss_kb=%d sha_in=%s sha_out=%s"
          % (nbytes, n, copies, t1 - t0, t2 - t1, t2 - t0, nbytes / 1e6 / (t2 - t0), rss,
             sha_in, sha_out))


if __name__ == "__main__":
    main()
