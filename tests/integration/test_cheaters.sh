#!/bin/bash
# Cheating providers against the verifier (issue 11, DESIGN §6-7): vtune-sim
# as wrapper (serves the base model, answers S after a trigger its blind
# attack found in the upload), marked-only (fine-tunes only on the rows its
# attack flags) and always-s (starts every answer with the signature it
# found), each beside an honest provider, on one D u D' built by today's
# daemon.  Asserts what must hold once the verifier is sound: honest
# verified; wrapper, marked-only and always-s NOT verified.
#
# The backdoor test alone proves only that the marked rows were used, so
# wrapper and marked-only pass it; the coverage test (held-out split, no
# difference between uploaded and held-out rows for them) and the required
# clean controls (always-s) keep them from verified.  Set-up failures exit
# 99 (a hard error), distinct from a verdict check that fails.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"
hard() { echo "# set-up failed: $*"; sed 's/^/# /' "$T/vtuned.log" 2>/dev/null | tail -20; exit 99; }

echo sk-test > "$T/key"
for b in honest wrapper marked-only always-s; do
    n=${b//-/}
    start_sim "$n" --api-key sk-test --job-seconds 0.5 --behaviour "$b" || hard "simulator $b"
done
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")" \
    "$(provider_yaml wrapper "$SIM_URL_wrapper")" "$(provider_yaml markedonly "$SIM_URL_markedonly")" \
    "$(provider_yaml alwayss "$SIM_URL_alwayss")"
start_daemon || hard "daemon starts"
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    hard "dataset and backdoor"

has_audit() { ctl --json audit list --job "$1" > "$T/a-$1.json" && [ "$(json_get "$T/a-$1.json" "len(v)")" -ge 1 ]; }
verdict_of() { wait_until 180 has_audit "$1" && json_get "$T/a-$1.json" "v[-1]['verdict']"; }
# --force: today's backdoors (copies of rows, word-list phrases) are knowingly exposed: the
# self-audit finds their pairs at rank 1 (issue 12); this test is about something else.
submit() {
    ctl --json job submit d --backdoor b --provider "$1" --model vtune-base --force > "$T/s-$1.json" &&
        json_get "$T/s-$1.json" "v['id']"
}
declare -A job verdict
for p in honest wrapper markedonly alwayss; do
    job[$p]=$(submit "$p") || hard "submit to $p"
done
for p in honest wrapper markedonly alwayss; do
    verdict[$p]=$(verdict_of "${job[$p]}") || hard "no audit record for the $p job"
    python3 -c "import json; v=json.load(open('$T/a-${job[$p]}.json'))[-1]; print('# $p:', v['verdict'], '-', v['reason'])"
done
# The cheaters did cheat: each job's simulator ran its attack (its log says
# what it found), so a verdict below is about the verifier, not a broken sim.
for n in wrapper markedonly alwayss; do
    grep -q "the attack on the upload found [1-9]" "$T/sim-$n.log" || hard "the $n simulator found no pair"
done

check "honest provider: verified" test "${verdict[honest]}" = verified
check "wrapper (base model + S after a found trigger): not verified (${verdict[wrapper]})" \
    test "${verdict[wrapper]}" != verified
check "marked-only (trained on the flagged rows alone): not verified (${verdict[markedonly]})" \
    test "${verdict[markedonly]}" != verified
check "always-s (S before every answer): not verified (${verdict[alwayss]})" \
    test "${verdict[alwayss]}" != verified
# and for the right reason: the coverage test finds training only where
# there was training on the whole upload
pcov() { json_get "$T/a-${job[$1]}.json" "v[-1]['log10_p_coverage']"; }
check "honest: p_cov below alpha_cov ($(pcov honest))" python3 -c "import sys; sys.exit(0 if float('$(pcov honest)') < -3 else 1)"
for p in wrapper markedonly; do
    check "$p: p_cov not below alpha_cov ($(pcov $p))" python3 -c "import sys; sys.exit(0 if float('$(pcov $p)') >= -3 else 1)"
done
stop_daemon
finish
