/* End-to-end tests for the Record APIs in cluster mode (records/, cluster/appdb.h): three real
 * `trail run` nodes on loopback. A record created through a follower is read, listed and filtered
 * at once through the other follower and the leader; updates, deletes, a duplicate key (409), a
 * CHECK constraint (400) and the access rules (403, 404) answer as on one node; a batch through a
 * follower is all or nothing on every node; record hooks work through a follower, their own SQL
 * inside the write's transaction on the leader (undone with a write they fail). With the leader
 * stopped and no majority, a record request fails with 503 JSON within the stated bound; with the
 * leader killed, requests answer 200 or 503 until the election, then 200 again. */
#include "test.h"
#include "base/base.h"
#include "cluster/appdb.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char schema_sql[] =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,\n"
    "  qty INTEGER NOT NULL CHECK (qty >= 0), secret INTEGER NOT NULL DEFAULT 0) STRICT;\n"
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, stamped INTEGER,\n"
    "  keep INTEGER NOT NULL DEFAULT 0) STRICT;\n"
    "CREATE TABLE crashy (id INTEGER PRIMARY KEY, mode TEXT) STRICT;\n"
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT) STRICT;\n"
    "INSERT INTO notes (text) VALUES ('seeded');\n";

static const char config[] =
    "server { access_log: false enable_record_transactions: true }\n"
    "record_apis { name: \"items\" table_name: \"items\"\n"
    "  acl_world: [CREATE, READ, UPDATE, DELETE]\n"
    "  create_access_rule: \"_REQ_.name <> 'refused'\"\n"
    "  read_access_rule: \"_ROW_.secret = 0\" }\n"
    "record_apis { name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [CREATE, READ, UPDATE, DELETE] }\n"
    "record_apis { name: \"audit\" table_name: \"audit\" acl_world: [READ] }\n"
    "record_apis { name: \"crashy\" table_name: \"crashy\" acl_world: [CREATE, READ] }\n";

static double ms_since(uint64_t t0)
{
    return (double)(tr_now_ns() - t0) / 1e6;
}

/* Three node directories with the records_hooks component, the schema and the config. */
static void app_dirs(void)
{
    char dir[600], path[700];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir_with(dir, "records_hooks", "0001_records.sql", schema_sql);
        snprintf(path, sizeof path, "%s/config.textproto", dir);
        CHECK_EQ(th_write_file(path, config, sizeof config - 1), 0);
    }
}

static void expect_body(int port, const char *method, const char *path, const char *body,
                        int status, const char *want)
{
    th_resp r;
    rt_expect(port, method, path, body, NULL, status, &r);
    if (strstr(r.body, want) == NULL)
        fprintf(stderr, "%s %s -> %s (wanted \"%s\")\n", method, path, r.body, want);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
}

