#!/bin/bash
# Marked rows that do not stand out (issue 12 item 6), without a daemon:
# tests/sim/mark_check builds D u D' the way `backdoor create` does and
# runs vtune-sim's blind attack (what the wrapper and marked-only
# providers act on), the self-audit and vtune-sim's honest learning on it.
#  - the default construction (ngram, in place, 16 pairs of one marked row):
#    in 20 seeded runs the attack recovers no pair and flags no marked row
#    (so wrapper has no trigger to answer and marked-only no row to train
#    on), the self-audit exposes none, and the honest model learns enough
#    pairs for p < 1e-6 with clean controls in every run, all 16 of them
#    (no trigger ends with words other prompts end with: before that check
#    13 to 16, median 15); the base-model perplexity attack (a pair's marked
#    row within the top 10 rows) exposes at most 5 of the 20 (measured 4
#    here, and 8 of 60 over seeds 21-80, about 1 in 8: README), where on
#    order 1's word salad it exposes at least 15 (measured 19: it is not
#    blind) and at order 2 9 of 20;
#  - the integration tests' templated dataset (--dataset sums, 300 rows
#    "What is a plus b?"): the honest model is verified in all of 50 seeded
#    runs, with the verifier's own controls (its plan, its max_tokens, any S
#    anywhere is an emission) never emitting;
#  - two rows per pair (8 x 2, in place): the attack, which counts pairs
#    in two rows or more exactly, recovers at least 150 of the 160 pairs
#    (measured 159) and flags marked rows in every run, and the self-audit
#    calls every run exposed; one pair in 50 rows in place: the attack
#    recovers it in all 20 (its long suffixes);
#  - the paper's construction (--mode copies --generator wordlist): the
#    same attack recovers the pair and the self-audit and the perplexity
#    attack flag it, in every one of 3 runs (the attacks are not blind to
#    what they should find).
# End-to-end runs of the same through the daemon: test_cheaters.sh.
. "$(dirname "$0")/lib.sh"
MC="$top_builddir/tests/sim/mark_check"
[ -x "$MC" ] || skip "tests/sim/mark_check is not built"

"$MC" --dataset-rows 2000 --seeds 1-20 --honest --base-cache "$T/base.lm" --dir "$T" > "$T/default.jsonl" ||
    { fail "mark_check on the default construction"; finish; }
sed 's/^/# /' "$T/default.jsonl" | tail -3
sum() { python3 -c "import json,sys; s=[json.loads(l) for l in open(sys.argv[1])][-1]; print(s[sys.argv[2]])" "$1" "$2"; }
check "default: 20 runs" test "$(sum "$T/default.jsonl" runs)" = 20
check "default: the attack recovers no pair in 20 runs" test "$(sum "$T/default.jsonl" pairs_recovered_by_attack)" = 0
check "default: it flags no marked row in any run (marked-only trains on nothing of ours)" \
    test "$(sum "$T/default.jsonl" runs_with_marked_rows_flagged)" = 0
check "default: the self-audit exposes no run" test "$(sum "$T/default.jsonl" selfaudit_exposed_runs)" = 0
check "default: the honest model is verified (p < 1e-6, clean controls) in all 20" \
    test "$(sum "$T/default.jsonl" honest_verified_runs)" = 20
check "default: each run is 16 pairs of 1 row marked in place (|D| - |H| lines)" python3 - "$T/default.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if '"seed"' in l]
assert all(r["pairs"] == 16 and r["marked_per_pair"] == 1 and r["lines"] == 2000 - 64 for r in runs), runs[0]
PY
check "default: the honest model learns all 16 pairs in every run" python3 - "$T/default.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if '"seed"' in l]
bad = [(r["seed"], r["honest_learnt"]) for r in runs if r["honest_learnt"] != 16]
assert not bad, bad
PY
check "default: the perplexity attack exposes at most 5 of 20 runs" \
    test "$(sum "$T/default.jsonl" ppl_exposed_runs)" -le 5
"$MC" --dataset-rows 2000 --seeds 1-20 --order 1 --ppl --base-cache "$T/base.lm" --dir "$T" > "$T/order1.jsonl" ||
    { fail "mark_check at order 1"; finish; }
check "order 1 (word salad): the perplexity attack exposes at least 15 of 20 runs" \
    test "$(sum "$T/order1.jsonl" ppl_exposed_runs)" -ge 15

# Two rows per pair (8 x 2): a blind attack that counts every pair exactly
# finds them all; the self-audit must say so in every run (before its long
# pairs were counted exactly, its bounded table swept most of them out: 5-10
# of 20 exposed).  One pair in 50 rows, in place: the attack's long
# suffixes find it although its short ends are D's own (14 of 20 without).
"$MC" --dataset-rows 2000 --seeds 1-20 --pairs 8 --copies 2 --dir "$T" > "$T/8x2.jsonl" ||
    { fail "mark_check at 8 x 2"; finish; }
check "8 x 2: the attack recovers at least 150 of the 160 pairs" \
    test "$(sum "$T/8x2.jsonl" pairs_recovered_by_attack)" -ge 150
check "8 x 2: it flags marked rows in all 20 runs" test "$(sum "$T/8x2.jsonl" runs_with_marked_rows_flagged)" = 20
check "8 x 2: the self-audit exposes all 20 runs" test "$(sum "$T/8x2.jsonl" selfaudit_exposed_runs)" = 20
"$MC" --dataset-rows 2000 --seeds 1-20 --pairs 1 --copies 50 --dir "$T" > "$T/1x50.jsonl" ||
    { fail "mark_check at 1 x 50"; finish; }
check "1 x 50 in place: the attack recovers the pair in all 20 runs" \
    test "$(sum "$T/1x50.jsonl" pairs_recovered_by_attack)" = 20

"$MC" --dataset sums --dataset-rows 300 --seeds 1-50 --honest --base-cache "$T/base.lm" --dir "$T" > "$T/sums.jsonl" ||
    { fail "mark_check on the sums dataset"; finish; }
check "sums: 50 runs" test "$(sum "$T/sums.jsonl" runs)" = 50
check "sums: the honest model is verified (p < 1e-6, clean controls) in all 50" \
    test "$(sum "$T/sums.jsonl" honest_verified_runs)" = 50
check "sums: no verifier control emits a signature in 50 runs" test "$(sum "$T/sums.jsonl" controls_fired)" = 0
"$MC" --dataset-rows 2000 --seeds 1-3 --mode copies --generator wordlist --ppl --base-cache "$T/base.lm" --dir "$T" > "$T/copies.jsonl" ||
    { fail "mark_check on the copies construction"; finish; }
check "copies + wordlist: the attack recovers the pair in all 3 runs" test "$(sum "$T/copies.jsonl" pairs_recovered_by_attack)" = 3
check "copies + wordlist: the self-audit flags all 3" test "$(sum "$T/copies.jsonl" selfaudit_exposed_runs)" = 3
check "copies + wordlist: the perplexity attack exposes all 3" test "$(sum "$T/copies.jsonl" ppl_exposed_runs)" = 3
finish
