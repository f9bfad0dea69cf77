#!/bin/bash
# The generated vtuned.service parses, and systemd-analyze rates its
# exposure at 2.0 or lower.
. "$(dirname "$0")/lib.sh"
unit="$top_builddir/systemd/vtuned.service"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
[ -f "$unit" ] || skip "$unit was not generated (run make)"
cp "$unit" "$T/vtuned.service"
systemd-analyze security --offline=true "$T/vtuned.service" > "$T/out" 2>&1
score=$(sed -n 's/.*Overall exposure level for vtuned.service: \([0-9.]*\).*/\1/p' "$T/out")
echo "# exposure: ${score:-?}"
check "systemd-analyze produced a score" test -n "$score"
check "exposure $score <= 2.0" python3 -c "import sys; sys.exit(0 if float('$score') <= 2.0 else 1)"
check "Type=notify" grep -q "^Type=notify" "$unit"
check "ExecStart names the installed vtuned" grep -q "^ExecStart=/.*/vtuned -c /etc/vtuned/vtuned.yaml" "$unit"
finish
