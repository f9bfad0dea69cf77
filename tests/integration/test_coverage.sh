#!/bin/bash
# The coverage test end to end (issue 11 item 3, DESIGN §6): a backdoor
# holds out a secret split; after training, uploaded and held-out rows are
# scored on the provider (completions echo + logprobs, laid out with the
# provider's score_template) and compared by an exact rank test.
#   - honest provider: p_cov < alpha_cov, AUC above 0.5, verified; the
#     audit record carries log10_p_coverage, coverage_auc, coverage_rows,
#     coverage_method at the top level (record version 3) and `audit show`
#     explains both tests;
#   - lazy provider (the base model): p_cov about 1, not verified;
#   - --holdout 0: no coverage test, so at best inconclusive, and the
#     reason says why; with verify.require_coverage: false the backdoor
#     test alone may verify (the reason says that too);
#   - verify --coverage 0 skips the test for one run (inconclusive);
#   - a scheduled re-verification runs both tests, on the same rows: the
#     records' evidence.coverage.rows_sha256 is the digest of the draw an
#     auditor recomputes from the reveal alone (commitment.py --draw).
# Verdicts are waited for with bounded loops, never with sleeps.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"

echo sk-test > "$T/key"
for b in honest lazy; do
    start_sim "$b" --api-key sk-test --job-seconds 0.5 --behaviour "$b" || { fail "simulator $b"; finish; }
done
PROVIDERS=("providers:" "$(provider_yaml honest "$SIM_URL_honest")" "$(provider_yaml lazy "$SIM_URL_lazy")")
write_config "${PROVIDERS[@]}"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || { fail "dataset"; finish; }
ctl --json backdoor create d --name b > "$T/b.json" || { fail "backdoor"; finish; }
ctl --json backdoor create d --name b0 --holdout 0 > "$T/b0.json" || { fail "backdoor --holdout 0"; finish; }
check "the default split holds out 2% of 4000 rows (80)" test "$(json_get "$T/b.json" "v['holdout']['rows']")" = 80
check "--holdout 0 holds out nothing" test "$(json_get "$T/b0.json" "v['holdout']['rows']")" = 0

has_audit() { ctl --json audit list --job "$1" > "$T/a-$1.json" && [ "$(json_get "$T/a-$1.json" "len(v)")" -ge "${2:-1}" ]; }
verdict_of() { wait_until 120 has_audit "$1" && json_get "$T/a-$1.json" "v[-1]['verdict']"; }
submit() { ctl --json job submit d --backdoor "$2" --provider "$1" --model vtune-base > "$T/s.json" && json_get "$T/s.json" "v['id']"; }
last() { json_get "$T/a-$1.json" "v[-1]$2"; }

j1=$(submit honest b) && j2=$(submit lazy b) && j3=$(submit honest b0) || { fail "submit the jobs"; finish; }

# --- honest: both tests pass
check "honest: verified" test "$(verdict_of "$j1")" = verified
python3 -c "import json; v=json.load(open('$T/a-$j1.json'))[-1]; print('# honest:', v['reason']); print('# honest: log10 p_cov %s, AUC %s, %s rows per side, %s' % (v['log10_p_coverage'], v['coverage_auc'], v['coverage_rows'], v['coverage_method']))"
check "honest: record version 3" test "$(last "$j1" "['record_version']")" = 3
check "honest: log10_p_coverage below log10 alpha_cov (-3)" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; sys.exit(0 if v['log10_p_coverage'] < -3 else 1)"
check "honest: coverage_auc above 0.5" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; sys.exit(0 if v['coverage_auc'] > 0.5 else 1)"
check "honest: coverage_rows and the method at the top level" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; sys.exit(0 if v['coverage_rows'] >= 8 and v['coverage_method'] == 'mink-diff' else 1)"
check "honest: the top-level fields agree with the evidence" python3 -c "
import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; c=v['evidence']['coverage']
sys.exit(0 if c['log10_p'] == v['log10_p_coverage'] and c['auc'] == v['coverage_auc'] and c['rows'] == v['coverage_rows'] and c['score_layout'] == 'template' else 1)"
a1=$(last "$j1" "['id']")
ctl audit show "$a1" > "$T/show.txt"
check "audit show explains both tests" grep -q "^Two tests:" "$T/show.txt"
check "audit show: the coverage test in words" grep -q "The coverage test (did the model learn the rest of your data?)" "$T/show.txt"
check "audit show: p_cov and the recognised shares" grep -q "uploaded and .* held-out rows were scored; recognised" "$T/show.txt"
ctl audit list > "$T/list.txt"
check "audit list has the LOG10 P_COV and AUC columns" grep -q "LOG10 P_COV.*AUC" "$T/list.txt"

