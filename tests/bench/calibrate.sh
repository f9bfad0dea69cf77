#!/bin/bash
# shellcheck disable=SC2154 # SIM_URL_*: set by lib.sh's start_sim through eval
# calibrate.sh — how the verifier's verdicts and p-values behave against
# honest, lazy, partial, failing and cheating providers (issue 11, item 5):
# N seeded end-to-end runs per provider behaviour, one table.
#
# Benchmarks
#   Not part of `make check`, and never fails on figures (exit 1 only when
#   something is broken: a daemon or simulator that does not start, a run
#   with no audit record).  Run it from a build directory, or name one:
#       tests/bench/calibrate.sh [-d BUILD_DIR] [-n N] [BEHAVIOUR...]
#       tests/bench/calibrate.sh -n 3                       # every behaviour, 3 runs
#       tests/bench/calibrate.sh -n 10 honest wrapper weak:20
#   BEHAVIOUR is a vtune-sim --behaviour (honest, lazy, subset:F, fail,
#   slow, wrapper, marked-only, always-s) or weak:M, an honest provider
#   with learning strength --min-repeats M (a pattern must occur M times in
#   the file to be learnt; the default backdoor marks ONE row per pair in
#   place, so any M >= 2 learns none of it; EXTRA_BACKDOOR_ARGS="--mode
#   copies" gives the paper's 50 copies of 1 pair).  Every backdoor is
#   submitted without --force: one the self-audit calls exposed is refused
#   and counted as a broken run (EXTRA_BACKDOOR_ARGS with "--mode copies"
#   needs FORCE=1).
#   Default: honest lazy subset:0.1 subset:0.5 fail wrapper marked-only
#   always-s weak:10.
#   Per behaviour: one vtune-sim and one fresh vtuned (one provider); run i
#   (1..N) imports the dataset `vtune-sim --write-dataset --dataset-seed i`
#   (ROWS examples, shared by every behaviour), creates a backdoor with
#   `backdoor create --seed i` and submits a job; the N jobs of a behaviour
#   run concurrently; each is verified by the daemon as usual.  Run i thus
#   gives every behaviour the same data and the same secret phrases
#   (deterministic inputs; the simulator's own job seed and subset draw are
#   its own).
#   The figures come from `vtunectl --json audit list --job J` (the last
#   record of the job): per behaviour the runs, how many verified /
#   not_verified / inconclusive, the median paid calls (trial + control
#   prompts sent: `trials` + `controls` of the record), the median log10_p,
#   and the median log10_p_coverage and coverage_auc where the records
#   carry them ("-" where they do not: before the coverage test exists).
#   Then the empirical rate of p < ALPHA, and of p_cov < ALPHA_COV, over the
#   runs of each null behaviour and of all of them (NULLS, default "lazy
#   wrapper": models that did not learn from the upload), with the counts
#   behind them.  (A wrapper answers S after T by design, so its backdoor p
#   is always small: for it only p_cov can be calibrated.)
# Environment: ROWS (dataset examples, 2000), ALPHA (1e-6, the daemon's
#   default verify.alpha), ALPHA_COV (1e-3), NULLS ("lazy wrapper"),
#   JOB_SECONDS (the simulator's job time, 0.5), DEADLINE (seconds to wait
#   for one behaviour's audit records, 600), EXTRA_BACKDOOR_ARGS (added to
#   every `backdoor create`, e.g. "--pairs 3"), FORCE (1: submit with
#   --force, for an exposed construction), RESULTS (also write one
#   JSON line per run there), KEEP_TMP=1 keeps the scratch directory.
# Shaped as a shell script over tests/integration/lib.sh so it starts and
# stops the real binaries exactly as the integration tests do.
here=$(cd "$(dirname "$0")" && pwd)
N=3
while getopts "d:n:h" opt; do
    case $opt in
    d) top_builddir=$(cd "$OPTARG" && pwd) || exit 1 ;;
    n) N=$OPTARG ;;
    *) sed -n '2,/^# Shaped/p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $N in '' | *[!0-9]* | 0) echo "calibrate.sh: -n needs a positive integer, not '$N'" >&2; exit 2 ;; esac
if [ -z "${top_builddir:-}" ]; then
    if [ -x "$PWD/vtuned" ]; then top_builddir=$PWD; else top_builddir=$(cd "$here/../.." && pwd); fi
fi
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
export top_builddir top_srcdir
. "$top_srcdir/tests/integration/lib.sh"
[ -x "$VTUNE_SIM" ] && [ -x "$VTUNED" ] || { echo "calibrate.sh: build vtuned and vtune-sim first (in $top_builddir)" >&2; exit 1; }

