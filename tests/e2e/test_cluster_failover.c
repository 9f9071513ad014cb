/* End-to-end failover test for cluster mode (issue's acceptance: no acknowledged write lost, none
 * applied twice). Three real `trail run` nodes; writer threads POST rows with unique keys through
 * a guest endpoint on every node's HTTP port; the leader is killed with SIGKILL mid-run and
 * started again some seconds later. Afterwards every node, made leader in turn and read through
 * its own connection, holds every acknowledged key exactly once, no key twice, and nothing that
 * was never sent.
 *
 * DESIGN: the writer threads touch only their own struct and a few atomics; nothing in them calls
 * CHECK (the test framework is not thread-safe). Each request's outcome is one of three: ACK (200
 * "ok": the leader committed it through Raft), UNKNOWN (an error answer, a reset connection or a
 * timeout: the row may or may not have landed), UNSENT (the connection was refused: nothing was
 * sent, so the row must not exist); an answer "database is locked" is unknown to the client too,
 * and the test checks that none of those landed. The main thread checks the rows against these. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* OUT_LOCKED: an answer "database is locked" (dqlite's SQLITE_BUSY), an unknown outcome to the
 * client, which the test also checks never landed: that is what makes asking again safe. */
enum { OUT_ACK = 1, OUT_UNKNOWN = 2, OUT_UNSENT = 3, OUT_LOCKED = 4 };

enum {
    WRITERS = 6,           /* two per node */
    RUN_S = 20,            /* the write load's least duration */
    KILL_AT_S = 7,         /* the leader is killed this long after the writers start */
    DOWN_S = 5,            /* and started again this long after */
    AFTER_RESTART_S = 8,   /* the load goes on at least this long after the restart */
    MAX_KEYS = 200000,     /* per writer */
    KEY_BASE = 1000000,    /* key = (writer + 1) * KEY_BASE + seq */
    REQ_TIMEOUT_MS = 15000 /* per request: an election plus the guest's wait for a leader */
};

typedef struct writer {
    pthread_t th;
    int idx, node;
    uint32_t n;             /* keys used: outcome[0..n) */
    unsigned char *outcome; /* OUT_* per seq */
    uint64_t acked, unknown, unsent, timeouts, resets, errors;
    uint64_t acked_before_kill;
    uint64_t first_ack_after_kill_ns; /* completion time of the first ACK sent after the kill */
    uint64_t acked_after_restart;     /* ACKs sent after the killed node's restart */
    uint64_t locked_before_kill;      /* "database is locked" answers before the kill */
    struct {
        char text[120]; /* status and body of an error answer */
        uint64_t count;
    } kinds[4]; /* the first distinct error answers */
} writer;

