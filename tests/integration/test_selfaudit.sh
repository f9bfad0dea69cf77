#!/bin/bash
# The self-audit through the real daemon (issue 12 item 3): `backdoor create`
# reports the exposure line; `backdoor audit` (human and --json) names, per
# pair, the attack and the rank, and never a phrase; `backdoor show` carries
# the recorded result; `job submit` refuses an exposed backdoor without
# --force (exit 1, one line naming pair, attack, rank and --force, no job
# recorded, nothing uploaded) and accepts it with --force; the job's audit
# record carries the self-audit (verdict and pairs recovered) and `audit
# show` says it.  The paper's construction (--mode copies --generator
# wordlist: copies of rows, word-list phrases) is exposed by design, so
# that backdoor is found at rank 1 or 2; the default one (in place, ngram,
# one marked row per pair) is not, and is submitted without --force.
# Self-audits in a row keep the daemon within its 64 MB (outside
# AddressSanitizer builds).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"
echo sk-test > "$T/key"
start_sim ok --api-key sk-test --job-seconds 0.6 || { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml ok "$SIM_URL_ok")"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 600
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || { fail "dataset"; finish; }

# backdoor create prints the verdict line.
ctl backdoor create d --name b --pairs 2 --mode copies --generator wordlist > "$T/create.out" 2> "$T/create.err" ||
    { fail "backdoor create"; cat "$T/create.err"; finish; }
sed 's/^/# /' "$T/create.out"
check "create reports the self-audit's verdict" \
    grep -Eq "^self-audit: pair [01] recovered at rank 1 by the [a-z]+ attack: the marks stand out" "$T/create.out"
ctl backdoor show b --reveal --json > "$T/secret.json"
T0=$(json_get "$T/secret.json" "v['pair_evidence'][0]['trigger']")
S0=$(json_get "$T/secret.json" "v['pair_evidence'][0]['signature']")
check "the phrases were revealed for the test" test -n "$T0" -a -n "$S0"

# backdoor audit, human.
ctl backdoor audit b > "$T/audit.out" || fail "backdoor audit exits 0"
sed 's/^/# /' "$T/audit.out"
check "audit prints the verdict" grep -q "^self-audit: pair [01] recovered at rank 1 by the" "$T/audit.out"
check "audit lists both pairs with a rank" test "$(grep -cE '^  [01] +.*rank [12]' "$T/audit.out")" = 2
check "audit prints no trigger" bash -c "! grep -qF -- \"$T0\" '$T/audit.out'"
check "audit prints no signature" bash -c "! grep -qF -- \"$S0\" '$T/audit.out'"

# backdoor audit --json.
ctl --json backdoor audit b > "$T/audit.json" || fail "backdoor audit --json exits 0"
check "json: exposed, within the top 10" test "$(json_get "$T/audit.json" "(v['exposed'], v['exposed_rank'] <= 10, v['exposed_within'])")" = "(True, True, 10)"
check "json: every pair recovered by duplicates and co-occurrence within the top 2" \
    test "$(json_get "$T/audit.json" "all(p['ranks']['duplicates'] in (1, 2) and p['ranks']['cooccurrence'] in (1, 2) for p in v['pairs'])")" = True
check "json: the copies are near-duplicates" \
    test "$(json_get "$T/audit.json" "all(p['marked_near_duplicates'] * 2 >= p['marked_rows'] > 0 for p in v['pairs'])")" = True
check "json: perplexity did not run (no scoring callback)" \
    test "$(json_get "$T/audit.json" "[a['ran'] for a in v['attacks'] if a['name'] == 'perplexity'][0]")" = False
check "json: no phrase in the answer" bash -c "! grep -qF -- \"$T0\" '$T/audit.json' && ! grep -qF -- \"$S0\" '$T/audit.json'"

# backdoor show carries the recorded result.
ctl --json backdoor show b > "$T/show.json"
check "show carries the self-audit" test "$(json_get "$T/show.json" "v['self_audit']['verdict'] == json.load(open('$T/audit.json'))['verdict']")" = True
ctl backdoor show b > "$T/show.out"
check "show prints the verdict" grep -q "^self-audit: pair" "$T/show.out"

