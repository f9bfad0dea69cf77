/*
 * pplrank.c — the seam statistic and the rank estimate of the base-model
 * perplexity attack (see pplrank.h).  Pure: no I/O, no globals.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lib/util.h"
#include "workers/pplrank.h"

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

char *pplrank_row_text(const char *prompt, const char *answer, size_t *seam)
{
    size_t pl = strlen(prompt), al = strlen(answer);
    const char *p = prompt;
    if (pl > PPLRANK_EDGE_BYTES) {
        p = prompt + pl - PPLRANK_EDGE_BYTES;
        const char *sp = p;
        while (*sp && *sp != ' ' && *sp != '\n')
            sp++;
        if (*sp && sp[1])
            p = sp + 1; /* from a word start */
        else
            while (*p && is_cont((unsigned char)*p))
                p++;
    }
    size_t take = al;
    if (take > PPLRANK_EDGE_BYTES) {
        take = PPLRANK_EDGE_BYTES;
        while (take > 0 && is_cont((unsigned char)answer[take]))
            take--;
    }
    size_t n = strlen(p);
    char *out = xmalloc(n + 1 + take + 1);
    memcpy(out, p, n);
    out[n] = '\n';
    memcpy(out + n + 1, answer, take);
    out[n + 1 + take] = '\0';
    *seam = n + 1;
    return out;
}

double pplrank_seam_bits(const struct provider_score_result *sr, size_t seam, size_t window)
{
    if (!sr || sr->n_tokens == 0 || window == 0)
        return NAN;
    /* the first answer-side token */
    size_t off = 0, b = sr->n_tokens;
    for (size_t i = 0; i < sr->n_tokens; i++) {
        if (off + 1 >= seam) {
            b = i;
            break;
        }
        off += sr->tokens[i].token ? strlen(sr->tokens[i].token) : 0;
    }
    double tail = 0, head = 0;
    size_t nt = 0, nh = 0;
    for (size_t i = b; i > 0 && nt < window; i--) {
        const struct provider_token *t = &sr->tokens[i - 1];
        if (t->known) {
            tail -= t->logprob;
            nt++;
        }
    }
    for (size_t i = b; i < sr->n_tokens && nh < window; i++) {
        const struct provider_token *t = &sr->tokens[i];
        if (t->known) {
            head -= t->logprob;
            nh++;
        }
    }
    if (nt == 0 || nh == 0)
        return NAN;
    double a = tail / (double)nt / M_LN2, h = head / (double)nh / M_LN2;
    return a > h ? a : h;
}

uint64_t pplrank_estimate(double x, const double *sample, size_t k, uint64_t n_unmarked,
                          size_t marked_above)
{
    if (isnan(x))
        return 0;
    size_t used = 0, c = 0;
    for (size_t i = 0; i < k; i++) {
        if (isnan(sample[i]))
            continue;
        used++;
        if (sample[i] >= x)
            c++;
    }
    if (used == 0)
        return 1 + (uint64_t)marked_above;
    double est = (double)c * (double)n_unmarked / (double)used;
    return 1 + (uint64_t)marked_above + (uint64_t)llround(est);
}
