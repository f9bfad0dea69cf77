/*
 * test_sign.c — lib/sign: Ed25519 against RFC 8032's first test vector
 * (so the key format and the signature are those of the standard, not only
 * self-consistent), strict base64, the DSSE pre-authentication encoding
 * against the example of the DSSE specification, and envelopes that must
 * fail: altered payload, other type, other key, no signature.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/sign.h"

/* RFC 8032 §7.1, TEST 1 (empty message). */
static const char *RFC_SK = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char *RFC_PK = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char *RFC_SIG = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                             "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

static void unhex(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i]; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The PKCS#8 PEM of a raw Ed25519 seed: the DER is a fixed 16-byte prefix
 * (RFC 8410 §7) and the seed. */
static char *pem_of_seed(const uint8_t seed[32])
{
    uint8_t der[48];
    unhex("302e020100300506032b657004220420", der);
    memcpy(der + 16, seed, 32);
    char *b64 = sign_b64_encode(der, sizeof der);
    char *pem = xasprintf("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n", b64);
    free(b64);
    return pem;
}

static void test_rfc8032_vector(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], want_sig[64], pub[32], sig[64];
    struct sign_key *k = NULL;
    char *err = NULL;
    unhex(RFC_SK, seed);
    unhex(RFC_PK, pk);
    unhex(RFC_SIG, want_sig);
    char *pem = pem_of_seed(seed);
    assert_int_equal(sign_key_from_pem(pem, strlen(pem), &k, &err), 0);
    sign_key_public(k, pub);
    assert_memory_equal(pub, pk, 32);
    assert_int_equal(sign_bytes(k, "", 0, sig), 0);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(sign_verify_bytes(pk, "", 0, sig), 0);
    sig[10] ^= 1;
    assert_int_equal(sign_verify_bytes(pk, "", 0, sig), -EBADMSG);
    sig[10] ^= 1;
    assert_int_equal(sign_verify_bytes(pk, "x", 1, sig), -EBADMSG);
    /* the fingerprint is SHA-256 of the raw 32 bytes */
    char fp[65], want_fp[65];
    sign_pub_fingerprint(pk, fp);
    sha256_hex(pk, 32, want_fp);
    assert_string_equal(fp, want_fp);
    /* the stored form reads back as the same key */
    char *pem2 = sign_key_to_pem(k);
    struct sign_key *k2 = NULL;
    assert_int_equal(sign_key_from_pem(pem2, strlen(pem2), &k2, &err), 0);
    sign_key_public(k2, pub);
    assert_memory_equal(pub, pk, 32);
    sign_key_free(k2);
    free(pem2);
    free(pem);
    sign_key_free(k);
}

