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

# Editors' habits: a UTF-8 byte order mark at the start and one blank line
# at the end are accepted and left out of the stored copy (plain JSON
# Lines for every later pass and the upload); a blank line anywhere else,
# or two at the end, is refused with its line number.
P1='{"prompt":"bom1","completion":"x"}'; P2='{"prompt":"bom2","completion":"y"}'
printf '%s\n%s\n' "$P1" "$P2" > "$D/plain-bom.jsonl"
printf '\xef\xbb\xbf%s\n%s\n' "$P1" "$P2" > "$D/bom.jsonl"
ctl --json dataset add "$D/bom.jsonl" > "$T/bom.json" 2>"$T/e"; rc=$?
check "a file starting with a UTF-8 BOM is accepted" test "$rc" = 0
check "with its 2 examples" test "$(json_get "$T/bom.json" "v['examples']")" = 2
check "the stored copy has no BOM" cmp -s "$D/plain-bom.jsonl" "$(json_get "$T/bom.json" "v['path']")"
check "and the sha256 is the stored copy's" \
    test "$(json_get "$T/bom.json" "v['sha256']")" = "$(sha256sum < "$D/plain-bom.jsonl" | cut -d' ' -f1)"
P3='{"prompt":"end1","completion":"x"}'; P4='{"prompt":"end2","completion":"y"}'
printf '%s\n%s\n' "$P3" "$P4" > "$D/plain-end.jsonl"
printf '%s\n%s\n\n' "$P3" "$P4" > "$D/trail.jsonl"
ctl --json dataset add "$D/trail.jsonl" > "$T/trail.json" 2>"$T/e"; rc=$?
check "a file ending in one blank line is accepted" test "$rc" = 0
check "with 2 examples, not 3" test "$(json_get "$T/trail.json" "v['examples']")" = 2
check "the stored copy ends at the last example" cmp -s "$D/plain-end.jsonl" "$(json_get "$T/trail.json" "v['path']")"
check "and the sha256 is the stored copy's" \
    test "$(json_get "$T/trail.json" "v['sha256']")" = "$(sha256sum < "$D/plain-end.jsonl" | cut -d' ' -f1)"
P5='{"prompt":"crlf1","completion":"x"}'
printf '\xef\xbb\xbf%s\r\n \r\n' "$P5" > "$D/both.jsonl"
printf '%s\r\n' "$P5" > "$D/plain-both.jsonl"
ctl --json dataset add "$D/both.jsonl" > "$T/both.json" 2>"$T/e"; rc=$?
check "BOM, CRLF and a final blank line of spaces together are accepted" test "$rc" = 0
check "the stored copy is the one example, CRLF kept" cmp -s "$D/plain-both.jsonl" "$(json_get "$T/both.json" "v['path']")"
printf '%s\n%s\n\n\n' "$P3" "$P2" > "$D/two-trail.jsonl"
ctl dataset add "$D/two-trail.jsonl" 2>"$T/e"; rc=$?
check "two blank lines at the end are refused (exit 1)" test "$rc" = 1
check "naming the first of them, line 3" grep -q "two-trail.jsonl:3: empty line" "$T/e"
printf '\xef\xbb\xbf%s\n\n%s\n' "$P1" "$P4" > "$D/bom-mid.jsonl"
ctl dataset add "$D/bom-mid.jsonl" 2>"$T/e"
check "a blank line in the middle of a BOM file is named (line 2)" grep -q "bom-mid.jsonl:2: empty line" "$T/e"
printf '\xef\xbb\xbf\n' > "$D/bom-only.jsonl"
ctl dataset add "$D/bom-only.jsonl" 2>"$T/e"
check "a BOM and a blank line alone are an empty dataset" grep -q "bom-only.jsonl: empty dataset" "$T/e"
# The same where the final blank line or the BOM meets the import's 1 MiB
# read blocks: the blank line's bytes start just before, at, or after the
# boundary, and are cut exactly.
for k in -2 -1 0 1; do
    for bom in 0 1; do
        python3 - "$D/edge.jsonl" "$D/edge-plain.jsonl" "$k" "$bom" <<'PY'
import sys
out, plain, k, bom = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
target = (1 << 20) + k - (3 if bom else 0)   # bytes of the examples
lines, size, i = [], 0, 0
while size < target:
    pad = min(1000, target - size - len('{"prompt":"","completion":"c"}\n') - 6)
    if pad < 0:
        pad = 0
    l = '{"prompt":"%s","completion":"c"}\n' % (("%06d" % i) + "p" * pad)
    if size + len(l) > target:  # last line: make it fit exactly
        l = '{"prompt":"%s","completion":"c"}\n' % ("q" * (target - size - len('{"prompt":"","completion":"c"}\n')))
    lines.append(l); size += len(l); i += 1
body = "".join(lines).encode()
assert len(body) == target, (len(body), target)
open(plain, "wb").write(body)
open(out, "wb").write((b"\xef\xbb\xbf" if bom else b"") + body + b"\n")
PY
        n=$(wc -l < "$D/edge-plain.jsonl")
        ctl --json dataset add "$D/edge.jsonl" --name "edge$k$bom" > "$T/edge.json" 2>"$T/e"
        if [ "$(json_get "$T/edge.json" "v['examples']" 2>/dev/null)" = "$n" ] &&
           cmp -s "$D/edge-plain.jsonl" "$(json_get "$T/edge.json" "v['path']")"; then
            ok "final blank line at block offset $k (BOM $bom): $n examples, copy cut exactly"
        else
            fail "final blank line at block offset $k (BOM $bom): $(cat "$T/e")"
        fi
        ctl dataset rm "edge$k$bom" > /dev/null 2>&1
    done
done
for n in bom trail both; do ctl dataset rm "$n" > /dev/null; done

# The import reads the file as it was when it began: a file with more bytes
# than its size said (here /proc/self/status, size 0, of vtunectl itself) is
# refused, and nothing is stored.
ctl dataset add /proc/self/status --name grows > /dev/null 2> "$T/e"; rc=$?
check "a file longer than its size at the start is refused (exit 1)" test "$rc" = 1
check "saying it grew while it was read" grep -q "grew while it was read (it had 0 bytes)" "$T/e"
ctl --json dataset list > "$T/list-g.json"
check "and nothing was stored" test "$(json_get "$T/list-g.json" "[d['name'] for d in v if d['name'] == 'grows']")" = "[]"

# Imports survive a restart.
stop_daemon
start_daemon || fail "restart"
ctl --json dataset list > "$T/list2.json"
check "datasets persist across a restart" test "$(json_get "$T/list2.json" "len(v)")" = 2
stop_daemon
finish
