/* End-to-end tests for scheduled jobs in cluster mode: three real `trail run` nodes on loopback
 * schedule the same job every second, and each due slot runs on one node only, recorded once in
 * the cluster's _job_runs with the node that ran it; across the leader killed with SIGKILL (the
 * runs go on after the election, no slot twice) and the killed node restarted (it rejoins and runs
 * no old slot). Every node's log is counted against the cluster's rows, so a node that ran a slot
 * it had not claimed is caught even though the table itself cannot hold a slot twice; the rows
 * the job's own execute() writes count the runs a second way. `trail jobs history` and `trail
 * jobs run` on a node show and record the node, and a job's guest cannot delete _job_runs. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICKS_SQL "CREATE TABLE ticks (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);\n"

static void app_dir(int i)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
    cu_app_dir_with(dir, "cluster_jobs", "0001_ticks.sql", TICKS_SQL);
}

/* One integer from the cluster's main.db, asked through any of the live nodes. */
static int64_t cluster_int(const cu_node *n, const bool *live, const char *sql)
{
    const char *addrs[3];
    size_t k = 0;
    for (int i = 0; i < 3; i++)
        if (live[i]) addrs[k++] = n[i].addr;
    dq_client *c = NULL;
    tr_error err = {0};
    if (dq_client_open_leader(addrs, k, NULL, 90000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    CHECK_EQ(dq_open(c, "main.db", &db, &err), 0);
    dq_rows rows = DQ_ROWS_INIT;
    if (dq_query_sql(c, db, sql, NULL, 0, &rows, &err) < 0)
        test_fail(__FILE__, __LINE__, "%s: %s", sql, err.msg);
    CHECK(rows.nrows == 1 && rows.ncols == 1);
    int64_t v = rows.vals[0].type == DQ_INTEGER ? rows.vals[0].i : -1;
    dq_rows_free(&rows);
    dq_client_close(c);
    return v;
}

static int64_t count_of(const cu_node *n, const bool *live, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int64_t count_of(const cu_node *n, const bool *live, const char *fmt, ...)
{
    char sql[1000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return cluster_int(n, live, sql);
}

/* How often needle occurs in hay. */
static int occurrences(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        k++;
    return k;
}

/* The scheduled runs node i's log says it started. */
static int started_in_log(const char *log, uint64_t id)
{
    char needle[120];
    snprintf(needle, sizeof needle,
             "job 'tick' of cluster_jobs.wasm started (schedule, node %" PRIu64 ")", id);
    return occurrences(log, needle);
}

/* Every slot once: the rows of scheduled runs have distinct slots, each a node of the three. */
static void check_once_per_slot(const cu_node *n, const bool *live, const uint64_t *ids)
{
    CHECK_EQ(count_of(n, live,
                      "SELECT count(*) - count(DISTINCT due_at) FROM _job_runs WHERE job = 'tick' "
                      "AND trigger = 'schedule'"),
             0);
    CHECK_EQ(count_of(n, live,
                      "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND (due_at IS NULL OR "
                      "node NOT IN ('%" PRIu64 "', '%" PRIu64 "', '%" PRIu64 "'))",
                      ids[0], ids[1], ids[2]),
             0);
    /* The job's own rows: one per run at most (a run may fail during an election), and at least
     * one per run recorded ok. */
    int64_t ticks = count_of(n, live, "SELECT count(*) FROM ticks");
    int64_t runs = count_of(n, live, "SELECT count(*) FROM _job_runs WHERE job = 'tick'");
    int64_t ok = count_of(n, live, "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND ok = 1");
    if (ticks > runs || ticks < ok)
        test_fail(__FILE__, __LINE__, "%lld rows written by the job, %lld runs claimed, %lld ok",
                  (long long)ticks, (long long)runs, (long long)ok);
}

/* Node i's log read before the cluster's rows: every run it started is claimed by then, so more
 * starts than rows of its own would be a run without a claim. */
static void check_logs_against_rows(const cu_node *n, const bool *live, const uint64_t *ids,
                                    const char *const *logs)
{
    for (int i = 0; i < 3; i++) {
        if (logs[i] == NULL) continue;
        int started = started_in_log(logs[i], ids[i]);
        int64_t rows = count_of(n, live,
                                "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND trigger = "
                                "'schedule' AND node = '%" PRIu64 "'",
                                ids[i]);
        if (started > rows)
            test_fail(__FILE__, __LINE__, "node %d started %d runs but claimed %lld", i + 1,
                      started, (long long)rows);
    }
}

static int64_t wall_s(void)
{
    return tr_wall_ms() / 1000;
}

TEST_TIMEOUT(e2e_cluster_jobs_run_once_per_slot, 500)
{
    for (int i = 1; i <= 3; i++)
        app_dir(i);
    cu_node n[3];
    cu_cluster_start(n, NULL);
    bool live[3] = {true, true, true};
    uint64_t ids[3];
    tr_error err = {0};
    for (int i = 0; i < 3; i++) {
        char *addr;
        CHECK_EQ(cluster_id_read(n[i].dir, &ids[i], &addr, &err), 0);
        tr_free(addr);
    }

    /* All three up: a slot every second, each claimed once. */
    int64_t t0 = wall_s();
    sleep(10);
    char *logs[3];
    for (int i = 0; i < 3; i++)
        logs[i] = th_server_stderr(&n[i].srv);
    check_logs_against_rows(n, live, ids, (const char *const *)logs);
    /* With a leader there, a losing node learns it at once: no claim waited out its deadline. */
    for (int i = 0; i < 3; i++) {
        CHECK(strstr(logs[i], "could not be claimed") == NULL);
        free(logs[i]);
    }
    check_once_per_slot(n, live, ids);
    int64_t t1 = wall_s();
    /* The slots of the seconds in between (a node may still have been starting at first). */
    int64_t steady = count_of(n, live,
                              "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND due_at > "
                              "%lld AND due_at < %lld",
                              (long long)t0 + 2, (long long)t1 - 1);
    int64_t window = t1 - 1 - (t0 + 2) - 1;
    CHECK(window >= 3);
    /* A node skips a slot only while its previous run is still going; all three rarely do. */
    CHECK(steady * 2 >= window);
    int64_t per_node[3];
    for (int i = 0; i < 3; i++)
        per_node[i] = count_of(n, live,
                               "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND node = "
                               "'%" PRIu64 "'",
                               ids[i]);

    /* The leader killed: the two others elect one, and the runs go on. */
    int leader = cu_leader(n, 3);
    int64_t t_kill = wall_s();
    th_server_signal(&n[leader].srv, SIGKILL);
    CHECK_EQ(th_server_wait(&n[leader].srv, 20000), 128 + SIGKILL);
    live[leader] = false;
    char *killed_log = th_server_stderr(&n[leader].srv);
    int64_t resumed = -1;
    for (int64_t end = wall_s() + 120; wall_s() < end;) {
        resumed = count_of(n, live,
                           "SELECT coalesce(min(due_at), -1) FROM _job_runs WHERE job = 'tick' "
                           "AND due_at > %lld",
                           (long long)t_kill + 1);
        if (resumed > 0) break;
        sleep(1);
    }
    if (resumed < 0) test_fail(__FILE__, __LINE__, "no run claimed within 120 s of the kill");
    int64_t gap_s = resumed - t_kill;
    sleep(5);
    for (int i = 0; i < 3; i++)
        logs[i] = live[i] ? th_server_stderr(&n[i].srv) : NULL;
    logs[leader] = killed_log;
    check_logs_against_rows(n, live, ids, (const char *const *)logs);
    for (int i = 0; i < 3; i++)
        if (i != leader) free(logs[i]);
    check_once_per_slot(n, live, ids);
    /* The dead node claims nothing after its death (its last claim may be at the kill's second). */
    CHECK_EQ(count_of(n, live,
                      "SELECT count(*) FROM _job_runs WHERE node = '%" PRIu64 "' AND due_at > %lld",
                      ids[leader], (long long)t_kill + 1),
             0);
    int64_t after_kill = count_of(n, live,
                                  "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND due_at > "
                                  "%lld",
                                  (long long)t_kill + 1);
    CHECK(after_kill >= 3);

    /* Back: it rejoins, and runs only slots due after its restart. */
    int64_t t_restart = wall_s();
    cu_node_restart(&n[leader]);
    live[leader] = true;
    free(cu_wait_status(n[leader].dir, 3, 90000));
    sleep(6);
    for (int i = 0; i < 3; i++)
        logs[i] = th_server_stderr(&n[i].srv);
    /* Its new log against its rows of slots after the restart only. */
    int started_again = started_in_log(logs[leader], ids[leader]);
    CHECK(started_again <= count_of(n, live,
                                    "SELECT count(*) FROM _job_runs WHERE node = '%" PRIu64
                                    "' AND due_at >= %lld",
                                    ids[leader], (long long)t_restart));
    CHECK_EQ(count_of(n, live,
                      "SELECT count(*) FROM _job_runs WHERE node = '%" PRIu64
                      "' AND due_at > %lld AND due_at < %lld",
                      ids[leader], (long long)t_kill + 1, (long long)t_restart),
             0);
    int killed_before = started_in_log(killed_log, ids[leader]);
    free(logs[leader]);
    logs[leader] = NULL; /* checked above, against its rows after the restart */
    check_logs_against_rows(n, live, ids, (const char *const *)logs);
    for (int i = 0; i < 3; i++)
        free(logs[i]);
    check_once_per_slot(n, live, ids);
    int64_t total = count_of(n, live,
                             "SELECT count(*) FROM _job_runs WHERE job = 'tick' AND trigger = "
                             "'schedule'");

    /* `trail jobs history` on a node reads the cluster's runs and names the node. */
    int other = (leader + 1) % 3;
    char *o, *e;
    const char *hist[] = {"jobs", "history",    "tick",       "--limit",
                          "5",    "--data-dir", n[other].dir, NULL};
    CHECK_EQ(th_run(hist, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "schedule");
    CHECK_CONTAINS(o, " on node ");
    CHECK_CONTAINS(o, "runs of the whole cluster");
    free(o);
    free(e);
    /* `trail jobs run` in a node's server: it runs there and is recorded with that node. */
    const char *poke[] = {"jobs", "run", "poke", "--data-dir", n[other].dir, NULL};
    CHECK_EQ(th_run(poke, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "ok (ran in the server");
    free(o);
    free(e);
    int64_t pokes = 0;
    for (int64_t end = wall_s() + 30; wall_s() < end && pokes == 0; sleep(1))
        pokes = count_of(n, live,
                         "SELECT count(*) FROM _job_runs WHERE job = 'poke' AND trigger = 'manual' "
                         "AND ok = 1 AND node = '%" PRIu64 "'",
                         ids[other]);
    CHECK_EQ(pokes, 1);
    /* poke's DELETE of _job_runs was refused; the runs are all there. */
    char *plog = th_server_stderr(&n[other].srv);
    CHECK_CONTAINS(plog, "poke: refused");
    CHECK(strstr(plog, "poke: _job_runs deleted") == NULL);
    free(plog);
    CHECK(count_of(n, live, "SELECT count(*) FROM _job_runs WHERE trigger = 'schedule'") >= total);
    const char *list[] = {"jobs", "list", "--data-dir", n[other].dir, NULL};
    CHECK_EQ(th_run(list, 60000, &o, &e), 0);
    char want[80];
    snprintf(want, sizeof want, " on node %" PRIu64, ids[other]);
    CHECK_CONTAINS(o, want); /* poke's last run */
    free(o);
    free(e);

    test_report("3 nodes, a job every second: %lld of %lld slots run while all were up "
                "(per node %lld/%lld/%lld); leader (node %d) killed: runs resumed %lld s later, "
                "%lld slots after it; restarted, it ran %d slots (before its death %d), none "
                "older; %lld runs, no slot twice",
                (long long)steady, (long long)window, (long long)per_node[0],
                (long long)per_node[1], (long long)per_node[2], leader + 1, (long long)gap_s,
                (long long)after_kill, started_again, killed_before, (long long)total);
    free(killed_log);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
