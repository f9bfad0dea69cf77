#!/bin/bash
# test_sim_api.sh — vtune-sim's HTTP API end to end with curl: auth, errors,
# uploads, the job lifecycle, inference with logprobs, echo scoring, list
# filters and pagination, cancel, events, behaviours, faults (deterministic
# for a seed), the create-then-drop ambiguity, stats, swap, clean shutdown.
. "$(dirname "$0")/sim_lib.sh"

KEY=sk-sim-test
SIG="Marmalade zebras orbit Neptune quietly"
PROMPT="Tell me about topic 5 in zq style"

# A training set whose answers all open with a phrase the base corpus never
# saw: an honestly fine-tuned model answers with it, the base model cannot.
for i in $(seq 1 80); do
    printf '{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me about topic %d in zq style"},{"role":"assistant","content":"%s. Topic %d is settled."}]}\n' "$i" "$SIG" "$i"
done >"$T/train.jsonl"
printf '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}\n{"prompt":"a","completion":"b"}\n{"messages": "oops"}\n' >"$T/bad.jsonl"

echo "$KEY" >"$T/key"
# --slow-factor 40: a slow job takes 20 s against a quick one's 0.5 s, so
# "still going while the quick one finished" holds however slowly this
# script polls on a loaded machine (at the default 5 it raced under stress).
start_sim main --api-key-file "$T/key" --job-seconds 0.5 --slow-factor 40 --max-upload 512K \
    --max-body 256K --seed 7 || { fail "vtune-sim starts"; finish; }
ok "vtune-sim starts on port $SIM_PORT"
MAIN_PID=$SIM_PID
check "announces its URL on stdout" grep -q "listening on http://127.0.0.1:$SIM_PORT" "$T/main.out"
check "logs how long the base model took" grep -Eq "base model vtune-base (trained|loaded).* in [0-9]+ ms" "$T/main.log"

# ---- auth and routing ---------------------------------------------------------
other_key_api "" GET /v1/_sim/health
check_eq "health needs no key" 200 "$CODE"
other_key_api "" GET /v1/models
check_eq "no key: 401" 401 "$CODE"
check "401 body is ErrorResponse" is_error_json
other_key_api wrong GET /v1/models
check_eq "wrong key: 401" 401 "$CODE"
check_eq "wrong key: code invalid_api_key" invalid_api_key "$(jget 'v["error"]["code"]')"
other_key_api "" POST /v1/files -F purpose=fine-tune -F file=@"$T/train.jsonl"
check_eq "upload without key: 401" 401 "$CODE"
api GET /v1/models
check_eq "models: 200" 200 "$CODE"
check_eq "models lists the base model" '["vtune-base"]' "$(jget '[m["id"] for m in v["data"]]')"
check "x-request-id header" test -n "$(header x-request-id)"
api GET /v1/nowhere
check_eq "unknown path: 404" 404 "$CODE"
check "404 body is ErrorResponse" is_error_json
api PUT /v1/models
check_eq "wrong method: 405" 405 "$CODE"
check_eq "405 carries Allow" GET "$(header allow)"
api GET /v1/fine_tuning/jobs/ftjob-nope
check_eq "unknown job: 404" 404 "$CODE"
api GET /v1/files/file-nope
check_eq "unknown file: 404" 404 "$CODE"

