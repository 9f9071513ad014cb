/* End-to-end test of `trail cluster status`'s lag: three real nodes report their Raft log index
 * every second; the status on a follower shows every member reachable and lag near 0; a follower
 * killed with SIGKILL shows as unreachable, and as lagging by at least the writes made since;
 * started again, it catches up and its lag returns near 0. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct member_line {
    bool found, reachable;
    unsigned long long index, lag;
} member_line;

/* Runs the status against dir and finds address's line. Returns the output (free()). */
static char *status_of(const char *dir, const char *address, member_line *m)
{
    const char *args[] = {"cluster", "status", "--data-dir", dir, NULL};
    char *out = NULL;
    CHECK_EQ(th_run(args, 60000, &out, NULL), 0);
    *m = (member_line){0};
    /* the member's own line: its address after the id column (the first line names addresses
     * too) */
    char needle[100];
    snprintf(needle, sizeof needle, "  %s  ", address);
    const char *line = strstr(out, needle);
    if (line == NULL) return out;
    const char *end = strchr(line, '\n');
    char buf[400];
    snprintf(buf, sizeof buf, "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
    const char *st = strstr(buf, "unreachable");
    m->reachable = st == NULL;
    if (st == NULL) st = strstr(buf, "reachable");
    if (st == NULL) return out;
    st += strlen(st[0] == 'u' ? "unreachable" : "reachable");
    m->found = sscanf(st, "%llu %llu", &m->index, &m->lag) == 2;
    return out;
}

/* Polls the status until every one of the three members is reachable with a lag <= max_lag;
 * returns the seconds it took. */
static double wait_healthy(const cu_node *n, const char *dir, unsigned max_lag, int timeout_s)
{
    uint64_t t0 = tr_now_ns();
    for (;;) {
        bool ok = true;
        char *out = NULL;
        for (int i = 0; i < 3 && ok; i++) {
            free(out);
            member_line m;
            out = status_of(dir, n[i].addr, &m);
            ok = m.found && m.reachable && m.lag <= max_lag;
        }
        double s = (double)(tr_now_ns() - t0) / 1e9;
        if (ok) {
            free(out);
            return s;
        }
        if (s > timeout_s)
            test_fail(__FILE__, __LINE__, "not healthy within %d s: %s", timeout_s, out);
        free(out);
        nanosleep(&(struct timespec){0, 500 * 1000000}, NULL);
    }
}

TEST_TIMEOUT(e2e_cluster_status_shows_lag, 400)
{
    cu_node n[3];
    cu_cluster_start(n, NULL);
    int leader = cu_leader(n, 3);
    int f = (leader + 1) % 3, other = (leader + 2) % 3;

    /* Healthy: every member reachable, lag near 0 (reports of one second; a write may land
     * between two members' reads of their index). */
    wait_healthy(n, n[f].dir, 5, 60);
    char *out;
    member_line m;
    out = status_of(n[f].dir, n[f].addr, &m);
    CHECK_CONTAINS(out, "LOG INDEX");
    CHECK(m.index > 0);
    free(out);

    /* A follower stopped: unreachable, and behind by at least the writes made since. */
    th_server_signal(&n[f].srv, SIGKILL);
    CHECK_EQ(th_server_wait(&n[f].srv, 20000), 128 + SIGKILL);
    const char *all[] = {n[0].addr, n[1].addr, n[2].addr};
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(all, 3, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    dq_result res;
    CHECK_EQ(dq_open(c, "lag", &db, &err), 0);
    CHECK_EQ(dq_exec_sql(c, db, "CREATE TABLE t (x)", NULL, 0, &res, &err), 0);
    enum { WRITES = 200 };
    for (int i = 0; i < WRITES; i++)
        CHECK_EQ(dq_exec_sql(c, db, "INSERT INTO t VALUES (1)", NULL, 0, &res, &err), 0);
    dq_client_close(c);
    nanosleep(&(struct timespec){2, 0}, NULL); /* the others' next reports */
    out = status_of(n[other].dir, n[f].addr, &m);
    CHECK(m.found);
    CHECK(!m.reachable);
    if (m.lag < WRITES) test_fail(__FILE__, __LINE__, "lag %llu < %d: %s", m.lag, WRITES, out);
    CHECK_CONTAINS(out, "last report");
    unsigned long long lag_down = m.lag;
    free(out);

    /* Back: it catches up, and the status says so. */
    cu_node_restart(&n[f]);
    double caught_up_s = wait_healthy(n, n[other].dir, 5, 90);
    out = status_of(n[f].dir, n[f].addr, &m);
    CHECK(m.reachable);
    CHECK(m.lag <= 5);
    free(out);
    test_report("healthy lag <= 5 entries; a killed follower showed unreachable, %llu entries "
                "behind after %d writes; restarted, lag near 0 again after %.1f s",
                lag_down, WRITES, caught_up_s);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