TEST_TIMEOUT(e2e_cluster_records_through_any_node, 900)
{
    app_dirs();
    cu_node n[3];
    cu_cluster_start(n, NULL);
    int li = cu_leader(n, 3);
    int f1 = (li + 1) % 3, f2 = (li + 2) % 3;
    int pl = n[li].srv.port, p1 = n[f1].srv.port, p2 = n[f2].srv.port;

    /* Create through a follower; the record is there at once through every node. */
    expect_body(p1, "POST", "/api/records/v1/items", "{\"name\":\"a\",\"qty\":1}", 200,
                "{\"ids\":[\"1\"]}");
    const char one[] = "{\"id\":1,\"name\":\"a\",\"qty\":1,\"secret\":0}";
    expect_body(p2, "GET", "/api/records/v1/items/1", NULL, 200, one);
    expect_body(pl, "GET", "/api/records/v1/items/1", NULL, 200, one);
    /* several records in one request: all or nothing, as on one node */
    expect_body(p2, "POST", "/api/records/v1/items",
                "[{\"name\":\"b\",\"qty\":2},{\"name\":\"c\",\"qty\":3}]", 200,
                "{\"ids\":[\"2\",\"3\"]}");
    expect_body(p1, "POST", "/api/records/v1/items",
                "[{\"name\":\"d\",\"qty\":4},{\"name\":\"b\",\"qty\":5}]", 409,
                "UNIQUE constraint failed: items.name");
    expect_body(pl, "GET", "/api/records/v1/items?count=true&order=id", NULL, 200,
                "\"total_count\":3,");
    expect_body(p1, "GET", "/api/records/v1/items?filter[qty][$gte]=2&order=-qty", NULL, 200,
                "{\"records\":[{\"id\":3,\"name\":\"c\",\"qty\":3,\"secret\":0},"
                "{\"id\":2,\"name\":\"b\",\"qty\":2,\"secret\":0}]");
    expect_body(p2, "GET", "/api/records/v1/items?filter[name][$like]=a%25", NULL, 200,
                "{\"records\":[{\"id\":1,\"name\":\"a\",\"qty\":1,\"secret\":0}]");
    /* a list's cursor from one node pages on through another (the nodes' cursor key is derived
     * from the cluster's one signing key) */
    {
        th_resp r;
        rt_expect(p1, "GET", "/api/records/v1/items?limit=1&order=id", NULL, NULL, 200, &r);
        const char *cur = strstr(r.body, "\"cursor\":\"");
        CHECK(cur != NULL);
        cur += 10;
        char path[300];
        snprintf(path, sizeof path, "/api/records/v1/items?limit=1&order=id&cursor=%.*s",
                 (int)strcspn(cur, "\""), cur);
        th_resp_free(&r);
        expect_body(p2, "GET", path, NULL, 200, "{\"records\":[{\"id\":2,");
        expect_body(pl, "GET", path, NULL, 200, "{\"records\":[{\"id\":2,");
    }

    /* What a record request costs through a follower and through the leader (the ASan build):
     * a read is one round trip to the leader, a create one write committed through Raft. */
    double per[3];
    const int reps = 20;
    for (int k = 0; k < 3; k++) {
        uint64_t t0 = tr_now_ns();
        for (int i = 0; i < reps; i++) {
            char body[64];
            snprintf(body, sizeof body, "{\"name\":\"timed %d\",\"qty\":0}", i);
            if (k == 2)
                rt_expect(p1, "POST", "/api/records/v1/items", body, NULL, 200, NULL);
            else
                rt_expect(k == 0 ? p1 : pl, "GET", "/api/records/v1/items/1", NULL, NULL, 200,
                          NULL);
        }
        per[k] = ms_since(t0) / reps;
    }
    test_report("GET by id: %.2f ms through a follower, %.2f ms through the leader; POST through a "
                "follower: %.2f ms (means of %d, each on a new connection)",
                per[0], per[1], per[2], reps);
    expect_body(p2, "DELETE", "/api/records/v1/items/4", NULL, 200, "");
    for (int i = 5; i < 4 + reps; i++) {
        char path[64];
        snprintf(path, sizeof path, "/api/records/v1/items/%d", i);
        rt_expect(pl, "DELETE", path, NULL, NULL, 200, NULL);
    }

    /* Update and delete through the followers. */
    expect_body(p1, "PATCH", "/api/records/v1/items/2", "{\"qty\":7}", 200, "");
    expect_body(pl, "GET", "/api/records/v1/items/2", NULL, 200, "\"qty\":7");
    expect_body(p2, "DELETE", "/api/records/v1/items/3", NULL, 200, "");
    expect_body(p1, "GET", "/api/records/v1/items/3", NULL, 404, "record not found");
    expect_body(pl, "PATCH", "/api/records/v1/items/3", "{\"qty\":1}", 404, "record not found");

    /* Constraints answer as on one node: a duplicate key 409, a CHECK 400. */
    expect_body(p2, "POST", "/api/records/v1/items", "{\"name\":\"a\",\"qty\":1}", 409,
                "{\"error\":\"UNIQUE constraint failed: items.name\"}");
    expect_body(p1, "POST", "/api/records/v1/items", "{\"name\":\"neg\",\"qty\":-1}", 400,
                "CHECK constraint failed");
    expect_body(p1, "PATCH", "/api/records/v1/items/1", "{\"qty\":-5}", 400,
                "CHECK constraint failed");
    /* and so do the access rules and the ACL */
    expect_body(p2, "POST", "/api/records/v1/items", "{\"name\":\"refused\",\"qty\":1}", 403,
                "forbidden by create_access_rule");
    expect_body(p1, "POST", "/api/records/v1/items", "{\"name\":\"hidden\",\"qty\":1,\"secret\":1}",
                200, "{\"ids\":[\"3\"]}");
    expect_body(p2, "GET", "/api/records/v1/items/3", NULL, 404, "record not found");
    expect_body(pl, "GET", "/api/records/v1/items?count=true", NULL, 200, "\"total_count\":2,");
    expect_body(p1, "POST", "/api/records/v1/audit", "{\"what\":\"x\"}", 403, "forbidden");
    expect_body(p2, "GET", "/api/records/v1/items?filter[nope]=1", NULL, 400, "nope");

    /* A batch in a transaction through a follower: one failing operation, none lands on any node */
    expect_body(p1, "POST", "/api/transaction/v1/execute",
                "{\"transaction\":true,\"operations\":["
                "{\"Create\":{\"api_name\":\"items\",\"value\":{\"name\":\"x\",\"qty\":1}}},"
                "{\"Update\":{\"api_name\":\"items\",\"record_id\":\"1\",\"value\":{\"qty\":9}}},"
                "{\"Create\":{\"api_name\":\"items\",\"value\":{\"name\":\"a\",\"qty\":1}}}]}",
                409, "operation 2: UNIQUE constraint failed: items.name");
    for (int i = 0; i < 3; i++) {
        expect_body(n[i].srv.port, "GET", "/api/records/v1/items?filter[name]=x", NULL, 200,
                    "{\"records\":[]}");
        expect_body(n[i].srv.port, "GET", "/api/records/v1/items/1", NULL, 200, "\"qty\":1,");
    }
    expect_body(p2, "POST", "/api/transaction/v1/execute",
                "{\"transaction\":true,\"operations\":["
                "{\"Create\":{\"api_name\":\"items\",\"value\":{\"name\":\"x\",\"qty\":1}}},"
                "{\"Update\":{\"api_name\":\"items\",\"record_id\":\"1\",\"value\":{\"qty\":9}}},"
                "{\"Delete\":{\"api_name\":\"items\",\"record_id\":\"2\"}}]}",
                200, "{\"ids\":[\"4\"]}");
    for (int i = 0; i < 3; i++) {
        expect_body(n[i].srv.port, "GET", "/api/records/v1/items?filter[name]=x", NULL, 200,
                    "{\"id\":4,\"name\":\"x\"");
        expect_body(n[i].srv.port, "GET", "/api/records/v1/items/1", NULL, 200, "\"qty\":9,");
        expect_body(n[i].srv.port, "GET", "/api/records/v1/items/2", NULL, 404, "not found");
    }

    /* Record hooks: beforeUpdate changes a field (no SQL of its own) through a follower. */
    expect_body(p2, "PATCH", "/api/records/v1/notes/1", "{\"text\":\"changed\"}", 200, "");
    expect_body(p1, "GET", "/api/records/v1/notes/1", NULL, 200,
                "{\"id\":1,\"text\":\"changed\",\"stamped\":2,\"keep\":0}");
    /* Hooks' own SQL runs on the leader inside the write's transaction, at once: beforeCreate
     * audits and changes the record, the after hooks audit once it committed (afterUpdate above
     * too), beforeDelete reads the row it is about to delete. */
    expect_body(p1, "POST", "/api/records/v1/notes", "{\"text\":\"hello\"}", 200, "{\"ids\":[\"2\"]}");
    expect_body(p2, "GET", "/api/records/v1/notes/2", NULL, 200,
                "{\"id\":2,\"text\":\"HELLO\",\"stamped\":1,");
    expect_body(p2, "DELETE", "/api/records/v1/notes/2", NULL, 200, "");
    /* a before hook's statements are undone with the write it fails; one that would end the
     * write's transaction is refused */
    expect_body(p1, "POST", "/api/records/v1/crashy", "{\"mode\":\"throw\"}", 500, "boom");
    expect_body(p2, "POST", "/api/records/v1/crashy", "{\"mode\":\"commit\"}", 500,
                "cannot end it");
    expect_body(pl, "GET", "/api/records/v1/crashy?count=true", NULL, 200, "\"total_count\":0,");
    expect_body(pl, "GET", "/api/records/v1/audit?count=true&order=id", NULL, 200,
                "{\"total_count\":4,\"records\":[{\"id\":1,\"what\":\"after update 1\"},"
                "{\"id\":2,\"what\":\"before create hello by anonymous\"},"
                "{\"id\":3,\"what\":\"after create 2 HELLO\"},"
                "{\"id\":4,\"what\":\"after delete 2\"}],");

    /* No majority (the leader and a follower stopped): a record request through the last node
     * fails with 503 JSON, each within the connection's call bound and a leader wait. The leader
     * is asked again (it may have changed since: a slow machine can miss a heartbeat), and may
     * still change before the signals: a node that led until then answers reads (200) until it
     * sees it lost the majority, so a read is asked again until it fails. */
    li = cu_leader(n, 3);
    f1 = (li + 1) % 3;
    f2 = (li + 2) % 3;
    p2 = n[f2].srv.port;
    th_server_signal(&n[li].srv, SIGSTOP);
    th_server_signal(&n[f1].srv, SIGSTOP);
    double bound = ADB_STMT_LIMIT_MS + 2000 + ADB_LEADER_WAIT_MS;
    double worst = 0;
    uint64_t stopped = tr_now_ns();
    int served = 0;
    for (int k = 0; k < 2; k++) {
        uint64_t t0 = tr_now_ns();
        th_resp r = k == 0 ? rt_req(p2, "GET", "/api/records/v1/items/1", NULL, NULL)
                           : rt_req(p2, "POST", "/api/records/v1/items",
                                    "{\"name\":\"y\",\"qty\":1}", NULL);
        double ms = ms_since(t0);
        if (ms > worst) worst = ms;
        CHECK(ms < bound + 2000);
        if (k == 0 && r.status == 200 && ms_since(stopped) < 30000) {
            served++;
            th_resp_free(&r);
            k--;
            nanosleep(&(struct timespec){0, 200 * 1000000}, NULL);
            continue;
        }
        if (r.status != 503) fprintf(stderr, "no majority: %d %s\n", r.status, r.body);
        CHECK_EQ(r.status, 503);
        CHECK_CONTAINS(r.body, "{\"error\":\"the cluster ");
        th_resp_free(&r);
    }
    test_report("with no majority, record requests failed with 503 after at most %.0f ms (bound "
                "%.0f ms; %d reads served before by a node that still led)",
                worst, bound, served);
    th_server_signal(&n[li].srv, SIGCONT);
    th_server_signal(&n[f1].srv, SIGCONT);
    free(cu_wait_status(n[f2].dir, 3, 90000));

    /* The leader killed: through a follower every request answers 200 or 503 JSON, each within
     * the bound, until the election; then the record is written once. */
    li = cu_leader(n, 3);
    int f = (li + 1) % 3;
    expect_body(n[f].srv.port, "GET", "/api/records/v1/items/1", NULL, 200, "\"qty\":9,");
    th_server_signal(&n[li].srv, SIGKILL);
    th_server_wait(&n[li].srv, 20000);
    uint64_t killed = tr_now_ns();
    int unavailable = 0;
    double slowest = 0;
    for (int attempt = 0;; attempt++) {
        CHECK(attempt < 60);
        uint64_t t0 = tr_now_ns();
        th_resp r = rt_req(n[f].srv.port, "POST", "/api/records/v1/items",
                           "{\"name\":\"after the kill\",\"qty\":1}", NULL);
        double ms = ms_since(t0);
        if (ms > slowest) slowest = ms;
        CHECK(ms < bound + 2000);
        if (r.status == 200) {
            th_resp_free(&r);
            break;
        }
        /* 503; or 409 when an earlier attempt's outcome was unknown and it did apply */
        if (r.status == 409) {
            CHECK_CONTAINS(r.body, "UNIQUE");
            th_resp_free(&r);
            break;
        }
        if (r.status != 503) fprintf(stderr, "after the kill: %d %s\n", r.status, r.body);
        CHECK_EQ(r.status, 503);
        CHECK_CONTAINS(r.body, "{\"error\":\"");
        th_resp_free(&r);
        unavailable++;
        nanosleep(&(struct timespec){0, 200 * 1000000}, NULL);
    }
    double writable = ms_since(killed);
    test_report("leader killed: %d record requests answered 503 (the slowest in %.0f ms), "
                "writable again through a follower after %.0f ms",
                unavailable, slowest, writable);
    for (int i = 0; i < 3; i++) {
        if (i == li) continue;
        th_resp r = rt_req(n[i].srv.port, "GET",
                           "/api/records/v1/items?filter[name]=after%20the%20kill", NULL, NULL);
        if (r.status != 200) {
            char *log = th_server_stderr(&n[i].srv);
            fprintf(stderr, "node %d (leader %d, follower %d): %d %s\n%s\n", i, li, f, r.status,
                    r.body, log ? log : "");
            free(log);
        }
        CHECK_EQ(r.status, 200);
        CHECK_CONTAINS(r.body, "\"name\":\"after the kill\"");
        th_resp_free(&r);
    }
    cu_node_restart(&n[li]);
    free(cu_wait_status(n[li].dir, 3, 90000));
    /* (the POST made without a majority may have been applied: its outcome was unknown) */
    expect_body(n[li].srv.port, "GET", "/api/records/v1/items?count=true&filter[name][$ne]=y", NULL,
                200, "\"total_count\":3,");
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
