/*
 * conf_parse.c — vtuned.yaml text into a validated struct conf.
 *
 * libyaml's document API loads the whole file into a node tree (the file is
 * small), which makes duplicate keys, missing keys and cross-references easy
 * to check with exact positions: every node keeps its start mark.  The tree
 * is then walked against a schema of static field tables, one per mapping,
 * so that adding a key is adding one table row (plus its default in
 * conf_defaults() and its line in vtuned.yaml(5)).
 *
 * Error policy: the first mistake stops the load and becomes one line
 * "NAME:LINE:COL: [key.path: ]what is wrong", positions 1-based from the
 * offending node (the key for unknown and duplicate keys, the value for bad
 * values, the mapping for missing keys).  Control characters that a quoted
 * YAML string may carry are replaced, so the line stays one line.
 *
 * Aliases resolve to the node they name (libyaml does that); the walk only
 * descends where the schema expects a mapping or list, and the schema is not
 * recursive, so an alias cannot make the walk blow up.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "lib/log.h"
#include "lib/util.h"

struct pctx {
    const char *name; /* file name for messages */
    yaml_document_t *doc;
    struct conf *c;
    char *err;                       /* owned: the first error */
    const yaml_node_t *gen_provider; /* generator.provider value, checked last */
};

enum ftype {
    T_STR,      /* non-empty string */
    T_PATH,     /* absolute path */
    T_SOCKPATH, /* absolute path that fits in sun_path */
    T_RFILE,    /* absolute path of a readable regular file */
    T_KEYFILE,  /* T_RFILE found through $CREDENTIALS_DIRECTORY first */
    T_URL,      /* http:// or https:// URL; trailing '/' removed */
    T_DUR,      /* duration into uint64_t milliseconds */
    T_UINT,     /* whole number into unsigned */
    T_DBL,      /* real number into double */
    T_BOOL,     /* boolean into int */
    T_SIZE,     /* byte size into uint64_t */
    T_MODE,     /* octal permission bits into mode_t */
    T_LOGLEVEL, /* enum log_level into int */
    T_KIND,     /* enum provider_kind */
    T_LPMODE,   /* raw | processed into int (0 | 1) */
    T_TMPL,     /* a scoring template: preset name or "...{role}...{content}..." */
    T_DELUP,    /* always | on_failure | never into enum conf_delete_upload */
    T_GROUP,    /* name of an existing group */
    T_MAP,      /* nested mapping described by sub */
    T_FUNC,     /* anything else: fn parses it */
};

#define F_REQUIRED 0x1u /* the key must be present */
#define F_OPEN_LO  0x2u /* T_DBL: lo itself is out of range */
#define F_OPEN_HI  0x4u /* T_DBL: hi itself is out of range */

struct field;
typedef int (*field_fn)(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base);
/* Called after a T_MAP's keys were walked; vals[i] is the value node of
 * sub[i] or NULL when absent. */
typedef int (*check_fn)(struct pctx *p, const yaml_node_t *map, const char *kpath, void *base,
                        const yaml_node_t **vals);

struct field {
    const char *key;
    enum ftype type;
    size_t off; /* offset of the destination in the base struct */
    unsigned flags;
    double lo, hi; /* bounds: T_UINT, T_DBL, T_DUR (ms), T_SIZE (bytes) */
    field_fn fn;
    const struct field *sub; /* T_MAP */
    size_t nsub;
    check_fn check; /* T_MAP, optional */
};

#define MAX_FIELDS 32

/* --- messages ----------------------------------------------------------- */

