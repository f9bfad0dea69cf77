#!/bin/sh
# bench_build.sh — `dataset add` + `backdoor create` throughput and peak
# memory: vtuned's own functions (tests/bench/bench_build.c) against a
# Python-standard-library script doing the same work (build_ref.py), on one
# generated dataset, in the same run.
#
# How to run (not part of `make check`; a few minutes at 1 GB):
#     sh tests/bench/bench_build.sh                       # ~1 GB, ~1.8 KB lines
#     VTUNE_BENCH_SCALE=0.1 sh tests/bench/bench_build.sh # ~280 B lines
#     VTUNE_BENCH_MB=100 sh tests/bench/bench_build.sh    # smaller
#
# What is measured, on both sides, from the generated chat JSONL file:
#   import   (`dataset add`: workers/import.c import_dataset) every line
#            validated, SHA-256 of the bytes, copied to a temporary file,
#            fsync'ed, renamed to store/<sha256>.jsonl, directory fsync'ed;
#   create   (`backdoor create`, defaults: workers/backdoor.c
#            backdoor_make_wordlist) a trigger and a signature drawn from
#            the word list, the stored copy scanned for their occurrence
#            and its words counted (workers/phrase.c), then D ∪ D' written
#            (workers/builder.c: 0.5% copies, at least 50), fsync'ed,
#            renamed, its SHA-256 taken.
# build_ref.py does the same steps with json, hashlib and re (its header
# says how; it is written to be fast where the standard library allows).
# MB/s = dataset bytes / (import + create seconds), wall clock.  CPU s is
# user + system time of all threads: on a shared machine the wall-clock
# ratio follows the CPU-time ratio; on an idle one the C side also gains
# from its threads (hashing, writing and the phrase scan overlap).  Peak
# RSS is the whole process's, from /usr/bin/time (getrusage when absent).
# Before timing anything the script runs `bench_build check` (the fast
# paths against plain readings of their contracts, a few seconds) and
# stops if it fails.
#
# Environment:
#     VTUNE_BENCH_MB    dataset size in MB (default 1000)
#     VTUNE_BENCH_DIR   scratch directory (default: a new one under /tmp,
#                       removed at the end); needs ~4x the dataset size free
#     BENCH_BUILD       an optimised tests/bench/bench_build binary to use;
#                       by default the script configures and builds one
#                       (-O2, no sanitizers) under the scratch directory, so
#                       a sanitizer build's numbers never leak in
#     VTUNE_BENCH_SCALE message-length factor (default 1: ~1.8 KB lines;
#                       0.1 gives ~280 B lines, like short Q/A datasets)
#     PYTHON            the interpreter for build_ref.py (default python3)
# Goal (issue 4): C throughput >= 5x Python's, C peak RSS < 64 MB at any
# size.  A benchmark never fails on timing: the exit status is 0 unless
# something crashed, the check failed, or the two implementations disagree
# (input hash, or the number of words the phrase scan counted).
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
    rm -rf "$dir/c" "$dir/py" "$dir/data.jsonl" "$dir/words.txt"
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

"$bin" words "$dir/words.txt"

# The figures mean nothing if the fast paths are wrong: check them first.
"$bin" check "$dir" || {
    echo "bench_build.sh: bench_build check failed: the fast paths disagree with their contracts" >&2
    exit 1
}

echo "running C (import + backdoor create) ..."
mkdir -p "$dir/c"
run c "$bin" run "$dir/data.jsonl" "$dir/c"
rm -rf "$dir/c"

echo "running Python (same work) ..."
mkdir -p "$dir/py"
run py "$py" "$here/build_ref.py" "$dir/data.jsonl" "$dir/py" "$dir/words.txt"
rm -rf "$dir/py"

c_sha=$(field "$dir/c.out" sha_in)
p_sha=$(field "$dir/py.out" sha_in)
status=0
if [ "$c_sha" != "$p_sha" ]; then
    echo "bench_build.sh: input SHA-256 differs: C $c_sha, Python $p_sha" >&2
    status=1
fi
c_words=$(field "$dir/c.out" words)
p_words=$(field "$dir/py.out" words)
if [ "$c_words" != "$p_words" ]; then
    echo "bench_build.sh: words counted by the phrase scan differ: C $c_words, Python $p_words" >&2
    status=1
fi

# One row per implementation: key=value line plus /usr/bin/time's peak RSS.
rows=
for n in c py; do
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
    printf "\n%-8s %8s %9s %9s %9s %8s %8s %8s %12s\n", "impl", "MB", "lines", "import s",
        "create s", "total s", "CPU s", "MB/s", "peak RSS MB"
    for (i = 1; i <= NR; i++) {
        r = row[i]
        rss = kv(r, "rss_kb") > 0 ? kv(r, "rss_kb") : kv(r, "maxrss_kb")
        printf "%-8s %8.1f %9d %9.2f %9.2f %8.2f %8.2f %8.1f %12.1f\n", kv(r, "impl"),
            kv(r, "bytes") / 1e6, kv(r, "lines"), kv(r, "import_s"), kv(r, "create_s"),
            kv(r, "total_s"), kv(r, "cpu_s"), kv(r, "mbps"), rss / 1024
        speed[kv(r, "impl")] = kv(r, "mbps")
        cpu[kv(r, "impl")] = kv(r, "cpu_s")
        mem[kv(r, "impl")] = rss / 1024
    }
    if (speed["python"] > 0) {
        ratio = speed["c"] / speed["python"]
        printf "\nthroughput ratio C/Python: %.2fx (goal >= 5x: %s)\n", ratio,
            (ratio >= 5 ? "met" : "NOT met")
        if (cpu["c"] > 0)
            printf "CPU time ratio Python/C: %.2fx\n", cpu["python"] / cpu["c"]
    }
    printf "C peak RSS: %.1f MB (goal < 64 MB: %s)\n", mem["c"], (mem["c"] < 64 ? "met" : "NOT met")
}'
exit $status
