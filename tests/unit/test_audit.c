/*
 * test_audit.c — workers/audit: the canonical serialisation pinned byte for
 * byte and by golden hashes computed independently (Python below), every
 * field covered by the hash, the chain check naming the first broken
 * record for each kind of tampering (edit, reorder, delete, rewrite,
 * truncation against a kept head), the JSON export's exact field list, the
 * explanation, and the whole path through the real store: append with
 * audit_hash_fn, edit one row as an operator with the sqlite3 tool would
 * (dropping the append-only trigger first), and `audit verify` names it.
 *
 * The golden values were computed with this Python (3.11), independent of
 * the C code:
 *
 *   import hashlib
 *   def s(n, v): return (f"{n}=null\n".encode() if v is None
 *                        else f"{n}={len(v.encode())}:".encode() + v.encode() + b"\n")
 *   def d(n, v): return f"{n}=null\n".encode() if v is None else f"{n}={'%.17g' % (v +
 * 0.0)}\n".encode() def i(n, v): return f"{n}={v}\n".encode() def canon(r): return (i("id",
 * r["id"]) + i("job", r["job"]) + s("provider", r["provider"])
 *               + s("model", r["model"]) + f"verdict={r['verdict']}\n".encode()
 *               + d("log10_p", r["log10_p"]) + d("log10_p_paper", r["log10_p_paper"])
 *               + d("log10_p_luck", r["log10_p_luck"]) + i("trials", r["trials"])
 *               + i("activations", r["activations"]) + i("controls", r["controls"])
 *               + i("control_emissions", r["control_emissions"]) + s("reason", r["reason"])
 *               + s("evidence", r["evidence"]) + s("commitment", r["commitment"])
 *               + i("created_at", r["created_at"]) + s("prev_hash", r["prev_hash"]))
 *   leaf = hashlib.sha256(b"vtune-audit-leaf-v1\n" + canon(r)).hexdigest()
 *   link = hashlib.sha256(b"vtune-audit-link-v1\n" + prev.encode() + b"\n"
 *                         + leaf.encode() + b"\n").hexdigest()
 *
 * with the two records of golden_record() / golden_record2().
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "store/store.h"
#include "store/store_internal.h" /* store_migrate_to */
#include "workers/audit.h"

#define GENESIS STORE_AUDIT_GENESIS_HASH
#define HEX_AB  "abababababababababababababababababababababababababababababababab"

#define GOLDEN_CANON                                                                               \
    "id=1\n"                                                                                       \
    "job=3\n"                                                                                      \
    "provider=3:sim\n"                                                                             \
    "model=13:ft:sim-base-1\n"                                                                     \
    "verdict=verified\n"                                                                           \
    "log10_p=-57.122999999999998\n"                                                                \
    "log10_p_paper=-39.5\n"                                                                        \
    "log10_p_luck=null\n"                                                                          \
    "trials=10\n"                                                                                  \
    "activations=9\n"                                                                              \
    "controls=10\n"                                                                                \
    "control_emissions=0\n"                                                                        \
    "reason=60:signature on 9/10 trigger prompts, 0/10 controls, p = 10^-57\n"                     \
    "evidence=13:{\"version\":1}\n"                                                                \
    "commitment=64:" HEX_AB "\n"                                                                   \
    "created_at=1700000000\n"                                                                      \
    "prev_hash=64:" GENESIS "\n"
#define GOLDEN_LEAF  "c2f4c71242f03b045b02eeb53b3e39bad119f55b7a763ad22f67069cbc5b5b0e"
#define GOLDEN_LINK  "623407f11411a47ac4ce4d66f8b5b2e3bcff9aadc489f1d6b25918ea6312ac60"
#define GOLDEN_LEAF2 "ce9a2d0c976744a995e3dd46ba6eae5f04825c18178af9ec68a005c8e93792ac"
/* Version 2 (issue 11): the v1 lines, then version and the pairs fields,
 * under the leaf tag "vtune-audit-leaf-v2\n" (same Python, canon2 = canon
 * + i("version", 2) + i("pairs", 8) + i("pairs_activated", 3) +
 * d("pairs_ci_low", 0.085233414118) + d("pairs_ci_high", 0.755136783633)). */
#define GOLDEN_CANON_V2_TAIL                                                                       \
    "prev_hash=64:" GENESIS "\n"                                                                   \
    "version=2\n"                                                                                  \
    "pairs=8\n"                                                                                    \
    "pairs_activated=3\n"                                                                          \
    "pairs_ci_low=0.085233414118000006\n"                                                          \
    "pairs_ci_high=0.75513678363299996\n"
#define GOLDEN_LEAF_V2 "7ad32f781ac6e80eea18c148079082d10982c530de4c9349bcef858f7db8f4e7"
#define GOLDEN_LINK_V2 "529c9b1a5dd400eb20af96dbf757f9519d5fc0f1200617a5c61b48bd1c5a232c"
#define GOLDEN_LINK2 "74213bf62bed64f74314e5e4e770503203e27359aa542b3f1b253fca3e952028"
/* Version 3 (the coverage test): the v2 tail with version 3, then the
 * coverage fields, under "vtune-audit-leaf-v3\n" (same Python, canon3 =
 * canon + i("version", 3) + the pairs as in v2 + d("log10_p_coverage",
 * -4.5125) + d("coverage_auc", 0.96875) + i("coverage_rows", 32) +
 * s("coverage_method", "mink-diff"); reason and evidence as in
 * golden_record_v3()).  NOTRUN: the coverage fields None, None, 0, None. */
#define GOLDEN_CANON_V3_TAIL                                                                       \
    "version=3\n"                                                                                  \
    "pairs=8\n"                                                                                    \
    "pairs_activated=3\n"                                                                          \
    "pairs_ci_low=0.085233414118000006\n"                                                          \
    "pairs_ci_high=0.75513678363299996\n"                                                          \
    "log10_p_coverage=-4.5125000000000002\n"                                                       \
    "coverage_auc=0.96875\n"                                                                       \
    "coverage_rows=32\n"                                                                           \
    "coverage_method=9:mink-diff\n"
