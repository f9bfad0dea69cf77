#!/bin/bash
# vtunectl --json against its documented schema: the real vtuned and
# vtune-sim, driven through every command of the command table, each
# command's --json output saved and validated with ajv against the JSON
# Schema of ctl/schema/ (tests/node/ctl_schema_check.mjs), which is what
# vtunectl(1) JSON OUTPUT describes.  Also: --watch --json is NDJSON whose
# every line has "type" and "job_id" (an event's own id is "event_id");
# every failure under --json (a daemon error, a usage error, an unreachable
# daemon, a local file) is the one object {"error":{code,message}} on stdout
# with nothing on stderr and the exit status of the plain form; a log10 p of
# -inf in the protocol (p = 0) is null in the output and named in
# "log10_zero"; every command of the table was run here.
# Skips (77) without node or ajv (npm ci --prefix tests/node).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
NODE_DIR="$top_srcdir/tests/node"
SCHEMA_DIR="$top_srcdir/ctl/schema"
command -v node >/dev/null 2>&1 || skip "node is not installed"
[ -d "$NODE_DIR/node_modules/ajv" ] || skip "ajv is not installed: run npm ci --prefix tests/node"
command -v curl >/dev/null || skip "curl is needed"

echo sk-test > "$T/key"
start_sim ok --api-key sk-test --job-seconds 0.4 || { fail "simulator starts"; finish; }
start_sim slow --api-key sk-test --job-seconds 60 || { fail "simulator starts"; finish; }
# A create whose answer is lost and a listing refused (403): the job ends unknown.
start_sim lost --api-key sk-test --job-seconds 0.4 \
    --faults 'drop-after=#1@POST:/v1/fine_tuning/jobs,403=1@GET:/v1/fine_tuning/jobs' ||
    { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml ok "$SIM_URL_ok")" "$(provider_yaml slow "$SIM_URL_slow")" \
    "$(provider_yaml lost "$SIM_URL_lost")" "  byhand:" "    kind: manual" "    base_url: $SIM_URL_ok"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 1500
make_dataset "$T/d2.jsonl" 300

OUT="$T/json"
mkdir -p "$OUT"
N=0
RAN=""
# run SCHEMA WORDS -- ARGS...: runs 'vtunectl --json ARGS' (WORDS: the
# command, for the coverage check), keeps its stdout as NN-SCHEMA.json (or
# .ndjson when SCHEMA ends in +lines) for validation, and its stderr and
# exit status in $T/err and $RC.  Leaves the output's path in $LAST.
run() {
    local schema=$1 words=$2 ext=json
    shift 3
    case "$schema" in *+lines) schema=${schema%+lines}; ext=ndjson ;; esac
    N=$((N + 1))
    LAST="$OUT/$(printf %02d $N)-$schema.$ext"
    timeout 120 "$VTUNECTL" -s "$T/run/vtuned.sock" --json "$@" > "$LAST" 2> "$T/err"
    RC=$?
    RAN="$RAN|$words|"
}
# quiet_ok DESCRIPTION: the last run exited 0 and wrote nothing on stderr.
quiet_ok() {
    check "$1: exit 0" test "$RC" = 0
    check "$1: nothing on stderr" test ! -s "$T/err"
}
jl() { json_get "$LAST" "$1"; }

# ---- the objects --------------------------------------------------------------------------------
run status status -- status; quiet_ok "status"
run dataset-add "dataset add" -- dataset add "$T/d.jsonl" --name d; quiet_ok "dataset add"
run dataset-add "dataset add" -- dataset add "$T/d2.jsonl" --name d2
run dataset-list "dataset list" -- dataset list; quiet_ok "dataset list"
run dataset-show "dataset show" -- dataset show d; quiet_ok "dataset show"
run backdoor-create "backdoor create" -- backdoor create d --name b --generator wordlist; quiet_ok "backdoor create"
run backdoor-create "backdoor create" -- backdoor create d2 --name b2 --holdout 0
run backdoor-list "backdoor list" -- backdoor list; quiet_ok "backdoor list"
run backdoor-show "backdoor show" -- backdoor show b; quiet_ok "backdoor show"
run backdoor-show "backdoor show" -- backdoor show b --reveal; quiet_ok "backdoor show --reveal"
run backdoor-audit "backdoor audit" -- backdoor audit b; quiet_ok "backdoor audit"
run backdoor-commit "backdoor commit" -- backdoor commit b -o "$T/commit.dsse"; quiet_ok "backdoor commit"
run key-show "key show" -- key show; quiet_ok "key show"
json_get "$LAST" "v['public_key_pem']" | sed '/^$/d' > "$T/pub.pem"
run dataset-export "dataset export" -- dataset export d --backdoor b -o "$T/export.jsonl"; quiet_ok "dataset export"

