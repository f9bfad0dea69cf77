#!/bin/bash
# Who may use the socket, as vtuned(8) ACCESS CONTROL says, under the
# shipped unit (issue 13 item 4): with socket_group unset, members of the
# socket's group (the daemon's group, as User=/Group=vtuned leave it) are
# let in and strangers refused — with the daemon as its own uid, and in a
# user namespace.  Real uids throughout (setpriv as root):
#   daemon  60100:60100      (User=vtuned Group=vtuned)
#   member  60101, supplementary group 60100   (usermod -aG vtuned alice)
#   stranger 60102:60102
# Namespaces are made with `unshare --user` and their maps written from
# outside, as systemd does:
#   identity  uids/gids 0-65535 mapped to themselves (PrivateUsers=identity,
#             systemd 257): callers keep their ids;
#   private   only root and the daemon's own ids mapped (PrivateUsers=yes):
#             every other uid and group arrives as the overflow id 65534, so
#             allowed_uids and allowed_groups cannot work and the log names
#             no caller (a member still gets in, by the daemon's own group,
#             which is mapped) — why the shipped unit no longer sets it; the
#             daemon says so in its log when it refuses such a caller.
# Also listed 60103:60103, in allowed_uids.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root, to run the daemon and its callers as other uids (setpriv)"
command -v setpriv > /dev/null || skip "setpriv (util-linux) is not installed"
command -v unshare > /dev/null || skip "unshare (util-linux) is not installed"
DU=60100 MU=60101 SU=60102 LU=60103
setpriv --reuid $DU --regid $DU --clear-groups -- test -x "$VTUNED" ||
    skip "uid $DU cannot run $VTUNED (a directory above it is closed)"

chmod 0755 "$T"
member() { setpriv --reuid $MU --regid $MU --groups $DU -- "$VTUNECTL" -s "$T/run/vtuned.sock" "$@"; }
listed() { setpriv --reuid $LU --regid $LU --clear-groups -- "$VTUNECTL" -s "$T/run/vtuned.sock" "$@"; }
stranger() { setpriv --reuid $SU --regid $SU --clear-groups -- "$VTUNECTL" -s "$T/run/vtuned.sock" "$@"; }
same_ns() { [ "$(readlink "/proc/$1/ns/user")" = "$(readlink /proc/self/ns/user)" ]; }

# write_map FILE MAP: a uid_map/gid_map takes one write(2) of every line.
write_map() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.write(fd, (sys.argv[2] + "\n").encode())' "$1" "$2"; }

# start_as_unit NS [yaml...]: vtuned as $DU:$DU, socket_group unset; NS is
# host, identity or private (above).
start_as_unit() {
    local ns=$1; shift
    write_config "$@"
    chown -R $DU:$DU "$T/state" "$T/run"
    : > "$T/vtuned.log"
    local run=(setpriv --reuid $DU --regid $DU --clear-groups -- "$VTUNED" -c "$T/vtuned.yaml")
    if [ "$ns" = host ]; then
        "${run[@]}" >> "$T/vtuned.log" 2>&1 &
        DAEMON_PID=$!
    else
        rm -f "$T/go" && mkfifo "$T/go"
        unshare --user -- sh -c 'read _ < "$0" && exec "$@"' "$T/go" "${run[@]}" >> "$T/vtuned.log" 2>&1 &
        DAEMON_PID=$!
        wait_until 10 eval '! same_ns $DAEMON_PID' || { echo "# unshare did not start"; return 1; }
        local map="0 0 65536"
        [ "$ns" = private ] && map=$(printf '0 0 1\n%s %s 1' $DU $DU)
        write_map "/proc/$DAEMON_PID/uid_map" "$map" && write_map "/proc/$DAEMON_PID/gid_map" "$map" ||
            { echo "# cannot map ids"; return 1; }
        echo go > "$T/go"
    fi
    PIDS="$PIDS $DAEMON_PID"
    wait_until 20 daemon_answers || { echo "# vtuned did not start:"; sed 's/^/# /' "$T/vtuned.log"; return 1; }
}

# --- the shipped unit: the daemon's own uid, default socket mode 0660.
start_as_unit host || { fail "daemon starts as uid $DU"; finish; }
check "the socket's group is the daemon's ($DU)" test "$(stat -c %g "$T/run/vtuned.sock")" = $DU
member -q status > "$T/m1" 2>&1
check "a member of the socket's group is let in (socket_group unset)" test $? = 0
stranger -q status > "$T/s1" 2>&1
check "a stranger is refused (the socket's mode: exit 1)" test $? = 1
sed 's/^/# /' "$T/s1"
stop_daemon

# --- socket mode 0666: the daemon's own check is what refuses.
start_as_unit host 'socket_mode: "0666"' || { fail "daemon starts"; finish; }
member -q status > "$T/m2" 2>&1
check "a member is let in by the daemon's check" test $? = 0
stranger -q status > "$T/s2" 2>&1; rc=$?
sed 's/^/# /' "$T/s2"
check "a stranger is refused by the daemon (exit 1, permission denied)" \
    test "$rc" = 1 -a -n "$(grep 'permission denied: your user is not allowed' "$T/s2")"
check "and the refusal is logged with the stranger's uid" grep -q "refused connection from uid $SU " "$T/vtuned.log"
stop_daemon

# --- in a user namespace mapping the ids (PrivateUsers=identity).
start_as_unit identity 'socket_mode: "0666"' "allowed_uids: [$LU]" ||
    { fail "daemon starts in a user namespace"; finish; }
check "the daemon runs in its own user namespace" eval '! same_ns $DAEMON_PID'
member -q status > "$T/m3" 2>&1
check "userns: a member is let in" test $? = 0
check "userns: arriving with its own uid" grep -q "ctl: connection from uid $MU pid" "$T/vtuned.log"
listed -q status > "$T/l3" 2>&1
check "userns: a user in allowed_uids is let in" test $? = 0
stranger -q status > "$T/s3" 2>&1
check "userns: a stranger is refused" grep -q 'permission denied: your user is not allowed' "$T/s3"
stop_daemon

# --- in a user namespace like PrivateUsers=yes: ids are lost.
start_as_unit private 'socket_mode: "0666"' "allowed_uids: [$LU]" ||
    { fail "daemon starts in a private user namespace"; finish; }
listed -q status > "$T/l4" 2>&1
check "PrivateUsers=yes-like: a user in allowed_uids arrives as 65534 and is refused" \
    grep -q 'permission denied: your user is not allowed' "$T/l4"
check "the log says why (the overflow id, an unmapped caller)" \
    grep -q "refused connection from uid 65534 .*overflow id.*user namespace" "$T/vtuned.log"
member -q status > /dev/null 2>&1
check "a member gets in by the mapped group, but the log cannot name it (uid 65534)" \
    grep -q "ctl: connection from uid 65534 pid" "$T/vtuned.log"
stop_daemon
unit="$top_builddir/systemd/vtuned.service"
if [ -f "$unit" ]; then
    check "so the shipped unit does not set PrivateUsers=yes" sh -c "! grep -q '^PrivateUsers=yes' '$unit'"
fi
finish
