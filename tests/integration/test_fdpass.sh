#!/bin/bash
# The daemon opens no path a client names (issue 13 item 2; vtuned(8)
# CONTROL PROTOCOL).  vtunectl opens the dataset and creates the export
# with the caller's own rights and passes the descriptors (SCM_RIGHTS); the
# daemon runs as root here, the caller as a real second uid (65534, via
# setpriv), so a daemon that opened paths itself would do what the caller
# cannot:
#   - export into a root-owned directory creates nothing there;
#   - a 0644 file inside another user's 0700 directory is not imported;
#   - a FIFO (or a device, a directory, a socket) is refused at once, and
#     the worker threads stay free (a following import works);
#   - a raw request naming a path is refused with a line that says how.
# The root-owned directory stands in for /etc: the same rights, without
# touching the machine's /etc should the daemon misbehave.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root, to act as a second uid with setpriv --reuid 65534"
command -v setpriv > /dev/null || skip "setpriv (util-linux) is not installed"
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; }
as_nobody test -x "$VTUNECTL" || skip "uid 65534 cannot run $VTUNECTL (a directory above it is closed)"
NPY=""
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
    as_nobody "$p" -c "" 2> /dev/null && { NPY=$p; break; }
done
[ -n "$NPY" ] || skip "uid 65534 can run no python3 (needed for the raw clients)"

chmod 0755 "$T" # the second uid reaches the socket and its own files
# socket_mode 0666: the kernel lets uid 65534 connect and the daemon's own
# check (allowed_uids) lets it in, so what is tested is what it may open.
write_config "allowed_uids: [65534]" "socket_mode: \"0666\""
export UV_THREADPOOL_SIZE=4 # the FIFO check below occupies every worker
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"
RPC="$NPY $(cd "$(dirname "$0")" && pwd)/rpc.py $SOCK"
FDRPC="$NPY $(cd "$(dirname "$0")" && pwd)/fdrpc.py $SOCK"
nctl() { as_nobody "$VTUNECTL" -s "$SOCK" "$@"; }
count_ds() { ctl --json dataset list | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }

mkdir -p "$T/pub" && chown 65534:65534 "$T/pub"
make_dataset "$T/pub/d.jsonl" 500
ctl -q dataset add "$T/pub/d.jsonl" --name d > /dev/null || fail "set-up import"
ctl -q backdoor create d --name b1 > /dev/null || fail "set-up backdoor"
nobody_in() { nctl -q dataset list > /dev/null; }
check "uid 65534 is let in (allowed_uids)" nobody_in

# --- export: the caller's rights decide where a file may be created.
mkdir -m 0755 "$T/etc" # root's, like /etc
nctl dataset export d --backdoor b1 -o "$T/etc/x.jsonl" > "$T/e1" 2>&1; rc=$?
sed 's/^/# /' "$T/e1"
check "export by uid 65534 into root's directory fails (exit 1)" test "$rc" = 1
check "and creates nothing there" test ! -e "$T/etc/x.jsonl"
check "the line names the path and the caller's own errno" \
    grep -q "$T/etc/x.jsonl: cannot create: Permission denied" "$T/e1"
echo '{"jsonrpc":"2.0","id":1,"method":"dataset.export","params":{"id":"d","backdoor":"b1","output":"'"$T"'/etc/y.jsonl"}}' |
    as_nobody $RPC > "$T/e2"
sed 's/^/# /' "$T/e2"
check "a raw export request naming a path is refused (-32602)" grep -q '"code":-32602' "$T/e2"
check "and creates nothing" test ! -e "$T/etc/y.jsonl"
nctl --json dataset export d --backdoor b1 -o "$T/pub/mine.jsonl" > "$T/mine.json"
check "export by uid 65534 into its own directory works" test $? = 0
check "the file is the caller's, mode 0600" test "$(stat -c '%u %a' "$T/pub/mine.jsonl")" = "65534 600"
check "and holds D u D' (its sha256 is the answer's)" \
    test "$(sha256sum < "$T/pub/mine.jsonl" | cut -d' ' -f1)" = "$(json_get "$T/mine.json" "v['sha256']")"