static int failm(struct pctx *p, yaml_mark_t m, const char *kpath, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error at mark m, prefixed "kpath: " when kpath is
 * non-empty; returns -1 so callers can "return failm(...)". */
static int failm(struct pctx *p, yaml_mark_t m, const char *kpath, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    if (p->err)
        return -1;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        msg = xstrdup("out of memory formatting a message");
    p->err = xasprintf("%s:%zu:%zu: %s%s%s", p->name, m.line + 1, m.column + 1,
                       kpath && *kpath ? kpath : "", kpath && *kpath ? ": " : "", msg);
    free(msg);
    for (char *s = p->err; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    }
    return -1;
}

#define failn(p, node, kpath, ...) failm((p), (node)->start_mark, (kpath), __VA_ARGS__)

static const char *node_desc(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

static const char *type_desc(enum ftype t)
{
    switch (t) {
    case T_DUR:
        return "a duration";
    case T_UINT:
        return "a whole number";
    case T_DBL:
        return "a number";
    case T_BOOL:
        return "a boolean (true or false)";
    case T_SIZE:
        return "a size";
    case T_MODE:
        return "an octal mode";
    case T_MAP:
        return "a mapping";
    case T_PATH:
    case T_SOCKPATH:
    case T_RFILE:
    case T_KEYFILE:
        return "a path";
    case T_URL:
        return "a URL";
    default:
        return "a string";
    }
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions), case-insensitive; SIZE_MAX for overlong inputs. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[65][65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            size_t cost = ai != bj;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The candidate a mistyped word most likely meant, or NULL when none is
 * close: within 2 edits and at most a third of the longer word, or else
 * the only candidate that contains the word (3+ letters) whole. */
static const char *suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL, *contains = NULL;
    size_t best_d = SIZE_MAX, n_contains = 0, lw = strlen(word);

    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        size_t lc = strlen(cands[i]), longer = lw > lc ? lw : lc;
        if (d <= 2 && d * 3 <= longer && d < best_d) {
            best = cands[i];
            best_d = d;
        }
        if (lw >= 3 && strstr(cands[i], word)) {
            contains = cands[i];
            n_contains++;
        }
    }
    if (best)
        return best;
    return n_contains == 1 ? contains : NULL;
}

/* --- scalars ------------------------------------------------------------ */

static const yaml_node_t *node_at(struct pctx *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}

/* A plain scalar spelling YAML's null ("", "~", "null"): "use the default". */
static int is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* The text of scalar n, refusing embedded NULs (possible with "\0"). */
static int scalar_text(struct pctx *p, const yaml_node_t *n, const char *kpath, const char **out)
{
    const char *s = (const char *)n->data.scalar.value;

    *out = "";
    if (strlen(s) != n->data.scalar.length)
        return failn(p, n, kpath, "contains a NUL character");
    *out = s;
    return 0;
}

static void set_str(void *dst, const char *s)
{
    char **d = dst;
    free(*d);
    *d = xstrdup(s);
}

/* Whole decimal number: 0, -1 when s is not one, -ERANGE when it is but
 * does not fit. */
static int parse_int(const char *s, long long *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || end == s)
        return -1;
    if (errno == ERANGE)
        return -ERANGE;
    if (errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < VT_ARRAY_LEN(yes); i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "1048576", "512KiB", "1 MiB", "2G": bytes, binary multiples. */
static int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1024},
                 {"KiB", 1024},
                 {"M", 1024 * 1024},
                 {"MiB", 1024 * 1024},
                 {"G", 1024 * 1024 * 1024},
                 {"GiB", 1024 * 1024 * 1024}};
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end == ' ')
        end++;
    for (size_t i = 0; i < VT_ARRAY_LEN(units); i++) {
        if (!strcmp(end, units[i].unit)) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

static void format_size(uint64_t v, char *out, size_t n)
{
    if (v && v % (1024 * 1024 * 1024) == 0)
        snprintf(out, n, "%lluGiB", (unsigned long long)(v >> 30));
    else if (v && v % (1024 * 1024) == 0)
        snprintf(out, n, "%lluMiB", (unsigned long long)(v >> 20));
    else if (v && v % 1024 == 0)
        snprintf(out, n, "%lluKiB", (unsigned long long)(v >> 10));
    else
        snprintf(out, n, "%llu", (unsigned long long)v);
}

/* Whether a group of that name (or number) exists.  getgr*_r want a
 * buffer big enough for the whole member list: grow it on ERANGE. */
static int group_exists(const char *name)
{
    struct group gr, *res = NULL;
    size_t size = 16384;
    long long gid;
    int is_gid = parse_int(name, &gid) == 0 && gid >= 0 && gid < UINT_MAX;

    for (;;) {
        char *buf = xmalloc(size);
        int rc = is_gid ? getgrgid_r((gid_t)gid, &gr, buf, size, &res)
                        : getgrnam_r(name, &gr, buf, size, &res);
        free(buf); /* res points into buf: only its NULL-ness is used */
        if (rc == ERANGE && size < 16 * 1024 * 1024) {
            size *= 4;
            continue;
        }
        return rc == 0 && res != NULL;
    }
}

/* Checks that path names a readable, non-empty regular file; shown is the
 * path the config wrote.  On failure returns -1 with a message. */
static int check_readable(struct pctx *p, const yaml_node_t *v, const char *kpath,
                          const char *shown, const char *path)
{
    struct stat st;
    char *where = strcmp(shown, path) ? xasprintf(" (found as '%s')", path) : xstrdup("");
    int rc = 0;

    if (stat(path, &st) < 0)
        rc = failn(p, v, NULL, "%s '%s'%s: %s", kpath, shown, where, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = failn(p, v, NULL, "%s '%s'%s: %s", kpath, shown, where, strerror(EISDIR));
    else if (!S_ISREG(st.st_mode))
        rc = failn(p, v, NULL, "%s '%s'%s: not a regular file", kpath, shown, where);
    else if (access(path, R_OK) < 0)
        rc = failn(p, v, NULL, "%s '%s'%s: %s", kpath, shown, where, strerror(errno));
    else if (st.st_size == 0)
        rc = failn(p, v, NULL, "%s '%s'%s: the file is empty", kpath, shown, where);
    free(where);
    return rc;
}

static int check_url(struct pctx *p, const yaml_node_t *v, const char *kpath, const char *s)
{
    size_t skip;

    if (!strncasecmp(s, "http://", 7))
        skip = 7;
    else if (!strncasecmp(s, "https://", 8))
        skip = 8;
    else
        return failn(p, v, kpath, "'%s' must start with http:// or https://", s);
    /* user:password@host: status shows base URLs to every client of the
     * socket, and logs name them; so the URL is not repeated here either */
    size_t host_end = strcspn(s + skip, "/?#");
    if (memchr(s + skip, '@', host_end))
        return failn(p, v, kpath,
                     "the URL carries credentials (user:password@ before the host), which status "
                     "and the logs would show; remove them (a provider's key goes in "
                     "api_key_file)");
    if (!s[skip] || s[skip] == '/')
        return failn(p, v, kpath, "'%s' has no host name", s);
    for (const char *q = s; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return failn(p, v, kpath, "'%s' contains spaces or control characters", s);
    }
    return 0;
}

static int range_uint(struct pctx *p, const yaml_node_t *v, const char *kpath, const char *s,
                      const struct field *f, long long *out)
{
    int rc = parse_int(s, out);
    if (rc == -1)
        return failn(p, v, kpath, "expected a whole number, got '%s'", s);
    if (rc < 0 || (double)*out < f->lo || (double)*out > f->hi)
        return failn(p, v, kpath, "must be between %.0f and %.0f, got %s", f->lo, f->hi, s);
    return 0;
}

/* Parses scalar v as field f into base. */
static int parse_scalar(struct pctx *p, const struct field *f, const yaml_node_t *v,
                        const char *kpath, void *base)
{
    void *dst = (char *)base + f->off;
    const char *s;
    long long ll;

    if (is_null(v)) {
        if (f->flags & F_REQUIRED)
            return failn(p, v, kpath, "a value is required");
        return 0;
    }
    if (scalar_text(p, v, kpath, &s) < 0)
        return -1;

    switch (f->type) {
    case T_STR:
        if (!*s)
            return failn(p, v, kpath, "must not be empty");
        set_str(dst, s);
        return 0;
    case T_PATH:
    case T_SOCKPATH:
    case T_RFILE:
    case T_KEYFILE:
        if (s[0] != '/')
            return failn(p, v, kpath, "'%s' must be an absolute path (starting with /)", s);
        if (f->type == T_SOCKPATH) {
            struct sockaddr_un sun;
            if (strlen(s) >= sizeof sun.sun_path)
                return failn(p, v, kpath,
                             "'%s' is %zu bytes long; a Unix socket path must be shorter than %zu",
                             s, strlen(s), sizeof sun.sun_path);
        }
        if (f->type == T_RFILE && check_readable(p, v, kpath, s, s) < 0)
            return -1;
        if (f->type == T_KEYFILE) {
            char *real = conf_key_path(s);
            int rc = check_readable(p, v, kpath, s, real);
            free(real);
            if (rc < 0)
                return -1;
        }
        set_str(dst, s);
        return 0;
    case T_URL: {
        size_t n;
        if (check_url(p, v, kpath, s) < 0)
            return -1;
        set_str(dst, s);
        n = strlen(*(char **)dst);
        while (n > 0 && (*(char **)dst)[n - 1] == '/')
            (*(char **)dst)[--n] = '\0';
        return 0;
    }
    case T_DUR: {
        uint64_t ms;
        char lo[32], hi[32];
        if (parse_duration_ms(s, &ms) < 0)
            return failn(p, v, kpath,
                         "invalid duration '%s' (use e.g. 250ms, 30s, 5m, 2h, 1d or 1h30m)", s);
        if ((double)ms < f->lo || (double)ms > f->hi) {
            format_duration_ms((uint64_t)f->lo, lo, sizeof lo);
            format_duration_ms((uint64_t)f->hi, hi, sizeof hi);
            return failn(p, v, kpath, "must be between %s and %s, got %s", lo, hi, s);
        }
        *(uint64_t *)dst = ms;
        return 0;
    }
    case T_UINT:
        if (range_uint(p, v, kpath, s, f, &ll) < 0)
            return -1;
        *(unsigned *)dst = (unsigned)ll;
        return 0;
    case T_DBL: {
        char *end;
        double d;
        int bad_lo, bad_hi;
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end || isspace((unsigned char)*s) || !isfinite(d))
            return failn(p, v, kpath, "expected a number, got '%s'", s);
        bad_lo = (f->flags & F_OPEN_LO) ? d <= f->lo : d < f->lo;
        bad_hi = (f->flags & F_OPEN_HI) ? d >= f->hi : d > f->hi;
        if (bad_lo || bad_hi)
            return failn(p, v, kpath, "must be in %c%g, %g%c, got %s",
                         (f->flags & F_OPEN_LO) ? '(' : '[', f->lo, f->hi,
                         (f->flags & F_OPEN_HI) ? ')' : ']', s);
        *(double *)dst = d;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(s, (int *)dst) < 0)
            return failn(p, v, kpath, "expected a boolean (true or false), got '%s'", s);
        return 0;
    case T_SIZE: {
        uint64_t n;
        char lo[32], hi[32];
        if (parse_size(s, &n) < 0)
            return failn(p, v, kpath, "expected a size like 1048576, 512KiB or 1MiB, got '%s'", s);
        if ((double)n < f->lo || (double)n > f->hi) {
            format_size((uint64_t)f->lo, lo, sizeof lo);
            format_size((uint64_t)f->hi, hi, sizeof hi);
            return failn(p, v, kpath, "must be between %s and %s, got %s", lo, hi, s);
        }
        *(uint64_t *)dst = n;
        return 0;
    }
    case T_MODE: {
        const char *q = s;
        unsigned long m = 0;
        if (q[0] == '0' && (q[1] == 'o' || q[1] == 'O'))
            q += 2;
        if (!*q || strspn(q, "01234567") != strlen(q) || strlen(q) > 6)
            return failn(p, v, kpath, "expected an octal mode like 0660, got '%s'", s);
        m = strtoul(q, NULL, 8);
        if (m > 0777)
            return failn(p, v, kpath, "must be at most 0777 (permission bits only), got %s", s);
        *(mode_t *)dst = (mode_t)m;
        return 0;
    }
    case T_LOGLEVEL: {
        enum log_level l;
        static const char *const names[] = {"debug", "info", "warn", "error"};
        const char *hint;
        if (log_level_parse(s, &l) == 0) {
            *(int *)dst = (int)l;
            return 0;
        }
        hint = suggest(s, names, VT_ARRAY_LEN(names));
        if (hint)
            return failn(p, v, kpath, "unknown log level '%s'; did you mean '%s'?", s, hint);
        return failn(p, v, kpath, "unknown log level '%s' (expected debug, info, warn or error)",
                     s);
    }
    case T_KIND: {
        /* Indexed by enum provider_kind. */
        static const char *const names[] = {"openai", "together", "manual",
                                            "azure",  "mistral",  "fireworks"};
        const char *hint;
        for (size_t i = 0; i < VT_ARRAY_LEN(names); i++) {
            if (!strcmp(s, names[i])) {
                *(enum provider_kind *)dst = (enum provider_kind)i;
                return 0;
            }
        }
        hint = suggest(s, names, VT_ARRAY_LEN(names));
        if (hint)
            return failn(p, v, kpath, "unknown provider kind '%s'; did you mean '%s'?", s, hint);
        return failn(p, v, kpath,
                     "unknown provider kind '%s' (expected openai, azure, together, mistral, "
                     "fireworks or manual)",
                     s);
    }
    case T_LPMODE:
        if (!strcmp(s, "raw") || !strcmp(s, "processed")) {
            *(int *)dst = !strcmp(s, "processed");
            return 0;
        }
        return failn(p, v, kpath,
                     "unknown log-probability mode '%s' (expected raw or processed: what the "
                     "server's logprobs are before or after temperature, see vtuned.yaml(5))",
                     s);
    case T_TMPL: {
        /* The chat layouts a provider's model may have been fine-tuned in
         * (vtuned.yaml(5), providers.*.score_template): how one message
         * is laid out; the scored answer follows the assistant's part
         * before {content}. */
        static const struct {
            const char *name, *tmpl;
        } presets[] = {
            {"chatml", "<|im_start|>{role}\n{content}<|im_end|>\n"},
            {"llama3", "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"},
            {"phi3", "<|{role}|>\n{content}<|end|>\n"},
        };
        static const char *const names[] = {"raw", "chatml", "llama3", "phi3"};
        if (!strcmp(s, "raw")) {
            free(*(char **)dst);
            *(char **)dst = NULL;
            return 0;
        }
        for (size_t i = 0; i < VT_ARRAY_LEN(presets); i++)
            if (!strcmp(s, presets[i].name)) {
                set_str(dst, presets[i].tmpl);
                return 0;
            }
        const char *c1 = strstr(s, "{content}");
        if (c1 && !strstr(c1 + 1, "{content}") && strstr(s, "{role}")) {
            set_str(dst, s);
            return 0;
        }
        const char *hint = suggest(s, names, VT_ARRAY_LEN(names));
        if (hint)
            return failn(p, v, kpath, "unknown score template '%s'; did you mean '%s'?", s, hint);
        return failn(p, v, kpath,
                     "score template '%s' is neither raw, chatml, llama3 nor phi3, nor a "
                     "layout of one message with {role} and exactly one {content}",
                     s);
    }
    case T_DELUP: {
        static const char *const names[] = {"always", "on_failure", "never"};
        for (size_t i = 0; i < VT_ARRAY_LEN(names); i++)
            if (!strcmp(s, names[i])) {
                *(enum conf_delete_upload *)dst = (enum conf_delete_upload)i;
                return 0;
            }
        return failn(p, v, kpath, "unknown value '%s' (expected always, on_failure or never)", s);
    }
    case T_GROUP:
        if (!*s)
            return failn(p, v, kpath, "must not be empty");
        if (!group_exists(s))
            return failn(p, v, kpath, "no group '%s' on this system", s);
        set_str(dst, s);
        return 0;
    case T_MAP:
    case T_FUNC:
        break;
    }
    return failn(p, v, kpath, "internal error: unhandled field type");
}

/* --- mappings ----------------------------------------------------------- */

static int walk(struct pctx *p, const yaml_node_t *map, const char *path, const struct field *f,
                size_t nf, void *base, const yaml_node_t **vals);

static char *join(const char *path, const char *key)
{
    return *path ? xasprintf("%s.%s", path, key) : xstrdup(key);
}

static int parse_value(struct pctx *p, const struct field *f, const yaml_node_t *v,
                       const char *kpath, void *base)
{
    if (f->type == T_FUNC)
        return f->fn(p, v, kpath, base);
    if (f->type == T_MAP) {
        const yaml_node_t *vals[MAX_FIELDS] = {0};
        void *sub = (char *)base + f->off;
        if (is_null(v))
            return f->check ? f->check(p, v, kpath, sub, vals) : 0;
        if (v->type != YAML_MAPPING_NODE)
            return failn(p, v, kpath, "expected a mapping, got %s", node_desc(v));
        if (walk(p, v, kpath, f->sub, f->nsub, sub, vals) < 0)
            return -1;
        return f->check ? f->check(p, v, kpath, sub, vals) : 0;
    }
    if (v->type != YAML_SCALAR_NODE)
        return failn(p, v, kpath, "expected %s, got %s", type_desc(f->type), node_desc(v));
    return parse_scalar(p, f, v, kpath, base);
}

/* Walks mapping map (under dotted path) against fields f[0..nf), writing
 * into base.  Unknown and duplicate keys are errors; so are absent
 * F_REQUIRED keys, reported at the mapping.  vals (nf entries, zeroed by
 * the caller) receives each field's value node. */
static int walk(struct pctx *p, const yaml_node_t *map, const char *path, const struct field *f,
                size_t nf, void *base, const yaml_node_t **vals)
{
    const yaml_node_t *keys[MAX_FIELDS] = {0};
    const char *names[MAX_FIELDS];

    for (size_t i = 0; i < nf; i++)
        names[i] = f[i].key;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        const yaml_node_t *k = node_at(p, pr->key), *v = node_at(p, pr->value);
        const char *key, *hint;
        size_t i;
        char *kpath;
        int rc;

        if (k->type != YAML_SCALAR_NODE)
            return failn(p, k, path, "expected a key name, got %s", node_desc(k));
        if (scalar_text(p, k, path, &key) < 0)
            return -1;
        for (i = 0; i < nf && strcmp(key, f[i].key); i++)
            ;
        if (i == nf) {
            if (!strcmp(key, "<<"))
                return failn(p, k, path, "YAML merge keys ('<<') are not supported");
            hint = suggest(key, names, nf);
            if (hint)
                return failn(p, k, path, "unknown key '%s'; did you mean '%s'?", key, hint);
            return failn(p, k, path, "unknown key '%s'", key);
        }
        if (keys[i])
            return failn(p, k, path, "duplicate key '%s' (first at %zu:%zu)", key,
                         keys[i]->start_mark.line + 1, keys[i]->start_mark.column + 1);
        keys[i] = k;
        vals[i] = v;
        kpath = join(path, key);
        rc = parse_value(p, &f[i], v, kpath, base);
        free(kpath);
        if (rc < 0)
            return -1;
    }
    for (size_t i = 0; i < nf; i++) {
        if ((f[i].flags & F_REQUIRED) && !vals[i])
            return failn(p, map, path, "missing required key '%s'", f[i].key);
    }
    return 0;
}