# ---- jobs, and the --watch stream ---------------------------------------------------------------
run job-watch+lines "job submit" -- job submit d --backdoor b --provider ok --model vtune-base --force --name first --watch
quiet_ok "job submit --watch"
W1=$LAST
check "submit --watch: NDJSON, one object a line" python3 -c "
import json,sys
lines=[json.loads(l) for l in open('$W1')]
sys.exit(0 if len(lines) >= 4 and all(isinstance(l, dict) for l in lines) else 1)"
check "submit --watch: submitted first, events, end last; every line names the job" python3 -c "
import json,sys
v=[json.loads(l) for l in open('$W1')]
t=[l['type'] for l in v]
jid=v[0]['job_id']
ok = t[0]=='submitted' and t[-1]=='end' and 'event' in t and set(t) <= {'submitted','event','progress','end'}
ok = ok and all(l['job_id']==jid for l in v) and v[-1]['job']['id']==jid and v[0]['job']['id']==jid
ev=[l['event_id'] for l in v if l['type']=='event']
ok = ok and ev==sorted(ev) and len(set(ev))==len(ev) and all('id' not in l for l in v)
sys.exit(0 if ok else 1)"
J1=$(python3 -c "import json; print(json.loads(open('$W1').readline())['job_id'])")
check "the job watched to its end succeeded" test "$(python3 -c "import json; print([json.loads(l) for l in open('$W1')][-1]['state'])")" = succeeded
run job-watch+lines "job watch" -- job watch first; quiet_ok "job watch (by name)"
check "job watch by name: every line carries the numeric job_id" python3 -c "
import json,sys
v=[json.loads(l) for l in open('$LAST')]
sys.exit(0 if v and all(l['job_id']==$J1 for l in v) and v[-1]['type']=='end' else 1)"
run job-submit "job submit" -- job submit d --backdoor b --provider slow --model vtune-base --force --name slow
quiet_ok "job submit"
JS=$(jl "v['id']")
at_provider() { ctl --json job show "$JS" > "$T/js.json" && grep -q '"state": "\(submitted\|running\)"' "$T/js.json"; }
check "the slow job reaches the provider" wait_until 30 at_provider
run job-cancel "job cancel" -- job cancel "$JS"; quiet_ok "job cancel"
run job-register "job register" -- job register d --backdoor b --provider byhand --model my-model --base-model vtune-base
quiet_ok "job register"
run job-list "job list" -- job list; quiet_ok "job list"
run job-show "job show" -- job show "$J1"; quiet_ok "job show"
run job-watch+lines "job submit" -- job submit d --backdoor b --provider lost --model vtune-base --force --name lost --watch
check "a job that ends unknown: watch exit 1" test "$RC" = 1
check "and its last line is its end, state unknown" python3 -c "
import json,sys; v=[json.loads(l) for l in open('$LAST')]; sys.exit(0 if v[-1]['type']=='end' and v[-1]['state']=='unknown' else 1)"
curl -s -H "Authorization: Bearer sk-test" -d '{"spec":""}' "http://127.0.0.1:$SIM_PORT_lost/v1/_sim/faults" > /dev/null
run job-resolve "job resolve" -- job resolve lost --as submitted; quiet_ok "job resolve"

