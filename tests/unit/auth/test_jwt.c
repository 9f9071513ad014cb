/* Tests for auth/jwt.c and auth/fields.c: the key files, tokens signed and verified, every way a
 * token can be tampered with, the flat JSON and form readers, and the login counters. */
#include "test.h"
#include "auth/auth_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static auth_keys *keys_in(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0700);
    auth_keys *k = NULL;
    tr_error err = {0};
    int rc = auth_keys_load(dir, &k, &err);
    if (rc < 0) fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ(rc, 0);
    return k;
}

static void claims(auth_claims *c, int64_t exp)
{
    memset(c, 0, sizeof *c);
    snprintf(c->sub, sizeof c->sub, "AaJHtgD0dqaTGzmAUgGrSA==");
    c->iat = 1000;
    c->exp = exp;
    c->type = AUTH_TOKEN_TYPE_AUTH;
    snprintf(c->email, sizeof c->email, "a\"b@example.org");
    snprintf(c->csrf_token, sizeof c->csrf_token, "abcdefghij0123456789");
}

/* header.payload.signature from the parts' JSON texts and raw signature bytes */
static char *forge(const char *header, const char *payload, const uint8_t *sig, size_t sig_len)
{
    tr_buf b = TR_BUF_INIT;
    auth__b64url_encode(header, strlen(header), &b);
    tr_buf_append_char(&b, '.');
    auth__b64url_encode(payload, strlen(payload), &b);
    tr_buf_append_char(&b, '.');
    auth__b64url_encode(sig, sig_len, &b);
    tr_buf_append_char(&b, '\0');
    return b.data;
}

static const char payload[] = "{\"sub\":\"AaJHtgD0dqaTGzmAUgGrSA==\",\"iat\":1,\"exp\":99999999999,"
                              "\"type\":1,\"email\":\"x@y.z\",\"csrf_token\":\"c\"}";

TEST(auth_jwt_round_trip_and_header)
{
    auth_keys *k = keys_in("k1");
    auth_claims c, out;
    claims(&c, 5000);
    c.admin = true;
    tr_buf t = TR_BUF_INIT;
    auth_jwt_sign(k, &c, &t);
    CHECK_EQ(auth_jwt_verify(k, t.data, t.len, 4999, &out), 0);
    CHECK_STR_EQ(out.sub, c.sub);
    CHECK_STR_EQ(out.email, "a\"b@example.org");
    CHECK_STR_EQ(out.csrf_token, c.csrf_token);
    CHECK_EQ(out.exp, 5000);
    CHECK(out.admin);
    /* the header is the reference's, byte for byte */
    uint8_t raw[128];
    size_t n;
    CHECK_EQ(
        auth__b64url_decode(t.data, (size_t)(strchr(t.data, '.') - t.data), raw, sizeof raw, &n),
        0);
    CHECK_MEM_EQ((const char *)raw, n, "{\"typ\":\"JWT\",\"alg\":\"EdDSA\"}");
    /* expired: exp == now is expired too */
    CHECK_EQ(auth_jwt_verify(k, t.data, t.len, 5000, &out), TR_ETIMEDOUT);
    CHECK_EQ(auth_jwt_verify(k, t.data, t.len, 9000, &out), TR_ETIMEDOUT);
    tr_buf_free(&t);
    auth_keys_free(k);
}

