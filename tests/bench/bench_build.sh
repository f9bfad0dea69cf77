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
#     VTUNE_BENCH_SCALE message-length factor (default 1: ~1.8 KB lines;
#                       0.1 gives ~250 B lines, like short Q/A datasets)
#     VTUNE_BENCH_REAL_IMPORT  1 (default) also times import_dataset() as it
#                       is, jansson on every line; 0 skips that run
#     PYTHON            the interpreter for build_ref.py (default python3)
# Goal (issue 4): C throughput >= 5x Python's, C peak RSS < 64 MB at any
# size.  A benchmark never fails on timing: the exit status is 0 unless
# something crashed or the two implementations disagree on the input hash.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
mb=${VTUNE_BENCH_MB:-1000}
scale=${VTUNE_BENCH_SCALE:-1}
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
"$bin" gen "$dir/data.jsonl" "$mb" 1 "$scale"
t1=$(date +%s.%N)
echo "  in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"

echo "running C (import + build) ..."
mkdir -p "$dir/c"
run c "$bin" run "$dir/data.jsonl" "$dir/c"
rm -rf "$dir/c"

if [ "${VTUNE_BENCH_REAL_IMPORT:-1}" = 1 ]; then
    echo "running C with import_dataset() as it is (ds_parse_line on every line) ..."
    mkdir -p "$dir/c"
    run creal "$bin" run "$dir/data.jsonl" "$dir/c" --real-import
    rm -rf "$dir/c"
fi

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

# One row per implementation: key=value line plus /usr/bin/time's peak RSS.
rows=
for n in c creal py; do
    [ -s "$dir/$n.out" ] || continue
    rows="$rows$(cat "$dir/$n.out") rss_kb=$(cat "$dir/$n.rss")
"
done
printf '%s' "$rows" | awk '
function kv(line, key,   n, i, a, b) {
    n = split(line, a, " ")
    for (i = 1; i <= n; i++) { split(a[i], b, "="); if (b[1] == key) return b[2] }
    return ""
}
{ row[NR] = $0 }
END {
    printf "\n%-18s %8s %9s %9s %8s %8s %8s %12s\n", "impl", "MB", "lines", "import s",
        "build s", "total s", "MB/s", "peak RSS MB"
    for (i = 1; i <= NR; i++) {
        r = row[i]
        rss = kv(r, "rss_kb") > 0 ? kv(r, "rss_kb") : kv(r, "maxrss_kb")
        printf "%-18s %8.1f %9d %9.2f %8.2f %8.2f %8.1f %12.1f\n", kv(r, "impl"),
            kv(r, "bytes") / 1e6, kv(r, "lines"), kv(r, "import_s"), kv(r, "build_s"),
            kv(r, "total_s"), kv(r, "mbps"), rss / 1024
        speed[kv(r, "impl")] = kv(r, "mbps")
        mem[kv(r, "impl")] = rss / 1024
    }
    if (speed["python"] > 0) {
        ratio = speed["c"] / speed["python"]
        printf "\nthroughput ratio C/Python: %.2fx (goal >= 5x: %s)\n", ratio,
            (ratio >= 5 ? "met" : "NOT met")
        if (speed["c-import_dataset"] > 0)
            printf "  (with import_dataset() as it is: %.2fx)\n",
                speed["c-import_dataset"] / speed["python"]
    }
    printf "C peak RSS: %.1f MB (goal < 64 MB: %s)\n", mem["c"], (mem["c"] < 64 ? "met" : "NOT met")
}'
exit $status
