/* auth/jwt.c: the signing key in the data directory, and access tokens as JWTs signed with it.
 *
 * DESIGN: Ed25519 (JWT "alg": "EdDSA", RFC 8037) through libsodium, as the reference system signs
 * its tokens: signatures are small (64 bytes), verifying costs tens of microseconds, and the key
 * is 32 random bytes, so there is no parameter to get wrong. The key files are PKCS#8 / SPKI PEM,
 * the reference's format, so a data directory's keys work with either. A token is accepted only
 * when its header names EdDSA: "none", HS256 (which would let a public key act as an HMAC
 * secret) and everything else are refused before the signature is looked at. */
#include "auth/auth_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* DER prefixes of an Ed25519 PKCS#8 private key (seed follows) and SPKI public key. */
static const uint8_t der_private[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                        0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
static const uint8_t der_public[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                       0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static void pem_write(tr_buf *b, const char *label, const uint8_t *der, size_t len)
{
    char txt[128];
    sodium_bin2base64(txt, sizeof txt, der, len, sodium_base64_VARIANT_ORIGINAL);
    tr_buf_printf(b, "-----BEGIN %s-----\n%s\n-----END %s-----\n", label, txt, label);
}

/* The 32 key bytes of PEM text s[0..len) with DER prefix pre; what names its source in errors. */
static int pem_parse(const char *s_in, size_t len, const char *what, const char *label,
                     const uint8_t *pre, size_t pre_len, uint8_t key[32], tr_error *err)
{
    char begin[64], end[64];
    snprintf(begin, sizeof begin, "-----BEGIN %s-----", label);
    snprintf(end, sizeof end, "-----END %s-----", label);
    const char *s = memmem(s_in, len, begin, strlen(begin));
    const char *e = s ? memmem(s, len - (size_t)(s - s_in), end, strlen(end)) : NULL;
    uint8_t der[64];
    size_t n = 0;
    int rc = 0;
    if (s == NULL || e == NULL ||
        sodium_base642bin(der, sizeof der, s + strlen(begin), (size_t)(e - s - strlen(begin)),
                          " \r\n\t", &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != pre_len + 32 || memcmp(der, pre, pre_len) != 0) {
        rc = tr_error_set(err, TR_EPARSE, "%s: not an Ed25519 %s in PEM form", what,
                          strcmp(label, "PRIVATE KEY") == 0 ? "private key" : "public key");
    } else {
        memcpy(key, der + pre_len, 32);
    }
    sodium_memzero(der, sizeof der);
    return rc;
}

/* The 32 key bytes of a PEM file with DER prefix pre. */
static int pem_read(const char *path, const char *label, const uint8_t *pre, size_t pre_len,
                    uint8_t key[32], tr_error *err)
{
    tr_buf b = TR_BUF_INIT;
    int rc = tr_read_file(path, 4096, &b, err);
    if (rc < 0) return rc;
    rc = pem_parse(b.data, b.len, path, label, pre, pre_len, key, err);
    sodium_memzero(b.data, b.len);
    tr_buf_free(&b);
    return rc;
}

static int write_private(const char *path, const void *data, size_t len, tr_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return tr_error_set(err, -errno, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, data, len);
    int rc = 0;
    if (w != (ssize_t)len || fsync(fd) != 0)
        rc = tr_error_set(err, -EIO, "%s: cannot write the key", path);
    close(fd);
    return rc;
}

void auth_keys_pem(const auth_keys *k, tr_buf *priv, tr_buf *pub)
{
    uint8_t der[48];
    memcpy(der, der_private, sizeof der_private);
    memcpy(der + 16, k->sk, 32);
    pem_write(priv, "PRIVATE KEY", der, sizeof der);
    sodium_memzero(der, sizeof der);
    uint8_t pd[44];
    memcpy(pd, der_public, sizeof der_public);
    memcpy(pd + 12, k->pk, 32);
    pem_write(pub, "PUBLIC KEY", pd, sizeof pd);
}

/* Writes k's two files. New ones (!replace) are created exclusively, so that of two processes
 * generating a key at once one fails rather than both keeping a different key. With replace, the
 * old private key first gets the second name private_key.pem.replaced, then each file goes
 * through a temporary file renamed over the old one: a crash leaves each file old or new (between
 * the two renames, a pair that does not match, which the next start reports naming the files). */
static int write_keys(const char *dir, const char *priv, const char *pub, const auth_keys *k,
                      bool replace, tr_error *err)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return tr_error_set(err, -errno, "%s: %s", dir, strerror(errno));
    tr_buf bp = TR_BUF_INIT, bq = TR_BUF_INIT;
    auth_keys_pem(k, &bp, &bq);
    char tmp[4200], old[4200];
    int rc = 0;
    if (replace) {
        /* a second name for the old key: the rename below replaces the first at once */
        snprintf(old, sizeof old, "%s.replaced", priv);
        unlink(old);
        if (link(priv, old) < 0 && errno != ENOENT)
            rc = tr_error_set(err, -errno, "%s: %s", old, strerror(errno));
    }
    const char *paths[2] = {priv, pub};
    const tr_buf *texts[2] = {&bp, &bq};
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!replace) {
            rc = write_private(paths[i], texts[i]->data, texts[i]->len, err);
            continue;
        }
        snprintf(tmp, sizeof tmp, "%s.tmp", paths[i]);
        unlink(tmp);
        rc = write_private(tmp, texts[i]->data, texts[i]->len, err);
        if (rc == 0 && rename(tmp, paths[i]) < 0)
            rc = tr_error_set(err, -errno, "%s: %s", paths[i], strerror(errno));
        if (rc < 0) unlink(tmp);
    }
    sodium_memzero(bp.data, bp.len);
    tr_buf_free(&bp);
    tr_buf_free(&bq);
    return rc;
}

