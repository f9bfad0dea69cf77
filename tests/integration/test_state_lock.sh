#!/bin/bash
# One daemon per state directory (issue 13 item 5): a second vtuned on the
# same state_dir, even with another socket, exits 1 with one line naming
# the first one's pid, and leaves the first one, its socket and its
# database alone.  Once the first stops, the lock is free again, and a
# kill -9 leaves no stale lock behind.
. "$(dirname "$0")/lib.sh"
write_config
start_daemon || { fail "daemon starts"; finish; }

sed "s|^socket: .*|socket: $T/run2/vtuned.sock|" "$T/vtuned.yaml" > "$T/second.yaml"
"$VTUNED" -c "$T/second.yaml" > "$T/second.out" 2>&1 &
pid2=$!
PIDS="$PIDS $pid2"
# Bounded: a daemon that wrongly starts must not hang the test.  Either it
# exits, or it comes up answering on its own socket (the failure).
second_done() { ! kill -0 "$pid2" 2>/dev/null || "$VTUNECTL" -q -s "$T/run2/vtuned.sock" status > /dev/null 2>&1; }
wait_until 20 second_done
if kill -0 "$pid2" 2>/dev/null; then
    bound=yes; kill -TERM "$pid2"
else
    bound=no
fi
wait "$pid2"; rc=$?
check "the second daemon on the same state_dir exits 1" test "$rc" = 1
check "with one line" test "$(wc -l < "$T/second.out")" = 1
check "naming the holder's pid ($DAEMON_PID)" grep -q "in use by another vtuned (pid $DAEMON_PID " "$T/second.out"
check "and never comes up on its own socket" test "$bound" = no
check "the first daemon still answers" ctl_ok
check "the lock file holds the first daemon's pid" test "$(cat "$T/state/vtuned.lock")" = "$DAEMON_PID"

stop_daemon
check "the first daemon stops cleanly" test "$STOP_RC" = 0
"$VTUNED" -c "$T/second.yaml" >> "$T/vtuned.log" 2>&1 &
DAEMON_PID=$!
PIDS="$PIDS $DAEMON_PID"
second_answers() { "$VTUNECTL" -q -s "$T/run2/vtuned.sock" status > /dev/null 2>&1; }
check "after it stopped, a daemon on the same state_dir starts" wait_until 20 second_answers

kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
start_daemon
check "after a kill -9 the lock is not stale: a new daemon starts" ctl_ok
finish