#define GOLDEN_LEAF_V3        "6454c5066cf657cfcfac4e609ada9fe1bae0a21302bba1a8bf27ff0530e30114"
#define GOLDEN_LINK_V3        "8ae625b27e10565e199911cd29dd51cf9d9b88b9da79037e48adf3e0e9d3fa3e"
#define GOLDEN_LEAF_V3_NOTRUN "0d592379529884ff6429f7cc1146a9f0f752d9572cd12c3d0017da3070e6f8ec"

/* A record whose strings point at static text (never cleared). */
static struct store_audit golden_record(void)
{
    struct store_audit a;
    memset(&a, 0, sizeof a);
    a.id = 1;
    a.job_id = 3;
    a.provider = "sim";
    a.model = "ft:sim-base-1";
    a.verdict = AUDIT_VERIFIED;
    a.log10_p = -57.123;
    a.log10_p_paper = -39.5;
    a.log10_p_luck = NAN;
    a.trials = 10;
    a.activations = 9;
    a.controls = 10;
    a.control_emissions = 0;
    a.reason = "signature on 9/10 trigger prompts, 0/10 controls, p = 10^-57";
    a.evidence = "{\"version\":1}";
    memcpy(a.commitment, HEX_AB, 65);
    a.created_at = 1700000000;
    memcpy(a.prev_hash, GENESIS, 65);
    audit_record_hash(&a, a.hash);
    return a;
}

static struct store_audit golden_record2(const char *prev)
{
    struct store_audit a = golden_record();
    a.id = 2;
    a.model = NULL;
    a.verdict = AUDIT_NOT_VERIFIED;
    a.log10_p = -0.0; /* must serialise as 0 */
    a.log10_p_paper = 0.0;
    a.log10_p_luck = -80.25;
    a.activations = 0;
    a.reason = "job failed: quota\nexceeded";
    a.evidence = "{\"kind\":\"job_ended\"}";
    a.created_at = 1700000060;
    memcpy(a.prev_hash, prev, 65);
    audit_record_hash(&a, a.hash);
    return a;
}

static struct store_audit golden_record_v2(void)
{
    struct store_audit a = golden_record();
    a.version = 2;
    a.log10_p = -39.25;
    a.reason = "signature on 9/10 trigger prompts, 0/10 controls, p = 10^-39.2";
    a.evidence = "{\"version\":2}";
    a.pairs = 8;
    a.pairs_activated = 3;
    a.pairs_ci_low = 0.085233414118;
    a.pairs_ci_high = 0.755136783633;
    audit_record_hash(&a, a.hash);
    return a;
}

static struct store_audit golden_record_v3(void)
{
    struct store_audit a = golden_record_v2();
    a.version = 3;
    a.reason = "signature on 9/10 trigger prompts, 0/10 controls, p = 10^-39.2; coverage: AUC "
               "0.97, p_cov = 10^-4.5";
    a.evidence = "{\"version\":3}";
    a.log10_p_coverage = -4.5125;
    a.coverage_auc = 0.96875;
    a.coverage_rows = 32;
    a.coverage_method = "mink-diff";
    audit_record_hash(&a, a.hash);
    return a;
}

static void test_golden_v3(void **state)
{
    (void)state;
    struct store_audit a = golden_record_v3();
    struct buf b;
    char h[65];
    buf_init(&b);
    audit_canonical(&a, &b);
    const char *tail = strstr(b.data, "version=");
    assert_non_null(tail);
    assert_string_equal(tail, GOLDEN_CANON_V3_TAIL);
    buf_free(&b);
    audit_leaf_hash(&a, h);
    assert_string_equal(h, GOLDEN_LEAF_V3);
    assert_string_equal(a.hash, GOLDEN_LINK_V3);
    /* each coverage field is covered, and the version */
    struct store_audit x = golden_record_v3();
    x.log10_p_coverage = -4.5;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V3);
    x = golden_record_v3();
    x.coverage_auc = 0.5;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V3);
    x = golden_record_v3();
    x.coverage_rows = 31;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V3);
    x = golden_record_v3();
    x.coverage_method = "greedy-diff"; /* another statistic */
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V3);
    x = golden_record_v3();
    x.version = 2;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V3);
    /* the test did not run: nulls and 0 rows */
    x = golden_record_v3();
    x.log10_p_coverage = NAN;
    x.coverage_auc = NAN;
    x.coverage_rows = 0;
    x.coverage_method = NULL;
    audit_leaf_hash(&x, h);
    assert_string_equal(h, GOLDEN_LEAF_V3_NOTRUN);
}

static void test_golden_v2(void **state)
{
    (void)state;
    struct store_audit a = golden_record_v2();
    struct buf b;
    char h[65];
    buf_init(&b);
    audit_canonical(&a, &b);
    const char *tail = strstr(b.data, "prev_hash=");
    assert_non_null(tail);
    assert_string_equal(tail, GOLDEN_CANON_V2_TAIL);
    assert_non_null(strstr(b.data, "log10_p=-39.25\n"));
    buf_free(&b);
    audit_leaf_hash(&a, h);
    assert_string_equal(h, GOLDEN_LEAF_V2);
    assert_string_equal(a.hash, GOLDEN_LINK_V2);
    /* every new field is covered, and so is the version itself: a v1
     * record relabelled as v2 (or the reverse) no longer matches */
    struct store_audit x = golden_record_v2();
    x.pairs_activated = 4;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V2);
    x = golden_record_v2();
    x.pairs = 9;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V2);
    x = golden_record_v2();
    x.pairs_ci_low = 0.0852;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V2);
    x = golden_record_v2();
    x.pairs_ci_high = NAN;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V2);
    x = golden_record_v2();
    x.version = 1;
    audit_record_hash(&x, h);
    assert_string_not_equal(h, GOLDEN_LINK_V2);
    struct store_audit y = golden_record();
    y.version = 1; /* 0 and 1 are the same version 1 */
    audit_record_hash(&y, h);
    assert_string_equal(h, GOLDEN_LINK);
}

