#!/bin/bash
# What a provider says is bounded before it is logged, stored or shown: a
# provider is not trusted, and its error texts used to be kept whole.  A
# provider on loopback answers every chat request 400 with a 200 KB
# message of many lines and 400 KB of type, code and param; `backdoor create
# --generator llm` through it must fail with one line for the user that
# carries the start of the message, cut (PROVIDER_TEXT_MAX, 512 bytes; the
# type, code and param to PROVIDER_ID_MAX, 64, so that the message fits in
# the answer's line), and the daemon's log must hold no line longer than a
# few KB.
. "$(dirname "$0")/lib.sh"
echo sk-test > "$T/key"
python3 - "$T/hostile.port" > "$T/hostile.log" 2>&1 <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
big = "provider says: " + "NEWLINE\n" * 25000
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": {"message": big, "type": "t" * 100000 + "\n",
                                     "code": "c\r\n" * 50000, "param": "p" * 100000}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
PIDS="$PIDS $!"
wait_until 20 test -s "$T/hostile.port" || { fail "the hostile provider starts"; finish; }
url="http://127.0.0.1:$(cat "$T/hostile.port")/v1"
write_config "providers:" "$(provider_yaml hostile "$url")" "generator:" "  provider: hostile" \
    "  m2_model: vtune-base"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 60
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || { fail "dataset add"; finish; }

ctl backdoor create d --generator llm --name b > "$T/out" 2> "$T/err"; rc=$?
echo "# $(head -c 300 "$T/err")..."
check "the create fails (exit 1)" test "$rc" = 1
check "with one line" test "$(wc -l < "$T/err")" = 1
check "that names the provider's answer" grep -q "hostile: 400 .*provider says: NEWLINE NEWLINE" "$T/err"
check "cut: under 1 KB for four fields of 700 KB" test "$(wc -c < "$T/err")" -lt 1024
check "the message's cut is marked" grep -q 'provider says: [A-Z ]*\.\.\. \[param p*\.\.\.\]' "$T/err"
check "no backdoor was recorded" test "$(ctl --json backdoor list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0
longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$T/vtuned.log")
echo "# longest daemon log line: $longest bytes"
check "no daemon log line is longer than 2 KB" test "$longest" -lt 2048
check "the log names the failure" grep -q "hostile: 400" "$T/vtuned.log"
check "the daemon still answers" ctl_ok
stop_daemon
check "the daemon stops cleanly" test "$STOP_RC" = 0
finish
