/* End-to-end tests for users and sign-in in cluster mode (auth/ through cluster/appdb,
 * server/cluster_db.c's signing key): three real `trail run` nodes on loopback. A user registers
 * through node 2, verifies and signs in through node 3 (bearer and cookie), and the token works on
 * node 1 (one signing key); a refresh works through another node; signing out ends the session on
 * every node; a fourth node that joins later, with a key of its own, accepts the tokens issued
 * before; `trail user add` on one node's data directory makes a user that signs in through every
 * node; a duplicate registration answers as on one node and adds no user; the verification and
 * reset mails (a real SMTP server on loopback) carry codes that work through other nodes. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J    "application/json"
#define FORM "application/x-www-form-urlencoded"

/* The value of cookie name in r's Set-Cookie headers, into out. */
static void set_cookie_value(const th_resp *r, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(r->head, key);
    CHECK(p != NULL);
    p += strlen(key);
    size_t n = strcspn(p, ";\r\n");
    CHECK(n > 0 && n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* GET /sessions on port with headers: the status, and the count of sessions listed. */
static int sessions(int port, const char *headers, int *count)
{
    th_resp r;
    int st = ak_req(port, "GET", "/api/auth/v1/sessions", headers, NULL, NULL, &r);
    *count = 0;
    for (const char *p = r.body; st == 200 && (p = strstr(p, "\"id\":")) != NULL; p++)
        (*count)++;
    th_resp_free(&r);
    return st;
}

static int refresh(int port, const char *rt, char *token_out, size_t cap)
{
    char body[1200];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
    th_resp r;
    int st = ak_req(port, "POST", "/api/auth/v1/refresh", NULL, J, body, &r);
    if (st == 200 && token_out) CHECK(ak_json_str(r.body, "auth_token", token_out, cap));
    th_resp_free(&r);
    return st;
}

/* A count through go-dqlite's shell on the cluster's database. */
static long cluster_count(const cu_node *n, const char *sql)
{
    char cmd[1024], line[256] = "";
    snprintf(cmd, sizeof cmd, "timeout 60 dqlite -s %s,%s,%s main.db \"%s\" 2>&1", n[0].addr,
             n[1].addr, n[2].addr, sql);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (fgets(line, sizeof line, f) == NULL) line[0] = '\0';
    pclose(f);
    char *end;
    long v = strtol(line, &end, 10);
    if (end == line) test_fail(__FILE__, __LINE__, "dqlite shell: %s", line);
    return v;
}

static bool file_eq(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = th_read_file(a, &la), *y = th_read_file(b, &lb);
    bool eq = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

TEST_TIMEOUT(e2e_cluster_auth_through_every_node, 900)
{
    char maildir[600], cfg[1024];
    snprintf(maildir, sizeof maildir, "%s/maildir", test_tmpdir());
    int sport = 0;
    int smtp = ak_smtp_start(maildir, &sport);
    snprintf(cfg, sizeof cfg,
             "auth {\n  require_email_verification: true\n}\n"
             "email {\n  smtp_host: \"127.0.0.1\"\n  smtp_port: %d\n  smtp_encryption: \"none\"\n"
             "  sender_address: \"noreply@trail.test\"\n}\n",
             sport);
    char dir[600];
    for (int i = 1; i <= 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        ak_depot(name, cfg, dir, sizeof dir);
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
    int p1 = n[0].srv.port, p2 = n[1].srv.port, p3 = n[2].srv.port;

    /* Every node holds the first node's key: the others replaced theirs, and said so. */
    char a[800], b[800];
    for (int i = 1; i < 3; i++) {
        snprintf(a, sizeof a, "%s/secrets/keys/private_key.pem", n[0].dir);
        snprintf(b, sizeof b, "%s/secrets/keys/private_key.pem", n[i].dir);
        CHECK(file_eq(a, b));
        snprintf(b, sizeof b, "%s/secrets/keys/private_key.pem.replaced", n[i].dir);
        CHECK(!file_eq(a, b));
        char *err = th_server_stderr(&n[i].srv);
        CHECK(strstr(err, "differs from the cluster's") != NULL);
        free(err);
    }

    /* Register through node 2; the same address again through node 3 answers the same. */
    static const char reg[] = "{\"email\":\"Ada@Example.com\",\"password\":\"correct horse\"}";
    th_resp r;
    CHECK_EQ(ak_req(p2, "POST", "/api/auth/v1/register", NULL, J, reg, &r), 200);
    CHECK_STR_EQ(r.body, "registered");
    th_resp_free(&r);
    CHECK_EQ(ak_req(p3, "POST", "/api/auth/v1/register", NULL, J, reg, &r), 200);
    CHECK_STR_EQ(r.body, "registered");
    th_resp_free(&r);
    /* not verified yet, through any node */
    static const char login[] = "{\"email\":\"ada@example.com\",\"password\":\"correct horse\"}";
    CHECK_EQ(ak_status(p1, "POST", "/api/auth/v1/login", NULL, J, login), 403);
    /* the mail went out from node 2 (one mail: the duplicate sent none); its link works through
     * node 3, once */
    char code[64], path[200];
    char *mail = ak_wait_mail(maildir);
    CHECK(strstr(mail, "To: <ada@example.com>") != NULL);
    ak_mail_code(mail, "verify_email/confirm/", code);
    free(mail);
    snprintf(path, sizeof path, "/api/auth/v1/verify_email/confirm/%s", code);
    CHECK_EQ(ak_status(p3, "GET", path, NULL, NULL, NULL), 200);
    CHECK_EQ(ak_status(p1, "GET", path, NULL, NULL, NULL), 400);

    /* Sign in through node 3 (bearer); the token works on node 1 and node 2. */
    char tok[1024], rt[1024], csrf[1024], hdr[1200];
    ak_login(p3, "ada@example.com", "correct horse", tok, rt, csrf);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    int count = 0;
    CHECK_EQ(sessions(p1, hdr, &count), 200);
    CHECK_EQ(count, 1);
    CHECK_EQ(sessions(p2, hdr, &count), 200);
    CHECK_EQ(count, 1);

    /* What a statement's round trip costs a request: GET /sessions (two statements) through the
     * leader and through a follower, beside GET /api/healthcheck (none) on the same node. */
    int li = cu_leader(n, 3), fi = (li + 1) % 3;
    double ms[4][25];
    const int ports[2] = {n[li].srv.port, n[fi].srv.port};
    for (int k = 0; k < 25; k++) {
        for (int w = 0; w < 2; w++) {
            uint64_t t0 = tr_now_ns();
            CHECK_EQ(sessions(ports[w], hdr, &count), 200);
            ms[w][k] = (double)(tr_now_ns() - t0) / 1e6;
            t0 = tr_now_ns();
            CHECK_EQ(ak_status(ports[w], "GET", "/api/healthcheck", NULL, NULL, NULL), 200);
            ms[2 + w][k] = (double)(tr_now_ns() - t0) / 1e6;
        }
    }
    for (int w = 0; w < 4; w++)
        qsort(ms[w], 25, sizeof ms[w][0], cu_cmp_double);
    test_report("GET /api/auth/v1/sessions (2 statements): median %.2f ms through the leader, %.2f "
                "ms through a follower; GET /api/healthcheck %.2f / %.2f ms",
                ms[0][12], ms[1][12], ms[2][12], ms[3][12]);

    /* Sign in with the form through node 3 (cookies); the cookie works on node 1. */
    CHECK_EQ(ak_req(p3, "POST", "/api/auth/v1/login", NULL, FORM,
                    "email=ada%40example.com&password=correct+horse", &r),
             200);
    char ctok[1024], crt[1024];
    set_cookie_value(&r, "auth_token", ctok, sizeof ctok);
    set_cookie_value(&r, "refresh_token", crt, sizeof crt);
    th_resp_free(&r);
    snprintf(hdr, sizeof hdr, "Cookie: auth_token=%s\r\n", ctok);
    CHECK_EQ(sessions(p1, hdr, &count), 200);
    CHECK_EQ(count, 2);

    /* Refresh through node 2: the new token works on node 3. */
    char tok2[1024];
    CHECK_EQ(refresh(p2, rt, tok2, sizeof tok2), 200);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok2);
    CHECK_EQ(sessions(p3, hdr, &count), 200);

    /* Sign out through node 1: the session ends on every node; the cookie's lives on. */
    char body[1200];
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
    CHECK_EQ(ak_status(p1, "POST", "/api/auth/v1/logout", NULL, J, body), 200);
    CHECK_EQ(refresh(p1, rt, NULL, 0), 401);
    CHECK_EQ(refresh(p2, rt, NULL, 0), 401);
    CHECK_EQ(refresh(p3, rt, NULL, 0), 401);
    CHECK_EQ(refresh(p2, crt, NULL, 0), 200);
    CHECK_EQ(sessions(p3, hdr, &count), 200);
    CHECK_EQ(count, 1);

    /* A node that joins later (with a key of its own) accepts the tokens issued before. */
    cu_node late;
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);
    cu_node_start(&late, 4, join, extra);
    snprintf(a, sizeof a, "%s/secrets/keys/public_key.pem", n[0].dir);
    snprintf(b, sizeof b, "%s/secrets/keys/public_key.pem", late.dir);
    CHECK(file_eq(a, b));
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    CHECK_EQ(sessions(late.srv.port, hdr, &count), 200);
    CHECK_EQ(count, 1);
    CHECK_EQ(refresh(late.srv.port, crt, NULL, 0), 200);

    /* `trail user add` on node 2's data directory: a user of the cluster, through every node. */
    char *out = NULL;
    const char *add[] = {"user", "add", "bob@example.com", "hunter22hunter", NULL};
    CHECK_EQ(ak_cli(n[1].dir, add, &out), 0);
    CHECK(strstr(out, "(in the cluster)") != NULL);
    free(out);
    static const char bob[] = "{\"email\":\"bob@example.com\",\"password\":\"hunter22hunter\"}";
    CHECK_EQ(ak_status(p1, "POST", "/api/auth/v1/login", NULL, J, bob), 200);
    CHECK_EQ(ak_status(p3, "POST", "/api/auth/v1/login", NULL, J, bob), 200);
    CHECK_EQ(ak_status(late.srv.port, "POST", "/api/auth/v1/login", NULL, J, bob), 200);
    /* the duplicate registration added nobody: the admin list through the CLI sees both */
    const char *promote[] = {"admin", "promote", "ada@example.com", NULL};
    CHECK_EQ(ak_cli(n[2].dir, promote, NULL), 0);
    const char *list[] = {"admin", "list", NULL};
    CHECK_EQ(ak_cli(n[0].dir, list, &out), 0);
    CHECK(strstr(out, "ada@example.com") != NULL);
    CHECK(strstr(out, "bob@example.com") == NULL);
    free(out);
    const char *add_again[] = {"user", "add", "ADA@example.com", "whatever1", NULL};
    CHECK(ak_cli(n[0].dir, add_again, NULL) != 0);
    /* a user deleted through the CLI ends its sessions (ON DELETE CASCADE on the leader) */
    CHECK_EQ(cluster_count(n, "SELECT count(*) FROM _user"), 2);
    CHECK(cluster_count(n, "SELECT count(*) FROM _session") >= 3);
    const char *del[] = {"user", "delete", "ada@example.com", NULL};
    CHECK_EQ(ak_cli(n[2].dir, del, NULL), 0);
    CHECK_EQ(cluster_count(n, "SELECT count(*) FROM _user"), 1);
    /* bob's three logins' sessions are left */
    CHECK_EQ(cluster_count(n, "SELECT count(*) FROM _session"), 3);

    /* A password reset asked through node 3, its mail's code used through node 1: the new
     * password signs in through the late node, and the reset ended bob's sessions. */
    CHECK_EQ(ak_status(p3, "POST", "/api/auth/v1/reset_password/request", NULL, J,
                       "{\"email\":\"bob@example.com\"}"),
             200);
    mail = ak_wait_mail(maildir);
    CHECK(strstr(mail, "To: <bob@example.com>") != NULL);
    ak_mail_code(mail, "reset_password?code=", code);
    free(mail);
    snprintf(body, sizeof body, "{\"password_reset_code\":\"%s\",\"password\":\"new bob pw\"}",
             code);
    CHECK_EQ(ak_status(p1, "POST", "/api/auth/v1/reset_password/update", NULL, J, body), 200);
    CHECK_EQ(ak_status(p2, "POST", "/api/auth/v1/reset_password/update", NULL, J, body), 401);
    CHECK_EQ(cluster_count(n, "SELECT count(*) FROM _session"), 0);
    CHECK_EQ(ak_status(late.srv.port, "POST", "/api/auth/v1/login", NULL, J, bob), 401);
    CHECK_EQ(ak_status(late.srv.port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"bob@example.com\",\"password\":\"new bob pw\"}"),
             200);
    CHECK_EQ(refresh(p1, crt, NULL, 0), 401);
    CHECK_EQ(sessions(p2, hdr, &count), 401);

    CHECK_EQ(th_server_stop(&late.srv), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
    ak_smtp_stop(smtp);
}
