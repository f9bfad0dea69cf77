#!/bin/bash
# shellcheck disable=SC2154 # SIM_URL_p, SIM_PID_p: set by lib.sh's start_sim through eval
# bench_jobs.sh — N concurrent fine-tuning jobs (default 1,000) against
# vtune-sim with one vtuned: do they all complete, and what does the daemon
# spend doing it (issue 5, "Polling and scale").
#
# Benchmarks
#   Not part of `make check`.  Run it from a build directory, or name one:
#       tests/bench/bench_jobs.sh                 # from the build dir
#       /path/to/src/tests/bench/bench_jobs.sh BUILD_DIR
#       N=100 tests/bench/bench_jobs.sh BUILD_DIR # a quick run
#   (or set top_builddir / top_srcdir as make check does).  Use a plain -O2
#   build for the figures, not a sanitizer build (the script says which it
#   got).  N=1000 takes a few minutes on 2 cores.
#   What it measures, each against a baseline taken in the same run:
#     - submission: N job.submit requests pipelined on one control-socket
#       connection (tests/bench/ctl_load.py, at most 32 unanswered); time
#       to submit, time until the daemon reports no active job, and — the
#       daemon verifies every job that succeeds — time until every job has
#       its audit record with no verification running.  "The job phase"
#       below runs from the first submit to that point;
#     - correctness: every job `succeeded`, the simulator counted exactly
#       one created job per submission (by our metadata tag), one audit
#       record per job (verdicts listed);
#     - daemon CPU (utime+stime from /proc/PID/stat) over the job phase and
#       up to the last job's success, CPU ms per job, and CPU per second on
#       the idle daemon answering the same status requests (baseline);
#     - daemon RSS: VmRSS on the idle daemon before the jobs (baseline),
#       peak during the job phase (VmHWM, reset through clear_refs before
#       the jobs so the backdoor build's peak does not count), ratio;
#     - control-socket latency: `status` round trips at RATE/s (default 10)
#       on one connection while the jobs run, against the same on the idle
#       daemon before them (and beside one CPU-bound process per core:
#       the scheduler's floor on a busy machine): p50/p99/max and the
#       ratios, split into while
#       jobs were active and after (verifications only), slowest answers;
#       and a `job show` right after each status (a read the control
#       thread answers from the store), idle and under load; both again
#       on the idle daemon after the jobs (the first idle window ran
#       before job 1 existed, so its job show is a "no such job" answer);
#       and issue 13's goals (p99 within 3x idle, worst under 100 ms, peak
#       RSS at most 50 MiB), each said yes or no, never failing the run;
#       "idle" there is the quietest of the three idle-daemon windows
#       (before, beside the CPU hogs, after), each of 201 samples;
#     - the simulator's request counts (per endpoint, per job);
#     - warn/error lines in the daemon log.
#   The exit status is 0 unless something is broken (a job that did not
#   succeed, a missing or duplicate provider job, a daemon that stopped
#   answering or did not stop cleanly): then 1.  Timings never fail it.
# Environment: N (jobs, 1000), PPL (job submit's perplexity sample, 0: off), JOB_SECONDS (the simulator's job time, 2),
#   POLL (the provider's poll_interval, 1s), CONCURRENCY (its
#   max_concurrency, 32), RATE (status requests/s, 10), BASE_SECONDS
#   (idle baseline window, 20), DEADLINE (seconds for all jobs, 1800),
#   SIM_IDLE (1: the simulator runs at SCHED_IDLE, standing in for a provider
#   on another machine; 0: it competes for the cores at normal priority),
#   KEEP_TMP=1 keeps the scratch directory, VTUNE_BENCH_CLIENT_SCHED (how
#   the latency client schedules itself, so that its own waits for a CPU
#   stay out of the daemon's figures: fifo, the default, falls back to
#   slice where SCHED_FIFO is refused; slice; default: ctl_load.py),
#   CTL_REALTIME (1: the daemon's control thread at real-time priority where
#   it may, as shipped; 0: control.realtime false, normal priority).
# Shaped as a shell script over tests/integration/lib.sh so that it starts
# and stops the real binaries exactly as the integration tests do.
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    top_builddir=$(cd "$1" && pwd) || exit 1
fi
if [ -z "${top_builddir:-}" ]; then
    if [ -x "$PWD/vtuned" ]; then top_builddir=$PWD; else top_builddir=$(cd "$here/../.." && pwd); fi