# --- lazy: the base model cannot tell uploaded from held-out rows
check "lazy: not_verified" test "$(verdict_of "$j2")" = not_verified
python3 -c "import json; v=json.load(open('$T/a-$j2.json'))[-1]; print('# lazy:', v['reason'])"
check "lazy: p_cov about 1 (log10 > -1)" python3 -c "import json,sys; v=json.load(open('$T/a-$j2.json'))[-1]; sys.exit(0 if v['log10_p_coverage'] > -1 else 1)"

# --- --holdout 0: no coverage test, at best inconclusive
check "--holdout 0: inconclusive" test "$(verdict_of "$j3")" = inconclusive
python3 -c "import json; v=json.load(open('$T/a-$j3.json'))[-1]; print('# holdout 0:', v['reason'])"
check "--holdout 0: the reason names it" grep -q -- "--holdout 0" "$T/a-$j3.json"
check "--holdout 0: coverage fields null, 0 rows" python3 -c "import json,sys; v=json.load(open('$T/a-$j3.json'))[-1]; sys.exit(0 if v['log10_p_coverage'] is None and v['coverage_auc'] is None and v['coverage_rows'] == 0 and v['coverage_method'] is None else 1)"

# --- verify --coverage 0 skips the test for one run
ctl --json verify "$j1" --coverage 0 --wait > "$T/v0.json"
check "--coverage 0: inconclusive" test "$(json_get "$T/v0.json" "v['verdict']")" = inconclusive
check "--coverage 0: the reason says it was skipped" grep -q "coverage 0" "$T/v0.json"

# --- verify.require_coverage: false lets the backdoor test alone verify
write_config "${PROVIDERS[@]}" "verify:" "  require_coverage: false"
reloads() { grep -c "configuration reloaded" "$T/vtuned.log"; }
before=$(reloads)
kill -HUP "$DAEMON_PID"
reloaded() { [ "$(reloads)" -gt "$before" ]; }
wait_until 20 reloaded || fail "reload"
ctl --json verify "$j3" --wait > "$T/v3.json"
python3 -c "import json; v=json.load(open('$T/v3.json')); print('# holdout 0, not required:', v['verdict'], '-', v['reason'])"
check "--holdout 0 with require_coverage false: verified" test "$(json_get "$T/v3.json" "v['verdict']")" = verified
check "and the reason says the coverage test was waived" grep -q "require_coverage" "$T/v3.json"

# --- a scheduled re-verification runs both tests
has_audit "$j1" || fail "audit list"
n_before=$(json_get "$T/a-$j1.json" "len(v)")
ctl -q schedule add "$j1" --every 1s > /dev/null || fail "schedule add"
check "the scheduled run writes a record" wait_until 60 has_audit "$j1" $((n_before + 1))
check "the scheduled record has the coverage test (p_cov < alpha_cov)" python3 -c "import json,sys; v=json.load(open('$T/a-$j1.json'))[-1]; sys.exit(0 if v['coverage_rows'] > 0 and v['log10_p_coverage'] < -3 and v['verdict'] == 'verified' else 1)"
# The rows are the keyed draw: the committed salt fixes them before the
# upload, so every run scores the same rows and nobody can re-run until a
# draw suits them.  The record names them by a digest, which an auditor
# recomputes from the reveal alone (commitment.py --draw, README).
ctl --json backdoor show b --reveal > "$T/rev.json" || fail "reveal"
check "the scored rows are the committed draw (digest recomputed from the reveal), the same in every run" python3 - "$T/a-$j1.json" "$T/rev.json" "$(dirname "$0")" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
import commitment
recs = json.load(open(sys.argv[1])); rev = json.load(open(sys.argv[2]))
c0, c1 = recs[0]["evidence"]["coverage"], recs[-1]["evidence"]["coverage"]
want = commitment.draw_digest(rev, c0["drawn"])
print("# %d rows drawn per side, digest %s" % (c0["drawn"], want[:16]))
sys.exit(0 if c0["draw"] == c1["draw"] == "keyed" and c0["rows_sha256"] == c1["rows_sha256"] == want else 1)
PY
stop_daemon
finish
