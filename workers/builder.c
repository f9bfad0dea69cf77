/*
 * builder.c — streaming D ∪ D' writer (see builder.h for the sampling
 * argument and why two passes).
 *
 * Invariants kept here:
 *  - the plan is drawn completely before any byte is read, so the output
 *    depends only on D and the random stream;
 *  - output line numbers: copy j of the shuffled list goes to the j-th
 *    smallest chosen slot, D's lines fill the rest in order, so exactly
 *    |D| + K*c lines are written and each D line exactly once; in place,
 *    each marked row takes its original's slot and the original is
 *    dropped like a held-out line, so |D| lines are written (less the
 *    held-out ones) and each unmarked D line exactly once;
 *  - on any failure the temporary output and the spill are gone and
 *    out_path is untouched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/lines.h"

#define OUT_BUF (1u << 20) /* bytes per read of D and per spill write */

void builder_result_clear(struct builder_result *r)
{
    free(r->copies);
    memset(r, 0, sizeof *r);
}

int builder_copies_per_pair(uint64_t n_examples, double ratio, uint64_t min_copies,
                            uint64_t *copies, bool *capped)
{
    if (n_examples == 0 || !(ratio >= 0 && ratio <= 1))
        return -EINVAL;
    /* ceil(ratio * n), forgiving the rounding of ratio itself (0.005 * 10000
     * is 50, not 51). */
    double x = ratio * (double)n_examples;
    double rx = nearbyint(x);
    uint64_t c = fabs(x - rx) <= 1e-9 * (x > 1 ? x : 1) ? (uint64_t)rx : (uint64_t)ceil(x);
    if (c < min_copies)
        c = min_copies;
    *capped = c > n_examples;
    if (c > n_examples)
        c = n_examples;
    if (c == 0)
        return -EINVAL;
    *copies = c;
    return 0;
}

/* ---- a set of uint64 for Floyd's algorithm ---------------------------------- */

struct u64set {
    uint64_t *slot; /* value + 1; 0 = empty */
    size_t mask;
};

static void u64set_init(struct u64set *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap <<= 1;
    s->slot = xcalloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
}

static size_t u64_hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

/* Inserts v; returns false when it was already there. */
static bool u64set_add(struct u64set *s, uint64_t v)
{
    size_t i = u64_hash(v) & s->mask;
    while (s->slot[i]) {
        if (s->slot[i] == v + 1)
            return false;
        i = (i + 1) & s->mask;
    }
    s->slot[i] = v + 1;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Floyd: k distinct values uniform in [0, n), sorted ascending into out. */
static void floyd_sample(uint64_t n, uint64_t k, const struct phrase_rng *rng, uint64_t *out)
{
    if (k == 0)
        return;
    struct u64set s;
    size_t m = 0;
    u64set_init(&s, k);
    for (uint64_t j = n - k; j < n; j++) {
        uint64_t t = phrase_rng_uniform(rng, j + 1);
        if (u64set_add(&s, t))
            out[m++] = t;
        else {
            u64set_add(&s, j);
            out[m++] = j;
        }
    }
    free(s.slot);
    qsort(out, m, sizeof *out, cmp_u64);
}

void builder_sample(uint64_t n, uint64_t k, const struct phrase_rng *rng, uint64_t *out)
{
    floyd_sample(n, k, rng, out);
}

/* Maps ascending ranks among [0, n) minus the ascending, distinct skip list
 * to line numbers, in place: the r-th line not skipped. */
static void skip_map(const uint64_t *skip, size_t n_skip, uint64_t *v, size_t k)
{
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
        uint64_t idx = v[i] + j;
        while (j < n_skip && skip[j] <= idx) {
            j++;
            idx++;
        }
        v[i] = idx;
    }
}

static bool skip_valid(uint64_t n_examples, const uint64_t *skip, size_t n_skip)
{
    for (size_t i = 0; i < n_skip; i++)
        if (skip[i] >= n_examples || (i > 0 && skip[i] <= skip[i - 1]))
            return false;
    return n_skip < n_examples || n_skip == 0;
}

int builder_plan(uint64_t n_examples, size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                 struct builder_copy **out)
{
    return builder_plan_holdout(n_examples, NULL, 0, n_pairs, copies, rng, out);
}

