/* Hostile cases for realtime in cluster mode (records/cluster_feed.c), three real nodes on
 * loopback. A burst of BURST rows written in one statement through one node reaches a subscriber
 * on another whole and in order, though the feed reads at most 256 log rows at a time; the node's
 * memory stays bounded (the figure: how long the burst took to arrive, and the node's peak RSS). A
 * row larger than the feed carries is written all the same, and its API's subscribers are told
 * that events were lost, instead of getting a partial row or nothing; the next subscription works.
 * A node cut off for longer than the log keeps changes tells its subscribers that events were
 * lost when it is back. */
#include "test.h"
#include "base/base.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST 5000

static const char items_sql[] =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT, public INTEGER NOT NULL DEFAULT 0,\n"
    "  _note TEXT, score REAL, data BLOB) STRICT;\n";

static const char items_cfg[] = "server { access_log: false }\n"
                                "record_apis { name: \"all_items\" table_name: \"items\"\n"
                                "  acl_world: [READ] enable_subscriptions: true }\n";

/* The peak resident memory of process pid in KiB (VmHWM), 0 when unreadable. */
static long peak_rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    char *s = th_read_file(path, NULL);
    const char *p = s ? strstr(s, "VmHWM:") : NULL;
    long kib = p ? atol(p + 6) : 0;
    free(s);
    return kib;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

