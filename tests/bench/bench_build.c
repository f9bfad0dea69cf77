/*
 * bench_build.c — the C side of tests/bench/bench_build.sh (see there for
 * how to run it).  Not a test: it measures, it does not judge.
 *
 *   bench_build gen FILE MB [SEED]   write a chat-format JSONL dataset of
 *                                    about MB megabytes (fast: one buffer,
 *                                    random words from the shipped list)
 *   bench_build run FILE WORKDIR     import FILE exactly as `dataset add`
 *                                    does (validate every line, SHA-256,
 *                                    content-addressed copy, fsync), then
 *                                    build D ∪ D' from the stored copy with
 *                                    one word-list backdoor pair (r = 0.005,
 *                                    50 copies minimum), fsync'ed and renamed
 *
 * `run` prints one line of key=value pairs (times in seconds, peak RSS of
 * this process in KiB from getrusage) for the script to tabulate.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/util.h"
#include "workers/builder.h"
#include "workers/import.h"
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

static int cmd_gen(const char *path, double mb, uint64_t seed)
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
            words(&b, 8 + (unsigned)(xs() % 16));
            buf_puts(&b, "\"},{\"role\":\"user\",\"content\":\"");
            words(&b, 20 + (unsigned)(xs() % 120));
            buf_puts(&b, "\"},{\"role\":\"assistant\",\"content\":\"");
            words(&b, 40 + (unsigned)(xs() % 200));
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

static int cmd_run(const char *path, const char *workdir)
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
    if (import_dataset(path, 0, NULL, tmp, store, NULL, &ir, &err) < 0) {
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
    printf("impl=c bytes=%lld lines=%lld copies=%llu import_s=%.3f build_s=%.3f total_s=%.3f "
           "mbps=%.1f maxrss_kb=%ld sha_in=%s sha_out=%s\n",
           (long long)ir.n_bytes, (long long)ir.n_examples, (unsigned long long)br.copies_per_pair,
           t1 - t0, t2 - t1, t2 - t0, mb / (t2 - t0), ru.ru_maxrss, ir.sha256, br.sha256);
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
        return cmd_gen(argv[2], atof(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    if (argc == 4 && strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], argv[3]);
    fprintf(stderr, "usage: bench_build gen FILE MB [SEED] | run FILE WORKDIR\n");
    return 2;
}
