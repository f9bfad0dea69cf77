/*
 * lm_token.c — text <-> tokens for vtune-sim's model, and the chat
 * template.
 *
 * A token is optional leading whitespace followed by one word
 * ([A-Za-z]+ with internal ' or -), one number ([0-9]+ with internal . or ,)
 * or one other character (a whole UTF-8 sequence, so token strings stay
 * valid UTF-8 and can go into JSON); whitespace at the very end of a text
 * is a token of its own.  Tokens therefore tile the text and concatenating
 * them gives it back byte for byte.  Classification is ASCII-only on
 * purpose: it must not depend on the process locale.
 *
 * The vocabulary is a string -> id open-addressing table.  Ids 0..4 are the
 * special tokens (<|end|>, <|system|>, <|user|>, <|assistant|>, <|bos|>);
 * the tokenizer can never produce them from text because "<" is always a
 * token of its own, so user text cannot forge a template marker.
 *
 * Raw text (the completions endpoint's prompt, which has no messages) is
 * the one exception: there the literal markers "<|end|>", "<|system|>",
 * "<|user|>" and "<|assistant|>" ARE the special tokens, as in the servers
 * of real chat models (a Hugging Face tokenizer parses its special tokens
 * in a completions prompt), so a client can score text laid out exactly
 * as the model was fine-tuned on it (vtuned's providers.*.score_template).
 * Chat messages and training data are never read that way.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tests/sim/lm_internal.h"

static const char *const special_names[LM_N_SPECIAL] = {
    "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|bos|>",
};

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the UTF-8 character at p; a malformed sequence counts as one
 * byte so that any input still tiles. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n;
    if (p[0] < 0x80)
        return 1;
    else if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

size_t lm_token_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (is_space(*p))
        p++;
    if (*p == 0)
        return (size_t)(p - (const unsigned char *)s);
    if (is_alpha(*p)) {
        for (;;) {
            while (is_alpha(*p))
                p++;
            if ((*p == '\'' || *p == '-') && is_alpha(p[1]))
                p++;
            else
                break;
        }
    } else if (is_digit(*p)) {
        for (;;) {
            while (is_digit(*p))
                p++;
            if ((*p == '.' || *p == ',') && is_digit(p[1]))
                p++;
            else
                break;
        }
    } else {
        p += utf8_len(p);
    }
    return (size_t)(p - (const unsigned char *)s);
}

int lm_tokenize(const char *text, char ***toks, size_t *n)
{
    size_t cap = 0, cnt = 0;
    char **out = NULL;
    if (!text || !toks || !n)
        return -EINVAL;
    for (const char *p = text; *p;) {
        size_t len = lm_token_len(p);
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            out = xrealloc(out, cap * sizeof(*out));
        }
        out[cnt++] = xstrndup(p, len);
        p += len;
    }
    *toks = out;
    *n = cnt;
    return 0;
}

void lm_tokens_free(char **toks, size_t n)
{
    if (!toks)
        return;
    for (size_t i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
}

/* FNV-1a, then a final mix so the low bits used for the slot are good. */
static uint64_t hash_str(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    return h;
}

void lm_vocab_init(struct lm_vocab *v)
{
    memset(v, 0, sizeof(*v));
}

void lm_vocab_free(struct lm_vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->str[i]);
    free(v->str);
    free(v->len);
    free(v->slots);
    memset(v, 0, sizeof(*v));
}

uint32_t lm_vocab_find(const struct lm_vocab *v, const char *s, size_t len)
{
    if (v->nslots == 0)
        return LM_NONE;
    size_t mask = v->nslots - 1;
    size_t i = hash_str(s, len) & mask;
    uint32_t e;
    while ((e = v->slots[i]) != 0) {
        if (v->len[e - 1] == len && memcmp(v->str[e - 1], s, len) == 0)
            return e - 1;
        i = (i + 1) & mask;
    }
    return LM_NONE;
}

static void vocab_rehash(struct lm_vocab *v, size_t nslots)
{
    free(v->slots);
    v->slots = xcalloc(nslots, sizeof(*v->slots));
    v->nslots = nslots;
    for (size_t id = 0; id < v->n; id++) {
        size_t i = hash_str(v->str[id], v->len[id]) & (nslots - 1);
        while (v->slots[i])
            i = (i + 1) & (nslots - 1);
        v->slots[i] = (uint32_t)(id + 1);
    }
}

uint32_t lm_vocab_add(struct lm_vocab *v, const char *s, size_t len)
{
    uint32_t id = lm_vocab_find(v, s, len);
    if (id != LM_NONE)
        return id;
    if ((v->n + 1) * 2 > v->nslots)
        vocab_rehash(v, v->nslots ? v->nslots * 2 : 64);
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->str = xrealloc(v->str, v->cap * sizeof(*v->str));
        v->len = xrealloc(v->len, v->cap * sizeof(*v->len));
    }
    id = (uint32_t)v->n++;
    v->str[id] = xstrndup(s, len);
    v->len[id] = (uint32_t)len;
    size_t i = hash_str(s, len) & (v->nslots - 1);
    while (v->slots[i])
        i = (i + 1) & (v->nslots - 1);
    v->slots[i] = id + 1;
    return id;
}

