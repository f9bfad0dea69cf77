#!/bin/bash
# Control protocol: JSON-RPC errors keep the connection usable; an over-long
# line is refused and the connection closed; many clients at once; peers
# that are not allowed are refused.
. "$(dirname "$0")/lib.sh"
write_config "max_request_size: 4096"
start_daemon || { fail "daemon starts"; finish; }
RPC="python3 $(dirname "$0")/rpc.py $T/run/vtuned.sock"

$RPC > "$T/out" <<'REQ'
this is not json
{"jsonrpc":"2.0","id":1,"method":"no.such.method"}
{"jsonrpc":"2.0","id":2,"method":"dataset.show","params":[1]}
{"jsonrpc":"2.0","id":3,"method":"dataset.show","params":{}}
{"id":4,"method":"status"}
{"jsonrpc":"2.0","id":5,"method":"status"}
REQ
sed 's/^/# /' "$T/out"
check "malformed JSON gets a parse error (-32700)" line_matches 1 '"code":-32700' "$T/out"
check "unknown method gets -32601 with its id" line_matches 2 '"id":1.*"code":-32601' "$T/out"
check "array params get -32602" line_matches 3 '"code":-32602' "$T/out"
check "missing id param gets -32602 naming params.id" line_matches 4 'params.id' "$T/out"
check "missing jsonrpc member gets -32600" line_matches 5 '"code":-32600' "$T/out"
check "the same connection still answers status" line_matches 6 '"id":5,"result"' "$T/out"

printf '{"jsonrpc":"2.0","id":1,"method":"status"}\n!big 10000\n!expect-close\n' | $RPC > "$T/big"
sed 's/^/# /' "$T/big"
check "an over-long request is refused with -32006" grep -q '"code":-32006' "$T/big"
check "and the connection is closed" grep -q '^CLOSED$' "$T/big"
check "the daemon still serves others" ctl_ok

# 50 clients at once, each asking twice.
clients=""
for i in $(seq 1 50); do
    printf '{"jsonrpc":"2.0","id":1,"method":"status"}\n{"jsonrpc":"2.0","id":2,"method":"dataset.list"}\n' \
        | $RPC > "$T/c$i" &
    clients="$clients $!"
done
for j in $clients; do wait "$j"; done
n=$(cat "$T"/c* | grep -c '"result"')
check "50 concurrent clients all answered (100 replies, got $n)" test "$n" = 100

# A peer that is not root, not the daemon's user and not in an allowed group.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 0755 "$T" "$T/run"; chmod 0666 "$T/run/vtuned.sock"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$VTUNECTL" -s "$T/run/vtuned.sock" status \
        > /dev/null 2>"$T/denied"; rc=$?
    check "a foreign uid is refused (exit 1)" test "$rc" = 1
    check "with a permission message" grep -q "permission denied" "$T/denied"
    check "and the refusal is logged with its uid" grep -q "refused connection from uid 65534" "$T/vtuned.log"
else
    echo "# peer-credential refusal not tested: needs root and setpriv"
fi
stop_daemon
check "daemon exits 0 after all that" test "$STOP_RC" = 0
finish
