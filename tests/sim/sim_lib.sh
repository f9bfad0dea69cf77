# sim_lib.sh — helpers for vtune-sim's own shell tests (sourced).
#
# Each test gets a private temp dir, starts the real vtune-sim on
# 127.0.0.1 port 0 (the bound port is read back from --port-file), talks to
# it with curl, reads JSON with python3, and stops every simulator it
# started by PID on exit.  Waiting is "poll until a deadline", never a
# bare sleep.
#
# A PID is signalled only while this shell has not reaped that child yet
# (sim_running).  Once reaped, the number is free: under `make -j2 check`
# the kernel hands out a few hundred ids a second (every thread takes one;
# pid_max is 32768 here), so a stale number soon belongs to another
# process or to a thread of one, and kill(2) given a thread's id signals
# that thread's whole process: say, another test's simulator mid-load.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
VTUNE_SIM="$top_builddir/vtune-sim"
T=$(mktemp -d "${TMPDIR:-/tmp}/vtune-simtest.XXXXXX")
SIM_PIDS=""
FAILS=0
CHECKS=0

# sim_running PID: true while PID is a child of this shell that is still
# running (or exited but not yet reaped): only then is it ours to signal.
sim_running() { jobs -rp | grep -qx "$1"; }
sim_exited() { ! sim_running "$1"; }

sim_cleanup() {
    for p in $SIM_PIDS; do sim_running "$p" && kill -TERM "$p" 2>/dev/null; done
    for p in $SIM_PIDS; do
        for _ in $(seq 1 100); do sim_running "$p" || break; sleep 0.05; done
        sim_running "$p" && kill -KILL "$p" 2>/dev/null
    done
    if [ "$FAILS" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# kept $T"; fi
}
trap sim_cleanup EXIT
trap 'exit 130' INT TERM

skip() { echo "SKIP: $*"; exit 77; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}
finish() {
    # Any simulator that hit a sanitizer (ASan, UBSan, LeakSanitizer) fails the test.
    for log in "$T"/*.log; do
        [ -f "$log" ] || continue
        if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
            fail "sanitizer report in $(basename "$log")"
            grep -E -A12 'Sanitizer|runtime error:' "$log" | head -40 | sed 's/^/# /'
        fi
    done
    echo "# $CHECKS checks, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit $?
}

for tool in curl python3; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$VTUNE_SIM" ] || skip "$VTUNE_SIM not built"

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_until() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + limit * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$end" ]; do
        "$@" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# start_sim NAME [ARGS...]: starts vtune-sim; sets SIM_PID, SIM_PORT, SIM_URL
# (and NAME's log in $T/NAME.log).
start_sim() {
    local name=$1; shift
    rm -f "$T/$name.port"
    "$VTUNE_SIM" --listen 127.0.0.1:0 --port-file "$T/$name.port" "$@" \
        >"$T/$name.out" 2>"$T/$name.log" &
    SIM_PID=$!
    SIM_PIDS="$SIM_PIDS $SIM_PID"
    if ! wait_until 60 test -s "$T/$name.port"; then
        echo "# vtune-sim $name did not start; log:"; sed 's/^/# /' "$T/$name.log"
        return 1
    fi
    SIM_PORT=$(cat "$T/$name.port")
    SIM_URL="http://127.0.0.1:$SIM_PORT"
}

# stop_sim PID: SIGTERM and wait (bounded); sets STOP_RC (the simulator's
# exit status, as wait reports it) and forgets PID.
stop_sim() {
    local pid=$1 p rest=""
    if sim_running "$pid"; then
        kill -TERM "$pid"
        wait_until 30 sim_exited "$pid" || { sim_running "$pid" && kill -KILL "$pid"; }
    fi
    wait "$pid"; STOP_RC=$?
    for p in $SIM_PIDS; do [ "$p" = "$pid" ] || rest="$rest $p"; done
    SIM_PIDS=$rest
}

# api METHOD PATH [CURL ARGS...]: the body goes to $T/body, headers to
# $T/headers; sets CODE (000 when there was no HTTP answer) and CURL_RC.
# Uses $KEY as the bearer key when set.
api() {
    local method=$1 path=$2; shift 2
    local auth=()
    [ -n "${KEY:-}" ] && auth=(-H "Authorization: Bearer $KEY")
    CURL_RC=0
    CODE=$(curl -sS -g --max-time 60 -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" \
        "${auth[@]}" "$@" "$SIM_URL$path" 2>"$T/curl.err") || CURL_RC=$?
}

# other_key_api KEY_OR_EMPTY METHOD PATH [CURL ARGS...]: api with another key.
other_key_api() {
    local saved=${KEY:-}
    KEY=$1; shift
    api "$@"
    KEY=$saved
}

# post_json PATH JSON: POST a JSON body.
post_json() { api POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }

# jget EXPR [FILE]: evaluates a Python expression over the JSON in FILE
# (default $T/body) bound to v; prints strings raw, booleans as True/False,
# anything else as JSON.
jget() {
    python3 - "${2:-$T/body}" "$1" <<'PY'
import json, sys
try:
    v = json.load(open(sys.argv[1], encoding="utf-8"))
    r = eval(sys.argv[2], {"v": v, "re": __import__("re"), "math": __import__("math"), "json": json})
except Exception as e:
    print("<jget error: %s>" % e)
    sys.exit(1)
print(r if isinstance(r, (str, bool)) else json.dumps(r))
PY
}

# header NAME: value of a response header of the last api call.
header() { tr -d '\r' <"$T/headers" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" \
    'BEGIN{FS=": "} tolower($1)==n {print $2}' | tail -1; }

# is_error_json: the last body is the spec's ErrorResponse.
is_error_json() {
    [ "$(jget 'isinstance(v["error"]["message"], str) and isinstance(v["error"]["type"], str) and "param" in v["error"] and "code" in v["error"]')" = True ]
}

# wait_job_status ID STATUS SECONDS: polls the job until it has STATUS.
job_has_status() { api GET "/v1/fine_tuning/jobs/$1"; [ "$(jget 'v["status"]')" = "$2" ]; }
wait_job_status() { wait_until "$3" job_has_status "$1" "$2"; }
