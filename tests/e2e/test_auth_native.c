/* The caller in compiled guests, end to end: examples/rust/my-todos (built by `make test` with the
 * real Rust toolchain into $TRAIL_RUST_DIR) and examples/c-my-todos (built here by the real C
 * SDK), each served by the real trail from a fresh data directory: req.user() from a bearer
 * token and from the cookie (with and without CSRF-Token on a POST), only the caller's own
 * todos, require_admin before and after `trail admin promote` and after `demote`, the authError
 * of a tampered and of an expired token, a deleted user's token, and a body that carries a
 * would-be caller. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"

#define J "application/json"
#define T "text/plain"

/* Compiling the module to native code happens before trail listens; on a busy two-core machine
 * it has taken over 30 s. The depot's cache links to one under the build directory shared with
 * the hostile battery, so a warm run loads the compiled object. */
#define COMPILE_WAIT_MS 400000

/* <tmp>/NAME with wasm/my_todos.wasm (a copy of wasm), the example's migration, auth without
 * email verification, and users a@example.org and b@example.org. */
static void depot_for(const char *name, const char *wasm, char *out, size_t cap)
{
    const char *root = getenv("TRAIL_ROOT");
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/wasm' '%s/migrations' && cp '%s' '%s/wasm/my_todos.wasm' && "
             "cp '%s/examples/c-my-todos/migrations/0001_todos.sql' '%s/migrations/'",
             out, out, wasm, out, root, out);
    CHECK_EQ(fx_sh(cmd), 0);
    char path[1200], cache[1000];
    snprintf(cache, sizeof cache, "%s/build/test-native-cache", root);
    mkdir(cache, 0755);
    snprintf(path, sizeof path, "%s/cache", out);
    CHECK(symlink(cache, path) == 0 || access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/config.textproto", out);
    static const char cfg[] = "auth {\n  require_email_verification: false\n}\n";
    CHECK_EQ(th_write_file(path, cfg, sizeof cfg - 1), 0);
    const char *add_a[] = {"user", "add", "a@example.org", "password-a", NULL};
    const char *add_b[] = {"user", "add", "b@example.org", "password-b", NULL};
    CHECK_EQ(ak_cli(out, add_a, NULL), 0);
    CHECK_EQ(ak_cli(out, add_b, NULL), 0);
}

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

/* The whole story against the module wasm (the Rust or the C example); rust: the module also has
 * /admin/users behind HttpRoute::require_admin. */
