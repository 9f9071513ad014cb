/* The hostile battery against users and authentication (component auth_todos): credential
 * stuffing against one account and sprayed over many, with the rate limits' figures, and access
 * tokens tampered with every way we know (a flipped signature byte, alg none, HS256, another
 * key, an expired token, a payload swapped under a valid signature), plus refresh tokens used
 * after logout and after the operator ended the sessions. Healthy GET /ok traffic runs
 * throughout and must all succeed. */
#include "test.h"
#include "auth/auth_internal.h"
#include "e2e/authkit.h"
#include "hostile/hostile.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define J "application/json"

static void depot_with_todos(void)
{
    hz_set_component("auth_todos");
    char path[1000];
    snprintf(path, sizeof path, "%s/migrations", hz_depot());
    mkdir(hz_depot(), 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/migrations/0001_todos.sql", hz_depot());
    static const char mig[] = "CREATE TABLE todos (id INTEGER PRIMARY KEY, owner BLOB NOT NULL, "
                              "text TEXT NOT NULL) STRICT;\n";
    CHECK_EQ(th_write_file(path, mig, sizeof mig - 1), 0);
}

static int login(int port, const char *email, const char *pw, double *ms)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, pw);
    double t0 = hz_now_ms();
    int st = ak_status(port, "POST", "/api/auth/v1/login", NULL, J, body);
    if (ms) *ms = hz_now_ms() - t0;
    return st;
}

TEST_TIMEOUT(hostile_auth_credential_stuffing, 180)
{
    depot_with_todos();
    th_server s;
    hz_start(&s,
             "auth {\n  require_email_verification: false\n  login_attempts_per_account: 5\n"
             "  login_attempts_per_address: 60\n}\n",
             NULL);
    const char *add_v[] = {"user", "add", "victim@example.org", "correct-horse-9", NULL};
    const char *add_b[] = {"user", "add", "bystander@example.org", "bystander-pw-1", NULL};
    CHECK_EQ(ak_cli(hz_depot(), add_v, NULL), 0);
    CHECK_EQ(ak_cli(hz_depot(), add_b, NULL), 0);
    hz_load *load = hz_load_start(&s);

    /* A: 50 guesses at one account */
    int n401 = 0, n429 = 0, other = 0;
    double ms, max401 = 0, max429 = 0, sum401 = 0, sum429 = 0;
    double t0 = hz_now_ms();
    for (int i = 0; i < 50; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "guess-%04d", i);
        int st = login(s.port, "victim@example.org", pw, &ms);
        if (st == 401) {
            n401++;
            sum401 += ms;
            if (ms > max401) max401 = ms;
        } else if (st == 429) {
            n429++;
            sum429 += ms;
            if (ms > max429) max429 = ms;
        } else {
            other++;
        }
    }
    double stuffing_ms = hz_now_ms() - t0;
    CHECK_EQ(n401, 5);
    CHECK_EQ(n429, 45);
    CHECK_EQ(other, 0);
    /* B: the right password does not get through this minute either (the count is per
     * account, whoever sends it) */
    CHECK_EQ(login(s.port, "victim@example.org", "correct-horse-9", NULL), 429);
    /* C: another account from the same address is not locked out */
    CHECK_EQ(login(s.port, "bystander@example.org", "bystander-pw-1", NULL), 200);

    /* D: spraying: one guess each at 20 accounts; the address has 52 logins so far, 60 allowed */
    int spray401 = 0, spray429 = 0;
    for (int i = 0; i < 20; i++) {
        char email[64];
        snprintf(email, sizeof email, "user%02d@example.org", i);
        int st = login(s.port, email, "Password1", NULL);
        if (st == 401) spray401++;
        if (st == 429) spray429++;
    }
    CHECK_EQ(spray401, 8);
    CHECK_EQ(spray429, 12);
    CHECK_EQ(login(s.port, "bystander@example.org", "bystander-pw-1", NULL), 429);

    hz_stats st;
    hz_load_stop(load, &st);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    test_report("credential stuffing: 50 guesses at one account in %.0f ms: %d x 401 (each an "
                "Argon2id check, mean %.1f ms, max %.1f), %d x 429 (no hash, mean %.2f ms, max "
                "%.2f); the right password then 429; spraying 20 accounts: %d x 401, %d x 429 "
                "(address limit 60/min); healthy %ld/%ld, p99 %.1f ms, peak RSS %ld MiB",
                stuffing_ms, n401, sum401 / n401, max401, n429, sum429 / n429, max429, spray401,
                spray429, st.ok, st.ok + st.failed, st.p99_ms, st.peak_rss_kib / 1024);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* A token signed with key k for claims c (JSON text as given) and header h. */
