/* tests/e2e/my_todos_checks.c: the story of examples/rust/my-todos and examples/c-my-todos over HTTP,
 * shared by test_auth_native.c (one trail) and test_cluster_examples.c (a three-node cluster, each
 * request through the next node in turn): req.user() from a bearer token and from the cookie (with
 * and without CSRF-Token on a POST), only the caller's own todos, require_admin before and after
 * `trail admin promote` and after `demote`, the authError of a tampered and of an expired token, a
 * deleted user's token, and a body that carries a would-be caller. */
#include "e2e/my_todos_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "e2e/authkit.h"
#include "test.h"

#define J "application/json"
#define T "text/plain"
/* The port of the next request: the trails in turn. */
#define PORT (ports[turn++ % nports])

/* GET or POST path with headers; checks the status and that the body is want (exact). */
static void expect(int port, const char *method, const char *path, const char *headers,
                   const char *body, int status, const char *want)
{
    th_resp r;
    int st = ak_req(port, method, path, headers, body ? T : NULL, body, &r);
    if (st != status || (want && strcmp(r.body, want) != 0))
        fprintf(stderr, "     %s %s: %d %s\n", method, path, st, st > 0 ? r.body : "");
    CHECK_EQ(st, status);
    if (want) CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
}

/* A token of the server's key for sub and email that expired an hour ago. */
static char *expired_token(const char *depot, const char *sub, const char *email)
{
    auth_keys *k = NULL;
    tr_error err = {0};
    CHECK_EQ(auth_keys_load(depot, &k, &err), 0);
    auth_claims c = {0};
    CHECK(strlen(sub) < sizeof c.sub);
    memcpy(c.sub, sub, strlen(sub) + 1);
    snprintf(c.email, sizeof c.email, "%s", email);
    snprintf(c.csrf_token, sizeof c.csrf_token, "ABCDEFGHIJKLMNOPQRST");
    c.type = AUTH_TOKEN_TYPE_AUTH;
    c.iat = (int64_t)(tr_wall_ms() / 1000) - 7200;
    c.exp = c.iat + 3600;
    tr_buf b = TR_BUF_INIT;
    auth_jwt_sign(k, &c, &b);
    tr_buf_append_char(&b, '\0');
    char *t = strdup(b.data);
    tr_buf_free(&b);
    auth_keys_free(k);
    return t;
}