fi
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
export top_builddir top_srcdir
. "$top_srcdir/tests/integration/lib.sh"
# shellcheck disable=SC2154 # SIM_URL_p, SIM_PID_p: set by start_sim through eval

N=${N:-1000}
JOB_SECONDS=${JOB_SECONDS:-2}
POLL=${POLL:-1s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-10}
BASE_SECONDS=${BASE_SECONDS:-20}
DEADLINE=${DEADLINE:-1800}
LOAD="python3 $top_srcdir/tests/bench/ctl_load.py"
SOCK="$T/run/vtuned.sock"

[ -x "$VTUNED" ] || skip "vtuned is not built in $top_builddir (pass the build dir as \$1)"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built in $top_builddir"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"

build_kind="-O? (unknown)"
if [ -f "$top_builddir/Makefile" ]; then
    cflags=$(sed -n 's/^CFLAGS = //p' "$top_builddir/Makefile" | head -1)
    san=$(grep -c -- '-fsanitize' "$top_builddir/Makefile")
    build_kind="CFLAGS=\"$cflags\"$([ "$san" -gt 0 ] && echo ' WITH SANITIZERS: figures not representative')"
fi

# cpu_s PID: utime+stime of PID in seconds (fields 14 and 15 of stat).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
# vm KEY PID: a VmXXX figure of PID in KiB.
vm() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
jq_() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "# bench_jobs: N=$N job_seconds=$JOB_SECONDS poll=$POLL max_concurrency=$CONCURRENCY rate=$RATE/s"
echo "# build: $top_builddir ($build_kind)"
echo "# scratch: $T"

echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds "$JOB_SECONDS" --model-cache 4 ||
    { fail "simulator starts"; finish; }
# The simulator stands in for a provider on another machine: at SCHED_IDLE it
# runs on what the daemon and the clients leave (SIM_IDLE=0: it competes, as
# the whole provider on the org's own 2 cores; README, Tests and benchmarks).
sim_sched="normal priority (SIM_IDLE=0)"
if [ "${SIM_IDLE:-1}" = 1 ]; then
    if chrt -a -i -p 0 "$SIM_PID_p" >/dev/null 2>&1; then
        sim_sched="SCHED_IDLE (stands in for a remote provider; SIM_IDLE=0 to compete)"
    else
        sim_sched="normal priority (chrt -i refused)"
    fi