/* --- lists and sections ------------------------------------------------- */

/* Checks that v is a list (null: empty) and returns its item count. */
static int list_items(struct pctx *p, const yaml_node_t *v, const char *kpath, size_t *n)
{
    *n = 0;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return failn(p, v, kpath, "expected a list, got %s", node_desc(v));
    *n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    return 0;
}

static int fn_uids(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base)
{
    static const struct field uid = {"uid", T_UINT, 0, 0, 0, 4294967294.0, NULL, NULL, 0, NULL};
    struct conf *c = base;
    size_t n;

    if (list_items(p, v, kpath, &n) < 0 || n == 0)
        return p->err ? -1 : 0;
    free(c->allowed_uids);
    c->allowed_uids = xcalloc(n, sizeof *c->allowed_uids);
    c->n_allowed_uids = 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *it = node_at(p, v->data.sequence.items.start[i]);
        char *ipath = xasprintf("%s[%zu]", kpath, i);
        const char *s;
        long long ll;
        int rc = -1;

        if (it->type != YAML_SCALAR_NODE)
            failn(p, it, ipath, "expected a uid (a whole number), got %s", node_desc(it));
        else if (scalar_text(p, it, ipath, &s) == 0 && range_uint(p, it, ipath, s, &uid, &ll) == 0)
            rc = 0;
        free(ipath);
        if (rc < 0)
            return -1;
        c->allowed_uids[c->n_allowed_uids++] = (uid_t)ll;
    }
    return 0;
}

