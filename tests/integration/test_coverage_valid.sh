#!/bin/bash
# The coverage p-value holds against a cheating provider (DESIGN §6: a
# p-value we print must hold whatever the model does), without a daemon:
# tests/sim/mark_check --coverage builds D u D' the way `backdoor create`
# does (the paper's construction, --mode copies --generator wordlist, so
# the blind attack finds the marked rows), trains vtune-sim's model the way
# its marked-only cheater does (the flagged rows alone) and runs the
# coverage test as the verifier does (the defaults: 64 rows a side in the
# keyed order, looks at 16/32/64 with the Bonferroni factor).  Where the
# attack flags exactly the marked rows, that model is a function of the
# marks alone: the null hypothesis holds, and a valid p_cov is at most a in
# at most a share a of the runs.  (A run whose model learnt a sampled
# uploaded row is not null; mark_check counts those apart, "h0_runs" are
# the others.  In the 200 runs here there is none.)
#  - 200 seeded runs on one dataset (vtune-sim --write-dataset
#    --dataset-seed 5, 3,000 rows, as test_cheaters.sh): for a = 0.1, 0.01
#    and alpha_coverage's default 0.001, the runs with p_cov <= a, over all
#    runs and over the null runs, stay within what Binomial(runs, a)
#    exceeds with probability below 1e-6 (README has the rates measured
#    over thousands of seeds: conservative, from the ties and the
#    Bonferroni factor).  This catches a gross loss of level only: a
#    mutation that left the copies' sources in the reference pool stayed
#    within the bounds;
#  - its power: the honest model (trained on the whole upload) has p_cov
#    below alpha_coverage in at least 18 of 20 runs, so the first check is
#    not met by a test that never finds anything.
# The runs are seeded, so the result is the same on every machine.
. "$(dirname "$0")/lib.sh"
MC="$top_builddir/tests/sim/mark_check"
[ -x "$MC" ] || skip "tests/sim/mark_check is not built"
run() { "$MC" --dataset-rows 3000 --dataset-seed 5 --mode copies --generator wordlist --coverage \
    --base-cache "$T/base.lm" --dir "$T" "$@"; }

run --seeds 1-200 > "$T/marked.jsonl" || { fail "mark_check --coverage (marked-only)"; finish; }
tail -1 "$T/marked.jsonl" | sed 's/^/# /'
check "marked-only: most runs are under the null (the model learnt no sampled row)" python3 - "$T/marked.jsonl" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
# every build has a marked-only model (the attack flags the copies) and
# most runs are null
assert s["coverage_runs"] == 200 and s["h0_runs"] >= 180, s
PY
for a in 0.1 0.01 alpha_cov; do
    check "marked-only: p_cov <= $a no more often than a valid p-value allows" python3 - "$T/marked.jsonl" "$a" <<'PY'
import json, math, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
a = {"0.1": 0.1, "0.01": 0.01, "alpha_cov": 0.001}[sys.argv[2]]
def bound(n):
    """the smallest c with P(Binomial(n, a) > c) < 1e-6"""
    tail, c = 1.0, -1
    while tail >= 1e-6:
        c += 1
        tail -= math.comb(n, c) * a**c * (1 - a) ** (n - c)
    return c
bad = []
for what, n, k in (("null", s["h0_runs"], s["h0_p_cov_at_most_" + sys.argv[2]]),
                   ("all", s["coverage_runs"], s["p_cov_at_most_" + sys.argv[2]])):
    c = bound(n)
    print(f"# {what}: {k} of {n} runs at p_cov <= {a} (a valid test exceeds {c} with probability < 1e-6)")
    if k > c:
        bad.append((what, k, c))
assert not bad, bad
PY
done

run --seeds 1-20 --honest > "$T/honest.jsonl" || { fail "mark_check --coverage --honest"; finish; }
tail -1 "$T/honest.jsonl" | sed 's/^/# /'
check "honest: p_cov below alpha_coverage in at least 18 of 20 runs" python3 - "$T/honest.jsonl" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
assert s["runs"] == 20 and s["honest_p_cov_below_alpha_cov"] >= 18, s
PY
finish
