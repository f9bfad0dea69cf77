#!/bin/bash
# The signed audit chain (issue 15) against an attacker who can write the
# database but has not the key.  A second vtuned with its own key, run on a
# copy of the database, writes records whose hashes are all correct, as an
# attacker with our code would; the hash chain alone accepts them, the
# signatures do not.  Checked without --head: a forged record appended, a
# tail removed, a suffix rewritten, the signed head removed, and a NUL byte
# plus text hidden in a reason (refused at write time, shown escaped).
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v sqlite3 >/dev/null || skip "the sqlite3 tool is needed to tamper with the database"
echo sk-test > "$T/key"
start_sim honest --api-key sk-test --job-seconds 0.5 --behaviour honest || { fail "simulator"; finish; }
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 2000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b --generator wordlist > /dev/null ||
    { fail "dataset and backdoor"; finish; }
ctl --json job submit d --backdoor b --provider honest --model vtune-base > "$T/s.json" || { fail "submit"; finish; }
job=$(json_get "$T/s.json" "v['id']")
n_records() { ctl --json audit list > "$T/l.json" && json_get "$T/l.json" "len(v)"; }
has_records() { [ "$(n_records)" -ge "$1" ]; }
wait_until 120 has_records 1 || { fail "the first audit record"; finish; }
ctl -q verify "$job" --wait > /dev/null; ctl -q verify "$job" --wait > /dev/null
check "three records" test "$(n_records)" = 3
ctl --json audit verify > "$T/v0.json"; rc=$?
check "audit verify: intact and signed (exit 0)" test "$rc" = 0
check "every record signed, the head counts them" python3 -c "
import json,sys; v=json.load(open('$T/v0.json')); s=v['signatures']
print('#', v['message'])
sys.exit(0 if v['ok'] and s['ok'] and s['signed']==3 and s['signed_head']['records']==3 else 1)"
check "each new head is logged with its counter" grep -q "audit: signed head counter 3: 3 records" "$T/vtuned.log"
stop_daemon
cp "$T/state/vtuned.db" "$T/clean.db"

# An attacker's daemon: the same data, its own key, its own socket.
evil() { # evil CMD...: runs CMD... against a second vtuned on a copy of clean.db
    rm -rf "$T/evil"; mkdir -p "$T/evil/state" "$T/evil/run"
    cp "$T/clean.db" "$T/evil/state/vtuned.db"
    cp -r "$T/state/datasets" "$T/state/built" "$T/evil/state/" 2>/dev/null
    { echo "state_dir: $T/evil/state"; echo "socket: $T/evil/run/vtuned.sock"
      echo "providers:"; provider_yaml honest "$SIM_URL_honest"; } > "$T/evil/vtuned.yaml"
    "$VTUNED" -c "$T/evil/vtuned.yaml" >> "$T/evil.log" 2>&1 &
    local pid=$!
    PIDS="$PIDS $pid"
    wait_until 20 "$VTUNECTL" -q -s "$T/evil/run/vtuned.sock" status || { kill "$pid"; return 1; }
    "$@"
    kill -TERM "$pid"; wait "$pid"
}
ectl() { "$VTUNECTL" -s "$T/evil/run/vtuned.sock" "$@"; }
# install DB: the tampered database becomes ours; the daemon restarted on it
install_db() { cp "$1" "$T/state/vtuned.db"; rm -f "$T/state/vtuned.db-wal" "$T/state/vtuned.db-shm"; }
verify_json() { ctl --json audit verify > "$T/$1.json"; echo $? > "$T/$1.rc"; sed 's/^/# /' "$T/$1.json" | grep -E 'message|problem|bad_id' | head -6; }

# 1. A record appended with correct hashes, its signature removed and the old head put back.
evil sh -c "'$VTUNECTL' -q -s '$T/evil/run/vtuned.sock' verify $job --wait > /dev/null" || fail "the attacker's daemon"
sqlite3 "$T/evil/state/vtuned.db" "DROP TRIGGER audit_signatures_no_delete; DELETE FROM audit_signatures WHERE audit_id = 4;
  ATTACH '$T/clean.db' AS c; DELETE FROM audit_head; INSERT INTO audit_head SELECT * FROM c.audit_head;"
install_db "$T/evil/state/vtuned.db"
start_daemon || { fail "restart on the forged database"; finish; }
verify_json forged
check "forged append: the hash chain alone accepts it" python3 -c "
import json,sys; sys.exit(0 if json.load(open('$T/forged.json'))['records']==4 and json.load(open('$T/forged.json'))['verified_id']==4 else 1)"
check "audit verify fails (exit 1)" test "$(cat "$T/forged.rc")" = 1
check "naming record 4 as unsigned" python3 -c "
import json,sys; v=json.load(open('$T/forged.json')); sys.exit(0 if v['bad_id']==4 and v['problem']=='unsigned' else 1)"
check "audit attest refuses the forged record" sh -c "! '$VTUNECTL' -s '$T/run/vtuned.sock' -q audit attest 4 -o '$T/f.dsse' 2>/dev/null"
check "a record before it is still attested" ctl -q audit attest 3 -o "$T/ok.dsse"
stop_daemon

