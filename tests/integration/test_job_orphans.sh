#!/bin/bash
# test_job_orphans.sh — a redone upload leaves no orphan at the provider.
#
# Every upload is named vtune-<submission id>.jsonl.  The simulator stores
# a job's first upload and then drops the connection (drop-after), so the
# daemon does not learn the file id while the provider holds the file.
# Three ways the upload is then redone, each ending with exactly one file of
# that name at the simulator (the one the job used) and, for the job, an
# event naming the deleted orphan:
#   1. crash: the daemon is killed with SIGKILL while the job is
#      `uploading`, restarted, and redoes the upload;
#   2. a failed attempt: the same daemon retries the step later;
#   3. a resend inside one call (the provider client's own retry);
# and 4. an operator resolving an unknown job as absent: other copies of
# the recorded file's name are deleted too.
# (A `delay` fault cannot open this window: it runs before the simulator
# stores the file, and the answer follows at once.)
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's files"
echo sk-test > "$T/key"
# Jobs run long enough that the sweep (a listing and a delete) ends first:
# a sweep finishing after the job has no job event to write (see jobs.c).
start_sim p --api-key sk-test --job-seconds 2 --faults 'drop-after=#1@POST:/v1/files' ||
    { fail "simulator starts"; finish; }
# p: no retries, so the dropped upload fails the attempt (the job stays
# uploading and the step is retried 5 s later); q: the client resends.
# delete_upload: never — this test counts the file each job used, which
# would otherwise be deleted once the job ends (test_upload_delete.sh).
write_config "providers:" "$(provider_yaml p "$SIM_URL_p")" "    max_retries: 0" \
    "    delete_upload: never" "$(provider_yaml q "$SIM_URL_p")" "    delete_upload: never"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 200
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }

sim_api() { curl -s -H "Authorization: Bearer sk-test" "$@"; }
# sim_named SID: ids of the simulator's live files named vtune-SID.jsonl, one a line.
sim_named() {
    sim_api "http://127.0.0.1:$SIM_PORT_p/v1/files?purpose=fine-tune" > "$T/files.json" &&
        python3 - "$T/files.json" "vtune-$1.jsonl" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
print("\n".join(f["id"] for f in v["data"] if f["filename"] == sys.argv[2]))
PY
}
named_count() { sim_named "$1" | grep -c . ; }
job_state() { ctl --json job show "$1" > "$T/show.json" && json_get "$T/show.json" "v['state']"; }
succeeded() { test "$(job_state "$1")" = succeeded; }
one_named() { test "$(named_count "$1")" = 1; }
reset_faults() {
    sim_api -d '{"spec":"drop-after=#1@POST:/v1/files"}' "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null
}
tag_count() {
    sim_stats p "$T/stats.json"
    json_get "$T/stats.json" "v['jobs_created_by_metadata'].get('vtune_submission=$1', 0)"
}
# ends_clean ID SID ORPHAN WHAT: the job succeeded with the one file left,
# the orphan is gone, and the job's events and the log say so.
ends_clean() {
    local id=$1 sid=$2 orphan=$3 what=$4
    check "$what: the job succeeds" wait_until 60 succeeded "$id"
    check "$what: the simulator holds exactly one vtune-$sid.jsonl" wait_until 20 one_named "$sid"
    ctl --json job show "$id" > "$T/final.json"
    local used left
    used=$(json_get "$T/final.json" "v['provider_file_id']")
    left=$(sim_named "$sid")
    echo "# $what: orphan $orphan, file used $used, file left $left"
    check "$what: it is the file the job used" test -n "$used" -a "$left" = "$used"
    check "$what: the orphan is not the file used" test "$orphan" != "$used"
    check "$what: the job's events name the deleted orphan" python3 -c '
import json, sys
ev = [e.get("message") or "" for e in json.load(open(sys.argv[1]))["events"]]
sys.exit(0 if any("deleted orphaned upload " + sys.argv[2] in m for m in ev) else 1)' "$T/final.json" "$orphan"
    check "$what: the daemon logged the deletion" \
        grep -q "job $id: deleted orphaned upload $orphan at" "$T/vtuned.log"
    check "$what: one job created at the provider" test "$(tag_count "$sid")" = 1
}

# 1. Crash while uploading, after the provider stored the file.  Every
# upload's answer is dropped until the daemon is killed, so the job cannot
# leave `uploading` however slowly this test runs (a one-shot fault raced the
# daemon's retry 5 s later on a loaded machine); the faults are cleared only
# once the daemon is dead, so the restart's upload is the first to succeed.
sim_api -d '{"spec":"drop-after=1@POST:/v1/files"}' "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null
ctl --json job submit d --backdoor b --provider p --model vtune-base --name crash > "$T/j1.json" ||
    { fail "submit"; finish; }
