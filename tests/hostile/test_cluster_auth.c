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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    test_report("cluster signing key: %d/%d guest statements naming _cluster_signing_key refused on "
                "the schema mirror (no such table) through 3 nodes, slowest request %.1f ms; key "
                "row unchanged",
                refused, sent, slowest);
    free(before);
    free(after);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
