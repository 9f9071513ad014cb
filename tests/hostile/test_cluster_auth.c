/* Hostile cases for users and sign-in in cluster mode (server/cluster_db.c): the cluster's
 * signing key lives in _cluster_signing_key, a table only the cluster's database has (made at a
 * node's start through the leader, never by a migration). A guest's statement is prepared on the
 * node's schema mirror first, where the table does not exist, so a statement naming it (reading
 * the private key, through a subquery, a schema-qualified name; deleting, overwriting or dropping
 * it) fails there with "no such table" and never reaches the leader. Sent through every node; the
 * key row is unchanged afterwards and tokens still verify everywhere. The figure: statements
 * refused, and the slowest refusal. */
#include "test.h"
#include "base/base.h"
#include "e2e/authkit.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define J "application/json"
/* the statements of tests/data/components/cluster_auth_key/index.ts */
#define KEY_STATEMENTS 8

static char *key_row(const cu_node *n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "timeout 60 dqlite -s %s,%s,%s main.db \"SELECT id, length(private_key), public_key "
             "FROM _cluster_signing_key\" 2>&1",
             n[0].addr, n[1].addr, n[2].addr);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    tr_buf b = TR_BUF_INIT;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL)
        tr_buf_append_str(&b, line);
    pclose(f);
    tr_buf_append_char(&b, '\0');
    return b.data;
}

TEST_TIMEOUT(hostile_cluster_auth_key_table_unreachable_for_guests, 600)
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir_with(dir, "cluster_auth_key", "0001_notes.sql",
                        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT) STRICT;\n");
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
    char *before = key_row(n);
    CHECK(strstr(before, "PUBLIC KEY") != NULL);

    int refused = 0, sent = 0;
    double slowest = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = tr_now_ns();
        th_resp r = cu_http(n[i].srv.port, "GET", "/key", "");
        double ms = (double)(tr_now_ns() - t0) / 1e6;
        slowest = ms > slowest ? ms : slowest;
        CHECK_EQ(r.status, 200);
        CHECK(strstr(r.body, "PRIVATE KEY") == NULL);
        CHECK(strstr(r.body, "ran:") == NULL);
        for (const char *p = r.body; *p; p++) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)len, p);
            sent++;
            if (strncmp(line, "refused: ", 9) == 0 && strstr(line, "no such table") != NULL)
                refused++;
            else
                test_fail(__FILE__, __LINE__, "node %d: %s", i + 1, line);
            if (eol == NULL) break;
            p = eol;
        }
        th_resp_free(&r);
    }
    CHECK_EQ(sent, 3 * KEY_STATEMENTS);
    CHECK_EQ(refused, 3 * KEY_STATEMENTS);

    /* The key row is as it was, and a token signed by one node verifies on the others. */
    char *after = key_row(n);
    CHECK_STR_EQ(after, before);
    const char *add[] = {"user", "add", "eve@example.com", "long enough pw", NULL};
    CHECK_EQ(ak_cli(n[0].dir, add, NULL), 0);
    char tok[1024], rt[1024], csrf[1024], hdr[1200];
    ak_login(n[1].srv.port, "eve@example.com", "long enough pw", tok, rt, csrf);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    CHECK_EQ(ak_status(n[0].srv.port, "GET", "/api/auth/v1/sessions", hdr, NULL, NULL), 200);
    CHECK_EQ(ak_status(n[2].srv.port, "GET", "/api/auth/v1/sessions", hdr, NULL, NULL), 200);
    test_report(
        "cluster signing key: %d/%d guest statements naming _cluster_signing_key refused on "
        "the schema mirror (no such table) through 3 nodes, slowest request %.1f ms; key "
        "row unchanged",
        refused, sent, slowest);
    free(before);
    free(after);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* Waits until every thread of s's process is stopped (SIGSTOP takes effect asynchronously: a
 * busy machine may let a thread run on for milliseconds). */
