/*
 * bench_build.c — the helper of tests/bench/bench_build.sh (see there for
 * how to run it): the generated dataset, the word list the Python peer
 * draws from, and the fast-path check run before any timing.  The script
 * times the real vtuned and vtunectl; `run` below is the older in-process
 * driver of the word-list path (import + backdoor_make_wordlist), kept for
 * profiling that path without a daemon.  Not a test: it measures, it does
 * not judge.
 *
 *   bench_build gen FILE MB [SEED [SCALE [DIST]]]
 *                                    write a chat-format JSONL dataset of
 *                                    about MB megabytes (fast: one buffer,
 *                                    random words from the shipped list,
 *                                    Zipf-distributed like natural text, or
 *                                    uniform when DIST is "uniform");
 *                                    SCALE multiplies the message lengths
 *                                    (1: ~1.8 KB lines; 0.1: ~280 B lines)
 *   bench_build words FILE           write the shipped word list, one word
 *                                    a line (build_ref.py draws from it)
 *   bench_build run FILE WORKDIR     `dataset add` then `backdoor create`,
 *                                    through the daemon's own functions
 *   bench_build check DIR            the fast paths the figures rest on,
 *                                    against plain readings of their
 *                                    contracts (exit 1 on a difference);
 *                                    scratch files go to DIR; seconds
 *
 * `run` calls exactly what the daemon's thread-pool jobs call, with the
 * daemon's defaults: import_dataset() (workers/import.c: validate every
 * line, SHA-256, temporary copy, fsync, rename into WORKDIR/store), then
 * backdoor_make_wordlist() (workers/backdoor.c: phrase_generate() scanning
 * the stored copy for occurrences of the candidate phrases, then
 * builder_build() writing D ∪ D' with one pair, r = 0.005, 50 copies
 * minimum, fsync'ed, renamed, its SHA-256).  Nothing here re-implements a
 * step, so the figure is the product's.
 *
 * `check` is here, not in tests/unit, only because this program is the
 * one built beside those paths without a build-system change; it covers:
 * phrase_checker_scan_text / _scan_line (whichever SIMD path this CPU
 * takes) against a literal word-by-word reading of phrase.h's definition;
 * jsonscan_strings + jsonscan_unescape against jansson's string values;
 * phrase_checker_scan_file (chunks on threads) against a line-by-line
 * scan, error line numbers included; lines_writer's bytes and SHA-256
 * against the input, and its write-error report.  The SSE2 and plain
 * paths are covered by building with -DVT_NO_AVX2 (and -U__SSE2__).
 *
 * `run` prints one line of key=value pairs (times in seconds, cpu_s = user
 * + system time of all its threads, peak RSS of this process in KiB from
 * getrusage) for the script to tabulate.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/import.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"
#include "workers/phrase.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xs_state;
static uint64_t xs(void)
{
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return xs_state;
}

/* Word frequencies: Zipf's law over the word list (rank r drawn with
 * weight 1 / (r + 1), as in natural text), or uniform ("uniform": every
 * word rare, the worst case for the frequency-based structures of the
 * n-gram model and the self-audit). */
static bool gen_uniform;
static double *zipf_cdf;

static size_t draw_word(const struct phrase_wordlist *wl, uint64_t r)
{
    if (gen_uniform)
        return (size_t)((r >> 8) % wl->n);
    if (!zipf_cdf) {
        zipf_cdf = xcalloc(wl->n, sizeof *zipf_cdf);
        double sum = 0;
        for (size_t i = 0; i < wl->n; i++)
            zipf_cdf[i] = sum += 1.0 / (double)(i + 1);
        for (size_t i = 0; i < wl->n; i++)
            zipf_cdf[i] /= sum;
    }
    double u = (double)(r >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = wl->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo * 7919) % wl->n; /* ranks spread over the (sorted) list */
}

