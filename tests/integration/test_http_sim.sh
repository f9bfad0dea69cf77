#!/bin/bash
# test_http_sim.sh — the HTTP layer end to end: the provider client with
# the openai adapter over the libcurl ⇄ libuv glue, against a real
# vtune-sim on loopback (bearer key required, jobs of half a second).  The
# C driver tests/integration/test_http_provider switches the simulator's
# faults itself through its never-faulted /v1/_sim/faults endpoint, so one
# simulator serves the clean part and the faulty part.  A sanitizer report
# in the simulator's log fails the test too.
. "$(dirname "$0")/lib.sh"

DRIVER="$top_builddir/tests/integration/test_http_provider"
[ -x "$DRIVER" ] || skip "$DRIVER not built"
[ -x "$VTUNE_SIM" ] || skip "$VTUNE_SIM not built"
TRAIN="$top_srcdir/tests/data/sample-chat.jsonl"
[ -r "$TRAIN" ] || skip "$TRAIN missing"

KEY="sk-sim-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -p "$T/cache"
"$VTUNE_SIM" --listen 127.0.0.1:0 --port-file "$T/sim.port" --api-key "$KEY" \
    --job-seconds 0.5 --cache-dir "${VTUNE_SIM_CACHE:-$T/cache}" >"$T/sim.out" 2>"$T/sim.log" &
PIDS="$PIDS $!"
if ! wait_until 120 test -s "$T/sim.port"; then
    sed 's/^/# /' "$T/sim.log"
    fail "vtune-sim did not start"
    exit 1
fi
BASE="http://127.0.0.1:$(cat "$T/sim.port")"

env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
    "$DRIVER" "$BASE" "$KEY" "$TRAIN" 2>"$T/driver.log"
rc=$?
if [ $rc -eq 0 ]; then ok "driver passed"; else fail "driver exit $rc"; tail -40 "$T/driver.log" | sed 's/^/# /'; fi
if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/sim.log" "$T/driver.log"; then
    fail "sanitizer report"; grep -E -A12 'Sanitizer|runtime error:' "$T/sim.log" "$T/driver.log" | head -40
else
    ok "no sanitizer report"
fi
if grep -q -- "$KEY" "$T/driver.log"; then fail "the key appears in the driver's log"; else ok "the key never appears in the log"; fi
echo "1..$CHECKS"
[ "$FAILS" -eq 0 ]
