#!/usr/bin/env python3
"""progress_check.py STREAM STAGE[,STAGE…] BOUND OUT -- COMMAND…

Runs COMMAND (a vtunectl under --json), stamps every line of its stdout
and stderr with the time it arrived, and checks the NDJSON progress events
({"type":"progress", stage, unit, done, total, …}) it printed on STREAM
("stdout" or "stderr") for the stages named:
  - each stage sent at least two events;
  - within a stage, done never decreases and total stays the same number;
  - the last event of a stage has done == total (everything settled),
    unless total is null in every event (a stage whose end nobody knows);
  - no silence longer than BOUND seconds from the first event of a stage to
    the line that ends it (the next line of another kind on either stream,
    or the command's exit): the daemon sends every interval, moved or not,
    so the gaps depend on that interval, not on how long the work takes.
    With --from-start the silence before the first event counts too.
Writes every stamped line to OUT; exits with COMMAND's status when the
checks pass, 99 when they fail (the reason on stderr)."""
import json, subprocess, sys, threading, time

args = sys.argv[1:]
from_start = False
if args and args[0] == "--from-start":
    from_start, args = True, args[1:]
stream, stages, bound, out = args[0], args[1].split(","), float(args[2]), args[3]
cmd = args[args.index("--") + 1:]

lines = []  # (t, stream, text)
lock = threading.Lock()
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def reader(f, name):
    for raw in iter(f.readline, b""):
        with lock:
            lines.append((time.monotonic(), name, raw.decode(errors="replace").rstrip("\n")))


ths = [threading.Thread(target=reader, args=(p.stdout, "stdout")),
       threading.Thread(target=reader, args=(p.stderr, "stderr"))]
for t in ths:
    t.start()
rc = p.wait()
for t in ths:
    t.join()
t_end = time.monotonic()
lines.sort(key=lambda x: x[0])
with open(out, "w") as f:
    for t, s, text in lines:
        f.write(f"{t - t0:8.3f} {s} {text}\n")


def event(s, text):
    if s != stream:
        return None
    try:
        v = json.loads(text)
    except ValueError:
        return None
    return v if isinstance(v, dict) and v.get("type") == "progress" else None


problems = []
for stage in stages:
    idx = [i for i, (t, s, x) in enumerate(lines) if (event(s, x) or {}).get("stage") == stage]
    if len(idx) < 2:
        problems.append(f"{stage}: {len(idx)} progress event(s), want at least 2")
        continue
    evs = [event(lines[i][1], lines[i][2]) for i in idx]
    dones = [e["done"] for e in evs]
    totals = {e["total"] for e in evs}
    if any(b < a for a, b in zip(dones, dones[1:])):
        problems.append(f"{stage}: done went down: {dones}")
    if totals == {None}:
        pass  # an open-ended stage (the llm generator's calls): done only grows
    elif len(totals) != 1 or not isinstance(next(iter(totals)), int):
        problems.append(f"{stage}: total changed or is not a number: {sorted(map(str, totals))}")
    elif dones[-1] != evs[-1]["total"]:
        problems.append(f"{stage}: the last event has done {dones[-1]} of {evs[-1]['total']}")
    # the times: first event .. the first other line after the last event (or the exit)
    after = [i for i in range(idx[-1] + 1, len(lines)) if (event(*lines[i][1:]) or {}).get("stage") != stage]
    stamps = [lines[i][0] for i in idx] + [lines[after[0]][0] if after else t_end]
    if from_start:
        stamps = [t0] + stamps
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    worst = max(gaps)
    print(f"# {stage}: {len(idx)} events, done {dones[0]}..{dones[-1]} of {evs[-1]['total']} "
          f"{evs[-1].get('unit')}, longest silence {worst:.2f} s (bound {bound} s)")
    if worst > bound:
        problems.append(f"{stage}: {worst:.2f} s without a word (bound {bound} s)")
for pr in problems:
    print(f"progress_check: {pr}", file=sys.stderr)
sys.exit(99 if problems else rc)
