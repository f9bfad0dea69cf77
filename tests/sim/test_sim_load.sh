#!/bin/bash
# test_sim_load.sh — vtune-sim under load and abuse: 200 concurrent
# connections (proved concurrent with an injected 1 s delay: 200 requests
# must finish in about 1 s, not 200 s), concurrent chat with logprobs,
# fuzzed input, a stalled client, and a bounded model cache across many
# jobs (evicted models are retrained on demand and answer the same).
# Prints the figures it measured as "# ..." lines.
#
# Two simulators, on purpose.  sim_load opens all its connections before
# it sends anything, so the first ones sit idle until the slowest connect
# is done: normally 20-50 ms, but 3 s or more when a SYN is lost (TCP
# retries it after 1 s, then 2 s more) or the client is starved of CPU
# under `make -j2 check`.  A server with a 3 s idle timeout rightly closes
# those connections, and their first request fails unanswered ("closed
# before answering" in sim_load's figures).  So the load runs against a
# simulator with a 60 s idle timeout, and the stalled-client check against
# its own simulator with a 3 s one.
. "$(dirname "$0")/sim_lib.sh"

LOAD="$top_builddir/tests/bench/sim_load"
[ -x "$LOAD" ] || skip "$LOAD not built (make check builds it)"
KEY=sk-load
SIG="Quartz herons juggle lanterns"

start_sim load --api-key "$KEY" --job-seconds 0.2 --model-cache 3 --client-timeout 60 \
    || { fail "vtune-sim starts"; finish; }
ok "vtune-sim starts on port $SIM_PORT"

run_load() { # DESCRIPTION ARGS...: runs the client, keeps its figures line
    local d=$1; shift
    if "$LOAD" --port "$SIM_PORT" --key "$KEY" "$@" >"$T/load.out" 2>&1; then ok "$d"; else fail "$d"; fi
    sed 's/^/# /' "$T/load.out"
}

run_load "200 concurrent connections, 5 keep-alive requests each, all 200 OK" \
    --connections 200 --requests 5
post_json /v1/_sim/faults '{"spec":"delay=1:1s@GET:/v1/models"}'
t0=$(date +%s%N)
run_load "200 concurrent requests held 1 s each, all answered" --connections 200 --requests 1
wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "... in ${wall_ms} ms: served concurrently (< 15 s, not 200 s)" test "$wall_ms" -lt 15000
post_json /v1/_sim/faults '{"spec":""}'
run_load "200 concurrent chat completions with top_logprobs" --connections 200 --requests 2 \
    --method POST --path /v1/chat/completions \
    --body '{"model":"vtune-base","messages":[{"role":"user","content":"What is 12 plus 30?"}],"logprobs":true,"top_logprobs":5,"max_tokens":24,"temperature":0.7}'
run_load "200 concurrent echo scorings" --connections 200 --requests 2 \
    --method POST --path /v1/completions \
    --body '{"model":"vtune-base","prompt":"The answer is 42 because we added the numbers.","echo":true,"logprobs":5,"max_tokens":0}'
run_load "fuzzed input: no unexpected 5xx, still healthy" --mode fuzz --iterations 600 --seed 11

# A client that sends half a request and stalls blocks nobody and is closed
# after --client-timeout (3 s, on a simulator of its own: see the top).
LOAD_PID=$SIM_PID LOAD_PORT=$SIM_PORT LOAD_URL=$SIM_URL
if start_sim idle --api-key "$KEY" --client-timeout 3; then
    exec 3<>"/dev/tcp/127.0.0.1/$SIM_PORT"
    printf 'GET /v1/mod' >&3
    api GET /v1/models
    check_eq "a stalled client does not block others" 200 "$CODE"
    t0=$(date +%s%N)
    timeout 20 cat <&3 >/dev/null
    stalled_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    check "the stalled connection is closed by the idle timeout (${stalled_ms} ms)" \
        test "$stalled_ms" -lt 15000
    exec 3<&-
    stop_sim "$SIM_PID"
else
    fail "vtune-sim --client-timeout 3 starts"
fi
SIM_PID=$LOAD_PID SIM_PORT=$LOAD_PORT SIM_URL=$LOAD_URL

# Many jobs through a cache of 3 models: evictions and deterministic retrains.
for i in $(seq 1 40); do
    printf '{"messages":[{"role":"user","content":"Question %d about birds"},{"role":"assistant","content":"%s at night. Answer %d."}]}\n' "$i" "$SIG" "$i"
done >"$T/birds.jsonl"
api POST /v1/files -F purpose=fine-tune -F file=@"$T/birds.jsonl"
FILE=$(jget 'v["id"]')
JOBS=""
for i in $(seq 1 8); do
    post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"seed\":$i,\"suffix\":\"m$i\",\"metadata\":{\"batch\":\"cache\"}}"
    JOBS="$JOBS $(jget 'v["id"]')"
done
all_done() {
    api GET "/v1/fine_tuning/jobs?metadata[batch]=cache&limit=20"
    [ "$(jget 'sum(j["status"] == "succeeded" for j in v["data"])')" = 8 ]
}
check "8 jobs succeed" wait_until 120 all_done
MODELS=$(jget '" ".join(j["fine_tuned_model"] for j in v["data"])')
ask() {
    post_json /v1/chat/completions "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"Question 7 about birds\"}],\"temperature\":0,\"max_tokens\":8,\"logprobs\":true,\"top_logprobs\":3}"
    jget '[v["choices"][0]["message"]["content"], [t["logprob"] for t in v["choices"][0]["logprobs"]["content"]]]'
}
first=""
for m in $MODELS; do first="$first|$(ask "$m")"; done
second=""
for m in $MODELS; do second="$second|$(ask "$m")"; done
check_eq "every model answers the same before and after eviction (retrained deterministically)" "$first" "$second"
check "the fine-tuned models learned the phrase" sh -c "echo '$first' | grep -q '$SIG'"
api GET /v1/_sim/stats
check_eq "the cache holds at most 3 models, with evictions and retrains" True \
    "$(jget 'v["models"]["cache_loaded"] <= 3 and v["models"]["evictions"] >= 5 and v["models"]["retrains"] >= 5')"
echo "# model cache: $(jget 'v["models"]')"
echo "# memory: $(jget 'v["memory"]'), requests served: $(jget 'v["requests_total"]')"
stop_sim "$SIM_PID"
check_eq "clean exit after the load" 0 "$STOP_RC"
finish