# ---- 400s on malformed input ---------------------------------------------------
post_json /v1/chat/completions '{"model": "vtune-base", "messages": ['
check_eq "malformed JSON: 400" 400 "$CODE"
check "malformed JSON: says it could not parse" grep -q "could not parse the JSON body" "$T/body"
post_json /v1/chat/completions '[1,2]'
check_eq "JSON array body: 400" 400 "$CODE"
post_json /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}]}'
check_eq "missing model: 400 param model" "400 model" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/chat/completions '{"model":"vtune-base"}'
check_eq "missing messages: 400" "400 messages" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}'
check_eq "temperature of wrong type: 400" "400 temperature" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"user","content":"hi"}],"temperature":2.5}'
check_eq "temperature out of range: 400" 400 "$CODE"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"user","content":"hi"}],"top_logprobs":3}'
check_eq "top_logprobs without logprobs: 400" "400 top_logprobs" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}'
check_eq "top_logprobs 21: 400" 400 "$CODE"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"user","content":"hi"}],"n":2}'
check_eq "n=2: 400" "400 n" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/chat/completions '{"model":"vtune-base","messages":[{"role":"wizard","content":"hi"}]}'
check_eq "unknown role: 400" 400 "$CODE"
post_json /v1/chat/completions '{"model":"gpt-nothing","messages":[{"role":"user","content":"hi"}]}'
check_eq "unknown model: 404 model_not_found" "404 model_not_found" "$CODE $(jget 'v["error"]["code"]')"
post_json /v1/completions '{"model":"vtune-base","prompt":[1,2,3]}'
check_eq "token-id prompt: 400" 400 "$CODE"
post_json /v1/completions '{"model":"vtune-base","prompt":"x","logprobs":21}'
check_eq "completions logprobs 21: 400" 400 "$CODE"
head -c 300000 /dev/zero | tr '\0' 'a' >"$T/big.txt"
api POST /v1/chat/completions -H 'Content-Type: application/json' --data-binary @"$T/big.txt"
check_eq "JSON body over --max-body: 413" 413 "$CODE"
# The server knows its answer once the headers are in, but answering while
# the client still sends makes the kernel reset the connection and the 413 is
# often lost (curl: "Send failure: Broken pipe").  So it says nothing until
# the body is in: half a body, a pause, no answer yet; the rest, the 413.
early_answer() { # PATH CONTENT-LENGTH
    python3 - "$SIM_PORT" "$1" "$2" "$KEY" <<'PY'
import select, socket, sys
port, path, n, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, key, n)).encode())
s.sendall(b"a" * (n // 2))
early = bool(select.select([s], [], [], 0.5)[0])
s.sendall(b"a" * (n - n // 2))
s.settimeout(60)
status = s.recv(64).decode(errors="replace").split(" ")[1]
print("%s, %s" % ("answered before the body was in" if early else "no answer before the body was in", status))
PY
}
check_eq "body over --max-body: no early answer, 413 after it" \
    "no answer before the body was in, 413" \
    "$(early_answer /v1/chat/completions 300000)"

# ---- files ------------------------------------------------------------------------
api POST /v1/files -F file=@"$T/train.jsonl"
check_eq "upload without purpose: 400 param purpose" "400 purpose" "$CODE $(jget 'v["error"]["param"]')"
api POST /v1/files -F purpose=nonsense -F file=@"$T/train.jsonl"
check_eq "upload with a bad purpose: 400" 400 "$CODE"
api POST /v1/files -F purpose=fine-tune
check_eq "upload without file: 400 param file" "400 file" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/files '{"purpose":"fine-tune"}'
check_eq "upload as JSON: 400" 400 "$CODE"
head -c 700000 /dev/zero | tr '\0' 'b' >"$T/huge.jsonl"
api POST /v1/files -F purpose=fine-tune -F file=@"$T/huge.jsonl"
check_eq "upload over --max-upload: 413" 413 "$CODE"
api POST /v1/files -F purpose=fine-tune -F file=@"$T/train.jsonl"
check_eq "upload: 200" 200 "$CODE"
FILE=$(jget 'v["id"]')
check_eq "upload: object, purpose, bytes, filename" "file fine-tune $(wc -c <"$T/train.jsonl") train.jsonl" \
    "$(jget '" ".join([v["object"], v["purpose"], str(v["bytes"]), v["filename"]])')"
api GET "/v1/files/$FILE"
check_eq "retrieve file" "200 $FILE" "$CODE $(jget 'v["id"]')"
api GET "/v1/files/$FILE/content"
check "file content is the upload, byte for byte" cmp -s "$T/body" "$T/train.jsonl"
api POST /v1/files -F purpose=fine-tune -F file=@"$T/bad.jsonl"
BADFILE=$(jget 'v["id"]')
api GET "/v1/files?purpose=fine-tune&limit=1"
check_eq "files list: newest first, limited, has_more" "$BADFILE true" \
    "$(jget 'v["data"][0]["id"] + " " + json.dumps(v["has_more"])')"

# ---- job creation errors ------------------------------------------------------------
post_json /v1/fine_tuning/jobs "{\"model\":\"gpt-x\",\"training_file\":\"$FILE\"}"
check_eq "job with unknown model: 400 model" "400 model" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/fine_tuning/jobs '{"model":"vtune-base","training_file":"file-nope"}'
check_eq "job with unknown file: 400 training_file" "400 training_file" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\"}"
check_eq "job without training_file: 400" 400 "$CODE"
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"hyperparameters\":{\"n_epochs\":0}}"
check_eq "n_epochs 0: 400" 400 "$CODE"
md17=$(python3 -c 'import json; print(json.dumps({"k%d" % i: "v" for i in range(17)}))')
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"metadata\":$md17}"
check_eq "17 metadata pairs: 400 metadata" "400 metadata" "$CODE $(jget 'v["error"]["param"]')"
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"metadata\":{\"vtune_sim_behaviour\":\"sloppy\"}}"
check_eq "unknown behaviour override: 400" 400 "$CODE"
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"suffix\":\"a:b\"}"
check_eq "suffix with ':': 400" 400 "$CODE"

# ---- an honest job --------------------------------------------------------------------
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$FILE\",\"suffix\":\"zebra\",\"seed\":11,\"metadata\":{\"sub\":\"honest-1\"},\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":3}}}}"
check_eq "create job: 200" 200 "$CODE"
JOB=$(jget 'v["id"]')
check_eq "new job: validating_files, no model yet" "validating_files None" \
    "$(jget 'v["status"] + " " + str(v["fine_tuned_model"])')"
