#!/bin/bash
# The fast paths of import and backdoor creation (SIMD word scan, string
# extraction without jansson, threaded file scan, write-behind writer)
# checked against their plain definitions: tests/bench/bench_build check.
. "$(dirname "$0")/lib.sh"
bin="$top_builddir/tests/bench/bench_build"
[ -x "$bin" ] || skip "tests/bench/bench_build is not built"
"$bin" check "$T" > "$T/check.out" 2>&1; rc=$?
sed 's/^/# /' "$T/check.out" | tail -15
check "bench_build check: fast paths agree with the reference definitions" test "$rc" = 0
finish
