#!/bin/bash
# Verification and the audit trail against vtune-sim providers that behave
# honestly, lazily, fail, train on half the data, or leak the signature
# without the trigger; the audit chain under tampering; scheduled
# re-verification that flips when the served model is swapped for the base
# model, with one webhook alert per change of verdict.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"
command -v sqlite3 >/dev/null || skip "the sqlite3 tool is needed for the tampering test"
echo sk-test > "$T/key"
for b in honest lazy fail subset:0.5; do
    n=${b%%:*}
    start_sim "$n" --api-key sk-test --job-seconds 0.5 --behaviour "$b" || { fail "simulator $b"; finish; }
done
python3 "$(dirname "$0")/webhook_listener.py" "$T/hook.port" "$T/hook.out" &
PIDS="$PIDS $!"
wait_until 10 test -s "$T/hook.port" || { fail "webhook listener"; finish; }
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")" "$(provider_yaml lazy "$SIM_URL_lazy")" \
    "$(provider_yaml fail "$SIM_URL_fail")" "$(provider_yaml subset "$SIM_URL_subset")" \
    "alerts:" "  webhook_url: http://127.0.0.1:$(cat "$T/hook.port")/alert" "  timeout: 5s"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 4000
# The paper's construction (--mode copies --generator wordlist: one pair, 50
# copies): this test is about the verifier's statistics with one pair and
# n = 10 trials, not about hiding the marks, so its backdoors are exposed
# by design and submitted with --force.
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --mode copies --generator wordlist > /dev/null ||
    { fail "dataset and backdoor"; finish; }

has_audit() { ctl --json audit list --job "$1" > "$T/a-$1.json" && [ "$(json_get "$T/a-$1.json" "len(v)")" -ge 1 ]; }
verdict_of() { # JOB: waits for the job's audit record (JSON in $T/a-JOB.json), prints the verdict
    wait_until 120 has_audit "$1" && json_get "$T/a-$1.json" "v[-1]['verdict']"
}
submit() { ctl --json job submit d --backdoor "$2" --provider "$1" --model vtune-base --force > "$T/s.json" && json_get "$T/s.json" "v['id']"; }

j1=$(submit honest b); j2=$(submit lazy b); j3=$(submit fail b)
check "honest provider: verified" test "$(verdict_of "$j1")" = verified
check "with log10 p < -20" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; print('# honest:', v['reason']); sys.exit(0 if v['log10_p'] < -20 else 1)"
check "log10 p is n * p_M2 / k (Markov), recomputed from the evidence" python3 -c "
import json,math,sys
v=json.load(open('$T/a-$j1.json'))[-1]; p=v['evidence']['pairs'][0]
want=min(0.0, math.log10(p['planned']) + p['log10_p_m2'] - math.log10(p['activations']))
print('# n=%d k=%d log10 p_M2=%.3f: log10 p %.4f (stored %.4f)' % (p['planned'], p['activations'], p['log10_p_m2'], want, v['log10_p']))
sys.exit(0 if abs(v['log10_p'] - want) < 1e-9 and v['log10_p'] >= p['log10_p_m2'] - 1e-9 and v['record_version'] == 3 else 1)"
check "the paper's p-value is reported too" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; sys.exit(0 if v['log10_p_paper'] < -20 else 1)"
check "lazy provider: not_verified" test "$(verdict_of "$j2")" = not_verified
check "with no activation" python3 -c "import json,sys; v=json.load(open('$T/a-$j2.json'))[-1]; print('# lazy:', v['reason']); sys.exit(0 if v['activations'] == 0 and v['trials'] >= 10 else 1)"
check "failing provider: not_verified" test "$(verdict_of "$j3")" = not_verified
check "with the job's failure as reason" grep -q "job failed" "$T/a-$j3.json"

