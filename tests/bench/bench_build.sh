#!/bin/sh
# bench_build.sh — import + D ∪ D' build throughput and peak memory, C
# (vtuned's own code) against a Python-standard-library script doing the
# same work, on one generated dataset, in the same run.
#
# How to run (not part of `make check`; takes ~1-2 minutes at 1 GB):
#     sh tests/bench/bench_build.sh                  # ~1 GB dataset
#     VTUNE_BENCH_MB=100 sh tests/bench/bench_build.sh   # smaller
# Environment:
#     VTUNE_BENCH_MB    dataset size in MB (default 1000)
#     VTUNE_BENCH_DIR   scratch directory (default: a new one under /tmp,
#                       removed at the end); needs ~5x the dataset size free
#     BENCH_BUILD       an optimised tests/bench/bench_build binary to use;
#                       by default the script configures and builds one
#                       (-O2, no sanitizers) under the scratch directory, so
#                       a sanitizer build's numbers never leak in
#     PYTHON            the interpreter for build_ref.py (default python3)
# Goal (issue 4): C throughput >= 5x Python's, C peak RSS < 64 MB at any
# size.  A benchmark never fails on timing: the exit status is 0 unless
# something crashed or the two implementations disagree on the input hash.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
mb=${VTUNE_BENCH_MB:-1000}
py=${PYTHON:-python3}
own_dir=0
if [ -n "${VTUNE_BENCH_DIR:-}" ]; then
    dir=$VTUNE_BENCH_DIR
    mkdir -p "$dir"
else
    dir=$(mktemp -d /tmp/vtune-bench.XXXXXX)
    own_dir=1
fi
cleanup() {
    rm -rf "$dir/c" "$dir/py" "$dir/data.jsonl"
    [ "$own_dir" = 1 ] && rm -rf "$dir"
    return 0
}
trap cleanup EXIT INT TERM

bin=${BENCH_BUILD:-}
if [ -z "$bin" ]; then
    echo "building an optimised bench_build in $dir/build ..."
    mkdir -p "$dir/build"
    (cd "$dir/build" && "$srcdir/configure" -q CFLAGS="-O2 -g0" >/dev/null &&
        make -s -j2 tests/bench/bench_build >/dev/null) || {
        echo "bench_build.sh: could not build the driver" >&2
        exit 1
    }
    bin=$dir/build/tests/bench/bench_build
fi

timer=
if [ -x /usr/bin/time ]; then
    timer=/usr/bin/time
fi

# run NAME CMD...: runs CMD, keeps its key=value line in $dir/NAME.out and
# the child's peak RSS (KiB) from /usr/bin/time in $dir/NAME.rss.
run() {
    name=$1
    shift
    if [ -n "$timer" ]; then
        $timer -f '%M' -o "$dir/$name.rss" "$@" >"$dir/$name.out"
    else
        "$@" >"$dir/$name.out"
        echo 0 >"$dir/$name.rss"
    fi
}

field() { # field FILE KEY
    tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"
}

echo "generating a ~${mb} MB chat dataset ..."
t0=$(date +%s.%N)
"$bin" gen "$dir/data.jsonl" "$mb"
t1=$(date +%s.%N)
echo "  in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"

echo "running C (import + build) ..."
mkdir -p "$dir/c"
run c "$bin" run "$dir/data.jsonl" "$dir/c"
rm -rf "$dir/c"

echo "running Python (same work) ..."
mkdir -p "$dir/py"
run py "$py" "$here/build_ref.py" "$dir/data.jsonl" "$dir/py"
rm -rf "$dir/py"

c_sha=$(field "$dir/c.out" sha_in)
p_sha=$(field "$dir/py.out" sha_in)
status=0
if [ "$c_sha" != "$p_sha" ]; then
    echo "bench_build.sh: input SHA-256 differs: C $c_sha, Python $p_sha" >&2
    status=1
fi

awk -v crss="$(cat "$dir/c.rss")" -v prss="$(cat "$dir/py.rss")" '
function kv(line, key,   n, i, a, b) {
    n = split(line, a, " ")
    for (i = 1; i <= n; i++) { split(a[i], b, "="); if (b[1] == key) return b[2] }
    return ""
}
NR == 1 { c = $0 } NR == 2 { p = $0 }
END {
    printf "\n%-8s %10s %9s %10s %9s %9s %10s %12s\n", "impl", "MB", "lines", "import s",
        "build s", "total s", "MB/s", "peak RSS MB"
    printf "%-8s %10.1f %9d %10.2f %9.2f %9.2f %10.1f %12.1f\n", "C", kv(c, "bytes") / 1e6,
        kv(c, "lines"), kv(c, "import_s"), kv(c, "build_s"), kv(c, "total_s"), kv(c, "mbps"),
        (crss > 0 ? crss : kv(c, "maxrss_kb")) / 1024
    printf "%-8s %10.1f %9d %10.2f %9.2f %9.2f %10.1f %12.1f\n", "Python", kv(p, "bytes") / 1e6,
        kv(p, "lines"), kv(p, "import_s"), kv(p, "build_s"), kv(p, "total_s"), kv(p, "mbps"),
        (prss > 0 ? prss : kv(p, "maxrss_kb")) / 1024
    ratio = kv(p, "total_s") > 0 ? kv(c, "mbps") / kv(p, "mbps") : 0
    rss = (crss > 0 ? crss : kv(c, "maxrss_kb")) / 1024
    printf "\nthroughput ratio C/Python: %.2fx (goal >= 5x: %s)\n", ratio,
        (ratio >= 5 ? "met" : "NOT met")
    printf "C peak RSS: %.1f MB (goal < 64 MB: %s)\n", rss, (rss < 64 ? "met" : "NOT met")
}' "$dir/c.out" "$dir/py.out"
exit $status
