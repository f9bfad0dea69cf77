#!/bin/bash
# Progress on every wait a user feels (issue 16): the upload of a job
# (job submit --watch --json: NDJSON events on stdout) and a verification
# (verify --wait --json --progress: NDJSON on stderr) against a simulator
# whose upload and chat answers are slow; the llm generator's calls
# (backdoor create --generator llm); the text form on stderr.
# The daemon reports every PROGRESS_INTERVAL_MS (1 s), moved or not, so
# the bound on silence (3 s) is three intervals, independent of how slow
# the simulator is; the counters are checked by themselves (progress_check.py).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
BOUND=3.0
CHECK="python3 $(dirname "$0")/progress_check.py"
echo sk-test > "$T/key"
# The upload's answer comes 3.5 s after the request, each chat answer 0.4 s
# (the trials: 4 in flight), and the generator's chat calls 1.2 s each.
start_sim p --api-key sk-test --job-seconds 0.5 \
    --faults 'delay=1:3500ms@POST:/v1/files,delay=1:400ms@POST:/v1/chat/completions' ||
    { fail "simulator starts"; finish; }
start_sim g --api-key sk-test --faults 'delay=1:1200ms@POST:/v1/chat/completions' ||
    { fail "generator simulator starts"; finish; }
write_config "providers:" "$(provider_yaml p "$SIM_URL_p")" "$(provider_yaml g "$SIM_URL_g")" \
    "generator:" "  provider: g" "  m2_model: vtune-base" "verify:" "  coverage: 0"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 3000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --generator wordlist > /dev/null || { fail "dataset and backdoor"; finish; }

# The upload: events on stdout between the job's events, each with the job's id.
$CHECK stdout upload "$BOUND" "$T/watch.out" -- timeout 120 "$VTUNECTL" -s "$T/run/vtuned.sock" --json \
    job submit d --backdoor b --provider p --model vtune-base --force --watch; rc=$?
sed 's/^/#   /' "$T/watch.out" | head -30
check "upload progress: at least two events, counters grow to the total, no silence over ${BOUND} s" test "$rc" = 0
check "upload events name the job and count bytes" python3 -c "
import json, sys
ev = [json.loads(l.split(None, 2)[2]) for l in open('$T/watch.out') if ' stdout {' in l]
up = [e for e in ev if e.get('type') == 'progress']
sys.exit(0 if up and all(e['stage'] == 'upload' and e['unit'] == 'bytes' and e['job'] == 1 and e['bytes'] == e['done'] for e in up) else 1)"
check "the upload's last progress comes before the 'uploaded' event" python3 -c "
import sys
ls = [l for l in open('$T/watch.out') if ' stdout ' in l]
last = max(i for i, l in enumerate(ls) if '\"progress\"' in l)
up = min(i for i, l in enumerate(ls) if '\"uploaded\"' in l)
sys.exit(0 if last < up else 1)"
ctl --json job show 1 > "$T/j1.json"
check "the job succeeded" test "$(json_get "$T/j1.json" "v['state']")" = succeeded

# A verification: calls made / planned on stderr, the audit record on stdout.
$CHECK --from-start stderr verify "$BOUND" "$T/verify.out" -- timeout 120 "$VTUNECTL" -s "$T/run/vtuned.sock" \
    --json --progress verify 1 --wait --trials 12 --controls 12; rc=$?
sed 's/^/#   /' "$T/verify.out" | head -30
check "verify progress: at least two events, done reaches the planned calls, no silence over ${BOUND} s" \
    test "$rc" = 0 -o "$rc" = 1
check "verify events count calls (made <= settled <= planned) and name the job" python3 -c "
import json, sys
ev = [json.loads(l.split(None, 2)[2]) for l in open('$T/verify.out') if ' stderr {' in l]
ok = ev and all(e['unit'] == 'calls' and e['job'] == 1 and 0 <= e['calls'] <= e['done'] <= e['total'] for e in ev)
sys.exit(0 if ok else 1)"
check "stdout holds the audit record alone" python3 -c "
import json, sys
out = ''.join(l.split(None, 2)[2] for l in open('$T/verify.out') if ' stdout ' in l)
sys.exit(0 if 'verdict' in json.loads(out) else 1)"

# Without --progress and with stderr not a terminal, nothing is printed; -q
# drops the events from a --watch --json stream too.
ctl --json verify 1 --wait --trials 12 --controls 12 > /dev/null 2> "$T/quiet.err"
check "no progress on a non-terminal without --progress" test ! -s "$T/quiet.err"
# The text form (a line each when stderr is not a terminal).
ctl --progress verify 1 --wait --trials 12 --controls 12 > /dev/null 2> "$T/text.err"
check "--progress without --json prints 'verify: N / M calls (P%)' lines" \
    grep -Eq '^verify: [0-9]+ / [0-9]+ calls \([0-9]+%\)$' "$T/text.err"

# The llm generator: one event per interval while its (slow) calls run;
# the total is unknown (null), the calls made only grow.
$CHECK stderr generate "$BOUND" "$T/gen.out" -- timeout 120 "$VTUNECTL" -s "$T/run/vtuned.sock" \
    --json --progress backdoor create d --name g --generator llm --pairs 1; rc=$?
sed 's/^/#   /' "$T/gen.out" | grep -v ' stdout ' | head -20
check "llm generator progress: at least two events, no silence over ${BOUND} s" test "$rc" = 0
check "its events count the calls made; the total is unknown (null)" python3 -c "
import json, sys
ev = [json.loads(l.split(None, 2)[2]) for l in open('$T/gen.out') if ' stderr {' in l]
g = [e for e in ev if e.get('stage') == 'generate']
d = [e['done'] for e in g]
sys.exit(0 if len(g) >= 2 and all(e['total'] is None and e['unit'] == 'calls' for e in g) and d == sorted(d) else 1)"
finish
