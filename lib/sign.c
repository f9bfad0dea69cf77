/*
 * sign.c — Ed25519 through libcrypto's EVP interface, base64, and DSSE
 * envelopes (see sign.h for the formats).  Every OpenSSL object is freed on
 * the one exit path of the function that made it; errors from libcrypto
 * become -EIO (a failure of the library, not of the caller's input) or
 * -EINVAL / -EBADMSG with one line saying what the input lacks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/sign.h"
#include "lib/util.h"

struct sign_key {
    EVP_PKEY *pkey;
};

#define KEY_FILE_MAX (64 * 1024)

int sign_key_generate(struct sign_key **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    EVP_PKEY *pkey = NULL;
    int r = -EIO;
    if (ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1) {
        *out = xcalloc(1, sizeof **out);
        (*out)->pkey = pkey;
        r = 0;
    }
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return r;
}

int sign_key_from_pem(const char *pem, size_t len, struct sign_key **out, char **err)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        if (err)
            *err = xstrdup("not a PEM private key (want PKCS#8, '-----BEGIN PRIVATE KEY-----')");
        return -EINVAL;
    }
    if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        if (err)
            *err = xstrdup("the key is not an Ed25519 key ('openssl genpkey -algorithm ed25519')");
        return -EINVAL;
    }
    *out = xcalloc(1, sizeof **out);
    (*out)->pkey = pkey;
    return 0;
}

char *sign_key_to_pem(const struct sign_key *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *res = NULL, *p;
    if (bio && PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(bio, &p);
        res = xstrndup(p, (size_t)n);
    }
    BIO_free(bio);
    if (!res)
        abort(); /* a memory BIO fails only when memory does: allocator discipline */
    return res;
}

void sign_key_free(struct sign_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

void sign_key_public(const struct sign_key *k, uint8_t pub[SIGN_PUB_LEN])
{
    size_t n = SIGN_PUB_LEN;
    if (EVP_PKEY_get_raw_public_key(k->pkey, pub, &n) != 1 || n != SIGN_PUB_LEN)
        abort(); /* an Ed25519 key always has one */
}

int sign_key_load_file(const char *path, struct sign_key **out, char **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char *text = NULL, *why = NULL;
    int r;
    if (fd < 0) {
        r = -errno;
        *err = xasprintf("cannot open the signing key %s: %s", path, strerror(errno));
        return r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        close(fd);
        *err = xasprintf("the signing key %s is not a regular file of at most 64 KiB", path);
        return -EINVAL;
    }
    text = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t m = read(fd, text + got, (size_t)st.st_size - got);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            break;
        got += (size_t)m;
    }
    close(fd);
    r = sign_key_from_pem(text, got, out, &why);
    explicit_bzero(text, (size_t)st.st_size + 1);
    free(text);
    if (r < 0) {
        *err = xasprintf("the signing key %s: %s", path, why);
        free(why);
    }
    return r;
}

static EVP_PKEY *pub_pkey(const uint8_t pub[SIGN_PUB_LEN])
{
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SIGN_PUB_LEN);
}

int sign_pub_parse(const char *text, size_t len, uint8_t pub[SIGN_PUB_LEN], char **err)
{
    char *t = xstrndup(text, len), *s = t, *e;
    int r = -EINVAL;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    if (strncmp(s, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(s, (int)strlen(s));
        EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        size_t n = SIGN_PUB_LEN;
        BIO_free(bio);
        ERR_clear_error();
        if (!pkey)
            *err = xstrdup("not a PEM public key ('-----BEGIN PUBLIC KEY-----')");
        else if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
                 EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != SIGN_PUB_LEN)
            *err = xstrdup("the public key is not an Ed25519 key");
        else
            r = 0;
        EVP_PKEY_free(pkey);
    } else {
        size_t n = 0;
        unsigned char *raw = sign_b64_decode(s, &n);
        if (!raw || n != SIGN_PUB_LEN)
            *err = xstrdup("not a public key: want PEM, or the raw 32-byte key in base64 "
                           "(as 'vtunectl key show' prints)");
        else {
            memcpy(pub, raw, SIGN_PUB_LEN);
            r = 0;
        }
        free(raw);
    }
    free(t);
    return r;
}

char *sign_pub_pem(const uint8_t pub[SIGN_PUB_LEN])
{
    EVP_PKEY *pkey = pub_pkey(pub);
    BIO *bio = BIO_new(BIO_s_mem());
    char *res = NULL, *p;
    if (pkey && bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        long n = BIO_get_mem_data(bio, &p);
        res = xstrndup(p, (size_t)n);
    }
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (!res)
        abort();
    return res;
}

void sign_pub_fingerprint(const uint8_t pub[SIGN_PUB_LEN], char out[65])
{
    sha256_hex(pub, SIGN_PUB_LEN, out);
}

