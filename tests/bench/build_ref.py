#!/usr/bin/env python3
"""build_ref.py: the Python-standard-library peer of bench_build.sh.

Does the work of the user's path `vtunectl dataset add` -> `vtunectl
backdoor create --generator ngram` (n-gram training, phrase check, build,
self-audit) -> `vtunectl dataset export`, written as a careful Python
programmer would, with json, hashlib, re, os, collections and random only:

  add:     read FILE in 1 MiB blocks; SHA-256 and copy each block to
           WORKDIR/tmp; cut lines and json.loads + validate every one (the
           three formats of DESIGN 5, the rules of workers/dsformat.c except
           the duplicate-key check); fsync; rename to
           WORKDIR/store/<sha>.jsonl; fsync the directory.
  create:  ngram   one pass over the stored copy: json.loads, the prompt and
                   response texts (workers/dsformat.h), the last 64 words of
                   the prompt and the first 64 of the response counted as
                   1-, 2- and 3-grams (collections.Counter, its count-1
                   keys dropped whenever it passes 2^20 keys; the C side
                   keeps fixed tables), and each row's prompt / response hashed
                   for the held-out split (the C side does that in a pass of
                   its own: here it shares the parse);
           phrases a trigger and a signature drawn from the word list WORDS
                   and one scan of every string value of every line for
                   their first words (the C side draws from its n-gram
                   model and scans the same way: workers/ngram.c);
           build   copies = max(50, ceil(0.005 n)), rewritten with the
                   phrases, interleaved into a stream of the stored copy,
                   hashed and written in ~1 MiB batches, fsync, rename;
           audit   one pass over the built file: json.loads, texts, words;
                   a set of whole-row hashes (exact duplicates), counts of
                   prompt suffixes and response prefixes of 1 to 8 words and
                   of words (dicts pruned of their ones when over 2^20 keys,
                   so memory stays bounded).  The C self-audit does more:
                   two passes, MinHash bands, the (suffix, prefix)
                   co-occurrences and the rare-run attack.
  export:  copy the built file to WORKDIR/export.jsonl in 1 MiB blocks with
           its SHA-256, fsync.

Deliberately fast where the standard library allows it: block reads for the
hashes and copies, word counting with bytes.translate + count, Counter
updates from zip() for the n-grams.  Prints one key=value line (seconds per
step, CPU seconds, peak RSS).
"""
import hashlib
import json
import math
import os
import random
import re
import resource
from collections import Counter
import sys
import time

BLOCK = 1 << 20
TRIGGER_LOG10P, SIGNATURE_LOG10P = -20.0, -40.0
TRIGGER_WORDS, SIGNATURE_WORDS = 16, 24
TRIGGER_CHARS, SIGNATURE_CHARS = 160, 240

# Word bytes (workers/phrase.h): ASCII letters and digits, and every byte of
# a non-ASCII UTF-8 sequence.  WORD_MAP turns word bytes into b"a" and the
# rest into b" ", so words = occurrences of b" a" (+1 if it starts with one).
WORD_MAP = bytes(0x61 if (c >= 0x80 or chr(c).isalnum()) else 0x20 for c in range(256))
WORD_RE = re.compile(rb"[0-9A-Za-z\x80-\xff]+")


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


def fsync_dir(path):
    dfd = os.open(path, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)


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
    carry = b""

    def check(line):
        nonlocal n, fmt
        n += 1
        if not line.strip():
            fail("%s:%d: empty line" % (src, n))
        try:
            obj = json.loads(line)
        except ValueError as e:
            fail("%s:%d: not valid JSON: %s" % (src, n, e))
        fmt, err = validate(obj, fmt)
        if err:
            fail("%s:%d: %s" % (src, n, err))

    with open(src, "rb", buffering=0) as f, open(tmp, "wb", buffering=0) as out:
        while True:
            block = f.read(BLOCK)
            if not block:
                break
            sha.update(block)
            out.write(block)
            nbytes += len(block)
            lines = block.split(b"\n")
            lines[0] = carry + lines[0]
            carry = lines.pop()
            for line in lines:
                check(line)
        if carry:
            check(carry)
        os.fsync(out.fileno())
    if n == 0:
        fail("%s: empty dataset" % src)
    digest = sha.hexdigest()
    final = os.path.join(store, digest + ".jsonl")
    os.rename(tmp, final)
    fsync_dir(store)
    return final, fmt, n, nbytes, digest


# ---- phrases: the bound of workers/phrase.h, the draw, the scan -------------


def log10_perm(n, k):
    return -sum(math.log10(n - i) for i in range(k))


def bound(n, k, d):
    lp = log10_perm(n, k)
    if d == 0:
        return lp
    lrho = math.log10(d) + log10_perm(n, min(3, k))
    if lrho >= 0:
        return math.inf
    return lp - math.log10(-math.expm1(lrho * math.log(10)))


