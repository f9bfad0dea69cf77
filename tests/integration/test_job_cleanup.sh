#!/bin/bash
# test_job_cleanup.sh — nothing secret leaves by mistake, and background
# work survives a restart (issue 13, items 6 and 7).
#   1. `job submit --param n_epoch=3` (a typo) is a usage error (exit 2, one
#      line, "did you mean"), before anything is recorded or uploaded: no
#      job row, no file at the simulator.
#   2. A job that succeeds, and one that fails, leave no file at the
#      simulator afterwards (delete_upload: always, the default); with
#      delete_upload: never the file stays.
#   3. A deletion the simulator refuses (500 on DELETE) waits in the outbox;
#      the daemon is killed (SIGKILL) and restarted; the deletion is made.
#   4. A webhook alert the listener refuses (503) waits in the outbox; the
#      daemon is killed and restarted; the alert is delivered.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's files"
echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds 0.5 || { fail "simulator starts"; finish; }
python3 "$(dirname "$0")/webhook_listener.py" "$T/hook.port" "$T/hook.out" "$T/hook.refuse" &
PIDS="$PIDS $!"
wait_until 10 test -s "$T/hook.port" || { fail "webhook listener"; finish; }
# p deletes uploads (the default); keep, on the same simulator, never does.
write_config "providers:" "$(provider_yaml p "$SIM_URL_p")" \
    "$(provider_yaml keep "$SIM_URL_p")" "    delete_upload: never" \
    "alerts:" "  webhook_url: http://127.0.0.1:$(cat "$T/hook.port")/alert" "  timeout: 5s"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --generator wordlist > /dev/null ||
    { fail "dataset and backdoor"; finish; }

