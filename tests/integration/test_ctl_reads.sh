#!/bin/bash
# Reads do not wait for the main loop (issue 13, "a control plane that
# never stalls"): the lists and shows of jobs, audit records, datasets,
# backdoors (--reveal too, logged with the uid) and schedules come from the
# store alone, so the control thread answers them through its read-only
# connection while the main loop is busy; under a burst of 1,000
# jobs `job show` waited up to 107 ms behind provider work when the main
# loop answered it (README, Tests and benchmarks).  The answers are the
# same whoever gives them, errors included; a read sent after a request of
# the same connection that is still with the main loop is answered after
# it (answers keep their order); a list too large for the control thread
# is left to the main loop.
#
# No timing: the main loop is blocked on purpose through VTUNED_TEST_STALL
# (vtuned(8), FAULT INJECTION), as in test_ctl_thread.sh.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds 0.2 || { fail "simulator starts"; finish; }
mkfifo "$T/stall.fifo" || skip "cannot create a FIFO in $T"
# (a short verification: part 2 needs 80 audit records, not their strength)
write_config "providers:" "  byhand:" "    kind: manual" "    base_url: $SIM_URL_p" \
    "    score_template: \"$SIM_SCORE_TEMPLATE\"" "verify:" "  trials: 2" "  controls: 1" \
    "  coverage: 0" "  require_coverage: false"
export VTUNED_TEST_STALL="$T/stall.fifo"
start_daemon || { fail "daemon starts"; finish; }
unset VTUNED_TEST_STALL
SOCK="$T/run/vtuned.sock"

make_dataset "$T/d.jsonl" 400
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }
ctl --json job register d --backdoor b --provider byhand --model vtune-base --base-model vtune-base \
    --name reg > "$T/j.json" || { fail "job register"; finish; }
job=$(json_get "$T/j.json" "v['id']")
audited() { ctl --json audit list > "$T/a.json" && [ "$(json_get "$T/a.json" "len(v)")" -ge 1 ]; }
check "the registered job is verified (one audit record)" wait_until 120 audited
audit=$(json_get "$T/a.json" "v[0]['id']")

# The reads, on one connection.  With "main", a key.show (the main loop's:
# the signing key is its state) ahead of each keeps it with the main loop
# (answers keep their order): the reference.
cat > "$T/reads.py" <<'PY'
import json, socket, sys
sock, job, audit, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
reads = [("job.list", {}), ("job.list", {"active": True}), ("job.show", {"id": job}),
         ("job.show", {"id": "reg"}), ("job.show", {"id": 999}), ("job.show", {}),
         ("audit.list", {}), ("audit.list", {"job": job}), ("audit.show", {"id": audit}),
         ("audit.show", {"id": 999}), ("dataset.list", {}), ("dataset.show", {"id": "d"}),
         ("dataset.show", {"id": 999}), ("backdoor.list", {}), ("backdoor.list", {"dataset": "d"}),
         ("backdoor.show", {"id": "b"}), ("backdoor.show", {"id": "b", "reveal": True}),
         ("backdoor.show", {"id": 999}), ("schedule.list", {})]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
f = s.makefile("rb")
out = []
for i, (m, p) in enumerate(reads):
    lines = []
    if mode == "main":
        lines.append({"jsonrpc": "2.0", "id": "ahead%d" % i, "method": "key.show"})
    lines.append({"jsonrpc": "2.0", "id": i, "method": m, "params": p})
    s.sendall("".join(json.dumps(l) + "\n" for l in lines).encode())
    for _ in lines:
        r = json.loads(f.readline())
        if r["id"] == i:
            out.append(r)
print(json.dumps(out))
PY
# First through the main loop (nothing blocks it).
python3 "$T/reads.py" "$SOCK" "$job" "$audit" main > "$T/main.json"
check "the reference reads are answered" test "$(json_get "$T/main.json" "len(v)")" = 19