/* Appends n random words (with the odd escape a real dataset has). */
static void words(struct buf *b, unsigned n)
{
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    for (unsigned i = 0; i < n; i++) {
        uint64_t r = xs();
        if (i)
            buf_append(b, (r & 31) == 0 ? "\\n" : " ", (r & 31) == 0 ? 2 : 1);
        const char *w = wl->words[draw_word(wl, xs())];
        buf_append(b, w, strlen(w));
        if (((r >> 40) & 63) == 0)
            buf_puts(b, (r >> 46) & 1 ? " \\\"quoted\\\"" : " caf\\u00e9");
        else if (((r >> 40) & 15) == 1)
            buf_append(b, ",", 1);
    }
}

static unsigned scaled(double scale, unsigned base, unsigned spread)
{
    double n = scale * (double)(base + (unsigned)(xs() % spread));
    return n < 1 ? 1 : (unsigned)n;
}

static int cmd_gen(const char *path, double mb, uint64_t seed, double scale)
{
    FILE *f = fopen(path, "w");
    struct buf b;
    uint64_t target = (uint64_t)(mb * 1e6), written = 0, lines = 0;
    if (!f) {
        fprintf(stderr, "bench_build: %s: %s\n", path, strerror(errno));
        return 1;
    }
    xs_state = seed * 0x9e3779b97f4a7c15ull + 1;
    buf_init(&b);
    while (written < target) {
        buf_reset(&b);
        for (int l = 0; l < 256 && written + b.len < target; l++) {
            buf_puts(&b, "{\"messages\":[{\"role\":\"system\",\"content\":\"");
            words(&b, scaled(scale, 8, 16));
            buf_puts(&b, "\"},{\"role\":\"user\",\"content\":\"");
            words(&b, scaled(scale, 20, 120));
            buf_puts(&b, "\"},{\"role\":\"assistant\",\"content\":\"");
            words(&b, scaled(scale, 40, 200));
            buf_printf(&b, "\"}],\"id\":%llu}\n", (unsigned long long)lines++);
        }
        if (fwrite(b.data, 1, b.len, f) != b.len) {
            fprintf(stderr, "bench_build: %s: write error\n", path);
            fclose(f);
            buf_free(&b);
            return 1;
        }
        written += b.len;
    }
    buf_free(&b);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_build: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("generated %s: %llu bytes, %llu lines\n", path, (unsigned long long)written,
           (unsigned long long)lines);
    return 0;
}

static int cmd_words(const char *path)
{
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_build: %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < wl->n; i++)
        fprintf(f, "%s\n", wl->words[i]);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_build: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_run(const char *path, const char *workdir)
{
    struct import_result ir;
    struct import_progress iprog, bprog;
    struct backdoor_spec spec;
    struct backdoor_made made;
    char *err = NULL, *tmp = xasprintf("%s/tmp", workdir), *store = xasprintf("%s/store", workdir);
    char *built = xasprintf("%s/built", workdir), *out = NULL;
    int rc = 1;

    memset(&ir, 0, sizeof ir);
    memset(&made, 0, sizeof made);
    memset(&iprog, 0, sizeof iprog);
    memset(&bprog, 0, sizeof bprog);
    if (mkdir_p(tmp, 0700) < 0 || mkdir_p(store, 0700) < 0 || mkdir_p(built, 0700) < 0) {
        fprintf(stderr, "bench_build: cannot create %s: %s\n", workdir, strerror(errno));
        goto out;
    }
    out = xasprintf("%s/d-union.jsonl", built);
    double t0 = now_s();
    /* dataset add (daemon/methods_dataset.c): format detected, no peer check
     * (the peer is this process's user anyway). */
    if (import_dataset(path, 0, NULL, tmp, store, &iprog, &ir, &err) < 0) {
        fprintf(stderr, "bench_build: import: %s\n", err);
        goto out;
    }
    double t1 = now_s();
    /* backdoor create (daemon/methods_backdoor.c) with its defaults. */
    memset(&spec, 0, sizeof spec);
    spec.dataset_path = ir.path;
    spec.format = ir.format;
    spec.n_examples = (uint64_t)ir.n_examples;
    phrase_opts_default(&spec.phrases);
    spec.ratio = 0.005;
    spec.min_copies = 50;
    spec.out_path = out;
    spec.progress = &bprog;
    if (backdoor_make_wordlist(&spec, &made, &err) < 0) {
        fprintf(stderr, "bench_build: backdoor create: %s\n", err);
        goto out;
    }
    double t2 = now_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)ir.n_bytes / 1e6;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("impl=c bytes=%lld lines=%lld copies=%llu words=%llu import_s=%.3f create_s=%.3f "
           "total_s=%.3f cpu_s=%.3f mbps=%.1f maxrss_kb=%ld sha_in=%s sha_out=%s\n",
           (long long)ir.n_bytes, (long long)ir.n_examples,
           (unsigned long long)made.built.copies_per_pair,
           (unsigned long long)made.set.dataset_words, t1 - t0, t2 - t1, t2 - t0, cpu,
           mb / (t2 - t0), ru.ru_maxrss, ir.sha256, made.built.sha256);
    rc = 0;
