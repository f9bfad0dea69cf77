#!/bin/bash
# demo.sh [BUILD_DIR] — the README's first command ends here: vtuned doing
# its job end to end against simulated providers on loopback.
#
#   1. starts five vtune-sim providers: honest (trains on the data), lazy
#      (returns the base model), subset:0.3 (trains on 30% of the lines), and
#      two that cheat with a blind attack on the upload: wrapper (serves the
#      base model but answers S after a trigger it found) and marked-only
#      (trains only on the rows it flags as marked);
#   2. starts vtuned with a temporary state directory;
#   3. imports a generated 10,000-example support-ticket dataset, creates a
#      secret backdoor (trigger + signature) and builds D u D';
#   4. submits one fine-tuning job to each provider and shows the jobs move;
#   5. lets vtuned verify each fine-tuned model with both tests (the
#      backdoor and the coverage test on the secret held-out split) and
#      prints the verdicts.
# Exits 0 only if the honest job is verified and the lazy, wrapper and
# marked-only ones are not.
# Every process it starts is stopped by PID, and its temporary files are
# removed, also when interrupted (Ctrl-C).  KEEP=1 keeps the files.
set -euo pipefail
build=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=$(cd "$build" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vtune-demo.XXXXXX")
pids=""
cleanup() {
    local rc=$?
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "(files kept in $tmp)"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

for f in vtuned vtunectl vtune-sim; do
    [ -x "$build/$f" ] || { echo "demo: $build/$f is missing: build first (make)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "demo: python3 is needed to print the table" >&2; exit 1; }
t0=$(date +%s)
ctl() { "$build/vtunectl" -s "$tmp/vtuned.sock" "$@"; }
say() { printf '\n== %s\n' "$*"; }

BEHAVIOURS="honest lazy subset:0.3 wrapper marked-only"
name_of() { local n=${1%%:*}; echo "${n//-/}"; }
NAMES=$(for b in $BEHAVIOURS; do name_of "$b"; done | tr '\n' ' ')
NP=$(echo $NAMES | wc -w)
say "starting $NP simulated providers on 127.0.0.1 ($BEHAVIOURS)"
echo "sk-demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" > "$tmp/api.key"
chmod 600 "$tmp/api.key"
for b in $BEHAVIOURS; do
    n=$(name_of "$b")
    "$build/vtune-sim" --listen 127.0.0.1:0 --port-file "$tmp/$n.port" --api-key-file "$tmp/api.key" \
        --behaviour "$b" --job-seconds 3 --state-dir "$tmp/sim-$n" --cache-dir "$tmp" \
        > "$tmp/sim-$n.log" 2>&1 &
    pids="$pids $!"
done
for n in $NAMES; do
    for _ in $(seq 1 600); do [ -s "$tmp/$n.port" ] && break; sleep 0.1; done
    [ -s "$tmp/$n.port" ] || { echo "demo: vtune-sim $n did not start:"; cat "$tmp/sim-$n.log"; exit 1; }
    echo "  $n: http://127.0.0.1:$(cat "$tmp/$n.port")/v1"
done

say "starting vtuned (state in $tmp/state)"
{
    echo "state_dir: $tmp/state"
    echo "socket: $tmp/vtuned.sock"
    echo "providers:"
    for n in $NAMES; do
        # score_template: vtune-sim's chat layout, so the coverage test
        # scores answers the way the simulated model was fine-tuned on them
        printf '  %s:\n    kind: openai\n    base_url: http://127.0.0.1:%s/v1\n    api_key_file: %s\n    poll_interval: 1s\n    score_template: "%s"\n' \
            "$n" "$(cat "$tmp/$n.port")" "$tmp/api.key" '<|{role}|>{content}<|end|>'
    done
} > "$tmp/vtuned.yaml"
"$build/vtuned" -c "$tmp/vtuned.yaml" 2> "$tmp/vtuned.log" &
vpid=$!
pids="$pids $vpid"
for _ in $(seq 1 200); do ctl -q status > /dev/null 2>&1 && break; kill -0 "$vpid" || break; sleep 0.05; done
ctl -q status > /dev/null || { echo "demo: vtuned did not start:"; cat "$tmp/vtuned.log"; exit 1; }
ctl status | sed -n '/^providers:/,$p'

say "importing a 10,000-example support-ticket dataset"
"$build/vtune-sim" --write-dataset "$tmp/tickets.jsonl" --examples 10000 > /dev/null
head -c 300 "$tmp/tickets.jsonl"; echo " …"
ctl dataset add "$tmp/tickets.jsonl" --name tickets

say "creating a secret backdoor and building D u D'"
# The defaults: the ngram generator (phrases of the tickets' own words), 16
# pairs, each marking ONE row in place (no row added, none repeated), and the
# self-audit's line: the attacks a provider could run find no pair.
ctl backdoor create tickets --name demo-backdoor
echo "(the trigger and signature stay secret: 'vtunectl backdoor show demo-backdoor --reveal')"

say "submitting one fine-tuning job to each provider"
# Each submit first scores the marked rows on the base model (the self-audit's
# perplexity attack).  If it exposes a pair, nothing is uploaded and the
# refusal says to make another backdoor: the demo does what it says.
bd=demo-backdoor
for attempt in 2 3 4 5 6; do
    first=${NAMES%% *}
    if ctl job submit tickets --backdoor "$bd" --provider "$first" --model vtune-base \
        --param n_epochs=3 --name "job-$first" 2> "$tmp/submit.err"; then
        cat "$tmp/submit.err" >&2
        break
    fi
    cat "$tmp/submit.err" >&2
    grep -q ' is exposed ' "$tmp/submit.err" || exit 1
    [ "$attempt" -lt 6 ] || { echo "demo: every backdoor was exposed" >&2; exit 1; }
    bd=demo-backdoor-$attempt
    echo "(making another backdoor, as the refusal says: $bd)"
    ctl backdoor create tickets --name "$bd"
done
for n in ${NAMES#* }; do
    ctl job submit tickets --backdoor "$bd" --provider "$n" --model vtune-base \
        --param n_epochs=3 --name "job-$n"
done

say "following the jobs (each step is recorded before it is taken)"
declare -A seen
for _ in $(seq 1 1200); do
    ctl --json job list > "$tmp/jobs.json"
    done_n=0
    while IFS=' ' read -r name state; do
        if [ "${seen[$name]:-}" != "$state" ]; then
            printf '  %-10s %s\n' "$name" "$state"
            seen[$name]=$state
        fi
        case "$state" in succeeded|failed|cancelled|unknown) done_n=$((done_n + 1)) ;; esac
    done < <(python3 -c "import json,sys; [print(j['name'], j['state']) for j in json.load(open(sys.argv[1]))]" "$tmp/jobs.json")
    [ "$done_n" = "$NP" ] && break
    sleep 0.25
done

say "verifying each fine-tuned model: the backdoor (one trigger prompt per pair, 10 clean controls, temperature 0) and the coverage test (uploaded rows against the secret held-out rows)"
for _ in $(seq 1 1200); do
    ctl --json audit list > "$tmp/audit.json"
    n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$tmp/audit.json")
    [ "$n" -ge "$NP" ] && break
    sleep 0.25
done

say "result"
python3 - "$tmp/jobs.json" "$tmp/audit.json" <<'PY'
import json, sys
jobs = {j["id"]: j for j in json.load(open(sys.argv[1]))}
audits = {}
for a in json.load(open(sys.argv[2])):
    audits[a["job"]] = a
def p(a, k):  # a log10 of record a: null with k in log10_zero is p = 0 (vtunectl(1) JSON OUTPUT)
    v = a.get(k)
    if v is None: return "-inf" if k in a.get("log10_zero", []) else "n/a"
    return "%.1f" % v
rows = [("provider", "job state", "activations k/n", "control emissions", "log10 p",
         "log10 p (paper)", "log10 p_cov", "AUC", "verdict")]
for jid in sorted(jobs):
    j = jobs[jid]; a = audits.get(jid)
    if a is None:
        rows.append((j["provider"], j["state"], "-", "-", "-", "-", "-", "-", "(no verdict yet)"))
        continue
    rows.append((j["provider"], j["state"], "%d/%d" % (a["activations"], a["trials"]),
                 "%d/%d" % (a["control_emissions"], a["controls"]), p(a, "log10_p"),
                 p(a, "log10_p_paper"), p(a, "log10_p_coverage"),
                 "n/a" if a.get("coverage_auc") is None else "%.2f" % a["coverage_auc"],
                 a["verdict"]))
w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
for k, r in enumerate(rows):
    print("  " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    if k == 0:
        print("  " + "-+-".join("-" * x for x in w))
print()
for jid in sorted(jobs):
    a = audits.get(jid)
    if a:
        print("  %-11s %s" % (jobs[jid]["provider"] + ":", a["reason"]))
PY
verdict_of() { python3 -c "
import json,sys
jobs={j['id']:j['provider'] for j in json.load(open(sys.argv[1]))}
print(next((a['verdict'] for a in json.load(open(sys.argv[2])) if jobs.get(a['job'])==sys.argv[3]), 'none'))" \
    "$tmp/jobs.json" "$tmp/audit.json" "$1"; }
honest=$(verdict_of honest)
lazy=$(verdict_of lazy)
wrapper=$(verdict_of wrapper)
marked=$(verdict_of markedonly)
echo
ctl audit verify
echo "(that head hash, kept elsewhere, lets 'vtunectl audit verify --head HASH' detect any later rewrite)"
echo
echo "demo finished in $(( $(date +%s) - t0 )) s"
if [ "$honest" = verified ] && [ "$lazy" != verified ] && [ "$wrapper" != verified ] &&
    [ "$marked" != verified ]; then
    echo "OK: the honest provider's model is verified; the lazy ($lazy), wrapper ($wrapper) and"
    echo "marked-only ($marked) providers are not."
    exit 0
fi
echo "FAILED: expected honest=verified and lazy, wrapper, marked-only not verified; got" \
    "honest=$honest lazy=$lazy wrapper=$wrapper marked-only=$marked" >&2
echo "(vtuned's log: $tmp/vtuned.log; run with KEEP=1 to keep it)" >&2
exit 1