/* The whole story (my_todos_checks.h). */
void mt_check(const char *depot, const int *ports, size_t nports, bool rust)
{
    size_t turn = 0;
    char ta[1024], ra[1024], ca[1024], tb[1024], rb[1024], cb[1024];
    ak_login(PORT, "a@example.org", "password-a", ta, ra, ca);
    ak_login(PORT, "b@example.org", "password-b", tb, rb, cb);
    char ha[1200], hb[1200], cookie[1200], hcsrf[2400], want[2400];
    snprintf(ha, sizeof ha, "Authorization: Bearer %s\r\n", ta);
    snprintf(hb, sizeof hb, "Authorization: Bearer %s\r\n", tb);
    snprintf(cookie, sizeof cookie, "Cookie: theme=dark; auth_token=%s\r\n", ta);
    snprintf(hcsrf, sizeof hcsrf, "%sCSRF-Token: %s\r\n", cookie, ca);

    /* req.user(): nobody, then a by bearer token: id (the token's sub), email, csrf_token */
    expect(PORT, "GET", "/me", NULL, NULL, 200, "{\"user\":null,\"auth_error\":null}");
    th_resp r;
    CHECK_EQ(ak_req(PORT, "GET", "/me", ha, NULL, NULL, &r), 200);
    char id[32], seen[64];
    CHECK(ak_json_str(r.body, "id", id, sizeof id));
    CHECK_EQ(strlen(id), 24u);
    CHECK(ak_json_str(r.body, "csrf_token", seen, sizeof seen));
    CHECK_STR_EQ(seen, ca);
    snprintf(want, sizeof want,
             "{\"user\":{\"id\":\"%s\",\"email\":\"a@example.org\",\"csrf_token\":\"%s\"},"
             "\"auth_error\":null}",
             id, ca);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
    /* the cookie: a GET counts; a POST only with the CSRF token (trail checks it, not the SDK) */
    expect(PORT, "GET", "/me", cookie, NULL, 200, want);
    expect(PORT, "POST", "/me", hcsrf, "x", 200, want);
    CHECK_EQ(ak_req(PORT, "POST", "/me", cookie, T, "x", &r), 200);
    CHECK_CONTAINS(r.body, "{\"user\":null,\"auth_error\":\"missing or wrong CSRF-Token header");
    th_resp_free(&r);
    CHECK_EQ(ak_req(PORT, "POST", "/todos", cookie, T, "forged", &r), 403);
    CHECK_CONTAINS(r.body, "{\"error\":\"missing or wrong CSRF-Token header");
    th_resp_free(&r);
    /* b's CSRF token with a's cookie does not count either */
    char wrong[2400];
    snprintf(wrong, sizeof wrong, "%sCSRF-Token: %s\r\n", cookie, cb);
    CHECK_EQ(ak_status(PORT, "POST", "/todos", wrong, T, "forged"), 403);

    /* my todos: each caller sees their own rows only */
    expect(PORT, "POST", "/todos", ha, "a1", 201, "created");
    expect(PORT, "POST", "/todos", hcsrf, "a2", 201, "created");
    expect(PORT, "POST", "/todos", hb, "b1", 201, "created");
    expect(PORT, "GET", "/todos", ha, NULL, 200, "[\"a1\",\"a2\"]");
    expect(PORT, "GET", "/todos", cookie, NULL, 200, "[\"a1\",\"a2\"]");
    expect(PORT, "GET", "/todos", hb, NULL, 200, "[\"b1\"]");
    expect(PORT, "GET", "/todos", NULL, NULL, 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");
    expect(PORT, "POST", "/todos", NULL, "anon", 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");

    /* credentials that do not count: authError's status and message */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s", ha);
    char *end = bad + strlen(bad) - 3; /* the signature's last character before "\r\n" */
    *end = *end == 'A' ? 'B' : 'A';
    expect(PORT, "GET", "/todos", bad, NULL, 401, "{\"error\":\"invalid auth token\"}");
    CHECK_EQ(ak_req(PORT, "GET", "/me", bad, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"user\":null,\"auth_error\":\"invalid auth token\"}");
    th_resp_free(&r);
    char *old = expired_token(depot, id, "a@example.org");
    char hold[1200];
    snprintf(hold, sizeof hold, "Authorization: Bearer %s\r\n", old);
    free(old);
    expect(PORT, "GET", "/todos", hold, NULL, 401, "{\"error\":\"the auth token has expired\"}");
    expect(PORT, "GET", "/admin", hold, NULL, 401, "{\"error\":\"the auth token has expired\"}");

    /* a body shaped like the caller's encoding (tag 1, then id, email and csrf as str) stays a
     * body: the caller follows it, and its tag is the host's */
    {
        static const char fake[] = "\x01\x18\x00\x00\x00"
                                   "AAAAAAAAAAAAAAAAAAAAAAA="
                                   "\x0d\x00\x00\x00"
                                   "a@example.org"
                                   "\x01\x00\x00\x00"
                                   "x";
        char raw[512];
        int n = snprintf(raw, sizeof raw,
                         "POST /me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         sizeof fake - 1);
        memcpy(raw + n, fake, sizeof fake - 1);
        th_conn c;
        CHECK_EQ(th_conn_open(&c, PORT), 0);
        CHECK_EQ(th_conn_send(&c, raw, (size_t)n + sizeof fake - 1), 0);
        CHECK_EQ(th_conn_read(&c, &r, false, 60000), 0);
        th_conn_close(&c);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "{\"user\":null,\"auth_error\":null}");
        th_resp_free(&r);
    }

    /* admins: read from _user at the request, not from the token */
    expect(PORT, "GET", "/admin", NULL, NULL, 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");
    expect(PORT, "GET", "/admin", ha, NULL, 403, "{\"error\":\"admins only\"}");
    const char *promote[] = {"admin", "promote", "a@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote, NULL), 0);
    expect(PORT, "GET", "/admin", ha, NULL, 200, "hello admin a@example.org");
    expect(PORT, "GET", "/admin", cookie, NULL, 200, "hello admin a@example.org");
    expect(PORT, "GET", "/admin", hb, NULL, 403, "{\"error\":\"admins only\"}");
    expect(PORT, "GET", "/admin", bad, NULL, 401, "{\"error\":\"invalid auth token\"}");
    if (rust) {
        /* the route builder of the reference: routing::get(..).require_admin() */
        expect(PORT, "GET", "/admin/users", ha, NULL, 200, "2 users");
        expect(PORT, "GET", "/admin/users", hb, NULL, 403, "{\"error\":\"admins only\"}");
        expect(PORT, "GET", "/admin/users", NULL, NULL, 401,
               "{\"error\":\"sign in first (no auth token was sent)\"}");
    }
    const char *demote[] = {"admin", "demote", "a@example.org", NULL};
    CHECK_EQ(ak_cli(depot, demote, NULL), 0);
    expect(PORT, "GET", "/admin", ha, NULL, 403, "{\"error\":\"admins only\"}");

    /* a deleted user's token still verifies until it expires, but finds no rows and no admin */
    const char *promote_b[] = {"admin", "promote", "b@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote_b, NULL), 0);
    expect(PORT, "GET", "/admin", hb, NULL, 200, "hello admin b@example.org");
    const char *del_b[] = {"user", "delete", "b@example.org", NULL};
    CHECK_EQ(ak_cli(depot, del_b, NULL), 0);
    expect(PORT, "GET", "/admin", hb, NULL, 403, "{\"error\":\"admins only\"}");
    expect(PORT, "GET", "/todos", hb, NULL, 200, "[]");
    expect(PORT, "GET", "/todos", ha, NULL, 200, "[\"a1\",\"a2\"]");
    (void)ra;
    (void)rb;
}

