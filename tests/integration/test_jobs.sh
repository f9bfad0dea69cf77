#!/bin/bash
# Job lifecycle against real vtune-sim providers on loopback: submit → poll →
# succeeded with exactly one provider job; provider failure and refusal
# reach the user with the provider's message; cancel; manual register; a
# create whose answer is lost is reconciled to the one job; a provider that
# refuses to be listed (403) parks the job as unknown until an operator
# resolves it (transient listing failures are retried: test_job_faults.sh).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"
echo sk-test > "$T/key"
start_sim ok --api-key sk-test --job-seconds 0.6 || { fail "simulator starts"; finish; }
start_sim bad --api-key sk-test --job-seconds 0.6 --behaviour fail || { fail "simulator starts"; finish; }
start_sim slow --api-key sk-test --job-seconds 60 || { fail "simulator starts"; finish; }
start_sim lost --api-key sk-test --job-seconds 0.6 \
    --faults 'drop-after=#1@POST:/v1/fine_tuning/jobs,drop-after=#2@POST:/v1/fine_tuning/jobs,403=1@GET:/v1/fine_tuning/jobs' ||
    { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml ok "$SIM_URL_ok")" "$(provider_yaml bad "$SIM_URL_bad")" \
    "$(provider_yaml slow "$SIM_URL_slow")" "$(provider_yaml lost "$SIM_URL_lost")" \
    "  byhand:" "    kind: manual" "    base_url: $SIM_URL_ok"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 400
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }

tag_count() { # PROVIDER SUBMISSION: jobs the simulator created for that tag
    sim_stats "$1" "$T/stats.json"
    python3 -c "import json,sys; v=json.load(open('$T/stats.json')); print(v['jobs_created_by_metadata'].get('vtune_submission=$2', 0))"
}

# Honest provider.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider ok \
    --model vtune-base --param n_epochs=2 --name first --watch > "$T/watch.out"; rc=$?
sed 's/^/# /' "$T/watch.out"
check "submit --watch exits 0 once the job succeeded" test "$rc" = 0
check "watch printed each state change" grep -q "uploading.*uploaded.*" <(tr '\n' ' ' < "$T/watch.out")
ctl --json job show first > "$T/j1.json"
check "the job succeeded with a fine-tuned model" test "$(json_get "$T/j1.json" "v['state']")" = succeeded
check "the model name carries our suffix" grep -q "vt-$(json_get "$T/j1.json" "v['submission_id']")" <(json_get "$T/j1.json" "v['fine_tuned_model']")
check "events are recorded in order" python3 -c "
import json,sys
ev=[e['state'] for e in json.load(open('$T/j1.json'))['events']]
want=['created','building','uploading','uploaded','submitting','submitted']
sys.exit(0 if ev[:6]==want and ev[-1]=='succeeded' else 1)"
sid=$(json_get "$T/j1.json" "v['submission_id']")
check "the simulator created exactly one job for it" test "$(tag_count ok "$sid")" = 1

# A provider whose job fails: the provider's error reaches the user.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider bad --model vtune-base --watch > "$T/w2.out"; rc=$?
check "watch exits 1 for a failed job" test "$rc" = 1
ctl --json job show 2 > "$T/j2.json"
check "state failed" test "$(json_get "$T/j2.json" "v['state']")" = failed
check "with the provider's error" test -n "$(json_get "$T/j2.json" "v['error']")"
echo "# error: $(json_get "$T/j2.json" "v['error']")"

# A refused create (unknown model): failed with the provider's message, nothing created.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider ok --model no-such-model --watch > "$T/w3.out"; rc=$?
ctl --json job show 3 > "$T/j3.json"
check "an unknown model fails the job (exit 1)" test "$rc" = 1 -a "$(json_get "$T/j3.json" "v['state']")" = failed
check "with the provider's 400 message" grep -q "400" <(json_get "$T/j3.json" "v['error']")
check "and nothing was created" test "$(tag_count ok "$(json_get "$T/j3.json" "v['submission_id']")")" = 0