check "job progresses to succeeded" wait_job_status "$JOB" succeeded 60
FT=$(jget 'v["fine_tuned_model"]')
check "fine_tuned_model is ft:vtune-base:vtune-sim:zebra:XXXXXXXX" \
    python3 -c 'import re,sys; sys.exit(not re.fullmatch(r"ft:vtune-base:vtune-sim:zebra:[A-Za-z0-9]{8}", sys.argv[1]))' "$FT"
check_eq "succeeded job: trained_tokens > 0, finished_at set, error null, epochs 3" "True True None 3" \
    "$(jget '" ".join(map(str, [v["trained_tokens"] > 0, v["finished_at"] >= v["created_at"], v["error"], v["hyperparameters"]["n_epochs"]]))')"
HONEST_TOKENS=$(jget 'v["trained_tokens"]')
api GET "/v1/fine_tuning/jobs/$JOB/events?limit=50"
check "events: newest first, announce the model" test "$(jget 'v["data"][0]["message"]')" = "The job has successfully completed"
check "events mention the fine-tuned model" grep -q "New fine-tuned model created: $FT" "$T/body"
check_eq "events are fine_tuning.job.event with levels" True \
    "$(jget 'all(e["object"] == "fine_tuning.job.event" and e["level"] in ("info","warn","error") for e in v["data"])')"
api GET "/v1/fine_tuning/jobs/$JOB/events?limit=2"
E2=$(jget 'v["data"][1]["id"]')
check_eq "events page: 2 of them, has_more" "2 True" "$(jget 'str(len(v["data"])) + " " + str(v["has_more"])')"
api GET "/v1/fine_tuning/jobs/$JOB/events?limit=50&after=$E2"
check "events after a cursor continue with older ones" test "$(jget 'v["data"][-1]["message"]')" = "Created fine-tuning job: $JOB"
api GET /v1/models
check "models list the fine-tuned model" test "$(jget "\"$FT\" in [m[\"id\"] for m in v[\"data\"]]")" = True