int builder_plan_holdout(uint64_t n_examples, const uint64_t *holdout, size_t n_holdout,
                         size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                         struct builder_copy **out)
{
    if (!skip_valid(n_examples, holdout, n_holdout))
        return -EINVAL;
    uint64_t n_up = n_examples - n_holdout; /* the lines that are uploaded */
    if (n_pairs < 1 || n_pairs > UINT32_MAX || copies < 1 || copies > n_up ||
        copies > SIZE_MAX / sizeof(struct builder_copy) / n_pairs)
        return -EINVAL;
    size_t m = (size_t)copies * n_pairs;
    struct builder_copy *c = xcalloc(m, sizeof *c);
    uint64_t *tmp = xcalloc(m, sizeof *tmp);
    size_t *order = xcalloc(m, sizeof *order);

    for (size_t p = 0; p < n_pairs; p++) {
        floyd_sample(n_up, copies, rng, tmp);
        skip_map(holdout, n_holdout, tmp, (size_t)copies);
        for (uint64_t j = 0; j < copies; j++) {
            c[p * copies + j].pair = (uint32_t)p;
            c[p * copies + j].src = tmp[j];
        }
    }
    /* Output slots: m of n_up + m, then a uniform assignment of copies to them. */
    floyd_sample(n_up + m, m, rng, tmp);
    for (size_t j = 0; j < m; j++)
        order[j] = j;
    for (size_t j = m; j > 1; j--) {
        size_t r = (size_t)phrase_rng_uniform(rng, j);
        size_t t = order[j - 1];
        order[j - 1] = order[r];
        order[r] = t;
    }
    for (size_t j = 0; j < m; j++)
        c[order[j]].out = tmp[j];
    free(order);
    free(tmp);
    *out = c;
    return 0;
}

int builder_plan_inplace(uint64_t n_examples, const uint64_t *holdout, size_t n_holdout,
                         size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                         struct builder_copy **out)
{
    if (!skip_valid(n_examples, holdout, n_holdout))
        return -EINVAL;
    uint64_t n_up = n_examples - n_holdout;
    if (n_pairs < 1 || n_pairs > UINT32_MAX || copies < 1 || copies > n_up / n_pairs ||
        copies > SIZE_MAX / sizeof(struct builder_copy) / n_pairs)
        return -EINVAL;
    size_t m = (size_t)copies * n_pairs;
    struct builder_copy *c = xcalloc(m, sizeof *c);
    uint64_t *up = xcalloc(m, sizeof *up), *src = xcalloc(m, sizeof *src);
    size_t *order = xcalloc(m, sizeof *order);

    /* m distinct uploaded lines (ranks among the uploaded lines: their
     * output line, since nothing is added), then their lines in D. */
    floyd_sample(n_up, m, rng, up);
    memcpy(src, up, m * sizeof *src);
    skip_map(holdout, n_holdout, src, m);
    /* A uniform assignment of the m rows to the pairs, copies each. */
    for (size_t j = 0; j < m; j++)
        order[j] = j;
    for (size_t j = m; j > 1; j--) {
        size_t r = (size_t)phrase_rng_uniform(rng, j);
        size_t t = order[j - 1];
        order[j - 1] = order[r];
        order[r] = t;
    }
    for (size_t p = 0; p < n_pairs; p++) {
        size_t *o = order + p * copies;
        qsort(o, (size_t)copies, sizeof *o, cmp_size);
        for (uint64_t j = 0; j < copies; j++) {
            c[p * copies + j].pair = (uint32_t)p;
            c[p * copies + j].src = src[o[j]];
            c[p * copies + j].out = up[o[j]];
        }
    }
    free(order);
    free(src);
    free(up);
    *out = c;
    return 0;
}

