#!/bin/bash
# The whole job lifecycle against each provider dialect vtune-sim speaks
# (DIALECTS, default "openai azure mistral together fireworks"; one learning
# model behind all): submit and poll to success, a create whose answer is
# lost, or refused with a 500, reconciled without a second job (fireworks: by
# a GET of the job id we chose, a 404 meaning never created; the others by a
# listing), a daemon killed with SIGKILL in the middle
# and restarted, verify on the returned model (the coverage test with the
# statistic the kind allows), and the upload deleted at the end.  Each
# dialect is driven by its own kind, so every adapter runs end to end, not
# only against fixtures.  Last, OpenAI's fine-tuning wind-down: a create
# refused as closed ends the job failed with one line naming the date.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v curl >/dev/null || skip "curl is needed to read the simulator's counters"
DIALECTS=${DIALECTS:-openai azure mistral together fireworks}
echo sk-test > "$T/key"

# yaml DIALECT NAME: the providers: entry of a kind for that dialect.
yaml() {
    local port; eval "port=\$SIM_PORT_$2"
    case $1 in
    azure) printf '  %s:\n    kind: azure\n    base_url: http://127.0.0.1:%s/openai\n    api_version: 2024-10-21\n' "$2" "$port" ;;
    fireworks) printf '  %s:\n    kind: fireworks\n    base_url: http://127.0.0.1:%s\n    account: acct-test\n' "$2" "$port" ;;
    *) printf '  %s:\n    kind: %s\n    base_url: http://127.0.0.1:%s/v1\n' "$2" "$1" "$port" ;;
    esac
    # score_template: the simulator's chat layout, for the coverage test
    printf '    api_key_file: %s\n    poll_interval: 200ms\n    score_template: "%s"\n' "$T/key" \
        "$SIM_SCORE_TEMPLATE"
}
# created NAME SID: jobs the simulator NAME created for submission SID (by suffix).
created() {
    local port; eval "port=\$SIM_PORT_$1"
    curl -s -H "Authorization: Bearer sk-test" -H "api-key: sk-test" \
        "http://127.0.0.1:$port/v1/_sim/stats?api-version=x" > "$T/stats.json"
    python3 -c "import json; print(json.load(open('$T/stats.json'))['jobs_created_by_metadata'].get('suffix=vt-$2', 0))"
}

# create_path DIALECT: the path of that dialect's job create (the lost one).
create_path() {
    case $1 in
    azure) echo /openai/fine_tuning/jobs ;;
    together) echo /v1/fine-tunes ;;
    fireworks) echo /v1/accounts/acct-test/supervisedFineTuningJobs ;;
    *) echo /v1/fine_tuning/jobs ;;
    esac
}

# lost_faults DIALECT: the create's answer is lost; on fireworks the first
# dataset record's answer too, so the upload's prepare step meets its own
# record (409) on the retry and must take it as made.
lost_faults() {
    local f="drop-after=#1@POST:$(create_path "$1")"
    [ "$1" = fireworks ] && f="$f,drop-after=#1@POST:/v1/accounts/acct-test/datasets"
    echo "$f"
}
# responses NAME CODE: how many answers with that status the simulator NAME sent.
responses() {
    local port; eval "port=\$SIM_PORT_$1"
    curl -s -H "Authorization: Bearer sk-test" "http://127.0.0.1:$port/v1/_sim/stats" > "$T/stats.json"
    python3 -c "import json; print(json.load(open('$T/stats.json'))['responses'].get('$2', 0))"
}

entries=""
for d in $DIALECTS; do
    start_sim "$d" --dialect "$d" --api-key sk-test --job-seconds 1 --seed 5 \
        --faults "500=#1@POST:$(create_path "$d")" ||
        { fail "simulator $d starts"; finish; }
    start_sim "${d}_lost" --dialect "$d" --api-key sk-test --job-seconds 1 --seed 6 \
        --faults "$(lost_faults "$d")" || { fail "simulator ${d}_lost starts"; finish; }
    entries="$entries$(yaml "$d" "$d")
$(yaml "$d" "${d}_lost")
"
done
start_sim closed --api-key sk-test --fine-tuning-closed || { fail "simulator closed starts"; finish; }
write_config "providers:" "$entries$(yaml openai closed)"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 300
# The default construction (in place, ngram phrases at order 3): the
# honest simulator, which memorises the rows it is fine-tuned on, is
# verified on it even on this small templated dataset, and the self-audit
# lets it through, so no submit needs --force.
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }

# 0. Each kind checks --param against its own list before anything is
# recorded: a typo is a usage error naming the key it meant.
for d in $DIALECTS; do
    case $d in mistral | fireworks) typo=epochz want=epochs ;; *) typo=n_epoch want=n_epochs ;; esac
    ctl job submit d --backdoor b --provider "$d" --model vtune-base \
        --param "$typo=2" 2> "$T/param.err"; rc=$?
    check "$d: --param $typo exits 2 and suggests $want" \
        sh -c "test $rc = 2 && grep -q \"did you mean '$want'\" '$T/param.err'"
