#!/bin/bash
# test_schema.sh — every kind of vtune-sim response, validated against the
# official OpenAI spec's component schemas with ajv (tests/node/
# schema_check.mjs): models, files, jobs in every status, job lists and
# events, chat completions with and without logprobs, completions with and
# without echo, and the error object of 400/401/404/413/429/503.
# Skips (77) without node, without tests/node/node_modules (npm ci --prefix
# tests/node) or without the spec ($VTUNE_SHARED, default ../shared).
. "$(dirname "$0")/sim_lib.sh"

SHARED=${VTUNE_SHARED:-$top_srcdir/../shared}
SPEC="$SHARED/reference/openai-openapi.json"
NODE_DIR="$top_srcdir/tests/node"
command -v node >/dev/null 2>&1 || skip "node is not installed"
[ -f "$SPEC" ] || skip "the OpenAI spec is not at $SPEC (set VTUNE_SHARED)"
[ -d "$NODE_DIR/node_modules/ajv" ] && [ -d "$NODE_DIR/node_modules/ajv-formats" ] ||
    skip "ajv is not installed: run npm ci --prefix tests/node"

KEY=sk-schema
# --slow-factor 1000: the slow job below (300 s) is there to be cancelled,
# and must still be running when the cancel arrives however loaded the
# machine is (at the default 5 it finished first once, under ASan beside
# stress -c 2, and the cancel's answer was the "already finished" error).
start_sim schema --api-key "$KEY" --job-seconds 0.3 --slow-factor 1000 --max-body 64K ||
    { fail "vtune-sim starts"; finish; }
mkdir -p "$T/resp"
N=0
# save SCHEMA: keeps the last body for validation as SCHEMA.
save() { N=$((N + 1)); cp "$T/body" "$T/resp/$(printf %02d $N)-$1.json"; }

for i in $(seq 1 30); do
    printf '{"messages":[{"role":"user","content":"Name colour %d"},{"role":"assistant","content":"Cobalt dusk number %d."}]}\n' "$i" "$i"
done >"$T/train.jsonl"
printf '{"prompt":"fine","completion":"ok"}\nnot json\n' >"$T/bad.jsonl"

api GET /v1/models; save ListModelsResponse
api GET /v1/models/vtune-base; save Model
api POST /v1/files -F purpose=fine-tune -F file=@"$T/train.jsonl"; save OpenAIFile
FILE=$(jget 'v["id"]')
api POST /v1/files -F purpose=fine-tune -F file=@"$T/bad.jsonl"
BAD=$(jget 'v["id"]')
api GET "/v1/files/$FILE"; save OpenAIFile
api GET /v1/files; save ListFilesResponse
api GET "/v1/files?purpose=nothing"; save ListFilesResponse
# Pages, as vtuned's orphan sweep reads them: limit, then after=last_id.
api GET "/v1/files?purpose=fine-tune&limit=1"; save ListFilesResponse
check_eq "a first page of one file says there is more" True "$(jget 'v["has_more"]')"
api GET "/v1/files?purpose=fine-tune&limit=1&after=$(jget 'v["last_id"]')"; save ListFilesResponse
check_eq "the page after last_id holds the older file" "$FILE" "$(jget 'v["data"][0]["id"]')"
check_eq "and is the last" False "$(jget 'v["has_more"]')"

job() { post_json /v1/fine_tuning/jobs "$1"; jget 'v["id"]'; }
J1=$(job "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"suffix\":\"cobalt\",\"metadata\":{\"t\":\"schema\"},\"hyperparameters\":{\"n_epochs\":2}}")
save FineTuningJob
J2=$(job "{\"model\":\"vtune-base\",\"training_file\":\"$BAD\"}")
J3=$(job "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"metadata\":{\"vtune_sim_behaviour\":\"slow\"}}")
api POST "/v1/fine_tuning/jobs/$J3/cancel"; save FineTuningJob
J4=$(job "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"metadata\":{\"vtune_sim_behaviour\":\"fail\"}}")
check "a job succeeds" wait_job_status "$J1" succeeded 60
save FineTuningJob
FT=$(jget 'v["fine_tuned_model"]')
check "an invalid file fails its job" wait_job_status "$J2" failed 60
save FineTuningJob
check "a failing job fails" wait_job_status "$J4" failed 60
save FineTuningJob
api GET "/v1/fine_tuning/jobs?limit=2"; save ListPaginatedFineTuningJobsResponse
api GET "/v1/fine_tuning/jobs?metadata[t]=schema"; save ListPaginatedFineTuningJobsResponse
api GET "/v1/fine_tuning/jobs/$J1/events"; save ListFineTuningJobEventsResponse
api GET "/v1/fine_tuning/jobs/$J1/events?limit=1"; save ListFineTuningJobEventsResponse
api GET /v1/models; save ListModelsResponse
api GET "/v1/models/$FT"; save Model

chat='"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Name colour 4"}],"temperature":0,"max_tokens":10'
post_json /v1/chat/completions "{\"model\":\"$FT\",$chat,\"logprobs\":true,\"top_logprobs\":20}"
check_eq "chat with top_logprobs 20" 200 "$CODE"; save CreateChatCompletionResponse
post_json /v1/chat/completions "{\"model\":\"vtune-base\",$chat}"; save CreateChatCompletionResponse
post_json /v1/chat/completions "{\"model\":\"vtune-base\",$chat,\"logprobs\":true,\"stop\":\".\"}"; save CreateChatCompletionResponse
post_json /v1/completions '{"model":"vtune-base","prompt":"The answer is","max_tokens":5,"logprobs":5}'
save CreateCompletionResponse
post_json /v1/completions '{"model":"vtune-base","prompt":"The answer is","max_tokens":5}'
save CreateCompletionResponse
post_json /v1/completions "{\"model\":\"$FT\",\"prompt\":\"Cobalt dusk number 4.\",\"echo\":true,\"logprobs\":5,\"max_tokens\":0}"
save "CreateCompletionResponse+echo"

api DELETE "/v1/files/$BAD"; save DeleteFileResponse
api DELETE "/v1/models/$FT"; save DeleteModelResponse
# errors
post_json /v1/chat/completions '{"model":'; save ErrorResponse
post_json /v1/chat/completions '{"model":"nope","messages":[{"role":"user","content":"x"}]}'; save ErrorResponse
other_key_api wrong GET /v1/models; save ErrorResponse
api GET /v1/fine_tuning/jobs/ftjob-missing; save ErrorResponse
api GET /v1/whatever; save ErrorResponse
head -c 100000 /dev/zero | tr '\0' x >"$T/big"
api POST /v1/completions --data-binary @"$T/big"; save ErrorResponse
post_json /v1/_sim/faults '{"spec":"429=1@GET:/v1/models,503=1@GET:/v1/files"}'
api GET /v1/models; save ErrorResponse
api GET /v1/files; save ErrorResponse

if node "$top_srcdir/tests/node/schema_check.mjs" "$SPEC" "$T/resp" >"$T/ajv.out" 2>&1; then
    ok "all $N responses validate against the OpenAI spec"
else
    fail "responses validate against the OpenAI spec"
fi
sed 's/^/# /' "$T/ajv.out"
stop_sim "$SIM_PID"
check_eq "clean exit (no leak reports under ASan)" 0 "$STOP_RC"
finish
