#!/bin/bash
# SIGHUP tells the truth (issue 13 item 8): what can change live is
# applied (socket_mode and socket_group on the socket file itself, limits,
# log level); each key that needs a restart is named ("socket changes at
# the next start") and its running value kept; "configuration reloaded"
# is logged only when every change took effect.
. "$(dirname "$0")/lib.sh"
write_config "socket_mode: 0660"
start_daemon || { fail "daemon starts"; finish; }
SOCK="$T/run/vtuned.sock"
check "the socket starts 0660" test "$(stat -c %a "$SOCK")" = 660

summaries() { grep -c "configuration reloaded\|configuration partly reloaded\|reload rejected" "$T/vtuned.log"; }
# hup: send SIGHUP and wait for the reload's summary line.
hup() {
    local before; before=$(summaries)
    kill -HUP "$DAEMON_PID"
    wait_until 10 sh -c "[ \$(grep -c 'configuration reloaded\|configuration partly reloaded\|reload rejected' '$T/vtuned.log') -gt $before ]"
}
last_summary() { grep "configuration reloaded\|configuration partly reloaded\|reload rejected" "$T/vtuned.log" | tail -1; }

# 1. Nothing changed.
check "SIGHUP with the same file is answered" hup
last_summary > "$T/s"
check "and says nothing changed" grep -q "configuration reloaded: no setting changed" "$T/s"

# 2. socket_mode is applied to the socket file, and the log says so.
sed -i 's/^socket_mode: .*/socket_mode: 0600/' "$T/vtuned.yaml"
check "SIGHUP after changing socket_mode is answered" hup
check "the socket is now 0600" test "$(stat -c %a "$SOCK")" = 600
last_summary > "$T/s"
check "the summary names socket_mode as applied" grep -q "configuration reloaded: socket_mode" "$T/s"
check "the daemon still answers" ctl_ok

# 3. socket_group too (the test user's own primary group, which exists).
grp=$(id -gn)
echo "socket_group: $grp" >> "$T/vtuned.yaml"
hup
check "socket_group is applied: the socket belongs to $grp" test "$(stat -c %G "$SOCK")" = "$grp"
last_summary > "$T/s"
check "and is named as applied" grep -q "configuration reloaded: socket_group" "$T/s"

# 4. A key that needs a restart is named, never called reloaded; live keys
#    changed with it still apply.
sed -i "s|^socket: .*|socket: $T/run/other.sock|; s/^log_level: .*/log_level: info/" "$T/vtuned.yaml"
echo "control: {max_connections: 100, realtime: false}" >> "$T/vtuned.yaml"
sched_before=$(control_scheduling)
hup
last_summary > "$T/s"
check "the summary is 'partly reloaded', not 'reloaded'" grep -q "configuration partly reloaded" "$T/s"
check "it names socket as changing at the next start" grep -q "at the next start: socket" "$T/s"
check "and the live keys as applied" grep -q "applied log_level, control.max_connections" "$T/s"
check "a line says 'socket changes at the next start'" grep -q "reload: socket changes at the next start" "$T/vtuned.log"
check "control.realtime is named as changing at the next start" grep -q "at the next start: .*control.realtime" "$T/s"
check "and the control thread runs as before ($sched_before)" test "$(control_scheduling)" = "$sched_before"
check "the daemon still answers on the running socket" ctl_ok
check "and has not created the new one" test ! -e "$T/run/other.sock"

# 4b. A provider's client settings need a restart: named, and `status`
#     keeps showing the running value; its poll_interval applies now.
echo sk-test > "$T/key"
sed -i "s|^socket: .*|socket: $SOCK|; s|, realtime: false}|}|" "$T/vtuned.yaml" # back to the running ones
printf 'providers:\n  p:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key_file: %s\n' "$T/key" >> "$T/vtuned.yaml"
hup
check "a new provider is applied" grep -q "configuration reloaded: providers.p" <(last_summary)
sed -i 's|base_url: http://127.0.0.1:9/v1|base_url: http://127.0.0.1:10/v1\n    poll_interval: 5s\n    score_template: chatml|' "$T/vtuned.yaml"
hup
last_summary > "$T/s"
check "a provider's base_url is named as changing at the next start" grep -q "at the next start: providers.p.base_url$" "$T/s"
check "its poll_interval as applied" grep -q "applied providers.p.poll_interval" "$T/s"
check "its score_template as applied (each coverage test reads it)" grep -q "applied providers.p.poll_interval, providers.p.score_template" "$T/s"
ctl --json status > "$T/st.json"
check "status still shows the base_url in use" test "$(json_get "$T/st.json" "[p['base_url'] for p in v['providers']]")" = "['http://127.0.0.1:9/v1']"

# 5. A file that does not load changes nothing.
echo "bogus_key: 1" >> "$T/vtuned.yaml"
hup
last_summary > "$T/s"
check "a bad file is rejected with its position" grep -q "reload rejected.*vtuned.yaml:[0-9]*:[0-9]*: unknown key 'bogus_key'" "$T/s"
check "and the socket keeps its mode" test "$(stat -c %a "$SOCK")" = 600
finish