static int fn_groups(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base)
{
    static const struct field grp = {"group", T_GROUP, 0, F_REQUIRED, 0, 0, NULL, NULL, 0, NULL};
    struct conf *c = base;
    size_t n;

    if (list_items(p, v, kpath, &n) < 0 || n == 0)
        return p->err ? -1 : 0;
    c->allowed_groups = xcalloc(n, sizeof *c->allowed_groups);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *it = node_at(p, v->data.sequence.items.start[i]);
        char *ipath = xasprintf("%s[%zu]", kpath, i);
        int rc;

        rc = parse_value(p, &grp, it, ipath, &c->allowed_groups[i]);
        free(ipath);
        if (rc < 0)
            return -1;
        c->n_allowed_groups++;
    }
    return 0;
}

#define PF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_provider, member), flags, lo, hi, NULL, NULL, 0, NULL      \
    }
#define DAY_MS (24.0 * 3600 * 1000)

/* deployments: {MODEL: DEPLOYMENT, ...} (azure): where inference for a model
 * name is sent; a model not listed is its own deployment name. */
static int fn_deployments(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base)
{
    struct conf_provider *pr = base;
    yaml_node_pair_t *start;
    size_t n;

    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return failn(p, v, kpath, "expected a mapping of model names to deployment names, got %s",
                     node_desc(v));
    start = v->data.mapping.pairs.start;
    n = (size_t)(v->data.mapping.pairs.top - start);
    pr->deploy_models = xcalloc(n ? n : 1, sizeof *pr->deploy_models);
    pr->deploy_names = xcalloc(n ? n : 1, sizeof *pr->deploy_names);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = node_at(p, start[i].key), *dv = node_at(p, start[i].value);
        const char *model, *dep;
        if (k->type != YAML_SCALAR_NODE || dv->type != YAML_SCALAR_NODE)
            return failn(p, k, kpath, "expected MODEL: DEPLOYMENT, got %s", node_desc(dv));
        if (scalar_text(p, k, kpath, &model) < 0 || scalar_text(p, dv, kpath, &dep) < 0)
            return -1;
        if (!*model || !*dep)
            return failn(p, k, kpath, "model and deployment names must not be empty");
        pr->deploy_models[pr->n_deployments] = xstrdup(model);
        pr->deploy_names[pr->n_deployments] = xstrdup(dep);
        pr->n_deployments++;
    }
    return 0;
}

