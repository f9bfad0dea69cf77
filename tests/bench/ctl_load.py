#!/usr/bin/env python3
"""ctl_load.py — control-socket load and latency client for tests/bench/bench_jobs.sh.

It speaks the daemon's protocol directly (newline-delimited JSON-RPC 2.0 on
the Unix socket) over ONE connection, so what it measures is the daemon's
answer time, not the cost of spawning a vtunectl process per request.

  ctl_load.py [--timeout S] SOCKET submit N DATASET BACKDOOR PROVIDER MODEL [--window W]
      Sends N job.submit requests pipelined on one connection (at most W
      unanswered at a time, default 32) and prints one JSON object:
      {"submitted", "errors", "first_error", "seconds", "latency_ms": {...}}.

  ctl_load.py [--timeout S] SOCKET latency [--rate R] [--seconds S]
      [--arm-file F] [--audits-target K] [--deadline S] [--pid PID]
      Sends `status` R times a second (default 10) and records each round
      trip.  Stops after --seconds, or — with --arm-file — once F exists
      (the jobs are all submitted) and an answer reports counts.jobs_active
      == 0 (jobs_done_at) and, with --audits-target, counts.audits >= K and
      no verification running (done_at); or at --deadline.  With --pid it
      also samples that process's VmRSS and CPU time from /proc at each
      request.  Prints one JSON object: latency percentiles (all, while
      jobs were active, after them), errors, the times above (Unix seconds),
      the most jobs / verifications seen at once, the sampled RSS peak, and
      client_sched: how this client was scheduled (client_sched below).

The latency client keeps its own scheduling out of what it measures: a
round trip ends when the client runs again after the answer arrived, and a
plain process on a busy machine waits for a CPU there (a scheduler tick,
4 ms on the 2-core VM measured), which is the client's delay, not the
daemon's.  So it first asks for SCHED_FIFO (priority 10: root or
CAP_SYS_NICE), then, where that is refused, for a 0.1 ms slice
(ask_short_slice), which shortens that wait without removing it.
VTUNE_BENCH_CLIENT_SCHED=slice or =default skips the first or both, to
compare.

Any answer slower than --timeout (default 120 s) ends the client with
status 1: the daemon stopped answering.

Shaped as a plain client with no third-party modules so that it runs
wherever the integration tests run (they already need python3).  Pacing
is a schedule (request k goes out at start + k/R), not a race-dodging sleep.
"""
import argparse
import json
import os
import socket
import sys
import time


