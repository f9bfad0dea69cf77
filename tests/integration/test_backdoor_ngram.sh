#!/bin/bash
# backdoor create with the ngram generator (--generator ngram) against the real
# daemon: the recorded generator and method, p_M2 at the target and equal to
# the evidence's per-word probabilities times the draws, phrases made of the
# dataset's own words yet not copied from it, the same seed giving the same
# phrases, a target the dataset cannot reach refused with its numbers, the
# word list still available, and the simulator's dataset.  At order 3
# (generator.ngram_order: 3, the default, written out; see README "Marked
# rows that do not stand out"), where the sides of the model show: the
# trigger ends like a prompt of D, the signature starts like an answer;
# then order 1 after a reload, and order 3 again after a reload to the
# defaults; the training sample (generator.ngram_train_rows) after
# another reload; and triggers' endings (their last 10 words not in D, or
# kept, counted and warned about where every prompt of D ends alike).
. "$(dirname "$0")/lib.sh"
write_config "generator:" "  ngram_order: 3"
start_daemon || { fail "daemon starts"; finish; }

D="$top_srcdir/tests/data/sample-chat.jsonl"
"$VTUNE_SIM" --write-dataset "$T/sim.jsonl" --examples 3000 > /dev/null || fail "vtune-sim --write-dataset"
ctl -q dataset add "$D" --name d > /dev/null || fail "import sample-chat"
ctl -q dataset add "$T/sim.jsonl" --name sim > /dev/null || fail "import the simulator's dataset"

# words_in_d PHRASE_JSON DATASET: every word of T and S (runs of letters,
# digits and non-ASCII, case ignored) occurs in a string value of D, and
# neither phrase occurs in D word for word.
words_ok() {
    python3 - "$1" "$2" <<'PY'
import json, re, sys
v = json.load(open(sys.argv[1]))
W = re.compile(r"[A-Za-z0-9\x80-\U0010ffff]+")
def words(s): return [w.lower() for w in W.findall(s)]
vocab, texts = set(), []
def walk(x):
    if isinstance(x, str):
        ws = words(x); vocab.update(ws); texts.append(" " + " ".join(ws) + " ")
    elif isinstance(x, list):
        for y in x: walk(y)
    elif isinstance(x, dict):
        for y in x.values(): walk(y)
for line in open(sys.argv[2], encoding="utf-8"):
    walk(json.loads(line))
for p in v["pair_evidence"]:
    for k in ("trigger", "signature"):
        ws = words(p[k])
        missing = [w for w in ws if w not in vocab]
        assert not missing, (k, missing)
        joined = " " + " ".join(ws) + " "
        assert not any(joined in t for t in texts), (k, "occurs in D")
        assert "\n" not in p[k] and p[k] == p[k].strip(), k
print("# %d pair(s): every word from D, no phrase copied from D" % len(v["pair_evidence"]))
PY
}

ctl --json backdoor create d --name n1 --seed 11 --generator ngram > "$T/n1.json"; rc=$?
check "backdoor create succeeds with --generator ngram" test "$rc" = 0
check "the generator is ngram, method ngram-exact" python3 - "$T/n1.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["generator"] == "ngram" and v["method"] == "ngram-exact", v
assert all(p["p_method"] == "ngram-exact" and p["log10_p_m2"] <= -40 for p in v["pair_evidence"]), v
g = v["generation"]
assert g["order"] == 3 and g["vocab"] > 100 and g["scans"] >= 1, g
assert "trigger" not in json.dumps(v["pair_evidence"]), "phrases in the create answer"
PY
ctl --json backdoor show n1 --reveal > "$T/n1r.json"
check "phrases use D's words and are not copied from it" words_ok "$T/n1r.json" "$D"
check "p_M2 = product of the recorded word probabilities x draws, <= target" python3 - "$T/n1r.json" <<'PY'
import json, math, sys
v = json.load(open(sys.argv[1]))
for p in v["pair_evidence"]:
    ev = p["token_evidence"]
    assert ev["method"] == "ngram-exact" and ev["order"] == 3, ev
    for k in ("trigger", "signature"):
        e = ev[k]
        lq = e["word_log10q_in_sampling_order"]
        assert len(lq) == e["words"] == len(p[k].split()), (k, e["words"])
        assert all(x < 0 for x in lq)
        assert abs(sum(lq) - e["log10_draw"]) < 1e-9, k
        assert abs(e["log10_draw"] + math.log10(e["draws"]) - e["log10_p"]) < 1e-9, k
        assert e["log10_p"] <= e["target_log10p"] + 1e-12, k
    assert abs(ev["signature"]["log10_p"] - p["log10_p_m2"]) < 1e-6
    assert ev["trigger"]["target_log10p"] == -20 and ev["signature"]["target_log10p"] == -40
PY
check "the trigger ends like a prompt of D, the signature starts like an answer" python3 - "$T/n1r.json" "$D" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
ends, starts = set(), set()
for line in open(sys.argv[2]):
    m = json.loads(line)["messages"]
    ends.add([x for x in m if x["role"] == "user"][-1]["content"].split()[-1])
    starts.add(m[-1]["content"].split()[0])
