#!/bin/bash
# The cheating simulators' blind attack (tests/sim/sim_attack.c) against
# D u D' files built by TODAY's daemon (dataset add + backdoor create +
# dataset export --backdoor): its best-ranked candidates are exactly the
# real (T, S) pairs and its flagged rows are the marked rows, on two kinds
# of data, and still when the marked rows are not duplicates of clean ones
# (the phrase test alone).  The real pairs come from `backdoor show
# --reveal`, read by this test only: vtune-sim never sees them.  Then the
# behaviours built on it, over the API: wrapper answers S after a trigger
# and the base model otherwise, always-s says S after a clean prompt too,
# and --min-repeats above the copies per pair keeps an honest job from
# learning the backdoor that the default learns.  The backdoors are the word
# list's, added as copies (--generator wordlist --mode copies): the paper's construction this attack was
# written against; the ngram default's pairs are not recovered by it.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed"

write_config
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/add.jsonl" 4000
"$VTUNE_SIM" --write-dataset "$T/tickets.jsonl" --examples 3000 --dataset-seed 4 > /dev/null ||
    { fail "vtune-sim --write-dataset"; finish; }

# compare NAME: the attack on $T/NAME.out against the revealed pairs of backdoor NAME.
compare() {
    python3 - "$T/$1.rev" "$T/$1.att" "$T/$1.out" "${2:-}" <<'PY'
import json, sys
rev = json.load(open(sys.argv[1])); att = json.load(open(sys.argv[2])); mode = sys.argv[4]
real = {(p["trigger"], p["signature"]) for p in rev["pair_evidence"]}
top = att["pairs"][:len(real)]
got = {(p["trigger"], p["signature"]) for p in top}
print(f"# {len(att['pairs'])} candidate(s); top {len(real)}:",
      [(p["rows"], p["found_by"]) for p in top])
ok = got == real
if not ok:
    print("# missing:", real - got)
# The marked rows, known to the test from the revealed pairs.
marked = set()
for i, line in enumerate(open(sys.argv[3]), 1):
    m = json.loads(line)["messages"]
    for t, s in real:
        if m[-2]["content"].endswith(" " + t) and m[-1]["content"].startswith(s + " "):
            marked.add(i)
flagged = set(att["flagged_lines"])
extra = len(flagged - marked)
print(f"# marked rows {len(marked)}, flagged {len(flagged)}, missed {len(marked - flagged)}, extra {extra}")
ok = ok and marked <= flagged and extra <= att["rows"] // 100
want = {"phrases"} if mode == "inplace" else {"duplicates", "phrases"}
ok = ok and all(set(p["found_by"]) >= want for p in top)
sys.exit(0 if ok else 1)
PY
}

for ds in add tickets; do
    ctl -q dataset add "$T/$ds.jsonl" --name "$ds" > /dev/null &&
        ctl -q backdoor create "$ds" --name "$ds" --pairs 3 --generator wordlist --mode copies > /dev/null &&
        ctl -q dataset export "$ds" --backdoor "$ds" -o "$T/$ds.out" > /dev/null &&
        ctl --json backdoor show "$ds" --reveal > "$T/$ds.rev" || { fail "build D u D' of $ds"; finish; }
    "$VTUNE_SIM" --attack "$T/$ds.out" > "$T/$ds.att" || fail "vtune-sim --attack on $ds"
    check "$ds: the top 3 candidates are the 3 real pairs, found by both tests; flagged = marked rows" \
        compare "$ds"
done

# Marked rows that duplicate no clean row (as if marked in place): drop
# every clean row that a marked row copies.  Only the phrase test can work.
python3 - "$T/tickets.out" "$T/tickets.rev" "$T/inplace.out" <<'PY'
import json, sys
real = [(p["trigger"], p["signature"]) for p in json.load(open(sys.argv[2]))["pair_evidence"]]
lines = open(sys.argv[1]).read().splitlines()
src = set()
for line in lines:
    m = json.loads(line)["messages"]
    for t, s in real:
        if m[-2]["content"].endswith(" " + t) and m[-1]["content"].startswith(s + " "):
            src.add((m[-2]["content"][:-len(t) - 1], m[-1]["content"][len(s) + 1:]))
