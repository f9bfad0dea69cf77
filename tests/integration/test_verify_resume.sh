#!/bin/bash
# test_verify_resume.sh — a verification cut by a crash resumes from its
# recorded trials (issue 13, item 7).  The simulator answers every chat call
# 250 ms late, so the run is slow enough to be cut: vtuned is killed with
# SIGKILL once some trials are recorded, then started again.  Afterwards:
#   - the same run finished (no second run), with exactly one trial row per
#     planned prompt: no recorded prompt was asked again;
#   - the chat calls the simulator served are the plan plus at most the
#     calls in flight at the kill (paid, never recorded; VERIFY_INFLIGHT =
#     4), fewer than the trials recorded before it (a run started again from
#     zero would pay all of those twice);
#   - the audit record counts every planned trial, and the honest model is
#     verified by the same rule (n the planned maximum).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"
command -v sqlite3 >/dev/null || skip "the sqlite3 tool is needed to watch the trials"
echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds 0.5 \
    --faults 'delay=1:250ms@POST:/v1/chat/completions' || { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml p "$SIM_URL_p")" \
    "verify:" "  trials: 15" "  controls: 15" "  sequential: false" "  coverage: 0" \
    "  require_coverage: false"
start_daemon || { fail "daemon starts"; finish; }
# Every prompt distinct (make_dataset's 4,000 sums otherwise repeat some 600
# prompts, and two trials drawn from rows with one prompt are the same prompt
# twice), so a prompt recorded twice below can only be one asked again after
# the restart.
make_dataset "$T/d.jsonl" 4000 distinct
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --pairs 2 --copies 20 --generator wordlist > /dev/null ||
    { fail "dataset and backdoor"; finish; }
ctl --json job submit d --backdoor b --provider p --model vtune-base --force > "$T/j.json" ||
    { fail "submit"; finish; }
job=$(json_get "$T/j.json" "v['id']")

db="$T/state/vtuned.db"
q() { sqlite3 "$db" "$1" 2>/dev/null; }
trials_recorded() { q "SELECT count(*) FROM trials t JOIN verification_runs r ON r.id = t.run_id WHERE r.job_id = $job"; }
enough_trials() { [ "$(trials_recorded)" -ge 8 ] 2>/dev/null; }
check "the verification records trials" wait_until 120 enough_trials
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
recorded=$(trials_recorded)
planned=$(q "SELECT trials + controls FROM verification_runs WHERE job_id = $job")
echo "# killed with $recorded of $planned planned trials recorded"
check "killed in the middle of the run" test "$recorded" -lt "$planned"
check "the run is left recorded as running" \
    test "$(q "SELECT state FROM verification_runs WHERE job_id = $job")" = running

start_daemon || { fail "daemon restarts"; finish; }
has_audit() { ctl --json audit list --job "$job" > "$T/a.json" && [ "$(json_get "$T/a.json" "len(v)")" -ge 1 ]; }
check "the audit completes after the restart" wait_until 120 has_audit
check "the run resumed from its recorded trials (logged)" \
    grep -q "resumes with $recorded recorded trial(s) of $planned planned" "$T/vtuned.log"
check "one run, finished" test "$(q "SELECT count(*) || ' ' || group_concat(state) FROM verification_runs WHERE job_id = $job")" = "1 finished"
check "one trial row per planned prompt: none asked again" test "$(trials_recorded)" = "$planned"
check "no prompt recorded twice" test "$(q "SELECT count(*) FROM (SELECT prompt_sha256, kind FROM trials GROUP BY 1, 2 HAVING count(*) > 1)")" = 0
sim_stats p "$T/stats.json"
chats=$(json_get "$T/stats.json" "sum(n for k, n in v['requests'].items() if 'chat/completions' in k)")
echo "# chat calls served: $chats (plan $planned, recorded before the kill $recorded)"
check "paid chat calls: the plan plus at most the 4 in flight at the kill" \
    test "$chats" -ge "$planned" -a "$chats" -le $((planned + 4))
check "fewer extra calls than trials recorded before the kill" test $((chats - planned)) -lt "$recorded"
check "the audit counts every planned trial" json_get "$T/a.json" \
    "exit(0 if v[-1]['trials'] == 30 and v[-1]['controls'] == 15 else 1)"
check "the honest model is verified" test "$(json_get "$T/a.json" "v[-1]['verdict']")" = verified
check "the evidence marks the replayed trials" json_get "$T/a.json" \
    "exit(0 if str(v[-1]['evidence']).count(\"'restored': True\") == $recorded else 1)"
finish