# ---- verification and the audit trail ------------------------------------------------------------
run verify "verify" -- verify "$J1" --wait --trials 10 --controls 10 --coverage 0
check "verify --wait: exit 0 or 1 per the verdict, nothing on stderr" test "$RC" -le 1 -a ! -s "$T/err"
A1=$(jl "v['id']")
run verify "verify" -- verify "$J1" --trials 10 --controls 10 --coverage 0; quiet_ok "verify (no --wait)"
two_records() { ctl --json audit list --job "$J1" > "$T/al.json" && [ "$(json_get "$T/al.json" "len(v)")" -ge 2 ]; }
check "the second verification is recorded" wait_until 120 two_records
run audit-list "audit list" -- audit list; quiet_ok "audit list"
run audit-show "audit show" -- audit show "$A1"; quiet_ok "audit show"
SHOWN=$LAST
run audit-export+lines "audit export" -- audit export; quiet_ok "audit export (JSON Lines on stdout)"
run audit-export "audit export" -- audit export -o "$T/audit.jsonl"; quiet_ok "audit export -o"
check "audit export -o: the count is the file's lines" test "$(jl "v['records']")" = "$(wc -l < "$T/audit.jsonl")"
run audit-verify "audit verify" -- audit verify; quiet_ok "audit verify"
run audit-attest "audit attest" -- audit attest "$A1" -o "$T/att.dsse"; quiet_ok "audit attest"
run attest-verify "attest verify" -- attest verify "$T/att.dsse" --key "$T/pub.pem"; quiet_ok "attest verify (valid)"
sed 's/"payload": "./"payload": "A/' "$T/att.dsse" > "$T/forged.dsse"
run attest-verify "attest verify" -- attest verify "$T/forged.dsse" --key "$T/pub.pem"
check "attest verify of an altered envelope: exit 1, ok false with the reason" \
    test "$RC" = 1 -a "$(jl "v['ok']")" = False -a -n "$(jl "v['reason']")"

# A log10 of -inf in the protocol (p = 0): null in the output, named in log10_zero.
printf '{"jsonrpc":"2.0","id":1,"method":"audit.show","params":{"id":"%s"}}\n' "$A1" |
    python3 "$(dirname "$0")/rpc.py" "$T/run/vtuned.sock" > "$T/raw.json"
check "log10: what the protocol says -inf is null in --json, and listed in log10_zero" python3 -c "
import json,sys
raw=json.loads(open('$T/raw.json').readline())['result']
out=json.load(open('$SHOWN'))
def walk(r, o, path, found):
    if isinstance(r, dict):
        for k in r:
            if 'log10' in k and r[k] in ('-inf', 'inf'):
                if o[k] is not None: sys.exit('%s.%s: %r is not null' % (path, k, o[k]))
                if r[k] == '-inf' and k not in o.get('log10_zero', []): sys.exit('%s.%s not in log10_zero' % (path, k))
                found.append(path + '.' + k)
            elif 'log10' in k and o[k] != r[k]: sys.exit('%s.%s changed' % (path, k))
            else: walk(r[k], o[k], path + '.' + k, found)
        for k in o.get('log10_zero', []):
            if r.get(k) != '-inf': sys.exit('%s: log10_zero names %s, which was %r' % (path, k, r.get(k)))
    elif isinstance(r, list):
        for i, x in enumerate(r): walk(x, o[i], '%s[%d]' % (path, i), found)
found=[]
walk(raw, out, 'audit', found)
print('# -inf in the protocol at:', ', '.join(found) or 'nowhere')
sys.exit(0 if found else 1)"
run audit-verify "audit verify" -- audit verify
check "audit verify still holds after the records were shown" test "$RC" = 0 -a "$(jl "v['ok']")" = True

# ---- schedules, backup, removal -----------------------------------------------------------------
run schedule-add "schedule add" -- schedule add "$J1" --every 1d; quiet_ok "schedule add"
S1=$(jl "v['id']")
run schedule-list "schedule list" -- schedule list; quiet_ok "schedule list"
run schedule-rm "schedule rm" -- schedule rm "$S1"; quiet_ok "schedule rm"
run backup "backup" -- backup -o "$T/backup.db"; quiet_ok "backup -o"
run backup "backup" -- backup; quiet_ok "backup"
run backdoor-rm "backdoor rm" -- backdoor rm b2; quiet_ok "backdoor rm"
run dataset-rm "dataset rm" -- dataset rm d2; quiet_ok "dataset rm"