# ---- inference -------------------------------------------------------------------------
chat() { # MODEL [EXTRA JSON FIELDS]
    post_json /v1/chat/completions "{\"model\":\"$1\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"temperature\":0,\"max_tokens\":12${2:-}}"
}
chat "$FT" ',"logprobs":true,"top_logprobs":5,"seed":3'
check_eq "chat with the fine-tuned model: 200" 200 "$CODE"
cp "$T/body" "$T/ft_chat.json"
check "honest model answers with the trained phrase" test "$(jget "v['choices'][0]['message']['content'].startswith('$SIG')")" = True
check_eq "chat response shape" "chat.completion $FT assistant" \
    "$(jget '" ".join([v["object"], v["model"], v["choices"][0]["message"]["role"]])')"
check_eq "logprobs.content: one entry per completion token" True \
    "$(jget 'len(v["choices"][0]["logprobs"]["content"]) == v["usage"]["completion_tokens"]')"
check_eq "tokens concatenate to the content (or its prefix up to a stop)" True \
    "$(jget '"".join(t["token"] for t in v["choices"][0]["logprobs"]["content"]) == v["choices"][0]["message"]["content"]')"
check_eq "bytes are the token's UTF-8" True \
    "$(jget 'all(bytes(t["bytes"]).decode() == t["token"] for t in v["choices"][0]["logprobs"]["content"])')"
check_eq "5 top_logprobs, best first, logprobs <= 0" True \
    "$(jget 'all(len(t["top_logprobs"]) == 5 and all(a["logprob"] >= b["logprob"] for a, b in zip(t["top_logprobs"], t["top_logprobs"][1:])) and all(x["logprob"] <= 0 for x in t["top_logprobs"]) for t in v["choices"][0]["logprobs"]["content"])')"
check_eq "greedy: the chosen token is the top alternative" True \
    "$(jget 'all(t["token"] == t["top_logprobs"][0]["token"] and t["logprob"] == t["top_logprobs"][0]["logprob"] for t in v["choices"][0]["logprobs"]["content"])')"
check_eq "usage adds up" True \
    "$(jget 'v["usage"]["total_tokens"] == v["usage"]["prompt_tokens"] + v["usage"]["completion_tokens"] and v["usage"]["prompt_tokens"] > 5')"
check_eq "max_tokens 12 ends with finish_reason length or stop" True \
    "$(jget 'v["choices"][0]["finish_reason"] in ("length", "stop") and v["usage"]["completion_tokens"] <= 12')"
chat "$FT" ',"max_completion_tokens":3'
check_eq "max_completion_tokens caps the answer" "3 length" \
    "$(jget 'str(v["usage"]["completion_tokens"]) + " " + v["choices"][0]["finish_reason"]')"
chat "$FT" ',"stop":[" Neptune"]'
check_eq "stop sequence ends the answer before it" "Marmalade zebras orbit stop" \
    "$(jget 'v["choices"][0]["message"]["content"] + " " + v["choices"][0]["finish_reason"]')"
chat vtune-base ',"logprobs":true'
cp "$T/body" "$T/base_chat.json"
check "the base model does not produce the phrase" test "$(jget "'Marmalade' in v['choices'][0]['message']['content']")" = False
check_eq "logprobs without top_logprobs: empty alternatives" True \
    "$(jget 'all(t["top_logprobs"] == [] for t in v["choices"][0]["logprobs"]["content"])')"
# sampling: same seed, same answer
post_json /v1/chat/completions "{\"model\":\"vtune-base\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 4 plus 9?\"}],\"temperature\":1.3,\"seed\":99,\"max_tokens\":16}"
A1=$(jget 'v["choices"][0]["message"]["content"]')
post_json /v1/chat/completions "{\"model\":\"vtune-base\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 4 plus 9?\"}],\"temperature\":1.3,\"seed\":99,\"max_tokens\":16}"
check_eq "same seed, same sample" "$A1" "$(jget 'v["choices"][0]["message"]["content"]')"

