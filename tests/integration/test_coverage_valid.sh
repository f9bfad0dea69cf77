#!/bin/bash
# The coverage p-value holds against a cheating provider (DESIGN §6: a
# p-value we print must hold whatever the model does), without a daemon:
# tests/sim/mark_check --coverage builds D u D' the way `backdoor create`
# does (the paper's construction, --mode copies --generator wordlist, so
# the blind attack finds the marked rows), trains vtune-sim's model the way
# its marked-only cheater does (the flagged rows alone) and runs the
# coverage test as the verifier does (64 rows a side, looks at 16/32/64
# with the Bonferroni factor).  Where that model learnt no sampled row, it
# is a function of the marks alone: the null hypothesis holds, and a valid
# p_cov is at most a in at most a share a of the runs.
#  - 200 seeded runs on one dataset (vtune-sim --write-dataset
#    --dataset-seed 5, 3,000 rows, as test_cheaters.sh): for a = 0.1, 0.01
#    and alpha_coverage's default 0.001, the runs with p_cov <= a stay
#    within what Binomial(runs, a) exceeds with probability below 1e-6
#    (measured with the default construction over 3,000 seeds: 2.8%, 0.37%
#    and 0.067%: conservative, from the ties and the Bonferroni factor);
#  - its power: the honest model (trained on the whole upload) has p_cov
#    below alpha_coverage in at least 18 of 20 runs (measured 50 of 50,
#    p_cov 10^-3.1 to 10^-8.3), so the first check is not met by a test
#    that never finds anything.
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
assert s["coverage_runs"] == 200 and s["h0_runs"] >= 180, s
PY
for a in 0.1 0.01 alpha_cov; do
    check "marked-only: p_cov <= $a no more often than a valid p-value allows" python3 - "$T/marked.jsonl" "$a" <<'PY'
import json, math, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
a = {"0.1": 0.1, "0.01": 0.01, "alpha_cov": 0.001}[sys.argv[2]]
n, k = s["h0_runs"], s["h0_p_cov_at_most_" + sys.argv[2]]
# the smallest c with P(Binomial(n, a) > c) < 1e-6
tail, c = 1.0, -1
while tail >= 1e-6:
    c += 1
    tail -= math.comb(n, c) * a**c * (1 - a) ** (n - c)
print(f"# {k} of {n} runs at p_cov <= {a} (a valid test exceeds {c} with probability < 1e-6)")
assert k <= c, (k, c)
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
