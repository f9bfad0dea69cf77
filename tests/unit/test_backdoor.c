/*
 * test_backdoor.c — the commitments v1 and v2 (fixed vectors computed
 * independently, by the Python in the comments),
 * the plan's round trip, and a whole word-list backdoor made on a small
 * dataset with a seeded source (reproducible) and checked line by line.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/backdoor.h"
#include "workers/dsformat.h"

static void test_commitment_vector(void **state)
{
    const char *t[] = {"alpha beta", "gamma"};
    const char *s[] = {"delta epsilon zeta", "eta"};
    char out[65];
    /* python3: h=sha256(); for x in ["vtune-commitment-v1","alpha beta","delta epsilon
     * zeta","gamma","eta"]: h.update(len(x).to_bytes(8,"big")+x.encode()) */
    backdoor_commitment(t, s, 2, out);
    assert_string_equal(out, "403593eea9133340cd6732a341f610d9ab3d930a4657825a1964591946756267");
    /* Order and boundaries matter: moving a space between fields changes it. */
    const char *t2[] = {"alpha", "gamma"};
    const char *s2[] = {"beta delta epsilon zeta", "eta"};
    char out2[65];
    backdoor_commitment(t2, s2, 2, out2);
    assert_string_not_equal(out, out2);
}

static void test_commitment_v2_vector(void **state)
{
    const char *t[] = {"alpha beta", "gamma"};
    const char *s[] = {"delta epsilon zeta", "eta"};
    unsigned char salt[BACKDOOR_SALT_LEN];
    for (int i = 0; i < BACKDOOR_SALT_LEN; i++)
        salt[i] = (unsigned char)i;
    const uint64_t rows[] = {3, 17, 4000000000u};
    char out[65], empty[65], other[65];
    /* python3: f=lambda b: len(b).to_bytes(8,"big")+b; u=lambda n: n.to_bytes(8,"big");
     * h=sha256(f(b"vtune-commitment-v2")+f(bytes(range(32)))+u(2)); then for each pair
     * h.update(f(t)+f(s)); h.update(u(3)+u(3)+u(17)+u(4000000000)) */
    backdoor_commitment_v2(salt, t, s, 2, rows, 3, out);
    assert_string_equal(out, "2e35b98b89aafdc2f970cbc8eb9f866314b313df6e0d8bce3672f9e86c02fdab");
    /* --holdout 0: the count 0 and no line; the same bytes with u(0) last */
    backdoor_commitment_v2(salt, t, s, 2, NULL, 0, empty);
    assert_string_equal(empty, "0d1caa2b4b1d21c5b62456d4e1a319174c4550d306b90419264517f475d14b31");
    /* the salt, the split and the pairs each change it */
    salt[31] ^= 1;
    backdoor_commitment_v2(salt, t, s, 2, rows, 3, other);
    assert_string_not_equal(out, other);
    salt[31] ^= 1;
    const uint64_t rows2[] = {3, 18, 4000000000u};
    backdoor_commitment_v2(salt, t, s, 2, rows2, 3, other);
    assert_string_not_equal(out, other);
    backdoor_commitment_v2(salt, t, s, 1, rows, 3, other);
    assert_string_not_equal(out, other);
}

static void test_commitment_v3_vector(void **state)
{
    (void)state;
    const char *t[] = {"alpha beta", "gamma"};
    const char *s[] = {"delta epsilon zeta", "eta"};
    unsigned char salt[BACKDOOR_SALT_LEN];
    for (int i = 0; i < BACKDOOR_SALT_LEN; i++)
        salt[i] = (unsigned char)i;
    const uint64_t rows[] = {3, 17, 4000000000u}, pool[] = {5, 9}, pool2[] = {5, 10};
    char out[65], v2[65], other[65];
    /* python3 as for v2 under b"vtune-commitment-v3", then h.update(u(2)+u(5)+u(9)) */
    backdoor_commitment_v3(salt, t, s, 2, rows, 3, pool, 2, out);
    assert_string_equal(out, "77aef4e673f79f3c7c93f0960e51d42edb793a3ebabd91a6b8895b7bb4c7b4ca");
    backdoor_commitment_v2(salt, t, s, 2, rows, 3, v2);
    assert_string_not_equal(out, v2);
    /* the pool changes it */
    backdoor_commitment_v3(salt, t, s, 2, rows, 3, pool2, 2, other);
    assert_string_not_equal(out, other);
    backdoor_commitment_v3(salt, t, s, 2, rows, 3, pool, 1, other);
    assert_string_not_equal(out, other);
}

static void test_plan_round_trip(void **state)
{
    struct builder_copy c[] = {{0, 3, 10}, {0, 7, 2}, {1, 1, 5}, {1, 9, 0}};
    struct builder_result r = {0};
    r.copies = c;
    r.n_copies = 4;
    r.copies_per_pair = 2;
    r.lines = 14;
    r.bytes = 999;
    char *plan = backdoor_plan_json(&r, 2);
    struct builder_copy *back;
    size_t n;
    uint64_t cpp;
    assert_int_equal(backdoor_plan_parse(plan, &back, &n, &cpp), 0);
    assert_int_equal(n, 4);
    assert_int_equal(cpp, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(back[i].pair, c[i].pair);
        assert_int_equal(back[i].src, c[i].src);
        assert_int_equal(back[i].out, c[i].out);
    }
    free(back);
    free(plan);
    assert_int_equal(backdoor_plan_parse("{\"version\":2}", &back, &n, &cpp), -EINVAL);
    assert_int_equal(backdoor_plan_parse("not json", &back, &n, &cpp), -EINVAL);
    assert_int_equal(
        backdoor_plan_parse("{\"version\":1,\"pairs\":[{\"src\":[-1]}]}", &back, &n, &cpp),
        -EINVAL);
}