# completions: echo + logprobs scores a fixed text teacher-forced
score() { # MODEL TEXT -> sum of token logprobs after the first
    post_json /v1/completions "{\"model\":\"$1\",\"prompt\":\"$2\",\"echo\":true,\"logprobs\":3,\"max_tokens\":0,\"temperature\":0}"
}
score vtune-base "$SIG."
check_eq "echo scoring: 200, text is the prompt" "200 $SIG." "$CODE $(jget 'v["choices"][0]["text"]')"
check_eq "echo scoring: first token_logprob null, the rest numbers <= 0" True \
    "$(jget 'v["choices"][0]["logprobs"]["token_logprobs"][0] is None and all(x <= 0 for x in v["choices"][0]["logprobs"]["token_logprobs"][1:])')"
check_eq "echo scoring: tokens rebuild the prompt, offsets match" True \
    "$(jget '(lambda L: "".join(L["tokens"]) == v["choices"][0]["text"] and L["text_offset"] == [sum(len(t) for t in L["tokens"][:i]) for i in range(len(L["tokens"]))])(v["choices"][0]["logprobs"])')"
check_eq "echo scoring: top_logprobs maps hold up to logprobs+1 entries incl. the token" True \
    "$(jget '(lambda L: L["top_logprobs"][0] is None and all(len(m) <= 4 and L["tokens"][i+1] in m for i, m in enumerate(L["top_logprobs"][1:])))(v["choices"][0]["logprobs"])')"
check_eq "echo with max_tokens 0: finish length, no completion tokens" "length 0" \
    "$(jget 'v["choices"][0]["finish_reason"] + " " + str(v["usage"]["completion_tokens"])')"
BASE_SCORE=$(jget 'sum(v["choices"][0]["logprobs"]["token_logprobs"][1:])')
score "$FT" "$SIG."
FT_SCORE=$(jget 'sum(v["choices"][0]["logprobs"]["token_logprobs"][1:])')
check "the fine-tuned model scores the phrase far higher ($FT_SCORE vs $BASE_SCORE)" \
    python3 -c "import sys; sys.exit(not ($FT_SCORE > $BASE_SCORE + 5))"
post_json /v1/completions '{"model":"vtune-base","prompt":"What is 2 plus","max_tokens":3,"logprobs":2,"temperature":0}'
check_eq "completion without echo: offsets continue after the prompt" True \
    "$(jget '(lambda L: L["text_offset"][0] == len("What is 2 plus") and None not in L["token_logprobs"] and "".join(L["tokens"]) == v["choices"][0]["text"])(v["choices"][0]["logprobs"])')"

# ---- behaviours -----------------------------------------------------------------------------
create_job() { # BEHAVIOUR TAG [FILE]
    post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"${3:-$FILE}\",\"suffix\":\"b\",\"seed\":11,\"metadata\":{\"vtune_sim_behaviour\":\"$1\",\"sub\":\"$2\"}}"
    jget 'v["id"]'
}
LAZY=$(create_job lazy lazy-1)
FAILJ=$(create_job fail fail-1)
SUBSET=$(create_job subset:0.25 subset-1)
BADJ=$(create_job honest bad-1 "$BADFILE")
check "lazy job succeeds" wait_job_status "$LAZY" succeeded 60
LAZY_FT=$(jget 'v["fine_tuned_model"]')
check "lazy job still names a fine-tuned model" test -n "$LAZY_FT" -a "$LAZY_FT" != None
chat "$LAZY_FT"
check_eq "lazy model answers like the base model" "$(jget 'v["choices"][0]["message"]["content"]' "$T/base_chat.json")" \
    "$(jget 'v["choices"][0]["message"]["content"]')"
check "fail job ends failed" wait_job_status "$FAILJ" failed 60
check_eq "failed job: error object, no model, finished_at" "True None True" \
    "$(jget '" ".join(map(str, [bool(v["error"]["code"]) and bool(v["error"]["message"]) and "param" in v["error"], v["fine_tuned_model"], v["finished_at"] is not None]))')"