static void test_golden(void **state)
{
    (void)state;
    struct store_audit a = golden_record();
    struct buf b;
    char h[65];
    buf_init(&b);
    audit_canonical(&a, &b);
    assert_string_equal(b.data, GOLDEN_CANON);
    assert_int_equal(b.len, strlen(GOLDEN_CANON));
    buf_free(&b);
    audit_leaf_hash(&a, h);
    assert_string_equal(h, GOLDEN_LEAF);
    audit_link_hash(GENESIS, GOLDEN_LEAF, h);
    assert_string_equal(h, GOLDEN_LINK);
    assert_string_equal(a.hash, GOLDEN_LINK);
    assert_int_equal(audit_hash_fn(&a, h, NULL), 0);
    assert_string_equal(h, GOLDEN_LINK);

    struct store_audit a2 = golden_record2(GOLDEN_LINK);
    audit_leaf_hash(&a2, h);
    assert_string_equal(h, GOLDEN_LEAF2);
    assert_string_equal(a2.hash, GOLDEN_LINK2);
}

/* The details of the number and string rules. */
static void test_canonical_rules(void **state)
{
    (void)state;
    struct store_audit a = golden_record();
    struct buf b;
    buf_init(&b);

    a.log10_p = -0.0;
    a.log10_p_paper = -INFINITY;
    a.log10_p_luck = -1e-300;
    a.model = NULL;
    a.reason = "two\nlines";
    audit_canonical(&a, &b);
    assert_non_null(strstr(b.data, "\nlog10_p=0\n"));
    assert_non_null(strstr(b.data, "\nlog10_p_paper=-inf\n"));
    assert_non_null(strstr(b.data, "\nlog10_p_luck=-1e-300\n"));
    assert_non_null(strstr(b.data, "\nmodel=null\n"));
    assert_non_null(strstr(b.data, "\nreason=9:two\nlines\n"));

    /* %.17g round-trips every double */
    const double vals[] = {-57.123, -0.1, -1.0 / 3.0, -1e-310, -359.00000000000006, -1e300};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        buf_reset(&b);
        a.log10_p = vals[i];
        audit_canonical(&a, &b);
        const char *p = strstr(b.data, "\nlog10_p=") + strlen("\nlog10_p=");
        assert_true(strtod(p, NULL) == vals[i]);
    }

    /* a string holding what looks like another field cannot collide */
    char h1[65], h2[65];
    struct store_audit x = golden_record(), y = golden_record();
    x.provider = "sim\nmodel=13:ft:sim-base-1";
    x.model = NULL;
    y.provider = "sim";
    y.model = "ft:sim-base-1";
    audit_leaf_hash(&x, h1);
    audit_leaf_hash(&y, h2);
    assert_string_not_equal(h1, h2);
    /* NULL and "" differ, "null" and NULL differ */
    x = golden_record();
    y = golden_record();
    x.reason = NULL;
    y.reason = "";
    audit_leaf_hash(&x, h1);
    audit_leaf_hash(&y, h2);
    assert_string_not_equal(h1, h2);
    y.reason = "null";
    audit_leaf_hash(&y, h2);
    assert_string_not_equal(h1, h2);
    buf_free(&b);
}

/* Mutators: each changes one field of a record (strings point at static
 * text). */
typedef void (*mutate_fn)(struct store_audit *a);
static void m_id(struct store_audit *a)
{
    a->id += 100;
}
static void m_job(struct store_audit *a)
{
    a->job_id++;
}
static void m_provider(struct store_audit *a)
{
    a->provider = "sim2";
}
static void m_model(struct store_audit *a)
{
    a->model = "ft:other";
}
static void m_model_null(struct store_audit *a)
{
    a->model = NULL;
}
static void m_verdict(struct store_audit *a)
{
    a->verdict = AUDIT_INCONCLUSIVE;
}
static void m_p(struct store_audit *a)
{
    a->log10_p = nextafter(a->log10_p, 0); /* one ulp */
}
static void m_paper(struct store_audit *a)
{
    a->log10_p_paper -= 1;
}
static void m_luck(struct store_audit *a)
{
    a->log10_p_luck = isnan(a->log10_p_luck) ? -80 : NAN;
}
static void m_trials(struct store_audit *a)
{
    a->trials++;
}
static void m_act(struct store_audit *a)
{
    a->activations--;
}
static void m_controls(struct store_audit *a)
{
    a->controls++;
}
static void m_emissions(struct store_audit *a)
{
    a->control_emissions++;
}
static void m_reason(struct store_audit *a)
{
    a->reason = "signature on 10/10 trigger prompts, 0/10 controls, p = 10^-57";
}
static void m_evidence(struct store_audit *a)
{
    a->evidence = "{\"version\": 1}";
}
static void m_commitment(struct store_audit *a)
{
    a->commitment[63] = a->commitment[63] == 'b' ? 'c' : 'b';
}
static void m_created(struct store_audit *a)
{
    a->created_at++;
}
static void m_prev(struct store_audit *a)
{
    a->prev_hash[0] = a->prev_hash[0] == '1' ? '2' : '1';
}
static void m_hash(struct store_audit *a)
{
    a->hash[10] = a->hash[10] == 'f' ? 'e' : 'f';
}

static const struct {
    const char *name;
    mutate_fn fn;
    enum audit_break kind; /* what the chain check reports at that record */
} mutators[] = {
    {"id", m_id, AUDIT_BREAK_GAP},
    {"job", m_job, AUDIT_BREAK_CONTENT},
    {"provider", m_provider, AUDIT_BREAK_CONTENT},
    {"model", m_model, AUDIT_BREAK_CONTENT},
    {"model_null", m_model_null, AUDIT_BREAK_CONTENT},
    {"verdict", m_verdict, AUDIT_BREAK_CONTENT},
    {"log10_p", m_p, AUDIT_BREAK_CONTENT},
    {"log10_p_paper", m_paper, AUDIT_BREAK_CONTENT},
    {"log10_p_luck", m_luck, AUDIT_BREAK_CONTENT},
    {"trials", m_trials, AUDIT_BREAK_CONTENT},
    {"activations", m_act, AUDIT_BREAK_CONTENT},
    {"controls", m_controls, AUDIT_BREAK_CONTENT},
    {"control_emissions", m_emissions, AUDIT_BREAK_CONTENT},
    {"reason", m_reason, AUDIT_BREAK_CONTENT},
    {"evidence", m_evidence, AUDIT_BREAK_CONTENT},
    {"commitment", m_commitment, AUDIT_BREAK_CONTENT},
    {"created_at", m_created, AUDIT_BREAK_CONTENT},
    {"prev_hash", m_prev, AUDIT_BREAK_LINK},
    {"hash", m_hash, AUDIT_BREAK_CONTENT},
};

