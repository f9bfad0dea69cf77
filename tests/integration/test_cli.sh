#!/bin/bash
# vtunectl's command line without a daemon: the command table's help (per
# subcommand, not per group), usage errors (exit 2, one line naming the
# problem and the fix, "did you mean"; with --json one error object on
# stdout), and bash completion, both
# 'vtunectl __complete' and the shipped ctl/vtunectl.bash-completion run in
# bash as the shell would.
. "$(dirname "$0")/lib.sh"

# --- help ------------------------------------------------------------------------------------
"$VTUNECTL" --help > "$T/h"; rc=$?
check "--help exits 0" test "$rc" = 0
for w in "dataset add" "backdoor create" "job register" "verify J" "audit export" "schedule rm"; do
    check "--help lists '$w'" grep -q "^  $w" "$T/h"
done
check "--help shows -q in the synopsis" grep -q '^usage: vtunectl \[-s SOCKET\] \[--json\] \[-q\]' "$T/h"
"$VTUNECTL" dataset add --help > "$T/da"; rc=$?
check "dataset add --help exits 0" test "$rc" = 0
check "dataset add --help is about dataset add" grep -q -- "--format auto|chat|prompt|instruction" "$T/da"
check "and not about the rest of the group" sh -c "! grep -q 'dataset export\|dataset rm' '$T/da'"
"$VTUNECTL" dataset --help > "$T/dg"; rc=$?
check "dataset --help lists the group" test "$rc" = 0 -a "$(grep -c '\[-q\] dataset ' "$T/dg")" = 5
"$VTUNECTL" help job resolve | grep -q -- "--as submitted|absent"
check "'help job resolve' is job resolve's help" test $? = 0
"$VTUNECTL" job submit d --backdoor b -h | grep -q -- "--param KEY=VALUE"
check "-h after arguments still gives the command's help" test $? = 0

# --- usage errors: exit 2, one line on stderr ----------------------------------------------------
usage() { # DESCRIPTION REGEX ARGS...
    local d=$1 re=$2; shift 2
    "$VTUNECTL" "$@" > "$T/out" 2> "$T/err"; local rc=$?
    check "$d: exit 2" test "$rc" = 2
    check "$d: one line" test "$(wc -l < "$T/err")" = 1
    check "$d: says '$re'" grep -q -- "$re" "$T/err"
    check "$d: nothing on stdout" test ! -s "$T/out"
}
usage "unknown command" "unknown command 'datset'; did you mean 'dataset'?" datset list
usage "unknown subcommand" "did you mean 'backdoor create'?" backdoor craete d
usage "unknown flag" "unknown flag '--nmae'; did you mean '--name'?" dataset add f --nmae x
usage "abbreviated flag" "did you mean '--reveal'?" backdoor show b --rev
usage "unknown global option" "unknown option '--jsno'; did you mean '--json'?" --jsno status
usage "missing argument" "dataset show: D is required" dataset show
usage "missing required flag" "job submit: --provider P is required" job submit d --backdoor b --model m
usage "missing value" "--every needs a value (DURATION)" schedule add 1 --every
usage "bad choice" "--as must be one of submitted|absent, not 'gone'" job resolve 1 --as gone
usage "not a number" "--trials: 'many' is not a number" verify 1 --trials many
usage "extra argument" "dataset list takes no argument" dataset list extra
usage "no subcommand" "a subcommand is required: add, list, show, rm, export" dataset
usage "the fix is named" "(see 'vtunectl job submit --help')" job submit d
"$VTUNECTL" > /dev/null 2>&1; check "no command at all is a usage error" test $? = 2
"$VTUNECTL" --version | grep -q '^vtunectl '; check "--version" test $? = 0

# --- the same errors under --json: one object on stdout, nothing on stderr (test_json.sh has more)
json_err() { # DESCRIPTION STATUS CODE ARGS... (--json last: it counts wherever it is)
    local d=$1 st=$2 code=$3; shift 3
    "$VTUNECTL" "$@" --json > "$T/out" 2> "$T/err"; local rc=$?
    check "$d under --json: exit $st" test "$rc" = "$st"
    check "$d under --json: nothing on stderr" test ! -s "$T/err"
    check "$d under --json: {\"error\":{code $code, message}} on stdout" python3 -c "
import json,sys
v=json.load(open('$T/out'))
sys.exit(0 if list(v)==['error'] and v['error']['code']==$code and v['error']['message'] else 1)"
}
json_err "unknown command" 2 -32100 datset list
json_err "missing value" 2 -32100 schedule add 1 --every
json_err "no command" 2 -32100
json_err "an unreachable daemon" 1 -32101 -s "$T/none.sock" status

# --- completion: vtunectl __complete -----------------------------------------------------------
comp() { "$VTUNECTL" __complete "$@" | tr '\n' ' ' | sed 's/ $//'; }
check "groups" test "$(comp "")" = "status backup dataset backdoor job verify audit attest key schedule help"
check "a group's prefix" test "$(comp "sch")" = "schedule"
check "subcommands" test "$(comp dataset "")" = "add list show rm export"
check "subcommands after a global option" test "$(comp -s /x/y.sock --json job "re")" = "register resolve"
check "a command's flags" test "$(comp backdoor show B --)" = "--reveal --socket --json --quiet --progress --version --help"
check "a flag prefix" test "$(comp job submit d --b)" = "--backdoor"
check "a flag's choices" test "$(comp dataset add f --format "")" = "auto chat prompt instruction"
check "a choice's prefix" test "$(comp job resolve 1 --as s)" = "submitted"
check "a free value: nothing (the shell completes file names)" test -z "$(comp dataset add "")"
check "a value is not taken for a word" test "$(comp job submit d --name list --p)" = "--provider --param --progress"

# --- completion: the shipped script, in bash -----------------------------------------------------
script="$top_srcdir/ctl/vtunectl.bash-completion"
check "the completion script exists" test -f "$script"
run_script() { # WORDS... (the last is the word being completed)
    bash -c '
        . "$1"; shift
        complete -p vtunectl >/dev/null || exit 3
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        _vtunectl
        printf "%s " "${COMPREPLY[@]}"' _ "$script" "$VTUNECTL" "$@" | sed 's/ $//'
}
check "bash: registered for vtunectl, completes a group" test "$(run_script "backd")" = "backdoor"
check "bash: a shared prefix offers both" test "$(run_script "ba")" = "backup backdoor"
check "bash: completes a subcommand" test "$(run_script audit "ex")" = "export"
check "bash: completes a choice" test "$(run_script backdoor create d --generator "")" = "ngram wordlist llm"

finish
