#!/bin/bash
# The base-model perplexity attack of `job submit` (issue 12 item 3,
# daemon/ppl.h), with vtune-sim, D being the simulator's ticket corpus:
#   - the paper's construction (--mode copies --generator wordlist: rare
#     dictionary words at the prompt's end and the answer's start) is found:
#     a pair within the top 10, so the submit is refused in one line naming
#     the pair, the rank and --force, exit 1, no job recorded, nothing sent
#     to the provider's files or fine-tuning endpoints; --force submits it
#     and the record says so;
#   - a default backdoor (in place, ngram phrases in D's own words) whose
#     pairs the attack does not find is submitted, and the job's record
#     (submit --json, job show) says where its best pair ranked.  Seed 6 is
#     one such backdoor: on this simulator most default backdoors are NOT
#     (README, Known limits: the n-gram phrases often read as word salad to
#     a base model; 5 of 8 seeds with 4 pairs were exposed when measured);
#   - the scoring is batched on the openai kind: the p_luck screen's pairs
#     take one request, the attack's rows one per 32, counted by the
#     simulator; the together kind (not known to take a prompt array) falls
#     back to one request per text and finds the same;
#   - a provider that cannot score text (mistral kind) gets one info line,
#     "not screened", and the job goes on.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"
echo sk-test > "$T/key"
start_sim s --api-key sk-test --job-seconds 0.5 || { fail "simulator starts"; finish; }
start_sim tog --dialect together --api-key sk-test --job-seconds 0.5 || { fail "simulator together"; finish; }
start_sim mis --dialect mistral --api-key sk-test --job-seconds 0.5 || { fail "simulator mistral"; finish; }
other_yaml() { # other_yaml KIND NAME URL
    printf '  %s:\n    kind: %s\n    base_url: %s\n    api_key_file: %s\n    poll_interval: 200ms\n' "$2" "$1" "$3" "$T/key"
}
write_config "providers:" "$(provider_yaml s "$SIM_URL_s")" "$(other_yaml together tog "$SIM_URL_tog")" \
    "$(other_yaml mistral mis "$SIM_URL_mis")" "verify:" "  perplexity_sample: 200"
start_daemon || { fail "daemon starts"; finish; }
# D: the simulator's fine-tuning corpus (support tickets: prose that the
# n-gram generator can imitate)
"$VTUNE_SIM" --write-dataset "$T/d.jsonl" --examples 2000 --dataset-seed 3 > /dev/null ||
    { fail "vtune-sim --write-dataset"; finish; }
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || { fail "dataset"; finish; }
ctl -q backdoor create d --name paper --pairs 4 --mode copies --generator wordlist --seed 2 > /dev/null 2>&1 ||
    { fail "the paper's backdoor"; finish; }
ctl -q backdoor create d --name dflt --pairs 4 --seed 6 > /dev/null 2>&1 || { fail "the default backdoor"; finish; }

