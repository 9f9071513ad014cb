/* Users and authentication end to end: every endpoint of /api/auth/v1 over real HTTP to the real
 * binary (registration, verification, login, refresh, logout, status, password and email
 * changes, password reset, sessions), its error paths, the guest's req.user() with bearer tokens
 * and cookies (CSRF included), "my todos", what a guest may read of _user, the CLI, and the
 * auth API with no component installed. Mail goes to the log here (no SMTP server configured);
 * test_auth_smtp.c runs the same flows through a real SMTP server. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J "application/json"

static const char *const one_worker[] = {"--runtime-threads", "1", NULL};

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

TEST_TIMEOUT(e2e_auth_register_verify_login_refresh_logout, 90)
{
    char depot[512];
    ak_depot("depot", NULL, depot, sizeof depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, one_worker), 0);
    int port = s.port;

    /* registration: bad input */
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J,
                       "{\"email\":\"x\","
                       "\"password\":\"secret123\"}"),
             400);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J,
                       "{\"email\":\"a@b.org\","
                       "\"password\":\"short\"}"),
             400);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J,
                       "{\"email\":\"a@b.org\","
                       "\"password\":\"secret123\",\"password_repeat\":\"other1234\"}"),
             400);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J, "{\"email\": [1]}"), 400);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J, "not json"), 400);
    th_resp r;
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/register", NULL, NULL, NULL, &r), 405);
    CHECK_CONTAINS(r.body, "\"error\"");
    char allow[64];
    CHECK_STR_EQ(th_resp_header(&r, "allow", allow, sizeof allow), "POST");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "PUT", "/api/auth/v1/logout", NULL, NULL, NULL, &r), 405);
    CHECK_STR_EQ(th_resp_header(&r, "allow", allow, sizeof allow), "GET, HEAD, POST");
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "GET", "/api/auth/v1/sessions/1", NULL, NULL, NULL), 405);
    CHECK_EQ(ak_status(port, "GET", "/api/auth/v1/nothing", NULL, NULL, NULL), 404);
    CHECK_EQ(ak_status(port, "GET", "/api/auth/v1/status/extra", NULL, NULL, NULL), 404);

    /* registration, and the same answer for an address that has an account */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/register", NULL, J,
                    "{\"email\":\"Alice@Example.org\",\"password\":\"secret123\","
                    "\"password_repeat\":\"secret123\"}",
                    &r),
             200);
    char first[256];
    snprintf(first, sizeof first, "%s", r.body);
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/register", NULL, J,
                    "{\"email\":\"alice@example.org\",\"password\":\"different9\"}", &r),
             200);
    CHECK_STR_EQ(r.body, first);
    th_resp_free(&r);

    /* not verified yet: the right password is refused with 403 */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, J,
                    "{\"email\":\"alice@example.org\",\"password\":\"secret123\"}", &r),
             403);
    CHECK_CONTAINS(r.body, "not verified");
    th_resp_free(&r);
    char code[64];
    CHECK(ak_logged_code(&s, "verify_email/confirm/", code));
    CHECK_EQ(ak_status(port, "GET", "/api/auth/v1/verify_email/confirm/AAAAAAAAAAAAAAAAAAAAAAAA",
                       NULL, NULL, NULL),
             400);
    char path[256];
    snprintf(path, sizeof path, "/api/auth/v1/verify_email/confirm/%s", code);
    CHECK_EQ(ak_status(port, "GET", path, NULL, NULL, NULL), 200);
    CHECK_EQ(ak_status(port, "GET", path, NULL, NULL, NULL), 400); /* one use only */

    /* wrong password, unknown address: the same 401 */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, J,
                    "{\"email\":\"alice@example.org\",\"password\":\"wrong-one\"}", &r),
             401);
    char wrong[256];
    snprintf(wrong, sizeof wrong, "%s", r.body);
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, J,
                    "{\"email\":\"nobody@example.org\",\"password\":\"wrong-one\"}", &r),
             401);
    CHECK_STR_EQ(r.body, wrong);
    th_resp_free(&r);

    char tok[1024], rt[1024], csrf[1024];
    ak_login(port, "alice@example.org", "secret123", tok, rt, csrf);
    CHECK_EQ(strncmp(tok, "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.", 37), 0);
    CHECK_EQ(strlen(csrf), 20);

    /* status with the bearer token and with the refresh-token header */
    char hdr[2600];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/status", hdr, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "\"auth_token\":\"ey");
    CHECK_CONTAINS(r.body, "\"refresh_token\":null");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/status", NULL, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"auth_token\":null,\"refresh_token\":null,\"csrf_token\":null}");
    th_resp_free(&r);

    /* refresh */
    char body[1200];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/refresh", NULL, J, body, &r), 200);
    char tok2[1024];
    CHECK(ak_json_str(r.body, "auth_token", tok2, sizeof tok2));
    CHECK(ak_json_str(r.body, "csrf_token", csrf, 1024));
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J,
                       "{\"refresh_token\":\"not-a-session\"}"),
             401);

    /* sessions: two logins, listed; one deleted */
    char tokb[1024], rtb[1024], csrfb[1024];
    ak_login(port, "alice@example.org", "secret123", tokb, rtb, csrfb);
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/sessions", hdr, NULL, NULL, &r), 200);
    CHECK_EQ(count(r.body, "\"id\":"), 2);
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "GET", "/api/auth/v1/sessions", NULL, NULL, NULL), 401);
    CHECK_EQ(ak_status(port, "DELETE", "/api/auth/v1/sessions/999", hdr, NULL, NULL), 404);

    /* change password: wrong old one, then right */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/change_password", hdr, J,
                    "{\"old_password\":\"nope-nope\",\"new_password\":\"newpass123\"}", &r),
             400);
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/change_password", NULL, J,
                       "{\"old_password\":\"secret123\",\"new_password\":\"newpass123\"}"),
             401);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/change_password", hdr, J,
                       "{\"old_password\":\"secret123\",\"new_password\":\"newpass123\","
                       "\"new_password_repeat\":\"newpass123\"}"),
             200);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"alice@example.org\",\"password\":\"secret123\"}"),
             401);

    /* logout (POST) revokes that refresh token */
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/logout", NULL, J, body), 200);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/refresh", NULL, J, body, &r), 401);
    CHECK_CONTAINS(r.body, "revoked");
    th_resp_free(&r);
    /* the other session still refreshes; GET /logout with its header ends it too */
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rtb);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 200);
    char rh[1200];
    snprintf(rh, sizeof rh, "Refresh-Token: %s\r\n", rtb);
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/logout", rh, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.head, "auth_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 401);

    /* password reset: the same answer for any address; the code from the log */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/reset_password/request", NULL, J,
                    "{\"email\":\"nobody@example.org\"}", &r),
             200);
    snprintf(first, sizeof first, "%s", r.body);
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/reset_password/request", NULL, J,
                    "{\"email\":\"alice@example.org\"}", &r),
             200);
    CHECK_STR_EQ(r.body, first);
    th_resp_free(&r);
    CHECK(ak_logged_code(&s, "reset_password?code=", code));
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/reset_password/update", NULL, J,
                       "{\"password_reset_code\":\"AAAAAAAAAAAAAAAAAAAAAAAA\","
                       "\"password\":\"reset1234\"}"),
             401);
    snprintf(body, sizeof body,
             "{\"password_reset_code\":\"%s\",\"password\":\"reset1234\","
             "\"password_repeat\":\"reset1234\"}",
             code);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/reset_password/update", NULL, J, body), 200);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/reset_password/update", NULL, J, body), 401);
    ak_login(port, "alice@example.org", "reset1234", tok, rt, csrf);

    /* change email: CSRF token in the body, code from the log */
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/change_email/request", hdr, J,
                       "{\"csrf_token\":\"wrong\",\"new_email\":\"al@example.org\"}"),
             400);
    snprintf(body, sizeof body, "{\"csrf_token\":\"%s\",\"new_email\":\"al@example.org\"}", csrf);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/change_email/request", hdr, J, body), 200);
    CHECK(ak_logged_code(&s, "change_email/confirm/", code));
    snprintf(path, sizeof path, "/api/auth/v1/change_email/confirm/%s", code);
    CHECK_EQ(ak_status(port, "GET", path, NULL, NULL, NULL), 200);
    ak_login(port, "al@example.org", "reset1234", tok, rt, csrf);

    /* form login: cookies, and a redirect only to a path of this site */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, "application/x-www-form-urlencoded",
                    "email=al%40example.org&password=reset1234&redirect_uri=%2Fhome", &r),
             303);
    CHECK_CONTAINS(r.head, "Location: /home");
    CHECK_CONTAINS(r.head, "Set-Cookie: auth_token=ey");
    CHECK_CONTAINS(r.head, "Set-Cookie: refresh_token=");
    CHECK_CONTAINS(r.head, "HttpOnly; SameSite=Strict");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, "application/x-www-form-urlencoded",
                    "email=al%40example.org&password=reset1234&redirect_uri=%2F%2Fevil.example",
                    &r),
             200);
    CHECK(strstr(r.head, "Location:") == NULL);
    th_resp_free(&r);

    /* bodies: too large, too many fields */
    char *big = malloc(9000);
    memset(big, 'a', 8999);
    big[0] = '"';
    big[8998] = '"';
    big[8999] = '\0';
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J, big), 413);
    free(big);
    /* the signing key: 0600 */
    char stat_cmd[1024];
    snprintf(stat_cmd, sizeof stat_cmd,
             "stat -c %%a '%s/secrets/keys/private_key.pem' | grep -qx 600", depot);
    CHECK_EQ(system(stat_cmd), 0);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* The guest: req.user() from a bearer token and from the cookie, CSRF for cookie POSTs, the
 * caller's own todos only, requireAdmin, the hash a guest cannot read, and routes of a component
 * that cannot shadow the auth API. */
