/* End-to-end tests for guests' statements in cluster mode (guest/cluster.c): three real `trail run`
 * nodes on loopback, each with one worker (--runtime-threads 1). While a guest's statement waits
 * on the cluster (its leader stopped with SIGSTOP, then gone), another request on the same worker
 * answers at once; one worker's statements keep their call order; a statement whose answer was
 * lost fails saying its outcome is unknown, and one with no leader to go to fails saying so; a
 * compiled (C) component's statements run on the leader too, through a follower. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A compiled component is compiled to native code when a node first starts with it; the ASan
 * build on a busy machine may take minutes. The test compiles it once on a single trail and gives
 * every node that cache. */
#define COMPILE_START_MS 300000

static double ms_since(uint64_t t0)
{
    return (double)(tr_now_ns() - t0) / 1e6;
}

/* Sends a request on a connection of its own without reading the answer. */
static void send_request(th_conn *c, int port, const char *method, const char *path,
                         const char *body)
{
    CHECK_EQ(th_conn_open(c, port), 0);
    char raw[512];
    snprintf(raw, sizeof raw,
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, strlen(body), body);
    CHECK_EQ(th_conn_send_str(c, raw), 0);
}

TEST_TIMEOUT(e2e_cluster_guest_sql_never_blocks_the_worker, 900)
{
    char dir[600], cmd[4000];
    /* the C component, compiled once */
    snprintf(dir, sizeof dir, "%s/warm", test_tmpdir());
    cu_app_dir(dir);
    snprintf(cmd, sizeof cmd, "%s/wasm/cluster_sql_c.wasm", dir);
    fx_build_component("cluster_sql_c", cmd);
    th_server warm;
    const char *one[] = {"-q", "--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start_within(&warm, dir, one, COMPILE_START_MS), 0);
    th_resp r = cu_http(warm.port, "GET", "/c/notes", "");
    CHECK_STR_EQ(r.body, "columns id,body; 1 from the migration");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&warm), 0);
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir(dir);
        /* a short drain, so that a node stops while its statement is still out (below) */
        snprintf(cmd, sizeof cmd, "%s/config.textproto", dir);
        static const char cfg[] = "server {\n  shutdown_timeout_ms: 1000\n}\n";
        CHECK_EQ(th_write_file(cmd, cfg, sizeof cfg - 1), 0);
        snprintf(cmd, sizeof cmd,
                 "cp '%s/warm/wasm/cluster_sql_c.wasm' '%s/wasm/' && cp -r '%s/warm/cache' '%s/'",
                 test_tmpdir(), dir, test_tmpdir(), dir);
        CHECK_EQ(fx_sh(cmd), 0);
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
    int li = cu_leader(n, 3);
    int f = (li + 1) % 3, other = (li + 2) % 3;

    /* Statements through a follower; one worker's keep their call order. */
    r = cu_http(n[f].srv.port, "POST", "/notes", "through a follower");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    r = cu_http(n[f].srv.port, "POST", "/order", "");
    CHECK_STR_EQ(r.body, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19");
    th_resp_free(&r);
    /* trail's own functions are not a guest's */
    r = cu_http(n[f].srv.port, "GET", "/limit", "");
    CHECK_CONTAINS(r.body, "refused: not authorized");
    CHECK_CONTAINS(r.body, "_trail_statement_limit");
    th_resp_free(&r);

    /* A compiled component's statements, through a follower, on the leader: the row it writes is
     * read on another node, and what the allow-list refuses is refused before it is sent. */
    r = cu_http(n[f].srv.port, "POST", "/c/notes", "from C");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    r = cu_http(n[other].srv.port, "GET", "/c/notes", "");
    CHECK_CONTAINS(r.body, "columns id,body; 1 from the migration; 2 through a follower; 3 ");
    CHECK_CONTAINS(r.body, "; 23 from C");
    th_resp_free(&r);
    r = cu_http(n[f].srv.port, "GET", "/c/refused", "");
    CHECK_CONTAINS(r.body, "refused: not authorized: _user: names that begin with _");
    th_resp_free(&r);

    /* The leader stops answering (SIGSTOP): a statement through the follower waits on the
     * cluster, and meanwhile a request without SQL on the same (only) worker answers at once. */
    th_server_signal(&n[li].srv, SIGSTOP);
    th_conn waiting, waiting_c;
    uint64_t t0 = tr_now_ns();
    send_request(&waiting, n[f].srv.port, "POST", "/notes", "while the leader is stopped");
    send_request(&waiting_c, n[f].srv.port, "POST", "/c/notes", "from C while stopped");
    struct timespec pause = {0, 300 * 1000000};
    nanosleep(&pause, NULL);
    double ping_worst = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t p0 = tr_now_ns();
        r = cu_http(n[f].srv.port, "GET", "/ping", "");
        double ms = ms_since(p0);
        CHECK_STR_EQ(r.body, "pong");
        th_resp_free(&r);
        if (ms > ping_worst) ping_worst = ms;
    }
    double pinged_at = ms_since(t0);
    /* The statements' answers: their connection to the stopped leader times out after they were
     * sent, so their outcome is unknown, and they say so. */
    th_resp a;
    CHECK_EQ(th_conn_read(&waiting, &a, false, 60000), 0);
    double answered_at = ms_since(t0);
    CHECK_EQ(a.status, 200);
    CHECK_CONTAINS(a.body, "refused: the connection to the cluster's leader failed after the "
                           "statement was sent: its outcome is unknown");
    th_resp_free(&a);
    th_conn_close(&waiting);
    /* the C component's statement was queued behind it on the worker's client: it ran on the new
     * leader or failed, either way with an answer */
    CHECK_EQ(th_conn_read(&waiting_c, &a, false, 60000), 0);
    CHECK_EQ(a.status, 200);
    th_resp_free(&a);
    th_conn_close(&waiting_c);
    /* An isolate that dies (its memory limit) while its own statement is out (the leader is still
     * stopped): replaced, the statement's answer dropped when it comes. Done after the waiting
     * requests were answered: they were this isolate's too. */
    r = cu_http(n[f].srv.port, "GET", "/die", "");
    CHECK_EQ(r.status, 500);
    CHECK_CONTAINS(r.body, "memory limit");
    th_resp_free(&r);
    test_report("while a statement waited %.0f ms on the stopped leader, requests without SQL on "
                "the same worker answered within %.1f ms (the last %.0f ms after it was sent)",
                answered_at, ping_worst, pinged_at);
    CHECK(ping_worst < 1000);
    CHECK(answered_at > pinged_at);
    CHECK(answered_at >= 4000); /* the round trip's 5 s deadline */

    /* The two others elect a leader; the follower's next statement finds it. */
    th_server_signal(&n[li].srv, SIGCONT);
    free(cu_wait_status(n[other].dir, 3, 60000));
    r = cu_http(n[f].srv.port, "POST", "/notes", "after the election");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    r = cu_http(n[f].srv.port, "POST", "/c/notes", "from C after the election");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    /* The third node's client is still connected to the stopped node, a follower now when
     * another was elected: its "not leader" (nothing ran) is sent once more to the new leader. */
    r = cu_http(n[other].srv.port, "POST", "/notes", "through a connection to the old leader");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);

    /* No leader at all: the leader killed, a second member stopped. The last one's statement
     * waits for a leader without blocking its worker, then fails saying there is none. */
    li = cu_leader(n, 3);
    int alone = li == f ? other : f, stopped = 3 - li - alone;
    /* the last one's client is connected to this leader (not to a member about to be stopped) */
    r = cu_http(n[alone].srv.port, "POST", "/notes", "before the leader is killed");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    th_server_signal(&n[li].srv, SIGKILL);
    th_server_wait(&n[li].srv, 20000);
    th_server_signal(&n[stopped].srv, SIGSTOP);
    t0 = tr_now_ns();
    send_request(&waiting, n[alone].srv.port, "POST", "/notes", "no leader");
    nanosleep(&pause, NULL);
    uint64_t p0 = tr_now_ns();
    r = cu_http(n[alone].srv.port, "GET", "/ping", "");
    double ping_ms = ms_since(p0);
    CHECK_STR_EQ(r.body, "pong");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&waiting, &a, false, 60000), 0);
    answered_at = ms_since(t0);
    CHECK_CONTAINS(a.body, "refused: no leader of the cluster within 10000 ms");
    CHECK_CONTAINS(a.body, "the statement was not sent");
    th_resp_free(&a);
    th_conn_close(&waiting);
    test_report("with no leader, the statement failed after %.0f ms; a request without SQL on the "
                "same worker meanwhile took %.1f ms",
                answered_at, ping_ms);
    CHECK(ping_ms < 1000);
    CHECK(answered_at >= 9000);

    /* Back: the killed node restarted, the stopped one continued; writable again. */
    th_server_signal(&n[stopped].srv, SIGCONT);
    cu_node_restart(&n[li]);
    free(cu_wait_status(n[alone].dir, 3, 90000));
    r = cu_http(n[alone].srv.port, "POST", "/notes", "writable again");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);

    /* A node stopped (SIGTERM) while its statement is out on a stopped leader: after its 1 s
     * drain it exits, cleanly (the ASan build fails the exit status on a leak), the statement
     * still out. */
    li = cu_leader(n, 3);
    f = (li + 1) % 3;
    r = cu_http(n[f].srv.port, "POST", "/notes", "connected to this leader");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    th_server_signal(&n[li].srv, SIGSTOP);
    send_request(&waiting, n[f].srv.port, "POST", "/notes", "out while stopping");
    nanosleep(&pause, NULL);
    t0 = tr_now_ns();
    CHECK_EQ(th_server_stop(&n[f].srv), 0);
    double stop_ms = ms_since(t0);
    th_conn_close(&waiting);
    test_report("a node with a statement out on a stopped leader stopped in %.0f ms", stop_ms);
    /* the stop cut the call short: the statement's 5 s deadline, counted from its sending
     * (300 ms before the stop), would have ended it at about 4,700 ms */
    CHECK(stop_ms < 4500);
    th_server_signal(&n[li].srv, SIGCONT);
    for (int i = 0; i < 3; i++)
        if (i != f) CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* Reads the answer of a request sent with send_request(). */