n_jobs() { ctl --json job list | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
# requests NAME KEY: what the simulator NAME counted for endpoints matching KEY
requests() {
    sim_stats "$1" "$T/st-$1.json"
    python3 -c "
import json; r = json.load(open('$T/st-$1.json')).get('requests', {})
print(sum(v for k, v in r.items() if '$2' in k))"
}

# --- the paper's construction: refused.  The self-audit's own refusal comes
# first without --force (it finds this backdoor too), so the backdoor's
# stored verdict is cleared to reach the perplexity attack.
stop_daemon
python3 -c "
import sqlite3; db = sqlite3.connect('$T/state/vtuned.db')
db.execute('UPDATE backdoor_selfaudits SET exposed = 0'); db.commit()" || fail "clearing the stored self-audit"
start_daemon || { fail "daemon restarts"; finish; }
before=$(n_jobs); up_before=$(requests s files); ft_before=$(requests s fine_tuning)
ctl -q job submit d --backdoor paper --provider s --model vtune-base > "$T/p.out" 2> "$T/p.err"; rc=$?
sed 's/^/# /' "$T/p.err"
check "the paper's construction: refused, exit 1" test "$rc" = 1
check "in one line naming the pair, its rank and --force" sh -c "test \$(wc -l < '$T/p.err') = 1 &&
    grep -Eq 'backdoor [0-9]+ is exposed on base model .vtune-base.: the self-audit.s perplexity attack recovers pair [1-4] at about rank ([1-9]|10) of [0-9]+ rows \(within the top 10\).*--force' '$T/p.err'"
check "no job recorded" test "$(n_jobs)" = "$before"
check "nothing sent to the files or fine-tuning endpoints" \
    test "$(requests s files)" = "$up_before" -a "$(requests s fine_tuning)" = "$ft_before"

c0=$(requests s completions)
ctl --json job submit d --backdoor paper --provider s --model vtune-base --force > "$T/pf.json"; rc=$?
n_req=$(($(requests s completions) - c0))
check "--force: submitted" test "$rc" = 0
check "the record says exposed and forced, the pair within the top 10" python3 -c "
import json,sys; v=json.load(open('$T/pf.json')); a=v['perplexity_attack']
print('# paper: ranks %s of %s rows, sample %s, requests %s' % ([p['rank'] for p in a['pairs']], a['rows'], a['sample_scored'], a['requests']))
sys.exit(0 if a['available'] and a['exposed'] and a['forced'] and 1 <= a['exposed_rank'] <= 10
         and all(p['recovered'] for p in a['pairs']) and a['sample_scored'] == 200 and v['perplexity_attack_at_creation'].endswith('submitted with --force') else 1)"
# 4 pairs: the p_luck screen in 1 request; the attack's 200 sampled rows and
# 8 marked rows per pair (of 50) in chunks of 32: ceil(232 / 32) = 8
echo "# openai kind: $n_req completions requests for one submit"
check "batched: 1 request for the p_luck screen + 8 for the attack's 232 rows" python3 -c "
import json,sys; a=json.load(open('$T/pf.json'))['perplexity_attack']
texts = a['sample'] + sum(p['scored_rows'] for p in a['pairs'])
sys.exit(0 if texts == 232 and a['requests'] == 8 and $n_req == 1 + 8 else 1)"

# --- the together kind: one request per text, same finding
c0=$(requests tog completions)
ctl --json job submit d --backdoor paper --provider tog --model vtune-base --force > "$T/tf.json"; rc=$?
n_tog=$(($(requests tog completions) - c0))
echo "# together kind: $n_tog completions requests for one submit"
check "together: one request per text (4 pairs + 232 rows), the pair found all the same" python3 -c "
import json,sys; a=json.load(open('$T/tf.json'))['perplexity_attack']
sys.exit(0 if $rc == 0 and a['available'] and a['exposed'] and a['requests'] == 232 and $n_tog == 4 + 232 else 1)"

# --- a default backdoor that the attack does not find: submitted
ctl --json job submit d --backdoor dflt --provider s --model vtune-base > "$T/d.json"; rc=$?
[ "$rc" = 0 ] || ctl -q job submit d --backdoor dflt --provider s --model vtune-base 2>&1 | sed 's/^/# /'
check "the default construction (seed 6): submitted without --force" test "$rc" = 0
check "its record: scored, no pair within the top 10" python3 -c "
import json,sys; v=json.load(open('$T/d.json')); a=v['perplexity_attack']
print('# default: ranks %s of %s rows' % ([p['rank'] for p in a['pairs']], a['rows']))
sys.exit(0 if a['available'] and not a['exposed'] and not a['forced'] and a['exposed_pair'] is None
         and all(p['rank'] > 10 and p['scored_rows'] == 1 for p in a['pairs']) else 1)"
jd=$(json_get "$T/d.json" "v['id']")
ctl job show "$jd" > "$T/show.txt"
check "job show says the attack's line" \
    grep -Eq "^perplexity attack at creation: +no pair within the top 10 \(best pair at about rank [0-9]+ of 1936 rows; ranks estimated from 200 sampled rows\)" "$T/show.txt"

# --- a provider that cannot score text: one info line, not screened
logged=$(grep -c "perplexity attack not screened" "$T/vtuned.log")
ctl --json job submit d --backdoor dflt --provider mis --model vtune-base > "$T/m.json"; rc=$?
check "a provider without text scoring: submitted" test "$rc" = 0
check "recorded as not screened, with the reason" python3 -c "
import json,sys; v=json.load(open('$T/m.json')); a=v['perplexity_attack']
sys.exit(0 if not a['available'] and 'log-probabilities' in a['why'] and v['perplexity_attack_at_creation'].startswith('not screened') else 1)"
check "said once, in one info line" test "$(grep -c "perplexity attack not screened" "$T/vtuned.log")" = $((logged + 1))
finish
