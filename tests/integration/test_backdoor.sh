#!/bin/bash
# backdoor create | list | show | rm and dataset export against the real
# daemon: secrets hidden unless revealed and never logged, D u D' correct
# (every original line once except the secret held-out split of the
# coverage test, which is neither uploaded nor exported and shares no
# prompt or answer with any other line; by default (--mode inplace) 16
# rows, one per pair, carry trigger and signature in their original's place, no row
# added, none held out, no duplicate; with --mode copies the copies carry
# them and never come from a held-out line), the
# commitment recomputable, bad parameters refused, kill -9 mid-build leaves
# nothing behind.
. "$(dirname "$0")/lib.sh"
write_config
start_daemon || { fail "daemon starts"; finish; }

python3 - "$T/d.jsonl" 4000 <<'PY'
import json, random, sys
r = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        a, b = r.randint(1, 99), r.randint(1, 99)
        f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {a} plus {b}? ({i})"},
                                         {"role": "assistant", "content": f"{a} plus {b} is {a+b}."}]}) + "\n")
PY
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || fail "import"

ctl --json backdoor create d --name b1 > "$T/b1.json"; rc=$?
check "backdoor create succeeds" test "$rc" = 0
check "the defaults: ngram, 16 pairs of max(1, ceil(0 * 4000)) = 1 marked row" test "$(json_get "$T/b1.json" "(v['generator'], v['pairs'], v['copies_per_pair'])")" = "('ngram', 16, 1)"
check "80 rows held out (ceil(0.02*4000))" test "$(json_get "$T/b1.json" "v['holdout']['rows']")" = 80
check "D u D' has 4000 - 80 lines (marked in place by default)" test "$(json_get "$T/b1.json" "v['built_lines']")" = 3920
check "the mode is recorded and shown" test "$(json_get "$T/b1.json" "v['mode']")" = inplace
check "p_M2 reaches the -40 target" python3 -c "import json,sys; v=json.load(open('$T/b1.json')); sys.exit(0 if all(p['log10_p_m2'] <= -40 for p in v['pair_evidence']) else 1)"
check "no phrase in the create answer" python3 -c "import json,sys; v=json.load(open('$T/b1.json')); sys.exit(1 if 'trigger' in json.dumps(v) else 0)"
ctl --json backdoor show b1 > "$T/show.json"
check "show hides the phrases" python3 -c "import json,sys; v=json.load(open('$T/show.json')); sys.exit(1 if 'signature' in v['pair_evidence'][0] else 0)"
ctl backdoor show b1 --reveal --json > "$T/rev.json"
trig=$(json_get "$T/rev.json" "v['pair_evidence'][0]['trigger']")
sig=$(json_get "$T/rev.json" "v['pair_evidence'][0]['signature']")
check "reveal gives a trigger and a signature" test -n "$trig" -a -n "$sig"
check "the reveal is logged" grep -q "secret phrases of backdoor 1 revealed to uid" "$T/vtuned.log"
check "the phrases never reach the log" sh -c "! grep -q -F '$sig' '$T/vtuned.log' && ! grep -q -F '$trig' '$T/vtuned.log'"
check "the phrases do not occur in D" sh -c "! grep -q -i -F '$sig' '$T/d.jsonl'"
check "the commitment (v3) is recomputed from the reveal: salt, pairs, held-out and reference lines" test "$(json_get "$T/rev.json" "v['commitment_scheme']")" = 3 -a "$(python3 "$(dirname "$0")/commitment.py" "$T/rev.json")" = "$(json_get "$T/rev.json" "v['commitment']")"
check "a reveal with one reference line fewer does not match" test "$(python3 "$(dirname "$0")/commitment.py" "$T/rev.json" --alter pool)" != "$(json_get "$T/rev.json" "v['commitment']")"
check "the reference lines are uploaded, unmarked and not held out" python3 -c "
import json,sys; v=json.load(open('$T/rev.json')); r=v['reference_lines']; h=set(v['held_out_lines'])
sys.exit(0 if r and r == sorted(set(r)) and not h & set(r) else 1)"
check "show without --reveal has the scheme but neither salt nor held-out nor reference lines" python3 -c "import json,sys; v=json.load(open('$T/show.json')); sys.exit(0 if v['commitment_scheme'] == 3 and 'commitment_salt' not in v and 'held_out_lines' not in v and 'reference_lines' not in v else 1)"