done

n=0
for d in $DIALECTS; do
    # 1. submit; the first create is refused with a 500 before anything is
    # made (an unknown outcome to the client): reconciled as absent, created
    # once, polled to success.
    timeout 90 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider "$d" \
        --model vtune-base --watch > /dev/null; rc=$?
    n=$((n + 1)); first=$n; ctl --json job show "$n" > "$T/$d.json"
    sid=$(json_get "$T/$d.json" "v['submission_id']")
    check "$d: the job succeeded" test "$rc" = 0 -a "$(json_get "$T/$d.json" "v['state']")" = succeeded
    check "$d: its model carries our suffix" grep -q "vt-$sid" <(json_get "$T/$d.json" "v['fine_tuned_model']")
    check "$d: exactly one job created" test "$(created "$d" "$sid")" = 1
    check "$d: the 500 was reconciled as 'never created' before creating again" \
        grep -q "job $first: reconciled: $d has no job for submission $sid; creating" "$T/vtuned.log"

    # 2. the create's answer is lost: reconciled, no second job.
    timeout 90 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider "${d}_lost" \
        --model vtune-base --watch > /dev/null; rc=$?
    n=$((n + 1)); ctl --json job show "$n" > "$T/${d}_lost.json"
    sid=$(json_get "$T/${d}_lost.json" "v['submission_id']")
    check "$d: a lost create is reconciled and succeeds" test "$rc" = 0
    check "$d: the reconcile is in the events" grep -q "reconciled: the provider already has job" "$T/${d}_lost.json"
    check "$d: still exactly one job for it" test "$(created "${d}_lost" "$sid")" = 1
    [ "$d" = fireworks ] && check "$d: the dataset record's lost answer met its own record (409) and went on" \
        test "$(responses "${d}_lost" 409)" -ge 1

    # 3. a crash in the middle: SIGKILL once the job is at the provider, restart.
    ctl -q job submit d --backdoor b --provider "$d" --model vtune-base > /dev/null
    n=$((n + 1)); id=$n
    at_provider() { ctl --json job show "$id" > "$T/c.json" &&
        grep -qE '"state": *"(submitting|submitted|running)"' "$T/c.json"; }
    check "$d: the job reaches the provider" wait_until 30 at_provider
    kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
    start_daemon || { fail "$d: restart after SIGKILL"; finish; }
    timeout 90 "$VTUNECTL" -s "$T/run/vtuned.sock" job watch "$id" > /dev/null; rc=$?
    ctl --json job show "$id" > "$T/c.json"
    check "$d: after the crash the job succeeds" test "$rc" = 0
    check "$d: and was created once" test "$(created "$d" "$(json_get "$T/c.json" "v['submission_id']")")" = 1

    # 4. verify the returned model.
    ctl --json verify "$first" --wait > "$T/v_$d.json" 2> "$T/v_$d.err"; rc=$?
    verdict=$(json_get "$T/v_$d.json" "v['verdict']")
    check "$d: verify finds the backdoor (verified)" test "$rc" = 0 -a "$verdict" = verified
    # check records a failure and goes on, so the clues are printed apart.
    if [ "$rc" != 0 ] || [ "$verdict" != verified ]; then
        sed 's/^/# /' "$T/v_$d.err"
        json_get "$T/v_$d.json" "'verdict %s: %s' % (v.get('verdict'), v.get('reason'))" | sed 's/^/# /'
    fi
    # the coverage test's statistic follows what the kind can do (README
    # "Providers"): text scoring (echo) gives mink-diff, none greedy-diff.
    case $d in mistral) want_cov=greedy-diff ;; *) want_cov=mink-diff ;; esac
    check "$d: the coverage test uses $want_cov" \
        test "$(json_get "$T/v_$d.json" "v['coverage_method']")" = "$want_cov"
    # 5. the upload (fireworks: the dataset) is deleted at the provider.
    check "$d: the first job's upload is deleted at the provider" \
        wait_until 20 grep -q "job $first: deleted the uploaded training file" "$T/vtuned.log"
done

# OpenAI's wind-down: refused as closed, the job fails with the reason and the date.
timeout 60 "$VTUNECTL" -s "$T/run/vtuned.sock" job submit d --backdoor b --provider closed \
    --model vtune-base --watch > /dev/null 2>&1; rc=$?
n=$((n + 1)); ctl --json job show "$n" > "$T/closed.json"
check "closed: the job fails (watch exit 1)" test "$rc" = 1 -a "$(json_get "$T/closed.json" "v['state']")" = failed
check "closed: the error names the wind-down and 2027-01-06" \
    grep -q "fine-tuning is closed for this organisation.*2027-01-06" <(json_get "$T/closed.json" "v['error']")
check "closed: the error is one line" test "$(json_get "$T/closed.json" "v['error']" | wc -l)" = 1
check "the API key never reaches the log" sh -c "! grep -q sk-test '$T/vtuned.log'"
stop_daemon
check "clean stop" test "$STOP_RC" = 0
finish
