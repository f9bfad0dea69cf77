/*
 * sim_faults.c — the fault SPEC of vtune-sim and the deterministic choice
 * of which request gets which fault.
 *
 * Grammar (also in vtune-sim --help):
 *
 *   SPEC     := "" | "none" | RULE ( "," RULE )*
 *   RULE     := KIND "=" WHEN [ ":" ARG ] [ "@" SELECTOR ]
 *   KIND     := an HTTP status 400..599 (e.g. 429, 500, 503)
 *             | "drop" | "drop-after" | "delay" | "malformed" | "truncate"
 *   WHEN     := RATE, a probability in [0,1]
 *             | "#" N, exactly the N-th request (1-based) to an endpoint
 *   ARG      := a duration ("250ms", "2s", bare number = seconds):
 *               the delay for "delay" (default 200ms), the Retry-After for
 *               429 and 503 (default 1s)
 *   SELECTOR := [ METHOD ":" ] PATH; PATH is matched against the route
 *               pattern ("/v1/fine_tuning/jobs/{id}") or the request path;
 *               a trailing "*" makes it a prefix of the request path
 *
 * Determinism: requests are numbered per endpoint key "METHOD PATTERN"
 * (0, 1, 2, ...).  Request seq of endpoint key K draws one number
 * u = mix(seed, hash(K), seq) in [0,1); the matching rules are tried in
 * SPEC order and the first whose cumulative rate exceeds u fires ("#N"
 * rules are tried first and fire on their own).  At most one fault per
 * request, so the rates of the rules matching one endpoint should sum to at
 * most 1.  Numbering per endpoint (not globally) keeps a client's faults
 * stable when unrelated requests interleave with its own.
 *
 * This file does no I/O and holds no state: sim_http.c owns the sequence
 * counters and the lock; tests/sim/test_sim_faults.c covers the logic.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "tests/sim/sim.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = a; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h = (h ^ ' ') * 0x100000001b3ULL;
    for (const char *p = b; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return h;
}

void sim_fault_rules_free(struct sim_fault_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rules[i].sel_method);
        free(rules[i].sel_path);
    }
    free(rules);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int parse_kind(const char *k, struct sim_fault_rule *r)
{
    static const struct {
        const char *name;
        enum sim_fault_kind kind;
    } names[] = {
        {"drop", FAULT_DROP},           {"drop-after", FAULT_DROP_AFTER}, {"delay", FAULT_DELAY},
        {"malformed", FAULT_MALFORMED}, {"truncate", FAULT_TRUNCATE},
    };
    for (size_t i = 0; i < VT_ARRAY_LEN(names); i++) {
        if (strcmp(k, names[i].name) == 0) {
            r->kind = names[i].kind;
            return 0;
        }
    }
    char *end;
    errno = 0;
    long v = strtol(k, &end, 10);
    if (errno || end == k || *end || v < 400 || v > 599)
        return -EINVAL;
    r->kind = FAULT_STATUS;
    r->status = (int)v;
    return 0;
}

static int parse_when(const char *w, struct sim_fault_rule *r)
{
    char *end;
    if (w[0] == '#') {
        errno = 0;
        unsigned long long n = strtoull(w + 1, &end, 10);
        if (errno || end == w + 1 || *end || n == 0 || w[1] == '-')
            return -EINVAL;
        r->nth = n;
        r->rate = 0;
        return 0;
    }
    errno = 0;
    double v = strtod(w, &end);
    if (errno || end == w || *end || !isfinite(v) || v < 0 || v > 1)
        return -EINVAL;
    r->rate = v;
    return 0;
}

/* One RULE (modified in place). */
static int parse_rule(char *text, struct sim_fault_rule *r, char **err)
{
    char *at = strchr(text, '@');
    if (at) {
        *at = '\0';
        char *sel = trim(at + 1);
        if (*sel == '\0') {
            *err = xasprintf("fault rule '%s': empty selector after '@'", text);
            return -EINVAL;
        }
        char *colon = strchr(sel, ':');
        if (colon && sel[0] != '/') {
            *colon = '\0';
            r->sel_method = xstrdup(trim(sel));
            sel = trim(colon + 1);
        }
        if (sel[0] != '/') {
            *err = xasprintf("fault rule '%s': selector path '%s' must start with '/'", text, sel);
            return -EINVAL;
        }
        r->sel_path = xstrdup(sel);
    }
    char *eq = strchr(text, '=');
    if (!eq) {
        *err = xasprintf("fault rule '%s': expected KIND=RATE (e.g. 429=0.1)", trim(text));
        return -EINVAL;
    }
    *eq = '\0';
    char *kind = trim(text);
    char *when = eq + 1;
    char *arg = strchr(when, ':');
    if (arg)
        *arg++ = '\0';
    when = trim(when);
    if (parse_kind(kind, r) < 0) {
        *err = xasprintf("fault kind '%s' unknown: use an HTTP status 400..599, drop, drop-after, "
                         "delay, malformed or truncate",
                         kind);
        return -EINVAL;
    }
    if (parse_when(when, r) < 0) {
        *err = xasprintf("fault '%s': '%s' is neither a rate in [0,1] nor #N (N >= 1)", kind, when);
        return -EINVAL;
    }
    if (r->kind == FAULT_DELAY)
        r->arg_ms = 200;
    else if (r->kind == FAULT_STATUS && (r->status == 429 || r->status == 503))
        r->arg_ms = 1000;
    if (arg) {
        arg = trim(arg);
        bool takes_arg = r->kind == FAULT_DELAY ||
                         (r->kind == FAULT_STATUS && (r->status == 429 || r->status == 503));
        if (!takes_arg) {
            *err = xasprintf("fault '%s' takes no ':ARG' (only delay, 429 and 503 do)", kind);
            return -EINVAL;
        }
        if (parse_duration_ms(arg, &r->arg_ms) < 0 || r->arg_ms > 3600000) {
            *err = xasprintf("fault '%s': '%s' is not a duration up to 1h (e.g. 250ms, 2s)", kind,
                             arg);
            return -EINVAL;
        }
    }
    return 0;
}

