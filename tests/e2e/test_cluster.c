/* End-to-end tests for cluster mode: three real `trail run` processes on loopback form a dqlite
 * cluster (one bootstraps it, two join through it); `trail cluster status` shows one leader and
 * three voters; trail's dqlite client (cluster/client.c) writes and reads through the leader, and
 * what it reads agrees with go-dqlite's `dqlite` shell, both ways; the cluster's SQL runs on
 * trail's SQLite with trail's functions. Also: a node keeps its identity across restarts and
 * refuses another address, --join needs --cluster-address, and config.textproto's cluster section
 * starts a node. A guest's query() and execute() run on the cluster's leader, and migrations are
 * applied once for the cluster. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/fixtures.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* `dqlite -s SERVERS app SQL`: go-dqlite's shell. Returns its exit status; output in *out. */
static int dqlite_shell(const char *servers, const char *sql, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 60 dqlite -s %s app \"%s\" 2>&1", servers, sql);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    tr_buf b = TR_BUF_INIT;
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tr_buf_append(&b, chunk, n);
    int st = pclose(f);
    tr_buf_append(&b, "", 0);
    *out = tr_buf_take(&b, NULL);
    return st;
}

TEST_TIMEOUT(e2e_cluster_three_nodes_agree_with_the_dqlite_shell, 300)
{
    cu_node n[3];
    cu_node_start(&n[0], 1, NULL, NULL);
    cu_node_start(&n[1], 2, n[0].addr, NULL);
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);
    cu_node_start(&n[2], 3, join, NULL);

    /* 1 leader, 3 voters, seen from a joined node. */
    char *st = cu_wait_status(n[2].dir, 3, 60000);
    CHECK_CONTAINS(st, "cluster of 3 members");
    for (int i = 0; i < 3; i++)
        CHECK_CONTAINS(st, n[i].addr);
    const char *l = strstr(st, "(leader)");
    CHECK(strstr(l + 1, "(leader)") == NULL);
    free(st);

    /* trail's client: the leader through any member, then a table, a prepared insert with every
     * value type, and a query. */
    const char *addrs[] = {n[1].addr, n[2].addr, n[0].addr};
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(addrs, 3, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    CHECK_EQ(dq_open(c, "app", &db, &err), 0);
    dq_result res;
    CHECK_EQ(dq_exec_sql(c, db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, s TEXT, f REAL, b BLOB, n)",
                         NULL, 0, &res, &err),
             0);
    uint32_t ins;
    uint64_t nparams;
    CHECK_EQ(dq_prepare(c, db, "INSERT INTO kv VALUES (?, ?, ?, ?, ?)", &ins, &nparams, &err), 0);
    CHECK_EQ(nparams, 5);
    dq_value row1[5] = {{.type = DQ_INTEGER, .i = 1},
                        {.type = DQ_TEXT, .p = "héllo", .n = 6},
                        {.type = DQ_FLOAT, .f = 2.5},
                        {.type = DQ_BLOB, .p = "\0\1\2\3", .n = 4},
                        {.type = DQ_NULL}};
    CHECK_EQ(dq_exec(c, db, ins, row1, 5, &res, &err), 0);
    CHECK_EQ(res.last_insert_id, 1);
    CHECK_EQ(res.rows_affected, 1);
    dq_value row2[5] = {{.type = DQ_INTEGER, .i = 2},
                        {.type = DQ_TEXT, .p = "world", .n = 5},
                        {.type = DQ_FLOAT, .f = -1},
                        {.type = DQ_NULL},
                        {.type = DQ_INTEGER, .i = -7}};
    CHECK_EQ(dq_exec(c, db, ins, row2, 5, &res, &err), 0);
    CHECK_EQ(dq_finalize(c, db, ins, &err), 0);
    /* A failing statement is an answer, not a broken connection. */
    CHECK_EQ(dq_exec_sql(c, db, "INSERT INTO kv(k) VALUES (1)", NULL, 0, &res, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "UNIQUE");
    dq_rows rows;
    CHECK_EQ(dq_query_sql(c, db, "SELECT k, s, f, b, n FROM kv ORDER BY k", NULL, 0, &rows, &err),
             0);
    CHECK_EQ(rows.nrows, 2);
    CHECK_STR_EQ(rows.names[1], "s");
    CHECK_MEM_EQ(rows.vals[1].p, rows.vals[1].n, "héllo");
    CHECK(rows.vals[2].f == 2.5);
    CHECK_EQ(rows.vals[3].type, DQ_BLOB);
    CHECK_EQ(rows.vals[3].n, 4);
    CHECK_EQ(rows.vals[3].p[3], 3);
    CHECK_EQ(rows.vals[4].type, DQ_NULL);
    CHECK_EQ(rows.vals[9].i, -7);
    dq_rows_free(&rows);

    /* One SQLite: the cluster runs trail's, with trail's functions (docs/scaling.md). */
    CHECK_EQ(dq_query_sql(c, db,
                          "SELECT sqlite_version(), length(uuid_v7()), "
                          "vec_length(vec_f32('[1, 2, 3]'))",
                          NULL, 0, &rows, &err),
             0);
    CHECK_MEM_EQ(rows.vals[0].p, rows.vals[0].n, sqlite3_libversion());
    CHECK_EQ(rows.vals[1].i, 16);
    CHECK_EQ(rows.vals[2].i, 3);
    dq_rows_free(&rows);

    /* Columns declared as dates and booleans hold any value, and every value comes back as the
     * SQLite value it is (libdqlite alone would abort the node on the REAL, and send the NULL as
     * ""). */
    CHECK_EQ(dq_exec_sql(c, db,
                         "CREATE TABLE typed(d DATETIME, t TIMESTAMP, b BOOLEAN);"
                         "INSERT INTO typed VALUES (1.5, x'00ff', 'yes'), (NULL, 7, 2.5),"
                         " ('2026-01-01', 'now', 1)",
                         NULL, 0, &res, &err),
             0);
    CHECK_EQ(dq_query_sql(c, db, "SELECT d, t, b FROM typed ORDER BY rowid", NULL, 0, &rows, &err),
             0);
    CHECK_EQ(rows.nrows, 3);
    CHECK_EQ(rows.vals[0].type, DQ_FLOAT);
    CHECK(rows.vals[0].f == 1.5);
    CHECK_EQ(rows.vals[1].type, DQ_BLOB);
    CHECK_EQ(rows.vals[2].type, DQ_TEXT);
    CHECK_EQ(rows.vals[3].type, DQ_NULL);
    CHECK_EQ(rows.vals[4].type, DQ_INTEGER);
    CHECK_EQ(rows.vals[5].type, DQ_FLOAT);
    CHECK_MEM_EQ(rows.vals[6].p, rows.vals[6].n, "2026-01-01");
    CHECK_EQ(rows.vals[8].i, 1);
    dq_rows_free(&rows);

    /* The real shell reads what trail's client wrote, through a follower first in its list ... */
    char servers[300];
    snprintf(servers, sizeof servers, "%s,%s,%s", n[1].addr, n[2].addr, n[0].addr);
    char *out;
    CHECK_EQ(dqlite_shell(servers, "SELECT k, s, n FROM kv ORDER BY k", &out), 0);
    CHECK_STR_EQ(out, "1|héllo|<nil>\n2|world|-7\n"); /* the shell prints NULL as <nil> */
    free(out);
    /* ... and trail's client reads what the shell wrote. */
    CHECK_EQ(dqlite_shell(servers, "INSERT INTO kv(k, s) VALUES (3, 'from the shell')", &out), 0);
    free(out);
    CHECK_EQ(dq_query_sql(c, db, "SELECT count(*), max(s) FROM kv WHERE k >= ?",
                          (dq_value[]){{.type = DQ_INTEGER, .i = 2}}, 1, &rows, &err),
             0);
    CHECK_EQ(rows.vals[0].i, 2);
    CHECK_MEM_EQ(rows.vals[1].p, rows.vals[1].n, "world");
    dq_rows_free(&rows);
    CHECK_EQ(dq_query_sql(c, db, "SELECT s FROM kv WHERE k = 3", NULL, 0, &rows, &err), 0);
    CHECK_MEM_EQ(rows.vals[0].p, rows.vals[0].n, "from the shell");
    dq_rows_free(&rows);

    /* Figures for docs/scaling.md: a write committed through Raft (three voters on loopback) and
     * a read on the leader, each one round trip of trail's client; sorted for p50 and p99. */
    enum { N = 200 };
    static double w_ms[N], r_ms[N];
    uint32_t wst, rst;
    CHECK_EQ(dq_prepare(c, db, "INSERT INTO kv(s) VALUES (?)", &wst, NULL, &err), 0);
    CHECK_EQ(dq_prepare(c, db, "SELECT s FROM kv WHERE k = ?", &rst, NULL, &err), 0);
    for (int i = 0; i < N; i++) {
        dq_value v = {.type = DQ_TEXT, .p = "timed", .n = 5};
        uint64_t t0 = tr_now_ns();
        CHECK_EQ(dq_exec(c, db, wst, &v, 1, &res, &err), 0);
        uint64_t t1 = tr_now_ns();
        dq_value k = {.type = DQ_INTEGER, .i = (int64_t)res.last_insert_id};
        CHECK_EQ(dq_query(c, db, rst, &k, 1, &rows, &err), 0);
        uint64_t t2 = tr_now_ns();
        CHECK_EQ(rows.nrows, 1);
        dq_rows_free(&rows);
        w_ms[i] = (double)(t1 - t0) / 1e6;
        r_ms[i] = (double)(t2 - t1) / 1e6;
    }
    qsort(w_ms, N, sizeof w_ms[0], cu_cmp_double);
    qsort(r_ms, N, sizeof r_ms[0], cu_cmp_double);
    const char *bin = getenv("TRAIL_BIN");
    test_report("3 voters (%s build): insert p50 %.2f ms p99 %.2f ms; read by id on the leader "
                "p50 %.2f ms p99 %.2f ms",
                bin && strstr(bin, "/asan/") ? "ASan" : "release", w_ms[N / 2], w_ms[N * 99 / 100],
                r_ms[N / 2], r_ms[N * 99 / 100]);

    /* A follower refuses a write with "not leader", which the client reports as such. */
    dq_client *f = NULL;
    for (int i = 0; i < 3 && f == NULL; i++) {
        dq_client *t;
        CHECK_EQ(dq_client_open(n[i].addr, NULL, &t, &err), 0);
        uint64_t id;
        char *leader;
        CHECK_EQ(dq_leader(t, &id, &leader, &err), 0);
        if (strcmp(leader, n[i].addr) != 0)
            f = t;
        else
            dq_client_close(t);
        tr_free(leader);
    }
    CHECK(f != NULL);
    uint32_t fdb;
    CHECK_EQ(dq_open(f, "app", &fdb, &err), 0);
    CHECK_EQ(dq_exec_sql(f, fdb, "INSERT INTO kv(k) VALUES (9)", NULL, 0, &res, &err), TR_ESQL);
    CHECK_EQ(dq_client_failure_code(f), DQ_CODE_NOT_LEADER);
    dq_client_close(f);
    dq_client_close(c);

    for (int i = 2; i >= 0; i--)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* A node's identity survives a restart; another address for it, or --join without an address of
 * its own, stops the start with a message; the config file's cluster section starts a node. */
TEST_TIMEOUT(e2e_cluster_node_identity_and_config, 180)
{
    cu_node a;
    cu_node_start(&a, 1, NULL, NULL);
    char *st = cu_wait_status(a.dir, 1, 60000);
    CHECK_CONTAINS(st, "cluster of 1 member;");
    CHECK_CONTAINS(st, "1                     ");
    free(st);
    /* the Record APIs are served, not refused (tests/e2e/test_cluster_records.c): this node has
     * none, so no API of that name */
    const char *served[][2] = {{"GET", "/api/records/v1/notes"},
                               {"GET", "/api/records/v1/notes/subscribe/*"},
                               {"POST", "/api/transaction/v1/execute"}};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        th_resp r = cu_http(a.srv.port, served[i][0], served[i][1], "{}");
        CHECK(r.status != 503);
        th_resp_free(&r);
    }
    /* users and sign-in are served (tests/e2e/test_cluster_auth.c) */
    th_resp r = cu_http(a.srv.port, "POST", "/api/auth/v1/login", "{}");
    CHECK_EQ(r.status, 400);
    CHECK_STR_EQ(r.body, "{\"error\":\"missing email\"}");
    th_resp_free(&r);
    r = cu_http(a.srv.port, "GET", "/_/auth/login", "");
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&a.srv), 0);
    char *idpath = tr_asprintf("%s/cluster/node-id", a.dir);
    char *id = th_read_file(idpath, NULL);
    char want[100];
    snprintf(want, sizeof want, "1 %s\n", a.addr);
    CHECK_STR_EQ(id, want);
    free(id);
    tr_free(idpath);

    char other[64];
    snprintf(other, sizeof other, "127.0.0.1:%d", cu_free_port());
    const char *moved[] = {"run", "--address",         "127.0.0.1:0", "--data-dir",
                           a.dir, "--cluster-address", other,         NULL};
    char *err = NULL;
    CHECK_EQ(th_run(moved, 60000, NULL, &err), 1);
    CHECK_CONTAINS(err, "has address");
    CHECK_CONTAINS(err, a.addr);
    free(err);
    const char *lonely[] = {"run", "--address", "127.0.0.1:0", "--data-dir",
                            a.dir, "--join",    a.addr,        NULL};
    CHECK_EQ(th_run(lonely, 60000, NULL, &err), 1);
    CHECK_CONTAINS(err, "--join needs --cluster-address");
    free(err);

    /* The same node from config.textproto, with its data kept. */
    char *cfgpath = tr_asprintf("%s/config.textproto", a.dir);
    char *cfgtext = tr_asprintf("cluster {\n  address: \"%s\"\n}\n", a.addr);
    CHECK_EQ(th_write_file(cfgpath, cfgtext, strlen(cfgtext)), 0);
    tr_free(cfgpath);
    tr_free(cfgtext);
    const char *extra[] = {"-q", NULL};
    CHECK_EQ(th_server_start_within(&a.srv, a.dir, extra, 90000), 0);
    char *out = th_server_stdout(&a.srv);
    CHECK_CONTAINS(out, "trail: cluster node 1 on");
    free(out);
    st = cu_wait_status(a.dir, 1, 60000);
    free(st);
    CHECK_EQ(th_server_stop(&a.srv), 0);
}