p = v["pair_evidence"][0]
# not guaranteed by the model (the boundary can back off), but at seed 11 it holds,
# and a generator that ignored the sides would miss it
assert p["trigger"].split()[-1] in ends, p["trigger"].split()[-1]
assert p["signature"].split()[0] in starts, p["signature"].split()[0]
PY

ctl --json backdoor create d --name n2 --seed 11 --generator ngram > "$T/n2.json"
ctl --json backdoor show n2 --reveal > "$T/n2r.json"
phrases() { json_get "$1" "[(p['trigger'], p['signature']) for p in v['pair_evidence']]"; }
check "the same seed gives the same phrases" test "$(phrases "$T/n1r.json")" = "$(phrases "$T/n2r.json")"
check "but another commitment (its salt is fresh)" test "$(json_get "$T/n1.json" "v['commitment']")" != "$(json_get "$T/n2.json" "v['commitment']")"
ctl --json backdoor create d --name n3 --seed 12 --generator ngram > "$T/n3.json"
ctl --json backdoor show n3 --reveal > "$T/n3r.json"
check "another seed gives other phrases" test "$(phrases "$T/n1r.json")" != "$(phrases "$T/n3r.json")"

ctl --json backdoor create d --name n4 --pairs 3 --copies 10 --ratio 0 --generator ngram > "$T/n4.json"; rc=$?
check "3 pairs from getrandom" test "$rc" = 0 -a "$(json_get "$T/n4.json" "len(v['pair_evidence'])")" = 3
ctl --json backdoor show n4 --reveal > "$T/n4r.json"
check "3 pairs: D's words, not copied" words_ok "$T/n4r.json" "$D"

ctl backdoor create d --target-log10p -900 --generator ngram 2>"$T/e1"; rc=$?
check "an unreachable target fails (exit 1)" test "$rc" = 1
check "... naming the target, the caps, the draws and what to change" grep -q "could not make the signature of pair 1 with log10 p <= -900 within 96 words and 720 characters in 64 draws.*--generator wordlist" "$T/e1"
check "... and nothing was recorded" test "$(ctl --json backdoor list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4

ctl --json backdoor create d --generator wordlist --name w1 > "$T/w1.json"; rc=$?
check "--generator wordlist still works" test "$rc" = 0 -a "$(json_get "$T/w1.json" "v['generator']+' '+v['method']")" = "wordlist wordlist-exact"
order_is() { ctl --json backdoor create d --generator ngram > "$T/o$1.json" 2>/dev/null && [ "$(json_get "$T/o$1.json" "v['generation']['order']")" = "$1" ]; }
write_config "generator:" "  ngram_order: 1"
kill -HUP "$DAEMON_PID"
check "after a reload to ngram_order 1: order 1" wait_until 20 order_is 1
write_config
kill -HUP "$DAEMON_PID"
check "after a reload to the defaults: order 3 (generator.ngram_order's default)" wait_until 20 order_is 3
ctl backdoor create d --generator markov 2>"$T/e2"; rc=$?
check "an unknown generator is refused, naming the three" test "$rc" = 1 && grep -q "expected ngram, wordlist or llm" "$T/e2"

ctl --json backdoor create sim --name s1 --seed 3 --pairs 2 --generator ngram > "$T/s1.json"; rc=$?
check "the simulator's dataset: 2 pairs" test "$rc" = 0
ctl --json backdoor show s1 --reveal > "$T/s1r.json"
check "the simulator's dataset: D's words, not copied" words_ok "$T/s1r.json" "$T/sim.jsonl"
check "3,000 rows, fewer than generator.ngram_train_rows: every row not held out is trained on" \
    python3 - "$T/s1.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
g, h = v["generation"], v["holdout"]
assert g["train_share"] == 1 and g["rows_trained"] == 3000 - h["rows"], (g, h)
PY
check "generation.stages_ms: each step's milliseconds, together within the whole" \
    python3 - "$T/s1.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["generation"]
st = g["stages_ms"]
assert list(st) == ["split", "train", "phrases", "build", "self_audit"], st
assert all(isinstance(x, int) and x >= 0 for x in st.values()), st
assert sum(st.values()) <= g["ms"], (st, g["ms"])
PY
check "... and the log says where the time went" \
    grep -Eq "backdoor: [0-9]+: created in [0-9.]+ s \(split [0-9.]+ s, train [0-9.]+ s, phrases [0-9.]+ s, build [0-9.]+ s, self_audit [0-9.]+ s\)" "$T/vtuned.log"
# The training sample (generator.ngram_train_rows, README): a reload to 500
# trains on about 500 of the rows not held out, and the phrases are still
# D's words, checked against all of it.
write_config "generator:" "  ngram_train_rows: 500"
kill -HUP "$DAEMON_PID"
sampled() { ctl --json backdoor create sim --seed 5 --pairs 2 > "$T/s2.json" 2>/dev/null &&
    python3 -c "import json,sys; sys.exit(0 if json.load(open('$T/s2.json'))['generation']['train_share'] < 1 else 1)"; }