static void test_key_formats(void **state)
{
    (void)state;
    struct sign_key *k = NULL;
    uint8_t pub[32], back[32];
    char *err = NULL;
    assert_int_equal(sign_key_generate(&k), 0);
    sign_key_public(k, pub);
    char *pem = sign_pub_pem(pub);
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(sign_pub_parse(pem, strlen(pem), back, &err), 0);
    assert_memory_equal(back, pub, 32);
    char *b64 = sign_b64_encode(pub, 32);
    assert_int_equal(strlen(b64), 44);
    char *padded = xasprintf("  %s\n", b64);
    memset(back, 0, 32);
    assert_int_equal(sign_pub_parse(padded, strlen(padded), back, &err), 0);
    assert_memory_equal(back, pub, 32);
    /* a private key is not a public key, a short key is not a key */
    char *priv = sign_key_to_pem(k);
    assert_int_equal(sign_pub_parse(priv, strlen(priv), back, &err), -EINVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_equal(sign_pub_parse("aGVsbG8=", 8, back, &err), -EINVAL);
    free(err);
    err = NULL;
    assert_int_equal(sign_key_from_pem("junk", 4, &k, &err), -EINVAL);
    free(err);
    free(priv);
    free(padded);
    free(b64);
    free(pem);
    sign_key_free(k);
}

static void test_base64_strict(void **state)
{
    (void)state;
    size_t n = 0;
    unsigned char *d = sign_b64_decode("aGVsbG8=", &n);
    assert_non_null(d);
    assert_int_equal(n, 5);
    assert_memory_equal(d, "hello", 5);
    free(d);
    d = sign_b64_decode("", &n);
    assert_non_null(d);
    assert_int_equal(n, 0);
    free(d);
    assert_null(sign_b64_decode("aGVsbG8", &n));  /* no padding */
    assert_null(sign_b64_decode("aG=sbG8=", &n)); /* padding inside */
    assert_null(sign_b64_decode("aGVs bG8", &n)); /* white space */
    assert_null(sign_b64_decode("aGVs-G8=", &n)); /* URL alphabet */
    char *e = sign_b64_encode("hello", 5);
    assert_string_equal(e, "aGVsbG8=");
    free(e);
}

static void test_pae(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    /* the example of the DSSE protocol document */
    dsse_pae("http://example.com/HelloWorld", "hello world", 11, &b);
    assert_int_equal(b.len, strlen("DSSEv1 29 http://example.com/HelloWorld 11 hello world"));
    assert_memory_equal(b.data, "DSSEv1 29 http://example.com/HelloWorld 11 hello world", b.len);
    buf_reset(&b);
    /* lengths are bytes, and the body may hold NUL and spaces */
    dsse_pae("t", "a\0 b", 4, &b);
    assert_int_equal(b.len, 17);
    assert_memory_equal(b.data, "DSSEv1 1 t 4 a\0 b", 17);
    buf_free(&b);
}

static void test_envelope(void **state)
{
    (void)state;
    struct sign_key *k = NULL, *other = NULL;
    uint8_t pub[32], opub[32];
    char *why = NULL, *body = NULL;
    size_t n = 0;
    const char *T = "application/vnd.in-toto+json", *msg = "{\"a\":1}";
    assert_int_equal(sign_key_generate(&k), 0);
    assert_int_equal(sign_key_generate(&other), 0);
    sign_key_public(k, pub);
    sign_key_public(other, opub);
    json_t *env = dsse_sign(k, T, msg, strlen(msg));
    assert_non_null(env);
    char fp[65];
    sign_pub_fingerprint(pub, fp);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(env, "signatures"), 0), "keyid")),
                        fp);
    assert_int_equal(dsse_verify(env, pub, T, &body, &n, &why), 0);
    assert_int_equal(n, strlen(msg));
    assert_string_equal(body, msg);
    free(body);
    /* the signature covers the PAE, not the payload alone */
    struct buf pae;
    buf_init(&pae);
    dsse_pae(T, msg, strlen(msg), &pae);
    size_t sn;
    unsigned char *sig =
        sign_b64_decode(json_string_value(json_object_get(
                            json_array_get(json_object_get(env, "signatures"), 0), "sig")),
                        &sn);
    assert_int_equal(sn, 64);
    assert_int_equal(sign_verify_bytes(pub, pae.data, pae.len, sig), 0);
    assert_int_equal(sign_verify_bytes(pub, msg, strlen(msg), sig), -EBADMSG);
    free(sig);
    buf_free(&pae);
    /* another key */
    assert_int_equal(dsse_verify(env, opub, T, NULL, NULL, &why), -EBADMSG);
    assert_non_null(strstr(why, "no signature verifies"));
    free(why);
    /* another type asked for */
    assert_int_equal(dsse_verify(env, pub, "text/plain", NULL, NULL, &why), -EBADMSG);
    free(why);
    /* the payloadType changed: the PAE covers it */
    json_t *e2 = json_deep_copy(env);
    json_object_set_new(e2, "payloadType", json_string("text/plain"));
    assert_int_equal(dsse_verify(e2, pub, NULL, NULL, NULL, &why), -EBADMSG);
    free(why);
    json_decref(e2);
    /* an altered payload */
    e2 = json_deep_copy(env);
    char *alt = sign_b64_encode("{\"a\":2}", 7);
    json_object_set_new(e2, "payload", json_string(alt));
    free(alt);
    assert_int_equal(dsse_verify(e2, pub, T, NULL, NULL, &why), -EBADMSG);
    free(why);
    json_decref(e2);
    /* no signature at all */
    e2 = json_deep_copy(env);
    json_object_set_new(e2, "signatures", json_array());
    assert_int_equal(dsse_verify(e2, pub, T, NULL, NULL, &why), -EBADMSG);
    assert_non_null(strstr(why, "no signature"));
    free(why);
    json_decref(e2);
    /* not an envelope */
    e2 = json_object();
    assert_int_equal(dsse_verify(e2, pub, T, NULL, NULL, &why), -EBADMSG);
    free(why);
    json_decref(e2);
    json_decref(env);
    sign_key_free(k);
    sign_key_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vector), cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_base64_strict),  cmocka_unit_test(test_pae),
        cmocka_unit_test(test_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