TEST_TIMEOUT(hostile_cluster_realtime_burst_and_big_row, 600)
{
    for (int i = 1; i <= 3; i++) {
        char dir[600], path[700];
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir_with(dir, "records_rt_cluster", "0001_items.sql", items_sql);
        snprintf(path, sizeof path, "%s/config.textproto", dir);
        CHECK_EQ(th_write_file(path, items_cfg, sizeof items_cfg - 1), 0);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);
    int port = n[1].srv.port, writer = n[2].srv.port;
    long rss_before = peak_rss_kib(n[1].srv.pid);

    th_conn all;
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/all_items/subscribe/*", NULL, &all), 0);
    char path[64];
    snprintf(path, sizeof path, "/burst/%d", BURST);
    uint64_t t0 = tr_now_ns();
    th_resp r = cu_http(writer, "POST", path, "");
    CHECK_EQ(r.status, 200);
    char want[64];
    snprintf(want, sizeof want, "inserted %d", BURST);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
    double written_ms = (double)(tr_now_ns() - t0) / 1e6;
    snprintf(want, sizeof want, "\"text\":\"burst %d\"", BURST);
    CHECK_EQ(rt_sse_wait(&all, want, 120000), 0);
    double arrived_ms = (double)(tr_now_ns() - t0) / 1e6;
    /* every row once, in commit order: seq N carries row N */
    CHECK_EQ(count_of(all.buf, "data: {\"Insert\""), BURST);
    for (int k = 1; k <= BURST; k += 499) {
        char ev[128];
        snprintf(ev, sizeof ev, "{\"Insert\":{\"id\":%d,\"text\":\"burst %d\",", k, k);
        const char *at = strstr(all.buf, ev);
        CHECK(at != NULL);
        snprintf(ev, sizeof ev, "},\"seq\":%d}\n\n", k);
        CHECK(at && strncmp(strchr(at, '}'), ev, strlen(ev)) == 0);
    }
    long rss_after = peak_rss_kib(n[1].srv.pid);
    test_report("%d rows in one statement through node 3: written in %.0f ms, all on a subscriber "
                "of node 2 after %.0f ms; node 2's peak RSS %ld -> %ld MiB (ASan build)",
                BURST, written_ms, arrived_ms, rss_before / 1024, rss_after / 1024);
    /* the feed reads 256 rows at a time, and the events are a few hundred KiB: well under 64 MiB
     * more than before, though the whole burst was committed at once */
    CHECK(rss_after - rss_before < 64 * 1024);

    /* A row of 300,000 bytes: over the 256 KiB a log row carries. The write succeeds; the
     * subscriber is told that events were lost, and its stream ends. */
    r = cu_http(writer, "POST", "/big/300000", "");
    CHECK_STR_EQ(r.body, "inserted 1");
    th_resp_free(&r);
    CHECK_EQ(rt_sse_wait(&all, "events were lost", 30000), 0);
    CHECK_CONTAINS(all.buf, "{\"Error\":{\"status\":2,\"message\":\"a change was too large for "
                            "the cluster's realtime feed; events were lost\"}");
    CHECK_EQ(rt_sse_wait(&all, "never", 10000), -2);
    CHECK(strstr(all.buf, "xxxxxxxx") == NULL);
    th_conn_close(&all);
    /* a new subscription hears of the next rows, a large one under the bound included */
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/all_items/subscribe/*", NULL, &all), 0);
    r = cu_http(writer, "POST", "/big/200000", "");
    CHECK_STR_EQ(r.body, "inserted 1");
    th_resp_free(&r);
    CHECK_EQ(rt_sse_wait(&all, "\"seq\":1}", 30000), 0);
    char *x = malloc(200001);
    memset(x, 'x', 200000);
    x[200000] = '\0';
    CHECK(strstr(all.buf, x) != NULL);
    free(x);
    th_conn_close(&all);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* A node cut off (SIGSTOP) for longer than the change log keeps changes (shortened to 2 s in the
 * test build by TRAIL_TEST_REALTIME_KEEP_MS): when it is back, its feed finds the log pruned past
 * its position, and its subscribers are told that events were lost instead of missing them
 * silently; a new subscription then hears of the next writes. */
TEST_TIMEOUT(hostile_cluster_realtime_node_cut_off_past_the_log, 400)
{
    setenv("TRAIL_TEST_REALTIME_KEEP_MS", "2000", 1);
    for (int i = 1; i <= 3; i++) {
        char dir[600], path[700];
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir_with(dir, "records_rt_cluster", "0001_items.sql", items_sql);
        snprintf(path, sizeof path, "%s/config.textproto", dir);
        CHECK_EQ(th_write_file(path, items_cfg, sizeof items_cfg - 1), 0);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);
    int li = cu_leader(n, 3), sub = (li + 1) % 3, writer = n[(li + 2) % 3].srv.port;
    th_conn all;
    CHECK_EQ(rt_sse_open(n[sub].srv.port, "/api/records/v1/all_items/subscribe/*", NULL, &all), 0);
    th_resp r = cu_http(writer, "POST", "/items/before/1", "");
    CHECK_STR_EQ(r.body, "inserted 1");
    th_resp_free(&r);
    CHECK_EQ(rt_sse_wait(&all, "\"text\":\"before\"", 30000), 0);

    th_server_signal(&n[sub].srv, SIGSTOP);
    for (int k = 0; k < 3; k++) {
        r = cu_http(writer, "POST", "/items/while-stopped/1", "");
        CHECK_STR_EQ(r.body, "inserted 1");
        th_resp_free(&r);
    }
    /* past the 2 s the log keeps them, and a prune (every 1 s) after that */
    nanosleep(&(struct timespec){6, 0}, NULL);
    uint64_t t0 = tr_now_ns();
    th_server_signal(&n[sub].srv, SIGCONT);
    CHECK_EQ(rt_sse_wait(&all, "events", 30000), 0);
    double told_ms = (double)(tr_now_ns() - t0) / 1e6;
    CHECK_CONTAINS(all.buf, "{\"Error\":{\"status\":2,\"message\":\"the server dropped events for "
                            "this worker's subscribers\"}");
    CHECK(strstr(all.buf, "while-stopped") == NULL);
    CHECK_EQ(rt_sse_wait(&all, "never", 10000), -2);
    th_conn_close(&all);
    test_report(
        "a node cut off for 6 s past a log kept 2 s told its subscriber of the loss %.0f ms "
        "after it was back",
        told_ms);

    CHECK_EQ(rt_sse_open(n[sub].srv.port, "/api/records/v1/all_items/subscribe/*", NULL, &all), 0);
    r = cu_http(writer, "POST", "/items/after/1", "");
    CHECK_STR_EQ(r.body, "inserted 1");
    th_resp_free(&r);
    CHECK_EQ(rt_sse_wait(&all, "\"text\":\"after\"", 30000), 0);
    th_conn_close(&all);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