static void wait_stopped(const th_server *s)
{
    char dir[64], path[600];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)s->pid);
    for (int i = 0; i < 500; i++) {
        DIR *d = opendir(dir);
        CHECK(d != NULL);
        bool all = true;
        struct dirent *e;
        while ((e = readdir(d)) != NULL && all) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
            char *st = th_read_file(path, NULL);
            const char *p = st ? strrchr(st, ')') : NULL;
            all = p == NULL || p[2] == 'T' || p[2] == 't';
            free(st);
        }
        closedir(d);
        if (all) return;
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    test_fail(__FILE__, __LINE__, "process %d did not stop", (int)s->pid);
}

/* A sign-in request while the cluster has no leader (the leader and a second member stopped with
 * SIGSTOP): its statement waits for a leader on the worker's thread, then the request answers 503
 * with a JSON error and Retry-After, never 500 or a hang; the worker, blocked meanwhile, serves
 * again at once, and once the members are back the same request succeeds. The figures: how long
 * the request waited, and how long a request queued behind it on the same (only) worker waited. */
TEST_TIMEOUT(hostile_cluster_auth_without_a_leader, 600)
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        ak_depot(i == 1 ? "n1" : i == 2 ? "n2" : "n3", NULL, dir, sizeof dir);
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
    const char *add[] = {"user", "add", "mallory@example.com", "long enough pw", NULL};
    CHECK_EQ(ak_cli(n[0].dir, add, NULL), 0);
    int li = cu_leader(n, 3), other = (li + 1) % 3, f = (li + 2) % 3;
    char tok[1024], rt[1024], csrf[1024], body[1200];
    ak_login(n[f].srv.port, "mallory@example.com", "long enough pw", tok, rt, csrf);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);

    th_server_signal(&n[li].srv, SIGSTOP);
    th_server_signal(&n[other].srv, SIGSTOP);
    wait_stopped(&n[li].srv);
    wait_stopped(&n[other].srv);
    /* the refresh, and behind it on the same worker a health check */
    th_conn c;
    CHECK_EQ(th_conn_open(&c, n[f].srv.port), 0);
    char raw[1600];
    snprintf(raw, sizeof raw,
             "POST /api/auth/v1/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    uint64_t t0 = tr_now_ns();
    CHECK_EQ(th_conn_send_str(&c, raw), 0);
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
    uint64_t t1 = tr_now_ns();
    th_resp h = cu_http(n[f].srv.port, "GET", "/api/healthcheck", "");
    double queued = (double)(tr_now_ns() - t1) / 1e6;
    CHECK_EQ(h.status, 200);
    th_resp_free(&h);
    th_resp r = {0};
    CHECK_EQ(th_conn_read(&c, &r, false, 60000), 0);
    double waited = (double)(tr_now_ns() - t0) / 1e6;
    th_conn_close(&c);
    if (r.status != 503)
        test_fail(__FILE__, __LINE__, "leader %d, stopped %d, through %d: %d after %.0f ms: %s", li,
                  other, f, r.status, waited, r.body);
    CHECK(strstr(r.body, "{\"error\":\"the cluster's database is not reachable now") != NULL);
    char v[16];
    CHECK(th_resp_header(&r, "retry-after", v, sizeof v) != NULL);
    th_resp_free(&r);
    /* the leader wait (3 s) or a held connection's call deadline (7 s), with headroom */
    CHECK(waited >= 2900);
    CHECK(waited < 30000);
    /* the worker serves again at once */
    t1 = tr_now_ns();
    h = cu_http(n[f].srv.port, "GET", "/api/healthcheck", "");
    double after = (double)(tr_now_ns() - t1) / 1e6;
    CHECK_EQ(h.status, 200);
    th_resp_free(&h);
    CHECK(after < 2000);

    th_server_signal(&n[li].srv, SIGCONT);
    th_server_signal(&n[other].srv, SIGCONT);
    int st = 0;
    for (int i = 0; i < 60 && st != 200; i++) {
        th_resp q;
        st = ak_req(n[f].srv.port, "POST", "/api/auth/v1/refresh", NULL, J, body, &q);
        th_resp_free(&q);
        if (st != 200) nanosleep(&pause, NULL);
    }
    CHECK_EQ(st, 200);
    test_report("no leader: a refresh through the last member answered 503 after %.0f ms; a "
                "health check queued behind it on the same worker waited %.0f ms, one after it "
                "%.1f ms",
                waited, queued, after);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
