#!/bin/bash
# The control thread at real-time priority, within its budget (issue 13
# item 1: `status` must not wait for a CPU behind the daemon's own work or
# CPU-bound neighbours; vtuned(8), "The control thread").
#
#  - where it may (here: root; under the shipped unit: LimitRTPRIO=1), the
#    thread named vtuned-ctl runs SCHED_FIFO priority 1 and no other
#    thread of the daemon does; status and the log say so;
#  - a flood of requests that keeps it busy past its budget (20% of a CPU
#    over 100 ms) puts it back at normal priority for a moment: the log
#    says so once, status answers "realtime_resting" meanwhile, and it takes
#    its priority again afterwards;
#  - where it may not (no CAP_SYS_NICE, RLIMIT_RTPRIO 0), and with
#    control.realtime: false, it runs at normal priority, and says why;
#  - a RLIMIT_RTPRIO of 1 without CAP_SYS_NICE is enough (what the unit's
#    LimitRTPRIO=1 gives the unprivileged vtuned user).
# No timing: each step waits for the state it needs (the flood goes on
# until an answer says the thread is resting), with generous deadlines.
. "$(dirname "$0")/lib.sh"
command -v chrt >/dev/null || skip "chrt(1) is needed"
command -v setpriv >/dev/null || skip "setpriv(1) is needed"
command -v prlimit >/dev/null || skip "prlimit(1) is needed"
[ "$(id -u)" = 0 ] || skip "needs root (to run the daemon with and without CAP_SYS_NICE)"
chrt -f 1 true 2>/dev/null || skip "SCHED_FIFO is refused here, even to root (a container without CAP_SYS_NICE)"

REAL_VTUNED=$VTUNED
# policy TASKDIR: the thread's policy as chrt names it (SCHED_FIFO, ...).
# (the control thread's policy carries |SCHED_RESET_ON_FORK: not inherited)
policy() { chrt -p "${1##*/}" 2>/dev/null | sed -n 's/.*scheduling policy: \([A-Z_]*\).*/\1/p'; }
reset_on_fork() { chrt -p "${1##*/}" 2>/dev/null | grep -q "SCHED_RESET_ON_FORK"; }
ctl_sched_is() { [ "$(control_scheduling)" = "$1" ]; }
# wrap COMMAND...: the next start_daemon runs the daemon through prlimit/setpriv (both
# exec, so DAEMON_PID stays the daemon's).
wrap() {
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$*" "$REAL_VTUNED" > "$T/vtuned-wrapped"
    chmod +x "$T/vtuned-wrapped"
    VTUNED="$T/vtuned-wrapped"
}

# ---- 1. as root, the default: real-time
write_config
start_daemon || { fail "daemon starts"; finish; }
ctl_task=$(task_named "$DAEMON_PID" vtuned-ctl)
check "the control thread is named vtuned-ctl" test -n "$ctl_task"
check "it runs at SCHED_FIFO" test "$(policy "$ctl_task")" = SCHED_FIFO
check "and not to be inherited (SCHED_RESET_ON_FORK)" reset_on_fork "$ctl_task"
check "at priority 1" test "$(chrt -p "${ctl_task##*/}" | sed -n 's/.*scheduling priority: //p')" = 1
others=0
for t in /proc/"$DAEMON_PID"/task/*; do
    [ "$t" = "$ctl_task" ] && continue
    p=$(policy "$t") # empty: the thread ended meanwhile
    [ -z "$p" ] || [ "$p" = SCHED_OTHER ] || others=$((others + 1))
done
check "no other thread of the daemon is real-time" test "$others" = 0
check "status says realtime" ctl_sched_is realtime
check "the log says so" grep -q "control thread runs at real-time priority (SCHED_FIFO 1" "$T/vtuned.log"

# The flood: 4 connections, each keeping 64 status requests in flight,
# until one answer says the thread is resting (exit 0) or 120 s pass (1).
cat > "$T/flood.py" <<'PY'
import json, socket, sys, threading, time
path, deadline = sys.argv[1], time.monotonic() + 120
seen = threading.Event()
req = b'{"jsonrpc":"2.0","id":1,"method":"status"}\n'
def one():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    while not seen.is_set() and time.monotonic() < deadline:
        s.sendall(req * 64)
        for _ in range(64):
            line = f.readline()
            if b'"realtime_resting"' in line:
                seen.set()
    s.close()
ts = [threading.Thread(target=one) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
sys.exit(0 if seen.is_set() else 1)
PY
python3 "$T/flood.py" "$T/run/vtuned.sock"
check "a flood of requests sees the thread resting (status: realtime_resting)" test $? = 0
check "the log says it went over its budget, once" test "$(grep -c "over its real-time budget of 20% of a CPU" "$T/vtuned.log")" = 1
check "it takes its priority again once the flood ends" wait_until 30 ctl_sched_is realtime
check "SCHED_FIFO again" test "$(policy "$ctl_task")" = SCHED_FIFO
stop_daemon
check "the daemon stops cleanly" test "$STOP_RC" = 0

# ---- 2. control.realtime: false
: > "$T/vtuned.log"
write_config "control:" "  realtime: false"
start_daemon || { fail "daemon starts (realtime: false)"; finish; }
ctl_task=$(task_named "$DAEMON_PID" vtuned-ctl)
check "control.realtime false: SCHED_OTHER" test "$(policy "$ctl_task")" = SCHED_OTHER
check "status says slice" ctl_sched_is slice
check "the log does not speak of real-time" sh -c "! grep -q 'real-time' '$T/vtuned.log'"
stop_daemon

# ---- 3. not allowed: no CAP_SYS_NICE, RLIMIT_RTPRIO 0
: > "$T/vtuned.log"
write_config
wrap prlimit --rtprio=0:0 -- setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice --
start_daemon || { fail "daemon starts (no CAP_SYS_NICE)"; finish; }
ctl_task=$(task_named "$DAEMON_PID" vtuned-ctl)
check "refused real-time: SCHED_OTHER" test "$(policy "$ctl_task")" = SCHED_OTHER
check "status says slice" ctl_sched_is slice
check "the log says why, in one line" grep -q "no real-time priority for the control thread (Operation not permitted; .*LimitRTPRIO=1" "$T/vtuned.log"
stop_daemon
check "the daemon stops cleanly (refused)" test "$STOP_RC" = 0

# ---- 4. RLIMIT_RTPRIO 1 without CAP_SYS_NICE (the unit's LimitRTPRIO=1);
# raising the limit needs CAP_SYS_RESOURCE, which some containers lack
if prlimit --rtprio=1:1 true 2>/dev/null; then
    : > "$T/vtuned.log"
    wrap prlimit --rtprio=1:1 -- setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice --
    start_daemon || { fail "daemon starts (RLIMIT_RTPRIO 1)"; finish; }
    ctl_task=$(task_named "$DAEMON_PID" vtuned-ctl)
    check "RLIMIT_RTPRIO 1 is enough: SCHED_FIFO" test "$(policy "$ctl_task")" = SCHED_FIFO
    check "status says realtime" ctl_sched_is realtime
    stop_daemon
    check "the daemon stops cleanly (RLIMIT_RTPRIO 1)" test "$STOP_RC" = 0
else
    echo "# cannot raise RLIMIT_RTPRIO here (no CAP_SYS_RESOURCE): LimitRTPRIO=1 not imitated"
fi
VTUNED=$REAL_VTUNED
finish