# ---- errors: one object on stdout, nothing on stderr, the plain exit status ---------------------
# err DESCRIPTION STATUS CODE ARGS...: the run is NN-error.json.
err() {
    local d=$1 want_rc=$2 want_code=$3; shift 3
    N=$((N + 1))
    LAST="$OUT/$(printf %02d $N)-error.json"
    "$VTUNECTL" --json "$@" > "$LAST" 2> "$T/err"; RC=$?
    "$VTUNECTL" "$@" > /dev/null 2> "$T/err.plain"; local plain=$?
    check "$d: exit $want_rc, as without --json" test "$RC" = "$want_rc" -a "$plain" = "$want_rc"
    check "$d: nothing on stderr" test ! -s "$T/err"
    check "$d: code $want_code, the plain form's message" python3 -c "
import json,sys
v=json.load(open('$LAST'))
plain=open('$T/err.plain').read().strip()
sys.exit(0 if v['error']['code']==$want_code and 'vtunectl: '+v['error']['message']==plain else 1)"
}
S="-s $T/run/vtuned.sock"
err "a daemon error (not found)" 1 -32001 $S dataset show nope
err "a daemon error (conflict)" 1 -32002 $S dataset rm d
err "a usage error found by the daemon (--param)" 2 -32602 $S job submit d --backdoor b --provider ok --model m --param nope=1
err "a usage error (unknown command)" 2 -32100 $S datset list
err "a usage error (missing value)" 2 -32100 $S schedule add 1 --every
err "a usage error before --json" 2 -32100 -s
N=$((N + 1)); LAST="$OUT/$(printf %02d $N)-error.json"
"$VTUNECTL" --json > "$LAST" 2> "$T/err"; RC=$?
check "no command at all: exit 2, the error object, nothing on stderr" \
    test "$RC" = 2 -a ! -s "$T/err" -a "$(jl "v['error']['code']")" = -32100
err "an unreachable daemon" 1 -32101 -s "$T/nowhere.sock" status
err "a local file (export onto an existing file)" 1 -32103 $S dataset export d --backdoor b -o "$T/export.jsonl"
run job-watch+lines "job submit" -- job submit d --backdoor nope --provider ok --model vtune-base --watch
check "submit --watch refused: exit 1, nothing on stderr" test "$RC" = 1 -a ! -s "$T/err"
check "  the refusal is the stream's one line, of type error" python3 -c "
import json,sys
v=[json.loads(l) for l in open('$LAST')]
sys.exit(0 if len(v)==1 and v[0]['type']=='error' and v[0]['job_id'] is None and v[0]['error']['code']==-32001 else 1)"
run job-watch+lines "job watch" -- job watch 999999
check "job watch of no such job: exit 1" test "$RC" = 1 -a ! -s "$T/err"
check "  the error is one line with type error" python3 -c "
import json,sys
v=[json.loads(l) for l in open('$LAST')]
sys.exit(0 if len(v)==1 and v[0]['type']=='error' and v[0]['error']['code']==-32001 else 1)"

# ---- every command of the table was run ---------------------------------------------------------
"$VTUNECTL" __commands | tail -n +2 | cut -f1 > "$T/commands"
missing=""
while read -r c; do case "$RAN" in *"|$c|"*) ;; *) missing="$missing '$c'" ;; esac; done < "$T/commands"
check "every command of the table was run under --json${missing:+ (not:$missing)}" test -z "$missing"
missing=""
while read -r c; do [ -f "$SCHEMA_DIR/${c// /-}.json" ] || missing="$missing '$c'"; done < "$T/commands"
check "every command of the table has a schema${missing:+ (not:$missing)}" test -z "$missing"

# ---- validation ---------------------------------------------------------------------------------
node "$NODE_DIR/ctl_schema_check.mjs" "$SCHEMA_DIR" "$OUT" > "$T/ajv.out" 2>&1; rc=$?
sed 's/^/# /' "$T/ajv.out"
check "every output validates against its schema (ajv), and a broken copy of each does not" test "$rc" = 0

finish