#define PFN(key, fn)                                                                               \
    {                                                                                              \
        key, T_FUNC, 0, 0, 0, 0, fn, NULL, 0, NULL                                                 \
    }

enum { PF_KIND, PF_BASE_URL, PF_API_KEY_FILE, PF_API_VERSION, PF_DEPLOYMENTS, PF_ACCOUNT };
static const struct field provider_fields[] = {
    [PF_KIND] = PF("kind", T_KIND, kind, F_REQUIRED, 0, 0),
    [PF_BASE_URL] = PF("base_url", T_URL, base_url, F_REQUIRED, 0, 0),
    [PF_API_KEY_FILE] = PF("api_key_file", T_KEYFILE, api_key_file, 0, 0, 0),
    [PF_API_VERSION] = PF("api_version", T_STR, api_version, 0, 0, 0),
    [PF_DEPLOYMENTS] = PFN("deployments", fn_deployments),
    [PF_ACCOUNT] = PF("account", T_STR, account, 0, 0, 0),
    PF("ca_file", T_RFILE, ca_file, 0, 0, 0),
    PF("poll_interval", T_DUR, poll_interval_ms, 0, 10, DAY_MS),
    PF("max_concurrency", T_UINT, max_concurrency, 0, 1, 256),
    PF("connect_timeout", T_DUR, connect_timeout_ms, 0, 1, 3600.0 * 1000),
    PF("request_timeout", T_DUR, request_timeout_ms, 0, 1, DAY_MS),
    PF("upload_timeout", T_DUR, upload_timeout_ms, 0, 1, DAY_MS),
    PF("max_retries", T_UINT, max_retries, 0, 0, 100),
    PF("score_template", T_TMPL, score_template, 0, 0, 0),
    PF("delete_upload", T_DELUP, delete_upload, 0, 0, 0),
};

/* A provider name appears in commands, logs and the database. */
static int valid_provider_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int fn_providers(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base)
{
    struct conf *c = base;
    yaml_node_pair_t *start;
    size_t n;

    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return failn(p, v, kpath, "expected a mapping of provider names to settings, got %s",
                     node_desc(v));
    start = v->data.mapping.pairs.start;
    n = (size_t)(v->data.mapping.pairs.top - start);
    c->providers = xcalloc(n ? n : 1, sizeof *c->providers);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = node_at(p, start[i].key), *pv = node_at(p, start[i].value);
        const yaml_node_t *vals[MAX_FIELDS] = {0};
        struct conf_provider *pr;
        const char *name;
        char *ppath;
        int rc = -1;

        if (k->type != YAML_SCALAR_NODE)
            return failn(p, k, kpath, "expected a provider name, got %s", node_desc(k));
        if (scalar_text(p, k, kpath, &name) < 0)
            return -1;
        if (!valid_provider_name(name))
            return failn(p, k, kpath,
                         "provider name '%s' must be 1 to 64 letters, digits, '.', '_' or '-'",
                         name);
        for (size_t j = 0; j < i; j++) {
            const yaml_node_t *kj = node_at(p, start[j].key);
            if (!strcmp((const char *)kj->data.scalar.value, name))
                return failn(p, k, kpath, "duplicate provider '%s' (first at %zu:%zu)", name,
                             kj->start_mark.line + 1, kj->start_mark.column + 1);
        }
        pr = &c->providers[c->n_providers++];
        conf_provider_defaults(pr);
        pr->name = xstrdup(name);
        ppath = xasprintf("%s.%s", kpath, name);
        if (pv->type != YAML_MAPPING_NODE)
            failn(p, pv, ppath, "expected a mapping with at least kind and base_url, got %s",
                  is_null(pv) ? "nothing" : node_desc(pv));
        else if (walk(p, pv, ppath, provider_fields, VT_ARRAY_LEN(provider_fields), pr, vals) < 0)
            ;
        else if (pr->kind != PROVIDER_MANUAL && !vals[PF_API_KEY_FILE])
            failn(p, pv, ppath, "missing required key 'api_key_file' (kind %s needs an API key)",
                  provider_kind_name(pr->kind));
        else if (pr->kind == PROVIDER_AZURE && !vals[PF_API_VERSION])
            failn(p, pv, ppath,
                  "missing required key 'api_version' (kind azure sends it on every request, "
                  "e.g. api_version: 2024-10-21)");
        else if (pr->kind == PROVIDER_FIREWORKS && !vals[PF_ACCOUNT])
            failn(p, pv, ppath,
                  "missing required key 'account' (kind fireworks keeps datasets and jobs under "
                  "accounts/ACCOUNT, e.g. account: my-team)");
        else if (pr->kind != PROVIDER_FIREWORKS && vals[PF_ACCOUNT])
            failn(p, vals[PF_ACCOUNT], ppath, "'account' is a key of kind fireworks only (this is %s)",
                  provider_kind_name(pr->kind));
        else if (pr->kind == PROVIDER_FIREWORKS &&
                 (!*pr->account || strlen(pr->account) > 63 ||
                  strspn(pr->account, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(pr->account)))
            failn(p, vals[PF_ACCOUNT], ppath,
                  "account '%s' must be 1 to 63 lowercase letters, digits or '-' (a Fireworks "
                  "account id)",
                  pr->account);
        else if (pr->kind != PROVIDER_AZURE && (vals[PF_API_VERSION] || vals[PF_DEPLOYMENTS]))
            failn(p, vals[PF_API_VERSION] ? vals[PF_API_VERSION] : vals[PF_DEPLOYMENTS], ppath,
                  "'api_version' and 'deployments' are keys of kind azure only (this is %s)",
                  provider_kind_name(pr->kind));
        else
            rc = 0;
        free(ppath);
        if (rc < 0)
            return -1;
    }
    return 0;
}