static int generate(const char *dir, const char *priv, const char *pub, auth_keys *k, tr_error *err)
{
    crypto_sign_keypair(k->pk, k->sk);
    int rc = write_keys(dir, priv, pub, k, false, err);
    if (rc == 0) tr_log_info("auth: generated a new signing key in %s", dir);
    return rc;
}

int auth_keys_from_pem(const char *priv, size_t priv_len, const char *pub, size_t pub_len,
                       const char *what, auth_keys **out, tr_error *err)
{
    if (sodium_init() < 0) return tr_error_set(err, TR_EINVAL, "libsodium failed to initialise");
    uint8_t seed[32], pk[32];
    int rc =
        pem_parse(priv, priv_len, what, "PRIVATE KEY", der_private, sizeof der_private, seed, err);
    if (rc == 0)
        rc = pem_parse(pub, pub_len, what, "PUBLIC KEY", der_public, sizeof der_public, pk, err);
    auth_keys *k = NULL;
    if (rc == 0) {
        k = sodium_malloc(sizeof *k);
        if (k == NULL) rc = tr_error_set(err, -ENOMEM, "out of memory for the signing key");
    }
    if (rc == 0) {
        crypto_sign_seed_keypair(k->pk, k->sk, seed);
        if (sodium_memcmp(k->pk, pk, 32) != 0)
            rc = tr_error_set(err, TR_EPARSE,
                              "%s: the public key does not belong to the private key", what);
    }
    sodium_memzero(seed, sizeof seed);
    if (rc < 0) {
        if (k) sodium_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

bool auth_keys_equal(const auth_keys *a, const auth_keys *b)
{
    return sodium_memcmp(a->sk, b->sk, sizeof a->sk) == 0;
}

int auth_keys_store(const char *data_dir, const auth_keys *k, tr_error *err)
{
    char dir[4096], priv[4096], pub[4096];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, AUTH_KEY_DIR);
    snprintf(priv, sizeof priv, "%s/%s", data_dir, AUTH_PRIVATE_KEY_FILE);
    snprintf(pub, sizeof pub, "%s/%s", data_dir, AUTH_PUBLIC_KEY_FILE);
    return write_keys(dir, priv, pub, k, true, err);
}

int auth_keys_load(const char *data_dir, auth_keys **out, tr_error *err)
{
    if (sodium_init() < 0) return tr_error_set(err, TR_EINVAL, "libsodium failed to initialise");
    char secrets[4096], dir[4096], priv[4096], pub[4096];
    snprintf(secrets, sizeof secrets, "%s/secrets", data_dir);
    snprintf(dir, sizeof dir, "%s/%s", data_dir, AUTH_KEY_DIR);
    snprintf(priv, sizeof priv, "%s/%s", data_dir, AUTH_PRIVATE_KEY_FILE);
    snprintf(pub, sizeof pub, "%s/%s", data_dir, AUTH_PUBLIC_KEY_FILE);
    if (mkdir(secrets, 0700) < 0 && errno != EEXIST)
        return tr_error_set(err, -errno, "%s: %s", secrets, strerror(errno));
    auth_keys *k = sodium_malloc(sizeof *k);
    if (k == NULL) return tr_error_set(err, -ENOMEM, "out of memory for the signing key");
    struct stat st_priv, st_pub;
    bool has_priv = stat(priv, &st_priv) == 0, has_pub = stat(pub, &st_pub) == 0;
    int rc = 0;
    if (!has_priv && !has_pub) {
        rc = generate(dir, priv, pub, k, err);
    } else if (!has_priv || !has_pub) {
        rc = tr_error_set(err, TR_EPARSE,
                          "%s is missing (its pair %s exists): restore it, or "
                          "remove both to generate a new key",
                          has_priv ? pub : priv, has_priv ? priv : pub);
    } else if ((st_priv.st_mode & 077) != 0) {
        rc = tr_error_set(err, TR_EPARSE,
                          "%s: the signing key may be read by other users (mode %03o); "
                          "chmod 600 it",
                          priv, (unsigned)(st_priv.st_mode & 0777));
    } else {
        uint8_t seed[32], pk[32];
        rc = pem_read(priv, "PRIVATE KEY", der_private, sizeof der_private, seed, err);
        if (rc == 0) rc = pem_read(pub, "PUBLIC KEY", der_public, sizeof der_public, pk, err);
        if (rc == 0) {
            crypto_sign_seed_keypair(k->pk, k->sk, seed);
            if (sodium_memcmp(k->pk, pk, 32) != 0)
                rc = tr_error_set(err, TR_EPARSE, "%s does not belong to %s", pub, priv);
        }
        sodium_memzero(seed, sizeof seed);
    }
    if (rc < 0) {
        sodium_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void auth_keys_free(auth_keys *k)
{
    if (k) sodium_free(k); /* zeroes it */
}

void auth_keys_derive(const auth_keys *k, const char *purpose, uint8_t out[32])
{
    /* keyed BLAKE2b of the purpose, keyed with the private key's seed */
    crypto_generichash(out, 32, (const unsigned char *)purpose, strlen(purpose), k->sk, 32);
}

/* base64url of {"typ":"JWT","alg":"EdDSA"}, the reference's header as jsonwebtoken writes it */
static const char jwt_header[] = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9";

void auth_jwt_sign(const auth_keys *k, const auth_claims *c, tr_buf *out)
{
    size_t start = out->len;
    tr_buf_append_str(out, jwt_header);
    tr_buf_append_char(out, '.');
    tr_buf claims = TR_BUF_INIT;
    tr_buf_printf(&claims, "{\"sub\":");
    auth__json_str(&claims, c->sub, strlen(c->sub));
    tr_buf_printf(&claims, ",\"iat\":%lld,\"exp\":%lld,\"type\":%d", (long long)c->iat,
                  (long long)c->exp, c->type);
    if (c->admin) tr_buf_append_str(&claims, ",\"admin\":true");
    tr_buf_append_str(&claims, ",\"provider\":0,\"email\":");
    auth__json_str(&claims, c->email, strlen(c->email));
    tr_buf_append_str(&claims, ",\"username\":null,\"csrf_token\":");
    auth__json_str(&claims, c->csrf_token, strlen(c->csrf_token));
    tr_buf_append_char(&claims, '}');
    auth__b64url_encode(claims.data, claims.len, out);
    tr_buf_free(&claims);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)out->data + start, out->len - start, k->sk);
    tr_buf_append_char(out, '.');
    auth__b64url_encode(sig, sizeof sig, out);
}

static bool field_int(const auth_fields *f, const char *key, int64_t *out)
{
    const auth_field *v = auth__field(f, key);
    if (v == NULL || v->type != AUTH_V_NUMBER) return false;
    char *end;
    errno = 0;
    long long n = strtoll(v->val, &end, 10);
    if (errno != 0 || *end != '\0') return false;
    *out = n;
    return true;
}

static bool copy_str(const auth_fields *f, const char *key, char *out, size_t cap, bool need)
{
    const auth_field *v = auth__field(f, key);
    if (v == NULL || v->type == AUTH_V_NULL) {
        out[0] = '\0';
        return !need;
    }
    if (v->type != AUTH_V_STRING || v->val_len >= cap || strlen(v->val) != v->val_len) return false;
    memcpy(out, v->val, v->val_len + 1);
    return true;
}

int auth_jwt_verify(const auth_keys *k, const char *token, size_t len, int64_t now,
                    auth_claims *out)
{
    if (len == 0 || len > AUTH_MAX_TOKEN) return TR_EPARSE;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL) return TR_EPARSE;
    /* the header first: anything but EdDSA is refused before the signature is looked at */
    uint8_t raw[AUTH_MAX_TOKEN];
    size_t n;
    if (auth__b64url_decode(token, (size_t)(d1 - token), raw, sizeof raw, &n) < 0) return TR_EPARSE;
    auth_fields f;
    if (auth__json_fields((const char *)raw, n, &f) < 0) return TR_EPARSE;
    const char *alg = auth__field_str(&f, "alg");
    if (alg == NULL || strcmp(alg, "EdDSA") != 0) return TR_EINVAL;
    const char *typ = auth__field_str(&f, "typ");
    if (auth__field(&f, "typ") != NULL && (typ == NULL || strcmp(typ, "JWT") != 0))
        return TR_EINVAL;
    /* crit would name extensions we do not understand */
    if (auth__field(&f, "crit") != NULL) return TR_EINVAL;
    uint8_t sig[64];
    size_t sl;
    if (auth__b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig, &sl) < 0 ||
        sl != sizeof sig)
        return TR_EPARSE;
    if (crypto_sign_verify_detached(sig, (const uint8_t *)token, (size_t)(d2 - token), k->pk) != 0)
        return TR_EINVAL;
    if (auth__b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), raw, sizeof raw, &n) < 0)
        return TR_EPARSE;
    if (auth__json_fields((const char *)raw, n, &f) < 0) return TR_EPARSE;
    int64_t type = 0;
    if (!copy_str(&f, "sub", out->sub, sizeof out->sub, true) ||
        !copy_str(&f, "email", out->email, sizeof out->email, false) ||
        !copy_str(&f, "csrf_token", out->csrf_token, sizeof out->csrf_token, true) ||
        !field_int(&f, "exp", &out->exp) || !field_int(&f, "type", &type))
        return TR_EPARSE;
    if (!field_int(&f, "iat", &out->iat)) out->iat = 0;
    const auth_field *adm = auth__field(&f, "admin");
    out->admin = adm != NULL && adm->type == AUTH_V_BOOL && strcmp(adm->val, "true") == 0;
    out->type = (int)type;
    if (type != AUTH_TOKEN_TYPE_AUTH) return TR_EINVAL;
    if (out->exp <= now) return TR_ETIMEDOUT;
    return 0;
}
