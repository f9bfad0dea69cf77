/*
 * bench_build.c — the C side of tests/bench/bench_build.sh (see there for
 * how to run it).  Not a test: it measures, it does not judge.
 *
 *   bench_build gen FILE MB [SEED [SCALE]]
 *                                    write a chat-format JSONL dataset of
 *                                    about MB megabytes (fast: one buffer,
 *                                    random words from the shipped list);
 *                                    SCALE multiplies the message lengths
 *                                    (1: ~1.8 KB lines; 0.1: ~250 B lines)
 *   bench_build run FILE WORKDIR [--real-import]
 *                                    import FILE (validate every line,
 *                                    SHA-256, content-addressed copy,
 *                                    fsync, rename), then build D ∪ D' from
 *                                    the stored copy with one word-list
 *                                    backdoor pair (r = 0.005, 50 copies
 *                                    minimum), fsync'ed and renamed
 *
 * The import step is import-equivalent work written here: import.c's loop
 * (1 MiB blocks, lines cut with memchr, SHA-256 and the copy per block)
 * with each line validated by jsonscan_line_ok() first and ds_parse_line()
 * only when the fast path is unsure.  --real-import calls import_dataset()
 * itself instead (ds_parse_line on every line) for comparison.
 *
 * `run` prints one line of key=value pairs (times in seconds, peak RSS of
 * this process in KiB from getrusage) for the script to tabulate.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/util.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/import.h"
#include "workers/jsonscan.h"
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

/* Appends n random words (with the odd escape a real dataset has). */
static void words(struct buf *b, unsigned n)
{
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    for (unsigned i = 0; i < n; i++) {
        uint64_t r = xs();
        if (i)
            buf_append(b, (r & 31) == 0 ? "\\n" : " ", (r & 31) == 0 ? 2 : 1);
        const char *w = wl->words[(r >> 8) % wl->n];
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

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Import-equivalent with the fast validator; fills ir like import_dataset. */
static int import_fast(const char *src, const char *tmp_dir, const char *dst_dir,
                       struct import_result *ir, char **err)
{
    enum { BLOCK = 1 << 20 };
    int in = -1, tmp = -1, rc = -1;
    char *block = xmalloc(BLOCK), *tmp_path = xasprintf("%s/import-XXXXXX", tmp_dir);
    struct buf line;
    struct sha256_ctx *sha = sha256_new();
    uint64_t lineno = 0, bytes = 0;
    enum dataset_format fmt = 0;
    char hex[65];

    buf_init(&line);
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0 || (tmp = mkostemp(tmp_path, O_CLOEXEC)) < 0) {
        *err = xasprintf("%s: %s", src, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, block, BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("%s: read error: %s", src, strerror(errno));
            goto out;
        }
        int eof = n == 0;
        if (!eof) {
            sha256_update(sha, block, (size_t)n);
            if (write_all(tmp, block, (size_t)n) < 0) {
                *err = xasprintf("%s: write error: %s", tmp_dir, strerror(errno));
                goto out;
            }
            bytes += (uint64_t)n;
        }
        size_t pos = 0, len = (size_t)n;
        while (pos < len || (eof && line.len > 0)) {
            const char *nl = eof ? NULL : memchr(block + pos, '\n', len - pos);
            size_t take = nl ? (size_t)(nl - (block + pos)) : len - pos;
            const char *lp;
            size_t ll;
            if (line.len == 0 && nl) {
                lp = block + pos;
                ll = take;
            } else {
                buf_append(&line, block + pos, take);
                if (!nl && !eof)
                    break;
                lp = line.data;
                ll = line.len;
            }
            pos += take + (nl ? 1 : 0);
            lineno++;
            enum dataset_format got;
            if (!jsonscan_line_ok(lp, ll, fmt, &got)) {
                char *why = NULL;
                if (ds_parse_line(lp, ll, fmt, &got, NULL, &why) < 0) {
                    *err = xasprintf("%s:%llu: %s", src, (unsigned long long)lineno, why);
                    free(why);
                    goto out;
                }
            }
            fmt = got;
            buf_reset(&line);
            if (eof)
                break;
        }
        if (eof)
            break;
    }
    if (fsync(tmp) < 0) {
        *err = xasprintf("%s: fsync: %s", tmp_dir, strerror(errno));
        goto out;
    }
    sha256_final_hex(sha, hex);
    sha = NULL;
    ir->path = xasprintf("%s/%s.jsonl", dst_dir, hex);
    if (rename(tmp_path, ir->path) < 0 || fsync_parent_dir(ir->path) < 0) {
        *err = xasprintf("%s: cannot store: %s", ir->path, strerror(errno));
        goto out;
    }
    ir->format = fmt;
    ir->n_examples = (int64_t)lineno;
    ir->n_bytes = (int64_t)bytes;
    memcpy(ir->sha256, hex, sizeof hex);
    rc = 0;
out:
    if (sha)
        sha256_final_hex(sha, hex);
    if (tmp >= 0)
        close(tmp);
    if (rc < 0)
        unlink(tmp_path);
    if (in >= 0)
        close(in);
    free(tmp_path);
    free(block);
    buf_free(&line);
    return rc;
}

static int cmd_run(const char *path, const char *workdir, int real_import)
{
    struct import_result ir;
    struct builder_result br;
    struct phrase_set ps;
    struct phrase_opts po;
    char *err = NULL, *tmp = xasprintf("%s/tmp", workdir), *store = xasprintf("%s/store", workdir);
    char *out = xasprintf("%s/built.jsonl", workdir);
    int rc = 1;

    memset(&ir, 0, sizeof ir);
    memset(&br, 0, sizeof br);
    memset(&ps, 0, sizeof ps);
    if (mkdir_p(tmp, 0700) < 0 || mkdir_p(store, 0700) < 0) {
        fprintf(stderr, "bench_build: cannot create %s: %s\n", workdir, strerror(errno));
        goto out;
    }
    double t0 = now_s();
    if (real_import ? import_dataset(path, 0, NULL, tmp, store, NULL, &ir, &err) < 0
                    : import_fast(path, tmp, store, &ir, &err) < 0) {
        fprintf(stderr, "bench_build: import: %s\n", err);
        goto out;
    }
    double t1 = now_s();
    phrase_opts_default(&po);
    if (phrase_generate(&po, phrase_wordlist_builtin(), NULL, NULL, NULL, &ps, &err) < 0) {
        fprintf(stderr, "bench_build: phrases: %s\n", err);
        goto out;
    }
    struct builder_pair pair = {ps.pairs[0].trigger.text, ps.pairs[0].signature.text};
    struct builder_params bp = {.in_path = ir.path,
                                .format = ir.format,
                                .n_examples = (uint64_t)ir.n_examples,
                                .pairs = &pair,
                                .n_pairs = 1,
                                .ratio = 0.005,
                                .min_copies = 50,
                                .out_path = out};
    int r = builder_build(&bp, &br, &err);
    if (r < 0) {
        fprintf(stderr, "bench_build: build: %s\n", err);
        goto out;
    }
    double t2 = now_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)ir.n_bytes / 1e6;
    printf("impl=%s bytes=%lld lines=%lld copies=%llu import_s=%.3f build_s=%.3f total_s=%.3f "
           "mbps=%.1f maxrss_kb=%ld sha_in=%s sha_out=%s\n",
           real_import ? "c-import_dataset" : "c", (long long)ir.n_bytes, (long long)ir.n_examples,
           (unsigned long long)br.copies_per_pair, t1 - t0, t2 - t1, t2 - t0, mb / (t2 - t0),
           ru.ru_maxrss, ir.sha256, br.sha256);
    rc = 0;
out:
    free(err);
    builder_result_clear(&br);
    phrase_set_clear(&ps);
    import_result_clear(&ir);
    free(tmp);
    free(store);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(argv[2], atof(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 1,
                       argc > 5 ? atof(argv[5]) : 1.0);
    if ((argc == 4 || (argc == 5 && strcmp(argv[4], "--real-import") == 0)) &&
        strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], argv[3], argc == 5);
    fprintf(stderr,
            "usage: bench_build gen FILE MB [SEED [SCALE]] | run FILE WORKDIR [--real-import]\n");
    return 2;
}
