/* Hostile cases for guests' statements in cluster mode (guest/cluster.c, cluster/limit.c): a
 * guest's statement without end (`WITH RECURSIVE` counting to 1e10) sent through a follower must
 * be stopped on the leader, which runs every statement on its one thread, after
 * GUEST_CLUSTER_STMT_LIMIT_MS of wall time; the leader then serves other statements, and the
 * cluster keeps its leader. The figure: how long the runaway ran before it was stopped. */
#include "test.h"
#include "base/base.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <string.h>

/* guest/guest_internal.h's GUEST_CLUSTER_STMT_LIMIT_MS, as documented in docs/limits.md */
#define STMT_LIMIT_MS 2000

TEST_TIMEOUT(hostile_cluster_guest_runaway_statement_on_the_leader, 400)
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir(dir);
    }
    cu_node n[3];
    const char *extra[] = {"--runtime-threads", "1", NULL};
    cu_cluster_start(n, extra);
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
        t0 = tr_now_ns();
        r = cu_http(n[f].srv.port, "POST", "/notes", "after a runaway");
        double after = (double)(tr_now_ns() - t0) / 1e6;
        CHECK_STR_EQ(r.body, "ran: 1");
        th_resp_free(&r);
        CHECK(after < 2000);
        CHECK_EQ(cu_leader(n, 3), li);
    }
    th_resp r = cu_http(n[li].srv.port, "GET", "/notes", "");
    CHECK_STR_EQ(r.body, "[[1,\"from the migration\"],[2,\"after a runaway\"],[3,\"after a "
                         "runaway\"],[4,\"after a runaway\"]]");
    th_resp_free(&r);
    test_report("a guest's WITH RECURSIVE to 1e10 through a follower was stopped on the leader "
                "after %.0f / %.0f / %.0f ms (limit %d ms); the leader kept its leadership and "
                "took the next write at once",
                took[0], took[1], took[2], STMT_LIMIT_MS);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