check "after a reload to ngram_train_rows 500: a sample" wait_until 20 sampled
check "of about 500 rows (5 sigma), the share being 500 / the rows not held out" \
    python3 - "$T/s2.json" <<'PY'
import json, math, sys
v = json.load(open(sys.argv[1]))
g, h = v["generation"], v["holdout"]
eligible = 3000 - h["rows"]
p = 500 / eligible
assert abs(g["train_share"] - p) < 1e-9, (g, h)
assert abs(g["rows_trained"] - 500) < 5 * math.sqrt(eligible * p * (1 - p)), g
print("# %d of %d rows trained on (share %.4f)" % (g["rows_trained"], eligible, g["train_share"]))
PY
ctl --json backdoor show "$(json_get "$T/s2.json" "v['id']")" --reveal > "$T/s2r.json"
check "the sample's phrases: D's words, not copied" words_ok "$T/s2r.json" "$T/sim.jsonl"
python3 - "$T/n1r.json" "$T/s1r.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    for p in json.load(open(f))["pair_evidence"]:
        print("# T [log10 %.2f]: %s" % (p["token_evidence"]["trigger"]["log10_p"], p["trigger"]))
        print("# S [log10 p_M2 %.2f]: %s" % (p["log10_p_m2"], p["signature"]))
PY
check "the phrases never reach the log" python3 - "$T/n1r.json" "$T/vtuned.log" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])); log = open(sys.argv[2]).read()
assert not any(p["signature"] in log or p["trigger"] in log for p in v["pair_evidence"])
PY

# Trigger endings.  On the simulator's tickets every trigger got an ending
# of its own (its last 10 words occur nowhere in D); on a dataset whose
# prompts all end in one of three fixed sentences none can, and the
# triggers are kept after the passes, counted and warned about.
check "the tickets' triggers: none kept with an ending other prompts have" \
    test "$(json_get "$T/s2.json" "v['generation']['tails_shared']")" = 0
python3 - "$T/alike.jsonl" <<'PY'
import json, random, sys
rnd = random.Random(7)
body = ["My printer jams", "The invoice is wrong", "My login fails", "The app crashes",
        "My parcel is late", "The screen flickers", "The refund is missing"]
end = ["It is not a big deal but I wanted to report it today. Thanks, Tom",
       "This is urgent and I need it fixed by tonight please. Regards, Ana",
       "No rush at all but please have a look when you can. Best, Lee"]
with open(sys.argv[1], "w") as f:
    for i in range(400):
        u = "%s since %d days. %s" % (rnd.choice(body), rnd.randint(1, 60), rnd.choice(end))
        a = "%s team %s will call you in %d hours." % (rnd.choice(["Tom", "Ana", "Lee"]),
                                                       rnd.choice(body), rnd.randint(1, 48))
        f.write(json.dumps({"messages": [{"role": "user", "content": u},
                                         {"role": "assistant", "content": a}]}) + "\n")
PY
ctl -q dataset add "$T/alike.jsonl" --name alike > /dev/null || fail "import alike"
# Seeded: the smoothed model may, now and then, draw an ending D does not
# have (then that trigger is not counted); unseeded, "both counted" failed
# in one CI run of many.  Whatever the seed, what is counted must be what
# the triggers are, checked below with the test's own tokenizer.
ctl --json backdoor create alike --pairs 2 --holdout 0 --trigger-log10p -8 --target-log10p -10 \
    --seed 3 > "$T/alike.json" 2> "$T/alike.err"
check "prompts that all end alike: the backdoor is still made (rc 0)" test $? = 0
check "its triggers were redrawn for their endings" \
    python3 -c "import json,sys; sys.exit(0 if json.load(open('$T/alike.json'))['generation']['rejected']['tail_in_dataset'] > 0 else 1)"
check "and both kept after the passes, counted in generation.tails_shared" \
    test "$(json_get "$T/alike.json" "v['generation']['tails_shared']")" = 2
ctl --json backdoor show "$(json_get "$T/alike.json" "v['id']")" --reveal > "$T/aliker.json"
check "tails_shared counts exactly the triggers whose last 10 words occur in D" \
    python3 - "$T/alike.jsonl" "$T/aliker.json" "$T/alike.json" <<'PY'
import json, re, sys
words = lambda s: [w.lower() for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", s.encode())]
texts = [words(m["content"]) for l in open(sys.argv[1]) for m in json.loads(l)["messages"]]
def occurs(w):
    return any(t[i:i + len(w)] == w for t in texts for i in range(len(t) - len(w) + 1))
trig = [p["trigger"] for p in json.load(open(sys.argv[2]))["pair_evidence"]]
shared = sum(occurs(words(t)[-10:]) for t in trig)
counted = json.load(open(sys.argv[3]))["generation"]["tails_shared"]
print("# %d of %d triggers end like D; counted %d" % (shared, len(trig), counted))
sys.exit(0 if shared == counted else 1)
PY
check "the daemon warns, naming the dataset" \
    grep -q "backdoor: dataset 'alike': 2 trigger(s) end with 10 words that other prompts" "$T/vtuned.log"

stop_daemon
finish