/* Connects to the leader among addrs and inserts one row into w; 0 once it is acknowledged. */
static int try_insert(const char *const *addrs, size_t n, int64_t id, tr_error *err)
{
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.timeout_ms = 2000;
    dq_client *c;
    int rc = dq_client_open_leader(addrs, n, &o, 2000, &c, err);
    if (rc < 0) return rc;
    uint32_t db;
    dq_result res;
    rc = dq_open(c, "app", &db, err);
    if (rc == 0)
        rc = dq_exec_sql(c, db, "INSERT INTO w(id) VALUES (?)",
                         (dq_value[]){{.type = DQ_INTEGER, .i = id}}, 1, &res, err);
    dq_client_close(c);
    return rc;
}

static int64_t count_rows(const char *const *addrs, size_t n)
{
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(addrs, n, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    dq_rows rows;
    CHECK_EQ(dq_open(c, "app", &db, &err), 0);
    CHECK_EQ(dq_query_sql(c, db, "SELECT count(*) FROM w", NULL, 0, &rows, &err), 0);
    int64_t v = rows.vals[0].i;
    dq_rows_free(&rows);
    dq_client_close(c);
    return v;
}

/* The leader killed with SIGKILL: the two others elect a new one and take writes again (the time
 * is reported); every acknowledged write is there; the killed node comes back as a voter, catches
 * up, and answers as leader after a leadership transfer with every row. */
TEST_TIMEOUT(e2e_cluster_leader_killed_and_back, 300)
{
    cu_node n[3];
    cu_node_start(&n[0], 1, NULL, NULL);
    cu_node_start(&n[1], 2, n[0].addr, NULL);
    cu_node_start(&n[2], 3, n[0].addr, NULL);
    free(cu_wait_status(n[0].dir, 3, 60000));
    const char *all[] = {n[0].addr, n[1].addr, n[2].addr};
    tr_error err = {0};
    {
        dq_client *c;
        CHECK_EQ(dq_client_open_leader(all, 3, NULL, 30000, &c, &err), 0);
        uint32_t db;
        dq_result res;
        CHECK_EQ(dq_open(c, "app", &db, &err), 0);
        CHECK_EQ(dq_exec_sql(c, db, "CREATE TABLE w(id INTEGER PRIMARY KEY)", NULL, 0, &res, &err),
                 0);
        dq_client_close(c);
    }
    int64_t acked = 0;
    for (int64_t i = 1; i <= 50; i++) {
        if (try_insert(all, 3, i, &err) < 0) test_fail(__FILE__, __LINE__, "%s", err.msg);
        acked++;
    }
    /* Which node leads? */
    int leader = -1;
    {
        dq_client *c;
        CHECK_EQ(dq_client_open(n[0].addr, NULL, &c, &err), 0);
        uint64_t id;
        char *addr;
        CHECK_EQ(dq_leader(c, &id, &addr, &err), 0);
        for (int i = 0; i < 3; i++)
            if (strcmp(addr, n[i].addr) == 0) leader = i;
        tr_free(addr);
        dq_client_close(c);
    }
    CHECK(leader >= 0);
    th_server_signal(&n[leader].srv, SIGKILL);
    CHECK_EQ(th_server_wait(&n[leader].srv, 20000), 128 + SIGKILL);

    const char *rest[2];
    for (int i = 0, k = 0; i < 3; i++)
        if (i != leader) rest[k++] = n[i].addr;
    uint64_t t0 = tr_now_ns();
    int rc;
    do {
        rc = try_insert(rest, 2, 51, &err);
    } while (rc < 0 && tr_now_ns() - t0 < 60ull * 1000000000u);
    if (rc < 0) test_fail(__FILE__, __LINE__, "not writable within 60 s: %s", err.msg);
    acked++;
    double writable_s = (double)(tr_now_ns() - t0) / 1e9;
    CHECK_EQ(count_rows(rest, 2), acked);

    /* Back: a voter again, caught up; made leader, it has every row. */
    cu_node_restart(&n[leader]);
    free(cu_wait_status(n[leader].dir, 3, 60000));
    uint64_t back_id;
    char *back_addr;
    CHECK_EQ(cluster_id_read(n[leader].dir, &back_id, &back_addr, &err), 0);
    tr_free(back_addr);
    uint64_t t1 = tr_now_ns();
    for (;;) {
        dq_client *c;
        CHECK_EQ(dq_client_open_leader(all, 3, NULL, 30000, &c, &err), 0);
        uint64_t id;
        char *addr;
        CHECK_EQ(dq_leader(c, &id, &addr, &err), 0);
        tr_free(addr);
        if (id == back_id) {
            dq_client_close(c);
            break;
        }
        /* The transfer is refused until the node has caught up with the log. */
        rc = dq_transfer(c, back_id, &err);
        dq_client_close(c);
        if (tr_now_ns() - t1 > 60ull * 1000000000u)
            test_fail(__FILE__, __LINE__, "no transfer to the restarted node: %s", err.msg);
        if (rc < 0) nanosleep(&(struct timespec){0, 200 * 1000000}, NULL);
    }
    const char *only_back[] = {n[leader].addr};
    CHECK_EQ(count_rows(only_back, 1), acked);
    test_report("leader (node %d of 3) killed: writable again after %.1f s through the others; "
                "restarted, it caught up and, made leader, has all %lld acknowledged rows",
                leader + 1, writable_s, (long long)acked);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* ---- the application database in the cluster (docs/scaling.md) ---- */

/* Not idempotent: applied twice, the CREATE fails and the row is there twice. */
TEST_TIMEOUT(e2e_cluster_guest_sql_through_the_leader, 400)
{
    cu_node n[3];
    char dir[600];
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i + 1);
        cu_app_dir(dir);
    }
    cu_cluster_start(n, NULL);
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);

    const char *addrs[] = {n[0].addr, n[1].addr, n[2].addr};
    dq_client *c;
    tr_error err = {0};
    if (dq_client_open_leader(addrs, 3, NULL, 30000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint32_t db;
    CHECK_EQ(dq_open(c, "main.db", &db, &err), 0);
    /* Every node started with the migration; the cluster applied it once. */
    dq_rows rows;
    CHECK_EQ(dq_query_sql(c, db,
                          "SELECT (SELECT count(*) FROM notes), (SELECT group_concat(name, ' ') "
                          "FROM (SELECT name FROM _schema_history ORDER BY name))",
                          NULL, 0, &rows, &err),
             0);
    CHECK_EQ(rows.vals[0].i, 1);
    CHECK_MEM_EQ(rows.vals[1].p, rows.vals[1].n, "0001_notes.sql trail/0001_user");
    dq_rows_free(&rows);
    uint64_t leader_id;
    char *leader = NULL;
    CHECK_EQ(dq_leader(c, &leader_id, &leader, &err), 0);
    int f[2], nf = 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(n[i].addr, leader) != 0 && nf < 2) f[nf++] = i;
    CHECK_EQ(nf, 2);

    /* A follower's guest writes; the other follower's guest reads it back. */
    th_resp r = cu_http(n[f[0]].srv.port, "POST", "/notes", "written on a follower");
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    r = cu_http(n[f[1]].srv.port, "POST", "/notes", "and on the other");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    /* A text with a NUL byte is refused with a reason, and the worker's client goes on. */
    r = cu_http(n[f[0]].srv.port, "GET", "/nul", "");
    CHECK_CONTAINS(r.body, "refused: parameter 1: a text with a NUL byte cannot be sent");
    th_resp_free(&r);
    for (int i = 0; i < 3; i++) {
        r = cu_http(n[i].srv.port, "GET", "/notes", "");
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "[[1,\"from the migration\"],[2,\"written on a follower\"],"
                             "[3,\"and on the other\"]]");
        th_resp_free(&r);
    }
    /* What a guest's write and read by id cost through a follower and on the leader (HTTP
     * included), for docs/scaling.md: N of each, one at a time. */
    int li = 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(n[i].addr, leader) == 0) li = i;
    enum { N = 50 };
    double lat[4][N];
    int via[2] = {f[0], li};
    for (int v = 0; v < 2; v++) {
        for (int i = 0; i < N; i++) {
            uint64_t t0 = tr_now_ns();
            r = cu_http(n[via[v]].srv.port, "POST", "/notes", "timed");
            CHECK_STR_EQ(r.body, "ran: 1");
            th_resp_free(&r);
            uint64_t t1 = tr_now_ns();
            r = cu_http(n[via[v]].srv.port, "GET", "/note/2", "");
            CHECK_STR_EQ(r.body, "written on a follower");
            th_resp_free(&r);
            lat[2 * v][i] = (double)(t1 - t0) / 1e6;
            lat[2 * v + 1][i] = (double)(tr_now_ns() - t1) / 1e6;
        }
    }
    for (int k = 0; k < 4; k++)
        qsort(lat[k], N, sizeof lat[k][0], cu_cmp_double);
    const char *bin = getenv("TRAIL_BIN");
    test_report("guest insert / read by id over HTTP (%s build), p50 and p99 in ms: through a "
                "follower %.2f %.2f / %.2f %.2f; on the leader %.2f %.2f / %.2f %.2f",
                bin && strstr(bin, "/asan/") ? "ASan" : "release", lat[0][N / 2],
                lat[0][N * 99 / 100], lat[1][N / 2], lat[1][N * 99 / 100], lat[2][N / 2],
                lat[2][N * 99 / 100], lat[3][N / 2], lat[3][N * 99 / 100]);

    /* The rows are the cluster's: trail's client sees them, the writer's own file does not. */
    CHECK_EQ(dq_query_sql(c, db, "SELECT count(*) FROM notes", NULL, 0, &rows, &err), 0);
    CHECK_EQ(rows.vals[0].i, 3 + 2 * N);
    dq_rows_free(&rows);
    /* A write through query() (RETURNING) is committed through Raft, and the leader, which
     * libdqlite 1.11 aborts on the next write after a QUERY that wrote, goes on. */
    for (int i = 0; i < 3; i++) {
        r = cu_http(n[f[i % 2]].srv.port, "POST", "/returning", "returned");
        char want[64];
        snprintf(want, sizeof want, "ran: [[%d,\"returned\"]]", 4 + 2 * N + 2 * i);
        CHECK_STR_EQ(r.body, want);
        th_resp_free(&r);
        r = cu_http(n[li].srv.port, "POST", "/notes", "after a returning write");
        CHECK_STR_EQ(r.body, "ran: 1");
        th_resp_free(&r);
    }
    CHECK_EQ(dq_query_sql(c, db, "SELECT count(*) FROM notes WHERE body = 'returned'", NULL, 0,
                          &rows, &err),
             0);
    CHECK_EQ(rows.vals[0].i, 3);
    dq_rows_free(&rows);
    snprintf(dir, sizeof dir, "%s/data/main.db", n[f[0]].dir);
    sqlite3 *local;
    CHECK_EQ(sqlite3_open_v2(dir, &local, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(local, "SELECT count(*) FROM notes", -1, &st, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    CHECK_EQ(sqlite3_column_int(st, 0), 1); /* its schema mirror's own migration row */
    sqlite3_finalize(st);
    sqlite3_close(local);

    /* A node whose migrations lack one the cluster applied does not start, and says which. */
    cu_node late;
    snprintf(late.dir, sizeof late.dir, "%s/n4", test_tmpdir());
    snprintf(late.addr, sizeof late.addr, "127.0.0.1:%d", cu_free_port());
    const char *late_args[] = {
        "--cluster-address", late.addr, "-q", "--runtime-threads", "1", "--join", join, NULL};
    CHECK(th_server_start_within(&late.srv, late.dir, late_args, 90000) < 0);
    char *late_err = th_server_stderr(&late.srv);
    CHECK_CONTAINS(late_err, "the cluster has applied migration 0001_notes.sql, which");
    free(late_err);

    /* What the allow-list refuses is refused on a follower, with one node's message, and nothing
     * of it reaches the cluster. */
    r = cu_http(n[f[0]].srv.port, "GET", "/refused", "");
    CHECK_CONTAINS(r.body, "refused: not authorized");
    char *cluster_refusal = tr_strdup(r.body);
    th_resp_free(&r);
    r = cu_http(n[f[1]].srv.port, "GET", "/ddl", "");
    CHECK_CONTAINS(r.body, "refused: not authorized: schema changes are made by migrations in "
                           "cluster mode");
    th_resp_free(&r);
    r = cu_http(n[f[1]].srv.port, "GET", "/tx", "");
    CHECK_CONTAINS(r.body, "refused: in cluster mode a statement cannot begin or end a "
                           "transaction (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE): use "
                           "transaction() or beginTransaction()");
    th_resp_free(&r);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);

    th_server single;
    snprintf(dir, sizeof dir, "%s/single", test_tmpdir());
    cu_app_dir(dir);
    const char *extra[] = {"-q", "--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&single, dir, extra), 0);
    r = cu_http(single.port, "GET", "/refused", "");
    CHECK_STR_EQ(r.body, cluster_refusal);
    th_resp_free(&r);
    r = cu_http(single.port, "GET", "/ddl", "");
    CHECK_STR_EQ(r.body, "ran: 0"); /* one node: a handler may change the schema */
    th_resp_free(&r);
    r = cu_http(single.port, "POST", "/notes", "one node");
    CHECK_STR_EQ(r.body, "ran: 1");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&single), 0);
    tr_free(cluster_refusal);
    tr_free(leader);
    dq_client_close(c);
}