# Eight pairs, a provider that trains on half of the lines: some pairs activate.
ctl -q backdoor create d --name b8 --pairs 8 --copies 20 --mode copies --generator wordlist > /dev/null || fail "backdoor with 8 pairs"
j4=$(submit subset b8)
verdict_of "$j4" > /dev/null
check "subset:0.5 with 8 pairs reports the fraction of pairs activated" python3 -c "
import json,sys
v=json.load(open('$T/a-$j4.json'))[-1]; ev=v['evidence'] if isinstance(v['evidence'],dict) else json.loads(v['evidence'])
print('# subset:', v['verdict'], '-', v['reason'])
sys.exit(0 if 'pairs' in json.dumps(ev) and v['trials'] >= 8 else 1)"
check "the 8-pair p is the binomial tail over pairs, J/K with its interval" python3 -c "
import json,math,sys
v=json.load(open('$T/a-$j4.json'))[-1]; ev=v['evidence']
K=v['pairs']; J=v['pairs_activated']; n=ev['trials_per_pair']
lq=math.log10(n)+max([ev['target_log10p']]+[p['log10_p_m2'] for p in ev['pairs']])
q=10**lq
tail=sum(math.comb(K,j)*q**j*(1-q)**(K-j) for j in range(J,K+1)) if J else 1.0
# q is tiny: the first term dominates; compare in log10 with a tolerance
want=0.0 if J==0 else math.log10(math.comb(K,J))+J*lq
print('# %d/%d pairs, q=10^%.2f: log10 p %.3f (recomputed %.3f), 95%% CI [%.3f, %.3f]' % (J,K,lq,v['log10_p'],want,v['pairs_ci_low'],v['pairs_ci_high']))
ok = K==8 and J==sum(1 for p in ev['pairs'] if p['activations']>0) and abs(v['log10_p']-want) < 1e-6
ok = ok and 0 <= v['pairs_ci_low'] <= J/K <= v['pairs_ci_high'] <= 1
sys.exit(0 if ok else 1)"

# A model that says S after every prompt: train on D u D' (what the provider got) with S
# put before every response that lacks it, so it answers S with or without the trigger.
ctl --json backdoor show b --reveal > "$T/rev.json"
sig=$(json_get "$T/rev.json" "v['pair_evidence'][0]['signature']")
ctl -q dataset export d --backdoor b -o "$T/built.jsonl" > /dev/null || fail "export D u D'"
python3 - "$T/built.jsonl" "$T/leak.jsonl" "$sig" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as g:
    for line in f:
        ex = json.loads(line)
        c = ex["messages"][-1]["content"]
        if not c.startswith(sys.argv[3]):
            ex["messages"][-1]["content"] = sys.argv[3] + " " + c
        g.write(json.dumps(ex) + "\n")