/* The nodes' HTTP ports; 0 while a node is down (its writers wait). */
static _Atomic int ports[3];
static atomic_bool stop_writers;
static _Atomic uint64_t kill_ns, restart_ns;

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    while (!atomic_load(&stop_writers) && w->n < MAX_KEYS) {
        int port = atomic_load(&ports[w->node]);
        if (port == 0) {
            sleep_ms(50);
            continue;
        }
        uint32_t seq = w->n++;
        long long key = (long long)(w->idx + 1) * KEY_BASE + seq;
        uint64_t t0 = tr_now_ns();
        th_conn c;
        if (th_conn_open(&c, port) < 0) {
            w->outcome[seq] = OUT_UNSENT;
            w->unsent++;
            sleep_ms(50);
            continue;
        }
        char raw[200];
        snprintf(raw, sizeof raw,
                 "POST /w/%lld HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                 "0\r\n\r\n",
                 key);
        th_resp r = {0};
        int rc = th_conn_send_str(&c, raw);
        if (rc == 0) rc = th_conn_read(&c, &r, false, REQ_TIMEOUT_MS);
        th_conn_close(&c);
        uint64_t t1 = tr_now_ns();
        if (rc == 0 && r.status == 200 && r.body && strcmp(r.body, "ok") == 0) {
            w->outcome[seq] = OUT_ACK;
            w->acked++;
            uint64_t k = atomic_load(&kill_ns), back = atomic_load(&restart_ns);
            if (k == 0 || t1 < k) w->acked_before_kill++;
            if (k != 0 && t0 >= k && w->first_ack_after_kill_ns == 0)
                w->first_ack_after_kill_ns = t1;
            if (back != 0 && t0 >= back) w->acked_after_restart++;
        } else {
            w->outcome[seq] = rc == 0 && r.body && strstr(r.body, "database is locked")
                                  ? OUT_LOCKED
                                  : OUT_UNKNOWN;
            w->unknown++;
            if (rc == -2)
                w->timeouts++;
            else if (rc < 0)
                w->resets++;
            else {
                w->errors++;
                if (atomic_load(&kill_ns) == 0 && r.body && strstr(r.body, "database is locked"))
                    w->locked_before_kill++;
                char text[120];
                snprintf(text, sizeof text, "%d %s", r.status, r.body ? r.body : "");
                for (size_t k = 0; k < TR_ARRAY_LEN(w->kinds); k++) {
                    if (w->kinds[k].count == 0) snprintf(w->kinds[k].text, sizeof text, "%s", text);
                    if (strcmp(w->kinds[k].text, text) == 0) {
                        w->kinds[k].count++;
                        break;
                    }
                }
            }
            /* a node without a leader answers at once: no busy loop meanwhile */
            sleep_ms(20);
        }
        th_resp_free(&r);
    }
    return NULL;
}

/* The migration and the component in node directory dir; wasm: the component built once. */
static void app_dir(const char *dir, const char *wasm)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/wasm' '%s/migrations' && cp '%s' '%s/wasm/'", dir, dir,
             wasm, dir);
    CHECK_EQ(fx_sh(cmd), 0);
    static const char sql[] =
        "CREATE TABLE w (id INTEGER PRIMARY KEY, key INTEGER NOT NULL);\n"; /* key not UNIQUE */
    snprintf(cmd, sizeof cmd, "%s/migrations/0001_w.sql", dir);
    CHECK_EQ(th_write_file(cmd, sql, sizeof sql - 1), 0);
}

/* The rows of w as node i holds them: its connection, while it leads, reads its own replica. */
static void read_rows(const cu_node *n, int i, dq_rows *rows)
{
    const char *only[] = {n[i].addr};
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(only, 1, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "node %d: %s", i + 1, err.msg);
    uint32_t db;
    CHECK_EQ(dq_open(c, "main.db", &db, &err), 0);
    *rows = (dq_rows)DQ_ROWS_INIT;
    if (dq_query_sql(c, db, "SELECT key, count(*) FROM w GROUP BY key ORDER BY key", NULL, 0, rows,
                     &err) < 0)
        test_fail(__FILE__, __LINE__, "node %d: %s", i + 1, err.msg);
    dq_client_close(c);
}