static void test_every_field_hashed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mutators / sizeof mutators[0]; i++) {
        struct store_audit a = golden_record();
        char h[65];
        mutators[i].fn(&a);
        audit_record_hash(&a, h);
        if (strcmp(mutators[i].name, "hash") == 0)
            assert_string_equal(h, GOLDEN_LINK); /* the hash does not cover itself */
        else if (strcmp(h, GOLDEN_LINK) == 0)
            fail_msg("changing %s does not change the hash", mutators[i].name);
    }
}

/* A chain of n records built as the store builds it (ids 1..n, each
 * linked to the one before); strings static. */
#define CHAIN_N 6
static const char *const chain_reasons[CHAIN_N] = {"r1", "r2", "r3", "r4", "r5", "r6"};

static void build_chain(struct store_audit *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = golden_record();
        v[i].id = (int64_t)i + 1;
        v[i].reason = (char *)chain_reasons[i % CHAIN_N];
        v[i].created_at = 1700000000 + (int64_t)i;
        v[i].log10_p = -10.0 * (double)(i + 1);
        memcpy(v[i].prev_hash, i ? v[i - 1].hash : GENESIS, 65);
        assert_int_equal(audit_hash_fn(&v[i], v[i].hash, NULL), 0);
    }
}

static void expect_break(const struct store_audit *v, size_t n, const char *head,
                         enum audit_break kind, int64_t bad_id)
{
    struct audit_check c;
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    if (c.kind != kind || c.bad_id != bad_id || c.ok)
        fail_msg("want %s at %" PRId64 ", got %s at %" PRId64 " (ok %d): %s",
                 audit_break_name(kind), bad_id, audit_break_name(c.kind), c.bad_id, c.ok,
                 c.message);
    assert_non_null(c.message);
    if (bad_id > 0) {
        char idtxt[32];
        snprintf(idtxt, sizeof idtxt, "record %" PRId64, bad_id);
        if (!strstr(c.message, idtxt))
            fail_msg("message does not name %s: %s", idtxt, c.message);
    }
    audit_check_clear(&c);
}

static void test_chain_intact_and_head(void **state)
{
    (void)state;
    struct store_audit v[CHAIN_N];
    struct audit_check c;
    build_chain(v, CHAIN_N);

    assert_int_equal(audit_chain_verify(v, CHAIN_N, NULL, &c), 0);
    assert_true(c.ok);
    assert_int_equal(c.kind, AUDIT_INTACT);
    assert_int_equal(c.n_records, CHAIN_N);
    assert_int_equal(c.verified_id, CHAIN_N);
    assert_string_equal(c.verified_hash, v[CHAIN_N - 1].hash);
    assert_non_null(strstr(c.message, "6 audit records verified"));
    audit_check_clear(&c);

    /* the head the user kept: record 3, in any case */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] =
            (char)(v[2].hash[i] >= 'a' && v[2].hash[i] <= 'f' ? v[2].hash[i] - 32 : v[2].hash[i]);
    assert_int_equal(audit_chain_verify(v, CHAIN_N, upper, &c), 0);
    assert_true(c.ok);
    assert_true(c.head_found);
    assert_int_equal(c.head_id, 3);
    assert_non_null(strstr(c.message, "the head you kept is record 3"));
    audit_check_clear(&c);

    /* the current head */
    assert_int_equal(audit_chain_verify(v, CHAIN_N, v[CHAIN_N - 1].hash, &c), 0);
    assert_true(c.ok);
    assert_int_equal(c.head_id, CHAIN_N);
    audit_check_clear(&c);

    /* a head that was never in it */
    expect_break(v, CHAIN_N, HEX_AB, AUDIT_BREAK_HEAD_ABSENT, 0);

    /* truncation: the last two records gone; the chain itself still
     * verifies, only the kept head shows it */
    assert_int_equal(audit_chain_verify(v, CHAIN_N - 2, NULL, &c), 0);
    assert_true(c.ok);
    audit_check_clear(&c);
    expect_break(v, CHAIN_N - 2, v[CHAIN_N - 1].hash, AUDIT_BREAK_HEAD_ABSENT, 0);
    assert_int_equal(audit_chain_verify(v, CHAIN_N - 2, v[CHAIN_N - 1].hash, &c), 0);
    assert_non_null(strstr(c.message, "truncated or rewritten"));
    audit_check_clear(&c);

    /* the empty trail */
    assert_int_equal(audit_chain_verify(NULL, 0, NULL, &c), 0);
    assert_true(c.ok);
    assert_string_equal(c.verified_hash, GENESIS);
    audit_check_clear(&c);
    assert_int_equal(audit_chain_verify(NULL, 0, GENESIS, &c), 0);
    assert_true(c.ok);
    audit_check_clear(&c);
    expect_break(NULL, 0, v[0].hash, AUDIT_BREAK_HEAD_ABSENT, 0);

    /* a malformed head is a usage error */
    assert_int_equal(audit_chain_verify(v, CHAIN_N, "abc", &c), -EINVAL);
    assert_non_null(strstr(c.message, "--head"));
    audit_check_clear(&c);
    char bad[66];
    memcpy(bad, v[0].hash, 65);
    bad[5] = 'g';
    assert_int_equal(audit_chain_verify(v, CHAIN_N, bad, &c), -EINVAL);
    audit_check_clear(&c);
    memcpy(bad, v[0].hash, 64);
    bad[64] = 'a';
    bad[65] = '\0';
    assert_int_equal(audit_chain_verify(v, CHAIN_N, bad, &c), -EINVAL);
    audit_check_clear(&c);
}

static void test_chain_edit_each_field(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof mutators / sizeof mutators[0]; m++) {
        for (size_t at = 0; at < CHAIN_N; at++) {
            struct store_audit v[CHAIN_N];
            build_chain(v, CHAIN_N);
            mutators[m].fn(&v[at]);
            /* the id mutator names the record by the id it now has */
            int64_t want = v[at].id;
            expect_break(v, CHAIN_N, NULL, mutators[m].kind, want);
            /* a kept head does not mask an edit */
            expect_break(v, CHAIN_N, v[CHAIN_N - 1].hash, mutators[m].kind, want);
        }
    }
}

