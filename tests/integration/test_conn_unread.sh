#!/bin/bash
# Replies a client leaves unread count against control.max_buffered, like
# unfinished request lines (review of issue 13 item 3).  Before, only each
# connection's own backlog was bounded (16 MiB, CTL_MAX_PENDING_WRITE), so
# max_connections clients that send requests and never read kept up to
# 256 x 16 MiB in the daemon whatever max_buffered said, and that memory
# stayed after they left (the heap was trimmed after request bursts only).
# Here 20 clients each send 2 MB of one-byte bad lines ("x\n"), each
# answered by a parse-error line of about 100 bytes, and read nothing:
# against max_buffered = 8MiB the daemon must cut them off, grow by far
# less than 20 x 16 MiB, and give the memory back.  RSS bounds are memory
# bounds, not timings (before the fix: about +320 MiB).
. "$(dirname "$0")/lib.sh"
write_config "control:" "  max_buffered: 8MiB"
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"

python3 - "$SOCK" "$DAEMON_PID" > "$T/facts.json" <<'PY'
import json, socket, sys, time
sock, pid = sys.argv[1], int(sys.argv[2])
def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
N, PER = 20, 2_000_000
before = rss_kib()
conns = []
for _ in range(N):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.setblocking(False)
    conns.append(s)
sent, cut, peak = [0] * N, [False] * N, before
chunk = b"x\n" * 32768
end = time.monotonic() + 60
while time.monotonic() < end and not all(cut[i] or sent[i] >= PER for i in range(N)):
    for i, s in enumerate(conns):
        if cut[i] or sent[i] >= PER:
            continue
        try:
            sent[i] += s.send(chunk)
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            cut[i] = True
    peak = max(peak, rss_kib())
    time.sleep(0.002)
# Whatever the daemon still holds for those not cut: let it settle, then measure.
time.sleep(0.5)
held = max(peak, rss_kib())
# status on a fresh connection while they are still open
st = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
st.connect(sock)
st.settimeout(10)
st.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
status_ok = "result" in json.loads(st.makefile("rb").readline())
st.close()
for s in conns:
    s.close()
# memory back: bounded wait for RSS to come down
after = rss_kib()
end = time.monotonic() + 10
while time.monotonic() < end and after - before > 16 * 1024:
    time.sleep(0.1)
    after = rss_kib()
print(json.dumps({"before": before, "held": held, "after": after, "cut": sum(cut),
                  "sent_mb": sum(sent) / 1e6, "status_ok": status_ok}))
PY
cat "$T/facts.json" | sed 's/^/# /'
f() { json_get "$T/facts.json" "$1"; }
check "clients that do not read are cut off" test "$(f "v['cut'] > 0")" = True
check "naming control.max_buffered in the log" \
    grep -q 'is not reading its replies, and what all clients leave unread would exceed control.max_buffered' "$T/vtuned.log"
check "status is answered meanwhile" test "$(f "v['status_ok']")" = True
# Not under AddressSanitizer: its allocator keeps freed memory in
# quarantine and pads every block (as in test_conn_limits.sh).
if grep -aq __asan_init "$VTUNED"; then
    echo "# AddressSanitizer build: RSS bounds not checked (see above)"
else
    check "RSS grew by at most 64 MiB (8 MiB of replies and their overhead, not 20 x 16 MiB)" \
        test "$(f "v['held'] - v['before'] <= 64 * 1024")" = True
    check "RSS after is within 16 MiB of before" test "$(f "v['after'] - v['before'] <= 16 * 1024")" = True
fi
check "the daemon still answers" ctl_ok
stop_daemon
check "the daemon exits 0" test "$STOP_RC" = 0
finish
