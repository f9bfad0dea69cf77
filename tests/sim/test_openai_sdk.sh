#!/bin/bash
# test_openai_sdk.sh — the official `openai` npm SDK against vtune-sim
# (tests/node/sdk_check.mjs): upload, job, poll, list by metadata, events,
# chat with logprobs, echo scoring, typed errors, automatic retry on 429/503.
# Skips (77) without node or without tests/node/node_modules (npm ci --prefix
# tests/node).
. "$(dirname "$0")/sim_lib.sh"

NODE_DIR="$top_srcdir/tests/node"
command -v node >/dev/null 2>&1 || skip "node is not installed"
[ -d "$NODE_DIR/node_modules/openai" ] || skip "the openai SDK is not installed: run npm ci --prefix tests/node"
node -e 'const [a] = process.versions.node.split("."); process.exit(+a >= 20 ? 0 : 1)' ||
    skip "node $(node --version) is too old for the openai SDK (20 or later)"

KEY=sk-sdk
SIG="Velvet otters harmonise"
PROMPT="Teach me lesson 9 the otter way"
for i in $(seq 1 60); do
    printf '{"messages":[{"role":"user","content":"Teach me lesson %d the otter way"},{"role":"assistant","content":"%s tonight. Lesson %d done."}]}\n' "$i" "$SIG" "$i"
done >"$T/train.jsonl"
start_sim sdk --api-key "$KEY" --job-seconds 0.5 || { fail "vtune-sim starts"; finish; }
ok "vtune-sim starts on port $SIM_PORT"
if SIM_URL="$SIM_URL" SIM_KEY="$KEY" TRAIN="$T/train.jsonl" SIG="$SIG" PROMPT="$PROMPT" \
    node "$NODE_DIR/sdk_check.mjs" >"$T/sdk.out" 2>&1; then
    ok "the openai SDK drives the simulator end to end"
else
    fail "the openai SDK drives the simulator end to end"
fi
sed 's/^/# /' "$T/sdk.out"
stop_sim "$SIM_PID"
check_eq "clean exit (no leak reports under ASan)" 0 "$STOP_RC"
finish