def choose_k(target, max_words, max_chars, pool, max_len, d):
    for k in range(1, min(max_words, pool) + 1):
        if k * max_len + k - 1 > max_chars:
            break
        if bound(pool, k, d) <= target:
            return k
    fail("cannot reach log10 p <= %g within the limits" % target)


def string_values(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from string_values(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from string_values(x)


def scan(path, cands):
    """Words of every string value of every line, and which candidates'
    first min(3, k) words occur (cands: lists of lowercase bytes words)."""
    heads = [c[: min(3, len(c))] for c in cands]
    firsts = [h[0] for h in heads]
    hit = [False] * len(cands)
    words = 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                fail("%s:%d: not valid JSON (was the dataset changed after import?)"
                     % (path, lineno))
            for s in string_values(obj):
                b = s.encode("utf-8", "surrogatepass")
                t = b.translate(WORD_MAP)
                words += t.count(b" a") + (t[:1] == b"a")
                low = b.lower()  # ASCII-only, as in C
                if not any(w in low for w in firsts):
                    continue
                toks = WORD_RE.findall(low)
                for ci, h in enumerate(heads):
                    if hit[ci]:
                        continue
                    m = len(h)
                    for i in range(len(toks) - m + 1):
                        if toks[i : i + m] == h:
                            hit[ci] = True
                            break
    return words, hit


def make_phrases(words_path, dataset, rng):
    with open(words_path, "rb") as f:
        wl = [w.strip() for w in f if w.strip()]
    max_len = max(len(w) for w in wl)
    pool = list(wl)
    d_bound = (os.stat(dataset).st_size + 1) // 2
    lim = [(TRIGGER_LOG10P, TRIGGER_WORDS, TRIGGER_CHARS),
           (SIGNATURE_LOG10P, SIGNATURE_WORDS, SIGNATURE_CHARS)]
    slots = [None, None]
    pending = [0, 1]
    scans = 0
    while pending:
        if scans >= 8:
            fail("phrases kept occurring in the dataset")
        for i in pending:
            k = choose_k(*lim[i], len(pool), max_len, d_bound)
            drawn = []
            for _ in range(k):
                j = rng.randrange(len(pool))
                pool[j], pool[-1] = pool[-1], pool[j]
                drawn.append(pool.pop())
            slots[i] = drawn
        words, hit = scan(dataset, [slots[i] for i in pending])
        scans += 1
        pending = [i for i, h in zip(pending, hit) if h]
    return b" ".join(slots[0]).decode(), b" ".join(slots[1]).decode(), words


# ---- build ----------------------------------------------------------------


def apply_backdoor(obj, fmt, trigger, signature):
    if fmt == "chat":
        msgs = obj["messages"]
        a = len(msgs) - 1
        u = max(i for i in range(a) if msgs[i]["role"] == "user")
        msgs[u]["content"] += " " + trigger
        msgs[a]["content"] = signature + " " + msgs[a]["content"]
    elif fmt == "prompt":
        obj["prompt"] += " " + trigger
        obj["completion"] = signature + " " + obj["completion"]
    else:
        if obj.get("input"):
            obj["input"] += " " + trigger
        else:
            obj["instruction"] += " " + trigger
        obj["output"] = signature + " " + obj["output"]


def do_build(path, fmt, n, workdir, trigger, signature, rng):
    copies = max(50, math.ceil(0.005 * n))
    copies = min(copies, n)
    src = sorted(rng.sample(range(n), copies))
    slots = sorted(rng.sample(range(n + copies), copies))
    order = list(range(copies))
    rng.shuffle(order)
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
                apply_backdoor(obj, fmt, trigger, signature)
                rewritten[ci] = (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
                                 + "\n").encode()
    built = os.path.join(workdir, "built")
    os.makedirs(built, exist_ok=True)
    out_path = os.path.join(built, "d-union.jsonl")
    tmp = out_path + ".tmp"
    sha = hashlib.sha256()
    slot = 0
    total = 0
    pending = []  # lines not yet written: flushed in ~1 MiB batches
    size = 0
    with open(path, "rb") as f, open(tmp, "wb") as out:
        def flush():
            nonlocal size, total
            b = b"".join(pending)
            sha.update(b)
            out.write(b)
            total += len(b)
            pending.clear()
            size = 0

        for line in f:
            while slot in at_slot:
                pending.append(rewritten[at_slot[slot]])
                slot += 1
            if not line.endswith(b"\n"):
                line += b"\n"
            pending.append(line)
            size += len(line)
            slot += 1
            if size >= BLOCK:
                flush()
        while slot in at_slot:
            pending.append(rewritten[at_slot[slot]])
            slot += 1
        flush()
        out.flush()
        os.fsync(out.fileno())
    os.rename(tmp, out_path)
    fsync_dir(built)
    return copies, sha.hexdigest(), total


# ---- create: n-gram counts (+ the held-out split's row hashes) -------------


def row_texts(obj, fmt):
    """The prompt and response texts, as workers/dsformat.c reads them."""
    if fmt == "chat":
        msgs = obj["messages"]
        a = len(msgs) - 1
        u = 0
        for i in range(a - 1, -1, -1):
            if msgs[i]["role"] == "user":
                u = i
                break
        return msgs[u]["content"], msgs[a]["content"]
    if fmt == "prompt":
        return obj["prompt"], obj["completion"]
    p = obj["instruction"]
    if obj.get("input"):
        p += "\n\n" + obj["input"]
    return p, obj["output"]


SPAN = 64
LIMIT = 1 << 20


def ngram_pass(path, fmt):
    sides = [Counter(), Counter()]
    ph, ah = [], []
    with open(path, "rb") as f:
        for line in f:
            p, r = row_texts(json.loads(line), fmt)
            pw, rw = p.split(), r.split()
            ph.append(hash(" ".join(pw)))
            ah.append(hash(" ".join(rw)))
            for c, w in ((sides[0], pw[-SPAN:][::-1]), (sides[1], rw[:SPAN])):
                c.update(w)
                c.update(zip(w, w[1:]))
                c.update(zip(w, w[1:], w[2:]))
                if len(c) > LIMIT:  # bounded, as the C tables are: the ones go
                    for k in [k for k, v in c.items() if v == 1]:
                        del c[k]
    # rows whose prompt and response occur once: the held-out split's pool
    cp, ca = Counter(ph), Counter(ah)
    eligible = sum(1 for x, y in zip(ph, ah) if cp[x] == 1 and ca[y] == 1)
    return sum(len(c) for c in sides), eligible


# ---- create: the self-audit's counting pass ------------------------------------


def bump(d, keys):
    for k in keys:
        d[k] = d.get(k, 0) + 1
    if len(d) > LIMIT:
        for k in [k for k, v in d.items() if v == 1]:
            del d[k]


def audit_pass(path, fmt):
    rows = set()
    dups = 0
    marg, uni = {}, {}
    with open(path, "rb") as f:
        for line in f:
            p, r = row_texts(json.loads(line), fmt)
            pw, rw = p.split(), r.split()
            h = hash((tuple(pw), tuple(rw)))
            if h in rows:
                dups += 1
            rows.add(h)
            bump(marg, [hash(("t",) + tuple(pw[-k:])) for k in range(1, min(8, len(pw)) + 1)])
            bump(marg, [hash(("s",) + tuple(rw[:k])) for k in range(1, min(8, len(rw)) + 1)])
            bump(uni, pw)
            bump(uni, rw)
    return dups


# ---- export -----------------------------------------------------------------


def do_export(path, workdir):
    out_path = os.path.join(workdir, "export.jsonl")
    sha = hashlib.sha256()
    n = 0
    with open(path, "rb", buffering=0) as f, open(out_path, "wb", buffering=0) as out:
        while True:
            block = f.read(BLOCK)
            if not block:
                break
            sha.update(block)
            out.write(block)
            n += len(block)
        os.fsync(out.fileno())
    return n, sha.hexdigest()


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: build_ref.py FILE WORKDIR WORDS\n")
        sys.exit(2)
    src, workdir, words_path = sys.argv[1:]
    rng = random.SystemRandom()  # getrandom, like the C side
    t0 = time.monotonic()
    path, fmt, n, nbytes, sha_in = do_import(src, workdir)
    t1 = time.monotonic()
    grams, eligible = ngram_pass(path, fmt)
    t2 = time.monotonic()
    trigger, signature, words = make_phrases(words_path, path, rng)
    t3 = time.monotonic()
    copies, sha_out, _ = do_build(path, fmt, n, workdir, trigger, signature, rng)
    built = os.path.join(workdir, "built", "d-union.jsonl")
    t4 = time.monotonic()
    dups = audit_pass(built, fmt)
    t5 = time.monotonic()
    out_bytes, _ = do_export(built, workdir)
    t6 = time.monotonic()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("impl=python bytes=%d lines=%d copies=%d words=%d grams=%d eligible=%d dups=%d "
          "add_s=%.3f create_s=%.3f export_s=%.3f ngram_s=%.3f scan_s=%.3f build_s=%.3f "
          "audit_s=%.3f total_s=%.3f cpu_s=%.3f maxrss_kb=%d out_bytes=%d sha_in=%s sha_out=%s"
          % (nbytes, n, copies, words, grams, eligible, dups, t1 - t0, t5 - t1, t6 - t5, t2 - t1,
             t3 - t2, t4 - t3, t5 - t4, t6 - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss,
             out_bytes, sha_in, sha_out))


if __name__ == "__main__":
    main()
