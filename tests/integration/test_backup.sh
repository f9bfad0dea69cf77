#!/bin/bash
# vtunectl backup (issue 13 item 9): a consistent copy of the database while
# the daemon runs and a job is active; the copy opens, passes PRAGMA
# integrity_check and holds the rows; it is 0600; an existing FILE is
# refused (and left alone); the restore of vtuned(8) brings the state back.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
echo sk-test > "$T/key"
start_sim slow --api-key sk-test --job-seconds 120 || { fail "simulator starts"; finish; }
write_config "providers:" "$(provider_yaml slow "$SIM_URL_slow")"
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 300
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b > /dev/null ||
    { fail "dataset and backdoor"; finish; }
ctl -q job submit d --backdoor b --provider slow --model vtune-base --name j > /dev/null ||
    { fail "job submitted"; finish; }
job_running() { ctl --json job show j > "$T/j.json" && [ "$(json_get "$T/j.json" "v['state']")" = running ]; }
check "a job is running at the provider" wait_until 60 job_running

# A backup while the job is active (the daemon polls it meanwhile).
ctl --json status > "$T/status.json"
ctl --json backup -o "$T/b1.db" > "$T/b1.json"; rc=$?
check "backup -o FILE exits 0" test "$rc" = 0
check "FILE exists, mode 0600" test "$(stat -c %a "$T/b1.db" 2>/dev/null)" = 600
check "the answer names FILE and its sha256" test "$(json_get "$T/b1.json" "v['output']")" = "$T/b1.db" -a \
    "$(json_get "$T/b1.json" "v['sha256']")" = "$(sha256sum < "$T/b1.db" | cut -d' ' -f1)"
check "no -wal or -shm beside it: one self-contained file" test ! -e "$T/b1.db-wal" -a ! -e "$T/b1.db-shm"
python3 - "$T/b1.db" "$T/status.json" > "$T/dbcheck" 2>&1 <<'PY'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
st = json.load(open(sys.argv[2]))["counts"]
print("integrity", db.execute("PRAGMA integrity_check").fetchone()[0])
print("journal", db.execute("PRAGMA journal_mode").fetchone()[0])
for table, key in (("datasets", "datasets"), ("backdoors", "backdoors"), ("jobs", "jobs")):
    print(table, db.execute("SELECT count(*) FROM %s" % table).fetchone()[0] == st[key] and st[key] > 0)
print("secrets", db.execute("SELECT count(*) FROM backdoor_pairs WHERE length(trigger) > 0").fetchone()[0] > 0)
print("job", db.execute("SELECT name, state FROM jobs").fetchone())
PY
sed 's/^/# /' "$T/dbcheck"
check "the copy passes PRAGMA integrity_check" grep -qx "integrity ok" "$T/dbcheck"
check "it is in rollback-journal mode" grep -qx "journal delete" "$T/dbcheck"
check "it holds the datasets, backdoors and jobs" test "$(grep -c "^\(datasets\|backdoors\|jobs\) True$" "$T/dbcheck")" = 3
check "and the secret pairs" grep -qx "secrets True" "$T/dbcheck"
check "the daemon's own copy was removed after the copy" test -z "$(ls "$T/state/backups")"

# Never overwrite.
sum=$(sha256sum < "$T/b1.db")
ctl backup -o "$T/b1.db" > /dev/null 2>"$T/e"; rc=$?
check "backup -o an existing file exits 1" test "$rc" = 1
check "saying it exists and is never overwritten" grep -q "b1.db already exists; backup never overwrites" "$T/e"
check "the existing file is untouched" test "$(sha256sum < "$T/b1.db")" = "$sum"
check "and the daemon made no backup for it" test -z "$(ls "$T/state/backups")"
ln -s "$T/elsewhere" "$T/link.db"
ctl backup -o "$T/link.db" > /dev/null 2>&1; rc=$?
check "a symlink as FILE is refused too" test "$rc" = 1 -a ! -e "$T/elsewhere"