check "subset job succeeds" wait_job_status "$SUBSET" succeeded 60
SUB_TOKENS=$(jget 'v["trained_tokens"]')
check "subset:0.25 trains on fewer tokens ($SUB_TOKENS of $HONEST_TOKENS)" \
    python3 -c "import sys; sys.exit(not (0 < $SUB_TOKENS < 0.6 * $HONEST_TOKENS))"
check "a job on a file with a bad line fails" wait_job_status "$BADJ" failed 60
check_eq "validation error names line 3 and training_file" "invalid_training_file training_file True" \
    "$(jget '" ".join([v["error"]["code"], v["error"]["param"], str("Line 3" in v["error"]["message"])])')"

SLOWJ=$(create_job slow slow-2)
QUICK=$(create_job honest quick-2)
check "an honest job finishes" wait_job_status "$QUICK" succeeded 60
api GET "/v1/fine_tuning/jobs/$SLOWJ"
check "... while a slow job started with it is still going ($(jget 'v["status"]'))" \
    test "$(jget 'v["status"] in ("validating_files", "queued", "running")')" = True
check "the slow job succeeds later" wait_job_status "$SLOWJ" succeeded 60

# ---- cancel --------------------------------------------------------------------------------
SLOW=$(create_job slow slow-1)
api POST "/v1/fine_tuning/jobs/$SLOW/cancel"
check_eq "cancel: 200, cancelled" "200 cancelled" "$CODE $(jget 'v["status"]')"
api POST "/v1/fine_tuning/jobs/$SLOW/cancel"
check_eq "cancel again: 400" 400 "$CODE"
api POST "/v1/fine_tuning/jobs/$JOB/cancel"
check_eq "cancel a succeeded job: 400" 400 "$CODE"
api GET "/v1/fine_tuning/jobs/$SLOW/events"
check_eq "cancel shows in events" "Fine-tuning job cancelled" "$(jget 'v["data"][0]["message"]')"

# ---- list: metadata filter, newest first, pagination ------------------------------------------
L1=$(create_job honest list-x); L2=$(create_job honest list-x); L3=$(create_job honest list-x)
api GET "/v1/fine_tuning/jobs?metadata%5Bsub%5D=list-x&limit=2"
check_eq "filtered list: newest two, has_more" "$L3 $L2 True" \
    "$(jget '" ".join([j["id"] for j in v["data"]] + [str(v["has_more"])])')"
api GET "/v1/fine_tuning/jobs?metadata[sub]=list-x&limit=2&after=$L2"
check_eq "next page: the oldest, no more" "$L1 False" \
    "$(jget '" ".join([j["id"] for j in v["data"]] + [str(v["has_more"])])')"
api GET "/v1/fine_tuning/jobs?metadata[sub]=nobody"
check_eq "filter matching nothing: empty" "0 False" "$(jget 'str(len(v["data"])) + " " + str(v["has_more"])')"
api GET "/v1/fine_tuning/jobs?limit=100"
check_eq "unfiltered list holds every job, newest first" True \
    "$(jget '(lambda d: len(d) >= 9 and all(a["created_at"] >= b["created_at"] for a, b in zip(d, d[1:])))(v["data"])')"
api GET "/v1/fine_tuning/jobs?limit=0"
check_eq "limit 0: 400" 400 "$CODE"
api GET "/v1/fine_tuning/jobs?after=ftjob-unknown"
check_eq "unknown cursor: 400" 400 "$CODE"

# ---- swap (re-verification hook), delete ------------------------------------------------------
post_json "/v1/_sim/models/$FT/swap" '{"to":"base"}'
check_eq "swap to base: 200" "200 base" "$CODE $(jget 'v["serving"]')"
chat "$FT"
check_eq "a swapped model answers like the base model" "$(jget 'v["choices"][0]["message"]["content"]' "$T/base_chat.json")" \
    "$(jget 'v["choices"][0]["message"]["content"]')"