sim_api() { curl -s -H "Authorization: Bearer sk-test" "$@"; }
sim_faults() { sim_api -d "{\"spec\":\"$1\"}" "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null; }
# sim_files: the number of files the simulator holds.
sim_files() {
    sim_api "http://127.0.0.1:$SIM_PORT_p/v1/files" > "$T/files.json" &&
        json_get "$T/files.json" "len(v['data'])"
}
# has_file ID / no_file ID: the simulator holds (not) file ID.
has_file() {
    sim_api "http://127.0.0.1:$SIM_PORT_p/v1/files" > "$T/files.json" &&
        json_get "$T/files.json" "[f['id'] for f in v['data']]" | grep -q "'$1'"
}
no_file() { sim_api "http://127.0.0.1:$SIM_PORT_p/v1/files" > "$T/files.json" && ! has_file "$1"; }
job_state() { ctl --json job show "$1" > "$T/show.json" && json_get "$T/show.json" "v['state']"; }
is_state() { test "$(job_state "$1")" = "$2"; }
file_of() { ctl --json job show "$1" > "$T/show.json" && json_get "$T/show.json" "v['provider_file_id']"; }
outbox_rows() { sqlite3 "$T/state/vtuned.db" "SELECT count(*) FROM outbox WHERE kind = '$1'"; }

# 1. A mistyped --param: refused before anything happens.
ctl job submit d --backdoor b --provider p --model vtune-base --param n_epoch=3 \
    > "$T/typo.out" 2> "$T/typo.err"
rc=$?
sed 's/^/# /' "$T/typo.err"
check "1: --param n_epoch=3 is a usage error (exit 2)" test "$rc" = 2
check "1: in one line" test "$(wc -l < "$T/typo.err")" = 1
check "1: naming the key and the nearest known one" \
    grep -q "n_epoch'.*did you mean 'n_epochs'" "$T/typo.err"
ctl --json job list > "$T/jobs.json"
check "1: no job recorded" test "$(json_get "$T/jobs.json" "len(v)")" = 0
check "1: nothing uploaded to the simulator" test "$(sim_files)" = 0
check "1: no audit record" test "$(ctl --json audit list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0
ctl job submit d --backdoor b --provider p --model vtune-base --param n_epochs=three \
    > /dev/null 2> "$T/val.err"
rc=$?
check "1: a bad value for a known --param is a usage error too" test "$rc" = 2
check "1: and nothing was uploaded" test "$(sim_files)" = 0

# 2. Jobs that end: their upload is deleted (or kept, with never).
ctl --json job submit d --backdoor b --provider p --model vtune-base --name ok > "$T/j1.json" ||
    { fail "submit"; finish; }
j1=$(json_get "$T/j1.json" "v['id']")
check "2: the job succeeds" wait_until 60 is_state "$j1" succeeded
f1=$(file_of "$j1")
check "2: the succeeded job's upload is deleted at the simulator" wait_until 20 no_file "$f1"
check "2: the deletion is logged" grep -q "job $j1: deleted the uploaded training file $f1 at p" "$T/vtuned.log"
ctl --json job submit d --backdoor b --provider p --model vtune-base --name bad \
    --param metadata.vtune_sim_behaviour=fail > "$T/j2.json" || { fail "submit"; finish; }
j2=$(json_get "$T/j2.json" "v['id']")
check "2: the job fails" wait_until 60 is_state "$j2" failed
f2=$(file_of "$j2")
check "2: the failed job's upload is deleted at the simulator" wait_until 20 no_file "$f2"
ctl --json job submit d --backdoor b --provider keep --model vtune-base --name kept > "$T/j3.json" ||
    { fail "submit"; finish; }
j3=$(json_get "$T/j3.json" "v['id']")
check "2: the job at the delete_upload: never provider succeeds" wait_until 60 is_state "$j3" succeeded
f3=$(file_of "$j3")
check "2: with delete_upload: never its upload stays" has_file "$f3"
check "2: and the log says so" grep -q "job $j3: succeeded; the uploaded training file $f3 stays at keep" "$T/vtuned.log"
check "2: the outbox is empty" test "$(outbox_rows delete_upload)" = 0

# 3. A refused deletion survives a SIGKILL.
sim_faults "500=1@DELETE:/v1/files/*"
ctl --json job submit d --backdoor b --provider p --model vtune-base --name refused > "$T/j4.json" ||
    { fail "submit"; finish; }
j4=$(json_get "$T/j4.json" "v['id']")
check "3: the job succeeds" wait_until 60 is_state "$j4" succeeded
f4=$(file_of "$j4")
retry_logged() { grep -q "outbox: delete_upload item [0-9]*: attempt 1 failed" "$T/vtuned.log"; }
check "3: the refused deletion waits for a retry" wait_until 60 retry_logged
check "3: recorded in the outbox" test "$(outbox_rows delete_upload)" = 1
check "3: the file is still at the simulator" has_file "$f4"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
sim_faults ""
start_daemon || { fail "restart after the kill"; finish; }
check "3: after the restart the file is deleted" wait_until 60 no_file "$f4"
check "3: and logged" wait_until 10 grep -q "job $j4: deleted the uploaded training file $f4 at p" "$T/vtuned.log"
check "3: the outbox is empty again" wait_until 10 test "$(outbox_rows delete_upload)" = 0

# 4. A refused alert survives a SIGKILL.  The scheduled re-verification of j1
# flips to not_verified once its model is swapped for the base model.
touch "$T/hook.refuse"
ctl -q schedule add "$j1" --every 1s > /dev/null || fail "schedule add"
sched_verdict() { ctl --json schedule list > "$T/sl.json" && test "$(json_get "$T/sl.json" "v[0].get('last_verdict')")" = "$1"; }
check "4: the schedule runs and records verified" wait_until 60 sched_verdict verified
model1=$(ctl --json job show "$j1" | python3 -c "import json,sys; print(json.load(sys.stdin)['fine_tuned_model'])")
sim_api -d '{"to":"base"}' "$SIM_URL_p/_sim/models/$model1/swap" > /dev/null
refused() { test -s "$T/hook.out.refused"; }
check "4: the webhook refused the alert" wait_until 120 refused
check "4: the alert waits in the outbox" wait_until 10 test "$(outbox_rows alert)" = 1
ctl -q schedule rm 1 > /dev/null
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
rm -f "$T/hook.refuse"
check "4: nothing delivered before the restart" test ! -s "$T/hook.out"
start_daemon || { fail "restart after the kill"; finish; }
check "4: after the restart the alert is delivered" wait_until 60 test -s "$T/hook.out"
# The verdict change away from verified: not_verified, or inconclusive when the
# run in flight at the swap had its trigger prompts answered by the fine-tuned
# model and its coverage rows by the base model (the backdoor learned, nothing
# else).
check "4: it is the verdict change" grep -Eq '"previous":"verified","verdict":"(not_verified|inconclusive)"' "$T/hook.out"
check "4: the outbox is empty again" wait_until 10 test "$(outbox_rows alert)" = 0
finish