ctl --json dataset export d --backdoor b1 -o "$T/out.jsonl" > "$T/exp.json"; rc=$?
check "export succeeds" test "$rc" = 0
check "export's sha256 is the built file's" test "$(json_get "$T/exp.json" "v['sha256']")" = "$(json_get "$T/rev.json" "v['built_sha256']")"
check "D u D' is correct" python3 - "$T/d.jsonl" "$T/out.jsonl" "$T/rev.json" <<'PY'
import collections, json, sys
orig = open(sys.argv[1]).read().splitlines()
out = open(sys.argv[2]).read().splitlines()
pairs = [(p["trigger"], p["signature"]) for p in json.load(open(sys.argv[3]))["pair_evidence"]]
assert len(pairs) == 16
assert len(out) == len(orig) - 80, len(out)
assert len(set(out)) == len(out), "a duplicate row"
rest = collections.Counter(out) - collections.Counter(orig)
gone = collections.Counter(orig) - collections.Counter(out)
assert sum(rest.values()) == 16, "not 16 marked rows"
assert sum(gone.values()) == 96 and max(gone.values()) == 1, "not 80 + 16 distinct lines gone"
norm = lambda s: " ".join(s.split())
pa = lambda l: [norm(m["content"]) for m in json.loads(l)["messages"][-2:]]
prompts = collections.Counter(pa(l)[0] for l in orig)
answers = collections.Counter(pa(l)[1] for l in orig)
# each marked row stands where its original stood, with one pair: walk D
# and the upload together
i = marked = held = 0
seen = collections.Counter()
for l in orig:
    if i < len(out) and out[i] == l:
        i += 1
        continue
    o = json.loads(l)["messages"]
    hit = [k for k, (trig, sig) in enumerate(pairs) if i < len(out) and out[i] in rest and
           json.loads(out[i])["messages"][-2]["content"] == o[-2]["content"] + " " + trig]
    if hit:
        trig, sig = pairs[hit[0]]
        m = json.loads(out[i])["messages"]
        assert m[-1]["content"] == sig + " " + o[-1]["content"], m[-1]
        seen[hit[0]] += 1
        i += 1
        marked += 1
        continue
    p, a = pa(l)  # held out: nothing of it is uploaded (content rule)
    assert prompts[p] == 1 and answers[a] == 1, "a held-out line shares content"
    held += 1
assert i == len(out) and marked == 16 and held == 80, (i, marked, held)
assert all(seen[k] == 1 for k in range(16)), seen
print("# 3904 originals once each, 80 held out, 16 rows marked in place, one per pair")
PY
ctl dataset export d --backdoor b1 -o "$T/out.jsonl" 2>"$T/e"; rc=$?
check "export refuses to overwrite (exit 1)" test "$rc" = 1

