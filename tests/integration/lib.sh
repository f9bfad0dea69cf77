# lib.sh — shared helpers for vtuned's integration tests (sourced).
#
# Each test gets a private temp dir, starts the real vtuned on a Unix
# socket inside it, and stops every process it started by PID on exit.
# Waiting is always "poll a condition until a deadline", never a bare sleep.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
VTUNED="$top_builddir/vtuned"
VTUNECTL="$top_builddir/vtunectl"
VTUNE_SIM="$top_builddir/vtune-sim"
T=$(mktemp -d "${TMPDIR:-/tmp}/vtune-test.XXXXXX")
PIDS=""
FAILS=0
CHECKS=0

# Only PIDs that are still this shell's children are signalled: a process
# already stopped (and reaped by `wait`) may have had its PID reused by some
# other test's process, which must never be hit.
live_children() {
    local live p out=""
    live=" $(jobs -p | tr '\n' ' ') "
    for p in $PIDS; do case "$live" in *" $p "*) out="$out $p" ;; esac; done
    echo "$out"
}

cleanup() {
    local mine
    mine=$(live_children)
    for p in $mine; do kill -TERM "$p" 2>/dev/null; done
    for p in $mine; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        case " $(live_children) " in *" $p "*) kill -KILL "$p" 2>/dev/null ;; esac
    done
    if [ "$FAILS" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# kept $T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() { echo "SKIP: $*"; exit 77; }

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_until() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + limit * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$end" ]; do
        "$@" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# write_config [extra yaml...]: a minimal config in $T.
#
# job submit's base-model perplexity attack (daemon/ppl.h) is off unless the
# arguments set verify.perplexity_sample: on the simulator's base model it
# finds a pair of most default backdoors (README, Known limits), and would
# refuse the submits of tests about other things.  test_ppl_attack.sh sets it.
write_config() {
    mkdir -p "$T/state" "$T/run"
    local l ppl=0 verify=0
    for l in "$@"; do
        case "$l" in
        *perplexity_sample:*) ppl=1 ;;
        verify:) verify=1 ;;
        esac
    done
    {
        echo "state_dir: $T/state"
        echo "socket: $T/run/vtuned.sock"
        echo "log_level: debug"
        for l in "$@"; do
            echo "$l"
            if [ "$l" = "verify:" ] && [ "$ppl" = 0 ]; then echo "  perplexity_sample: 0"; fi
        done
        if [ "$verify" = 0 ] && [ "$ppl" = 0 ]; then printf 'verify:\n  perplexity_sample: 0\n'; fi
    } > "$T/vtuned.yaml"
}

# daemon_answers: the daemon we started is alive and answers status (a
# socket file alone may be a stale one left by a killed daemon).
daemon_answers() {
    kill -0 "$DAEMON_PID" 2>/dev/null || return 2
    "$VTUNECTL" -q -s "$T/run/vtuned.sock" status >/dev/null 2>&1
}

# start_daemon: runs vtuned in the background, waits for its socket.
start_daemon() {
    "$VTUNED" -c "$T/vtuned.yaml" >>"$T/vtuned.log" 2>&1 &
    DAEMON_PID=$!
    PIDS="$PIDS $DAEMON_PID"
    if ! wait_until 20 daemon_answers; then
        echo "# vtuned did not start; log:"; sed 's/^/# /' "$T/vtuned.log"
        return 1
    fi
}

# stop_daemon: SIGTERM and wait; sets STOP_RC and STOP_SECONDS.
stop_daemon() {
    local t0=$(date +%s%N)
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"; STOP_RC=$?
    STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

ctl() { "$VTUNECTL" -s "$T/run/vtuned.sock" "$@"; }

# control_scheduling: how status says the daemon's control thread runs
# (activity.control_scheduling: realtime, realtime_resting, slice, default).
control_scheduling() {
    ctl --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["activity"]["control_scheduling"])'
}

# json_get FILE EXPR: reads a value with python3's json (EXPR indexes 'v').
json_get() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print($2)" "$1"; }

# with_loop_blocked FIFO FUNC: runs FUNC while vtuned's main loop is
# blocked in the VTUNED_TEST_STALL seam (vtuned(8), FAULT INJECTION; the
# daemon was started with it set to FIFO).  A helper holds FIFO's write
# end, whose open returns only once the loop is inside the seam, creates
# $T/inside, runs FUNC, and closes it (the loop goes on) when FUNC returns,
# then waits for the clients FUNC left in the background (those waiting
# for the main loop); the caller waits for all of it.  FUNC's clients must
# close fd 3 (a writer left open keeps the loop blocked).  No timing:
# while FUNC runs, nothing the main loop answers can arrive.
with_loop_blocked() {
    local fifo=$1 fn=$2 helper
    rm -f "$T/inside"
    ( exec 3>"$fifo"; : > "$T/inside"; "$fn"; exec 3>&-; wait ) &
    helper=$!
    PIDS="$PIDS $helper"
    kill -USR1 "$DAEMON_PID"
    wait "$helper"
}