nctl dataset export d --backdoor nope -o "$T/pub/refused.jsonl" > /dev/null 2>&1; rc=$?
check "an export the daemon refuses fails (exit 1) and leaves no file" \
    test "$rc" = 1 -a ! -e "$T/pub/refused.jsonl"
nctl dataset export d --backdoor b1 -o "$T/pub/mine.jsonl" > "$T/e3" 2>&1; rc=$?
check "an existing file is never overwritten (exit 1)" test "$rc" = 1
check "saying so" grep -q "mine.jsonl: cannot create: File exists" "$T/e3"
check "and the file is untouched" \
    test "$(sha256sum < "$T/pub/mine.jsonl" | cut -d' ' -f1)" = "$(json_get "$T/mine.json" "v['sha256']")"
dsum=$(sha256sum < "$T/pub/d.jsonl")
printf 'w:%s {"jsonrpc":"2.0","id":1,"method":"dataset.export","params":{"id":"d","backdoor":"b1","fd":0}}\n' \
    "$T/pub/d.jsonl" | $FDRPC > "$T/e4"
check "a descriptor of a non-empty file is refused for export" grep -q 'not empty' "$T/e4"
check "and the file is untouched" test "$(sha256sum < "$T/pub/d.jsonl")" = "$dsum"
printf 'r:%s {"jsonrpc":"2.0","id":1,"method":"dataset.export","params":{"id":"d","backdoor":"b1","fd":0}}\n' \
    "$T/pub/empty" > "$T/req" && : > "$T/pub/empty" && $FDRPC < "$T/req" > "$T/e5"
check "a descriptor not open for writing is refused for export" grep -q 'not open for writing' "$T/e5"

# --- import: the caller's rights decide what may be read.
mkdir -m 0700 "$T/alice" && make_dataset "$T/alice/secret.jsonl" 20 && chmod 0644 "$T/alice/secret.jsonl"
chown -R 4242:4242 "$T/alice"
n0=$(count_ds)
nctl dataset add "$T/alice/secret.jsonl" > "$T/i1" 2>&1; rc=$?
sed 's/^/# /' "$T/i1"
check "uid 65534 cannot import a 0644 file in another user's 0700 directory (exit 1)" test "$rc" = 1
check "the line names the path and the caller's own errno" \
    grep -q "$T/alice/secret.jsonl: cannot open: Permission denied" "$T/i1"
echo '{"jsonrpc":"2.0","id":1,"method":"dataset.add","params":{"path":"'"$T"'/alice/secret.jsonl","name":"stolen"}}' |
    as_nobody $RPC > "$T/i2"
sed 's/^/# /' "$T/i2"
check "nor by a raw request naming the path (-32602)" grep -q '"code":-32602' "$T/i2"
check "whose answer says how: pass the descriptor (SCM_RIGHTS)" grep -q 'SCM_RIGHTS' "$T/i2"
check "nothing was imported" test "$(count_ds)" = "$n0"
echo '{"jsonrpc":"2.0","id":1,"method":"dataset.add","params":{"path":"'"$T"'/pub/d.jsonl","name":"bypath"}}' | $RPC > "$T/i3"
check "a raw request naming a path is refused for root too" grep -q '"code":-32602' "$T/i3"
check "nothing was imported" test "$(count_ds)" = "$n0"

# --- not a regular file: refused at once, no worker held.
mkfifo "$T/pub/fifo"
pids=""
for i in 1 2 3 4; do # as many as there are workers
    timeout 10 "$VTUNECTL" -s "$SOCK" dataset add "$T/pub/fifo" --name "fifo$i" > "$T/f$i" 2>&1 &
    pids="$pids $!"
