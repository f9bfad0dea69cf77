#!/bin/bash
# Cheating providers against the verifier (issue 11, DESIGN §6-7; issue 12
# item 6): vtune-sim as wrapper (serves the base model, answers S after a
# trigger its blind attack found in the upload), marked-only (fine-tunes
# only on the rows its attack flags) and always-s (starts every answer with
# the signature it found), each beside an honest provider, on two D u D'
# built by today's daemon:
#  1. the default construction (ngram phrases, 16 pairs of ONE row marked
#     in place, submitted without --force): the attack finds no pair at
#     all, so the cheaters have nothing to cheat with; honest verified,
#     the others not.  (20 seeds of the attack alone: test_marks.sh.)
#  2. the paper's construction (--mode copies --generator wordlist, exposed
#     by design, so --force): the attack finds the pairs, so wrapper and
#     marked-only pass the backdoor test; the coverage test (held-out split,
#     no difference between uploaded and held-out rows for them) and the
#     required clean controls (always-s) keep them from verified.
# The coverage test runs at alpha_coverage 1e-6 over up to 300 rows a side
# (--holdout 0.1), not the default 1e-3 over 64.  Its p-value is valid, so a
# cheater whose model learnt nothing of the unmarked rows still passes it
# with probability up to alpha_coverage, by design: with the defaults the
# check that marked-only is refused failed once in CI (p_cov 10^-3.96), and
# offline (tests/sim/mark_check --coverage, this dataset, README) it passed
# in 4 of 3,000 builds.  At these settings it passed in none of 1,000
# (smallest p_cov 0.87), and a valid p-value bounds it by one in a million
# per job; the honest jobs' p_cov is far below 1e-6 with 300 rows.  p_cov's
# level itself: test_coverage_valid.sh.
# Set-up failures exit 99 (a hard error), distinct from a verdict check
# that fails.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"
hard() { echo "# set-up failed: $*"; sed 's/^/# /' "$T/vtuned.log" 2>/dev/null | tail -20; exit 99; }

echo sk-test > "$T/key"
for b in honest wrapper marked-only always-s; do
    n=${b//-/}
    start_sim "$n" --api-key sk-test --job-seconds 0.5 --behaviour "$b" || hard "simulator $b"
done
write_config "verify:" "  coverage: 300" "  alpha_coverage: 1e-6" \
    "providers:" "$(provider_yaml honest "$SIM_URL_honest")" \
    "$(provider_yaml wrapper "$SIM_URL_wrapper")" "$(provider_yaml markedonly "$SIM_URL_markedonly")" \
    "$(provider_yaml alwayss "$SIM_URL_alwayss")"
start_daemon || hard "daemon starts"
"$VTUNE_SIM" --write-dataset "$T/d.jsonl" --examples 3000 --dataset-seed 5 > /dev/null || hard "dataset"
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || hard "dataset add"
ctl -q backdoor create d --name b --holdout 0.1 > /dev/null || hard "default backdoor"
ctl -q backdoor create d --name x --holdout 0.1 --mode copies --generator wordlist > /dev/null ||
    hard "copies backdoor"

has_audit() { ctl --json audit list --job "$1" > "$T/a-$1.json" && [ "$(json_get "$T/a-$1.json" "len(v)")" -ge 1 ]; }
verdict_of() { wait_until 180 has_audit "$1" && json_get "$T/a-$1.json" "v[-1]['verdict']"; }
# submit PROVIDER BACKDOOR [--force]
submit() {
    ctl --json job submit d --backdoor "$2" --provider "$1" --model vtune-base ${3:-} > "$T/s-$1-$2.json" &&
        json_get "$T/s-$1-$2.json" "v['id']"
}
declare -A job verdict
for p in honest wrapper markedonly alwayss; do
    job[$p-b]=$(submit "$p" b) || hard "submit b to $p (the default backdoor, without --force)"
    job[$p-x]=$(submit "$p" x --force) || hard "submit x to $p"
done
for k in "${!job[@]}"; do
    verdict[$k]=$(verdict_of "${job[$k]}") || hard "no audit record for the $k job"
    python3 -c "import json; v=json.load(open('$T/a-${job[$k]}.json'))[-1]; print('# $k:', v['verdict'], '-', v['reason'])"
done
# The simulators' logs: one attack line per cheating job (always-s and
# wrapper attack at inference, marked-only before training).
found() { grep -c "the attack on the upload found [1-9]" "$T/sim-$1.log"; }
for n in wrapper markedonly alwayss; do
    grep -q "the attack on the upload found" "$T/sim-$n.log" || hard "the $n simulator ran no attack"
done

# 1. The default construction.
check "default: honest provider verified" test "${verdict[honest-b]}" = verified
for p in wrapper markedonly alwayss; do
    check "default: $p not verified (${verdict[$p-b]})" test "${verdict[$p-b]}" != verified
done
check "default: the marked-only job found no row to train on and failed" \
    grep -q "marked-only: the attack flagged no row of the training file" "$T/sim-markedonly.log"

# 2. The paper's construction: the cheaters did cheat (each found pairs),
# so a verdict below is about the verifier, not a broken sim.
for n in wrapper markedonly alwayss; do
    [ "$(found "$n")" -ge 1 ] || hard "the $n simulator found no pair in the copies backdoor"
done
check "copies: honest provider verified" test "${verdict[honest-x]}" = verified
check "copies: wrapper (base model + S after a found trigger) not verified (${verdict[wrapper-x]})" \
    test "${verdict[wrapper-x]}" != verified
check "copies: marked-only (trained on the flagged rows alone) not verified (${verdict[markedonly-x]})" \
    test "${verdict[markedonly-x]}" != verified
check "copies: always-s (S before every answer) not verified (${verdict[alwayss-x]})" \
    test "${verdict[alwayss-x]}" != verified
# and for the right reason: the coverage test finds training only where
# there was training on the whole upload
pcov() { json_get "$T/a-${job[$1]}.json" "v[-1]['log10_p_coverage']"; }
for k in honest-b honest-x; do
    check "$k: p_cov below alpha_cov ($(pcov $k))" python3 -c "import sys; sys.exit(0 if float('$(pcov $k)') < -6 else 1)"
done
for k in wrapper-x markedonly-x; do
    check "$k: p_cov not below alpha_cov ($(pcov $k))" python3 -c "import sys; sys.exit(0 if float('$(pcov $k)') >= -6 else 1)"
done
stop_daemon
finish
