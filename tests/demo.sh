#!/bin/bash
# demo.sh BUILD_DIR — the README's first command ends here.
#
# Starts a real vtuned in a temporary state directory, imports a sample
# dataset, shows what the daemon holds, and stops it.  (The end-to-end
# demo against simulated providers replaces this once jobs and verification
# exist.)  Cleans up its processes and files, also when interrupted.
set -euo pipefail
build=${1:-$(cd "$(dirname "$0")/.." && pwd)}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vtune-demo.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$tmp/vtuned.yaml" <<YAML
state_dir: $tmp/state
socket: $tmp/vtuned.sock
YAML
ctl() { "$build/vtunectl" -s "$tmp/vtuned.sock" "$@"; }

echo "== starting vtuned (state in $tmp/state)"
"$build/vtuned" -c "$tmp/vtuned.yaml" 2> "$tmp/vtuned.log" &
pid=$!
for _ in $(seq 1 200); do [ -S "$tmp/vtuned.sock" ] && break; kill -0 "$pid" || { cat "$tmp/vtuned.log"; exit 1; }; sleep 0.05; done
[ -S "$tmp/vtuned.sock" ] || { echo "vtuned did not start"; cat "$tmp/vtuned.log"; exit 1; }

echo "== vtunectl dataset add tests/data/sample-chat.jsonl --name math-tutor"
ctl dataset add "$src/tests/data/sample-chat.jsonl" --name math-tutor
echo "== a bad dataset is refused with its line and field, and nothing is stored:"
printf '{"prompt":"ok","completion":"fine"}\n{"prompt":"bad","completion":7}\n' > "$tmp/bad.jsonl"
ctl dataset add "$tmp/bad.jsonl" || true
echo "== vtunectl dataset list"
ctl dataset list
echo "== vtunectl status"
ctl status
echo "== stopping vtuned (SIGTERM)"
kill -TERM "$pid"; wait "$pid"; pid=""
echo "== demo finished"