TEST(auth_jwt_tampering_is_refused)
{
    auth_keys *k = keys_in("k2");
    auth_keys *other = keys_in("k3");
    auth_claims c, out;
    claims(&c, 5000);
    tr_buf t = TR_BUF_INIT;
    auth_jwt_sign(k, &c, &t);
    tr_buf_append_char(&t, '\0');
    t.len--;
    /* every byte of the signature flipped, one at a time (its first and last characters) */
    char *sig = strrchr(t.data, '.') + 1;
    size_t sl = strlen(sig);
    for (size_t i = 0; i < sl; i++) {
        char keep = sig[i];
        sig[i] = keep == 'A' ? 'B' : 'A';
        int rc = auth_jwt_verify(k, t.data, t.len, 100, &out);
        CHECK(rc == TR_EINVAL || rc == TR_EPARSE);
        sig[i] = keep;
    }
    CHECK_EQ(auth_jwt_verify(k, t.data, t.len, 100, &out), 0);
    /* another key's signature */
    CHECK_EQ(auth_jwt_verify(other, t.data, t.len, 100, &out), TR_EINVAL);
    /* a payload changed under the original signature */
    char *dot1 = strchr(t.data, '.'), *dot2 = strrchr(t.data, '.');
    tr_buf forged = TR_BUF_INIT;
    tr_buf_append(&forged, t.data, (size_t)(dot1 - t.data + 1));
    auth__b64url_encode(payload, strlen(payload), &forged);
    tr_buf_append(&forged, dot2, strlen(dot2));
    CHECK_EQ(auth_jwt_verify(k, forged.data, forged.len, 100, &out), TR_EINVAL);
    tr_buf_free(&forged);
    /* alg none (with and without a signature), HS256 keyed with the public key, no alg */
    uint8_t mac[32];
    char *none = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, mac, 0);
    CHECK_EQ(auth_jwt_verify(k, none, strlen(none), 100, &out), TR_EINVAL);
    free(none);
    uint8_t zero[64] = {0};
    none = forge("{\"alg\":\"none\"}", payload, zero, 64);
    CHECK_EQ(auth_jwt_verify(k, none, strlen(none), 100, &out), TR_EINVAL);
    free(none);
    tr_buf hs_in = TR_BUF_INIT;
    auth__b64url_encode("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, &hs_in);
    tr_buf_append_char(&hs_in, '.');
    auth__b64url_encode(payload, strlen(payload), &hs_in);
    crypto_auth_hmacsha256(mac, (const uint8_t *)hs_in.data, hs_in.len, k->pk);
    char *hs = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, mac, 32);
    CHECK_EQ(auth_jwt_verify(k, hs, strlen(hs), 100, &out), TR_EINVAL);
    free(hs);
    tr_buf_free(&hs_in);
    char *noalg = forge("{\"typ\":\"JWT\"}", payload, zero, 64);
    CHECK_EQ(auth_jwt_verify(k, noalg, strlen(noalg), 100, &out), TR_EINVAL);
    free(noalg);
    char *eddsa_lower = forge("{\"alg\":\"eddsa\"}", payload, zero, 64);
    CHECK_EQ(auth_jwt_verify(k, eddsa_lower, strlen(eddsa_lower), 100, &out), TR_EINVAL);
    free(eddsa_lower);
    /* malformed */
    static const char *const bad[] = {"",
                                      "a.b",
                                      "a.b.c.d",
                                      "...",
                                      "eyJ.eyJ.",
                                      "%%%.%%%.%%%",
                                      "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9==.e30.AAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_NE(auth_jwt_verify(k, bad[i], strlen(bad[i]), 100, &out), 0);
    /* a trailing '=' (padding) on the signature is not canonical base64url */
    tr_buf pad = TR_BUF_INIT;
    tr_buf_append(&pad, t.data, t.len);
    tr_buf_append_str(&pad, "==");
    CHECK_NE(auth_jwt_verify(k, pad.data, pad.len, 100, &out), 0);
    tr_buf_free(&pad);
    tr_buf_free(&t);
    auth_keys_free(k);
    auth_keys_free(other);
}