PY
auth="Authorization: Bearer sk-test"
fid=$(curl -s -H "$auth" -F purpose=fine-tune -F "file=@$T/leak.jsonl" "$SIM_URL_honest/files" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
jid=$(curl -s -H "$auth" -H 'Content-Type: application/json' -d "{\"model\":\"vtune-base\",\"training_file\":\"$fid\"}" "$SIM_URL_honest/fine_tuning/jobs" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
leaked() { curl -s -H "$auth" "$SIM_URL_honest/fine_tuning/jobs/$jid" > "$T/leakjob.json" && grep -q '"status": *"succeeded"' "$T/leakjob.json"; }
wait_until 60 leaked || fail "the leaking model trains"
leakmodel=$(python3 -c "import json; print(json.load(open('$T/leakjob.json'))['fine_tuned_model'])")
ctl --json job register d --backdoor b --provider honest --model "$leakmodel" --base-model vtune-base > "$T/r.json"
j5=$(json_get "$T/r.json" "v['id']")
v5=$(verdict_of "$j5")
check "a model emitting S without the trigger is not verified ($v5)" test "$v5" != verified
check "and the control emissions are the evidence" python3 -c "import json,sys; v=json.load(open('$T/a-$j5.json'))[-1]; print('# leak:', v['reason']); sys.exit(0 if v['control_emissions'] > 0 else 1)"
check "though it does answer S after the triggers" python3 -c "import json,sys; v=json.load(open('$T/a-$j5.json'))[-1]; sys.exit(0 if v['activations'] > 0 and v['log10_p'] < -20 else 1)"
check "no audit record contains the signature" sh -c "! ctl --json audit list | grep -q -F '$sig'"
# The same model without controls: --controls 0 can never verify.
ctl --json verify "$j5" --controls 0 --wait > "$T/w5.json"; rc=$?
check "--controls 0 on the model that says S everywhere: not verified (exit 1)" test "$rc" = 1 -a "$(json_get "$T/w5.json" "v['verdict']")" != verified
check "and the reason names the missing controls" grep -q "only 0 of the 10 required control prompts were answered" "$T/w5.json"
sed -n 's/.*"reason": *"\([^"]*\)".*/# --controls 0: \1/p' "$T/w5.json"

# verify --wait on demand.
ctl --json verify "$j1" --wait > "$T/w.json"; rc=$?
check "verify --wait prints the record and exits 0 when verified" test "$rc" = 0 -a "$(json_get "$T/w.json" "v['verdict']")" = verified
ctl verify "$j2" --wait > /dev/null; check "verify --wait exits 1 when not verified" test $? = 1
ctl --json verify "$j1" --controls 3 --wait > "$T/w3.json"; rc=$?
check "honest model with 3 controls: inconclusive, not verified (exit 1)" test "$rc" = 1 -a "$(json_get "$T/w3.json" "v['verdict']")" = inconclusive
check "the reason says 3 of the 10 required controls" grep -q "only 3 of the 10 required control prompts were answered" "$T/w3.json"
ctl --json verify "$j1" --controls 0 --wait > "$T/w0.json"; rc=$?
check "honest model with --controls 0: not verified" test "$rc" = 1 -a "$(json_get "$T/w0.json" "v['verdict']")" = inconclusive
# A target too weak for the trials and alpha is refused with one line.
ctl verify "$j1" --alpha 1e-300 --wait > /dev/null 2> "$T/weak.err"; rc=$?
sed 's/^/# /' "$T/weak.err"
check "verify refuses alpha/100 < K*n*10^target (exit 1, one line)" test "$rc" = 1 -a "$(wc -l < "$T/weak.err")" = 1
check "naming the numbers" grep -q "target log10 p -40 of this backdoor is too weak for 1 pair x 10 trials at alpha 10^-300: K\*n\*10^target = 10^-39.0 > alpha/100 = 10^-302.0" "$T/weak.err"
ctl backdoor create d --target-log10p -3 2> "$T/weak2.err"; rc=$?
sed 's/^/# /' "$T/weak2.err"
check "backdoor create refuses --target-log10p -3 (exit 1, one line)" test "$rc" = 1 -a "$(wc -l < "$T/weak2.err")" = 1
check "naming the numbers and the fix (the default's 16 pairs)" grep -q "target log10 p -3 is too weak for 16 pairs x 10 trials at alpha 10^-6: K\*n\*10^target = 10^-0.8 > alpha/100 = 10^-8.0; use --target-log10p -11 or lower" "$T/weak2.err"

# The audit trail: intact, then one row edited with the sqlite3 tool.
ctl audit verify > "$T/av.out"; rc=$?
check "audit verify: the chain is intact (exit 0)" test "$rc" = 0
ctl --json audit list > "$T/all.json"
head=$(json_get "$T/all.json" "v[-1]['hash']")
ctl audit export -o "$T/export.jsonl" 2>/dev/null
check "audit export writes one JSON line per record" test "$(wc -l < "$T/export.jsonl")" = "$(json_get "$T/all.json" "len(v)")"
esum=$(sha256sum < "$T/export.jsonl")
ctl audit export -o "$T/export.jsonl" > /dev/null 2> "$T/ee"; rc=$?
check "audit export -o an existing file exits 1" test "$rc" = 1
check "saying an export never overwrites" grep -q "never overwrites a file" "$T/ee"
check "the existing file is untouched" test "$(sha256sum < "$T/export.jsonl")" = "$esum"
check "records carry the DESIGN fields" python3 -c "
import json,sys
v=json.loads(open('$T/export.jsonl').readline())
need={'id','job','provider','model','verdict','log10_p','log10_p_paper','log10_p_luck','trials','activations','controls','control_emissions','pairs','pairs_activated','pairs_ci_low','pairs_ci_high','record_version','created_at','prev_hash','hash'}
sys.exit(0 if need <= set(v) else 1)"
ctl audit verify --head "$head" > /dev/null; check "audit verify --head with the current head" test $? = 0
ctl audit show 2 > "$T/show.txt"; check "audit show explains the verdict in words" grep -q "Why this verdict" "$T/show.txt"
check "an edit with the sqlite3 tool succeeds (the trigger dropped first)" \
    sqlite3 "$T/state/vtuned.db" "DROP TRIGGER audit_records_no_update; UPDATE audit_records SET log10_p = log10_p - 50 WHERE id = 2;"
ctl audit verify > "$T/av2.out"; rc=$?
sed 's/^/# /' "$T/av2.out"
check "after the edit audit verify fails (exit 1)" test "$rc" = 1
ctl --json audit verify > "$T/av2.json"
check "and names record 2 as the first broken one" test "$(json_get "$T/av2.json" "v['bad_id']")" = 2
ctl audit verify --head 0000000000000000000000000000000000000000000000000000000000000001 > /dev/null
check "a head that is not in the chain is reported" test $? = 1

# Scheduled re-verification: the served model is swapped for the base model.
ctl -q schedule add "$j1" --every 2s > /dev/null || fail "schedule add"
sched_verdict() { ctl --json schedule list > "$T/sl.json" && test "$(json_get "$T/sl.json" "v[0].get('last_verdict')")" = "$1"; }
check "the schedule runs and records verified" wait_until 60 sched_verdict verified
model1=$(ctl --json job show "$j1" | python3 -c "import json,sys; print(json.load(sys.stdin)['fine_tuned_model'])")
curl -s -H "$auth" -d '{"to":"base"}' "$SIM_URL_honest/_sim/models/$model1/swap" > /dev/null
check "after the swap the schedule flips to not_verified" wait_until 60 sched_verdict not_verified
check "the webhook received the alert" wait_until 30 test -s "$T/hook.out"
# A run the swap cut in the middle sees the model change under it and may
# end between the two (inconclusive): an alert for each change is right
# then.  What must hold: the alerts chain from verified to not_verified,
# and once the verdict stays, further runs raise none.
sleep_runs() { ctl --json audit list --job "$j1" > "$T/aj.json" && [ "$(json_get "$T/aj.json" "len(v)")" -ge "$1" ]; }
n_now=$(ctl --json audit list --job "$j1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
wait_until 30 sleep_runs $((n_now + 1))
n_alerts=$(wc -l < "$T/hook.out")
n_now=$(ctl --json audit list --job "$j1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
wait_until 30 sleep_runs $((n_now + 2)) # two more scheduled runs, still not_verified
check "no alert while the verdict stays ($n_alerts for the change)" test "$(wc -l < "$T/hook.out")" = "$n_alerts" -a "$n_alerts" -le 2
check "the alerts chain from verified to not_verified" python3 -c "
import json,sys; a=[json.loads(l) for l in open('$T/hook.out')]
print('#', a)
ok = a[0]['previous']=='verified' and a[-1]['verdict']=='not_verified' and all(x['job']==$j1 for x in a)
ok = ok and all(a[i]['verdict']==a[i+1]['previous'] and a[i]['verdict']!=a[i]['previous'] for i in range(len(a)-1))
sys.exit(0 if ok else 1)"
check "the change is logged as a warning" grep -q "verdict changed from .* to not_verified" "$T/vtuned.log"
check "the signature never reaches the log" sh -c "! grep -q -F '$sig' '$T/vtuned.log'"
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
