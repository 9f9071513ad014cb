/* Hostile cases for guests' statements in cluster mode (guest/cluster.c, cluster/limit.c): a
 * guest's statement without end (`WITH RECURSIVE` counting to 1e10) sent through a follower must
 * be stopped on the leader, which runs every statement on its one thread, after
 * GUEST_CLUSTER_STMT_LIMIT_MS of wall time; the leader then serves other statements, and the
 * cluster keeps its leader. A write through query() that fails on the leader (stopped by the limit,
 * a duplicate key) is rolled back there and leaves the write lock free. The figure: how long the
 * runaway ran before it was stopped. The same inside a guest's transaction, and isolates that die
 * with one open (the last test). */
#include "test.h"
#include "base/base.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <string.h>

/* guest/guest_internal.h's GUEST_CLUSTER_STMT_LIMIT_MS, as documented in docs/limits.md */
#define STMT_LIMIT_MS 2000

/* Three nodes of the cluster_sql component and the notes migration, one worker each. */
static void start(cu_node n[3])
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir(dir);
    }
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
}

/* A note written through port; how long it took, in ms. */
static double note_through(int port, const char *text)
{
    uint64_t t0 = tr_now_ns();
    th_resp r = cu_http(port, "POST", "/notes", text);
    double ms = (double)(tr_now_ns() - t0) / 1e6;
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    return ms;
}

TEST_TIMEOUT(hostile_cluster_guest_runaway_statement_on_the_leader, 400)
{
    cu_node n[3];
    start(n);
    int li = cu_leader(n, 3), f = (li + 1) % 3;

    double took[3];
    for (int k = 0; k < 3; k++) {
        uint64_t t0 = tr_now_ns();
        th_resp r = cu_http(n[f].srv.port, "GET", "/runaway", "");
        took[k] = (double)(tr_now_ns() - t0) / 1e6;
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "refused: interrupted: the SQL statement ran past its limit of 2000 "
                             "ms on the cluster's leader");
        th_resp_free(&r);
        /* stopped at the limit, not by anything later (the round trip's 5 s deadline, a request's
         * 30 s) */
        CHECK(took[k] >= STMT_LIMIT_MS);
        CHECK(took[k] < 4500);
        /* the leader serves other statements at once, and is still the leader */
        CHECK(note_through(n[f].srv.port, "after a runaway") < 2000);
        CHECK_EQ(cu_leader(n, 3), li);
    }
    th_resp r = cu_http(n[li].srv.port, "GET", "/notes", "");
    CHECK_STR_EQ(r.body, "[[1,\"from the migration\"],[2,\"after a runaway\"],[3,\"after a "
                         "runaway\"],[4,\"after a runaway\"]]");
    th_resp_free(&r);
    /* A write through query() runs inside BEGIN IMMEDIATE ... COMMIT on the leader (libdqlite
     * 1.11 would not replicate it otherwise): one stopped by the limit, or failing on a key, is
     * rolled back there and leaves the leader's write lock free. */
    double write_took = 0;
    for (int k = 0; k < 2; k++) {
        uint64_t t0 = tr_now_ns();
        r = cu_http(n[f].srv.port, "GET", k == 0 ? "/runaway-write" : "/dup-write", "");
        if (k == 0) {
            write_took = (double)(tr_now_ns() - t0) / 1e6;
            CHECK_STR_EQ(r.body, "refused: interrupted: the SQL statement ran past its limit of "
                                 "2000 ms on the cluster's leader");
        } else {
            CHECK_CONTAINS(r.body, "refused: ");
            CHECK_CONTAINS(r.body, "UNIQUE constraint failed");
        }
        th_resp_free(&r);
        CHECK(note_through(n[(f + 1) % 3].srv.port, "after a failed write") < 2000);
    }
    r = cu_http(n[li].srv.port, "GET", "/notes", "");
    CHECK_STR_EQ(r.body, "[[1,\"from the migration\"],[2,\"after a runaway\"],[3,\"after a "
                         "runaway\"],[4,\"after a runaway\"],[5,\"after a failed write\"],[6,"
                         "\"after a failed write\"]]");
    th_resp_free(&r);
    CHECK_EQ(cu_leader(n, 3), li);
    test_report("a write through query() stopped by the limit after %.0f ms and one failing on a "
                "key were rolled back on the leader; the next write through another node went "
                "through at once",
                write_took);
    test_report("a guest's WITH RECURSIVE to 1e10 through a follower was stopped on the leader "
                "after %.0f / %.0f / %.0f ms (limit %d ms); the leader kept its leadership and "
                "took the next write at once",
                took[0], took[1], took[2], STMT_LIMIT_MS);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* A guest's transaction in cluster mode holds the leader's write lock from its BEGIN IMMEDIATE
 * on a connection of its own: a runaway statement inside it must be stopped on the leader after
 * its limit and the whole transaction rolled back there (its earlier insert gone), and isolates
 * that die with their transaction open, one after another, must each have it rolled back at once,
 * so that the next write, through another node, goes through without waiting for the lock. The
 * figures: how long the runaway ran, and the slowest write after a death. */
TEST_TIMEOUT(hostile_cluster_guest_transaction_runaway_and_deaths, 400)
{
    cu_node n[3];
    start(n);
    int li = cu_leader(n, 3), f = (li + 1) % 3, g = (li + 2) % 3;

    double took[2];
    for (int k = 0; k < 2; k++) {
        uint64_t t0 = tr_now_ns();
        th_resp r = cu_http(n[f].srv.port, "POST", "/tx/runaway", "runaway");
        took[k] = (double)(tr_now_ns() - t0) / 1e6;
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "refused: interrupted: the SQL statement ran past its limit of 2000 "
                             "ms on the cluster's leader; the transaction was rolled back");
        th_resp_free(&r);
        CHECK(took[k] >= STMT_LIMIT_MS);
        CHECK(took[k] < 4500);
        /* the lock is free at once for another node's write; the leader is still the leader */
        CHECK(note_through(n[g].srv.port, "after a runaway transaction") < 2000);
        CHECK_EQ(cu_leader(n, 3), li);
    }
    /* the runaway's transaction inserted a row before it: rolled back with it */
    th_resp r = cu_http(n[li].srv.port, "GET", "/count/runaway", "");
    CHECK_STR_EQ(r.body, "0");
    th_resp_free(&r);

    double worst = 0;
    for (int k = 0; k < 5; k++) {
        int via = k % 2 ? f : g, to = k % 2 ? g : f;
        r = cu_http(n[via].srv.port, "POST", "/tx/die", "died 0");
        CHECK_EQ(r.status, 500);
        CHECK_CONTAINS(r.body, "memory limit");
        th_resp_free(&r);
        double ms = note_through(n[to].srv.port, "after a death");
        if (ms > worst) worst = ms;
    }
    /* a write that found the lock held would have waited for up to 5 s */
    CHECK(worst < 4000);
    r = cu_http(n[li].srv.port, "GET", "/count/died", "");
    CHECK_STR_EQ(r.body, "0");
    th_resp_free(&r);
    test_report("a runaway inside a transaction was stopped on the leader after %.0f / %.0f ms "
                "(limit %d ms) and its transaction rolled back; after each of 5 isolates died "
                "with a transaction open, the next write through another node took at most "
                "%.0f ms",
                took[0], took[1], STMT_LIMIT_MS, worst);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
