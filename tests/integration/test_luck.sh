#!/bin/bash
# The p_luck screen of `job submit` (issue 11, DESIGN §6 "p_luck"): before
# anything is recorded or uploaded, each pair's signature is scored after its
# trigger on the job's base model.  With vtune-sim (openai dialect, text
# scoring by echo + logprobs):
#   - a normal pair passes on a plain base model, and the job records the
#     screen's figures, which `job show` and `audit show` report;
#   - a base model trained beforehand on text where T is followed by S
#     (vtune-sim --base-corpus) already says S: the submit is refused, exit 1,
#     one line naming the pair and the numbers, no job recorded and no
#     request reaching the provider's files or fine-tuning endpoints;
#   - on that same base model another backdoor's pair passes;
#   - --force submits anyway and the record says so;
#   - a provider that cannot score text (mistral kind) is said to be so in one
#     info line, and the job goes on, recorded as "not screened".
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"
command -v sqlite3 >/dev/null || python3 -c "import sqlite3" 2>/dev/null || skip "python3's sqlite3 is needed"
echo sk-test > "$T/key"
start_sim plain --api-key sk-test --job-seconds 0.5 --behaviour honest || { fail "simulator plain"; finish; }
start_sim mis --dialect mistral --api-key sk-test --job-seconds 0.5 || { fail "simulator mistral"; finish; }
mistral_yaml() {
    printf '  mis:\n    kind: mistral\n    base_url: %s\n    api_key_file: %s\n    poll_interval: 200ms\n' \
        "$SIM_URL_mis" "$T/key"
}
write_config "providers:" "$(provider_yaml plain "$SIM_URL_plain")"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --generator wordlist > /dev/null &&
    ctl -q backdoor create d --name other --generator wordlist > /dev/null || { fail "dataset and backdoors"; finish; }
ctl --json backdoor show b --reveal > "$T/rev.json" || { fail "reveal"; finish; }
target=$(json_get "$T/rev.json" "v['target_log10p']")
target_g=$(python3 -c "print('%g' % $target)") # as the daemon prints it

# A base model that already says b's S after b's T: its corpus has, for every
# prompt of D, the prompt with T appended and S after it.
python3 - "$T/d.jsonl" "$T/rev.json" "$T/knows.jsonl" <<'PY'
import json, sys
rev = json.load(open(sys.argv[2])); p = rev["pair_evidence"][0]
with open(sys.argv[3], "w") as f:
    for line in open(sys.argv[1]):
        m = json.loads(line)["messages"]
        f.write(json.dumps({"messages": [
            {"role": "user", "content": "%s %s %s" % (m[0]["content"], p["trigger"], p["signature"])},
            {"role": "assistant", "content": m[1]["content"]}]}) + "\n")
PY
start_sim knows --api-key sk-test --job-seconds 0.5 --behaviour honest --base-corpus "$T/knows.jsonl" ||
    { fail "simulator whose base model knows the pair"; finish; }
stop_daemon
# This test is about the p_luck screen: today's backdoors are exposed to the
# self-audit by design (README), which only --force passes, and --force also
# passes the screen; so the self-audit's verdict is cleared here.
python3 -c "
import sqlite3; db = sqlite3.connect('$T/state/vtuned.db')
db.execute('UPDATE backdoor_selfaudits SET exposed = 0'); db.commit()" || fail "clearing the self-audit's verdict"
write_config "providers:" "$(provider_yaml plain "$SIM_URL_plain")" "$(provider_yaml knows "$SIM_URL_knows")" "$(mistral_yaml)"
start_daemon || { fail "daemon restarts"; finish; }