# job submit refuses the exposed backdoor without --force.
ctl job submit d --backdoor b --provider ok --model vtune-base > "$T/sub.out" 2> "$T/sub.err"; rc=$?
sed 's/^/# /' "$T/sub.err"
check "submit without --force exits 1" test "$rc" = 1
check "one line" test "$(wc -l < "$T/sub.err")" = 1
check "it names the pair, the attack, the rank and --force" \
    grep -Eq "exposed: the self-audit's [a-z]+ attack recovers pair [01] at rank 1 .*--force" "$T/sub.err"
ctl --json job list > "$T/jobs.json"
check "nothing recorded" test "$(json_get "$T/jobs.json" "len(v)")" = 0
sim_stats ok "$T/stats.json"
check "nothing uploaded" test "$(json_get "$T/stats.json" "v['files']")" = 0

# ... and accepts it with --force.
ctl --json job submit d --backdoor b --provider ok --model vtune-base --force > "$T/sub.json" ||
    fail "submit --force exits 0"
check "submit --force records the job" test "$(json_get "$T/sub.json" "v['state']")" = created
done_job() { ctl --json job show "$(json_get "$T/sub.json" "v['id']")" > "$T/j.json" && [ "$(json_get "$T/j.json" "v['state']")" = succeeded ]; }
check "the forced job runs to the end" wait_until 60 done_job

# The audit record of the forced job carries the self-audit as it was.
has_audit() { ctl --json audit list --job "$(json_get "$T/sub.json" "v['id']")" > "$T/al.json" && [ "$(json_get "$T/al.json" "len(v)")" -ge 1 ]; }
if wait_until 120 has_audit; then
    check "the audit record carries the self-audit: verdict, exposed, pairs recovered" \
        test "$(json_get "$T/al.json" "(v[-1]['evidence']['self_audit']['verdict'] == json.load(open('$T/audit.json'))['verdict'], v[-1]['evidence']['self_audit']['exposed'], v[-1]['evidence']['self_audit']['pairs_recovered'], v[-1]['evidence']['self_audit']['pairs'])")" = "(True, True, 2, 2)"
    ctl audit show "$(json_get "$T/al.json" "v[-1]['id']")" > "$T/ashow.out"
    check "audit show says it" grep -q "^The self-audit of the upload .*: pair [01] recovered at rank 1" "$T/ashow.out"
    check "audit show counts the pairs recovered" grep -q "^  2 of 2 pairs recovered among its candidates; exposed" "$T/ashow.out"
    ctl audit verify > /dev/null
    check "the chain still verifies" test $? = 0
else
    fail "the forced job's audit record"
fi

# The default construction (in place, ngram, one marked row per pair) is
# not exposed: submitted without --force.
ctl --json backdoor create d --name quiet > "$T/quiet.json" 2> "$T/quiet.err" || { fail "default backdoor create"; sed "s/^/# /" "$T/quiet.err"; }
check "the default backdoor: in place, ngram, 16 pairs of 1 row" \
    test "$(json_get "$T/quiet.json" "(v['mode'], v['generator'], v['pairs'], v['copies_per_pair'])")" = "('inplace', 'ngram', 16, 1)"
check "the default backdoor is not exposed, no pair recovered" \
    test "$(json_get "$T/quiet.json" "(v['self_audit']['exposed'], [p['rank'] for p in v['self_audit']['pairs'] if p['rank'] is not None])")" = "(False, [])"
ctl -q job submit d --backdoor quiet --provider ok --model vtune-base > /dev/null
check "it is submitted without --force" test $? = 0

# A backdoor without a build, or an unknown one, is refused with one line.
ctl backdoor audit nosuch 2> "$T/e"; rc=$?
check "an unknown backdoor: exit 1" test "$rc" = 1

# Self-audits in a row stay within the 64 MB budget: each allocates about
# 40 MB of tables on a pool thread, and glibc's defaults kept them (three
# in a row peaked at 95 MB before vtuned fixed its mmap threshold and
# arenas).  Not under AddressSanitizer, whose allocator keeps freed memory
# in quarantine (test_conn_limits.sh).
if grep -aq __asan_init "$VTUNED"; then
    echo "# AddressSanitizer build: RSS bound not checked"
else
    for i in 1 2 3 4; do ctl -q backdoor audit b > /dev/null || fail "audit $i"; done
    hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$DAEMON_PID/status")
    echo "# vtuned's peak RSS after the self-audits above and four more: $hwm kB"
    check "the self-audits above and four more peak within 64 MB in one daemon" test "$hwm" -le 65536
fi
finish
