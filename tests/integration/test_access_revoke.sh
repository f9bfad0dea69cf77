#!/bin/bash
# Taking a user off the access list takes effect for the connections it
# already holds (review of issue 13 item 4).  SIGHUP applies allowed_uids
# "at once" (vtuned(8) SIGNALS), but it was checked only when a connection
# was made: a user removed from the list kept every connection already
# open (idle ones are never timed out) and could go on revealing secrets.
# Here uid 65534 (via setpriv) holds a connection, allowed_uids drops it,
# SIGHUP: its next request must be refused and the connection closed,
# while root's connection made before the reload is still served.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root, to act as a second uid with setpriv --reuid 65534"
command -v setpriv > /dev/null || skip "setpriv (util-linux) is not installed"
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; }
NPY=""
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
    as_nobody "$p" -c "" 2> /dev/null && { NPY=$p; break; }
done
[ -n "$NPY" ] || skip "uid 65534 can run no python3 (needed for the raw client)"

chmod 0755 "$T"
write_config "allowed_uids: [65534]" "socket_mode: \"0666\""
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"

# A client that makes one request, waits for $T/go (bounded), makes another.
cat > "$T/client.py" <<'PY'
import json, os, socket, sys, time
sock, go = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
s.settimeout(20)
f = s.makefile("rb")
def call(i):
    try:
        s.sendall(b'{"jsonrpc":"2.0","id":%d,"method":"dataset.list"}\n' % i)
        l = f.readline()
    except OSError as e:
        return "error " + type(e).__name__
    if not l:
        return "closed"
    m = json.loads(l)
    return "result" if "result" in m else "code %d" % m["error"]["code"]
print("before", call(1), flush=True)
end = time.monotonic() + 20
while not os.path.exists(go) and time.monotonic() < end:
    time.sleep(0.05)
r = call(2)
if r.startswith("code"):  # a refusal line: what follows it?
    try:
        r += " then " + ("closed" if not f.readline() else "more")
    except OSError as e:
        r += " then error " + type(e).__name__
print("after", r, flush=True)
PY
as_nobody "$NPY" "$T/client.py" "$SOCK" "$T/go" > "$T/nobody.out" 2>&1 &
NOBODY=$!
python3 "$T/client.py" "$SOCK" "$T/go" > "$T/root.out" 2>&1 &
ROOT=$!
wait_until 20 grep -q before "$T/nobody.out"
wait_until 20 grep -q before "$T/root.out"
check "uid 65534 is served before the reload" grep -q 'before result' "$T/nobody.out"

sed -i 's/^allowed_uids: \[65534\]$/allowed_uids: []/' "$T/vtuned.yaml"
kill -HUP "$DAEMON_PID"
check "the reload applies allowed_uids" wait_until 20 grep -q 'configuration reloaded: .*allowed_uids' "$T/vtuned.log"
check "the daemon closes the connection of uid 65534, naming it" \
    wait_until 20 grep -q 'closing the connection of uid 65534 pid .*: no longer an allowed user' "$T/vtuned.log"
touch "$T/go"
wait "$NOBODY"
wait "$ROOT"
sed 's/^/# nobody: /' "$T/nobody.out"
sed 's/^/# root: /' "$T/root.out"
# The refusal line may arrive before the second request is read: either
# way no second answer, and the connection ends.
check "its next request is not served" grep -Eq '^after (code -32003|closed|error)' "$T/nobody.out"
check "and the connection is closed" grep -Eq '^after (code -32003 then closed|closed|error [A-Za-z]+)$' "$T/nobody.out"
check "root's connection from before the reload is still served" grep -qx 'after result' "$T/root.out"
as_nobody "$VTUNECTL" -s "$SOCK" -q dataset list > "$T/new.out" 2>&1
check "a new connection of uid 65534 is refused" grep -q 'permission denied' "$T/new.out"
stop_daemon
check "the daemon exits 0" test "$STOP_RC" = 0
finish