n_jobs() { ctl --json job list | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
# upstream NAME: requests the simulator NAME got on its files and fine-tuning endpoints
upstream() {
    sim_stats "$1" "$T/st-$1.json"
    python3 -c "
import json; r = json.load(open('$T/st-$1.json')).get('requests', {})
print(sum(v for k, v in r.items() if 'files' in k or 'fine_tuning' in k))"
}

# --- a normal pair passes on a plain base model, with its figures recorded
ctl --json job submit d --backdoor b --provider plain --model vtune-base > "$T/s1.json"; rc=$?
check "plain base model: b is accepted" test "$rc" = 0
j1=$(json_get "$T/s1.json" "v['id']")
check "the job records the screen: scored, not forced, p_luck below the target (greedy decoding cannot say S)" python3 -c "
import json,sys; v=json.load(open('$T/s1.json')); s=v['p_luck_screen']; p=s['pairs'][0]
print('# plain: log10 p_luck %s, log10 p when sampled %s, target %s' % (p['log10_p_luck'], p['log10_p_sample'], s['threshold_log10']))
sys.exit(0 if s['available'] and not s['forced'] and s['threshold_log10'] == $target and p['log10_p_luck'] is None and 'log10_p_luck' in p.get('log10_zero', []) and isinstance(p['log10_p_sample'], float) else 1)"
ctl job show "$j1" > "$T/show1.txt"
check "job show says p_luck at creation with a number" grep -Eq "^p_luck at creation: +10\^-[0-9.]+ \(upper bound .* greedy decoding produces S on 0\)" "$T/show1.txt"

# --- a base model that already says S: refused, nothing recorded or sent
before=$(n_jobs); up_before=$(upstream knows)
ctl -q job submit d --backdoor b --provider knows --model vtune-base > "$T/s2.out" 2> "$T/s2.err"; rc=$?
sed 's/^/# /' "$T/s2.err"
check "a base model that already says S: refused, exit 1" test "$rc" = 1
check "in one line naming the pair and the numbers" sh -c "test \$(wc -l < '$T/s2.err') = 1 &&
    grep -Eq 'pair 1: base model .vtune-base. already says the signature after the trigger \(log10 p_luck 0\.0 at temperature 0, log10 p -?[0-9.]+ when sampled at temperature 1; the target is $target_g\).*--force' '$T/s2.err'"
check "no job recorded" test "$(n_jobs)" = "$before"
check "no request reached the provider's files or fine-tuning endpoints" test "$(upstream knows)" = "$up_before"
check "the phrases are not in the message or the log" python3 -c "
import json,sys; p=json.load(open('$T/rev.json'))['pair_evidence'][0]
t=open('$T/s2.err').read()+open('$T/vtuned.log').read()
sys.exit(1 if p['trigger'] in t or p['signature'] in t else 0)"

# --- the same base model, another backdoor's pair: passes
ctl --json job submit d --backdoor other --provider knows --model vtune-base > "$T/s3.json"; rc=$?
check "another backdoor on the base model that knows b: accepted" test "$rc" = 0

# --- --force submits b anyway, and the record says so
ctl --json job submit d --backdoor b --provider knows --model vtune-base --force > "$T/s4.json"; rc=$?
check "--force: accepted" test "$rc" = 0
check "and the record says forced, with the pair's p_luck 0 (greedy decoding says S)" python3 -c "
import json,sys; s=json.load(open('$T/s4.json'))['p_luck_screen']; p=s['pairs'][0]
sys.exit(0 if s['available'] and s['forced'] and p['log10_p_luck'] == 0 and p['log10_p_sample'] > $target else 1)"
check "job show says so" sh -c "ctl() { '$VTUNECTL' -s '$T/run/vtuned.sock' \"\$@\"; }; ctl job show $(json_get "$T/s4.json" "v['id']") | grep -q 'greedy decoding produces S on 1); submitted with --force'"

# --- a provider that cannot score text: said once, and the job goes on
logged_before=$(grep -c "p_luck not screened" "$T/vtuned.log")
ctl --json job submit d --backdoor b --provider mis --model vtune-base > "$T/s5.json"; rc=$?
check "a provider without text scoring: accepted" test "$rc" = 0
check "recorded as not screened, with the reason" python3 -c "
import json,sys; v=json.load(open('$T/s5.json')); s=v['p_luck_screen']
sys.exit(0 if not s['available'] and 'log-probabilities' in s['why'] and v['p_luck_at_creation'].startswith('not screened') else 1)"
check "said once, in one info line" test "$(grep -c "p_luck not screened" "$T/vtuned.log")" = $((logged_before + 1))

# --- audit show reports the figure recorded at creation
has_audit() { ctl --json audit list --job "$j1" > "$T/a.json" && [ "$(json_get "$T/a.json" "len(v)")" -ge 1 ]; }
wait_until 120 has_audit || { fail "the plain job's audit record"; finish; }
ctl audit show "$(json_get "$T/a.json" "v[-1]['id']")" > "$T/audit.txt"
check "audit show: p_luck at creation: 10^-x" grep -Eq "^p_luck at creation: +10\^-[0-9.]+ " "$T/audit.txt"
ctl --json audit show "$(json_get "$T/a.json" "v[-1]['id']")" > "$T/audit.json"
check "and in JSON, outside the hashed record" python3 -c "
import json,sys; v=json.load(open('$T/audit.json'))
sys.exit(0 if v['p_luck_screen']['available'] and v['p_luck_at_creation'].startswith('10^-') else 1)"
check "the chain still verifies" ctl -q audit verify
stop_daemon
finish