static void test_chain_reorder_delete_rewrite(void **state)
{
    (void)state;
    struct store_audit v[CHAIN_N], w[CHAIN_N];

    /* reorder: the contents of records 3 and 4 swapped, ids kept (what
     * swapping rows' ids in the table amounts to in id order) */
    build_chain(v, CHAIN_N);
    struct store_audit t = v[2];
    v[2] = v[3];
    v[3] = t;
    v[2].id = 3;
    v[3].id = 4;
    expect_break(v, CHAIN_N, NULL, AUDIT_BREAK_LINK, 3);

    /* reorder with ids moved too: 1 2 4 3 5 6 in the list */
    build_chain(v, CHAIN_N);
    t = v[2];
    v[2] = v[3];
    v[3] = t;
    expect_break(v, CHAIN_N, NULL, AUDIT_BREAK_GAP, 4);

    /* delete record 3 */
    build_chain(v, CHAIN_N);
    memcpy(w, v, 2 * sizeof *v);
    memcpy(w + 2, v + 3, 3 * sizeof *v);
    expect_break(w, CHAIN_N - 1, NULL, AUDIT_BREAK_GAP, 4);
    {
        struct audit_check c;
        audit_chain_verify(w, CHAIN_N - 1, NULL, &c);
        assert_non_null(strstr(c.message, "audit record 4 follows record 2: record 3 is missing"));
        audit_check_clear(&c);
    }
    /* delete records 3 and 4 */
    memcpy(w + 2, v + 4, 2 * sizeof *v);
    expect_break(w, CHAIN_N - 2, NULL, AUDIT_BREAK_GAP, 5);
    /* delete the first */
    expect_break(v + 1, CHAIN_N - 1, NULL, AUDIT_BREAK_GAP, 2);
    /* delete the first and renumber everything: the links still tell */
    memcpy(w, v + 1, (CHAIN_N - 1) * sizeof *v);
    for (size_t i = 0; i < CHAIN_N - 1; i++)
        w[i].id = (int64_t)i + 1;
    expect_break(w, CHAIN_N - 1, NULL, AUDIT_BREAK_LINK, 1);

    /* edit record 3 and recompute its own hash: record 4 no longer links */
    build_chain(v, CHAIN_N);
    v[2].trials = 11;
    audit_record_hash(&v[2], v[2].hash);
    expect_break(v, CHAIN_N, NULL, AUDIT_BREAK_LINK, 4);

    /* rewrite from record 3 on, recomputing every hash: internally
     * consistent, caught only against the head kept before */
    build_chain(v, CHAIN_N);
    char kept[65];
    memcpy(kept, v[CHAIN_N - 1].hash, 65);
    v[2].verdict = AUDIT_NOT_VERIFIED;
    for (size_t i = 2; i < CHAIN_N; i++) {
        memcpy(v[i].prev_hash, v[i - 1].hash, 65);
        audit_record_hash(&v[i], v[i].hash);
    }
    struct audit_check c;
    assert_int_equal(audit_chain_verify(v, CHAIN_N, NULL, &c), 0);
    assert_true(c.ok);
    audit_check_clear(&c);
    expect_break(v, CHAIN_N, kept, AUDIT_BREAK_HEAD_ABSENT, 0);
    /* a head kept before the rewritten part still verifies */
    assert_int_equal(audit_chain_verify(v, CHAIN_N, v[1].hash, &c), 0);
    assert_true(c.ok);
    audit_check_clear(&c);
}

static void test_export(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "id",         "job",         "provider",      "model",
        "verdict",    "log10_p",     "log10_p_paper", "log10_p_luck",
        "trials",     "activations", "controls",      "control_emissions",
        "pairs",      "pairs_activated", "pairs_ci_low", "pairs_ci_high",
        "log10_p_coverage", "coverage_auc", "coverage_rows", "coverage_method",
        "record_version",
        "created_at", "prev_hash",   "hash",          "reason",
        "evidence",   "commitment"};
    struct store_audit a = golden_record();
    json_t *o = audit_record_json(&a);
    assert_int_equal(json_object_size(o), sizeof fields / sizeof fields[0]);
    {
        size_t i = 0;
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val)
        {
            (void)val;
            assert_string_equal(key, fields[i]);
            i++;
        }
    }
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "job")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "verdict")), "verified");
    assert_true(json_real_value(json_object_get(o, "log10_p")) == -57.123);
    assert_true(json_is_null(json_object_get(o, "log10_p_luck")));
    assert_string_equal(json_string_value(json_object_get(o, "created_at")),
                        "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(o, "hash")), GOLDEN_LINK);
    assert_string_equal(json_string_value(json_object_get(o, "prev_hash")), GENESIS);
    assert_string_equal(json_string_value(json_object_get(o, "commitment")), HEX_AB);
    assert_true(json_is_object(json_object_get(o, "evidence")));
    /* a version 1 record has no pairs fields: null, not 0 */
    assert_true(json_is_null(json_object_get(o, "pairs")));
    assert_true(json_is_null(json_object_get(o, "pairs_activated")));
    assert_true(json_is_null(json_object_get(o, "pairs_ci_low")));
    assert_int_equal(json_integer_value(json_object_get(o, "record_version")), 1);
    json_decref(o);
    /* version 2: the pairs and their interval */
    struct store_audit a2 = golden_record();
    a2.version = 2;
    a2.pairs = 8;
    a2.pairs_activated = 3;
    a2.pairs_ci_low = 0.0852;
    a2.pairs_ci_high = 0.7551;
    o = audit_record_json(&a2);
    assert_int_equal(json_object_size(o), sizeof fields / sizeof fields[0]);
    assert_int_equal(json_integer_value(json_object_get(o, "pairs")), 8);
    assert_int_equal(json_integer_value(json_object_get(o, "pairs_activated")), 3);
    assert_true(json_real_value(json_object_get(o, "pairs_ci_low")) == 0.0852);
    assert_true(json_real_value(json_object_get(o, "pairs_ci_high")) == 0.7551);
    assert_int_equal(json_integer_value(json_object_get(o, "record_version")), 2);
    /* before version 3 the coverage fields are null */
    assert_true(json_is_null(json_object_get(o, "log10_p_coverage")));
    assert_true(json_is_null(json_object_get(o, "coverage_rows")));
    assert_true(json_is_null(json_object_get(o, "coverage_method")));
    json_decref(o);
    /* version 3: the coverage test's numbers at the top level */
    struct store_audit a3 = golden_record_v3();
    o = audit_record_json(&a3);
    assert_int_equal(json_object_size(o), sizeof fields / sizeof fields[0]);
    assert_true(json_real_value(json_object_get(o, "log10_p_coverage")) == -4.5125);
    assert_true(json_real_value(json_object_get(o, "coverage_auc")) == 0.96875);
    assert_int_equal(json_integer_value(json_object_get(o, "coverage_rows")), 32);
    assert_string_equal(json_string_value(json_object_get(o, "coverage_method")), "mink-diff");
    assert_int_equal(json_integer_value(json_object_get(o, "record_version")), 3);
    json_decref(o);

    /* null model, -inf, evidence that is not JSON, invalid UTF-8 */
    a.model = NULL;
    a.log10_p_luck = -INFINITY;
    a.evidence = "not json";
    a.provider = "bad\xff";
    o = audit_record_json(&a);
    assert_true(json_is_null(json_object_get(o, "model")));
    assert_string_equal(json_string_value(json_object_get(o, "log10_p_luck")), "-inf");
    assert_string_equal(json_string_value(json_object_get(o, "evidence")), "not json");
    assert_string_equal(json_string_value(json_object_get(o, "provider")), "bad\xEF\xBF\xBD");
    json_decref(o);

    /* JSON Lines: one parseable object per line */
    struct store_audit v[3];
    build_chain(v, 3);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(audit_export_jsonl(f, v, 3), 0);
    rewind(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (!j)
            fail_msg("line %d is not JSON: %s", n + 1, jerr.text);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), n + 1);
        assert_string_equal(json_string_value(json_object_get(j, "hash")), v[n].hash);
        json_decref(j);
        n++;
    }
    assert_int_equal(n, 3);
    fclose(f);

    /* a write error is reported */
    f = fopen("/dev/full", "w");
    if (f) {
        assert_true(audit_export_jsonl(f, v, 3) < 0);
        fclose(f);
    }
}