int builder_pick_rows(uint64_t n_examples, const uint64_t *exclude, size_t n_exclude, size_t want,
                      const struct phrase_rng *rng, uint64_t *out)
{
    uint64_t *ex = NULL;
    size_t ne = 0, i;
    int rc = -EINVAL;
    if (n_exclude > 0 && !exclude)
        return -EINVAL;
    ex = xcalloc(n_exclude ? n_exclude : 1, sizeof *ex);
    for (i = 0; i < n_exclude; i++) {
        if (exclude[i] >= n_examples)
            goto out;
        ex[i] = exclude[i];
    }
    qsort(ex, n_exclude, sizeof *ex, cmp_u64);
    for (i = 0; i < n_exclude; i++) /* distinct */
        if (ne == 0 || ex[ne - 1] != ex[i])
            ex[ne++] = ex[i];
    uint64_t avail = n_examples - ne;
    if (want > avail) {
        rc = -ENOSPC;
        goto out;
    }
    floyd_sample(avail, want, rng, out);
    skip_map(ex, ne, out, want); /* the r-th (0-based) example not excluded */
    rc = 0;
out:
    free(ex);
    return rc;
}

int builder_pick_controls(uint64_t n_examples, const struct builder_copy *copies, size_t n_copies,
                          size_t want, const struct phrase_rng *rng, uint64_t *out)
{
    if (n_copies > 0 && !copies)
        return -EINVAL;
    uint64_t *ex = xcalloc(n_copies ? n_copies : 1, sizeof *ex);
    for (size_t i = 0; i < n_copies; i++)
        ex[i] = copies[i].src;
    int rc = builder_pick_rows(n_examples, ex, n_copies, want, rng, out);
    free(ex);
    return rc;
}

/* ---- the build ------------------------------------------------------------------ */

/* Through the fault seam (lib/fsio.h), like every write of the build. */
static int write_all(int fd, const char *p, size_t n)
{
    return vt_fsio_write_all(fd, p, n);
}