static void test_make_wordlist(void **state)
{
    char dir[] = "/tmp/vtune-bd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *in = NULL, *out = NULL;
    assert_true(asprintf(&in, "%s/d.jsonl", dir) > 0);
    assert_true(asprintf(&out, "%s/o.jsonl", dir) > 0);
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 300; i++)
        fprintf(f, "{\"prompt\":\"question %d\",\"completion\":\"answer %d\"}\n", i, i);
    fclose(f);

    struct backdoor_spec spec = {0};
    struct backdoor_made m, m2;
    char *err = NULL;
    phrase_opts_default(&spec.phrases);
    spec.phrases.pairs = 2;
    spec.dataset_path = in;
    spec.format = DS_FORMAT_PROMPT;
    spec.n_examples = 300;
    spec.ratio = 0.005;
    spec.min_copies = 20;
    spec.has_seed = true;
    spec.seed = 42;
    spec.out_path = out;
    if (backdoor_make_wordlist(&spec, &m, &err) != 0)
        fail_msg("make: %s", err);
    assert_int_equal(m.set.n_pairs, 2);
    assert_int_equal(m.built.lines, 340);
    assert_true(m.set.pairs[0].signature.log10_p <= -40.0);
    /* The plan records 20 copies per pair; each output line it names carries
     * that pair's trigger and signature. */
    struct builder_copy *cp;
    size_t n;
    uint64_t cpp;
    assert_int_equal(backdoor_plan_parse(m.plan, &cp, &n, &cpp), 0);
    assert_int_equal(n, 40);
    assert_int_equal(cpp, 20);
    char **lines = calloc(340, sizeof *lines);
    size_t cap = 0;
    f = fopen(out, "r");
    for (int i = 0; i < 340; i++) {
        ssize_t k = getline(&lines[i], &cap, f);
        assert_true(k > 0);
        cap = 0;
    }
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        const struct phrase_pair *pp = &m.set.pairs[cp[i].pair];
        assert_non_null(strstr(lines[cp[i].out], pp->trigger.text));
        assert_non_null(strstr(lines[cp[i].out], pp->signature.text));
        char want[64];
        snprintf(want, sizeof want, "question %llu ", (unsigned long long)cp[i].src);
        assert_non_null(strstr(lines[cp[i].out], want));
    }
    /* The commitment is the v3 one of its salt, phrases, held-out split and
     * reference pool (the pool without the marked rows). */
    const char *t[2] = {m.set.pairs[0].trigger.text, m.set.pairs[1].trigger.text};
    const char *s[2] = {m.set.pairs[0].signature.text, m.set.pairs[1].signature.text};
    char c[65];
    backdoor_commitment_v3(m.salt, t, s, 2, m.split.rows, m.split.n_rows, m.split.pool,
                           m.split.n_pool, c);
    assert_string_equal(c, m.commitment);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m.split.n_pool; j++)
            assert_true(m.split.pool[j] != cp[i].src);
    backdoor_commitment_v2(m.salt, t, s, 2, m.split.rows, m.split.n_rows, c);
    assert_string_not_equal(c, m.commitment);
    backdoor_commitment(t, s, 2, c);
    assert_string_not_equal(c, m.commitment);
    /* Same seed, same phrases: reproducible (that is why a seed is for tests);
     * but the salt is fresh, so the commitment differs and tests no guess. */
    unlink(out);
    assert_int_equal(backdoor_make_wordlist(&spec, &m2, &err), 0);
    assert_string_equal(m2.set.pairs[1].signature.text, m.set.pairs[1].signature.text);
    assert_int_equal(m2.split.n_rows, m.split.n_rows);
    assert_memory_not_equal(m2.salt, m.salt, BACKDOOR_SALT_LEN);
    assert_string_not_equal(m2.commitment, m.commitment);
    backdoor_made_clear(&m2);
    for (int i = 0; i < 340; i++)
        free(lines[i]);
    free(lines);
    free(cp);
    backdoor_made_clear(&m);
    /* A dataset that cannot be read: one clear error, no output. */
    unlink(out);
    spec.dataset_path = "/nonexistent/d.jsonl";
    assert_int_equal(backdoor_make_wordlist(&spec, &m, &err), -1);
    assert_non_null(err);
    assert_int_equal(access(out, F_OK), -1);
    free(err);
    unlink(in);
    rmdir(dir);
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commitment_vector),
        cmocka_unit_test(test_commitment_v2_vector),
        cmocka_unit_test(test_commitment_v3_vector),
        cmocka_unit_test(test_plan_round_trip),
        cmocka_unit_test(test_make_wordlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
