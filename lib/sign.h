/*
 * sign.h — Ed25519 keys, signatures and DSSE envelopes (issue 15): the
 * evidence vtuned hands out (verdict attestations, signed commitments, the
 * signed audit chain) is checked by people who hold only the public key, so
 * everything they need to check it is here, with no I/O but key files.
 *
 * Keys go through libcrypto's EVP interface (OpenSSL 3, already linked):
 * no primitive is written here.  A private key is stored as PEM PKCS#8
 * ("-----BEGIN PRIVATE KEY-----"), a public key is shown as PEM SPKI and as
 * the raw 32 bytes in base64; its fingerprint is the lowercase hex SHA-256
 * of those 32 raw bytes, and is also the DSSE keyid.
 *
 * DSSE (github.com/secure-systems-lab/dsse, protocol v1): a signature is
 * over the pre-authentication encoding
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * with LEN the decimal byte count and SP one space; the envelope is
 * {"payloadType": type, "payload": base64(body), "signatures": [{"keyid",
 * "sig": base64(signature)}]} (standard base64 with padding).  Verifying
 * decodes the payload, rebuilds the PAE and checks that some signature
 * verifies under the given key; the payload is returned only then.
 */
#ifndef VT_SIGN_H
#define VT_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/util.h" /* struct buf */

#define SIGN_PUB_LEN 32
#define SIGN_SIG_LEN 64

struct sign_key; /* an Ed25519 private key (opaque) */

/* A fresh key from the system's random source.  Returns 0 and *out (owned:
 * sign_key_free) or -EIO. */
int sign_key_generate(struct sign_key **out);
/* Parses a PEM PKCS#8 Ed25519 private key (len bytes, need not end in
 * NUL).  Returns 0 and *out (owned), or -EINVAL with *err (owned, one
 * line) when it is not one. */
int sign_key_from_pem(const char *pem, size_t len, struct sign_key **out, char **err);
/* The key as PEM PKCS#8 (owned string; caller frees).  Secret. */
char *sign_key_to_pem(const struct sign_key *k);
void sign_key_free(struct sign_key *k);
/* The raw public key of k. */
void sign_key_public(const struct sign_key *k, uint8_t pub[SIGN_PUB_LEN]);

/* Reads and parses a private key file (PEM PKCS#8).  Returns 0 and *out,
 * or a negative errno with *err (owned, one line naming path). */
int sign_key_load_file(const char *path, struct sign_key **out, char **err);

/* Parses a public key given as PEM SPKI or as the raw key in base64 (44
 * characters, surrounding white space ignored).  Returns 0 and pub, or
 * -EINVAL with *err (owned, one line). */
int sign_pub_parse(const char *text, size_t len, uint8_t pub[SIGN_PUB_LEN], char **err);
/* PEM SPKI of pub (owned string). */
char *sign_pub_pem(const uint8_t pub[SIGN_PUB_LEN]);
/* Lowercase hex SHA-256 of the 32 raw bytes (the fingerprint and keyid). */
void sign_pub_fingerprint(const uint8_t pub[SIGN_PUB_LEN], char out[65]);

/* Signs msg[0..n) (pure Ed25519).  Returns 0 or -EIO. */
int sign_bytes(const struct sign_key *k, const void *msg, size_t n, uint8_t sig[SIGN_SIG_LEN]);
/* 0 when sig is pub's signature of msg, -EBADMSG when not. */
int sign_verify_bytes(const uint8_t pub[SIGN_PUB_LEN], const void *msg, size_t n,
                      const uint8_t sig[SIGN_SIG_LEN]);

/* Standard base64 with padding of in[0..n) (owned string). */
char *sign_b64_encode(const void *in, size_t n);
/* Decodes standard base64 (padding required, no white space) into a new
 * buffer (owned, *n its length; one NUL after it).  Returns NULL when the
 * text is not base64. */
unsigned char *sign_b64_decode(const char *in, size_t *n);

/* Appends PAE(type, body[0..n)) to out. */
void dsse_pae(const char *type, const void *body, size_t n, struct buf *out);
/* A DSSE envelope of body under type, signed with k, keyid the key's
 * fingerprint.  Returns the envelope (owned) or NULL (-EIO signing). */
json_t *dsse_sign(const struct sign_key *k, const char *type, const void *body, size_t n);
/* Checks env (borrowed) against pub: its payloadType must be want_type
 * (NULL: any), its payload base64, and one of its signatures valid over
 * the PAE.  Returns 0 and the payload (*body owned, NUL-terminated, *n its
 * length; either may be NULL), or -EBADMSG with *why (owned, one line:
 * what is wrong). */
int dsse_verify(json_t *env, const uint8_t pub[SIGN_PUB_LEN], const char *want_type, char **body,
                size_t *n, char **why);

#endif
