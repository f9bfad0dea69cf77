#!/bin/bash
# bootstrap.sh demo|check — the README's two commands.
#
#   demo   install the Debian packages vtuned needs, build, and run the demo
#          (tests/demo.sh) against the provider simulator;
#   check  the same set-up, then the whole test suite: a build with
#          ASan+UBSan and -Werror running `make check`, then `make distcheck`
#          from a plain build.  Ends with one line "N passed, N failed,
#          N skipped" and exits non-zero when anything failed.
#
# Run as root on Debian 12 (or as a user who already has the packages).
# Environment: JOBS (parallel make, default nproc), VTUNE_SKIP_DISTCHECK=1,
# VTUNE_NO_APT=1 (never call apt-get: the packages must be there).
set -euo pipefail
mode=${1:-}
case "$mode" in demo|check) ;; *) echo "usage: $0 demo|check" >&2; exit 2 ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-$(nproc)}

PKGS="build-essential autoconf automake libtool pkg-config libuv1-dev libsqlite3-dev
 libcurl4-openssl-dev libjansson-dev libyaml-dev libcmocka-dev libmicrohttpd-dev libsystemd-dev
 libssl-dev python3 curl sqlite3 util-linux systemd groff-base ca-certificates"
# valgrind for the memory checks; dpkg-dev, debhelper and lintian for
# tests/integration/test_deb.sh (it skips without them).
[ "$mode" = check ] && PKGS="$PKGS valgrind dpkg-dev debhelper lintian"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm (for the API-conformance tests) may come from Debian's
# packages or from another source that already provides the commands.
if [ "$mode" = check ]; then
    command -v node >/dev/null || missing="$missing nodejs"
    command -v npm >/dev/null || missing="$missing npm"
fi
if [ -n "$missing" ]; then
    if [ -n "${VTUNE_NO_APT:-}" ]; then echo "missing packages:$missing" >&2; exit 1; fi
    if [ "$(id -u)" != 0 ]; then echo "missing packages:$missing (run as root to install them)" >&2; exit 1; fi
    echo "== installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
fi

# Node modules for the API-conformance tests (ajv, the openai SDK).
if [ "$mode" = check ] && [ -f "$src/tests/node/package.json" ] && command -v npm >/dev/null; then
    echo "== npm ci (tests/node)"
    (cd "$src/tests/node" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "warning: npm ci failed; the Node-based conformance tests will be skipped" >&2
fi

cd "$src"
echo "== autoreconf"
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

if [ "$mode" = demo ]; then
    mkdir -p build && cd build
    [ -f Makefile ] || ../configure -q
    make -s -j"$JOBS"
    exec "$src/tests/demo.sh" "$PWD"
fi

# show_failed DIR LABEL N: for each failed test under DIR, the last N lines
# of its log and then its failed checks ("not ok" lines of the shell tests,
# "[  FAILED  ]" of the unit tests, wherever they are in the log), so that a
# CI page that keeps only the end still says which check failed.
show_failed() {
    local f log
    for f in $(grep -l -r --include='*.trs' -E '^:test-result: (FAIL|ERROR|XPASS)' "$1" 2>/dev/null || true); do
        log=${f%.trs}.log; echo "---- $2$log"
        tail -"$3" "$log"
        grep -E '^(not ok|\[  FAILED  \])' "$log" | head -20 | sed "s|^|---- failed in $2$log: |"
    done
}

status=0
echo "== build with ASan+UBSan and -Werror, make check"
mkdir -p build-check && cd build-check
../configure -q --enable-sanitizers --enable-werror
make -s -j"$JOBS"
make -j"$JOBS" check || status=1
# Summarise every test's result from the automake .trs files.
count() { { grep -h -r --include='*.trs' "^:test-result: $1" . 2>/dev/null || true; } | wc -l; }
pass=$(count PASS); failed=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) )); skipped=$(count SKIP)
show_failed . "" 40
cd "$src"
if [ -z "${VTUNE_SKIP_DISTCHECK:-}" ]; then
    echo "== make distcheck"
    mkdir -p build-dist && cd build-dist
    [ -f Makefile ] || ../configure -q
    if make -s -j"$JOBS" distcheck >distcheck.log 2>&1; then
        pass=$((pass + 1)); echo "distcheck: PASS"
    else
        failed=$((failed + 1)); status=1; echo "distcheck: FAIL"; tail -40 distcheck.log
        # Name each failed test of the unpacked tree and show the end of its log,
        # so that a CI page that keeps only the last lines still says which one.
        show_failed . "distcheck: " 25
    fi
    cd "$src"
fi
echo "$pass passed, $failed failed, $skipped skipped"
exit $status
