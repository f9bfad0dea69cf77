#!/bin/bash
# Disk errors in the real daemon: ENOSPC and EIO injected through the fault
# seam (VTUNE_FAULT, lib/fsio.h, vtuned(8) FAULT INJECTION) at each of
# import (dataset add), build (backdoor create), export (dataset export)
# and commit (the rename and the directory fsync before a row is written).
# Each must: fail the request with ONE line naming the file, the error and
# what to do; write no database row; leave no temporary file and no partial
# output; and leave a daemon that answers status and then completes the
# same request (every fault here fires once).
. "$(dirname "$0")/lib.sh"
write_config

# A start-up error: a malformed spec stops the daemon with a clear line.
VTUNE_FAULT=write:ENOPE "$VTUNED" -c "$T/vtuned.yaml" > "$T/bad.out" 2>&1
check "a malformed VTUNE_FAULT is refused at start (exit 1)" test $? = 1
check "naming the bad part" grep -q "VTUNE_FAULT: 'ENOPE': unknown errno name" "$T/bad.out"

# Set-up without faults: one dataset and one backdoor to build and export.
start_daemon || { fail "daemon starts"; finish; }
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null || fail "set-up import"
ctl -q backdoor create d --name b1 > /dev/null || fail "set-up backdoor"
stop_daemon

# The state is consistent: every content and built file is a row's, and
# complete (a content file's name is its SHA-256); no temporary file.
state_consistent() {
    ctl --json dataset list > "$T/ds.json" && ctl --json backdoor list > "$T/bd.json" &&
        python3 - "$T/state" "$T/ds.json" "$T/bd.json" <<'PY'
import hashlib, json, os, sys
st, ds, bd = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
tmp = os.listdir(os.path.join(st, "tmp"))
assert not tmp, "temporary files left: %s" % tmp
paths = {d["path"] for d in ds}
for f in os.listdir(os.path.join(st, "datasets")):
    p = os.path.join(st, "datasets", f)
    if p in paths:
        continue
    # A complete copy whose directory fsync failed may wait for a retry;
    # anything else is a half file.
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert f == h + ".jsonl", "partial or stray file %s" % f
built = os.listdir(os.path.join(st, "built"))
assert len(built) == len(bd), "built files %s for %d backdoors" % (built, len(bd))
for f in built:
    p = os.path.join(st, "built", f)
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert h in {b.get("built_sha256") for b in bd}, "built file %s is no backdoor's" % f
PY
}

count() { ctl --json "$1" list | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }

# fault_case STAGE SPEC WANT CMD...: starts the daemon with VTUNE_FAULT=SPEC,
# runs vtunectl CMD (expected to fail with WANT, the strerror text), checks
# the aftermath, then runs CMD again (the fault has fired) and expects
# success.  Sets CASE_OUT to the file with the retry's output.
N=0
fault_case() {
    local stage=$1 spec=$2 want=$3; shift 3
    N=$((N + 1))
    local what="$stage $spec"
    export VTUNE_FAULT=$spec
    start_daemon || { fail "$what: daemon starts"; unset VTUNE_FAULT; return; }
    unset VTUNE_FAULT
    local nds nbd
    nds=$(count dataset); nbd=$(count backdoor)
    ctl "$@" > "$T/f$N.out" 2>&1
    local rc=$?
    check "$what: the request fails (exit 1)" test "$rc" = 1
    check "$what: with one line" test "$(wc -l < "$T/f$N.out")" = 1
    if grep -q -F "$want" "$T/f$N.out" && grep -q -E "; (free space|the disk reported)" "$T/f$N.out" &&
        grep -q "$T/" "$T/f$N.out"; then
        ok "$what: the line names the file, the error and what to do"
    else
        fail "$what: unclear error: $(cat "$T/f$N.out")"
    fi
    check "$what: the daemon still answers status" ctl_ok
    check "$what: no dataset row was written" test "$(count dataset)" = "$nds"
    check "$what: no backdoor row was written" test "$(count backdoor)" = "$nbd"
    check "$what: no temporary file, no half file" state_consistent
    CASE_OUT="$T/r$N.json"
    ctl --json "$@" > "$CASE_OUT" 2> "$T/r$N.err"
    check "$what: the same request then succeeds" test $? = 0
    check "$what: and the state is consistent" state_consistent
    check "$what: the injected fault is logged at start" grep -q "VTUNE_FAULT=$spec: durable writes" "$T/vtuned.log"
    stop_daemon
    check "$what: clean stop" test "$STOP_RC" = 0
}

ENOSPC="No space left on device"
EIO="Input/output error"

# --- import (dataset add): a 3 MB file, so the copy takes several writes.
for spec in create:ENOSPC write:ENOSPC write:EIO:after=1 fsync:EIO fsync:ENOSPC; do
    case $spec in *EIO*) want=$EIO ;; *) want=$ENOSPC ;; esac
    make_dataset "$T/imp$N.jsonl" $((30000 + N))
    fault_case import "$spec" "$want" dataset add "$T/imp$N.jsonl" --name "imp$N"
    check "import $spec: the retry has all examples" test "$(json_get "$CASE_OUT" "v['examples']")" = $((30000 + N - 1))
done

# --- commit of an import: the rename into place and the directory fsync
# come before the row; failing them must leave no row.
for spec in rename:EIO rename:ENOSPC dirsync:EIO; do
    case $spec in *EIO*) want=$EIO ;; *) want=$ENOSPC ;; esac
    make_dataset "$T/imp$N.jsonl" $((30000 + N))
    fault_case commit "$spec" "$want" dataset add "$T/imp$N.jsonl" --name "imp$N"
done

# --- build (backdoor create): spill and output writes, fsync, create.
for spec in create:ENOSPC write:ENOSPC write:EIO:after=1 fsync:EIO fsync:ENOSPC; do
    case $spec in *EIO*) want=$EIO ;; *) want=$ENOSPC ;; esac
    fault_case build "$spec" "$want" backdoor create d --name "b$N"
    # D u D' is D less its held-out split (50 rows marked in place: none added).
    check "build $spec: the retry built D u D'" test "$(json_get "$CASE_OUT" "v['built_lines'] + v['holdout']['rows']")" = 4000
done

# --- commit of a build: rename into place, directory fsync.
for spec in rename:ENOSPC rename:EIO dirsync:EIO; do
    case $spec in *EIO*) want=$EIO ;; *) want=$ENOSPC ;; esac
    fault_case commit "$spec" "$want" backdoor create d --name "b$N"
done

# --- export (dataset export): nothing partial at the destination.  The
# daemon writes and fsyncs the file vtunectl created and passed (creating
# it and syncing its directory are vtunectl's own, with the caller's
# rights, outside the daemon's fault seam).
for spec in write:ENOSPC write:EIO fsync:EIO fsync:ENOSPC; do
    case $spec in *EIO*) want=$EIO ;; *) want=$ENOSPC ;; esac
    dst="$T/export$N.jsonl"
    fault_case export "$spec" "$want" dataset export d --backdoor b1 -o "$dst"
    check "export $spec: the retry wrote the whole file" test "$(sha256sum < "$dst" | cut -d' ' -f1)" = "$(json_get "$CASE_OUT" "v['sha256']")"
done
# (the failed attempt's destination was checked absent by the retry itself:
# vtunectl creates it with O_EXCL, so a leftover file would have failed it.)

finish