static char *signed_token(const auth_keys *k, const char *h, const char *claims)
{
    tr_buf b = TR_BUF_INIT;
    auth__b64url_encode(h, strlen(h), &b);
    tr_buf_append_char(&b, '.');
    auth__b64url_encode(claims, strlen(claims), &b);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)b.data, b.len, k->sk);
    tr_buf_append_char(&b, '.');
    auth__b64url_encode(sig, sizeof sig, &b);
    tr_buf_append_char(&b, '\0');
    return b.data;
}

/* GET /todos with the token: its status; /me must show no user. */
static int try_token(int port, const char *token)
{
    char *hdr = malloc(strlen(token) + 64);
    sprintf(hdr, "Authorization: Bearer %s\r\n", token);
    th_resp r;
    int st = ak_req(port, "GET", "/todos", hdr, NULL, NULL, &r);
    if (st > 0) {
        if (st != 401) fprintf(stderr, "     accepted? %d %s\n", st, r.body);
        CHECK_CONTAINS(r.body, "{\"error\":");
        th_resp_free(&r);
    }
    CHECK_EQ(ak_req(port, "GET", "/me", hdr, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"user\":null}");
    th_resp_free(&r);
    free(hdr);
    return st;
}

TEST_TIMEOUT(hostile_auth_token_tampering, 180)
{
    depot_with_todos();
    th_server s;
    hz_start(&s, "auth {\n  require_email_verification: false\n}\n", NULL);
    const char *add_a[] = {"user", "add", "alice@example.org", "alice-pw-12", NULL};
    const char *add_m[] = {"user", "add", "mallory@example.org", "mallory-pw-1", NULL};
    CHECK_EQ(ak_cli(hz_depot(), add_a, NULL), 0);
    CHECK_EQ(ak_cli(hz_depot(), add_m, NULL), 0);
    hz_load *load = hz_load_start(&s);
    char ta[1024], ra[1024], ca[1024], tm[1024], rm[1024], cm[1024];
    ak_login(s.port, "alice@example.org", "alice-pw-12", ta, ra, ca);
    ak_login(s.port, "mallory@example.org", "mallory-pw-1", tm, rm, cm);
    char ha[1200];
    snprintf(ha, sizeof ha, "Authorization: Bearer %s\r\n", ta);
    CHECK_EQ(ak_status(s.port, "POST", "/todos", ha, J, "{\"text\":\"alice's secret\"}"), 201);

    /* the server's own key, read as an attacker who stole nothing cannot: only to make the
     * expired token (every other forgery below is made without it) */
    auth_keys *real = NULL, *other = NULL;
    tr_error err = {0};
    CHECK_EQ(auth_keys_load(hz_depot(), &real, &err), 0);
    char other_dir[700];
    snprintf(other_dir, sizeof other_dir, "%s/otherkey", test_tmpdir());
    mkdir(other_dir, 0700);
    CHECK_EQ(auth_keys_load(other_dir, &other, &err), 0);

    /* alice's sub, from her token */
    char payload_json[1024];
    {
        const char *d1 = strchr(ta, '.'), *d2 = strrchr(ta, '.');
        uint8_t raw[1024];
        size_t n;
        CHECK_EQ(auth__b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), raw, sizeof raw, &n), 0);
        snprintf(payload_json, sizeof payload_json, "%.*s", (int)n, (const char *)raw);
    }
    char sub[64];
    CHECK(ak_json_str(payload_json, "sub", sub, sizeof sub));
    char claims[512];
    long long now = (long long)(tr_wall_ms() / 1000);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"type\":1,\"email\":\"alice@example.org\","
             "\"csrf_token\":\"x\"}",
             sub, now, now + 3600);
    static const char eddsa[] = "{\"typ\":\"JWT\",\"alg\":\"EdDSA\"}";
    int refused = 0, cases = 0;