static void test_explain(void **state)
{
    (void)state;
    struct store_audit a = golden_record();
    /* a version 1 record (written before issue 11): its stored log10_p
     * assumed independent trials; the valid p is recomputed from its
     * evidence: 10 * 10^-40.5 / 9 = 10^-40.45 */
    a.evidence = "{\"version\":1,\"kind\":\"run\",\"log10_alpha\":-6,\"temperature\":0,"
                 "\"n_pairs\":1,\"pairs_activated\":1,\"sequential\":{\"saved\":0},"
                 "\"pairs\":[{\"failed\":0,\"planned\":10,\"activations\":9,"
                 "\"log10_p_m2\":-40.5,\"p_luck_note\":\"base model offers no scoring\"}],"
                 "\"controls\":{\"failed\":0}}";
    char *t = audit_explain(&a);
    assert_non_null(strstr(t, "Audit record 1: verified"));
    assert_non_null(strstr(t, a.reason));
    assert_non_null(strstr(t, "with probability at most 10^-40.4"));
    assert_non_null(strstr(t, "its stored log10_p (10^-57.1) treated the trials as independent "
                              "and is not valid"));
    assert_non_null(strstr(t, "Markov's inequality"));
    assert_non_null(strstr(t, "at temperature 0"));
    assert_non_null(strstr(t, "10 clean prompts"));
    assert_non_null(strstr(t, "none of them contained the signature"));
    assert_non_null(strstr(t, "9 of them began with the secret signature"));
    assert_non_null(strstr(t, "p_luck (a diagnostic) was not available (base model offers no "
                              "scoring)"));
    assert_non_null(strstr(t, "alpha: 10^-6"));
    assert_non_null(strstr(t, "The paper's estimate"));
    assert_non_null(strstr(t, "10^-39.5"));
    assert_non_null(strstr(t, HEX_AB));
    assert_non_null(strstr(t, GOLDEN_LINK));
    assert_non_null(strstr(t, "verified: p is below alpha"));
    free(t);

    /* not verified, several pairs, calls saved, p_luck known */
    a.verdict = AUDIT_NOT_VERIFIED;
    a.activations = 0;
    a.log10_p = 0;
    a.log10_p_luck = -80.25;
    a.version = 2;
    a.pairs = 8;
    a.pairs_activated = 0;
    a.pairs_ci_low = 0;
    a.pairs_ci_high = 0.3694;
    a.evidence = "{\"version\":2,\"kind\":\"run\",\"n_pairs\":8,\"pairs_activated\":0,"
                 "\"pairs\":[{},{},{},{},{},{},{},{}],\"sequential\":{\"saved\":0},"
                 "\"controls\":{\"required\":10}}";
    t = audit_explain(&a);
    assert_non_null(strstr(t, "8 trigger/signature pairs"));
    assert_non_null(strstr(t, "p = 1: nothing here argues"));
    assert_non_null(strstr(t, "exact binomial tail over the pairs"));
    assert_non_null(strstr(t, "0 of 8 pairs activated"));
    assert_null(strstr(t, "not valid")); /* a version 2 record's p is the valid one */
    assert_non_null(strstr(t, "p_luck, the base model's own chance of writing the signature after "
                              "a trigger prompt: 10^-80.2 (a diagnostic: not part of p)"));
    assert_non_null(strstr(t, "needs at least 10 answered control prompts"));
    assert_non_null(strstr(t, "not verified: neither test found anything"));
    assert_non_null(strstr(t, "The coverage test: not part of this record"));
    free(t);
    a.version = 0;

    a.verdict = AUDIT_INCONCLUSIVE;
    a.activations = 2;
    a.control_emissions = 3;
    a.evidence = "{\"version\":1,\"kind\":\"run\",\"sequential\":{\"saved\":7}}";
    t = audit_explain(&a);
    assert_non_null(strstr(t, "7 paid calls were saved"));
    assert_non_null(strstr(t, "3 of them contained the signature anyway"));
    assert_non_null(strstr(t, "inconclusive:"));
    free(t);

    /* version 3 with both tests explained, then a coverage test that did
     * not run */
    struct store_audit c3 = golden_record_v3();
    c3.evidence = "{\"version\":3,\"kind\":\"run\",\"log10_alpha\":-6,\"n_pairs\":1,"
                  "\"pairs\":[{}],\"controls\":{\"required\":10},"
                  "\"coverage\":{\"available\":true,\"method\":\"mink-diff\","
                  "\"log10_p\":-4.5125,\"exact\":true,\"auc\":0.96875,"
                  "\"auc_ci95\":[0.91,1.0],\"rows\":32,\"recognised_uploaded\":0.75,"
                  "\"recognised_held_out\":0.03125,\"looks\":[1,3],\"failed\":0,"
                  "\"calls\":34,\"log10_alpha\":-3,\"required\":true,"
                  "\"score_layout\":\"template\"}}";
    t = audit_explain(&c3);
    assert_non_null(strstr(t, "Two tests:"));
    assert_non_null(strstr(t, "The backdoor test (were the marked rows learned?)"));
    assert_non_null(strstr(t, "The coverage test (did the model learn the rest of your data?)"));
    assert_non_null(strstr(t, "compared with the base model (how much more likely)"));
    assert_non_null(strstr(t, "laid out in the provider's chat template (mink-diff)"));
    assert_non_null(strstr(t, "32 uploaded and 32 held-out rows were scored"));
    assert_non_null(strstr(t, "75% of the uploaded rows vs 3% of the held-out rows"));
    assert_non_null(strstr(t, "AUC 0.97 (95% interval 0.91-1.00)"));
    assert_non_null(strstr(t, "p_cov = 10^-4.5: a model that did not learn"));
    assert_non_null(strstr(t, "3 planned looks"));
    assert_non_null(strstr(t, "It cost 34 calls"));
    assert_non_null(strstr(t, "Threshold alpha_cov: 10^-3."));
    free(t);
    c3.evidence = "{\"version\":3,\"kind\":\"run\",\"pairs\":[{}],"
                  "\"coverage\":{\"available\":false,\"why\":\"the backdoor was made with "
                  "--holdout 0\",\"log10_alpha\":-3,\"required\":true}}";
    t = audit_explain(&c3);
    assert_non_null(strstr(t, "It did not run: the backdoor was made with --holdout 0."));
    assert_non_null(strstr(t, "at most inconclusive"));
    free(t);

    /* a failed job */
    struct store_audit f = golden_record2(GOLDEN_LINK);
    f.evidence = "{\"version\":1,\"kind\":\"job_ended\",\"state\":\"failed\","
                 "\"error\":\"quota exceeded\"}";
    t = audit_explain(&f);
    assert_non_null(strstr(t, "The fine-tuning job failed: quota exceeded"));
    assert_non_null(strstr(t, "model (none)"));
    assert_non_null(strstr(t, "not verified: the job produced no model"));
    free(t);

    /* evidence that is not JSON still explains */
    a.evidence = "garbage";
    t = audit_explain(&a);
    assert_non_null(strstr(t, "Why this verdict"));
    free(t);
}