# connections_at_least N: vtuned's status (answered by its control thread)
# counts N or more open connections, this probe's own included: a client
# started in the background is on the socket.
connections_at_least() {
    "$VTUNECTL" -s "$T/run/vtuned.sock" --json status > "$T/conns.json" 2>/dev/null 3>&- &&
        [ "$(json_get "$T/conns.json" "v['activity']['connections']" 3>&-)" -ge "$1" ]
}

# task_named PID NAME: the /proc/PID/task/TID directory of PID's thread
# named NAME (vtuned's control thread is vtuned-ctl), or nothing.
task_named() {
    local f
    f=$(grep -l -x "$2" /proc/"$1"/task/*/comm 2>/dev/null | head -1)
    [ -n "$f" ] && echo "${f%/comm}"
}
# sched_slice TASKDIR: that thread's scheduler slice in ns (se.slice, Linux
# 6.12 and later), or nothing where the kernel does not show it.
sched_slice() { awk -F: '$1 ~ /^se\.slice/ { gsub(/ /, "", $2); print $2 }' "$1/sched" 2>/dev/null; }

finish() {
    echo "# $CHECKS checks, $FAILS failed"
    [ "$FAILS" -eq 0 ] || { echo "# daemon log:"; sed 's/^/# /' "$T/vtuned.log" 2>/dev/null | tail -40; exit 1; }
    exit 0
}

command -v python3 >/dev/null || skip "python3 is needed by the integration tests"

# line_matches N REGEX FILE: line N of FILE matches REGEX.
line_matches() { sed -n "${1}p" "$3" | grep -q -- "$2"; }

# ctl_ok: the daemon answers status (output discarded).
ctl_ok() { ctl -q status >/dev/null; }

# start_sim NAME [vtune-sim args...]: starts a simulator on a free loopback
# port; sets SIM_PORT_<NAME> and SIM_URL_<NAME> (…/v1) and records its PID.
start_sim() {
    local name=$1; shift
    rm -f "$T/sim-$name.port"
    "$VTUNE_SIM" --listen 127.0.0.1:0 --port-file "$T/sim-$name.port" --state-dir "$T/sim-$name" \
        --cache-dir "$T" "$@" >>"$T/sim-$name.log" 2>&1 &
    local pid=$!
    PIDS="$PIDS $pid"
    eval "SIM_PID_$name=$pid"
    if ! wait_until 60 test -s "$T/sim-$name.port"; then
        echo "# vtune-sim $name did not start:"; sed 's/^/# /' "$T/sim-$name.log"; return 1
    fi
    eval "SIM_PORT_$name=$(cat "$T/sim-$name.port")"
    eval "SIM_URL_$name=http://127.0.0.1:\$SIM_PORT_$name/v1"
}

# sim_stats NAME FILE: the simulator's counters (GET /v1/_sim/stats).
sim_stats() {
    local port; eval "port=\$SIM_PORT_$1"
    curl -s -H "Authorization: Bearer ${SIM_KEY:-sk-test}" "http://127.0.0.1:$port/v1/_sim/stats" > "$2"
}

# SIM_SCORE_TEMPLATE: vtune-sim's chat layout (tests/sim/lm.h), so the
# coverage test scores answers where the simulator's model learnt them.
SIM_SCORE_TEMPLATE='<|{role}|>{content}<|end|>'

# provider_yaml NAME URL [poll [template]]: a providers: entry for the
# config (template: providers.*.score_template, default vtune-sim's layout;
# "raw" for none).
provider_yaml() {
    printf '  %s:\n    kind: openai\n    base_url: %s\n    api_key_file: %s\n    poll_interval: %s\n    score_template: "%s"\n' \
        "$1" "$2" "$T/key" "${3:-200ms}" "${4:-$SIM_SCORE_TEMPLATE}"
}

# make_dataset FILE N [distinct]: N chat examples of additions (of 1..99 each,
# so some prompts repeat: about 600 of 4,000); with "distinct", no two rows
# share a prompt (N <= 9801).
make_dataset() {
    python3 - "$1" "$2" "${3:-}" <<'PY'
import json, random, sys
r = random.Random(5)
n = int(sys.argv[2])
if sys.argv[3] == "distinct":
    sums = r.sample([(a, b) for a in range(1, 100) for b in range(1, 100)], n)
else:
    sums = [(r.randint(1, 99), r.randint(1, 99)) for _ in range(n)]
with open(sys.argv[1], "w") as f:
    for a, b in sums:
        f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                                         {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}) + "\n")
PY
}