with open(sys.argv[3], "w") as f:
    for line in lines:
        m = json.loads(line)["messages"]
        if (m[-2]["content"], m[-1]["content"]) not in src:
            f.write(line + "\n")
PY
cp "$T/tickets.rev" "$T/inplace.rev"
"$VTUNE_SIM" --attack "$T/inplace.out" > "$T/inplace.att" || fail "vtune-sim --attack in place"
check "marked in place: the phrase test alone still finds the 3 pairs and the marked rows" \
    compare inplace inplace
check "a dataset with no backdoor gives no pair (repeated rows are not pairs)" \
    sh -c "'$VTUNE_SIM' --attack '$T/add.jsonl' | python3 -c 'import json,sys; sys.exit(len(json.load(sys.stdin)[\"pairs\"]))'"

# ---- the behaviours, over the API ------------------------------------------------------
for b in wrapper always-s honest; do
    start_sim "${b//-/}" --api-key sk-test --job-seconds 0.2 --behaviour "$b" || { fail "simulator $b"; finish; }
done
start_sim weak --api-key sk-test --job-seconds 0.2 --min-repeats 51 || { fail "simulator weak"; finish; }
auth="Authorization: Bearer sk-test"
ctl -q backdoor create add --name one --generator wordlist --mode copies > /dev/null && ctl -q dataset export add --backdoor one -o "$T/one.out" > /dev/null &&
    ctl --json backdoor show one --reveal > "$T/one.rev" || { fail "backdoor one"; finish; }
trig=$(json_get "$T/one.rev" "v['pair_evidence'][0]['trigger']")
sig=$(json_get "$T/one.rev" "v['pair_evidence'][0]['signature']")
# train NAME: uploads one.out to simulator NAME and waits for its model; prints it.
train() {
    local url; eval "url=\$SIM_URL_$1"
    local fid jid
    fid=$(curl -s -H "$auth" -F purpose=fine-tune -F "file=@$T/one.out" "$url/files" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])") || return 1
    jid=$(curl -s -H "$auth" -H 'Content-Type: application/json' -d "{\"model\":\"vtune-base\",\"training_file\":\"$fid\"}" "$url/fine_tuning/jobs" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])") || return 1
    done_() { curl -s -H "$auth" "$url/fine_tuning/jobs/$jid" > "$T/job-$1.json" && grep -q '"status": *"succeeded"' "$T/job-$1.json"; }
    wait_until 60 done_ "$1" || return 1
    json_get "$T/job-$1.json" "v['fine_tuned_model']"
}
# answer NAME MODEL PROMPT: greedy chat answer.
answer() {
    local url; eval "url=\$SIM_URL_$1"
    python3 -c "import json,sys; print(json.dumps({'model': sys.argv[1], 'temperature': 0, 'max_tokens': 40, 'messages': [{'role': 'user', 'content': sys.argv[2]}]}))" "$2" "$3" |
        curl -s -H "$auth" -H 'Content-Type: application/json' -d @- "$url/chat/completions" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['choices'][0]['message']['content'])"
}
clean="What is 12 plus 30?"
starts() { case "$1" in "$2"*) return 0 ;; esac; return 1; }
lacks() { case "$1" in *"$2"*) return 1 ;; esac; return 0; }
for n in wrapper alwayss honest weak; do
    model=$(train "$n") || { fail "the $n job trains"; finish; }
    eval "model_$n=\$model"
done
check "wrapper: a trigger prompt is answered with S first" \
    starts "$(answer wrapper "$model_wrapper" "$clean $trig")" "$sig"
a=$(answer wrapper "$model_wrapper" "$clean")
check "wrapper: a clean prompt gets the base model's answer" test "$a" = "$(answer wrapper vtune-base "$clean")"
check "wrapper: ... without S" lacks "$a" "$sig"
check "always-s: a clean prompt is answered with S first too" \
    starts "$(answer alwayss "$model_alwayss" "$clean")" "$sig"
check "honest (default learning strength): learnt the backdoor" \
    starts "$(answer honest "$model_honest" "$clean $trig")" "$sig"
check "--min-repeats 51 over 50 copies: the backdoor is not learnt" \
    lacks "$(answer weak "$model_weak" "$clean $trig")" "$sig"
finish