#define GF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_generator, member), flags, lo, hi, NULL, NULL, 0, NULL     \
    }
enum { GF_PROVIDER, GF_M1, GF_M2 };
static const struct field generator_fields[] = {
    [GF_PROVIDER] = GF("provider", T_STR, provider, 0, 0, 0),
    [GF_M1] = GF("m1_model", T_STR, m1_model, 0, 0, 0),
    [GF_M2] = GF("m2_model", T_STR, m2_model, 0, 0, 0),
    GF("temperature", T_DBL, temperature, F_OPEN_LO, 0, 2),
    GF("target_log10p", T_DBL, target_log10p, F_OPEN_HI, -1000, 0),
    GF("max_tokens", T_UINT, max_tokens, 0, 1, 4096),
    GF("logprobs", T_LPMODE, logprobs_processed, 0, 0, 0),
    GF("wordlist", T_RFILE, wordlist, 0, 0, 0),
    GF("ngram_order", T_UINT, ngram_order, 0, 1, 4),
    GF("ngram_temperature", T_DBL, ngram_temperature, F_OPEN_LO, 0, 2),
    GF("ngram_train_rows", T_UINT, ngram_train_rows, 0, 0, 1e9),
};

/* The language-model generator needs a provider and an M2 to sample. */
static int check_generator(struct pctx *p, const yaml_node_t *map, const char *kpath, void *base,
                           const yaml_node_t **vals)
{
    struct conf_generator *g = base;

    if (!g->provider) {
        if (g->m1_model)
            return failn(p, vals[GF_M1], kpath,
                         "m1_model is set but provider is not; name the provider that serves it");
        if (g->m2_model)
            return failn(p, vals[GF_M2], kpath,
                         "m2_model is set but provider is not; name the provider that serves it");
        return 0;
    }
    if (!g->m2_model)
        return failn(p, map, kpath,
                     "missing required key 'm2_model' (the model sampled when provider is set)");
    p->gen_provider = vals[GF_PROVIDER];
    return 0;
}

#define VF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_verify, member), flags, lo, hi, NULL, NULL, 0, NULL        \
    }
static const struct field verify_fields[] = {
    VF("trials", T_UINT, trials, 0, 1, 1000),
    VF("controls", T_UINT, controls, 0, 0, 1000),
    VF("temperature", T_DBL, temperature, 0, 0, 2),
    VF("alpha", T_DBL, alpha, F_OPEN_LO | F_OPEN_HI, 0, 1),
    VF("max_tokens_slack", T_UINT, max_tokens_slack, 0, 0, 4096),
    VF("sequential", T_BOOL, sequential, 0, 0, 0),
    VF("coverage", T_UINT, coverage, 0, 0, 2000),
    VF("alpha_coverage", T_DBL, alpha_coverage, F_OPEN_LO | F_OPEN_HI, 0, 1),
    VF("require_coverage", T_BOOL, require_coverage, 0, 0, 0),
    VF("min_controls", T_UINT, min_controls, 0, 1, 1000),
    VF("perplexity_sample", T_UINT, perplexity_sample, 0, 0, 5000),
};

#define AF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_alerts, member), flags, lo, hi, NULL, NULL, 0, NULL        \
    }
static const struct field alerts_fields[] = {
    AF("webhook_url", T_URL, webhook_url, 0, 0, 0),
    AF("timeout", T_DUR, timeout_ms, 0, 1, 3600.0 * 1000),
    AF("max_retries", T_UINT, max_retries, 0, 0, 100),
};

#define XF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_control, member), flags, lo, hi, NULL, NULL, 0, NULL       \
    }
static const struct field control_fields[] = {
    XF("max_connections", T_UINT, max_connections, 0, 1, 65536),
    XF("max_buffered", T_SIZE, max_buffered_bytes, 0, 64.0 * 1024, 16.0 * 1024 * 1024 * 1024),
    XF("partial_line_timeout", T_DUR, partial_line_timeout_ms, 0, 100, DAY_MS),
    XF("realtime", T_BOOL, realtime, 0, 0, 0),
};

#define SF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf_schedule, member), flags, lo, hi, NULL, NULL, 0, NULL      \
    }
static const struct field schedule_fields[] = {
    SF("job", T_STR, job, F_REQUIRED, 0, 0),
    SF("every", T_DUR, every_ms, F_REQUIRED, 1000, 366 * DAY_MS),
};

static int fn_schedules(struct pctx *p, const yaml_node_t *v, const char *kpath, void *base)
{
    struct conf *c = base;
    size_t n;

    if (list_items(p, v, kpath, &n) < 0 || n == 0)
        return p->err ? -1 : 0;
    c->schedules = xcalloc(n, sizeof *c->schedules);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *it = node_at(p, v->data.sequence.items.start[i]);
        const yaml_node_t *vals[MAX_FIELDS] = {0};
        struct conf_schedule *s = &c->schedules[c->n_schedules++];
        char *ipath = xasprintf("%s[%zu]", kpath, i);
        int rc;

        if (it->type != YAML_MAPPING_NODE)
            rc = failn(p, it, ipath, "expected a mapping {job: ..., every: ...}, got %s",
                       node_desc(it));
        else
            rc = walk(p, it, ipath, schedule_fields, VT_ARRAY_LEN(schedule_fields), s, vals);
        free(ipath);
        if (rc < 0)
            return -1;
    }
    return 0;
}