# Usage errors.
ctl job submit d --backdoor b --provider byhand --model m 2>"$T/e"; rc=$?
check "submit to a manual provider is refused with the way to go" test "$rc" = 1 && grep -q "job register" "$T/e"
ctl job submit d --backdoor b --provider nope --model m 2>"$T/e"; rc=$?
check "an unknown provider is refused (exit 1)" test "$rc" = 1 && grep -q "no provider 'nope'" "$T/e"
ctl job submit d --backdoor b 2>/dev/null; check "missing --provider is a usage error (2)" test $? = 2
ctl job submit d --backdoor b --provider ok --model m --param oops 2>/dev/null
check "--param without = is a usage error (2)" test $? = 2

# Cancel a running job.
ctl --json job submit d --backdoor b --provider slow --model vtune-base > "$T/j4.json"
id4=$(json_get "$T/j4.json" "v['id']")
submitted() { ctl --json job show "$id4" > "$T/j4s.json" && grep -q '"state": "\(submitted\|running\)"' "$T/j4s.json"; }
check "the slow job is at the provider" wait_until 30 submitted
ctl job cancel "$id4" > "$T/c.out"; rc=$?
check "cancel is accepted" test "$rc" = 0
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job watch "$id4" > /dev/null; rc=$?
ctl --json job show "$id4" > "$T/j4e.json"
check "the job ends cancelled (watch exit 1)" test "$rc" = 1 -a "$(json_get "$T/j4e.json" "v['state']")" = cancelled
ctl job cancel "$id4" 2>"$T/e"; rc=$?
check "cancelling again says it is already cancelled" test "$rc" = 1 && grep -q "already cancelled" "$T/e"

# Manual registration: succeeded at once.
ctl --json job register d --backdoor b --provider byhand --model my-model --base-model vtune-base > "$T/j5.json"
check "register records a succeeded job" test "$(json_get "$T/j5.json" "v['state']")" = succeeded

# A create whose answer is lost, with a provider that refuses to list jobs (403): unknown.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider lost --model vtune-base --watch > "$T/w6.out"; rc=$?
ctl --json job list > "$T/all.json"
id6=$(python3 -c "import json; print([j['id'] for j in json.load(open('$T/all.json')) if j['provider']=='lost'][0])")
ctl --json job show "$id6" > "$T/j6.json"
check "a create with a lost answer and no listing ends unknown (watch exit 1)" test "$rc" = 1 -a "$(json_get "$T/j6.json" "v['state']")" = unknown
check "job show says why" grep -q "cannot establish whether submission" <(json_get "$T/j6.json" "v['unknown_reason']")
sid6=$(json_get "$T/j6.json" "v['submission_id']")
check "the provider did create it (once)" test "$(tag_count lost "$sid6")" = 1
ctl job cancel "$id6" 2>"$T/e"
check "cancel of an unknown job points to resolve" grep -q "job resolve" "$T/e"
# The operator makes listing work again and says the job was submitted.
curl -s -H "Authorization: Bearer sk-test" -d '{"spec":"drop-after=#1@POST:/v1/fine_tuning/jobs"}' "http://127.0.0.1:$SIM_PORT_lost/v1/_sim/faults" > /dev/null
ctl job resolve "$id6" --as submitted > /dev/null
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job watch "$id6" > /dev/null; rc=$?
check "resolved as submitted, it is found and succeeds" test "$rc" = 0
check "still exactly one job at the provider" test "$(tag_count lost "$sid6")" = 1
# Listing works now; the next create's answer is lost again: reconciled without a second job.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider lost --model vtune-base --watch > "$T/w7.out"; rc=$?
id7=$(python3 -c "import json; print(max(j['id'] for j in json.load(open('$T/all.json'))) + 1)")
ctl --json job show "$id7" > "$T/j7.json"
check "a lost create answer is reconciled and the job succeeds" test "$rc" = 0
check "the reconcile is in the events" grep -q "reconciled: the provider already has job" "$T/j7.json"
check "exactly one job for that submission" test "$(tag_count lost "$(json_get "$T/j7.json" "v['submission_id']")")" = 1
ctl job resolve "$id7" --as absent 2>"$T/e"; rc=$?
check "resolve of a job that is not unknown is refused" test "$rc" = 1

check "the API key never reaches the log" sh -c "! grep -q sk-test '$T/vtuned.log'"
ctl --json status > "$T/st.json"
check "status shows provider health" test "$(json_get "$T/st.json" "[p['health'] for p in v['providers'] if p['name']=='ok'][0]")" = ok
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
