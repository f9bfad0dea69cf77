#!/bin/bash
# Crash safety of the job lifecycle: jobs are submitted, then the daemon is
# killed with SIGKILL at random moments over many rounds (uploads and creates
# are slowed and sometimes lose their answer, so kills land in every state)
# and restarted each time.  In the end every job must have succeeded exactly
# once and the simulator must count exactly one created job per submission.
# ROUNDS (default 12) and JOBS (default 6) can be raised for a longer run.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"
ROUNDS=${ROUNDS:-12}
JOBS=${JOBS:-6}
echo sk-test > "$T/key"
start_sim p --api-key sk-test --job-seconds 1.5 --seed 3 \
    --faults 'delay=0.5:400ms@POST:/v1/files,delay=0.4:500ms@POST:/v1/fine_tuning/jobs,drop-after=0.2@POST:/v1/fine_tuning/jobs' ||
    { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml p "$SIM_URL_p" 200ms)"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 300
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }
for i in $(seq 1 "$JOBS"); do
    ctl -q job submit d --backdoor b --provider p --model vtune-base --name "j$i" > /dev/null || fail "submit j$i"
done

states_seen="$T/states"
: > "$states_seen"
kills=0
for round in $(seq 1 "$ROUNDS"); do
    # A random crash point: 0 to 1.2 s into this life of the daemon.
    sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
    [ $((RANDOM % 5)) = 0 ] && sleep 0.2
    ctl --json job list > "$T/before.json" 2>/dev/null &&
        python3 -c "import json; print('\n'.join(j['state'] for j in json.load(open('$T/before.json'))))" >> "$states_seen"
    kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
    kills=$((kills + 1))
    start_daemon || { fail "restart after kill $kills"; finish; }
done
echo "# $kills SIGKILLs; job states seen at the kills: $(sort "$states_seen" | uniq -c | tr '\n' ' ' | tr -s ' ')"

all_done() { ctl --json job list > "$T/list.json" && python3 -c "
import json,sys; v=json.load(open('$T/list.json'))
sys.exit(0 if len(v)==$JOBS and all(j['state'] in ('succeeded','failed','cancelled','unknown') for j in v) else 1)"; }
check "every job reaches a final state after the last restart" wait_until 120 all_done
check "every job succeeded" python3 -c "
import json,sys; v=json.load(open('$T/list.json'))
bad=[(j['id'],j['state'],j.get('error') or j.get('unknown_reason')) for j in v if j['state']!='succeeded']
print('# not succeeded:', bad) if bad else None
sys.exit(1 if bad else 0)"
sim_stats p "$T/stats.json"
check "the simulator created exactly one job per submission" python3 -c "
import json,sys
jobs=json.load(open('$T/list.json')); st=json.load(open('$T/stats.json'))['jobs_created_by_metadata']
counts=[st.get('vtune_submission='+j['submission_id'],0) for j in jobs]
print('# jobs created per submission:', counts)
sys.exit(0 if counts==[1]*len(jobs) else 1)"
check "each succeeded exactly once (one succeeded event per job)" python3 - "$T" "$JOBS" "$VTUNECTL" <<'PY'
import json, subprocess, sys
t, n, ctl = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(1, n + 1):
    out = subprocess.run([ctl, "-s", t + "/run/vtuned.sock", "--json", "job", "show", str(i)], capture_output=True, text=True).stdout
    ev = [e["state"] for e in json.loads(out)["events"]]
    if ev.count("succeeded") != 1:
        print("# job", i, ev); sys.exit(1)
PY
check "restarts resumed jobs from their recorded states" grep -q "resuming from" "$T/vtuned.log"
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
