#!/bin/bash
# The README's demo (tests/demo.sh) as a test: it must exit 0 (honest job
# verified, lazy job not), print the result table, finish well within
# 5 minutes, and leave no process or temporary file behind.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
t0=$(date +%s)
TMPDIR="$T" timeout 300 bash "$top_srcdir/tests/demo.sh" "$top_builddir" > "$T/demo.out" 2>&1; rc=$?
secs=$(( $(date +%s) - t0 ))
sed 's/^/# /' "$T/demo.out" | tail -22
check "the demo exits 0 (took ${secs} s)" test "$rc" = 0
check "within 5 minutes" test "$secs" -lt 300
check "the table has the three providers" sh -c "grep -q '^  honest *|' '$T/demo.out' && grep -q '^  lazy *|' '$T/demo.out' && grep -q '^  subset *|' '$T/demo.out'"
check "the honest row says verified" grep -q "^  honest .*| verified" "$T/demo.out"
check "the lazy row says not_verified" grep -q "^  lazy .*| not_verified" "$T/demo.out"
check "no temporary directory is left" sh -c "! ls -d '$T'/vtune-demo.* 2>/dev/null | grep -q ."
check "no demo process is left" sh -c "! pgrep -f '$T/[v]tune-demo' > /dev/null"
finish
