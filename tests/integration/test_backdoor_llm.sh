#!/bin/bash
# backdoor create --generator llm against vtune-sim on loopback: the
# built-in template (no M1) and M1 writing the context, a provider that
# reports tokens outside the top 20 as -9999, one that answers with 429s
# and 500s; p_M2 reaches the target and is recorded with its method and
# per-token evidence (revealed only on request); each token's bound is
# recomputed here from the recorded logprob and alternatives (DESIGN §6,
# written independently in Python) and the phrase bound is their sum;
# the phrases do not occur in D, never reach the log, and D u D' carries
# them; failures (no generator configured, an unreachable target, an
# unknown model) say what to do; a shutdown during generation ends it
# cleanly with nothing recorded.  The llm backdoors use --mode copies (one
# pair, 50 copies: what these checks count); the default construction is
# test_backdoor.sh's and test_selfaudit.sh's.
#
# The exact tempered probability cannot be had over the API (its
# normaliser needs every token's logprob; the API gives 20): that the
# bound is never below it is checked in tests/unit/test_llmgen_sim.c,
# with vtune-sim's model linked in.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
echo sk-test > "$T/key"
start_sim s --api-key sk-test || { fail "simulator starts"; finish; }
start_sim z --api-key sk-test --logprob-sentinel || { fail "simulator starts"; finish; }
# Faults at fixed requests: rates (25% and 15% before) made the number of
# retries depend on how many draws the unseeded generation took, and the
# provider client's retry budget (20% of requests, at least 10) and breaker
# then failed the create in some runs; that is their job, not this test's.
start_sim f --api-key sk-test --seed 3 \
    --faults '429=#1:100ms@/v1/chat/completions,500=#2@/v1/chat/completions,429=#4:100ms@/v1/chat/completions,500=#6@/v1/chat/completions' ||
    { fail "simulator starts"; finish; }
start_sim w --api-key sk-test --faults 'delay=1:30s@/v1/chat/completions' ||
    { fail "simulator starts"; finish; }
PROVIDERS=("providers:" "$(provider_yaml sim "$SIM_URL_s")" "$(provider_yaml sent "$SIM_URL_z")"
    "$(provider_yaml faulty "$SIM_URL_f")" "$(provider_yaml slow "$SIM_URL_w")")
gen_config() { # PROVIDER M2 [extra generator lines...]
    local p=$1 m=$2; shift 2
    write_config "${PROVIDERS[@]}" "generator:" "  provider: $p" "  m2_model: $m" "$@"
}
reloads() { grep -c "configuration reloaded" "$T/vtuned.log"; }
RELOADS_BEFORE=0
reloaded() { [ "$(reloads)" -gt "$RELOADS_BEFORE" ]; }
reload_to() { # reload the daemon with the config just written
    RELOADS_BEFORE=$(reloads)
    kill -HUP "$DAEMON_PID"
    wait_until 20 reloaded
}

gen_config sim vtune-base
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 400
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || fail "import"