static char *read_answer(th_conn *c)
{
    th_resp a;
    CHECK_EQ(th_conn_read(c, &a, false, 60000), 0);
    char *body = strdup(a.body ? a.body : "");
    th_resp_free(&a);
    th_conn_close(c);
    return body;
}

/* Asks every node how many notes are named name ("name 0", "name 1", ...): the same count on
 * each, as a string. */
static void check_count_everywhere(cu_node n[3], const char *name, const char *want)
{
    char path[200];
    snprintf(path, sizeof path, "/count/%s", name);
    for (int i = 0; i < 3; i++) {
        th_resp r = cu_http(n[i].srv.port, "GET", path, "");
        CHECK_STR_EQ(r.body, want);
        th_resp_free(&r);
    }
}

/* Guests' transactions in cluster mode (guest/cluster.c, guest/tx.c): BEGIN IMMEDIATE, the
 * statements and COMMIT on a connection to the leader held by the transaction. One committed
 * through a follower lands on every node; one that throws, or is rolled back, lands nothing;
 * transactions through all three nodes at once all commit (one waits while another holds the
 * leader's write lock); one whose isolate dies, or that is left open past its timeout, is rolled
 * back and frees the write lock. */
TEST_TIMEOUT(e2e_cluster_guest_transactions, 600)
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir(dir);
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
    int li = cu_leader(n, 3), f = (li + 1) % 3, other = (li + 2) % 3;

    /* committed through a follower: its rows on every node; inside, it saw its own rows */
    th_resp r = cu_http(n[f].srv.port, "POST", "/tx/insert/5", "five");
    CHECK_STR_EQ(r.body, "ran: 5 inserted, 5 seen inside");
    th_resp_free(&r);
    check_count_everywhere(n, "five", "5");
    /* a transaction that throws after its inserts is rolled back: nothing lands */
    r = cu_http(n[f].srv.port, "POST", "/tx/throw", "thrown");
    CHECK_STR_EQ(r.body, "refused: changed my mind");
    th_resp_free(&r);
    check_count_everywhere(n, "thrown", "0");
    /* rolled back explicitly; a statement of it may not end it */
    r = cu_http(n[other].srv.port, "POST", "/tx/rollback", "rolled");
    CHECK_CONTAINS(r.body, "refused: in cluster mode a transaction's statement cannot end it");
    th_resp_free(&r);
    check_count_everywhere(n, "rolled", "0");
    /* the synchronous transaction would hold the worker on the network: refused, saying so */
    r = cu_http(n[f].srv.port, "GET", "/tx/sync", "");
    CHECK_CONTAINS(r.body, "refused: new Transaction() (synchronous) is not available in cluster "
                           "mode");
    th_resp_free(&r);
    /* a statement failing inside (a duplicate key) leaves the transaction open, as on one node:
     * its error is SQLite's (a query's too), and the rows around it are committed */
    r = cu_http(n[other].srv.port, "POST", "/tx/dup", "dup");
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "refused: UNIQUE constraint failed: notes.id\n"
                         "refused: UNIQUE constraint failed: notes.id");
    th_resp_free(&r);
    check_count_everywhere(n, "dup", "2");
    /* the same worker's next transaction runs as before */
    r = cu_http(n[f].srv.port, "POST", "/tx/insert/2", "after");
    CHECK_STR_EQ(r.body, "ran: 2 inserted, 2 seen inside");
    th_resp_free(&r);

    /* six transactions at once, two through each node: the leader has one write lock, so all but
     * one wait (BEGIN asked again while it is taken; a worker's second one waits for its first);
     * all commit, none deadlocks, every row lands once */
    th_conn c[6];
    uint64_t t0 = tr_now_ns();
    for (int k = 0; k < 6; k++) {
        char name[32];
        snprintf(name, sizeof name, "conc%d", k);
        send_request(&c[k], n[k % 3].srv.port, "POST", "/tx/insert/10", name);
    }
    for (int k = 0; k < 6; k++) {
        char *body = read_answer(&c[k]);
        CHECK_STR_EQ(body, "ran: 10 inserted, 10 seen inside");
        free(body);
    }
    double conc_ms = ms_since(t0);
    for (int k = 0; k < 6; k++) {
        char name[32];
        snprintf(name, sizeof name, "conc%d", k);
        check_count_everywhere(n, name, "10");
    }
    test_report("six transactions of 10 inserts, two through each node at once, all committed "
                "in %.0f ms",
                conc_ms);

    /* an isolate that dies with its transaction open: rolled back at once, the write lock free
     * for another node's write (which would otherwise wait 5 s and fail) */
    r = cu_http(n[f].srv.port, "POST", "/tx/die", "died 0");
    CHECK_EQ(r.status, 500);
    CHECK_CONTAINS(r.body, "memory limit");
    th_resp_free(&r);
    t0 = tr_now_ns();
    r = cu_http(n[other].srv.port, "POST", "/notes", "after a death");
    double after_death_ms = ms_since(t0);
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    check_count_everywhere(n, "died", "0");

    /* A transaction left open holds the leader's write lock until its timeout (30 s), then is
     * rolled back: meanwhile a read on the same worker answers at once (plain statements do not
     * wait behind a transaction), another node's write waits and fails; after it, a write goes
     * through and the abandoned row is nowhere. */
    uint64_t opened = tr_now_ns();
    r = cu_http(n[f].srv.port, "POST", "/tx/open", "abandoned 0");
    CHECK_STR_EQ(r.body, "left open");
    th_resp_free(&r);
    t0 = tr_now_ns();
    r = cu_http(n[f].srv.port, "GET", "/count/abandoned", "");
    double read_ms = ms_since(t0);
    CHECK_STR_EQ(r.body, "0");
    th_resp_free(&r);
    CHECK(read_ms < 2000);
    r = cu_http(n[other].srv.port, "POST", "/notes", "while the lock is held");
    CHECK_CONTAINS(r.body, "refused: database is locked: other writes held the cluster leader's "
                           "write lock for more than 5000 ms");
    th_resp_free(&r);
    double waited = ms_since(opened);
    if (waited < 32000) {
        uint64_t rest = (uint64_t)(32000 - waited);
        struct timespec ts = {(time_t)(rest / 1000), (long)(rest % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    t0 = tr_now_ns();
    r = cu_http(n[other].srv.port, "POST", "/notes", "after the timeout");
    double after_timeout_ms = ms_since(t0);
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    check_count_everywhere(n, "abandoned", "0");
    test_report("a write through another node took %.0f ms after an isolate died in its "
                "transaction, %.0f ms after an abandoned one timed out; a read beside the open "
                "transaction %.1f ms",
                after_death_ms, after_timeout_ms, read_ms);

    /* The leader changes while a transaction waits between two inserts: dqlite rolled it back
     * with the old leader's connection, so its next statement fails saying so, nothing of it
     * lands, and the worker's next transaction runs on the new leader. */
    li = cu_leader(n, 3);
    int to = (li + 1) % 3, via = (li + 2) % 3;
    th_conn paused;
    send_request(&paused, n[via].srv.port, "POST", "/tx/pause/3000", "paused");
    struct timespec pause = {0, 500 * 1000000};
    nanosleep(&pause, NULL);
    t0 = tr_now_ns();
    cu_make_leader(n, to);
    double transfer_ms = ms_since(t0);
    char *body = read_answer(&paused);
    CHECK_CONTAINS(body, "refused: the transaction has ended: the cluster's leader changed or the "
                         "connection to it broke, and dqlite rolled the transaction back");
    free(body);
    check_count_everywhere(n, "paused", "0");
    r = cu_http(n[via].srv.port, "POST", "/tx/insert/3", "newleader");
    CHECK_STR_EQ(r.body, "ran: 3 inserted, 3 seen inside");
    th_resp_free(&r);
    check_count_everywhere(n, "newleader", "3");
    test_report("a leadership transfer (%.0f ms) during a transaction ended it with an error and "
                "nothing of it landed; the next transaction ran on the new leader",
                transfer_ms);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
