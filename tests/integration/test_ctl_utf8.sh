#!/bin/bash
# Every request is answered, also when the daemon shortens a client's text
# (review of issue 13's control plane).  Messages quote client text with
# "%.64s" or into fixed buffers, and a file's label is kept to 1024 bytes;
# a cut inside a UTF-8 character made a string jansson refuses, so:
#   - `dataset show` of a long non-ASCII name got no answer at all (vtunectl
#     waited for ever), as did an unknown method with such a name;
#   - a dataset imported from a path longer than 1024 bytes with a
#     character across that byte was stored, but answered as null and left
#     out of `dataset list` (json_pack failed on its source).
. "$(dirname "$0")/lib.sh"
write_config
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"

# --- a name of 1 + 100 two-byte characters: "%.80s" cuts one in half.
long="a$(printf 'é%.0s' $(seq 100))"
timeout 10 "$VTUNECTL" -s "$SOCK" dataset show "$long" > "$T/show" 2>&1; rc=$?
sed 's/^/# /' "$T/show" | cut -c1-200
check "dataset show of a long non-ASCII name is answered (exit 1, not a timeout)" test "$rc" = 1
check "saying there is no such dataset" grep -q "no dataset 'a" "$T/show"
timeout 10 "$VTUNECTL" -s "$SOCK" job show "$long" > /dev/null 2>&1; rc=$?
check "job show likewise (exit 1)" test "$rc" = 1

# --- raw requests: an unknown method cut by "%.64s", a parse error.
python3 - "$SOCK" > "$T/raw" <<'PY'
import json, socket, sys
for line in ['{"jsonrpc":"2.0","id":1,"method":"' + "x" * 63 + 'é"}',
             '{"jsonrpc":"2.0","id":2,"method":"backdoor.show","params":{"id":"a' + "é" * 100 + '"}}']:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.settimeout(10)
    s.sendall(line.encode() + b"\n")
    try:
        print(json.dumps(json.loads(s.makefile("rb").readline())["error"]["code"]))
    except (socket.timeout, ValueError, KeyError):
        print("no answer")
    s.close()
PY
sed 's/^/# /' "$T/raw"
check "an unknown method whose name is cut in a character gets -32601" line_matches 1 '^-32601$' "$T/raw"
check "backdoor.show of such a name gets -32001" line_matches 2 '^-32001$' "$T/raw"

# --- a path over 1024 bytes whose 1024th byte is inside "é".
make_dataset "$T/d.jsonl" 30
long_path=$(python3 - "$T" <<'PY'
import os, sys
base = os.path.realpath(sys.argv[1]) + "/"
path = base
while len((path + "d" * 200 + "/").encode()) < 1000:
    path += "d" * 200 + "/"
pad = 1023 - len(path.encode())          # 'é' takes bytes 1023 and 1024
name = "f" * pad + "é" + "g" * 20 + ".jsonl"
os.makedirs(path, exist_ok=True)
print(path + name)
PY
)
cp "$T/d.jsonl" "$long_path"
echo "# path of $(printf %s "$long_path" | wc -c) bytes"
(cd "$(dirname "$long_path")" && timeout 20 "$VTUNECTL" -s "$SOCK" --json dataset add "./$(basename "$long_path")" --name longpath) > "$T/add.json" 2>&1
sed 's/^/# /' "$T/add.json" | cut -c1-200
check "the import is answered with its examples" test "$(json_get "$T/add.json" "v['examples']")" = 30
check "its source is the path up to the last whole character (1023 bytes)" \
    test "$(json_get "$T/add.json" "len(v['source'].encode())")" = 1023
ctl --json dataset list > "$T/list.json"
check "dataset list shows it" test "$(json_get "$T/list.json" "[d['name'] for d in v]")" = "['longpath']"
ctl --json dataset show longpath > "$T/ds.json"
check "dataset show answers it" test "$(json_get "$T/ds.json" "v['examples']")" = 30

stop_daemon
check "the daemon exits 0" test "$STOP_RC" = 0
finish