class Conn:
    """One control-socket connection; replies are matched by id in order."""

    def __init__(self, path, timeout):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)  # a daemon that stops answering fails the run
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.next_id = 1

    def send(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.s.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        return rid

    def recv(self):
        """The next reply (notifications, which carry no id, are skipped)."""
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("the daemon closed the connection")
            msg = json.loads(line)
            if "id" in msg:
                return msg


def percentiles(v):
    """p50/p90/p99/max/mean of a list of milliseconds (nearest-rank)."""
    if not v:
        return {"n": 0}
    s = sorted(v)

    def rank(p):
        k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
        return round(s[k], 3)

    return {"n": len(s), "p50": rank(50), "p90": rank(90), "p99": rank(99),
            "max": round(s[-1], 3), "mean": round(sum(s) / len(s), 3)}


def proc_sample(pid):
    """(VmRSS KiB, utime+stime seconds) of pid, or (None, None)."""
    try:
        rss = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, cpu
    except (OSError, ValueError, IndexError):
        return None, None


def cmd_submit(a):
    c = Conn(a.socket, a.timeout)
    params = {"dataset": a.dataset, "backdoor": a.backdoor, "provider": a.provider,
              "model": a.model}
    if a.force:
        params["force"] = True
    pending = {}
    lat = []
    errors = 0
    first_error = None
    sent = 0
    t0 = time.perf_counter()
    while sent < a.n or pending:
        while sent < a.n and len(pending) < a.window:
            pending[c.send("job.submit", params)] = time.perf_counter()
            sent += 1
        r = c.recv()
        t = pending.pop(r["id"], None)
        if t is not None:
            lat.append((time.perf_counter() - t) * 1000.0)
        if "error" in r:
            errors += 1
            if first_error is None:
                first_error = r["error"]
    secs = time.perf_counter() - t0
    print(json.dumps({"submitted": a.n - errors, "errors": errors, "first_error": first_error,
                      "seconds": round(secs, 3), "latency_ms": percentiles(lat)}))
    return 0


def ask_short_slice():
    """Asks the kernel for a 0.1 ms scheduler slice for this thread (the
    daemon's control thread asks the same): on Linux >= 6.12 (EEVDF) a task
    that wakes with a short slice preempts CPU-bound ones, so the time this
    client waits to run after the answer arrives stays out of the figure it
    reports.  Its weight is unchanged.  True when the call succeeded (an
    older kernel accepts it and ignores the slice)."""
    import ctypes
    import platform
    nr = {"x86_64": 314, "aarch64": 274}.get(platform.machine())
    if nr is None:
        return False

    class Attr(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32),
                    ("flags", ctypes.c_uint64), ("nice", ctypes.c_int32),
                    ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                    ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        attr = Attr(size=ctypes.sizeof(Attr), policy=0, nice=os.getpriority(os.PRIO_PROCESS, 0),
                    runtime=100000)
        return libc.syscall(nr, 0, ctypes.byref(attr), 0) == 0
    except (OSError, AttributeError):
        return False


def client_sched():
    """Schedules this client as the module note says; returns "fifo",
    "slice" or "default", what it got."""
    want = os.environ.get("VTUNE_BENCH_CLIENT_SCHED", "fifo")
    if want == "fifo":
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            return "fifo"
        except (OSError, AttributeError):
            pass
    if want in ("fifo", "slice") and ask_short_slice():
        return "slice"
    return "default"


def cmd_latency(a):
    sched = client_sched()
    c = Conn(a.socket, a.timeout)
    lat = []  # all round trips (ms)
    lat_show = []  # job.show round trips (--show-job), right after each status
    lat_jobs = []  # ... while jobs were still active (after arming)
    lat_after = []  # ... after the jobs, while verifications ran
    errors = 0
    first_error = None
    jobs_done_at = None
    done_at = None
    cpu_at_jobs_done = None
    max_driven = 0
    max_verifying = 0
    rss_peak = None
    slow = []  # (seconds since start, ms) of the slowest answers
    period = 1.0 / a.rate
    start = time.perf_counter()
    stop_at = start + (a.seconds if a.seconds else a.deadline)
    k = 0
    while True:
        due = start + k * period
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        elif now - due > period:
            k = int((now - start) / period)  # fell behind: do not burst to catch up
        k += 1
        armed = a.arm_file is not None and os.path.exists(a.arm_file)
        t = time.perf_counter()
        rid = c.send("status")
        r = c.recv()
        ms = (time.perf_counter() - t) * 1000.0
        if a.show_job:
            # a read the control thread answers from the store (or "no
            # job" until it exists: the same path)
            ts = time.perf_counter()
            c.send("job.show", {"id": a.show_job})
            c.recv()
            lat_show.append((time.perf_counter() - ts) * 1000.0)
        if r.get("id") != rid or "error" in r:
            errors += 1
            if first_error is None:
                first_error = r.get("error", "reply to another id")
        else:
            lat.append(ms)
            (lat_jobs if jobs_done_at is None else lat_after).append(ms)
            slow.append((round(t - start, 2), round(ms, 2)))
            slow = sorted(slow, key=lambda x: -x[1])[:5]
            res = r["result"]
            act = res["activity"]
            max_driven = max(max_driven, act.get("jobs_driven", 0))
            max_verifying = max(max_verifying, act.get("verifications_running", 0))
            if armed and jobs_done_at is None and res["counts"]["jobs_active"] == 0:
                jobs_done_at = time.time()
                if a.pid:
                    cpu_at_jobs_done = proc_sample(a.pid)[1]
            if jobs_done_at is not None and (
                    a.audits_target is None or
                    (res["counts"].get("audits", 0) >= a.audits_target and
                     act.get("verifications_running", 0) == 0)):
                done_at = time.time()
        if a.pid:
            rss, _ = proc_sample(a.pid)
            if rss is not None and (rss_peak is None or rss > rss_peak):
                rss_peak = rss
        if done_at is not None or time.perf_counter() >= stop_at:
            break
    out = {"latency_ms": percentiles(lat), "latency_jobs_ms": percentiles(lat_jobs),
           "latency_after_ms": percentiles(lat_after), "errors": errors,
           "first_error": first_error, "seconds": round(time.perf_counter() - start, 3),
           "jobs_done_at": jobs_done_at, "done_at": done_at,
           "cpu_at_jobs_done": cpu_at_jobs_done, "max_jobs_driven": max_driven,
           "max_verifications_running": max_verifying, "rss_sampled_peak_kib": rss_peak,
           "slowest": slow, "client_sched": sched,
           "job_show_ms": percentiles(lat_show)}
    print(json.dumps(out))
    return 0


def main():
    p = argparse.ArgumentParser(description="control-socket load/latency client")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for any one answer (default 120)")
    p.add_argument("socket")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit")
    s.add_argument("n", type=int)
    s.add_argument("dataset")
    s.add_argument("backdoor")
    s.add_argument("provider")
    s.add_argument("model")
    s.add_argument("--window", type=int, default=32)
    s.add_argument("--force", action="store_true",
                   help="submit with force (past the self-audit and the base-model screens)")
    l = sub.add_parser("latency")
    l.add_argument("--rate", type=float, default=10.0)
    l.add_argument("--seconds", type=float, default=0.0)
    l.add_argument("--arm-file")
    l.add_argument("--deadline", type=float, default=900.0)
    l.add_argument("--pid", type=int, default=0)
    l.add_argument("--audits-target", type=int)
    l.add_argument("--show-job", type=int, default=0,
                   help="after each status, time a job.show of this job id")
    a = p.parse_args()
    try:
        return cmd_submit(a) if a.cmd == "submit" else cmd_latency(a)
    except (OSError, ConnectionError, ValueError, KeyError) as e:
        print("ctl_load.py: %s: %s" % (a.cmd, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