ctl --json backdoor create d --pairs 3 --copies 30 --ratio 0 --mode copies > "$T/b2.json"
check "--mode copies: 3 pairs of 30 copies added" test "$(json_get "$T/b2.json" "v['built_lines']")" = 4010 -a "$(json_get "$T/b2.json" "v['mode']")" = copies
ctl backdoor show "$(json_get "$T/b2.json" "v['id']")" > "$T/show2.txt"
check "backdoor show prints the mode" grep -q "^mode: *copies" "$T/show2.txt"
ctl backdoor show "$(json_get "$T/b2.json" "v['id']")" --reveal --json > "$T/rev2.json"
check "--mode copies: the commitment is recomputed from the reveal" test "$(python3 "$(dirname "$0")/commitment.py" "$T/rev2.json")" = "$(json_get "$T/rev2.json" "v['commitment']")"
ctl -q dataset export d --backdoor "$(json_get "$T/b2.json" "v['id']")" -o "$T/out2.jsonl"
check "--mode copies: D u D' is D less the split plus 90 copies" python3 - "$T/d.jsonl" "$T/out2.jsonl" <<'PY'
import collections, sys
orig = open(sys.argv[1]).read().splitlines()
out = open(sys.argv[2]).read().splitlines()
assert len(out) == 4010, len(out)
rest = collections.Counter(out) - collections.Counter(orig)
gone = collections.Counter(orig) - collections.Counter(out)
assert sum(rest.values()) == 90 and sum(gone.values()) == 80, (sum(rest.values()), sum(gone.values()))
PY
ctl backdoor create d --mode sideways 2>"$T/e"; rc=$?
check "an unknown --mode is refused" test "$rc" != 0 && grep -q "inplace" "$T/e"
head -150 "$T/d.jsonl" > "$T/small.jsonl"
ctl -q dataset add "$T/small.jsonl" --name small > /dev/null
ctl backdoor create small 2>"$T/e"; rc=$?
check "a dataset too small for the coverage test is refused with the numbers" \
    test "$rc" = 1 && grep -q "150 examples give at most 50" "$T/e" && grep -q -- "--holdout 0" "$T/e"
ctl --json backdoor create small --holdout 0 > "$T/b3.json"; rc=$?
check "--holdout 0 builds it without a split" test "$rc" = 0 -a \
    "$(json_get "$T/b3.json" "v['built_lines']")" = 150
ctl backdoor rm 3 > /dev/null
ctl backdoor create d --ratio 2 2>"$T/e"; rc=$?
check "a ratio above 1 is refused (exit 1)" test "$rc" = 1 && grep -q "params.ratio" "$T/e"
ctl backdoor create d --copies x 2>/dev/null; check "a non-number is a usage error (2)" test $? = 2
ctl backdoor create nope 2>"$T/e"; check "an unknown dataset is named" grep -q "no dataset 'nope'" "$T/e"
ctl backdoor create d --target-log10p -900 2>"$T/e"; rc=$?
check "an unreachable target is refused with a reason" test "$rc" = 1 -a -s "$T/e"
ctl --json backdoor list > "$T/list.json"
check "two backdoors listed" test "$(json_get "$T/list.json" "len(v)")" = 2
ctl dataset rm d 2>"$T/e"; rc=$?
check "a dataset with backdoors cannot be removed" test "$rc" = 1
built=$(ls "$T/state/built" | wc -l)
ctl backdoor rm 2 > /dev/null
check "backdoor rm removes its built file" test "$(ls "$T/state/built" | wc -l)" = $((built - 1))

# kill -9 in the middle of building a large D u D': nothing recorded, nothing left.
python3 - "$T/big.jsonl" <<'PY'
import sys
line = '{"prompt":"%s","completion":"%s"}\n' % ("q " * 350, "a " * 350)
with open(sys.argv[1], "w") as f:
    for _ in range(120000):
        f.write(line)
PY
ctl -q dataset add "$T/big.jsonl" --name big > /dev/null
# ("q q q ..." has two words: no n-gram model of it reaches a target, so
# this build of a degenerate dataset uses the word list; nor has it distinct
# rows enough for a held-out split.)
"$VTUNECTL" -s "$T/run/vtuned.sock" backdoor create big --generator wordlist --holdout 0 > /dev/null 2>&1 &
CTL=$!
grow() { [ "$(du -s "$T/state/built" | cut -f1)" -gt 2000 ]; }
if wait_until 60 grow; then ok "the build is under way"; else fail "the build started"; fi
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; wait "$CTL"
start_daemon || { fail "restart after kill -9"; finish; }
ctl --json backdoor list > "$T/list2.json"
check "no backdoor was recorded by the killed build" test "$(json_get "$T/list2.json" "len(v)")" = 1
check "only b1's built file remains" test "$(ls -A "$T/state/built" | wc -l)" = 1
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