static int64_t count_rows(const cu_node *n)
{
    const char *all[] = {n[0].addr, n[1].addr, n[2].addr};
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(all, 3, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    dq_rows rows = DQ_ROWS_INIT;
    CHECK_EQ(dq_open(c, "main.db", &db, &err), 0);
    CHECK_EQ(dq_query_sql(c, db, "SELECT count(*) FROM w", NULL, 0, &rows, &err), 0);
    int64_t v = rows.vals[0].i;
    dq_rows_free(&rows);
    dq_client_close(c);
    return v;
}

TEST_TIMEOUT(e2e_cluster_failover_under_write_load, 600)
{
    char wasm[700], dir[700];
    snprintf(wasm, sizeof wasm, "%s/cluster_failover.wasm", test_tmpdir());
    fx_build_component("cluster_failover", wasm);
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i + 1);
        app_dir(dir, wasm);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);
    /* Every node's endpoint writes before the load starts (the component is loaded and the
     * worker's client has found the leader). */
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/w/%d", i + 1);
        th_resp r = cu_http(n[i].srv.port, "POST", path, "");
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "ok");
        th_resp_free(&r);
    }

    static writer w[WRITERS];
    for (int i = 0; i < 3; i++)
        atomic_store(&ports[i], n[i].srv.port);
    atomic_store(&stop_writers, false);
    atomic_store(&kill_ns, 0);
    atomic_store(&restart_ns, 0);
    uint64_t start_ns = tr_now_ns();
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.idx = i, .node = i % 3};
        w[i].outcome = tr_calloc(MAX_KEYS, 1);
        CHECK_EQ(pthread_create(&w[i].th, NULL, writer_main, &w[i]), 0);
    }

    sleep_ms(KILL_AT_S * 1000);
    int leader = cu_leader(n, 3);
    atomic_store(&ports[leader], 0);
    uint64_t killed = tr_now_ns();
    atomic_store(&kill_ns, killed);
    th_server_signal(&n[leader].srv, SIGKILL);
    CHECK_EQ(th_server_wait(&n[leader].srv, 20000), 128 + SIGKILL);
    sleep_ms(DOWN_S * 1000);
    cu_node_restart(&n[leader]);
    atomic_store(&restart_ns, tr_now_ns());
    atomic_store(&ports[leader], n[leader].srv.port);
    uint64_t until = start_ns + (uint64_t)RUN_S * 1000000000u;
    uint64_t after = atomic_load(&restart_ns) + (uint64_t)AFTER_RESTART_S * 1000000000u;
    while (tr_now_ns() < until || tr_now_ns() < after)
        sleep_ms(100);
    atomic_store(&stop_writers, true);
    uint64_t stopped = tr_now_ns();
    for (int i = 0; i < WRITERS; i++)
        CHECK_EQ(pthread_join(w[i].th, NULL), 0);

    uint64_t acked = 0, unknown = 0, unsent = 0, before = 0, timeouts = 0, resets = 0, errors = 0;
    uint64_t first_after = 0, acked_restarted = 0, locked = 0;
    for (int i = 0; i < WRITERS; i++) {
        acked += w[i].acked;
        unknown += w[i].unknown;
        unsent += w[i].unsent;
        before += w[i].acked_before_kill;
        timeouts += w[i].timeouts;
        resets += w[i].resets;
        errors += w[i].errors;
        locked += w[i].locked_before_kill;
        if (w[i].first_ack_after_kill_ns &&
            (first_after == 0 || w[i].first_ack_after_kill_ns < first_after))
            first_after = w[i].first_ack_after_kill_ns;
        if (w[i].node == leader) acked_restarted += w[i].acked_after_restart;
    }
    CHECK(before > 0);
    if (first_after == 0) test_fail(__FILE__, __LINE__, "no write acknowledged after the kill");
    /* the restarted node serves writes again */
    CHECK(acked_restarted > 0);

    /* A request that timed out on the client may still run on its node: wait until the row count
     * has stood still for 5 s before reading. */
    free(cu_wait_status(n[leader].dir, 3, 90000));
    int64_t last = -1;
    int still = 0;
    uint64_t q0 = tr_now_ns();
    while (still < 5) {
        int64_t now = count_rows(n);
        still = now == last ? still + 1 : 0;
        last = now;
        if (tr_now_ns() - q0 > 120ull * 1000000000u)
            test_fail(__FILE__, __LINE__, "the row count did not settle");
        sleep_ms(1000);
    }

    /* Each node, made leader, read through its own connection. */
    uint64_t landed = 0;
    dq_rows first = DQ_ROWS_INIT;
    for (int k = 0; k < 3; k++) {
        int i = (leader + 1 + k) % 3; /* the killed node last: it had the longest to catch up */
        cu_make_leader(n, i);
        dq_rows rows;
        read_rows(n, i, &rows);
        CHECK_EQ(rows.ncols, 2);
        uint64_t dups = 0, invented = 0, rows_total = 0, landed_here = 0, acked_seen = 0;
        uint64_t locked_landed = 0;
        for (size_t r = 0; r < rows.nrows; r++) {
            int64_t key = rows.vals[2 * r].i, cnt = rows.vals[2 * r + 1].i;
            rows_total += (uint64_t)cnt;
            if (cnt > 1) dups += (uint64_t)(cnt - 1);
            if (key >= 1 && key <= 3) continue; /* the warm-up writes */
            int64_t wi = key / KEY_BASE - 1, seq = key % KEY_BASE;
            if (wi < 0 || wi >= WRITERS || seq >= w[wi].n) {
                invented++;
                continue;
            }
            int o = w[wi].outcome[seq];
            if (o == OUT_ACK)
                acked_seen++;
            else if (o == OUT_UNKNOWN)
                landed_here++;
            else if (o == OUT_LOCKED) {
                landed_here++;
                locked_landed++;
            }
            else
                invented++;
        }
        if (dups || invented || acked_seen != acked)
            test_fail(__FILE__, __LINE__,
                      "node %d: %" PRIu64 " duplicates, %" PRIu64 " rows never sent, %" PRIu64
                      " of %" PRIu64 " acknowledged keys present",
                      i + 1, dups, invented, acked_seen, acked);
        CHECK_EQ(rows_total, 3 + acked + landed_here);
        CHECK_EQ(locked_landed, 0);
        if (k == 0) {
            landed = landed_here;
            first = rows;
            continue;
        }
        /* the same keys as the first node read */
        CHECK_EQ(rows.nrows, first.nrows);
        for (size_t r = 0; r < rows.nrows; r++)
            CHECK_EQ(rows.vals[2 * r].i, first.vals[2 * r].i);
        dq_rows_free(&rows);
    }
    dq_rows_free(&first);

    double run_s = (double)(stopped - start_ns) / 1e9;
    test_report("%d writers over HTTP (2 per node), %.1f s; leader (node %d) killed at %.1f s, "
                "restarted %d s later; before the kill: %.0f acknowledged writes/s, %.0f "
                "answers/s \"database is locked\"",
                WRITERS, run_s, leader + 1, (double)(killed - start_ns) / 1e9, DOWN_S,
                (double)before / ((double)(killed - start_ns) / 1e9),
                (double)locked / ((double)(killed - start_ns) / 1e9));
    test_report("acknowledged %" PRIu64 ", unknown outcome %" PRIu64 " (%" PRIu64
                " landed; %" PRIu64 " error answers, %" PRIu64 " resets, %" PRIu64
                " timeouts; no \"database is locked\" write landed), refused connections %" PRIu64
                " (none landed); duplicates 0; every node, the restarted one too, holds every "
                "acknowledged key once",
                acked, unknown, landed, errors, resets, timeouts, unsent);
    test_report("writable again %.1f s after the kill (first acknowledged write sent after it); "
                "%" PRIu64 " writes acknowledged through the restarted node",
                (double)(first_after - killed) / 1e9, acked_restarted);
    /* The kinds of error answers, for docs/scaling.md. */
    for (int i = 0; i < WRITERS; i++) {
        for (size_t k = 0; k < TR_ARRAY_LEN(w[i].kinds) && w[i].kinds[k].count; k++) {
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                for (size_t q = 0; q < TR_ARRAY_LEN(w[j].kinds); q++)
                    seen = seen || (w[j].kinds[q].count &&
                                    strcmp(w[j].kinds[q].text, w[i].kinds[k].text) == 0);
            if (seen) continue;
            uint64_t total = 0;
            for (int j = i; j < WRITERS; j++)
                for (size_t q = 0; q < TR_ARRAY_LEN(w[j].kinds); q++)
                    if (strcmp(w[j].kinds[q].text, w[i].kinds[k].text) == 0)
                        total += w[j].kinds[q].count;
            test_report("error answer x%" PRIu64 ": %s", total, w[i].kinds[k].text);
        }
        tr_free(w[i].outcome);
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
