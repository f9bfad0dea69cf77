#!/bin/bash
# The verifier's calibration, small and seeded (issue 11 item 5): the
# benchmark tests/bench/calibrate.sh run with N seeded end-to-end runs per
# provider behaviour, and its per-run records checked against what must hold
# whatever the provider does (DESIGN §6):
#   - an honest provider is verified in every run;
#   - lazy, failing, wrapper, marked-only and always-s providers are verified
#     in none;
#   - over the runs that are null for a test the empirical rate of a
#     significant p is at or below its alpha: the backdoor's p < alpha over
#     lazy runs (a model that never saw the upload; a wrapper did read the
#     upload and answers S after T by design, so it is not null for the
#     backdoor test), and p_cov < alpha_cov over lazy, wrapper and always-s
#     runs (each serves the base model, which never saw any row, so the
#     held-out split is a secret it cannot reflect).
# With alpha = 1e-6 and a handful of runs "at or below alpha" means none.
# The full table with more runs is a benchmark: tests/bench/calibrate.sh.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
N=${CALIBRATION_RUNS:-3}
bench="$top_srcdir/tests/bench/calibrate.sh"
[ -r "$bench" ] || skip "tests/bench/calibrate.sh is missing"
RESULTS="$T/runs.jsonl" ROWS=2000 DEADLINE=300 \
    bash "$bench" -d "$top_builddir" -n "$N" honest lazy fail wrapper marked-only always-s \
    > "$T/table.txt" 2>&1
rc=$?
sed 's/^/# /' "$T/table.txt"
check "calibrate.sh ran every run to an audit record (exit $rc)" test "$rc" = 0
check "it wrote one record per run" test "$(grep -c . "$T/runs.jsonl" 2>/dev/null)" = "$((N * 6))"

# count BEHAVIOUR PYTHON-CONDITION: runs of BEHAVIOUR whose record r meets it.
count() {
    python3 - "$T/runs.jsonl" "$1" "$2" <<'PY'
import json, math, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cond = eval("lambda r: " + sys.argv[3])
print(sum(1 for r in runs if r["behaviour"] == sys.argv[2] and cond(r)))
PY
}
check "honest: verified in all $N runs" test "$(count honest 'r["verdict"] == "verified"')" = "$N"
for b in lazy fail wrapper marked-only always-s; do
    check "$b: verified in none of $N runs" test "$(count "$b" 'r["verdict"] == "verified"')" = 0
done
sig_p='r["log10_p"] is not None and r["log10_p"] < -6'
sig_cov='r["log10_p_coverage"] is not None and r["log10_p_coverage"] < -3'
check "lazy: no backdoor p below alpha (null runs)" test "$(count lazy "$sig_p")" = 0
for b in lazy wrapper always-s; do
    check "$b: no coverage p below alpha_cov (null runs)" test "$(count "$b" "$sig_cov")" = 0
done
check "honest: every run has a coverage p below alpha_cov" test "$(count honest "$sig_cov")" = "$N"
check "marked-only: the coverage test is what stops it (no p_cov below alpha_cov)" \
    test "$(count marked-only "$sig_cov")" = 0
# The reason of every run whose verdict is not what its behaviour should
# get (a failed check above then says why, not only that).
python3 - "$T/runs.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l) if l.strip() else None
    if r and (r["verdict"] == "verified") != (r["behaviour"] == "honest"):
        print("# %s run %d: %s: %s" % (r["behaviour"], r["run"], r["verdict"], r["reason"]))
PY
finish
