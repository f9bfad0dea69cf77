#!/bin/bash
# kill -9 during a large import leaves no partial dataset, and the daemon
# restarts cleanly (removing the half-written copy, and a held-out split's
# scratch file left by a crash) and imports again.
. "$(dirname "$0")/lib.sh"
write_config
start_daemon || { fail "daemon starts"; finish; }

# ~150 MB of prompt/completion lines, made quickly.
python3 - "$T/big.jsonl" <<'PY'
import sys
line = '{"prompt":"%s","completion":"%s"}\n' % ("p" * 700, "c" * 700)
with open(sys.argv[1], "w") as f:
    for _ in range(100000):
        f.write(line)
PY
size=$(stat -c %s "$T/big.jsonl")
echo "# dataset of $size bytes"

"$VTUNECTL" -s "$T/run/vtuned.sock" dataset add "$T/big.jsonl" --name big > "$T/add.out" 2>&1 &
CTL_PID=$!
# Wait until the import has written part of its temporary copy, then kill -9.
partial() { f=$(ls "$T"/state/tmp/import-* 2>/dev/null | head -1); [ -n "$f" ] && [ "$(stat -c %s "$f")" -gt 1000000 ]; }
if wait_until 30 partial; then
    ok "import is under way (temporary copy growing)"
else
    fail "import started"
fi
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
wait "$CTL_PID"; rc=$?
check "vtunectl reports the lost daemon (exit 1)" test "$rc" = 1
check "with a clear message" grep -q "closed the connection" "$T/add.out"
tmpfiles=$(ls "$T/state/tmp" | wc -l)
echo "# temporary files left by the crash: $tmpfiles"
# and what a held-out split's scratch file would leave where the file
# system has no O_TMPFILE and the daemon died before unlinking it
printf 'x' > "$T/state/datasets/.holdout-Ab3xY9"
# and a self-audit's (its long pairs), beside a built file
mkdir -p "$T/state/built"
printf 'x' > "$T/state/built/.selfaudit-Qr7zK2"

start_daemon || { fail "daemon restarts after kill -9"; finish; }
ok "daemon restarts after kill -9"
ctl --json dataset list > "$T/list.json"
check "no dataset row survived the crash" test "$(json_get "$T/list.json" "len(v)")" = 0
check "no temporary file remains" test "$(ls "$T/state/tmp" | wc -l)" = 0
check "no stored copy or split scratch file remains" test "$(ls -A "$T/state/datasets" | wc -l)" = 0
check "no self-audit scratch file remains in built/" test "$(ls -A "$T/state/built" | wc -l)" = 0
check "the cleanup was logged" grep -q "left by an interrupted import" "$T/vtuned.log"

ctl --json dataset add "$T/big.jsonl" --name big > "$T/ok.json"
check "the import then succeeds with 100000 examples" test "$(json_get "$T/ok.json" "v['examples']")" = 100000
check "and the right hash" test "$(json_get "$T/ok.json" "v['sha256']")" = "$(sha256sum < "$T/big.jsonl" | cut -d' ' -f1)"
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