int sign_bytes(const struct sign_key *k, const void *msg, size_t n, uint8_t sig[SIGN_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = SIGN_SIG_LEN;
    int r = -EIO;
    if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
        EVP_DigestSign(ctx, sig, &len, msg, n) == 1 && len == SIGN_SIG_LEN)
        r = 0;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return r;
}

int sign_verify_bytes(const uint8_t pub[SIGN_PUB_LEN], const void *msg, size_t n,
                      const uint8_t sig[SIGN_SIG_LEN])
{
    EVP_PKEY *pkey = pub_pkey(pub);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = -EBADMSG;
    if (pkey && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, SIGN_SIG_LEN, msg, n) == 1)
        r = 0;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return r;
}

char *sign_b64_encode(const void *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

static int b64_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

unsigned char *sign_b64_decode(const char *in, size_t *n)
{
    size_t len = strlen(in), pad = 0;
    if (len % 4 != 0 || len > (size_t)1 << 30)
        return NULL;
    /* EVP_DecodeBlock skips white space and leaves padding as zero bytes:
     * the alphabet and the padding are checked here, so one text has one
     * meaning. */
    if (len >= 1 && in[len - 1] == '=')
        pad++;
    if (len >= 2 && in[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)in[i]))
            return NULL;
    unsigned char *out = xmalloc(len / 4 * 3 + 1);
    int m = len ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)len) : 0;
    if (m < 0 || (size_t)m < pad) {
        free(out);
        return NULL;
    }
    *n = (size_t)m - pad;
    out[*n] = '\0';
    return out;
}

void dsse_pae(const char *type, const void *body, size_t n, struct buf *out)
{
    buf_printf(out, "DSSEv1 %zu %s %zu ", strlen(type), type, n);
    buf_append(out, body, n);
}

json_t *dsse_sign(const struct sign_key *k, const char *type, const void *body, size_t n)
{
    struct buf pae;
    uint8_t sig[SIGN_SIG_LEN], pub[SIGN_PUB_LEN];
    char keyid[65];
    buf_init(&pae);
    dsse_pae(type, body, n, &pae);
    int r = sign_bytes(k, pae.data, pae.len, sig);
    buf_free(&pae);
    if (r < 0)
        return NULL;
    sign_key_public(k, pub);
    sign_pub_fingerprint(pub, keyid);
    char *payload = sign_b64_encode(body, n), *s = sign_b64_encode(sig, sizeof sig);
    json_t *env = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "payloadType", type, "payload", payload,
                            "signatures", "keyid", keyid, "sig", s);
    free(payload);
    free(s);
    return env;
}

int dsse_verify(json_t *env, const uint8_t pub[SIGN_PUB_LEN], const char *want_type, char **body,
                size_t *n, char **why)
{
    const char *type = json_string_value(json_object_get(env, "payloadType"));
    const char *payload = json_string_value(json_object_get(env, "payload"));
    json_t *sigs = json_object_get(env, "signatures"), *s;
    unsigned char *raw = NULL;
    size_t raw_n = 0, i;
    struct buf pae;
    int r = -EBADMSG;
    char fp[65];

    if (!json_is_object(env) || !type || !payload || !json_is_array(sigs)) {
        *why = xstrdup("not a DSSE envelope (want payloadType, payload and signatures)");
        return r;
    }
    if (want_type && strcmp(type, want_type) != 0) {
        *why = xasprintf("payloadType is '%s', not '%s'", type, want_type);
        return r;
    }
    if (!(raw = sign_b64_decode(payload, &raw_n))) {
        *why = xstrdup("the payload is not base64");
        return r;
    }
    if (json_array_size(sigs) == 0) {
        free(raw);
        *why = xstrdup("the envelope carries no signature");
        return r;
    }
    sign_pub_fingerprint(pub, fp);
    buf_init(&pae);
    dsse_pae(type, raw, raw_n, &pae);
    json_array_foreach(sigs, i, s)
    {
        const char *sb = json_string_value(json_object_get(s, "sig"));
        size_t sn = 0;
        unsigned char *sig = sb ? sign_b64_decode(sb, &sn) : NULL;
        if (sig && sn == SIGN_SIG_LEN && sign_verify_bytes(pub, pae.data, pae.len, sig) == 0)
            r = 0;
        free(sig);
        if (r == 0)
            break;
    }
    buf_free(&pae);
    if (r < 0) {
        *why = xasprintf("no signature verifies under the key %s (forged, altered, or "
                         "signed by another key)",
                         fp);
        free(raw);
        return r;
    }
    if (body)
        *body = (char *)raw;
    else
        free(raw);
    if (n)
        *n = raw_n;
    return 0;
}
