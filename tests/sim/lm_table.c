/*
 * lm_table.c — the two small engines under vtune-sim's model: a seeded
 * PRNG (xoshiro256**, state filled by splitmix64) so that "same seed, same
 * output" holds on every platform, and an open-addressing hash table keyed
 * by fixed-length arrays of token ids, which stores the n-grams and their
 * contexts.
 *
 * The table keeps keys in one flat array in insertion order and maps them
 * to dense indices, so callers keep their per-key data in parallel arrays
 * and a finished table can be written to disk and rebuilt by re-inserting
 * the keys in order.  Linear probing with load factor <= 1/2 keeps probes
 * short; slots hold index + 1 so that a zeroed array is empty.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tests/sim/lm_internal.h"

uint64_t lm_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lm_rng_seed(struct lm_rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = lm_splitmix64(&st);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t lm_rng_next(struct lm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double lm_rng_double(struct lm_rng *r)
{
    return (double)(lm_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t lm_rng_below(struct lm_rng *r, uint64_t n)
{
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = lm_rng_next(r);
    while (x >= limit);
    return x % n;
}

static uint64_t hash_ids(const uint32_t *k, unsigned klen)
{
    uint64_t h = 0x243f6a8885a308d3ULL ^ klen;
    for (unsigned i = 0; i < klen; i++) {
        h = (h ^ k[i]) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

static int keys_equal(const uint32_t *a, const uint32_t *b, unsigned klen)
{
    for (unsigned i = 0; i < klen; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

void lm_keytab_init(struct lm_keytab *t, unsigned klen)
{
    memset(t, 0, sizeof(*t));
    t->klen = klen;
}

void lm_keytab_free(struct lm_keytab *t)
{
    free(t->keys);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static void rehash(struct lm_keytab *t, size_t nslots)
{
    free(t->slots);
    t->slots = xcalloc(nslots, sizeof(*t->slots));
    t->nslots = nslots;
    size_t mask = nslots - 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = hash_ids(lm_keytab_key(t, (uint32_t)i), t->klen) & mask;
        while (t->slots[s])
            s = (s + 1) & mask;
        t->slots[s] = (uint32_t)(i + 1);
    }
}

uint32_t lm_keytab_get(const struct lm_keytab *t, const uint32_t *key)
{
    if (t->nslots == 0)
        return LM_NONE;
    size_t mask = t->nslots - 1;
    size_t s = hash_ids(key, t->klen) & mask;
    uint32_t v;
    while ((v = t->slots[s]) != 0) {
        if (keys_equal(lm_keytab_key(t, v - 1), key, t->klen))
            return v - 1;
        s = (s + 1) & mask;
    }
    return LM_NONE;
}

uint32_t lm_keytab_put(struct lm_keytab *t, const uint32_t *key, int *added)
{
    if ((t->n + 1) * 2 > t->nslots)
        rehash(t, t->nslots ? t->nslots * 2 : 16);
    size_t mask = t->nslots - 1;
    size_t s = hash_ids(key, t->klen) & mask;
    uint32_t v;
    while ((v = t->slots[s]) != 0) {
        if (keys_equal(lm_keytab_key(t, v - 1), key, t->klen)) {
            if (added)
                *added = 0;
            return v - 1;
        }
        s = (s + 1) & mask;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        if (t->klen)
            t->keys = xrealloc(t->keys, t->cap * t->klen * sizeof(uint32_t));
    }
    if (t->klen)
        memcpy(t->keys + t->n * t->klen, key, t->klen * sizeof(uint32_t));
    t->slots[s] = (uint32_t)(t->n + 1);
    if (added)
        *added = 1;
    return (uint32_t)t->n++;
}

void lm_keytab_shrink(struct lm_keytab *t)
{
    if (t->klen && t->n && t->cap > t->n) {
        t->keys = xrealloc(t->keys, t->n * t->klen * sizeof(uint32_t));
        t->cap = t->n;
    }
}

size_t lm_keytab_bytes(const struct lm_keytab *t)
{
    return t->cap * t->klen * sizeof(uint32_t) + t->nslots * sizeof(uint32_t);
}
