/* Hostile case for the Record APIs in cluster mode (records/, cluster/appdb.h): many clients
 * create records at once through all three nodes, so that their writes meet each other's write
 * lock on the leader. Every request must be answered 200 or 503 with a JSON error (a lock held
 * too long: retry), never 500 or a dropped connection; the records acknowledged must be exactly
 * the rows on every node afterwards (none lost, none twice); each node still serves. The
 * figures: requests per second, the slowest answer, and the share answered 503. */
#include "test.h"
#include "base/base.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS_PER_NODE 8
#define ROUNDS           12

static const char schema_sql[] = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
                                 "UNIQUE, node INTEGER) STRICT;\n";
static const char config[] = "server { access_log: false }\n"
                             "record_apis { name: \"items\" table_name: \"items\"\n"
                             "  acl_world: [CREATE, READ] }\n";

/* total_count of the items on node port. */
static long count_on(int port)
{
    th_resp r = cu_http(port, "GET", "/api/records/v1/items?count=true&limit=1", "");
    CHECK_EQ(r.status, 200);
    const char *p = strstr(r.body, "\"total_count\":");
    CHECK(p != NULL);
    long n = strtol(p + 14, NULL, 10);
    th_resp_free(&r);
    return n;
}

TEST_TIMEOUT(hostile_cluster_records_concurrent_writes_through_every_node, 900)
{
    char dir[600], path[700];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir_with(dir, "cluster_sql", "0001_items.sql", schema_sql);
        snprintf(path, sizeof path, "%s/config.textproto", dir);
        CHECK_EQ(th_write_file(path, config, sizeof config - 1), 0);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);

    enum { K = 3 * CLIENTS_PER_NODE };
    long ok = 0, busy = 0;
    double slowest = 0;
    uint64_t t0 = tr_now_ns();
    for (int round = 0; round < ROUNDS; round++) {
        th_conn c[K];
        uint64_t sent[K];
        /* every client's request out before any answer is read */
        for (int k = 0; k < K; k++) {
            int node = k % 3;
            char body[128], raw[512];
            snprintf(body, sizeof body, "{\"name\":\"r%d-c%d\",\"node\":%d}", round, k, node);
            snprintf(raw, sizeof raw,
                     "POST /api/records/v1/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
            CHECK_EQ(th_conn_open(&c[k], n[node].srv.port), 0);
            CHECK_EQ(th_conn_send_str(&c[k], raw), 0);
            sent[k] = tr_now_ns();
        }
        for (int k = 0; k < K; k++) {
            th_resp r;
            CHECK_EQ(th_conn_read(&c[k], &r, false, 60000), 0);
            double ms = (double)(tr_now_ns() - sent[k]) / 1e6;
            if (ms > slowest) slowest = ms;
            if (r.status != 200 && r.status != 503)
                fprintf(stderr, "round %d client %d: %d %s\n", round, k, r.status, r.body);
            CHECK(r.status == 200 || r.status == 503);
            CHECK_CONTAINS(r.body, r.status == 200 ? "{\"ids\":[\"" : "{\"error\":\"");
            if (r.status == 200)
                ok++;
            else
                busy++;
            th_resp_free(&r);
            th_conn_close(&c[k]);
        }
    }
    double secs = (double)(tr_now_ns() - t0) / 1e9;
    /* acknowledged = present, on every node (reads go to the leader: asked through each) */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(count_on(n[i].srv.port), ok);
    test_report("%d clients over 3 nodes, %d rounds: %ld created, %ld answered 503 (%.1f%%), "
                "%.0f requests/s, slowest answer %.0f ms",
                K, ROUNDS, ok, busy, 100.0 * (double)busy / (double)(ok + busy),
                (double)(ok + busy) / secs, slowest);
    CHECK(ok > 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