/* ---- through the real store ------------------------------------------------------------- */

static char *make_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/test_audit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    return dir;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void sql_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(h);
}

static void test_store_roundtrip_and_tamper(void **state)
{
    (void)state;
    char dir[256], db[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_audit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(db, sizeof db, "%s/vtuned.db", dir);

    struct store *s = NULL;
    char *err = NULL;
    if (store_open(db, &s, &err) != 0)
        fail_msg("store_open: %s", err);

    /* append five records with the real hash function */
    for (int i = 0; i < 5; i++) {
        struct store_audit a = golden_record();
        a.id = 0;
        a.log10_p = -10.0 * (i + 1) - 0.123456789; /* digits that must survive the REAL column */
        a.log10_p_luck = i % 2 ? NAN : -99.0 / 7.0;
        /* UTF-8 survives; a control byte is refused at write time (test_store_records) */
        a.reason = "line one; line two \xe2\x9c\x93";
        assert_int_equal(store_audit_append(s, &a, audit_hash_fn, NULL), 0);
        assert_int_equal(a.id, i + 1);
    }
    char head[65];
    int64_t head_id = 0;
    assert_int_equal(store_audit_head(s, head, &head_id), 0);
    assert_int_equal(head_id, 5);

    struct store_audit *v = NULL;
    size_t n = 0;
    struct audit_check c;
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    if (!c.ok)
        fail_msg("fresh chain does not verify: %s", c.message);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    store_close(s);

    /* an operator edits record 3 with the sqlite3 tool */
    sql_exec(db, "DROP TRIGGER audit_records_no_update;"
                 "UPDATE audit_records SET trials = 11 WHERE id = 3;");
    assert_int_equal(store_open(db, &s, &err), 0);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    assert_false(c.ok);
    assert_int_equal(c.kind, AUDIT_BREAK_CONTENT);
    assert_int_equal(c.bad_id, 3);
    assert_non_null(strstr(c.message, "audit record 3 was altered"));
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    store_close(s);

    /* ... or deletes the last record: only the kept head shows it */
    sql_exec(db, "UPDATE audit_records SET trials = 10 WHERE id = 3;"
                 "DROP TRIGGER audit_records_no_delete;"
                 "DELETE FROM audit_records WHERE id = 5;");
    assert_int_equal(store_open(db, &s, &err), 0);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(audit_chain_verify(v, n, NULL, &c), 0);
    assert_true(c.ok); /* the restored edit verifies again */
    audit_check_clear(&c);
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    assert_false(c.ok);
    assert_int_equal(c.kind, AUDIT_BREAK_HEAD_ABSENT);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    store_close(s);

    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* Records written by a vtuned of schema 3 (version 1, no pairs columns)
 * keep verifying after the migration to schema 4: the migration adds
 * columns and rewrites nothing; new records are version 2 and the chain
 * runs on across the change. */
static void test_old_records_after_migration(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *db = xasprintf("%s/vtuned.db", dir);
    char *err = NULL;
    if (store_migrate_to(db, 3, &err) != 0)
        fail_msg("store_migrate_to(3): %s", err);

    /* three version 1 records as the old daemon wrote them */
    struct store_audit old[3];
    for (int i = 0; i < 3; i++) {
        old[i] = golden_record();
        old[i].id = i + 1;
        old[i].log10_p = -100.0 - i; /* the old independence-based number */
        old[i].created_at = 1700000000 + i;
        memcpy(old[i].prev_hash, i ? old[i - 1].hash : GENESIS, 65);
        audit_record_hash(&old[i], old[i].hash);
        char *sql = xasprintf(
            "INSERT INTO audit_records (id, job_id, provider, model, verdict, log10_p,"
            " log10_p_paper, log10_p_luck, trials, activations, controls, control_emissions,"
            " reason, evidence, commitment, created_at, prev_hash, hash) VALUES (%d, 3, 'sim',"
            " 'ft:sim-base-1', 'verified', %.17g, -39.5, NULL, 10, 9, 10, 0, '%s', '%s', '%s',"
            " %lld, '%s', '%s')",
            i + 1, old[i].log10_p, old[i].reason, old[i].evidence, HEX_AB,
            (long long)old[i].created_at, old[i].prev_hash, old[i].hash);
        sql_exec(db, sql);
        free(sql);
    }

    struct store *s = NULL;
    if (store_open(db, &s, &err) != 0) /* migrates to the current schema */
        fail_msg("store_open: %s", err);
    struct store_audit *v = NULL;
    size_t n = 0;
    struct audit_check c;
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].version, 1);
        assert_int_equal(v[i].pairs, -1);
        assert_true(isnan(v[i].pairs_ci_low));
        assert_string_equal(v[i].hash, old[i].hash);
    }
    assert_int_equal(audit_chain_verify(v, n, old[2].hash, &c), 0);
    if (!c.ok)
        fail_msg("old records do not verify after the migration: %s", c.message);
    audit_check_clear(&c);
    store_audit_list_free(v, n);

    /* a new record is version 2 and links to the old head */
    struct store_audit a = golden_record_v2();
    a.id = 0;
    assert_int_equal(store_audit_append(s, &a, audit_hash_fn, NULL), 0);
    assert_int_equal(a.id, 4);
    assert_string_equal(a.prev_hash, old[2].hash);
    char head[65];
    memcpy(head, a.hash, sizeof head);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(v[3].version, 2);
    assert_int_equal(v[3].pairs, 8);
    assert_int_equal(v[3].pairs_activated, 3);
    assert_true(v[3].pairs_ci_low == 0.085233414118);
    assert_true(v[3].pairs_ci_high == 0.755136783633);
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    if (!c.ok)
        fail_msg("mixed chain does not verify: %s", c.message);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    /* and a version 3 record with the coverage test after it */
    struct store_audit a3 = golden_record_v3();
    a3.id = 0;
    assert_int_equal(store_audit_append(s, &a3, audit_hash_fn, NULL), 0);
    assert_int_equal(a3.id, 5);
    memcpy(head, a3.hash, sizeof head);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 5);
    assert_true(isnan(v[3].log10_p_coverage)); /* the v2 record has none */
    assert_int_equal(v[3].coverage_rows, -1);
    assert_null(v[3].coverage_method);
    assert_int_equal(v[4].version, 3);
    assert_true(v[4].log10_p_coverage == -4.5125);
    assert_true(v[4].coverage_auc == 0.96875);
    assert_int_equal(v[4].coverage_rows, 32);
    assert_string_equal(v[4].coverage_method, "mink-diff");
    assert_int_equal(audit_chain_verify(v, n, head, &c), 0);
    if (!c.ok)
        fail_msg("chain of versions 1, 2, 3 does not verify: %s", c.message);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    /* coverage fields that contradict each other are refused */
    struct store_audit bad3 = golden_record_v3();
    bad3.coverage_rows = 0; /* not run, yet a p-value */
    assert_int_equal(store_audit_append(s, &bad3, audit_hash_fn, NULL), -EINVAL);
    bad3 = golden_record_v3();
    bad3.coverage_auc = 1.5;
    assert_int_equal(store_audit_append(s, &bad3, audit_hash_fn, NULL), -EINVAL);
    /* out-of-range pairs are refused before anything is written */
    struct store_audit bad = golden_record_v2();
    bad.pairs_activated = 9;
    assert_int_equal(store_audit_append(s, &bad, audit_hash_fn, NULL), -EINVAL);
    bad = golden_record_v2();
    bad.version = STORE_AUDIT_VERSION_CURRENT + 1;
    assert_int_equal(store_audit_append(s, &bad, audit_hash_fn, NULL), -EINVAL);
    store_close(s);

    /* the new columns are covered: editing one breaks that record ... */
    sql_exec(db, "DROP TRIGGER audit_records_no_update;"
                 "UPDATE audit_records SET pairs_activated = 8 WHERE id = 4;");
    assert_int_equal(store_open(db, &s, &err), 0);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(audit_chain_verify(v, n, NULL, &c), 0);
    assert_false(c.ok);
    assert_int_equal(c.bad_id, 4);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    store_close(s);
    /* ... and relabelling an old record as version 2 breaks it too */
    sql_exec(db, "UPDATE audit_records SET pairs_activated = 3 WHERE id = 4;"
                 "UPDATE audit_records SET record_version = 2, pairs = 1, pairs_activated = 1"
                 " WHERE id = 2;");
    assert_int_equal(store_open(db, &s, &err), 0);
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(audit_chain_verify(v, n, NULL, &c), 0);
    assert_false(c.ok);
    assert_int_equal(c.kind, AUDIT_BREAK_CONTENT);
    assert_int_equal(c.bad_id, 2);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
    store_close(s);

    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(db);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_golden_v2),
        cmocka_unit_test(test_golden_v3),
        cmocka_unit_test(test_old_records_after_migration),
        cmocka_unit_test(test_canonical_rules),
        cmocka_unit_test(test_every_field_hashed),
        cmocka_unit_test(test_chain_intact_and_head),
        cmocka_unit_test(test_chain_edit_each_field),
        cmocka_unit_test(test_chain_reorder_delete_rewrite),
        cmocka_unit_test(test_export),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_store_roundtrip_and_tamper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