static void serve_my_todos(const char *name, const char *wasm, bool rust)
{
    char depot[700];
    depot_for(name, wasm, depot, sizeof depot);
    th_server s;
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_WAIT_MS), 0);
    int port = s.port;
    char ta[1024], ra[1024], ca[1024], tb[1024], rb[1024], cb[1024];
    ak_login(port, "a@example.org", "password-a", ta, ra, ca);
    ak_login(port, "b@example.org", "password-b", tb, rb, cb);
    char ha[1200], hb[1200], cookie[1200], hcsrf[2400], want[2400];
    snprintf(ha, sizeof ha, "Authorization: Bearer %s\r\n", ta);
    snprintf(hb, sizeof hb, "Authorization: Bearer %s\r\n", tb);
    snprintf(cookie, sizeof cookie, "Cookie: theme=dark; auth_token=%s\r\n", ta);
    snprintf(hcsrf, sizeof hcsrf, "%sCSRF-Token: %s\r\n", cookie, ca);

    /* req.user(): nobody, then a by bearer token: id (the token's sub), email, csrf_token */
    expect(port, "GET", "/me", NULL, NULL, 200, "{\"user\":null,\"auth_error\":null}");
    th_resp r;
    CHECK_EQ(ak_req(port, "GET", "/me", ha, NULL, NULL, &r), 200);
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
    expect(port, "GET", "/me", cookie, NULL, 200, want);
    expect(port, "POST", "/me", hcsrf, "x", 200, want);
    CHECK_EQ(ak_req(port, "POST", "/me", cookie, T, "x", &r), 200);
    CHECK_CONTAINS(r.body, "{\"user\":null,\"auth_error\":\"missing or wrong CSRF-Token header");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/todos", cookie, T, "forged", &r), 403);
    CHECK_CONTAINS(r.body, "{\"error\":\"missing or wrong CSRF-Token header");
    th_resp_free(&r);
    /* b's CSRF token with a's cookie does not count either */
    char wrong[2400];
    snprintf(wrong, sizeof wrong, "%sCSRF-Token: %s\r\n", cookie, cb);
    CHECK_EQ(ak_status(port, "POST", "/todos", wrong, T, "forged"), 403);

    /* my todos: each caller sees their own rows only */
    expect(port, "POST", "/todos", ha, "a1", 201, "created");
    expect(port, "POST", "/todos", hcsrf, "a2", 201, "created");
    expect(port, "POST", "/todos", hb, "b1", 201, "created");
    expect(port, "GET", "/todos", ha, NULL, 200, "[\"a1\",\"a2\"]");
    expect(port, "GET", "/todos", cookie, NULL, 200, "[\"a1\",\"a2\"]");
    expect(port, "GET", "/todos", hb, NULL, 200, "[\"b1\"]");
    expect(port, "GET", "/todos", NULL, NULL, 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");
    expect(port, "POST", "/todos", NULL, "anon", 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");

    /* credentials that do not count: authError's status and message */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s", ha);
    char *end = bad + strlen(bad) - 3; /* the signature's last character before "\r\n" */
    *end = *end == 'A' ? 'B' : 'A';
    expect(port, "GET", "/todos", bad, NULL, 401, "{\"error\":\"invalid auth token\"}");
    CHECK_EQ(ak_req(port, "GET", "/me", bad, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"user\":null,\"auth_error\":\"invalid auth token\"}");
    th_resp_free(&r);
    char *old = expired_token(depot, id, "a@example.org");
    char hold[1200];
    snprintf(hold, sizeof hold, "Authorization: Bearer %s\r\n", old);
    free(old);
    expect(port, "GET", "/todos", hold, NULL, 401, "{\"error\":\"the auth token has expired\"}");
    expect(port, "GET", "/admin", hold, NULL, 401, "{\"error\":\"the auth token has expired\"}");

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
        CHECK_EQ(th_conn_open(&c, port), 0);
        CHECK_EQ(th_conn_send(&c, raw, (size_t)n + sizeof fake - 1), 0);
        CHECK_EQ(th_conn_read(&c, &r, false, 60000), 0);
        th_conn_close(&c);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "{\"user\":null,\"auth_error\":null}");
        th_resp_free(&r);
    }

    /* admins: read from _user at the request, not from the token */
    expect(port, "GET", "/admin", NULL, NULL, 401,
           "{\"error\":\"sign in first (no auth token was sent)\"}");
    expect(port, "GET", "/admin", ha, NULL, 403, "{\"error\":\"admins only\"}");
    const char *promote[] = {"admin", "promote", "a@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote, NULL), 0);
    expect(port, "GET", "/admin", ha, NULL, 200, "hello admin a@example.org");
    expect(port, "GET", "/admin", cookie, NULL, 200, "hello admin a@example.org");
    expect(port, "GET", "/admin", hb, NULL, 403, "{\"error\":\"admins only\"}");
    expect(port, "GET", "/admin", bad, NULL, 401, "{\"error\":\"invalid auth token\"}");
    if (rust) {
        /* the route builder of the reference: routing::get(..).require_admin() */
        expect(port, "GET", "/admin/users", ha, NULL, 200, "2 users");
        expect(port, "GET", "/admin/users", hb, NULL, 403, "{\"error\":\"admins only\"}");
        expect(port, "GET", "/admin/users", NULL, NULL, 401,
               "{\"error\":\"sign in first (no auth token was sent)\"}");
    }
    const char *demote[] = {"admin", "demote", "a@example.org", NULL};
    CHECK_EQ(ak_cli(depot, demote, NULL), 0);
    expect(port, "GET", "/admin", ha, NULL, 403, "{\"error\":\"admins only\"}");

    /* a deleted user's token still verifies until it expires, but finds no rows and no admin */
    const char *promote_b[] = {"admin", "promote", "b@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote_b, NULL), 0);
    expect(port, "GET", "/admin", hb, NULL, 200, "hello admin b@example.org");
    const char *del_b[] = {"user", "delete", "b@example.org", NULL};
    CHECK_EQ(ak_cli(depot, del_b, NULL), 0);
    expect(port, "GET", "/admin", hb, NULL, 403, "{\"error\":\"admins only\"}");
    expect(port, "GET", "/todos", hb, NULL, 200, "[]");
    expect(port, "GET", "/todos", ha, NULL, 200, "[\"a1\",\"a2\"]");
    (void)ra;
    (void)rb;
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_auth_native_rust_my_todos, 900)
{
    const char *built = getenv("TRAIL_RUST_DIR");
    if (built == NULL)
        test_fail(__FILE__, __LINE__, "TRAIL_RUST_DIR is not set (make test sets it)");
    char wasm[1000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", built);
    serve_my_todos("rust", wasm, true);
}

TEST_TIMEOUT(e2e_auth_native_c_my_todos, 900)
{
    char wasm[1000], cmd[3000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/tools/c-build.sh' '%s/examples/c-my-todos' '%s'",
             getenv("TRAIL_ROOT"), getenv("TRAIL_ROOT"), wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    serve_my_todos("c", wasm, false);
}