# Now with the main loop blocked (with_loop_blocked, lib.sh).
blocked() {
    timeout 30 python3 "$T/reads.py" "$SOCK" "$job" "$audit" local > "$T/local.json" 2> "$T/local.err" 3>&-
    echo $? > "$T/local.rc"
    # Order on one connection: a request for the main loop, then a read.
    # The read must not overtake it, so neither is answered yet.
    timeout 30 python3 - "$SOCK" "$job" > "$T/order.json" 2> "$T/order.err" 3>&- <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall((json.dumps({"jsonrpc": "2.0", "id": "first", "method": "key.show"}) + "\n" +
           json.dumps({"jsonrpc": "2.0", "id": "second", "method": "job.show",
                       "params": {"id": int(sys.argv[2])}}) + "\n").encode())
f = s.makefile("rb")
print(json.dumps([json.loads(f.readline())["id"], json.loads(f.readline())["id"]]))
PY
    echo $! > "$T/order.pid"
    # Both lines are read by the daemon once it counts the connection and
    # the socket's queue is empty; then nothing may have come back while
    # the loop is blocked.
    wait_until 20 connections_at_least 2 && : > "$T/order_connected"
    kill -0 "$(cat "$T/order.pid")" 2>/dev/null && [ ! -s "$T/order.json" ] && : > "$T/order_waiting"
}
with_loop_blocked "$T/stall.fifo" blocked
check "the main loop was inside the seam" test -e "$T/inside"
check "every read is answered while the main loop is blocked" test "$(cat "$T/local.rc" 2>/dev/null)" = 0
check "nineteen answers" test "$(json_get "$T/local.json" "len(v)")" = 19
same() { python3 - "$T/main.json" "$T/local.json" "$1" <<'PY'
import json, sys
a, b, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
sys.exit(0 if a[i] == b[i] else 1)
PY
}
check "job list: the same answer as the main loop's" same 0
check "job list --active: the same" same 1
check "job show by id: the same" same 2
check "job show by name: the same" same 3
check "job show of a job that does not exist: the same error" same 4
check "it is 'not found' (-32001) and names the job" test "$(json_get "$T/local.json" "v[4]['error']['code'], 'no job' in v[4]['error']['message']")" = "-32001 True"
check "job show without an id: the same error (-32602)" same 5
check "audit list: the same" same 6
check "audit list of the job: the same" same 7
check "audit show: the same" same 8
check "audit show of a record that does not exist: the same error" same 9
check "dataset list: the same" same 10
check "dataset show: the same" same 11
check "dataset show of a dataset that does not exist: the same error" same 12
check "backdoor list: the same" same 13
check "backdoor list of the dataset: the same" same 14
check "backdoor show: the same (with its self-audit)" same 15
check "backdoor show --reveal: the same" same 16
check "it carries the phrases" test "$(json_get "$T/local.json" "'trigger' in json.dumps(v[16]['result'])")" = True
check "each reveal is logged with the uid, on either thread" test "$(grep -c "revealed to uid $(id -u)" "$T/vtuned.log")" = 2
check "backdoor show of one that does not exist: the same error" same 17
check "schedule list: the same" same 18
check "the job's answer carries its events" test "$(json_get "$T/local.json" "len(v[2]['result']['events']) > 0")" = True
check "a read and a request for the main loop on one connection connected" test -e "$T/order_connected"
check "neither was answered while the loop was blocked (the read did not overtake)" test -e "$T/order_waiting"
check "the main loop went on" wait_until 20 grep -q "VTUNED_TEST_STALL: the main loop goes on" "$T/vtuned.log"
check "then both, in order" test "$(json_get "$T/order.json" "','.join(v)")" = "first,second"

# Part 2: a list whose answer would pass about 2 MB (CTL_LOCAL_MAX_BYTES)
# is left to the main loop, which the other clients do not wait for: with
# 81 audit records (15-28 KB each) `audit list` waits while the loop is
# blocked, and the 81 jobs' list and one job's records do not.
for i in $(seq 1 80); do
    ctl -q job register d --backdoor b --provider byhand --model vtune-base --base-model vtune-base \
        > /dev/null || break
done
audits81() { ctl --json audit list > "$T/a.json" && [ "$(json_get "$T/a.json" "len(v)")" -ge 81 ]; }
check "80 more jobs are registered and verified" wait_until 300 audits81
blocked2() {
    timeout 30 "$VTUNECTL" -s "$SOCK" --json job list > "$T/jl.json" 2>&1 3>&-
    echo $? > "$T/jl.rc"
    timeout 30 "$VTUNECTL" -s "$SOCK" --json audit list --job "$job" > "$T/aj.json" 2>&1 3>&-
    echo $? > "$T/aj.rc"
    timeout 30 "$VTUNECTL" -s "$SOCK" --json audit list > "$T/al.json" 2>&1 3>&- &
    echo $! > "$T/al.pid"
    wait_until 20 connections_at_least 2 && : > "$T/al_connected"
    kill -0 "$(cat "$T/al.pid")" 2>/dev/null && : > "$T/al_waiting"
}
with_loop_blocked "$T/stall.fifo" blocked2
check "the main loop was inside the seam again" test -e "$T/inside"
check "job list of 81 jobs is answered while it is blocked" test "$(cat "$T/jl.rc" 2>/dev/null)" = 0 -a "$(json_get "$T/jl.json" "len(v)")" = 81
check "and one job's audit records" test "$(cat "$T/aj.rc" 2>/dev/null)" = 0 -a "$(json_get "$T/aj.json" "len(v)")" = 1
check "the whole audit list connected" test -e "$T/al_connected"
check "but waits for the main loop (over 2 MB)" test -e "$T/al_waiting"
check "and is answered once the loop goes on" test "$(json_get "$T/al.json" "len(v)")" = 81

stop_daemon
check "the daemon stops cleanly" test "$STOP_RC" = 0
finish