fi
# PPL=K: job submit's perplexity attack with a sample of K rows (lib.sh turns
# it off by default), and --force on every submit (on this dataset it finds the
# default backdoor's pairs; the figure wanted is its cost).
ppl_conf=(); submit_force=()
if [ "${PPL:-0}" -gt 0 ]; then ppl_conf=("verify:" "  perplexity_sample: $PPL"); submit_force=(--force); fi
# CTL_REALTIME=0: the control thread at normal priority (control.realtime:
# false), for a run to compare with the default.
ctl_conf=(); [ "${CTL_REALTIME:-1}" = 0 ] && ctl_conf=("control:" "  realtime: false")
write_config "providers:" "$(provider_yaml p "$SIM_URL_p" "$POLL")" "    max_concurrency: $CONCURRENCY" "${ppl_conf[@]}" "${ctl_conf[@]}"
# Info, not debug: a per-request debug line would be most of the CPU measured.
sed -i 's/^log_level: debug$/log_level: info/' "$T/vtuned.yaml"
start_daemon || { fail "daemon starts"; finish; }
# How the control thread runs (status's activity.control_scheduling: realtime
# or slice; vtuned(8), "The control thread"), its policy and slice as the kernel
# shows them (chrt; se.slice, Linux >= 6.12), read while it runs.
ctl_task=$(task_named "$DAEMON_PID" vtuned-ctl)
ctl --json status > "$T/st_sched.json" 2>/dev/null
ctl_sched="$(jq_ "$T/st_sched.json" "v['activity'].get('control_scheduling', '?')" 2>/dev/null), $( [ -n "$ctl_task" ] && chrt -p "${ctl_task##*/}" 2>/dev/null | sed -n 's/.*policy: \([A-Z_]*\).*/\1/p')"
ctl_slice=$( [ -n "$ctl_task" ] && sched_slice "$ctl_task")
[ -n "$ctl_slice" ] && ctl_sched="$ctl_sched, slice $ctl_slice ns"
make_dataset "$T/d.jsonl" 200
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }
idle_bg() { ctl --json status > "$T/st0.json" && [ "$(jq_ "$T/st0.json" "v['activity']['background_work']")" = 0 ]; }
wait_until 60 idle_bg || { fail "daemon idle before the jobs"; finish; }

# ---- baseline: the idle daemon ------------------------------------------------------------
rss_idle=$(vm VmRSS "$DAEMON_PID")
hwm_setup=$(vm VmHWM "$DAEMON_PID")
cpu_b0=$(cpu_s "$DAEMON_PID"); tb0=$(date +%s.%N)
$LOAD "$SOCK" latency --rate "$RATE" --seconds "$BASE_SECONDS" --show-job 1 > "$T/lat_idle.json" ||
    { fail "idle latency client"; finish; }
cpu_b1=$(cpu_s "$DAEMON_PID"); tb1=$(date +%s.%N)
idle_cpu_ms_s=$(awk -v a="$cpu_b0" -v b="$cpu_b1" -v t0="$tb0" -v t1="$tb1" 'BEGIN { printf "%.2f", (b - a) * 1000 / (t1 - t0) }')
# ---- second baseline: the same idle daemon beside CPU-bound neighbours ------------------
# One busy process per CPU and nothing else: what the machine's scheduler
# alone adds to a round trip once every core is busy, as the simulator keeps
# them during the jobs (on this 2-core VM: about one 4 ms tick at p99 with
# the client at normal priority, which waits for a CPU itself after the
# answer; as idle with the client at SCHED_FIFO, ctl_load.py's default).
# Compared with it, the job phase's figures show what the daemon's own
# work adds.
hogs=()
for _ in $(seq 1 "$(nproc)"); do
    python3 -c 'while True: pass' &
    hogs+=($!)
done
PIDS="$PIDS ${hogs[*]}"
$LOAD "$SOCK" latency --rate "$RATE" --seconds "$BASE_SECONDS" > "$T/lat_floor.json" ||
    { fail "latency client beside the CPU hogs"; finish; }
kill "${hogs[@]}" 2>/dev/null
wait "${hogs[@]}" 2>/dev/null
hwm_reset=no
if echo 5 > "/proc/$DAEMON_PID/clear_refs" 2>/dev/null; then hwm_reset=yes; fi
sim_cpu0=$(cpu_s "$SIM_PID_p")

# ---- the job phase --------------------------------------------------------------------------
rm -f "$T/armed"
# A daemon with the verifier starts one verification per succeeded job;
# then the run ends once every job has its audit record, not only its state.
audit_args=()
if [ "$(jq_ "$T/st0.json" "'verifications_running' in v['activity']")" = True ]; then
    audits0=$(jq_ "$T/st0.json" "v['counts']['audits']")
    audit_args=(--audits-target "$((audits0 + N))")
fi
log_lines0=$(wc -l < "$T/vtuned.log")
cpu0=$(cpu_s "$DAEMON_PID")
t0=$(date +%s.%N)
$LOAD "$SOCK" latency --rate "$RATE" --arm-file "$T/armed" --deadline "$DEADLINE" --pid "$DAEMON_PID" \
    --show-job 1 "${audit_args[@]}" > "$T/lat_load.json" 2> "$T/lat_load.err" &