#define REFUSED(tok)                                  \
    do {                                              \
        cases++;                                      \
        if (try_token(s.port, tok) == 401) refused++; \
    } while (0)

    /* 1-3: a flipped byte of the signature: first, middle, last character */
    char *sigp = strrchr(ta, '.') + 1;
    size_t sl = strlen(sigp);
    size_t where[3] = {0, sl / 2, sl - 2};
    for (int i = 0; i < 3; i++) {
        char t[1024];
        snprintf(t, sizeof t, "%s", ta);
        char *c = strrchr(t, '.') + 1 + where[i];
        *c = *c == 'Q' ? 'R' : 'Q';
        REFUSED(t);
    }
    /* 4: alg none, no signature; 5: alg none with mallory's signature kept */
    tr_buf b = TR_BUF_INIT;
    auth__b64url_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26, &b);
    tr_buf_append_char(&b, '.');
    auth__b64url_encode(claims, strlen(claims), &b);
    tr_buf_append_str(&b, ".");
    tr_buf_append_char(&b, '\0');
    REFUSED(b.data);
    b.len--;
    tr_buf_append_str(&b, strrchr(tm, '.') + 1);
    tr_buf_append_char(&b, '\0');
    REFUSED(b.data);
    tr_buf_free(&b);
    /* 6: HS256 with the server's public key as the HMAC secret */
    {
        tr_buf in = TR_BUF_INIT;
        auth__b64url_encode("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, &in);
        tr_buf_append_char(&in, '.');
        auth__b64url_encode(claims, strlen(claims), &in);
        uint8_t mac[32];
        crypto_auth_hmacsha256(mac, (const uint8_t *)in.data, in.len, real->pk);
        tr_buf_append_char(&in, '.');
        auth__b64url_encode(mac, sizeof mac, &in);
        tr_buf_append_char(&in, '\0');
        REFUSED(in.data);
        tr_buf_free(&in);
    }
    /* 7: signed with another Ed25519 key */
    char *t = signed_token(other, eddsa, claims);
    REFUSED(t);
    free(t);
    /* 8: alice's claims under mallory's valid signature */
    {
        tr_buf sw = TR_BUF_INIT;
        tr_buf_append(&sw, tm, (size_t)(strchr(tm, '.') - tm + 1));
        auth__b64url_encode(claims, strlen(claims), &sw);
        tr_buf_append_str(&sw, strrchr(tm, '.'));
        tr_buf_append_char(&sw, '\0');
        REFUSED(sw.data);
        tr_buf_free(&sw);
    }
    /* 9: expired (signed with the real key, exp an hour ago) */
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"type\":1,\"email\":\"alice@example.org\","
             "\"csrf_token\":\"x\"}",
             sub, now - 7200, now - 3600);
    t = signed_token(real, eddsa, claims);
    REFUSED(t);
    free(t);
    /* 10: another token type; 11: a header with alg in another case */
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld,\"type\":3,\"csrf_token\":\"x\"}",
             sub, now + 3600);
    t = signed_token(other, eddsa, claims);
    REFUSED(t);
    free(t);
    t = signed_token(real, "{\"alg\":\"EDDSA\"}", claims);
    REFUSED(t);
    free(t);
    /* 12: garbage of every shape */
    REFUSED("x.y.z");
    CHECK_EQ(refused, cases);

    /* refresh tokens: after logout, and after `trail user invalidate-session` */
    char body[1200];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rm);
    CHECK_EQ(ak_status(s.port, "POST", "/api/auth/v1/logout", NULL, J, body), 200);
    CHECK_EQ(ak_status(s.port, "POST", "/api/auth/v1/refresh", NULL, J, body), 401);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", ra);
    CHECK_EQ(ak_status(s.port, "POST", "/api/auth/v1/refresh", NULL, J, body), 200);
    const char *inval[] = {"user", "invalidate-session", "alice@example.org", NULL};
    CHECK_EQ(ak_cli(hz_depot(), inval, NULL), 0);
    CHECK_EQ(ak_status(s.port, "POST", "/api/auth/v1/refresh", NULL, J, body), 401);
    /* alice's own valid token still reads her todos (and only hers) */
    th_resp r;
    CHECK_EQ(ak_req(s.port, "GET", "/todos", ha, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "[\"alice's secret\"]");
    th_resp_free(&r);

    hz_stats st;
    hz_load_stop(load, &st);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    test_report("token tampering: %d/%d forged or expired tokens refused (401, req.user() null); "
                "refresh after logout and after invalidate-session: 401; healthy %ld/%ld, p99 "
                "%.1f ms",
                refused, cases, st.ok, st.ok + st.failed, st.p99_ms);
    auth_keys_free(real);
    auth_keys_free(other);
    CHECK_EQ(th_server_stop(&s), 0);
}
