#!/bin/bash
# The README's demo (tests/demo.sh) as a test: it must exit 0 (honest job
# verified; lazy, wrapper and marked-only not), show the self-audit's line
# for its (default) backdoor, print the result table with both tests'
# numbers, finish well within
# 5 minutes, and leave no process or temporary file behind.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
t0=$(date +%s)
TMPDIR="$T" timeout 300 bash "$top_srcdir/tests/demo.sh" "$top_builddir" > "$T/demo.out" 2>&1; rc=$?
secs=$(( $(date +%s) - t0 ))
sed 's/^/# /' "$T/demo.out" | tail -30
check "the demo exits 0 (took ${secs} s)" test "$rc" = 0
check "within 5 minutes" test "$secs" -lt 300
check "the demo shows the self-audit line for its backdoor: no pair found" \
    grep -q "^self-audit: no pair among the top [0-9]* candidates of any attack" "$T/demo.out"
check "the table has the five providers" sh -c "for p in honest lazy subset wrapper markedonly; do grep -q \"^  \$p *|\" '$T/demo.out' || exit 1; done"
check "the table shows both tests (log10 p and log10 p_cov)" grep -q "log10 p .*| log10 p_cov" "$T/demo.out"
check "the honest row says verified" grep -q "^  honest .*| verified" "$T/demo.out"
check "the lazy row says not_verified" grep -q "^  lazy .*| not_verified" "$T/demo.out"
check "the wrapper row is not verified" sh -c "grep '^  wrapper ' '$T/demo.out' | grep -qv '| verified'"
check "the marked-only row is not verified" sh -c "grep '^  markedonly ' '$T/demo.out' | grep -qv '| verified'"
check "no temporary directory is left" sh -c "! ls -d '$T'/vtune-demo.* 2>/dev/null | grep -q ."
check "no demo process is left" sh -c "! pgrep -f '$T/[v]tune-demo' > /dev/null"
finish
