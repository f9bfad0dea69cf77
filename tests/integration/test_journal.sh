#!/bin/bash
# Structured logs (issue 16): with its journal socket pointed at a listener
# (VTUNE_JOURNAL_SOCKET, as systemd's /run/systemd/journal/socket would be
# when stderr is the journal), vtuned sends each record in journald's native
# protocol with PRIORITY and the job, provider and audit it concerns, so
# `journalctl -u vtuned VTUNE_JOB=1` finds a job's lines; nothing goes to
# stderr then.  (The sink's framing and fall-backs: tests/unit/test_log.)
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds 0.5 || { fail "simulator starts"; finish; }
python3 "$(dirname "$0")/journal_listener.py" "$T/journal.sock" "$T/journal.out" &
PIDS="$PIDS $!"
wait_until 10 test -S "$T/journal.sock" || { fail "journal listener"; finish; }
write_config "providers:" "$(provider_yaml p "$SIM_URL_p")" "verify:" "  coverage: 0"
VTUNE_JOURNAL_SOCKET="$T/journal.sock" start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 400
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null &&
    ctl -q backdoor create d --name b --generator wordlist > /dev/null || { fail "dataset and backdoor"; finish; }
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" -q job submit d --backdoor b --provider p \
    --model vtune-base --force --watch > /dev/null
ctl -q verify 1 --wait --trials 5 --controls 10 > /dev/null
has() { python3 - "$T/journal.out" "$@" <<'PY'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
want = dict(a.split("=", 1) for a in sys.argv[3:])
hit = [r for r in recs if re.search(sys.argv[2], r.get("MESSAGE", "")) and all(r.get(k) == v for k, v in want.items())]
sys.exit(0 if hit else 1)
PY
}
check "job transitions carry VTUNE_JOB and VTUNE_PROVIDER at priority info" \
    has '^job 1: uploading -> uploaded' VTUNE_JOB=1 VTUNE_PROVIDER=p PRIORITY=6 SYSLOG_IDENTIFIER=vtuned
check "the verdict carries the job and its audit record" \
    wait_until 10 has '^verify: job 1 .*audit ([0-9]+)' VTUNE_JOB=1 VTUNE_PROVIDER=p
check "the audit id in VTUNE_AUDIT is the one in the text" python3 -c "
import json, re, sys
for l in open('$T/journal.out'):
    r = json.loads(l)
    m = re.search(r'^verify: job 1 .*; audit (\d+),', r.get('MESSAGE', ''))
    if m and r.get('VTUNE_AUDIT') == m.group(1):
        sys.exit(0)
sys.exit(1)"
check "the dataset and backdoor lines carry their ids" \
    has "^backdoor: created 1 for dataset 'd'" VTUNE_BACKDOOR=1 VTUNE_DATASET=1
check "a line about no job has no VTUNE_JOB" python3 -c "
import json, sys
r = [json.loads(l) for l in open('$T/journal.out')]
sys.exit(0 if any('ctl:' in x.get('MESSAGE', '') and 'VTUNE_JOB' not in x for x in r) else 1)"
check "the message has no level or priority prefix" python3 -c "
import json, sys
r = [json.loads(l) for l in open('$T/journal.out')]
sys.exit(0 if r and not any(x['MESSAGE'].startswith(('<', 'info', 'debug')) for x in r) else 1)"
check "nothing went to stderr meanwhile" bash -c "! grep -q 'job 1:' '$T/vtuned.log'"
finish