LAT_PID=$!
PIDS="$PIDS $LAT_PID"
$LOAD "$SOCK" submit "${submit_force[@]}" "$N" d b p vtune-base > "$T/submit.json" ||
    { fail "submit client"; finish; }
t_sub=$(date +%s.%N)
touch "$T/armed"
wait "$LAT_PID"; lat_rc=$?
t_end=$(date +%s.%N)
cpu1=$(cpu_s "$DAEMON_PID")
hwm=$(vm VmHWM "$DAEMON_PID")
rss_after=$(vm VmRSS "$DAEMON_PID")
sim_cpu1=$(cpu_s "$SIM_PID_p")
[ "$lat_rc" = 0 ] || { cat "$T/lat_load.err"; fail "latency client during the jobs (rc $lat_rc)"; }

if [ "$(jq_ "$T/submit.json" "v['errors']")" = 0 ]; then ok "all $N submissions accepted"; else
    fail "all $N submissions accepted: first error $(jq_ "$T/submit.json" "v['first_error']")"; fi
jobs_done_at=$(jq_ "$T/lat_load.json" "v['jobs_done_at'] or ''")
done_at=$(jq_ "$T/lat_load.json" "v['done_at'] or ''")
check "all jobs finished within ${DEADLINE}s" test -n "$jobs_done_at"
[ "${#audit_args[@]}" = 0 ] || check "all verifications finished within ${DEADLINE}s" test -n "$done_at"
ctl --json job list > "$T/list.json"
check "all $N jobs succeeded" python3 -c "
import json,sys; v=json.load(open('$T/list.json'))
bad=[(j['id'],j['state'],j.get('error') or j.get('unknown_reason')) for j in v if j['state']!='succeeded']
print('# not succeeded: %d of %d, e.g. %s' % (len(bad), len(v), bad[:3])) if bad or len(v)!=$N else None
sys.exit(1 if bad or len(v)!=$N else 0)"
sim_stats p "$T/stats.json"
check "the simulator counted exactly one job per submission" python3 -c "
import json,sys
jobs=json.load(open('$T/list.json')); st=json.load(open('$T/stats.json'))['jobs_created_by_metadata']
counts=[st.get('vtune_submission='+j['submission_id'],0) for j in jobs]
sys.exit(0 if counts==[1]*len(jobs) and len(jobs)==$N else 1)"
verdicts=
if [ "${#audit_args[@]}" != 0 ]; then
    ctl --json audit list > "$T/audits.json"
    verdicts=$(python3 -c "
import collections,json; v=json.load(open('$T/audits.json'))
jobs={j['id'] for j in json.load(open('$T/list.json'))}
c=collections.Counter(a['verdict'] for a in v if a['job'] in jobs)
print(' '.join('%s=%d' % kv for kv in sorted(c.items())))")
    check "every job has exactly one audit record" python3 -c "
import json,sys; v=json.load(open('$T/audits.json'))
jobs=[j['id'] for j in json.load(open('$T/list.json'))]
per=[sum(1 for a in v if a['job']==j) for j in jobs]
sys.exit(0 if per==[1]*len(jobs) else 1)"
fi
ctl --json status > "$T/st1.json" || fail "status after the jobs"
# ---- the idle daemon again, now with the jobs in its store ----------------------------------
# The baseline above ran before job 1 existed, so its job show timed a "no
# such job" answer; this one shows the real job, with N jobs beside it.
$LOAD "$SOCK" latency --rate "$RATE" --seconds "$BASE_SECONDS" --show-job 1 > "$T/lat_after.json" ||
    fail "idle latency client after the jobs"
tail -n +"$((log_lines0 + 1))" "$T/vtuned.log" > "$T/job-phase.log"
warns=$(grep -c ' warn  ' "$T/job-phase.log")
errors=$(grep -c ' error ' "$T/job-phase.log")
rests=$(grep -c 'over its real-time budget' "$T/job-phase.log")
stop_daemon
check "clean stop" test "$STOP_RC" = 0

# ---- figures --------------------------------------------------------------------------------
f() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
sub_s=$(f "$t_sub - $t0" 2)
all_s=$( [ -n "$jobs_done_at" ] && f "$jobs_done_at - $t0" 1 || echo "n/a")
ver_s=$( [ -n "$done_at" ] && f "$done_at - $t0" 1 || echo "n/a")
cpu_jd=$(jq_ "$T/lat_load.json" "v['cpu_at_jobs_done'] or ''")
cpu_job=$(f "$cpu1 - $cpu0" 2)
wall=$(f "$t_end - $t0" 1)
lat() { jq_ "$1" "v['latency_ms'].get('$2','n/a')"; }
i50=$(lat "$T/lat_idle.json" p50); i99=$(lat "$T/lat_idle.json" p99); imax=$(lat "$T/lat_idle.json" max)
c50=$(lat "$T/lat_floor.json" p50); c99=$(lat "$T/lat_floor.json" p99); cmax=$(lat "$T/lat_floor.json" max)
l50=$(lat "$T/lat_load.json" p50); l99=$(lat "$T/lat_load.json" p99); lmax=$(lat "$T/lat_load.json" max)
a99=$(jq_ "$T/lat_after.json" "v['latency_ms'].get('p99','n/a')")
# The goal's baseline: the quietest of the three windows on the idle daemon
# (before the jobs, beside the CPU hogs, after the jobs).  One window of 201
# samples has its p99 in its 2-3 slowest answers, and on a shared machine
# some windows catch waits of several ms that others do not: against a
# noisy window alone the ratio would say "yes" for the wrong reason.
q99=$(awk -v a="$i99" -v b="$c99" -v c="$a99" 'BEGIN { m = 0; split(a " " b " " c, w, " "); for (i = 1; i <= 3; i++) { v = w[i] + 0; if (v > 0 && (m == 0 || v < m)) m = v }; print m }')
latp() { jq_ "$1" "'%s / %s / %s ms (%d samples)' % tuple([v['$2'].get(k,'n/a') for k in ('p50','p99','max')] + [v['$2']['n']])"; }
echo
echo "# ---- bench_jobs figures (N=$N) ----"
printf '%-48s %s\n' \
    "jobs submitted / succeeded" "$(jq_ "$T/submit.json" "v['submitted']") / $(jq_ "$T/list.json" "sum(1 for j in v if j['state']=='succeeded')")" \
    "submission time (one connection)" "$sub_s s ($(f "$N / ($t_sub - $t0)" 0) jobs/s; job.submit p50 $(lat "$T/submit.json" p50) ms, p99 $(lat "$T/submit.json" p99) ms)" \
    "time until all jobs succeeded (from 1st submit)" "$all_s s" \
    "time until all verified (audit per job)" "$ver_s s${verdicts:+ (verdicts: $verdicts)}" \
    "most jobs driven / verifications at once" "$(jq_ "$T/lat_load.json" "v['max_jobs_driven']") / $(jq_ "$T/lat_load.json" "v['max_verifications_running']")" \
    "daemon CPU, jobs + verifications (utime+stime)" "$cpu_job s over $wall s wall ($(f "($cpu1 - $cpu0) * 100 / ($t_end - $t0)" 1)% of one core)" \
    "daemon CPU until jobs succeeded" "$( [ -n "$cpu_jd" ] && f "$cpu_jd - $cpu0" 2 || echo n/a) s" \
    "daemon CPU per job (incl. verification)" "$(f "($cpu1 - $cpu0) * 1000 / $N" 2) ms" \
    "daemon CPU idle, answering status (baseline)" "$idle_cpu_ms_s ms/s" \
    "simulator CPU, same span" "$(f "$sim_cpu1 - $sim_cpu0" 2) s" \
    "daemon RSS idle before jobs (baseline)" "$(mib "$rss_idle") MiB" \
    "daemon peak RSS, jobs + verifications (VmHWM)" "$(mib "$hwm") MiB (ratio $(ratio "$hwm" "$rss_idle"); HWM reset before jobs: $hwm_reset; setup peak $(mib "$hwm_setup") MiB)" \
    "daemon RSS after the jobs" "$(mib "$rss_after") MiB" \
    "status latency idle p50/p99/max (baseline)" "$i50 / $i99 / $imax ms ($(jq_ "$T/lat_idle.json" "v['latency_ms']['n']") samples)" \
    "status latency idle beside $(nproc) CPU hogs (floor)" "$c50 / $c99 / $cmax ms ($(jq_ "$T/lat_floor.json" "v['latency_ms']['n']") samples)" \
    "status latency under load p50/p99/max" "$l50 / $l99 / $lmax ms ($(jq_ "$T/lat_load.json" "v['latency_ms']['n']") samples)" \
    "  while jobs were active" "$(latp "$T/lat_load.json" latency_jobs_ms)" \
    "  after them (verifications)" "$(latp "$T/lat_load.json" latency_after_ms)" \
    "job show (job 1) idle p50/p99/max" "$(latp "$T/lat_idle.json" job_show_ms) (before job 1 existed)" \
    "job show (job 1) idle after the jobs" "$(latp "$T/lat_after.json" job_show_ms)" \
    "status latency idle after the jobs" "$(latp "$T/lat_after.json" latency_ms)" \
    "job show (job 1) under load p50/p99/max" "$(latp "$T/lat_load.json" job_show_ms)" \
    "simulator scheduling" "$sim_sched" \
    "latency ratio load/idle p50, p99, max" "$(ratio "$l50" "$i50"), $(ratio "$l99" "$i99"), $(ratio "$lmax" "$imax")" \
    "latency ratio load/floor p50, p99, max" "$(ratio "$l50" "$c50"), $(ratio "$l99" "$c99"), $(ratio "$lmax" "$cmax")" \
    "latency client; daemon's control thread" "$(jq_ "$T/lat_load.json" "{'fifo': 'SCHED_FIFO', 'slice': '0.1 ms slice', 'default': 'default scheduling'}.get(v.get('client_sched'), '?')") (client, every window); $ctl_sched (control thread)" \
    "goals (issue 13; printed, never enforced)" "$(awk -v l99="$l99" -v q99="$q99" -v i99="$i99" -v lmax="$lmax" -v hwm="$hwm" 'BEGIN {
        r = q99 > 0 ? l99 / q99 : 0
        ri = i99 > 0 ? l99 / i99 : 0
        printf "p99 within 3x idle: %s (%.1fx the quietest idle window, p99 %s ms; %.1fx the first); worst < 100 ms: %s; peak RSS <= 50 MiB: %s",
            (q99 > 0 && r <= 3) ? "yes" : "no", r, q99, ri, (lmax + 0 < 100) ? "yes" : "no",
            (hwm / 1024 <= 50) ? "yes" : "no" }')" \
    "slowest status answers (s into run, ms)" "$(jq_ "$T/lat_load.json" "v['slowest']")" \
    "daemon log warn / error lines (job phase)" "$warns / $errors" \
    "control thread over its real-time budget" "$rests log line(s) in the job phase (at most one a minute)"
python3 - "$T/stats.json" "$N" <<'PY'
import json, sys
st = json.load(open(sys.argv[1])); n = int(sys.argv[2])
req = st.get("requests", {})
total = st["requests_total"] if "requests_total" in st else sum(req.values())
print("%-48s %d (%.1f per job)" % ("simulator requests", total, total / n))
for k, c in sorted(req.items(), key=lambda kv: -kv[1]):
    print("%-48s %d (%.2f per job)" % ("  " + k, c, c / n))
PY
finish