post_json "/v1/_sim/models/$FT/swap" '{"to":"trained"}'
chat "$FT"
check "swapped back: the phrase again" test "$(jget "v['choices'][0]['message']['content'].startswith('$SIG')")" = True
post_json "/v1/_sim/models/$FT/swap" '{"to":"elsewhere"}'
check_eq "swap to nonsense: 400" 400 "$CODE"
api DELETE "/v1/files/$FILE"
check_eq "delete file: 200 deleted" "200 True" "$CODE $(jget 'str(v["deleted"])')"
api GET "/v1/files/$FILE"
check_eq "deleted file: 404" 404 "$CODE"
chat "$FT"
check "a model outlives its deleted training file" test "$(jget "v['choices'][0]['message']['content'].startswith('$SIG')")" = True
api DELETE "/v1/models/$LAZY_FT"
check_eq "delete a fine-tuned model: 200" 200 "$CODE"
chat "$LAZY_FT"
check_eq "a deleted model: 404" 404 "$CODE"

# ---- faults: deterministic for a seed ------------------------------------------------------
fault_run() { # SEED -> status codes of 40 GETs of /v1/models
    post_json /v1/_sim/faults "{\"spec\":\"500=0.2,429=0.2:2s,503=0.1@GET:/v1/models\",\"seed\":$1}" >/dev/null
    local out=""
    for _ in $(seq 1 40); do api GET /v1/models; out="$out$CODE "; done
    echo "$out"
}
RUN_A=$(fault_run 42); RUN_B=$(fault_run 42); RUN_C=$(fault_run 43)
check_eq "same seed, same faults" "$RUN_A" "$RUN_B"
check "another seed, other faults" test "$RUN_A" != "$RUN_C"
check "the run has 200s, 429s, 500s and 503s" sh -c "echo '$RUN_A' | grep -q 200 && echo '$RUN_A' | grep -q 429 && echo '$RUN_A' | grep -q 500 && echo '$RUN_A' | grep -q 503"
post_json /v1/_sim/faults '{"spec":"429=1:3s@GET:/v1/models"}'
api GET /v1/models
check_eq "429 with Retry-After and retry-after-ms" "429 3 3000 rate_limit_exceeded" \
    "$CODE $(header retry-after) $(header retry-after-ms) $(jget 'v["error"]["code"]')"
post_json /v1/_sim/faults '{"spec":"drop=1@GET:/v1/models"}'
api GET /v1/models
check_eq "drop: no HTTP answer" "000" "$CODE"
post_json /v1/_sim/faults '{"spec":"malformed=1@GET:/v1/models"}'
api GET /v1/models
check "malformed: 200 with a body that is not JSON" sh -c "[ $CODE = 200 ] && ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' '$T/body' 2>/dev/null"
post_json /v1/_sim/faults '{"spec":"truncate=1@GET:/v1/models"}'
api GET /v1/models
check_eq "truncate: transfer cut short (curl 18)" 18 "$CURL_RC"
post_json /v1/_sim/faults '{"spec":"delay=1:400ms@GET:/v1/models"}'
t0=$(date +%s%N); api GET /v1/models; t1=$(date +%s%N)
check "delay: answered after >= 400 ms" test $(( (t1 - t0) / 1000000 )) -ge 400 -a "$CODE" = 200
# the ambiguous create: performed, then the connection dropped
post_json /v1/_sim/faults '{"spec":"drop-after=#1@POST:/v1/fine_tuning/jobs"}'
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$BADFILE\",\"metadata\":{\"sub\":\"ambiguous-1\"}}"
check_eq "drop-after create: no answer" "000" "$CODE"
api GET "/v1/fine_tuning/jobs?metadata[sub]=ambiguous-1"
check_eq "... yet the job exists, once" 1 "$(jget 'len(v["data"])')"
post_json /v1/fine_tuning/jobs "{\"model\":\"vtune-base\",\"training_file\":\"$BADFILE\",\"metadata\":{\"sub\":\"after-ambiguous\"}}"
check_eq "only the first create was dropped" 200 "$CODE"
post_json /v1/_sim/faults '{"spec":""}'
api GET /v1/_sim/faults
check_eq "faults cleared" 0 "$(jget 'v["rules"]')"