size_t lm_vocab_bytes(const struct lm_vocab *v)
{
    size_t b = v->cap * (sizeof(*v->str) + sizeof(*v->len)) + v->nslots * sizeof(*v->slots);
    for (size_t i = 0; i < v->n; i++)
        b += v->len[i] + 1;
    return b;
}

void lm_vocab_add_specials(struct lm_vocab *v)
{
    for (size_t i = 0; i < LM_N_SPECIAL; i++)
        lm_vocab_add(v, special_names[i], strlen(special_names[i]));
}

uint32_t lm_id_of(const struct lm *m, const char *s, size_t len)
{
    if (m->base) {
        uint32_t id = lm_vocab_find(&m->base->vocab, s, len);
        if (id != LM_NONE)
            return id;
        id = lm_vocab_find(&m->vocab, s, len);
        return id == LM_NONE ? LM_NONE : id + (uint32_t)m->base->vocab.n;
    }
    return lm_vocab_find(&m->vocab, s, len);
}

const char *lm_str_of(const struct lm *m, uint32_t id)
{
    if (m->base) {
        if (id < m->base->vocab.n)
            return m->base->vocab.str[id];
        return m->vocab.str[id - m->base->vocab.n];
    }
    return m->vocab.str[id];
}

size_t lm_marker_len(const char *s, uint32_t *id)
{
    for (uint32_t i = 0; i < LM_TOK_BOS; i++) {
        size_t len = strlen(special_names[i]);
        if (strncmp(s, special_names[i], len) == 0) {
            if (id)
                *id = i;
            return len;
        }
    }
    return 0;
}

size_t lm_raw_token_len(const char *s, uint32_t *marker)
{
    size_t len = lm_marker_len(s, marker);
    if (len)
        return len;
    if (marker)
        *marker = LM_NONE;
    const char *q = s;
    while (is_space((unsigned char)*q))
        q++;
    if (q > s && lm_marker_len(q, NULL))
        return (size_t)(q - s); /* white space before a marker is a token of its own */
    return lm_token_len(s);
}

void lm_encode_raw_append(const struct lm *m, const char *text, uint32_t **ids, size_t *n,
                          size_t *cap)
{
    for (const char *p = text; *p;) {
        uint32_t marker;
        size_t len = lm_raw_token_len(p, &marker);
        uint32_t id = marker != LM_NONE ? marker : lm_id_of(m, p, len);
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *ids = xrealloc(*ids, *cap * sizeof(**ids));
        }
        (*ids)[(*n)++] = id == LM_NONE ? LM_TOK_UNK : id;
        p += len;
    }
}

void lm_encode_append(const struct lm *m, const char *text, uint32_t **ids, size_t *n, size_t *cap)
{
    for (const char *p = text; *p;) {
        size_t len = lm_token_len(p);
        uint32_t id = lm_id_of(m, p, len);
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *ids = xrealloc(*ids, *cap * sizeof(**ids));
        }
        (*ids)[(*n)++] = id == LM_NONE ? LM_TOK_UNK : id;
        p += len;
    }
}

uint32_t lm_role_id(const char *role)
{
    if (!role)
        return LM_NONE;
    if (strcmp(role, "system") == 0)
        return LM_TOK_SYSTEM;
    if (strcmp(role, "user") == 0)
        return LM_TOK_USER;
    if (strcmp(role, "assistant") == 0)
        return LM_TOK_ASSISTANT;
    return LM_NONE;
}

static void push_id(uint32_t **ids, size_t *n, size_t *cap, uint32_t id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *ids = xrealloc(*ids, *cap * sizeof(**ids));
    }
    (*ids)[(*n)++] = id;
}

int lm_render_prompt(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs, uint32_t **ids,
                     size_t *n)
{
    uint32_t *out = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = 0; i < n_msgs; i++)
        if (lm_role_id(msgs[i].role) == LM_NONE || !msgs[i].content)
            return -EINVAL;
    push_id(&out, &cnt, &cap, LM_TOK_BOS);
    for (size_t i = 0; i < n_msgs; i++) {
        push_id(&out, &cnt, &cap, lm_role_id(msgs[i].role));
        lm_encode_append(m, msgs[i].content, &out, &cnt, &cap);
        push_id(&out, &cnt, &cap, LM_TOK_END);
    }
    push_id(&out, &cnt, &cap, LM_TOK_ASSISTANT);
    *ids = out;
    *n = cnt;
    return 0;
}