int sim_faults_parse(const char *spec, struct sim_fault_rule **rules, size_t *n, char **err)
{
    *rules = NULL;
    *n = 0;
    *err = NULL;
    if (!spec)
        return 0;
    char *copy = xstrdup(spec);
    char *s = trim(copy);
    int rc = 0;
    struct sim_fault_rule *out = NULL;
    size_t count = 0;
    if (*s == '\0' || strcmp(s, "none") == 0)
        goto out;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        out = xrealloc(out, (count + 1) * sizeof *out);
        memset(&out[count], 0, sizeof out[count]);
        count++;
        rc = parse_rule(tok, &out[count - 1], err);
        if (rc < 0)
            goto out;
    }
    if (count == 0) {
        rc = -EINVAL;
        *err = xasprintf("fault SPEC '%s' has no rule", spec);
    }
out:
    free(copy);
    if (rc < 0) {
        sim_fault_rules_free(out, count);
        return rc;
    }
    *rules = out;
    *n = count;
    return 0;
}

static bool rule_matches(const struct sim_fault_rule *r, const char *method, const char *pattern,
                         const char *path)
{
    if (r->sel_method && strcasecmp(r->sel_method, method) != 0)
        return false;
    if (!r->sel_path)
        return true;
    size_t len = strlen(r->sel_path);
    if (len > 0 && r->sel_path[len - 1] == '*')
        return strncmp(path, r->sel_path, len - 1) == 0;
    return strcmp(r->sel_path, pattern) == 0 || strcmp(r->sel_path, path) == 0;
}

struct sim_fault_pick sim_faults_pick(const struct sim_fault_rule *rules, size_t n, uint64_t seed,
                                      const char *method, const char *pattern, const char *path,
                                      uint64_t seq)
{
    struct sim_fault_pick p = {FAULT_NONE, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (rules[i].nth > 0 && rules[i].nth == seq + 1 &&
            rule_matches(&rules[i], method, pattern, path)) {
            p.kind = rules[i].kind;
            p.status = rules[i].status;
            p.arg_ms = rules[i].arg_ms;
            return p;
        }
    }
    uint64_t x = splitmix64(seed ^ splitmix64(fnv1a(method, pattern) ^ splitmix64(seq)));
    double u = (double)(x >> 11) / 9007199254740992.0; /* [0,1) */
    double cum = 0;
    for (size_t i = 0; i < n; i++) {
        if (rules[i].nth > 0 || !rule_matches(&rules[i], method, pattern, path))
            continue;
        cum += rules[i].rate;
        if (u < cum) {
            p.kind = rules[i].kind;
            p.status = rules[i].status;
            p.arg_ms = rules[i].arg_ms;
            return p;
        }
    }
    return p;
}

const char *sim_fault_name(const struct sim_fault_pick *p, char *out, size_t outlen)
{
    const char *name = "none";
    switch (p->kind) {
    case FAULT_NONE:
        break;
    case FAULT_STATUS:
        snprintf(out, outlen, "%d", p->status);
        return out;
    case FAULT_DROP:
        name = "drop";
        break;
    case FAULT_DROP_AFTER:
        name = "drop-after";
        break;
    case FAULT_DELAY:
        name = "delay";
        break;
    case FAULT_MALFORMED:
        name = "malformed";
        break;
    case FAULT_TRUNCATE:
        name = "truncate";
        break;
    }
    snprintf(out, outlen, "%s", name);
    return out;
}