#define CF(key, type, member, flags, lo, hi)                                                       \
    {                                                                                              \
        key, type, offsetof(struct conf, member), flags, lo, hi, NULL, NULL, 0, NULL               \
    }
#define CFN(key, fn)                                                                               \
    {                                                                                              \
        key, T_FUNC, 0, 0, 0, 0, fn, NULL, 0, NULL                                                 \
    }
#define CMAP(key, member, sub, check)                                                              \
    {                                                                                              \
        key, T_MAP, offsetof(struct conf, member), 0, 0, 0, NULL, sub, VT_ARRAY_LEN(sub), check    \
    }
static const struct field top_fields[] = {
    CF("state_dir", T_PATH, state_dir, F_REQUIRED, 0, 0),
    CF("socket", T_SOCKPATH, socket, F_REQUIRED, 0, 0),
    CF("socket_mode", T_MODE, socket_mode, 0, 0, 0),
    CF("socket_group", T_GROUP, socket_group, 0, 0, 0),
    CFN("allowed_uids", fn_uids),
    CFN("allowed_groups", fn_groups),
    CF("log_level", T_LOGLEVEL, log_level, 0, 0, 0),
    CF("max_request_size", T_SIZE, max_request_bytes, 0, 1024, 1024.0 * 1024 * 1024),
    CF("signing_key_file", T_PATH, signing_key_file, 0, 0, 0),
    CFN("providers", fn_providers),
    CMAP("generator", generator, generator_fields, check_generator),
    CMAP("verify", verify, verify_fields, NULL),
    CFN("schedules", fn_schedules),
    CMAP("alerts", alerts, alerts_fields, NULL),
    CMAP("control", control, control_fields, NULL),
};

#define FITS(t) _Static_assert(VT_ARRAY_LEN(t) <= MAX_FIELDS, #t " exceeds MAX_FIELDS")
FITS(top_fields);
FITS(provider_fields);
FITS(generator_fields);
FITS(verify_fields);
FITS(alerts_fields);
FITS(control_fields);
FITS(schedule_fields);

/* generator.provider must name a provider, wherever the two appear. */
static int check_generator_provider(struct pctx *p)
{
    const struct conf *c = p->c;
    const char *want = c->generator.provider, *hint;
    const char **names;

    if (!want || conf_provider_find(c, want))
        return 0;
    if (c->n_providers == 0)
        return failn(p, p->gen_provider, "generator.provider",
                     "no provider named '%s' (no providers are defined)", want);
    names = xcalloc(c->n_providers, sizeof *names);
    for (size_t i = 0; i < c->n_providers; i++)
        names[i] = c->providers[i].name;
    hint = suggest(want, names, c->n_providers);
    if (hint)
        failn(p, p->gen_provider, "generator.provider",
              "no provider named '%s'; did you mean '%s'?", want, hint);
    else
        failn(p, p->gen_provider, "generator.provider",
              "no provider named '%s' (define it under providers)", want);
    free(names);
    return -1;
}

/* --- the document ------------------------------------------------------- */

/* Position of byte offset off in data, for reader errors (bad encoding),
 * which libyaml reports by offset only.  Columns count characters. */
static yaml_mark_t mark_of_offset(const char *data, size_t len, size_t off)
{
    yaml_mark_t m = {0, 0, 0};

    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            m.column++;
        }
    }
    m.index = off;
    return m;
}

static int syntax_error(struct pctx *p, const yaml_parser_t *ps, const char *data, size_t len)
{
    yaml_mark_t m = ps->problem_mark;
    const char *problem = ps->problem ? ps->problem : "unknown error";

    if (ps->error == YAML_READER_ERROR) {
        m = mark_of_offset(data, len, ps->problem_offset);
        return failm(p, m, NULL, "invalid text: %s", problem);
    }
    if (ps->error == YAML_MEMORY_ERROR)
        return failm(p, m, NULL, "out of memory parsing YAML");
    if (ps->context)
        return failm(p, m, NULL, "YAML syntax error: %s (%s at %zu:%zu)", problem, ps->context,
                     ps->context_mark.line + 1, ps->context_mark.column + 1);
    return failm(p, m, NULL, "YAML syntax error: %s", problem);
}

int conf_parse_yaml(const char *name, const char *data, size_t len, struct conf *c, char **err)
{
    yaml_parser_t ps;
    yaml_document_t doc, extra;
    int have_parser = 0, have_doc = 0, have_extra = 0, rc = -1;
    struct pctx p = {.name = name, .doc = &doc, .c = c};
    const yaml_node_t *root;
    const yaml_node_t *vals[MAX_FIELDS] = {0};
    const yaml_mark_t start = {0, 0, 0};

    if (!yaml_parser_initialize(&ps)) {
        failm(&p, start, NULL, "out of memory starting the YAML parser");
        goto out;
    }
    have_parser = 1;
    /* UTF-8 only: a UTF-8 byte-order mark is skipped (positions do not
     * count it); UTF-16 files are refused as invalid text. */
    if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) {
        data += 3;
        len -= 3;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)data, len);
    yaml_parser_set_encoding(&ps, YAML_UTF8_ENCODING);
    if (!yaml_parser_load(&ps, &doc)) {
        syntax_error(&p, &ps, data, len);
        goto out;
    }
    have_doc = 1;
    root = yaml_document_get_root_node(&doc);
    if (!root) {
        failm(&p, start, NULL, "missing required key 'state_dir' (the file holds no settings)");
        goto out;
    }
    if (!yaml_parser_load(&ps, &extra)) {
        syntax_error(&p, &ps, data, len);
        goto out;
    }
    have_extra = 1;
    if (yaml_document_get_root_node(&extra)) {
        failm(&p, yaml_document_get_root_node(&extra)->start_mark, NULL,
              "a second YAML document starts here; the file must hold exactly one");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        failn(&p, root, NULL, "expected a mapping of settings at the top level, got %s",
              node_desc(root));
        goto out;
    }
    if (walk(&p, root, "", top_fields, VT_ARRAY_LEN(top_fields), c, vals) < 0)
        goto out;
    if (check_generator_provider(&p) < 0)
        goto out;
    rc = 0;