# 1b. The same record with the attacker's own signature and head.
evil sh -c "'$VTUNECTL' -q -s '$T/evil/run/vtuned.sock' verify $job --wait > /dev/null" || fail "the attacker's daemon"
install_db "$T/evil/state/vtuned.db"
start_daemon || { fail "restart"; finish; }
verify_json forged2
check "signed with another key: record 4 named, other_key" python3 -c "
import json,sys; v=json.load(open('$T/forged2.json')); sys.exit(0 if v['bad_id']==4 and v['problem']=='other_key' and not v['ok'] else 1)"
stop_daemon

# 2. The last record removed (with its signature): only the signed head knows.
cp "$T/clean.db" "$T/trunc.db"
sqlite3 "$T/trunc.db" "DROP TRIGGER audit_records_no_delete; DROP TRIGGER audit_signatures_no_delete;
  DELETE FROM audit_signatures WHERE audit_id = 3; DELETE FROM verification_runs WHERE audit_id = 3; DELETE FROM audit_records WHERE id = 3;"
install_db "$T/trunc.db"
start_daemon || { fail "restart on the truncated database"; finish; }
verify_json trunc
check "truncated: audit verify fails without --head" test "$(cat "$T/trunc.rc")" = 1
check "naming record 3 and the signed head's count" python3 -c "
import json,sys; v=json.load(open('$T/trunc.json')); sys.exit(0 if v['bad_id']==3 and v['problem']=='truncated' and 'counts 3 records, 2 remain' in v['message'] else 1)"
stop_daemon

# 3. A suffix rewritten from record 2 on by the attacker's daemon, signatures dropped, head restored.
cp "$T/clean.db" "$T/rw.db"
sqlite3 "$T/rw.db" "DROP TRIGGER audit_records_no_delete; DROP TRIGGER audit_signatures_no_delete;
  DELETE FROM audit_signatures WHERE audit_id >= 2; DELETE FROM verification_runs WHERE audit_id >= 2; DELETE FROM audit_records WHERE id >= 2; DELETE FROM audit_head;"
cp "$T/rw.db" "$T/clean.db.rw"; mv "$T/clean.db" "$T/clean.db.orig"; mv "$T/clean.db.rw" "$T/clean.db"
evil sh -c "'$VTUNECTL' -q -s '$T/evil/run/vtuned.sock' verify $job --wait > /dev/null && '$VTUNECTL' -q -s '$T/evil/run/vtuned.sock' verify $job --wait > /dev/null" || fail "the attacker's daemon rewrites"
mv "$T/clean.db.orig" "$T/clean.db"
sqlite3 "$T/evil/state/vtuned.db" "DROP TRIGGER audit_signatures_no_delete; DELETE FROM audit_signatures WHERE audit_id >= 2;
  ATTACH '$T/clean.db' AS c; DELETE FROM audit_head; INSERT INTO audit_head SELECT * FROM c.audit_head;"
install_db "$T/evil/state/vtuned.db"
start_daemon || { fail "restart on the rewritten database"; finish; }
verify_json rw
check "rewritten suffix: 3 records whose hashes all agree" python3 -c "
import json,sys; v=json.load(open('$T/rw.json')); sys.exit(0 if v['records']==3 and v['verified_id']==3 else 1)"
check "audit verify fails, naming record 2" python3 -c "
import json,sys; v=json.load(open('$T/rw.json')); sys.exit(0 if not v['ok'] and v['bad_id']==2 else 1)"
stop_daemon

# 4. The signed head removed.
cp "$T/clean.db" "$T/nohead.db"
sqlite3 "$T/nohead.db" "DELETE FROM audit_head;"
install_db "$T/nohead.db"
start_daemon || { fail "restart"; finish; }
verify_json nohead
check "no signed head: reported, not re-signed at start" python3 -c "
import json,sys; v=json.load(open('$T/nohead.json')); sys.exit(0 if not v['ok'] and v['problem']=='no_head' else 1)"
stop_daemon

# 5. A NUL byte and text hidden in a reason.
cp "$T/clean.db" "$T/nul.db"
sqlite3 "$T/nul.db" "DROP TRIGGER audit_records_no_update; UPDATE audit_records SET reason = reason || char(0) || ' (and more)' WHERE id = 2;"
install_db "$T/nul.db"
start_daemon || { fail "restart"; finish; }
verify_json nul
check "a hidden NUL: audit verify fails at record 2" python3 -c "
import json,sys; v=json.load(open('$T/nul.json')); sys.exit(0 if not v['ok'] and v['bad_id']==2 and v['problem']=='content' else 1)"
ctl audit show 2 > "$T/show2.txt"
check "audit show prints it escaped" grep -q -F '\x00 (and more)' "$T/show2.txt"
ctl audit list > "$T/list.txt"
check "no raw control byte reaches the terminal" sh -c "! grep -q -P '[\x00-\x08\x0b-\x1f]' '$T/list.txt' '$T/show2.txt'"
stop_daemon

# 6. A trail written before signing began (no signature, no head) is signed once at start.
cp "$T/clean.db" "$T/old.db"
sqlite3 "$T/old.db" "DROP TRIGGER audit_signatures_no_delete; DELETE FROM audit_signatures; DELETE FROM audit_head;"
install_db "$T/old.db"
start_daemon || { fail "restart"; finish; }
ctl audit verify > /dev/null
check "an older intact trail is adopted: signed, and verify passes" test $? = 0
check "and the adoption is logged" grep -q "signed the 3 records written before signing began" "$T/vtuned.log"
stop_daemon
finish
