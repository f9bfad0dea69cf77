#!/bin/bash
# A member of the socket's group is let in however many groups it is in
# (review of issue 13 item 4).  The daemon read the caller's supplementary
# groups (SO_PEERGROUPS) into an array of 64; for a caller in more, common
# for directory-service users, the kernel answers ERANGE and the daemon saw
# no groups at all, so it refused a member of the socket's group that the
# kernel had just let connect (socket mode 0660).  Here uid 4242 (setpriv)
# is in group `users` and in 71 more.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root, to act as another uid with setpriv"
command -v setpriv > /dev/null || skip "setpriv (util-linux) is not installed"
getent group users > /dev/null || skip "no group 'users' on this system"
USERS_GID=$(getent group users | cut -d: -f3)
as_user() { setpriv --reuid 4242 --regid 4242 "$@"; }
as_user --clear-groups -- test -x "$VTUNECTL" || skip "uid 4242 cannot run $VTUNECTL (a directory above it is closed)"

chmod 0755 "$T"
write_config "socket_group: users"
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"
chgrp users "$T/run" && chmod 0750 "$T/run"
many=$USERS_GID
for g in $(seq 23000 23070); do many="$many,$g"; done

as_user --groups "$USERS_GID" -- "$VTUNECTL" -s "$SOCK" -q dataset list > "$T/few" 2>&1
check "a member of the socket's group in 1 group is let in" test $? = 0
as_user --groups "$many" -- "$VTUNECTL" -s "$SOCK" -q dataset list > "$T/many" 2>&1; rc=$?
sed 's/^/# /' "$T/many"
check "a member of the socket's group in 72 groups is let in" test "$rc" = 0
as_user --groups "$(echo "$many" | cut -d, -f2-)" -- "$VTUNECTL" -s "$SOCK" -q dataset list > "$T/none" 2>&1; rc=$?
check "in 71 groups but not the socket's: the kernel refuses (exit 1)" test "$rc" = 1
stop_daemon
check "the daemon exits 0" test "$STOP_RC" = 0
finish