out:
    if (have_extra)
        yaml_document_delete(&extra);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&ps);
    if (rc < 0)
        *err = p.err ? p.err : xasprintf("%s: invalid configuration", name);
    else
        free(p.err);
    return rc;
}

/* --- comparing two configurations (SIGHUP) ------------------------------ */

/* The walk below reads the same field tables the parser writes through,
 * so a key added to the schema is compared without further code; only
 * T_FUNC fields, whose storage has no table, are named here. */

struct diffctx {
    void (*changed)(const char *key, void *ctx);
    void *ctx;
};

static int str_differ(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    return strcmp(a, b) != 0;
}

static int scalar_differ(enum ftype t, const void *a, const void *b)
{
    switch (t) {
    case T_STR:
    case T_PATH:
    case T_SOCKPATH:
    case T_RFILE:
    case T_KEYFILE:
    case T_URL:
    case T_GROUP:
    case T_TMPL:
        return str_differ(*(char *const *)a, *(char *const *)b);
    case T_DUR:
    case T_SIZE:
        return *(const uint64_t *)a != *(const uint64_t *)b;
    case T_UINT:
        return *(const unsigned *)a != *(const unsigned *)b;
    case T_DBL:
        return memcmp(a, b, sizeof(double)) != 0; /* NaN-safe, -0 counts as a change */
    case T_BOOL:
    case T_LOGLEVEL:
    case T_LPMODE:
        return *(const int *)a != *(const int *)b;
    case T_MODE:
        return *(const mode_t *)a != *(const mode_t *)b;
    case T_KIND:
        return *(const enum provider_kind *)a != *(const enum provider_kind *)b;
    case T_DELUP:
        return *(const enum conf_delete_upload *)a != *(const enum conf_delete_upload *)b;
    case T_MAP:
    case T_FUNC:
        break;
    }
    return 0;
}

static void diff_fields(struct diffctx *x, const char *path, const struct field *f, size_t nf,
                        const void *a, const void *b);

static void diff_providers(struct diffctx *x, const struct conf *a, const struct conf *b)
{
    for (size_t i = 0; i < a->n_providers; i++) {
        const struct conf_provider *pa = &a->providers[i];
        const struct conf_provider *pb = conf_provider_find(b, pa->name);
        char *path = xasprintf("providers.%s", pa->name);
        if (!pb)
            x->changed(path, x->ctx);
        else
            diff_fields(x, path, provider_fields, VT_ARRAY_LEN(provider_fields), pa, pb);
        free(path);
    }
    for (size_t i = 0; i < b->n_providers; i++) {
        if (conf_provider_find(a, b->providers[i].name))
            continue;
        char *path = xasprintf("providers.%s", b->providers[i].name);
        x->changed(path, x->ctx);
        free(path);
    }
}

static int uids_differ(const struct conf *a, const struct conf *b)
{
    if (a->n_allowed_uids != b->n_allowed_uids)
        return 1;
    for (size_t i = 0; i < a->n_allowed_uids; i++)
        if (a->allowed_uids[i] != b->allowed_uids[i])
            return 1;
    return 0;
}

static int groups_differ(const struct conf *a, const struct conf *b)
{
    if (a->n_allowed_groups != b->n_allowed_groups)
        return 1;
    for (size_t i = 0; i < a->n_allowed_groups; i++)
        if (strcmp(a->allowed_groups[i], b->allowed_groups[i]) != 0)
            return 1;
    return 0;
}

static int schedules_differ(const struct conf *a, const struct conf *b)
{
    if (a->n_schedules != b->n_schedules)
        return 1;
    for (size_t i = 0; i < a->n_schedules; i++)
        if (strcmp(a->schedules[i].job, b->schedules[i].job) != 0 ||
            a->schedules[i].every_ms != b->schedules[i].every_ms)
            return 1;
    return 0;
}

/* A provider's deployments (azure), in order. */
static int deployments_differ(const struct conf_provider *a, const struct conf_provider *b)
{
    if (a->n_deployments != b->n_deployments)
        return 1;
    for (size_t i = 0; i < a->n_deployments; i++)
        if (strcmp(a->deploy_models[i], b->deploy_models[i]) != 0 ||
            strcmp(a->deploy_names[i], b->deploy_names[i]) != 0)
            return 1;
    return 0;
}

static void diff_func(struct diffctx *x, const char *key, const struct conf *a,
                      const struct conf *b)
{
    int d;
    if (!strcmp(key, "providers")) {
        diff_providers(x, a, b);
        return;
    }
    if (!strcmp(key, "allowed_uids"))
        d = uids_differ(a, b);
    else if (!strcmp(key, "allowed_groups"))
        d = groups_differ(a, b);
    else if (!strcmp(key, "schedules"))
        d = schedules_differ(a, b);
    else
        d = 1; /* a T_FUNC key nobody taught to compare: say it changed rather than hide it */
    if (d)
        x->changed(key, x->ctx);
}

static void diff_fields(struct diffctx *x, const char *path, const struct field *f, size_t nf,
                        const void *a, const void *b)
{
    for (size_t i = 0; i < nf; i++) {
        char *kpath = join(path, f[i].key);
        if (f[i].type == T_FUNC && f == provider_fields) {
            if (!strcmp(f[i].key, "deployments") && deployments_differ(a, b))
                x->changed(kpath, x->ctx);
        } else if (f[i].type == T_FUNC) {
            diff_func(x, kpath, a, b); /* the other T_FUNC fields are top-level */
        }
        else if (f[i].type == T_MAP)
            diff_fields(x, kpath, f[i].sub, f[i].nsub, (const char *)a + f[i].off,
                        (const char *)b + f[i].off);
        else if (scalar_differ(f[i].type, (const char *)a + f[i].off, (const char *)b + f[i].off))
            x->changed(kpath, x->ctx);
        free(kpath);
    }
}

void conf_diff(const struct conf *a, const struct conf *b,
               void (*changed)(const char *key, void *ctx), void *ctx)
{
    struct diffctx x = {changed, ctx};
    diff_fields(&x, "", top_fields, VT_ARRAY_LEN(top_fields), a, b);
}