TEST(auth_keys_persist_and_are_checked)
{
    auth_keys *a = keys_in("k4");
    auth_keys *b = keys_in("k4"); /* loaded from the files written by the first */
    CHECK_EQ(memcmp(a->pk, b->pk, 32), 0);
    CHECK_EQ(memcmp(a->sk, b->sk, 64), 0);
    auth_keys_free(a);
    auth_keys_free(b);
    char path[600];
    snprintf(path, sizeof path, "%s/k4/%s", test_tmpdir(), AUTH_PRIVATE_KEY_FILE);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/k4", test_tmpdir());
    auth_keys *k = NULL;
    tr_error err = {0};
    /* readable by others: refused, naming the file */
    CHECK_EQ(chmod(path, 0644), 0);
    CHECK_EQ(auth_keys_load(dir, &k, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "private_key.pem");
    CHECK_CONTAINS(err.msg, "chmod 600");
    CHECK_EQ(chmod(path, 0600), 0);
    /* damaged */
    FILE *f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    CHECK_EQ(auth_keys_load(dir, &k, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "not an Ed25519 private key");
    /* one of the pair missing */
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(auth_keys_load(dir, &k, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "is missing");
}

TEST(auth_fields_json_and_form)
{
    auth_fields *f = malloc(sizeof *f);
    static const char js[] = " {\"email\" : \"a\\u00e9\\ud83d\\ude00\\n\", \"n\": -12, \"b\":true,"
                             "\"z\":null} ";
    CHECK_EQ(auth__json_fields(js, sizeof js - 1, f), 0);
    CHECK_EQ(f->n, 4);
    CHECK_STR_EQ(auth__field_str(f, "email"), "a\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK_EQ(auth__field(f, "n")->type, AUTH_V_NUMBER);
    CHECK_EQ(auth__field(f, "b")->type, AUTH_V_BOOL);
    CHECK(auth__field_str(f, "z") == NULL);
    static const char *const bad[] = {
        "",           "[]",          "{\"a\":{}}",          "{\"a\":[1]}",      "{\"a\":1,\"a\":2}",
        "{\"a\":1,}", "{\"a\" 1}",   "{\"a\":\"\\ud800\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}",
        "{} x",       "{\"a\":tru}", "{\"a\":\"\\q\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (auth__json_fields(bad[i], strlen(bad[i]), f) == 0) fprintf(stderr, "%s\n", bad[i]);
        CHECK_EQ(auth__json_fields(bad[i], strlen(bad[i]), f), TR_EPARSE);
    }
    /* a NUL inside a string is kept, but the field is not a usable string */
    static const char nul[] = "{\"a\":\"x\\u0000y\"}";
    CHECK_EQ(auth__json_fields(nul, sizeof nul - 1, f), 0);
    CHECK(auth__field_str(f, "a") == NULL);
    static const char form[] = "email=a%40b.org&password=p+w%26&empty=&flag";
    CHECK_EQ(auth__form_fields(form, sizeof form - 1, f), 0);
    CHECK_STR_EQ(auth__field_str(f, "email"), "a@b.org");
    CHECK_STR_EQ(auth__field_str(f, "password"), "p w&");
    CHECK_STR_EQ(auth__field_str(f, "empty"), "");
    CHECK_STR_EQ(auth__field_str(f, "flag"), "");
    CHECK_EQ(auth__form_fields("a=1&a=2", 7, f), TR_EPARSE);
    free(f);
}

TEST(auth_rate_limit_counts_per_key)
{
    for (int i = 0; i < 3; i++)
        CHECK(!auth__rate_hit("test", "k1", 3));
    CHECK(auth__rate_exceeded("test", "k1", 3));
    CHECK(auth__rate_hit("test", "k1", 3));
    CHECK(!auth__rate_exceeded("test", "k2", 3));
    CHECK(!auth__rate_exceeded("other", "k1", 3));
    auth__rate_clear("test", "k1");
    CHECK(!auth__rate_exceeded("test", "k1", 3));
    CHECK(!auth__rate_hit("test", "k1", 0)); /* 0: no limit */
}

TEST(auth_email_and_password_rules)
{
    char out[AUTH_MAX_EMAIL + 2];
    CHECK_EQ(auth__email_normalize("  Alice@Example.ORG ", out), 0);
    CHECK_STR_EQ(out, "alice@example.org");
    static const char *const bad[] = {"",         "a",         "a@b",
                                      "@b.org",   "a@.org",    "a@b.org.",
                                      "a@@b.org", "a b@c.org", "a@b.org\r\nBcc: x@y.z",
                                      "<a@b.org>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(auth__email_normalize(bad[i], out), -1);
    char hash[AUTH_HASH_BYTES];
    CHECK_EQ(auth_password_hash("secret123", 9, hash), 0);
    CHECK_EQ(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
    CHECK(auth_password_check(hash, "secret123", 9));
    CHECK(!auth_password_check(hash, "secret124", 9));
    CHECK(!auth_password_check("", "", 0));
}