id1=$(json_get "$T/j1.json" "v['id']")
sid1=$(json_get "$T/j1.json" "v['submission_id']")
stored_while_uploading() { test "$(named_count "$sid1")" -ge 1 && test "$(job_state "$id1")" = uploading; }
check "1: the provider holds a copy while the job is still uploading" wait_until 30 stored_while_uploading
orphan1=$(sim_named "$sid1" | head -1)
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "1: the job was uploading when the daemon was killed" test "$(json_get "$T/show.json" "v['state']")" = uploading
sim_api -d '{"spec":""}' "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null
start_daemon || { fail "restart after the kill"; finish; }
check "1: the restart resumed the upload" grep -q "job $id1: resuming from uploading" "$T/vtuned.log"
ends_clean "$id1" "$sid1" "$orphan1" "1 (crash)"

# 2. The attempt fails (the answer is lost, no client retry); the daemon redoes it.
reset_faults
ctl --json job submit d --backdoor b --provider p --model vtune-base --name redo > "$T/j2.json" ||
    { fail "submit"; finish; }
id2=$(json_get "$T/j2.json" "v['id']")
sid2=$(json_get "$T/j2.json" "v['submission_id']")
check "2: the provider holds a first copy" wait_until 30 one_named "$sid2"
orphan2=$(sim_named "$sid2")
ends_clean "$id2" "$sid2" "$orphan2" "2 (failed attempt)"
check "2: the failed attempt was logged" grep -q "job $id2: upload failed, will retry" "$T/vtuned.log"

# 3. The provider client resends the upload within one call.
reset_faults
ctl --json job submit d --backdoor b --provider q --model vtune-base --name resend > "$T/j3.json" ||
    { fail "submit"; finish; }
id3=$(json_get "$T/j3.json" "v['id']")
sid3=$(json_get "$T/j3.json" "v['submission_id']")
# The resend follows within a second: the first copy is read from the
# simulator's log (drop-after #1 dropped the answer to the first upload).
first_upload() { grep -o "file [^ ]* uploaded: vtune-$sid3.jsonl" "$T/sim-p.log" | head -1 | cut -d' ' -f2; }
two_uploads() { test "$(grep -c "uploaded: vtune-$sid3.jsonl" "$T/sim-p.log")" = 2; }
check "3: the simulator stored two copies" wait_until 30 two_uploads
orphan3=$(first_upload)
ends_clean "$id3" "$sid3" "$orphan3" "3 (client resend)"

# 4. An operator resolves an unknown job as absent: the job is submitted
# again with its recorded file, and other copies of that name are orphans
# (here one is uploaded by hand while the job waits).  The create is dropped
# before it acts and the listing refused (403), so the job becomes unknown.
sim_api -d '{"spec":"drop=#1@POST:/v1/fine_tuning/jobs,403=1@GET:/v1/fine_tuning/jobs"}' \
    "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null
ctl --json job submit d --backdoor b --provider p --model vtune-base --name resolved > "$T/j4.json" ||
    { fail "submit"; finish; }
id4=$(json_get "$T/j4.json" "v['id']")
sid4=$(json_get "$T/j4.json" "v['submission_id']")
is_unknown() { test "$(job_state "$id4")" = unknown; }
check "4: the job becomes unknown" wait_until 60 is_unknown
head -c 100 "$T/d.jsonl" > "$T/stray.jsonl"
sim_api -F purpose=fine-tune -F "file=@$T/stray.jsonl;filename=vtune-$sid4.jsonl" \
    "http://127.0.0.1:$SIM_PORT_p/v1/files" > "$T/stray.json"
orphan4=$(json_get "$T/stray.json" "v['id']")
check "4: two copies at the simulator before the resolution" test "$(named_count "$sid4")" = 2
sim_api -d '{"spec":""}' "http://127.0.0.1:$SIM_PORT_p/v1/_sim/faults" > /dev/null
ctl -q job resolve "$id4" --as absent > /dev/null
ends_clean "$id4" "$sid4" "$orphan4" "4 (resolved absent)"

# An upload done once sweeps nothing.
ctl --json job submit d --backdoor b --provider p --model vtune-base --name once > "$T/j5.json" ||
    { fail "submit"; finish; }
id5=$(json_get "$T/j5.json" "v['id']")
sid5=$(json_get "$T/j5.json" "v['submission_id']")
check "a job uploaded once succeeds" wait_until 60 succeeded "$id5"
check "with its one file" one_named "$sid5"
check "and no sweep" bash -c "! grep -q 'job $id5: .*looking for earlier copies' '$T/vtuned.log'"

stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