done
frc=0
for p in $pids; do wait "$p" || [ $? = 1 ] || frc=1; done
sed 's/^/# /' "$T/f1"
check "a FIFO is refused at once (exit 1, not a timeout)" test "$frc" = 0
check "saying it is not a regular file" grep -q "fifo: not a regular file (a FIFO)" "$T/f1"
{
    printf 'r:%s {"jsonrpc":"2.0","id":1,"method":"dataset.add","params":{"fd":0,"name":"f1"}}\n' "$T/pub/fifo"
    printf 'r:/dev/null {"jsonrpc":"2.0","id":2,"method":"dataset.add","params":{"fd":0,"name":"f2"}}\n'
    printf 'r:%s {"jsonrpc":"2.0","id":3,"method":"dataset.add","params":{"fd":0,"name":"f3"}}\n' "$T/pub"
    printf 'sock {"jsonrpc":"2.0","id":4,"method":"dataset.add","params":{"fd":0,"name":"f4"}}\n'
    printf 'p:%s {"jsonrpc":"2.0","id":5,"method":"dataset.add","params":{"fd":0,"name":"f5"}}\n' "$T/pub/d.jsonl"
    printf '{"jsonrpc":"2.0","id":6,"method":"dataset.add","params":{"fd":0,"name":"f6"}}\n'
    printf 'r:%s {"jsonrpc":"2.0","id":7,"method":"dataset.add","params":{"fd":1,"name":"f7"}}\n' "$T/pub/d.jsonl"
} > "$T/req"
timeout 20 $FDRPC < "$T/req" > "$T/f"
sed 's/^/# /' "$T/f"
check "a raw client's FIFO descriptor is refused" line_matches 1 '"id":1,.*"code":-32004.*a FIFO' "$T/f"
check "a device is refused" line_matches 2 '"id":2,.*"code":-32004.*a device' "$T/f"
check "a directory is refused" line_matches 3 '"id":3,.*"code":-32004.*a directory' "$T/f"
check "a socket is refused" line_matches 4 '"id":4,.*"code":-32004.*a socket' "$T/f"
check "an O_PATH descriptor is refused" line_matches 5 '"id":5,.*"code":-32004.*not open for reading' "$T/f"
check "no descriptor: -32602 saying how" line_matches 6 '"id":6,.*"code":-32602.*SCM_RIGHTS' "$T/f"
check "an index past those sent: -32602" line_matches 7 '"id":7,.*"code":-32602.*1 was sent' "$T/f"
timeout 20 "$VTUNECTL" -s "$SOCK" --json dataset add "$T/pub/d.jsonl" --name after > "$T/after.json" 2>&1
check "the workers are free: a following import works" test "$(json_get "$T/after.json" "v['examples']")" = 500
check "recording the name vtunectl gave as its source" test "$(json_get "$T/after.json" "v['source']")" = "$T/pub/d.jsonl"
printf 'r:%s {"jsonrpc":"2.0","id":1,"method":"dataset.add","params":{"fd":0,"name":"raw","file":"my data"}}\n' \
    "$T/pub/d.jsonl" | as_nobody $FDRPC > "$T/raw"
check "a raw client passing a descriptor imports (the documented way)" grep -q '"examples":500' "$T/raw"
# Which line a descriptor belongs to: one sent with the first bytes of a
# line split over two sends, and two pipelined lines each with its own.
make_dataset "$T/pub/small.jsonl" 20
"$NPY" - "$SOCK" "$T/pub/d.jsonl" "$T/pub/small.jsonl" > "$T/pipe" <<'PY'
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
big, small = os.open(sys.argv[2], os.O_RDONLY), os.open(sys.argv[3], os.O_RDONLY)
def line(i, name):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "dataset.add",
                       "params": {"fd": 0, "name": name}}).encode() + b"\n"
l1 = line(1, "split")
socket.send_fds(s, [l1[:12]], [big])
s.sendall(l1[12:])
socket.send_fds(s, [line(2, "pipe2")], [small])
socket.send_fds(s, [line(3, "pipe3")], [big])
got, f = {}, s.makefile("rb")
while len(got) < 3:
    m = json.loads(f.readline())
    if "id" in m:
        got[m["id"]] = m.get("result", {}).get("examples", m.get("error"))
print(got[1], got[2], got[3])
PY
echo "# examples imported by lines 1 2 3: $(cat "$T/pipe")"
check "each line imports the file sent with it (500 20 500)" test "$(cat "$T/pipe")" = "500 20 500"
check "no dataset named after a refused request" test "$(count_ds)" = $((n0 + 5))

stop_daemon
check "clean stop (no worker left blocked)" test "$STOP_RC" = 0
finish