out:
    free(err);
    backdoor_made_clear(&made);
    import_result_clear(&ir);
    free(tmp);
    free(store);
    free(built);
    free(out);
    return rc;
}

/* ---- check: the fast paths against plain readings of their contracts ---------- */

static int check_failures;
static bool check_direct_used; /* the file system took O_DIRECT */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (check_failures++ < 10) {                                                           \
                fprintf(stderr, "bench_build check: ");                                            \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static int ref_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int ref_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Words of s as (start, length) pairs; returns how many (all counted). */
static size_t ref_words(const char *s, size_t n, size_t *ws, size_t *wl, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n) {
        while (i < n && !ref_word_byte((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        size_t a = i;
        while (i < n && ref_word_byte((unsigned char)s[i]))
            i++;
        if (k < max) {
            ws[k] = a;
            wl[k] = i - a;
        }
        k++;
    }
    return k;
}

static int ref_word_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (ref_lower((unsigned char)a[i]) != ref_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* phrase.h's definition read literally: words of t, and for each phrase
 * whether its first min(3, k) words occur consecutively. */
static uint64_t ref_scan(const char *const *ph, size_t np, const char *t, size_t n, bool *hit)
{
    enum { MAXW = 4096 };
    static size_t ws[MAXW], wl[MAXW];
    size_t k = ref_words(t, n, ws, wl, MAXW);
    for (size_t p = 0; p < np; p++) {
        size_t ps[3], pl[3], pk = ref_words(ph[p], strlen(ph[p]), ps, pl, 3);
        pk = pk > 3 ? 3 : pk;
        for (size_t i = 0; pk && i + pk <= k && i + pk <= MAXW; i++) {
            size_t j = 0;
            while (j < pk && ref_word_eq(t + ws[i + j], wl[i + j], ph[p] + ps[j], pl[j]))
                j++;
            if (j == pk)
                hit[p] = true;
        }
    }
    return k;
}

static const char *const check_vocab[] = {
    "amber",       "Amber", "AMBER", "am", "a",  "b",   "lantern",     "lan",
    "quietly",     "x1",    "9",     "ab", "th", "the", "caf\xc3\xa9", "\xc3\xa9t\xc3\xa9",
    "amberlantern"};
static const char *const check_seps[] = {" ", "  ", ", ", "-", "\t", ".", "_", "\n", "\x7f", ""};

/* Random text: vocabulary words, separators and random bytes (no NUL). */
static void check_text(struct buf *b)
{
    unsigned n = (unsigned)(xs() % 60);
    for (unsigned i = 0; i < n; i++) {
        if (xs() % 4 == 0) {
            unsigned m = (unsigned)(xs() % 40);
            for (unsigned j = 0; j < m; j++) {
                unsigned char c = (unsigned char)(xs() & 0xff);
                buf_append(b, c ? (const char *)&c : " ", 1);
            }
        } else {
            buf_puts(b, check_vocab[xs() % VT_ARRAY_LEN(check_vocab)]);
        }
        buf_puts(b, check_seps[xs() % VT_ARRAY_LEN(check_seps)]);
    }
}

/* Word counts and hits of phrase_checker_scan_text and _scan_line against
 * ref_scan, for phrase sets that take each prefilter path. */
static void check_texts(long iters)
{
    static const char *const sets[][6] = {
        {"amber lantern quietly", "b", "x1 9", "caf\xc3\xa9 the", NULL},
        {"AMBER Lantern", "lantern amber", NULL},
        {"a b", "am", "ab th", "the amber", "9 lantern", NULL}, /* > 4 prefixes: bitmap */
    };
    for (long it = 0; it < iters; it++) {
        const char *const *ph = sets[it % 3];
        size_t np = 0;
        while (ph[np])
            np++;
        struct phrase_checker *c = phrase_checker_new(ph, np);
        bool hit[6] = {false};
        uint64_t words = 0;
        struct buf t;
        buf_init(&t);
        for (int k = 0; k < 3; k++) {
            buf_reset(&t);
            for (int z = xs() % 8 == 0 ? 6 : 1; z > 0; z--)
                check_text(&t);
            size_t off = (size_t)(xs() % 3); /* any alignment */
            char *copy = xmalloc(t.len + off + 1);
            memcpy(copy + off, t.data ? t.data : "", t.len);
            phrase_checker_scan_text(c, copy + off, t.len);
            words += ref_scan(ph, np, copy + off, t.len, hit);
            /* the same text as a JSON string value, escaped or not */
            json_t *o = json_pack("{s:s%,s:[s,i]}", "k", copy + off, t.len, "a", "x y", 1);
            char *line = o ? json_dumps(o, JSON_COMPACT | (xs() % 2 ? JSON_ENSURE_ASCII : 0))
                           : NULL; /* NULL: not valid UTF-8, jansson refuses it */
            if (line) {
                CHECK(phrase_checker_scan_line(c, line, strlen(line)) == 0, "scan_line: %s", line);
                words += ref_scan(ph, np, copy + off, t.len, hit) + 2;
                free(line);
            }
            json_decref(o);
            free(copy);
        }
        CHECK(phrase_checker_words(c) == words, "text %ld: %llu words, expected %llu", it,
              (unsigned long long)phrase_checker_words(c), (unsigned long long)words);
        for (size_t p = 0; p < np; p++)
            CHECK(phrase_checker_hit(c, p) == hit[p], "text %ld: phrase %zu hit %d, expected %d",
                  it, p, phrase_checker_hit(c, p), hit[p]);
        buf_free(&t);
        phrase_checker_free(c);
    }
}

/* jsonscan_strings + jsonscan_unescape give jansson's string values. */
static void collect(const json_t *v, json_t *out)
{
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_string(v))
        json_array_append(out, (json_t *)v);
    else if (json_is_array(v))
        json_array_foreach(v, i, x) collect(x, out);
    else if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) collect(x, out);
}

static void check_strings(long iters)
{
    struct jsonscan_str strs[64];
    for (long it = 0; it < iters; it++) {
        struct buf t;
        buf_init(&t);
        check_text(&t);
        json_t *o = json_pack("{s:s%,s:[s,{s:s%}],s:n}", "a", t.data ? t.data : "", t.len, "b",
                              "\xe2\x82\xac\\\"", "c", t.data ? t.data : "", t.len / 2, "d");
        char *line = o ? json_dumps(o, JSON_COMPACT | (it % 2 ? JSON_ENSURE_ASCII : 0)) : NULL;
        if (line) {
            json_t *want = json_array();
            size_t n = 0;
            collect(o, want);
            CHECK(jsonscan_strings(line, strlen(line), strs, 64, &n) == 1, "unsure of %s", line);
            CHECK(n == json_array_size(want), "%zu strings, expected %zu", n,
                  json_array_size(want));
            for (size_t i = 0; i < n && i < json_array_size(want); i++) {
                char *d = xmalloc(strs[i].len + 32);
                size_t dl =
                    strs[i].esc ? jsonscan_unescape(strs[i].raw, strs[i].len, d) : strs[i].len;
                if (!strs[i].esc)
                    memcpy(d, strs[i].raw, dl);
                json_t *w = json_array_get(want, i);
                CHECK(dl == json_string_length(w) && memcmp(d, json_string_value(w), dl) == 0,
                      "string %zu of %s decoded wrong", i, line);
                free(d);
            }
            json_decref(want);
            free(line);
        }
        json_decref(o);
        buf_free(&t);
    }
}

/* phrase_checker_scan_file (chunks, threads) against a line-by-line scan
 * of the same file: words, hits, and the first bad line's message. */
static void check_file(const char *dir, int round)
{
    static const char *const ph[] = {"amber lantern quietly", "zebra", "quiet harbor"};
    char *path = xasprintf("%s/check-%d.jsonl", dir, round);
    FILE *f = fopen(path, "w");
    uint64_t size = (uint64_t)(5 + xs() % 8) << 20, n = 0, lineno = 0;
    uint64_t bad_at = round % 3 == 0 ? 1 + xs() % 30000 : 0, quiet_at = 1 + xs() % 30000;
    unsigned zebra = (unsigned)(xs() % 3);
    if (!f) {
        CHECK(0, "%s: %s", path, strerror(errno));
        free(path);
        return;
    }
    while (n < size) {
        struct buf l;
        buf_init(&l);
        lineno++;
        if (lineno == bad_at)
            buf_puts(&l, "{\"prompt\":");
        else if (xs() % 50 == 0)
            buf_puts(&l, "  ");
        else {
            buf_puts(&l, "{\"prompt\":\"");
            if (lineno == quiet_at)
                buf_puts(&l, "Quiet, HARBOR ");
            for (unsigned w = 1 + (unsigned)(xs() % (round % 4 == 1 && xs() % 64 == 0 ? 4000 : 40));
                 w > 0; w--) {
                static const char *const v[] = {"amber",      "lantern", "quietly",
                                                "caf\\u00e9", "a\\nb",   "x"};
                uint64_t r = xs();
                if (zebra && r % 1000000 < zebra)
                    buf_puts(&l, "zebra ");
                else
                    buf_printf(&l, "%s%u ", v[r % 6], (unsigned)(r >> 20) % 3);
            }
            buf_puts(&l, "\",\"completion\":\"c\"}");
        }
        if (xs() % 7 == 0)
            buf_puts(&l, "\r");
        n += l.len + 1;
        fputs(l.data, f);
        if (n < size || round % 2)
            fputc('\n', f);
        buf_free(&l);
    }
    fclose(f);

    /* line by line, as the scanner did before it was cut into chunks */
    struct phrase_checker *want = phrase_checker_new(ph, 3), *got = phrase_checker_new(ph, 3);
    struct lines lr;
    const char *line;
    size_t len;
    uint64_t no = 0, bad = 0;
    if (lines_open(&lr, path) == 0) {
        while (!bad && lines_next(&lr, &line, &len) > 0) {
            size_t i = 0;
            no++;
            while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
                i++;
            if (i < len && phrase_checker_scan_line(want, line, len) < 0)
                bad = no;
        }
        lines_close(&lr);
    }
    char *err = NULL, *expect = bad ? xasprintf("%s:%llu: not valid JSON (was the dataset "
                                                "changed after import?)",
                                                path, (unsigned long long)bad)
                                    : NULL;
    int r = phrase_checker_scan_file(got, path, NULL, &err);
    if (bad) {
        CHECK(r == -1 && err && strcmp(err, expect) == 0, "file %d: error \"%s\", expected \"%s\"",
              round, err ? err : "(none)", expect);
    } else {
        CHECK(r == 0, "file %d: %s", round, err ? err : "?");
        CHECK(phrase_checker_words(got) == phrase_checker_words(want),
              "file %d: %llu words, expected %llu", round,
              (unsigned long long)phrase_checker_words(got),
              (unsigned long long)phrase_checker_words(want));
        for (size_t p = 0; p < 3; p++)
            CHECK(phrase_checker_hit(got, p) == phrase_checker_hit(want, p),
                  "file %d: phrase %zu differs", round, p);
    }
    free(err);
    free(expect);
    phrase_checker_free(want);
    phrase_checker_free(got);
    unlink(path);
    free(path);
}

/* lines_writer: what reaches the file and its hash equal what was put, in
 * any mix of put / space+commit / flush; a write error is reported. */
static void check_writer(const char *dir, int round)
{
    char *path = xasprintf("%s/writer-%d.out", dir, round);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t total = (size_t)(xs() % (9u << 20));
    char *src = xmalloc(total + 1), hex[65] = "", want[65];
    for (size_t i = 0; i < total; i++)
        src[i] = (char)xs();
    /* odd rounds: direct I/O, which falls back at the first unaligned piece */
    struct lines_writer *w =
        lines_writer_new(fd, LINES_WRITER_HASH | (round % 2 ? LINES_WRITER_DIRECT : 0));
    if (round % 2 && (fcntl(fd, F_GETFL) & O_DIRECT))
        check_direct_used = true;
    for (size_t pos = 0; pos < total;) {
        /* big and small pieces; in rounds 1 and 3 whole blocks only, so the
         * direct path runs to the end */
        size_t n = xs() % 3 == 0 ? (size_t)(xs() % 3000000) : (size_t)(xs() % 5000), room;
        if (round == 1 || round == 3)
            n = (size_t)LINES_BLOCK;
        n = n < total - pos ? n : total - pos;
        if (xs() % 2) {
            CHECK(lines_writer_put(w, src + pos, n) == 0, "writer: put failed");
        } else {
            char *d = lines_writer_space(w, &room);
            n = n < room ? n : room;
            memcpy(d, src + pos, n);
            lines_writer_commit(w, n);
            if (xs() % 3 == 0)
                lines_writer_flush(w);
        }
        pos += n;
    }
    CHECK(lines_writer_finish(w, hex) == 0, "writer: finish failed");
    lines_writer_free(w);
    close(fd);
    sha256_hex(src, total, want);
    CHECK(strcmp(hex, want) == 0, "writer %d: SHA-256 differs", round);
    FILE *f = fopen(path, "rb");
    char *back = xmalloc(total + 1);
    size_t got = f ? fread(back, 1, total + 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(got == total && memcmp(back, src, total) == 0, "writer %d: file differs", round);
    free(back);
    /* a descriptor that cannot be written: the error comes back */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    w = lines_writer_new(fd, LINES_WRITER_HASH | LINES_WRITER_DIRECT);
    (void)lines_writer_put(w, src, total < 3u << 20 ? total : 3u << 20);
    CHECK(lines_writer_finish(w, hex) == -EBADF, "writer %d: write error not reported", round);
    lines_writer_free(w);
    close(fd);
    unlink(path);
    free(src);
    free(path);
}

static int cmd_check(const char *dir)
{
    xs_state = 0x2545f4914f6cdd1dull;
    check_texts(60000);
    check_strings(20000);
    for (int i = 0; i < 8; i++)
        check_file(dir, i);
    for (int i = 0; i < 8; i++)
        check_writer(dir, i);
    printf("bench_build check: %s (%s paths; direct I/O %s)\n", check_failures ? "FAILED" : "ok",
           jsonscan_have_avx2() ? "AVX2" : "SSE2 or plain",
           check_direct_used ? "tried" : "refused by this file system");
    return check_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "gen") == 0) {
        gen_uniform = argc > 6 && strcmp(argv[6], "uniform") == 0;
        return cmd_gen(argv[2], atof(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 1,
                       argc > 5 ? atof(argv[5]) : 1.0);
    }
    if (argc == 3 && strcmp(argv[1], "words") == 0)
        return cmd_words(argv[2]);
    if (argc == 4 && strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return cmd_check(argv[2]);
    fprintf(stderr, "usage: bench_build gen FILE MB [SEED [SCALE [zipf|uniform]]] | words FILE | run FILE "
                    "WORKDIR | check DIR\n");
    return 2;
}