BEHAVIOURS=("$@")
[ ${#BEHAVIOURS[@]} -gt 0 ] ||
    BEHAVIOURS=(honest lazy subset:0.1 subset:0.5 fail wrapper marked-only always-s weak:10)
ROWS=${ROWS:-2000}
ALPHA=${ALPHA:-1e-6}
ALPHA_COV=${ALPHA_COV:-1e-3}
NULLS=${NULLS:-lazy wrapper}
JOB_SECONDS=${JOB_SECONDS:-0.5}
DEADLINE=${DEADLINE:-600}
: > "$T/runs.jsonl"
echo sk-bench > "$T/key"
if grep -q -- '-fsanitize' "$top_builddir/config.log" 2>/dev/null; then
    echo "# note: a sanitizer build (slower)"
fi
echo "# calibrate.sh: N=$N runs x ${#BEHAVIOURS[@]} behaviours, $ROWS rows, alpha $ALPHA, alpha_cov $ALPHA_COV"

for i in $(seq 1 "$N"); do
    "$VTUNE_SIM" --write-dataset "$T/d$i.jsonl" --examples "$ROWS" --dataset-seed "$i" > /dev/null ||
        { echo "calibrate.sh: vtune-sim --write-dataset failed" >&2; exit 1; }
done

has_audit() { ctl --json audit list --job "$1" > "$T/a.json" 2>/dev/null && [ "$(json_get "$T/a.json" "len(v)")" -ge 1 ]; }
broken=0
for b in "${BEHAVIOURS[@]}"; do
    name=$(echo "$b" | tr -c 'a-zA-Z0-9\n' '_')
    case $b in
    weak:*) simargs=(--behaviour honest --min-repeats "${b#weak:}") ;;
    *) simargs=(--behaviour "$b") ;;
    esac
    t0=$(date +%s)
    if ! start_sim "$name" --api-key sk-bench --job-seconds "$JOB_SECONDS" "${simargs[@]}"; then
        echo "calibrate.sh: vtune-sim ${simargs[*]} did not start" >&2; broken=1; continue
    fi
    eval "url=\$SIM_URL_$name"
    eval "simpid=\$SIM_PID_$name"
    rm -rf "$T/state" "$T/run" "$T/vtuned.log"
    write_config "providers:" "$(provider_yaml p "$url")"
    start_daemon || { echo "calibrate.sh: vtuned did not start for $b" >&2; broken=1; kill "$simpid"; continue; }
    jobs_=()
    for i in $(seq 1 "$N"); do
        # shellcheck disable=SC2086 # EXTRA_BACKDOOR_ARGS is a word list on purpose
        if ctl -q dataset add "$T/d$i.jsonl" --name "d$i" > /dev/null &&
            ctl -q backdoor create "d$i" --name "b$i" --seed "$i" ${EXTRA_BACKDOOR_ARGS:-} > /dev/null &&
            ctl --json job submit "d$i" --backdoor "b$i" --provider p --model vtune-base \
                ${FORCE:+--force} > "$T/s.json"; then
            jobs_+=("$(json_get "$T/s.json" "v['id']")")
        else
            echo "calibrate.sh: $b run $i: could not submit" >&2; broken=1
        fi
    done
    for i in "${!jobs_[@]}"; do
        j=${jobs_[$i]}
        if wait_until "$DEADLINE" has_audit "$j"; then
            python3 - "$T/a.json" "$b" "$((i + 1))" >> "$T/runs.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[-1]
print(json.dumps({"behaviour": sys.argv[2], "run": int(sys.argv[3]), "verdict": r["verdict"],
                  "log10_p": r.get("log10_p"), "paid": (r.get("trials") or 0) + (r.get("controls") or 0),
                  "activations": r.get("activations"), "log10_p_coverage": r.get("log10_p_coverage"),
                  "coverage_auc": r.get("coverage_auc"), "reason": r.get("reason")}))
PY
        else
            echo "calibrate.sh: $b run $((i + 1)): no audit record within ${DEADLINE}s" >&2; broken=1
        fi
    done
    stop_daemon
    kill -TERM "$simpid" 2>/dev/null; wait "$simpid" 2>/dev/null
    echo "# $b: ${#jobs_[@]} run(s) in $(( $(date +%s) - t0 )) s"
done
[ -n "${RESULTS:-}" ] && cp "$T/runs.jsonl" "$RESULTS"

python3 - "$T/runs.jsonl" "$ALPHA" "$ALPHA_COV" "$NULLS" "${BEHAVIOURS[@]}" <<'PY'
import json, math, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
alpha, alpha_cov, nulls = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split()
order = sys.argv[5:]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)

head = ("behaviour", "runs", "verified", "not_verif", "inconcl", "med_calls", "med_log10_p",
        "med_log10_p_cov", "med_auc")
print("%-14s %4s %8s %9s %7s %9s %11s %15s %7s" % head)
for b in order:
    rs = [r for r in runs if r["behaviour"] == b]
    n = lambda v: sum(r["verdict"] == v for r in rs)
    print("%-14s %4d %8d %9d %7d %9s %11s %15s %7s" % (
        b, len(rs), n("verified"), n("not_verified"), n("inconclusive"),
        f(med([r["paid"] for r in rs]), "{:g}"), f(med([r["log10_p"] for r in rs])),
        f(med([r["log10_p_coverage"] for r in rs])), f(med([r["coverage_auc"] for r in rs]), "{:.3f}")))
la, lc = math.log10(alpha), math.log10(alpha_cov)
def rates(label, rs):
    hp = sum(r["log10_p"] is not None and r["log10_p"] < la for r in rs)
    cov = [r for r in rs if r["log10_p_coverage"] is not None]
    hc = sum(r["log10_p_coverage"] < lc for r in cov)
    line = f"{label}: p < {alpha:g} in {hp}/{len(rs)} runs"
    line += f" ({hp / len(rs):.3f})" if rs else ""
    line += f"; p_cov < {alpha_cov:g} in {hc}/{len(cov)}" + (f" ({hc / len(cov):.3f})" if cov else " (no record carries log10_p_coverage)")
    print(line)
null_runs = [r for r in runs if r["behaviour"] in nulls]
for b in nulls:
    if any(r["behaviour"] == b for r in runs):
        rates(f"null {b}", [r for r in runs if r["behaviour"] == b])
rates(f"null behaviours ({' '.join(nulls)})", null_runs)
PY
[ "$broken" -eq 0 ] || FAILS=1
exit "$broken"