# Without -o the backup stays in the state directory.
ctl --json backup > "$T/b2.json"
p=$(json_get "$T/b2.json" "v['path']")
check "without -o the path is under state_dir/backups" test "${p#"$T/state/backups/vtuned-"}" != "$p"
check "that file is 0600 in a 0700 directory" test "$(stat -c %a "$p")" = 600 -a "$(stat -c %a "$T/state/backups")" = 700
ctl --json backup > "$T/b3.json"
check "a second backup in the same second gets its own name" \
    test "$(json_get "$T/b3.json" "v['path']")" != "$p" -a -f "$(json_get "$T/b3.json" "v['path']")"

# Restore (vtuned(8)): stop, copy over vtuned.db, remove -wal/-shm, start.
make_dataset "$T/later.jsonl" 5
ctl -q dataset add "$T/later.jsonl" --name later > /dev/null
stop_daemon
check "the daemon stopped" test "$STOP_RC" = 0
cp "$T/b1.db" "$T/state/vtuned.db" && rm -f "$T/state/vtuned.db-wal" "$T/state/vtuned.db-shm"
start_daemon || fail "the daemon starts on the restored database"
ctl --json dataset list > "$T/after.json"
check "after the restore the dataset of the backup is there" test "$(json_get "$T/after.json" "[d['name'] for d in v]")" = "['d']"
ctl --json job show j > "$T/j2.json"
check "and its job, still active" test "$(json_get "$T/j2.json" "v['state']")" = running
ctl --json backdoor show b > /dev/null
check "and its backdoor" test $? = 0

# Whatever answers on a socket given with -s must not make vtunectl (here
# root) delete a file: a fake "daemon", run as uid 65534, names a root-owned
# file as its backup (its bytes and SHA-256 are public).  vtunectl copies it
# (it can read it), and leaves it where it is: not the peer's file.
NPY=""
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
    for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
        setpriv --reuid 65534 --regid 65534 --clear-groups -- "$p" -c "" 2> /dev/null && { NPY=$p; break; }
    done
fi
if [ -n "$NPY" ]; then
    mkdir -p "$T/fake" && chmod 0777 "$T/fake" && chmod 0755 "$T"
    printf 'not a backup, but readable\n' > "$T/victim" && chmod 0644 "$T/victim"
    vsum=$(sha256sum < "$T/victim" | cut -d' ' -f1)
    vbytes=$(wc -c < "$T/victim")
    setpriv --reuid 65534 --regid 65534 --clear-groups -- "$NPY" -c '
import json, os, socket, sys
path, victim, sha, n = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX); s.bind(path); os.chmod(path, 0o666); s.listen(1)
open(path + ".ready", "w").close()
c, _ = s.accept()
line = b""
while not line.endswith(b"\n"):
    line += c.recv(4096)
req = json.loads(line)
c.sendall((json.dumps({"jsonrpc": "2.0", "id": req["id"],
    "result": {"path": victim, "sha256": sha, "bytes": int(n)}}) + "\n").encode())
c.close()' "$T/fake/s.sock" "$T/victim" "$vsum" "$vbytes" &
    fake=$!
    PIDS="$PIDS $fake"
    wait_until 10 test -e "$T/fake/s.sock.ready" || fail "the fake daemon listens"
    "$VTUNECTL" -s "$T/fake/s.sock" backup -o "$T/fake.db" > /dev/null 2> "$T/e"; rc=$?
    wait "$fake" 2> /dev/null
    check "a fake daemon's answer is copied (exit 0)" test "$rc" = 0 -a -f "$T/fake.db"
    check "but the file it named, not its own, is left in place" test -f "$T/victim"
    check "saying so" grep -q "left the daemon's copy .*victim in place" "$T/e"
else
    echo "# skipped the fake-daemon check: needs root, setpriv and python3 for uid 65534"
fi
finish
