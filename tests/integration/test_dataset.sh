#!/bin/bash
# dataset add | list | show | rm through vtunectl against the real daemon:
# each format, bad lines (line and field named, nothing stored), empty file,
# name rules, content sharing, removal.
. "$(dirname "$0")/lib.sh"
write_config
start_daemon || { fail "daemon starts"; finish; }
D="$T/data"; mkdir -p "$D"

printf '%s\n' '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}' \
              '{"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}' > "$D/chat.jsonl"
printf '%s\n' '{"prompt":"Say hi","completion":"hi"}' '{"prompt":"Say bye","completion":"bye"}' '{"prompt":"x","completion":"y"}' > "$D/pc.jsonl"
printf '%s\n' '{"instruction":"Add","input":"1 and 2","output":"3"}' > "$D/instr.jsonl"

ctl --json dataset add "$D/chat.jsonl" > "$T/a.json"
check "chat dataset imported with 2 examples" test "$(json_get "$T/a.json" "v['examples']")" = 2
check "format detected as chat" test "$(json_get "$T/a.json" "v['format']")" = chat
check "sha256 is the file's" test "$(json_get "$T/a.json" "v['sha256']")" = "$(sha256sum < "$D/chat.jsonl" | cut -d' ' -f1)"
check "name defaults to the file name" test "$(json_get "$T/a.json" "v['name']")" = chat
check "the stored copy is byte-identical" cmp -s "$D/chat.jsonl" "$(json_get "$T/a.json" "v['path']")"
check "the stored copy is 0600" test "$(stat -c %a "$(json_get "$T/a.json" "v['path']")")" = 600
ctl dataset add "$D/pc.jsonl" --name pc-set > "$T/b.txt"
check "prompt/completion import reports 3 examples" grep -q "3 examples (prompt format)" "$T/b.txt"
ctl --json dataset add "$D/instr.jsonl" --format instruction > "$T/c.json"
check "instruction import with explicit format" test "$(json_get "$T/c.json" "v['format']")" = instruction
ctl dataset add "$D/pc.jsonl" --format chat > /dev/null 2>"$T/e"; rc=$?
check "a wrong explicit format fails (exit 1)" test "$rc" = 1
check "naming line 1" grep -q "pc.jsonl:1: looks like prompt format" "$T/e"

# Bad lines: the first bad line is named with its field; nothing stored.
before=$(ls "$T/state/datasets" | wc -l)
{ for i in $(seq 1 99); do echo '{"prompt":"p'$i'","completion":"c"}'; done
  echo '{"prompt":"p","completion":42}'
  echo '{"prompt":"p","completion":"c"}'; } > "$D/bad.jsonl"
ctl dataset add "$D/bad.jsonl" 2>"$T/e"; rc=$?
check "bad line: exit 1" test "$rc" = 1
check "bad line: names line 100 and the field" grep -q "bad.jsonl:100: completion: expected a string, got a number" "$T/e"
printf '%s\n' '{"messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]}' > "$D/role.jsonl"
ctl dataset add "$D/role.jsonl" 2>"$T/e"
check "bad role: names messages[1].role" grep -q "role.jsonl:1: messages\[1\].role" "$T/e"
printf '{"prompt":"a","completion":"b"}\n\n{"prompt":"c","completion":"d"}\n' > "$D/blank.jsonl"
ctl dataset add "$D/blank.jsonl" 2>"$T/e"
check "blank line 2 is named" grep -q "blank.jsonl:2: empty line" "$T/e"
printf '{"prompt":"a","completion":"b"}\n{"prompt":"a",\n' > "$D/trunc.jsonl"
ctl dataset add "$D/trunc.jsonl" 2>"$T/e"
check "truncated JSON on line 2 is named" grep -q "trunc.jsonl:2: not valid JSON" "$T/e"
: > "$D/empty.jsonl"
ctl dataset add "$D/empty.jsonl" 2>"$T/e"; rc=$?
check "an empty file is refused (exit 1)" test "$rc" = 1
check "as an empty dataset" grep -q "empty.jsonl: empty dataset" "$T/e"
ctl dataset add "$D/nonexistent.jsonl" 2>"$T/e"; rc=$?
check "a missing file is one clear line, exit 1" test "$rc" = 1 -a "$(wc -l < "$T/e")" = 1
ctl --json dataset list > "$T/list.json"
check "after the failures exactly 3 datasets exist" test "$(json_get "$T/list.json" "len(v)")" = 3
check "and no stored copy was added" test "$(ls "$T/state/datasets" | wc -l)" = "$before"
check "and no temporary file remains" test "$(ls "$T/state/tmp" | wc -l)" = 0

# Names.
ctl dataset add "$D/chat.jsonl" 2>"$T/e"; rc=$?
check "a taken name is refused (exit 1)" test "$rc" = 1
check "saying it exists and how to choose another" grep -q "already exists.*--name" "$T/e"
ctl dataset add "$D/chat.jsonl" --name 123 2>"$T/e"
check "an all-digit name is refused" grep -q "must not be all digits" "$T/e"
ctl --json dataset add "$D/chat.jsonl" --name chat-copy > "$T/d.json"
check "same content under a second name shares the stored copy" \
    test "$(json_get "$T/d.json" "v['path']")" = "$(json_get "$T/a.json" "v['path']")"

# list, show, rm.
ctl dataset list > "$T/list.txt"
check "the table has a header and 4 rows" test "$(wc -l < "$T/list.txt")" = 5
check "the table is aligned (header starts with ID and NAME)" grep -q "^ID  *NAME  *FORMAT" "$T/list.txt"
ctl --json dataset show pc-set > "$T/s.json"
check "show by name" test "$(json_get "$T/s.json" "v['examples']")" = 3
id=$(json_get "$T/s.json" "v['id']")
ctl --json dataset show "$id" > "$T/s2.json"
check "show by id" test "$(json_get "$T/s2.json" "v['name']")" = pc-set
ctl dataset show nope 2>"$T/e"; rc=$?
check "show of an unknown dataset exits 1 with a hint" test "$rc" = 1 && grep -q "dataset list" "$T/e"
shared=$(json_get "$T/a.json" "v['path']")
ctl dataset rm chat > /dev/null
check "removing one of two names keeps the shared copy" test -f "$shared"
ctl dataset rm chat-copy > /dev/null
check "removing the last name removes the copy" test ! -e "$shared"
ctl dataset add 2>/dev/null; check "dataset add without FILE is a usage error (2)" test $? = 2
ctl dataset --help | grep -q -- "--format"; check "dataset --help documents --format" test $? = 0

# Imports survive a restart.
stop_daemon
start_daemon || fail "restart"
ctl --json dataset list > "$T/list2.json"
check "datasets persist across a restart" test "$(json_get "$T/list2.json" "len(v)")" = 2
stop_daemon
finish