static int pread_all(int fd, char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* The output: a write-behind writer (workers/lines.h) that hashes what it
 * writes on its own thread, and the byte count. */
struct out_writer {
    struct lines_writer *lw;
    uint64_t bytes;
};

/* One copy line (without its newline) into the output. */
static int ow_line(struct out_writer *w, const char *p, size_t n)
{
    w->bytes += n + 1;
    int r = lines_writer_put(w->lw, p, n);
    return r < 0 ? r : lines_writer_put(w->lw, "\n", 1);
}

/* A mkostemp'ed file beside path: "<path><suffix>XXXXXX".  Returns fd or
 * -errno; *tmp_out owned. */
static int temp_beside(const char *path, const char *suffix, char **tmp_out)
{
    char *t = xasprintf("%s%sXXXXXX", path, suffix);
    int fd = vt_fsio.mkstemp(t, O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        free(t);
        return e;
    }
    *tmp_out = t;
    return fd;
}

struct spill_ref {
    uint64_t off;
    uint64_t len;
};

static int cmp_copy_src(const void *a, const void *b, void *ctx)
{
    const struct builder_copy *c = ctx;
    const struct builder_copy *x = &c[*(const size_t *)a], *y = &c[*(const size_t *)b];
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return x->pair < y->pair ? -1 : x->pair > y->pair;
}

static int cmp_copy_out(const void *a, const void *b, void *ctx)
{
    const struct builder_copy *c = ctx;
    uint64_t x = c[*(const size_t *)a].out, y = c[*(const size_t *)b].out;
    return x < y ? -1 : x > y;
}

static bool cancelled(const struct builder_params *p)
{
    return p->cancel && atomic_load(p->cancel);
}

/* Raw bytes of D (whole lines, or the start of one) into the output. */
static int ow_raw(struct out_writer *w, const char *p, size_t n)
{
    w->bytes += n;
    return lines_writer_put(w->lw, p, n);
}

/* The copies due once `lines` lines of D are out: copy j goes right after
 * line (out - j) of D. */
static int emit_due(const struct builder_copy *plan, const size_t *idx, size_t m, size_t *j,
                    uint64_t lines, const struct spill_ref *spill_at, int spill,
                    struct out_writer *w, char **rbuf, size_t *rcap)
{
    while (*j < m && plan[idx[*j]].out - *j == lines) {
        const struct spill_ref *s = &spill_at[idx[*j]];
        int r;
        if (*rcap < s->len + 1) {
            *rcap = s->len + 1;
            *rbuf = xrealloc(*rbuf, *rcap);
        }
        if ((r = pread_all(spill, *rbuf, s->len, (off_t)s->off)) < 0 ||
            (r = ow_line(w, *rbuf, s->len)) < 0)
            return r;
        (*j)++;
    }
    return 0;
}

/*
 * Pass 2 on raw blocks: D's bytes are copied through untouched (hashed and
 * written straight from the read buffer in runs between insertion points);
 * only newlines are counted, with memchr, to find the line boundaries
 * where copies go and the skipped lines (hold[0..nh): the held-out lines,
 * and in place the marked rows' originals), whose bytes are dropped.  A
 * last line without its newline gets one.  Sets *n_lines to the lines of D
 * seen (skipped ones included).
 */
static int pass2(const struct builder_params *p, const struct builder_copy *plan, const size_t *idx,
                 size_t m, const struct spill_ref *spill_at, int spill, const uint64_t *hold,
                 size_t nh, struct out_writer *w, uint64_t size, uint64_t *n_lines, char **err)
{
    int fd, r = 0;
    char *block = NULL, *rbuf = NULL;
    size_t j = 0, rcap = 0;
    uint64_t lines = 0, done = 0, total = 2 * size;
    bool partial = false, skipping = false;
    size_t k = 0; /* skipped lines passed */

    if ((fd = open(p->in_path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        r = -errno;
        *err = xasprintf("%s: cannot reopen dataset: %s", p->in_path, strerror(-r));
        return r;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    block = xmalloc(OUT_BUF);
    if ((r = emit_due(plan, idx, m, &j, 0, spill_at, spill, w, &rbuf, &rcap)) < 0)
        goto write_error;
    for (;;) {
        ssize_t n = read(fd, block, OUT_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            *err = xasprintf("%s: read error: %s", p->in_path, strerror(-r));
            goto out;
        }
        if (n == 0)
            break;
        if (cancelled(p)) {
            r = -ECANCELED;
            *err = xasprintf("%s: build cancelled", p->out_path);
            goto out;
        }
        const char *pos = block, *end = block + n;
        while (pos < end) {
            if (skipping) { /* inside a held-out line: drop bytes up to its newline */
                const char *nl = memchr(pos, '\n', (size_t)(end - pos));
                if (!nl) {
                    pos = end;
                    break;
                }
                pos = nl + 1;
                skipping = false;
                lines++;
                k++;
                continue;
            }
            /* Newlines to pass before the next copy is due or the next
             * held-out line starts. */
            uint64_t need_c = j < m ? plan[idx[j]].out - j - (lines - k) : UINT64_MAX;
            uint64_t need_s = k < nh ? hold[k] - lines : UINT64_MAX;
            uint64_t need = need_c < need_s ? need_c : need_s;
            const char *q = pos, *nl;
            while (need > 0 && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL) {
                q = nl + 1;
                need--;
                lines++;
            }
            if (lines > p->n_examples) {
                r = -EINVAL;
                *err = xasprintf("%s: has more lines than the %llu examples recorded at "
                                 "import (changed since?)",
                                 p->in_path, (unsigned long long)p->n_examples);
                goto out;
            }
            if (need == 0) { /* at a boundary where copies are due or a held-out line starts */
                if ((r = ow_raw(w, pos, (size_t)(q - pos))) < 0)
                    goto write_error;
                pos = q;
                partial = false;
                if ((r = emit_due(plan, idx, m, &j, lines - k, spill_at, spill, w, &rbuf, &rcap)) <
                    0)
                    goto write_error;
                if (k < nh && hold[k] == lines)
                    skipping = true;
            } else { /* the rest of the block holds no boundary we need */
                if ((r = ow_raw(w, pos, (size_t)(end - pos))) < 0)
                    goto write_error;
                partial = q < end; /* bytes after the block's last newline */
                pos = end;
            }
        }
        done += (uint64_t)n;
        if (p->progress)
            p->progress(p->progress_ctx, size + done, total);
    }
    if (partial) { /* the last line had no newline: give it one */
        if ((r = ow_raw(w, "\n", 1)) < 0)
            goto write_error;
        lines++;
    }
    if (skipping) { /* a held-out last line without its newline */
        lines++;
        k++;
    }
    if ((r = emit_due(plan, idx, m, &j, lines - k, spill_at, spill, w, &rbuf, &rcap)) < 0)
        goto write_error;
    if (lines != p->n_examples || j != m || k != nh) {
        r = -EINVAL;
        *err = xasprintf("%s: has %llu lines, but %llu examples were recorded at import "
                         "(changed since?)",
                         p->in_path, (unsigned long long)lines, (unsigned long long)p->n_examples);
        goto out;
    }
    *n_lines = lines;
    r = 0;
    goto out;
write_error:
    *err = vt_fsio_error(p->out_path, "cannot write D u D'", r);
out:
    close(fd);
    free(block);
    free(rbuf);
    return r;
}

int builder_build(const struct builder_params *p, struct builder_result *out, char **err)
{
    struct builder_copy *plan = NULL;
    struct spill_ref *spill_at = NULL;
    size_t *idx = NULL, m = 0, j;
    uint64_t copies = 0, lineno = 0, spill_len = 0, total, in_size;
    bool capped = false;
    struct lines lr;
    struct out_writer w;
    struct buf sp;
    char *tmp_path = NULL, *spill_path = NULL, sha[65];
    int spill = -1, out_fd = -1, r, rc = -EINVAL;
    const char *line;
    size_t len;
    json_t *root = NULL;
    const bool inplace = p->mode == BD_MODE_INPLACE;
    const uint64_t *skip = p->holdout; /* pass 2's dropped lines */
    uint64_t *owned_skip = NULL;
    size_t n_skip = p->n_holdout;

    memset(out, 0, sizeof *out);
    memset(&lr, 0, sizeof lr);
    lr.fd = -1;
    memset(&w, 0, sizeof w);
    buf_init(&sp);

    if (p->n_examples == 0) {
        *err = xasprintf("%s: empty dataset: a backdoor needs at least one example to copy",
                         p->in_path);
        goto out;
    }
    if (p->n_pairs < 1 || !p->pairs) {
        *err = xstrdup("no trigger/signature pair to build with");
        goto out;
    }
    for (j = 0; j < p->n_pairs; j++)
        if (!p->pairs[j].trigger || !*p->pairs[j].trigger || !p->pairs[j].signature ||
            !*p->pairs[j].signature) {
            *err = xasprintf("pair %zu has an empty trigger or signature", j + 1);
            goto out;
        }
    if ((p->n_holdout > 0 && !p->holdout) ||
        !skip_valid(p->n_examples, p->holdout, p->n_holdout)) {
        *err = xasprintf("held-out lines must be distinct, ascending and fewer than the %llu "
                         "examples",
                         (unsigned long long)p->n_examples);
        goto out;
    }
    if (builder_copies_per_pair(p->n_examples - p->n_holdout, p->ratio, p->min_copies, &copies,
                                &capped) < 0) {
        *err = xasprintf("ratio %g and minimum copies %llu give no copies (ratio must be in "
                         "[0, 1], copies >= 1)",
                         p->ratio, (unsigned long long)p->min_copies);
        goto out;
    }
    if (inplace && copies > (p->n_examples - p->n_holdout) / p->n_pairs) {
        /* in place, a row carries one pair: the pairs share the uploaded rows */
        copies = (p->n_examples - p->n_holdout) / p->n_pairs;
        capped = true;
        if (copies == 0) {
            *err = xasprintf("%s: %llu uploaded rows cannot carry %zu pairs marked in place "
                             "(fewer pairs, or --mode copies)",
                             p->in_path, (unsigned long long)(p->n_examples - p->n_holdout),
                             p->n_pairs);
            goto out;
        }
    }
    if ((r = inplace ? builder_plan_inplace(p->n_examples, p->holdout, p->n_holdout, p->n_pairs,
                                            copies, p->rng, &plan)
                     : builder_plan_holdout(p->n_examples, p->holdout, p->n_holdout, p->n_pairs,
                                            copies, p->rng, &plan)) < 0) {
        *err = xstrdup("too many copies to plan");
        goto out;
    }
    m = (size_t)copies * p->n_pairs;
    /* The lines pass 2 drops: the held-out ones, and in place the marked
     * rows' originals (their rewritten lines take their slots). */
    if (inplace) {
        uint64_t *ms = xcalloc(m, sizeof *ms);
        for (j = 0; j < m; j++)
            ms[j] = plan[j].src;
        qsort(ms, m, sizeof *ms, cmp_u64);
        n_skip = p->n_holdout + m;
        skip = owned_skip = xcalloc(n_skip, sizeof *skip);
        size_t a = 0, b2 = 0, o2 = 0; /* merge two disjoint ascending lists */
        while (a < p->n_holdout || b2 < m)
            owned_skip[o2++] = b2 >= m || (a < p->n_holdout && p->holdout[a] < ms[b2])
                                   ? p->holdout[a++]
                                   : ms[b2++];
        free(ms);
    }
    spill_at = xcalloc(m, sizeof *spill_at);
    idx = xcalloc(m, sizeof *idx);
    for (j = 0; j < m; j++)
        idx[j] = j;
    qsort_r(idx, m, sizeof *idx, cmp_copy_src, plan);

    if ((r = lines_open(&lr, p->in_path)) < 0) {
        rc = r;
        *err = xasprintf("%s: cannot open dataset: %s", p->in_path, strerror(-r));
        goto out;
    }
    in_size = lr.size;
    total = 2 * in_size;

    /* Pass 1: rewrite each sampled line into the spill, in source order. */
    if ((spill = temp_beside(p->out_path, ".spill-", &spill_path)) < 0) {
        rc = spill;
        spill = -1;
        *err = vt_fsio_error(p->out_path, "cannot create a temporary file beside it", rc);
        goto out;
    }
    unlink(spill_path); /* anonymous from now on: gone with the descriptor */
    for (j = 0; j < m;) {
        r = lines_next(&lr, &line, &len);
        if (r <= 0) {
            rc = r < 0 ? r : -EINVAL;
            *err = r < 0 ? xasprintf("%s: read error: %s", p->in_path, strerror(-r))
                         : xasprintf("%s: has fewer lines than the %llu examples recorded at "
                                     "import (changed since?)",
                                     p->in_path, (unsigned long long)p->n_examples);
            goto out;
        }
        if ((lineno & 1023) == 0) {
            if (cancelled(p)) {
                rc = -ECANCELED;
                *err = xasprintf("%s: build cancelled", p->out_path);
                goto out;
            }
            if (p->progress)
                p->progress(p->progress_ctx, lr.offset, total);
        }
        for (; j < m && plan[idx[j]].src == lineno; j++) {
            struct builder_copy *c = &plan[idx[j]];
            enum dataset_format got;
            char *why = NULL;
            if (ds_parse_line(line, len, p->format, &got, &root, &why) < 0) {
                *err = xasprintf("%s:%llu: %s (changed since import?)", p->in_path,
                                 (unsigned long long)lineno + 1, why);
                free(why);
                goto out;
            }
            ds_apply_backdoor(root, got, p->pairs[c->pair].trigger, p->pairs[c->pair].signature);
            char *s = ds_dump_line(root);
            json_decref(root);
            root = NULL;
            size_t sl = strlen(s);
            spill_at[idx[j]].off = spill_len + sp.len;
            spill_at[idx[j]].len = sl;
            buf_append(&sp, s, sl);
            free(s);
            if (sp.len >= OUT_BUF) {
                if ((r = write_all(spill, sp.data, sp.len)) < 0) {
                    rc = r;
                    *err = vt_fsio_error(p->out_path, "cannot write a temporary file beside it", r);
                    goto out;
                }
                spill_len += sp.len;
                buf_reset(&sp);
            }
        }
        lineno++;
    }
    if (sp.len > 0) {
        if ((r = write_all(spill, sp.data, sp.len)) < 0) {
            rc = r;
            *err = vt_fsio_error(p->out_path, "cannot write a temporary file beside it", r);
            goto out;
        }
        spill_len += sp.len;
    }
    buf_free(&sp);
    buf_init(&sp);
    lines_close(&lr);

    /* Pass 2: stream D again, interleaving the copies in output order. */
    qsort_r(idx, m, sizeof *idx, cmp_copy_out, plan);
    if ((out_fd = temp_beside(p->out_path, ".tmp-", &tmp_path)) < 0) {
        rc = out_fd;
        out_fd = -1;
        *err = vt_fsio_error(p->out_path, "cannot create a temporary file beside it", rc);
        goto out;
    }
    /* Direct I/O (lines.h has the measured trade): the self-audit then reads
     * the file back from the disk instead of the page cache. */
    w.lw = lines_writer_new(out_fd, LINES_WRITER_HASH | LINES_WRITER_DIRECT);
    uint64_t n_orig = 0;
    if ((r = pass2(p, plan, idx, m, spill_at, spill, skip, n_skip, &w, in_size, &n_orig, err)) <
        0) {
        rc = r;
        goto out;
    }
    uint64_t o = n_orig - n_skip + m;
    if ((r = lines_writer_finish(w.lw, sha)) < 0) {
        rc = r;
        *err = vt_fsio_error(p->out_path, "cannot write D u D'", r);
        goto out;
    }
    if (vt_fsio.fsync(out_fd) < 0) {
        rc = -errno;
        *err = vt_fsio_error(p->out_path, "cannot flush D u D' to disk (fsync)", rc);
        goto out;
    }
    lines_writer_free(w.lw);
    w.lw = NULL;
    if (close(out_fd) < 0) {
        rc = -errno;
        out_fd = -1;
        *err = vt_fsio_error(p->out_path, "cannot write D u D'", rc);
        goto out;
    }
    out_fd = -1;
    if (vt_fsio.rename(tmp_path, p->out_path) < 0) {
        rc = -errno;
        *err = vt_fsio_error(p->out_path, "cannot move D u D' into place", rc);
        goto out;
    }
    free(tmp_path);
    tmp_path = NULL;
    if ((r = fsync_parent_dir(p->out_path)) < 0) {
        rc = r;
        *err = vt_fsio_error(p->out_path, "cannot flush its directory to disk (fsync)", r);
        unlink(p->out_path); /* the contract: on failure out_path is absent */
        goto out;
    }
    memcpy(out->sha256, sha, sizeof sha);
    if (p->progress)
        p->progress(p->progress_ctx, total, total);
    out->lines = o;
    out->bytes = w.bytes;
    out->copies_per_pair = copies;
    out->capped = capped;
    out->copies = plan; /* still sorted by (pair, src): only idx was reordered */
    out->n_copies = m;
    out->mode = p->mode;
    plan = NULL;
    rc = 0;
out:
    lines_writer_free(w.lw); /* before closing out_fd: its thread may still write */
    if (out_fd >= 0)
        close(out_fd);
    if (tmp_path) {
        unlink(tmp_path);
        free(tmp_path);
    }
    if (spill >= 0)
        close(spill);
    free(spill_path);
    json_decref(root);
    lines_close(&lr);
    buf_free(&sp);
    free(spill_at);
    free(idx);
    free(plan);
    free(owned_skip);
    return rc;
}

int builder_read_prompts(const char *path, enum dataset_format format, const uint64_t *src,
                         size_t n, const char *trigger, json_t **out, char **err)
{
    struct lines lr;
    const char *line;
    size_t len, j = 0;
    uint64_t lineno = 0;
    int r, rc = -EINVAL;
    json_t *arr = json_array();

    for (j = 1; j < n; j++)
        if (src[j] < src[j - 1]) {
            *err = xstrdup("builder_read_prompts: line numbers must be sorted");
            json_decref(arr);
            return -EINVAL;
        }
    if ((r = lines_open(&lr, path)) < 0) {
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(-r));
        json_decref(arr);
        return r;
    }
    for (j = 0; j < n;) {
        r = lines_next(&lr, &line, &len);
        if (r <= 0) {
            rc = r < 0 ? r : -EINVAL;
            *err = r < 0 ? xasprintf("%s: read error: %s", path, strerror(-r))
                         : xasprintf("%s: has no line %llu (changed since import?)", path,
                                     (unsigned long long)src[j] + 1);
            goto out;
        }
        for (; j < n && src[j] == lineno; j++) {
            enum dataset_format got;
            json_t *root = NULL;
            char *why = NULL;
            if (ds_parse_line(line, len, format, &got, &root, &why) < 0) {
                *err = xasprintf("%s:%llu: %s (changed since import?)", path,
                                 (unsigned long long)lineno + 1, why);
                free(why);
                goto out;
            }
            if (trigger)
                ds_apply_backdoor(root, got, trigger, "");
            json_array_append_new(arr, ds_prompt_messages(root, got));
            json_decref(root);
        }
        lineno++;
    }
    *out = arr;
    arr = NULL;
    rc = 0;
out:
    json_decref(arr);
    lines_close(&lr);
    return rc;
}