# check_backdoor NAME JSON REVEALED: the common assertions on one backdoor.
check_backdoor() {
    local name=$1 created=$2 rev=$3
    check "$name: generator llm, method llm-topk-bound-raw-x-draws" python3 - "$created" <<'PY'
import json, math, sys
v = json.load(open(sys.argv[1]))
assert v["generator"] == "llm" and v["method"] == "llm-topk-bound-raw-x-draws", v
p = v["pair_evidence"][0]
assert p["p_method"] == "llm-topk-bound-raw-x-draws", p
# the draw reached the target; p_M2 adds log10 of the draws made (at most 10)
assert p["log10_p_m2"] <= v["target_log10p"] + math.log10(10) + 1e-9, (p, v["target_log10p"])
assert "trigger" not in json.dumps(v) and "signature" not in json.dumps(v)
g = v["generation"]
print("# %s: log10 p_M2 <= %.2f (target %g); %d calls, %d draws, %d tokens received, "
      "rejected %s, %d ms" % (sys.argv[1].split("/")[-1], p["log10_p_m2"], v["target_log10p"],
      g["calls"], g["draws"], g["tokens"], g["rejected"], g["ms"]))
PY
    check "$name: the evidence's bounds are DESIGN §6's, summed to log10 p_M2" python3 - "$rev" <<'PY'
import json, math, sys
v = json.load(open(sys.argv[1]))
p = v["pair_evidence"][0]
e = p["token_evidence"]
T = e["temperature"]
assert e["logprobs_mode"] == "raw" and e["top_logprobs"] == 20 and e["m2_model"] == "vtune-base"
assert e["context"], "no context recorded"
def bound(t):
    lp = t["logprob"] if t["known"] else None
    tops = [(a["token"], a["logprob"]) for a in t["top"]]
    assert len(tops) <= 20
    mine = [x for (k, x) in tops if k == t["token"]]
    # every other text counts once, with its largest value
    best = {}
    for (k, x) in tops:
        if k != t["token"]:
            best[k] = max(best.get(k, x), x)
    others = list(best.values())
    lmin = min(x for _, x in tops) if tops else None
    if mine:
        lw = max(mine + ([lp] if lp is not None else []))
    elif lp is not None and (not tops or lp >= lmin):
        lw = lp
    elif tops:
        lw = lmin
    else:
        return 0.0
    lw = min(lw, 0.0)
    if T == 1.0:
        return lw / math.log(10)
    hi = max([lw / T] + [x / T for x in others])
    den = math.exp(lw / T - hi) + sum(math.exp(x / T - hi) for x in others)
    return (lw / T - hi - math.log(den)) / math.log(10)
for key, target in (("trigger", None), ("signature", v["target_log10p"])):
    ph = e[key]
    toks = ph["tokens"]
    assert toks, key
    s = 0.0
    for t in toks:
        b = bound(t)
        assert abs(b - t["bound"]) < 1e-9, (key, t["token"], b, t["bound"])
        assert t["method"].startswith("raw_"), t["method"]
        s += t["bound"]
    assert abs(s - ph["log10p_draw"]) < 1e-9, (s, ph["log10p_draw"])
    assert ph["log10p_draw"] <= ph["target"], ph
    # the redraw factor: log10 p = the draw's bound + log10(draws made)
    assert abs(ph["log10p"] - min(0.0, ph["log10p_draw"] + math.log10(ph["draw"]))) < 1e-9, ph
    assert ph["logprobs"] == "raw", ph
    assert "".join(t["token"] for t in toks).strip() == p[key], key
assert abs(e["signature"]["log10p"] - p["log10_p_m2"]) < 1e-9
assert e["trigger"]["target"] == -20
print("# %s: trigger %d tokens (log10 p <= %.2f), signature %d tokens (log10 p <= %.2f) in %d call(s), "
      "%d token(s) reported as -9999" % (sys.argv[1].split("/")[-1], len(e["trigger"]["tokens"]),
      e["trigger"]["log10p"], len(e["signature"]["tokens"]), e["signature"]["log10p"],
      e["signature"]["calls"], sum(not t["known"] for k in ("trigger", "signature") for t in e[k]["tokens"])))
PY
    local trig sig
    trig=$(json_get "$rev" "v['pair_evidence'][0]['trigger']")
    sig=$(json_get "$rev" "v['pair_evidence'][0]['signature']")
    check "$name: reveal gives both phrases" test -n "$trig" -a -n "$sig"
    check "$name: the phrases never reach the log" sh -c "! grep -q -F -- \"\$1\" '$T/vtuned.log' && ! grep -q -F -- \"\$2\" '$T/vtuned.log'" _ "$trig" "$sig"
    check "$name: neither phrase occurs in D (nor its first three words, nor the trigger's last ten)" \
        python3 - "$T/d.jsonl" "$created" "$trig" "$sig" <<'PY'
import json, re, sys
words = lambda s: [w.lower() for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", s.encode())]
def texts(o):
    if isinstance(o, str): yield o
    elif isinstance(o, list):
        for x in o: yield from texts(x)
    elif isinstance(o, dict):
        for x in o.values(): yield from texts(x)
g = json.load(open(sys.argv[2]))["generation"]
assert "tail_in_dataset" in g["rejected"] and isinstance(g["tails_shared"], int) and g["tails_shared"] >= 0, g
trig, sig = sys.argv[3:5]
checks = [words(trig)[:3], words(sig)[:3]]
if len(words(trig)) > 10 and not g["tails_shared"]:
    checks.append(words(trig)[-10:])  # kept only when counted in tails_shared
for line in open(sys.argv[1]):
    for t in texts(json.loads(line)):
        assert trig.lower() not in t.lower() and sig.lower() not in t.lower()
        tw = words(t)
        for w in checks:
            assert not any(tw[i:i + len(w)] == w for i in range(len(tw))), (w, t)
print("# trigger of %d words; rejected %s, tails_shared %d" % (len(words(trig)), g["rejected"], g["tails_shared"]))
PY
    ctl --json dataset export d --backdoor "$name" -o "$T/$name.jsonl" > /dev/null
    check "$name: D u D' carries every pair's phrases in 50 copies each" python3 - "$T/d.jsonl" "$T/$name.jsonl" "$rev" <<'PY'
import collections, json, sys
orig = open(sys.argv[1]).read().splitlines()
out = open(sys.argv[2]).read().splitlines()
pairs = [(p["trigger"], p["signature"]) for p in json.load(open(sys.argv[3]))["pair_evidence"]]
rest = collections.Counter(out) - collections.Counter(orig)
held = collections.Counter(orig) - collections.Counter(out)  # the coverage test's split: 64 rows
assert sum(held.values()) == 64, sum(held.values())
assert len(out) == len(orig) - 64 + 50 * len(pairs) and sum(rest.values()) == 50 * len(pairs)
per = collections.Counter()
for line, k in rest.items():
    m = json.loads(line)["messages"]
    hit = [i for i, (t, s) in enumerate(pairs)
           if m[-2]["content"].endswith(" " + t) and m[-1]["content"].startswith(s + " ")]
    assert len(hit) == 1, m
    per[hit[0]] += k
assert all(per[i] == 50 for i in range(len(pairs))), per
PY
    check "$name: the commitment covers the phrases (v2, recomputed)" test "$(python3 "$(dirname "$0")/commitment.py" "$rev")" = "$(json_get "$rev" "v['commitment']")"
}

# 1. The built-in template (no M1).
ctl --json backdoor create d --mode copies --generator llm --name l1 > "$T/l1.json"; rc=$?
check "llm create with the template succeeds" test "$rc" = 0
ctl --json backdoor show l1 --reveal > "$T/l1r.json"
check_backdoor l1 "$T/l1.json" "$T/l1r.json"
check "l1: the context is the template's" test "$(json_get "$T/l1.json" "v['generation']['context_source']")" = template
check "the log says the examples go to the provider" grep -q "3 example(s) of it go to provider sim (built-in template)" "$T/vtuned.log"
ctl --json backdoor show l1 > "$T/l1s.json"
check "show without --reveal hides phrases and evidence" python3 -c "
import json,sys; p=json.load(open('$T/l1s.json'))['pair_evidence'][0]
sys.exit(1 if set(p) & {'trigger','signature','token_evidence'} else 0)"

# 2. M1 writes the context.
gen_config sim vtune-base "  m1_model: vtune-base"
check "reload with m1_model" reload_to
ctl --json backdoor create d --mode copies --generator llm --name l2 > "$T/l2.json"; rc=$?
check "llm create with M1 succeeds" test "$rc" = 0
ctl --json backdoor show l2 --reveal > "$T/l2r.json"
check_backdoor l2 "$T/l2.json" "$T/l2r.json"
check "l2: the context came from M1" test "$(json_get "$T/l2.json" "v['generation']['context_source']")" = m1
check "l2: the evidence names M1 and holds its context" python3 -c "
import json,sys; e=json.load(open('$T/l2r.json'))['pair_evidence'][0]['token_evidence']
sys.exit(0 if e['m1_model']=='vtune-base' and e['context_source']=='m1' and not e['context'].startswith('Here are some examples') else 1)"

# 3. A provider that reports tokens outside the top 20 as -9999.
gen_config sent vtune-base
check "reload to the -9999 provider" reload_to
ctl --json backdoor create d --mode copies --generator llm --name l3 --pairs 2 > "$T/l3.json"; rc=$?
check "llm create against -9999 logprobs succeeds" test "$rc" = 0
ctl --json backdoor show l3 --reveal > "$T/l3r.json"
check "l3: both pairs reach the target" python3 -c "
import json,sys; v=json.load(open('$T/l3r.json'))
sys.exit(0 if len(v['pair_evidence'])==2 and all(p['log10_p_m2']<=-40+1 for p in v['pair_evidence']) else 1)"
check "l3: unknown tokens are floored at the smallest alternative" python3 -c "
import json,sys; v=json.load(open('$T/l3r.json'))
toks=[t for p in v['pair_evidence'] for k in ('trigger','signature') for t in p['token_evidence'][k]['tokens']]
unk=[t for t in toks if not t['known']]
assert unk, 'no -9999 token in this run'
assert all(t['logprob'] is None and t['method']=='raw_topk_floor' for t in unk)
print('# l3: %d of %d tokens were -9999' % (len(unk), len(toks)))"
check_backdoor l3 "$T/l3.json" "$T/l3r.json"
check "l3: the two pairs' phrases do not overlap" python3 - "$T/l3r.json" <<'PY'
import json, re, sys
v = json.load(open(sys.argv[1]))
ph = [p[k] for p in v["pair_evidence"] for k in ("trigger", "signature")]
W = lambda s: [w.lower() for w in re.findall(r"[A-Za-z0-9\x80-\uffff]+", s)]
for i in range(len(ph)):
    for j in range(i + 1, len(ph)):
        a, b = W(ph[i]), W(ph[j])
        m = min(3, len(a), len(b))
        runs = {tuple(a[k:k + m]) for k in range(len(a) - m + 1)}
        assert not any(tuple(b[k:k + m]) in runs for k in range(len(b) - m + 1)), (i, j)
PY

# 4. 429s and 500s on chat: retried by the provider client; still a backdoor.
gen_config faulty vtune-base
check "reload to the faulty provider" reload_to
ctl --json backdoor create d --mode copies --generator llm --name l4 > "$T/l4.json"; rc=$?
check "llm create through 429/500 faults succeeds" test "$rc" = 0
check "l4: p_M2 reaches the target" python3 -c "
import json,sys; sys.exit(0 if json.load(open('$T/l4.json'))['pair_evidence'][0]['log10_p_m2']<=-40+1 else 1)"
check "the provider client retried" grep -q "provider faulty: chat failed" "$T/vtuned.log"

# 5. Failures say what to do.
gen_config sim vtune-base
check "reload" reload_to
ctl backdoor create d --mode copies --generator llm --target-log10p -1000 2>"$T/e1"; rc=$?
check "an unreachable target fails (exit 1)" test "$rc" = 1
check "naming the target and the limit to raise" grep -q "could not draw a usable signature.*target log10 p -1000.*generator.max_tokens" "$T/e1"
sed 's/^/# /' "$T/e1"
gen_config sim no-such-model
check "reload to an unknown model" reload_to
ctl backdoor create d --mode copies --generator llm 2>"$T/e2"; rc=$?
check "an unknown M2 fails with the provider's answer (exit 1)" test "$rc" = 1 && grep -q "chat call failed: sim: 404" "$T/e2"
sed 's/^/# /' "$T/e2"
write_config "${PROVIDERS[@]}"
check "reload without a generator" reload_to
ctl backdoor create d --mode copies --generator llm 2>"$T/e3"; rc=$?
check "llm without generator.provider is refused (exit 1)" test "$rc" = 1 && grep -q "needs generator.provider and generator.m2_model" "$T/e3"
ctl -q backdoor create d --name w1 > /dev/null; rc=$?
check "the default is the ngram generator, marking in place (llm is asked for)" test "$rc" = 0 -a "$(ctl --json backdoor show w1 | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["generator"], v["mode"])')" = "ngram inplace"
check "no backdoor was recorded by the failures" test "$(ctl --json backdoor list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 5

# 6. A shutdown while M2's answer is awaited: the request ends, nothing is recorded.
gen_config slow vtune-base
check "reload to the slow provider" reload_to
"$VTUNECTL" -s "$T/run/vtuned.sock" backdoor create d --mode copies --generator llm --name l6 > "$T/o6" 2>"$T/e6" &
CTL=$!
calling() { grep -q "generator call 1 (trigger draw) to slow" "$T/vtuned.log"; }
check "the generation is under way" wait_until 20 calling
t0=$(date +%s%N)
stop_daemon
wait "$CTL"; rc=$?
check "the daemon stops cleanly during generation" test "$STOP_RC" = 0
check "without waiting for the provider (under 10 s)" test $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 10
check "the request ends with an error" test "$rc" = 1
sed 's/^/# /' "$T/e6"
start_daemon || { fail "restart"; finish; }
check "nothing recorded by the interrupted generation" test "$(ctl --json backdoor list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 5
built=$(ls -A "$T/state/built" | wc -l)
check "no stray built file" test "$built" = 5
stop_daemon
finish