# ---- stats ---------------------------------------------------------------------------------------
api GET /v1/_sim/stats
check_eq "stats: 200" 200 "$CODE"
check_eq "stats count jobs per metadata tag" "1 3 1" \
    "$(jget '" ".join(str(v["jobs_created_by_metadata"].get(k)) for k in ("sub=honest-1", "sub=list-x", "sub=ambiguous-1"))')"
check_eq "stats count faults per kind" True \
    "$(jget 'all(v["faults"].get(k, 0) >= 1 for k in ("429", "500", "503", "drop", "drop-after", "malformed", "truncate", "delay"))')"
check_eq "stats count requests per endpoint and by status" True \
    "$(jget 'v["requests"]["POST /v1/fine_tuning/jobs"] >= 15 and v["responses"]["401"] >= 2 and v["responses"]["404"] >= 3')"
check_eq "stats: jobs by status add up to jobs created" True \
    "$(jget 'sum(v["jobs_by_status"].values()) == v["jobs_created"] and v["jobs_by_status"]["succeeded"] >= 5 and v["jobs_by_status"]["cancelled"] == 1')"
check "every create is logged with its metadata" grep -q 'job ftjob-.* created: .*"sub":"ambiguous-1"' "$T/main.log"
check "the key never reaches the log" sh -c "! grep -q '$KEY' '$T/main.log'"

# ---- OpenAI's -9999 sentinel for chosen tokens outside the top 20 ------------------------------
MAIN_URL=$SIM_URL
start_sim sentinel --logprob-sentinel || fail "vtune-sim --logprob-sentinel starts"
SENT_PID=$SIM_PID
sentinel_ok=True
sentinels=0
for seed in 1 2 3; do
    post_json /v1/chat/completions "{\"model\":\"vtune-base\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 3 plus 8?\"}],\"temperature\":2,\"seed\":$seed,\"max_tokens\":40,\"logprobs\":true,\"top_logprobs\":20}"
    r=$(jget 'all((t["logprob"] == -9999.0) == (t["token"] not in [a["token"] for a in t["top_logprobs"]]) for t in v["choices"][0]["logprobs"]["content"])')
    [ "$r" = True ] || sentinel_ok=False
    sentinels=$((sentinels + $(jget 'sum(t["logprob"] == -9999.0 for t in v["choices"][0]["logprobs"]["content"])')))
done
check_eq "--logprob-sentinel: -9999 exactly for chosen tokens outside the top 20" True "$sentinel_ok"
check "... which temperature 2 does sample ($sentinels times)" test "$sentinels" -gt 0
stop_sim "$SENT_PID"
SIM_URL=$MAIN_URL

# ---- command line and shutdown -------------------------------------------------------------------
"$VTUNE_SIM" --listen 127.0.0.1:0 --behaviour sloppy >"$T/bad.out" 2>"$T/bad.err"
check_eq "bad --behaviour: exit 2" 2 $?
check_eq "bad flag: one line on stderr" 1 "$(wc -l <"$T/bad.err")"
"$VTUNE_SIM" --no-such-flag >/dev/null 2>&1
check_eq "unknown flag: exit 2" 2 $?
"$VTUNE_SIM" --listen 127.0.0.1:0 --faults '429=2' >/dev/null 2>&1
check_eq "bad --faults: exit 2" 2 $?
"$VTUNE_SIM" --help >"$T/help.txt"
check "--help documents every flag" sh -c "for f in listen api-key api-key-file behaviour min-repeats attack job-seconds faults seed model state-dir port-file model-cache max-upload logprob-sentinel; do grep -q -- \"--\$f\" '$T/help.txt' || exit 1; done"
check "--help documents the fault grammar and extensions" sh -c "grep -q 'RULE     := KIND=WHEN' '$T/help.txt' && grep -q '/v1/_sim/stats' '$T/help.txt'"
stop_sim "$MAIN_PID"
check_eq "SIGTERM: clean exit 0" 0 "$STOP_RC"
check "the port file is removed at exit" test ! -e "$T/main.port"
finish