TEST_TIMEOUT(e2e_auth_guest_user_and_my_todos, 90)
{
    char depot[512];
    ak_depot("depot", "auth {\n  require_email_verification: false\n}\n", depot, sizeof depot);
    const char *add_a[] = {"user", "add", "a@example.org", "password-a", NULL};
    const char *add_b[] = {"user", "add", "b@example.org", "password-b", NULL};
    CHECK_EQ(ak_cli(depot, add_a, NULL), 0);
    CHECK_EQ(ak_cli(depot, add_b, NULL), 0);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    int port = s.port;
    char ta[1024], ra[1024], ca[1024], tb[1024], rb[1024], cb[1024];
    ak_login(port, "a@example.org", "password-a", ta, ra, ca);
    ak_login(port, "b@example.org", "password-b", tb, rb, cb);
    char ha[1200], hb[1200], cookie[1200], hcsrf[2400];
    snprintf(ha, sizeof ha, "Authorization: Bearer %s\r\n", ta);
    snprintf(hb, sizeof hb, "Authorization: Bearer %s\r\n", tb);
    snprintf(cookie, sizeof cookie, "Cookie: theme=dark; auth_token=%s\r\n", ta);

    th_resp r;
    CHECK_EQ(ak_req(port, "GET", "/me", NULL, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"user\":null}");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "GET", "/me", ha, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "\"email\":\"a@example.org\"");
    char csrf_seen[64];
    CHECK(ak_json_str(r.body, "csrf", csrf_seen, sizeof csrf_seen));
    CHECK_STR_EQ(csrf_seen, ca);
    th_resp_free(&r);
    /* cookie: a GET counts, a POST only with the CSRF token */
    CHECK_EQ(ak_req(port, "GET", "/me", cookie, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "a@example.org");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/me", cookie, J, "{}", &r), 200);
    CHECK_STR_EQ(r.body, "{\"user\":null}");
    th_resp_free(&r);
    snprintf(hcsrf, sizeof hcsrf, "%sCSRF-Token: %s\r\n", cookie, ca);
    CHECK_EQ(ak_req(port, "POST", "/me", hcsrf, J, "{}", &r), 200);
    CHECK_CONTAINS(r.body, "a@example.org");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "POST", "/todos", cookie, J, "{\"text\":\"forged\"}", &r), 403);
    CHECK_CONTAINS(r.body, "CSRF");
    th_resp_free(&r);

    /* my todos */
    CHECK_EQ(ak_status(port, "POST", "/todos", ha, J, "{\"text\":\"a1\"}"), 201);
    CHECK_EQ(ak_status(port, "POST", "/todos", hcsrf, J, "{\"text\":\"a2\"}"), 201);
    CHECK_EQ(ak_status(port, "POST", "/todos", hb, J, "{\"text\":\"b1\"}"), 201);
    CHECK_EQ(ak_req(port, "GET", "/todos", ha, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "[\"a1\",\"a2\"]");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "GET", "/todos", hb, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "[\"b1\"]");
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "GET", "/todos", NULL, NULL, NULL, &r), 401);
    CHECK_CONTAINS(r.body, "{\"error\":");
    th_resp_free(&r);
    /* a tampered token: the last signature character changed */
    char bad[1200];
    snprintf(bad, sizeof bad, "Authorization: Bearer %s\r\n", ta);
    char *end = bad + strlen(bad) - 3;
    *end = *end == 'A' ? 'B' : 'A';
    CHECK_EQ(ak_req(port, "GET", "/todos", bad, NULL, NULL, &r), 401);
    CHECK_CONTAINS(r.body, "invalid auth token");
    th_resp_free(&r);

    /* admins: 403 until promoted (read from _user, not from the token) */
    CHECK_EQ(ak_req(port, "GET", "/admin", ha, NULL, NULL, &r), 403);
    CHECK_STR_EQ(r.body, "{\"error\":\"admins only\"}");
    th_resp_free(&r);
    CHECK_EQ(ak_status(port, "GET", "/admin", NULL, NULL, NULL), 401);
    const char *promote[] = {"admin", "promote", "a@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote, NULL), 0);
    CHECK_EQ(ak_req(port, "GET", "/admin", ha, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "hello admin a@example.org");
    th_resp_free(&r);

    /* secrets stay away from the guest */
    CHECK_EQ(ak_req(port, "GET", "/hashes", NULL, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "[\"a@example.org\",null]");
    CHECK_CONTAINS(r.body, "\"star\":[null,null]");
    CHECK_CONTAINS(r.body, "not authorized");
    CHECK(strstr(r.body, "argon2") == NULL);
    th_resp_free(&r);

    /* the component's /api/auth/v1/login and /status do not shadow trail's */
    CHECK_EQ(ak_req(port, "POST", "/api/auth/v1/login", NULL, J, "{}", &r), 400);
    CHECK(strstr(r.body, "shadowed") == NULL);
    th_resp_free(&r);
    CHECK_EQ(ak_req(port, "GET", "/api/auth/v1/status", NULL, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "auth_token");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_auth_cli_user_and_admin, 90)
{
    char depot[512];
    ak_depot("depot", "auth {\n  require_email_verification: true\n}\n", depot, sizeof depot);
    char *out = NULL;
    const char *add[] = {"user", "add", "Ops@Example.org", "password-1", NULL};
    CHECK_EQ(ak_cli(depot, add, &out), 0);
    CHECK_CONTAINS(out, "added Ops@Example.org");
    free(out);
    const char *dup[] = {"user", "add", "ops@example.org", "password-1", NULL};
    CHECK_EQ(ak_cli(depot, dup, NULL), 1);
    const char *unknown[] = {"user", "delete", "ghost@example.org", NULL};
    CHECK_EQ(ak_cli(depot, unknown, NULL), 1);
    const char *bad[] = {"user", "frobnicate", "x", NULL};
    CHECK_EQ(ak_cli(depot, bad, NULL), 2);
    const char *list0[] = {"admin", "list", NULL};
    CHECK_EQ(ak_cli(depot, list0, &out), 0);
    CHECK_CONTAINS(out, "No admins.");
    free(out);
    const char *promote[] = {"admin", "promote", "ops@example.org", NULL};
    CHECK_EQ(ak_cli(depot, promote, NULL), 0);
    CHECK_EQ(ak_cli(depot, list0, &out), 0);
    CHECK_CONTAINS(out, "ops@example.org");
    free(out);
    const char *demote[] = {"admin", "demote", "ops@example.org", NULL};
    CHECK_EQ(ak_cli(depot, demote, NULL), 0);
    CHECK_EQ(ak_cli(depot, list0, &out), 0);
    CHECK_CONTAINS(out, "No admins.");
    free(out);

    th_server s;
    CHECK_EQ(th_server_start(&s, depot, one_worker), 0);
    int port = s.port;
    char t[1024], rt[1024], c[1024];
    ak_login(port, "ops@example.org", "password-1", t, rt, c); /* `user add` verifies */
    const char *unverify[] = {"user", "verify", "ops@example.org", "false", NULL};
    CHECK_EQ(ak_cli(depot, unverify, NULL), 0);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"ops@example.org\",\"password\":\"password-1\"}"),
             403);
    const char *verify[] = {"user", "verify", "ops@example.org", NULL};
    CHECK_EQ(ak_cli(depot, verify, NULL), 0);
    const char *pw[] = {"user", "change-password", "ops@example.org", "password-2", NULL};
    CHECK_EQ(ak_cli(depot, pw, NULL), 0);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"ops@example.org\",\"password\":\"password-1\"}"),
             401);
    const char *em[] = {"user", "change-email", "ops@example.org", "root@example.org", NULL};
    CHECK_EQ(ak_cli(depot, em, NULL), 0);
    ak_login(port, "root@example.org", "password-2", t, rt, c);

    /* mint-token: the tokens work; invalidate-session: the refresh token stops working */
    const char *mint[] = {"user", "mint-token", "root@example.org", NULL};
    CHECK_EQ(ak_cli(depot, mint, &out), 0);
    const char *at = strstr(out, "auth_token: ");
    CHECK(at != NULL);
    char hdr[1200];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %.*s\r\n", (int)strcspn(at + 12, "\n"),
             at + 12);
    free(out);
    th_resp r;
    CHECK_EQ(ak_req(port, "GET", "/me", hdr, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.body, "root@example.org");
    th_resp_free(&r);
    char body[1200];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 200);
    const char *inval[] = {"user", "invalidate-session", "root@example.org", NULL};
    CHECK_EQ(ak_cli(depot, inval, &out), 0);
    CHECK_CONTAINS(out, "3 sessions of root@example.org ended"); /* 2 logins, 1 minted */
    free(out);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 401);
    const char *del[] = {"user", "delete", "root@example.org", NULL};
    CHECK_EQ(ak_cli(depot, del, NULL), 0);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"root@example.org\",\"password\":\"password-2\"}"),
             401);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* No component installed: the auth API and the sign-in page are trail's own. */
TEST_TIMEOUT(e2e_auth_without_components, 60)
{
    char depot[600];
    snprintf(depot, sizeof depot, "%s/empty", test_tmpdir());
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, one_worker), 0);
    th_resp r;
    CHECK_EQ(ak_req(s.port, "GET", "/api/auth/v1/status", NULL, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.body, "{\"auth_token\":null,\"refresh_token\":null,\"csrf_token\":null}");
    th_resp_free(&r);
    CHECK_EQ(ak_req(s.port, "GET", "/_/auth/login", NULL, NULL, NULL, &r), 200);
    CHECK_CONTAINS(r.head, "text/html");
    CHECK_CONTAINS(r.head, "frame-ancestors 'none'");
    CHECK_CONTAINS(r.body, "<form id=\"form\"");
    th_resp_free(&r);
    CHECK_EQ(ak_status(s.port, "GET", "/api/auth/v1/nope", NULL, NULL, NULL), 404);
    CHECK_EQ(ak_status(s.port, "POST", "/_/auth/login", NULL, J, "{}"), 405);
    CHECK_EQ(th_server_stop(&s), 0);
}
