/* The examples/ apps against a three-node cluster: each built with tools/sdk-build.sh, its
 * component and migrations in every node's data directory, three real `trail run
 * --cluster-address` nodes on loopback, and the example's checks (e2e/example_checks.c, the same
 * as on one trail) through every node in turn; database-access also through nginx in front of the
 * three (round robin), before and after a node is stopped.
 *
 * Examples whose routes and tables do not meet share one cluster (one data directory holds
 * several components), so that the file starts six clusters rather than eleven; c-database-access
 * (a compiled component) has its own. The examples that sign in (records-web, the my-todos ones)
 * are in test_cluster_examples_signin.c. The kv store is per node,
 * so a sequence of requests that relies on kv state stays on one node. */
#include "test.h"
#include "e2e/cluster_util.h"
#include "e2e/example_checks.h"
#include "e2e/fixtures.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Builds examples/NAME and puts its component and migrations into the data directories of the
 * three nodes (<test_tmpdir()>/n1..n3, as cu_cluster_start() uses them). */
static void add_example(const char *name)
{
    const char *root = getenv("TRAIL_ROOT");
    if (!root) root = ".";
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; out='%s/%s.wasm'; '%s/tools/sdk-build.sh' '%s/examples/%s' \"$out\" "
             ">/dev/null; for i in 1 2 3; do d='%s'/n$i; mkdir -p \"$d/wasm\" \"$d/migrations\"; "
             "cp \"$out\" \"$d/wasm/\"; if [ -d '%s/examples/%s/migrations' ]; then "
             "cp '%s/examples/%s/migrations/'*.sql \"$d/migrations/\"; fi; done",
             test_tmpdir(), name, root, root, name, test_tmpdir(), root, name, root, name);
    if (fx_sh(cmd) != 0) test_fail(__FILE__, __LINE__, "building examples/%s failed", name);
}

/* Starts the cluster of the examples added, and says so on stderr. */
static void start_cluster(cu_node n[3])
{
    cu_cluster_start(n, NULL);
    fprintf(stderr, "cluster: nodes on HTTP ports %d, %d, %d; leader node %d\n", n[0].srv.port,
            n[1].srv.port, n[2].srv.port, cu_leader(n, 3) + 1);
}

static void stop_cluster(cu_node n[3])
{
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* Names the example and node on stderr, so that a failed CHECK in a shared check says where. */
static void through(const char *example, int node, int port)
{
    fprintf(stderr, "checking %s through node %d (port %d)\n", example, node + 1, port);
}

TEST_TIMEOUT(e2e_cluster_examples_guest_only_and_sql, 400)
{
    /* routes and tables apart: one data directory serves them all */
    const char *const names[] = {"http-handlers", "request-api",    "response-api",
                                 "rate-limiting", "error-handling", "vector-search"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        add_example(names[i]);
    cu_node n[3];
    start_cluster(n);
    for (int i = 0; i < 3; i++) {
        int port = n[i].srv.port;
        through("http-handlers", i, port);
        ex_check_http_handlers(port);
        through("request-api", i, port);
        ex_check_request_api(port);
        through("response-api", i, port);
        ex_check_response_api(port);
        /* module state: each node's worker counts for itself */
        through("rate-limiting", i, port);
        char client[32];
        snprintf(client, sizeof client, "10.0.0.%d", i + 1);
        ex_check_rate_limiting(port, client);
        through("error-handling", i, port);
        ex_check_error_handling(port);
        through("vector-search", i, port);
        ex_check_vector_search(port);
    }
    stop_cluster(n);
    for (int i = 0; i < 3; i++) {
        char *log = th_server_stderr(&n[i].srv);
        CHECK_CONTAINS(log, "ERROR [WASM] Query failed: Error: no such table: nonexistent_table");
        CHECK_CONTAINS(log, "INFO  [WASM] Query took ");
        free(log);
    }
}

TEST_TIMEOUT(e2e_cluster_examples_analytics, 300)
{
    add_example("analytics");
    cu_node n[3];
    start_cluster(n);
    for (int i = 0; i < 3; i++) {
        through("analytics", i, n[i].srv.port);
        ex_check_analytics(n[i].srv.port);
    }
    stop_cluster(n);
}

TEST_TIMEOUT(e2e_cluster_examples_dashboard, 300)
{
    add_example("dashboard");
    cu_node n[3];
    start_cluster(n);
    for (int i = 0; i < 3; i++) {
        through("dashboard", i, n[i].srv.port);
        ex_check_dashboard(n[i].srv.port);
    }
    stop_cluster(n);
}

TEST_TIMEOUT(e2e_cluster_examples_async_operations, 300)
{
    add_example("async-operations");
    cu_node n[3];
    start_cluster(n);
    for (int i = 0; i < 3; i++) {
        through("async-operations", i, n[i].srv.port);
        ex_check_async_operations(n[i].srv.port);
    }
    /* every node's periodic callback (one a second per node, ten of them) */
    usleep(3500 * 1000);
    stop_cluster(n);
    for (int i = 0; i < 3; i++) {
        char *log = th_server_stderr(&n[i].srv);
        CHECK_CONTAINS(log, "INFO  [WASM] Callback #0\n");
        CHECK_CONTAINS(log, "INFO  [WASM] Callback #9\n");
        CHECK(strstr(log, "Callback #10") == NULL);
        free(log);
    }
}

/* The kv store is per node: each node's cache starts empty and is dropped only by a write through
 * that node, and each node counts its own rate limit. A sequence that relies on kv state stays on
 * one node; the rows the cache sums are the cluster's. */
TEST_TIMEOUT(e2e_cluster_examples_kv, 300)
{
    add_example("kv-cache");
    add_example("kv-rate-limiting");
    cu_node n[3];
    start_cluster(n);
    /* node 1: the migration's 3 todos; it ends with the value for 4 cached */
    through("kv-cache", 0, n[0].srv.port);
    ex_check_kv_cache(n[0].srv.port, 3);
    /* a write through node 2 does not drop node 1's cached value: node 1 answers its own */
    ex_expect(ex_call(n[1].srv.port, "POST", "/todos", "", "{\"title\":\"on node 2\"}"), 201,
              EX_JSON, "{\"added\":\"on node 2\"}");
    ex_expect(ex_call(n[0].srv.port, "GET", "/stats/todos", "", NULL), 200, EX_JSON,
              "{\"source\":\"cache\",\"stats\":{\"total\":4,\"completed\":1}}");
    /* nodes 2 and 3 compute from the cluster's rows (5, then 6 after node 2's own POST) */
    through("kv-cache", 1, n[1].srv.port);
    ex_check_kv_cache(n[1].srv.port, 5);
    through("kv-cache", 2, n[2].srv.port);
    ex_check_kv_cache(n[2].srv.port, 6);
    /* each node counts the same client's requests for itself */
    for (int i = 0; i < 3; i++) {
        through("kv-rate-limiting", i, n[i].srv.port);
        ex_check_kv_rate_limiting(n[i].srv.port, "10.0.0.1");
    }
    stop_cluster(n);
}

/* ---- nginx in front of the three nodes ---- */

typedef struct lb {
    pid_t pid;
    int port;
    char dir[600];
} lb;

/* Writes an nginx config into <test_tmpdir()>/nginx (round robin over the nodes' HTTP ports, an
 * access log of the upstream each request went to) and runs nginx as one process (no master), in
 * the foreground, killed if this test dies. */
static void lb_start(lb *l, const cu_node n[3])
{
    snprintf(l->dir, sizeof l->dir, "%s/nginx", test_tmpdir());
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", l->dir);
    CHECK_EQ(fx_sh(cmd), 0);
    l->port = cu_free_port();
    char conf[4096];
    int len = snprintf(conf, sizeof conf,
                       "master_process off;\n"
                       "daemon off;\n"
                       "pid %1$s/nginx.pid;\n"
                       "error_log %1$s/error.log warn;\n"
                       "events { worker_connections 256; }\n"
                       "http {\n"
                       "    log_format upstream '$upstream_addr $status $request';\n"
                       "    access_log %1$s/access.log upstream;\n"
                       "    client_body_temp_path %1$s/body;\n"
                       "    proxy_temp_path %1$s/proxy;\n"
                       "    fastcgi_temp_path %1$s/fastcgi;\n"
                       "    uwsgi_temp_path %1$s/uwsgi;\n"
                       "    scgi_temp_path %1$s/scgi;\n"
                       "    upstream trail {\n"
                       "        server 127.0.0.1:%2$d max_fails=1 fail_timeout=30s;\n"
                       "        server 127.0.0.1:%3$d max_fails=1 fail_timeout=30s;\n"
                       "        server 127.0.0.1:%4$d max_fails=1 fail_timeout=30s;\n"
                       "        keepalive 16;\n"
                       "    }\n"
                       "    server {\n"
                       "        listen 127.0.0.1:%5$d;\n"
                       "        location / {\n"
                       "            proxy_pass http://trail;\n"
                       "            proxy_http_version 1.1;\n"
                       "            proxy_set_header Connection \"\";\n"
                       "            proxy_set_header Host $host;\n"
                       "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                       "            proxy_connect_timeout 2s;\n"
                       "            proxy_next_upstream error timeout;\n"
                       "        }\n"
                       "    }\n"
                       "}\n",
                       l->dir, n[0].srv.port, n[1].srv.port, n[2].srv.port, l->port);
    CHECK(len > 0 && (size_t)len < sizeof conf);
    char path[700];
    snprintf(path, sizeof path, "%s/nginx.conf", l->dir);
    CHECK_EQ(th_write_file(path, conf, (size_t)len), 0);
    char errlog[700];
    snprintf(errlog, sizeof errlog, "%s/error.log", l->dir);
    pid_t parent = getpid();
    l->pid = fork();
    CHECK(l->pid >= 0);
    if (l->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        execlp("nginx", "nginx", "-p", l->dir, "-c", path, "-e", errlog, (char *)NULL);
        _exit(127);
    }
    /* ready when it accepts a connection */
    for (int i = 0;; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)l->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0) break;
        int st;
        if (waitpid(l->pid, &st, WNOHANG) == l->pid || i > 200) {
            char *e = th_read_file(errlog, NULL);
            test_fail(__FILE__, __LINE__, "nginx did not start: %s", e ? e : "(no error log)");
        }
        usleep(50 * 1000);
    }
}

static void lb_stop(lb *l)
{
    if (l->pid <= 0) return;
    kill(l->pid, SIGTERM);
    int st;
    while (waitpid(l->pid, &st, 0) < 0 && errno == EINTR) {
    }
    l->pid = 0;
}

/* How many requests of nginx's access log the node on port answered (its address followed by
 * the status; a refused try is followed by ", " and the next node's address). */
static int lb_count(const lb *l, int port)
{
    char path[700], needle[32];
    snprintf(path, sizeof path, "%s/access.log", l->dir);
    snprintf(needle, sizeof needle, "127.0.0.1:%d ", port);
    char *log = th_read_file(path, NULL);
    int count = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p++)
        count++;
    free(log);
    return count;
}

TEST_TIMEOUT(e2e_cluster_examples_database_access_and_nginx, 400)
{
    add_example("database-access");
    cu_node n[3];
    start_cluster(n);
    for (int i = 0; i < 3; i++) {
        through("database-access", i, n[i].srv.port);
        ex_check_database_access(n[i].srv.port);
    }

    lb l;
    lb_start(&l, n);
    /* six rounds of the checks (6 requests each) through nginx: round robin reaches every node */
    for (int k = 0; k < 6; k++) {
        fprintf(stderr, "checking database-access through nginx (port %d), round %d\n", l.port,
                k + 1);
        ex_check_database_access(l.port);
    }
    ex_expect(ex_call(l.port, "GET", "/api/healthcheck", "", NULL), 200, NULL, "Ok");
    int before[3];
    for (int i = 0; i < 3; i++) {
        before[i] = lb_count(&l, n[i].srv.port);
        CHECK(before[i] > 0);
    }
    test_report("%d requests through nginx: %d, %d and %d reached the three nodes",
                before[0] + before[1] + before[2], before[0], before[1], before[2]);

    /* a follower stops: nginx passes its share to the others, every check still passes */
    int leader = cu_leader(n, 3), gone = (leader + 1) % 3;
    CHECK_EQ(th_server_stop(&n[gone].srv), 0);
    for (int k = 0; k < 3; k++) {
        fprintf(stderr, "checking database-access through nginx, node %d stopped, round %d\n",
                gone + 1, k + 1);
        ex_check_database_access(l.port);
    }
    int after[3];
    for (int i = 0; i < 3; i++)
        after[i] = lb_count(&l, n[i].srv.port);
    /* the stopped node answered nothing more (a try nginx made on it is logged before the node
     * that answered, "A, B 200", so only answers are counted), the others took its share */
    CHECK_EQ(after[gone], before[gone]);
    for (int i = 0; i < 3; i++)
        if (i != gone) CHECK(after[i] > before[i]);
    char path[700];
    snprintf(path, sizeof path, "%s/access.log", l.dir);
    char *log = th_read_file(path, NULL);
    CHECK(log != NULL);
    CHECK(strstr(log, " 502 ") == NULL && strstr(log, " 504 ") == NULL);
    char tried[32];
    snprintf(tried, sizeof tried, "127.0.0.1:%d, ", n[gone].srv.port);
    int retried = 0;
    for (const char *p = log; (p = strstr(p, tried)); p++)
        retried++;
    test_report("node %d stopped: 18 more requests passed, %d of them tried on it first and "
                "passed on by nginx",
                gone + 1, retried);
    free(log);
    lb_stop(&l);
    for (int i = 0; i < 3; i++)
        if (i != gone) CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* One request on a fresh connection; the status, the body into a fresh string (free()). */
static int ask(int port, const char *method, const char *path, const char *body, char **out)
{
    th_resp r = cu_http(port, method, path, body);
    int status = r.status;
    *out = strdup(r.body ? r.body : "");
    th_resp_free(&r);
    return status;
}

/* A compiled (C) example: its statements go to the leader from every node, as a TS guest's do,
 * and its transaction (tx_begin, a query, an update, COMMIT) runs on a connection to the leader
 * held for it: committed through each node, rolled back for an unknown user. */
TEST_TIMEOUT(e2e_cluster_examples_c_database_access, 600)
{
    const char *root = getenv("TRAIL_ROOT");
    if (!root) root = ".";
    char cmd[4096];
    /* compiled once into n1's cache by `components add`, the cache copied to the others, so that
     * the nodes start without compiling */
    snprintf(cmd, sizeof cmd,
             "set -e; t='%s'; '%s/tools/c-build.sh' '%s/examples/c-database-access' \"$t/c.wasm\" "
             ">/dev/null; for i in 1 2 3; do mkdir -p \"$t/n$i/migrations\"; "
             "cp '%s/examples/c-database-access/migrations/'*.sql \"$t/n$i/migrations/\"; done",
             test_tmpdir(), root, root, root);
    CHECK_EQ(fx_sh(cmd), 0);
    char wasm[700], dir[700];
    snprintf(wasm, sizeof wasm, "%s/c.wasm", test_tmpdir());
    snprintf(dir, sizeof dir, "%s/n1", test_tmpdir());
    const char *add[] = {"components", "add", wasm, "--data-dir", dir, NULL};
    char *out, *err;
    CHECK_EQ(th_run(add, 300000, &out, &err), 0);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd,
             "set -e; t='%s'; for i in 2 3; do mkdir -p \"$t/n$i\"; cp -r \"$t/n1/wasm\" "
             "\"$t/n1/cache\" \"$t/n$i/\"; done",
             test_tmpdir());
    CHECK_EQ(fx_sh(cmd), 0);
    cu_node n[3];
    start_cluster(n);
    char *body;
    int total = 6, done = 3;
    for (int i = 0; i < 3; i++) {
        int port = n[i].srv.port;
        through("c-database-access", i, port);
        CHECK_EQ(ask(port, "GET", "/todos/search?q=%27%20OR%201%3D1%20--", "", &body), 200);
        CHECK_STR_EQ(body, "{\"results\":[]}");
        free(body);
        CHECK_EQ(ask(port, "POST", "/todos/bob@example.com", "Buy bread", &body), 201);
        free(body);
        total++;
        CHECK_EQ(ask(port, "POST", "/todos/nobody@example.com", "x", &body), 404);
        CHECK_STR_EQ(body, "{\"error\":\"No such user\"}");
        free(body);
        /* every node counts the writes made through all of them */
        char want[100];
        snprintf(want, sizeof want, "{\"total\":%d,\"done\":%d,\"pending\":%d}", total, done,
                 total - done);
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(ask(n[k].srv.port, "GET", "/stats/todos", "", &body), 200);
            CHECK_STR_EQ(body, want);
            free(body);
        }
        /* the transaction marks all of bob's pending todos done: at least the one just added */
        CHECK_EQ(ask(port, "POST", "/todos/bob@example.com/done", "", &body), 200);
        long long completed = -1;
        CHECK_EQ(sscanf(body, "{\"completed\":%lld}", &completed), 1);
        free(body);
        CHECK(completed >= 1);
        if (i > 0) CHECK_EQ(completed, 1);
        done += (int)completed;
        snprintf(want, sizeof want, "{\"total\":%d,\"done\":%d,\"pending\":%d}", total, done,
                 total - done);
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(ask(n[k].srv.port, "GET", "/stats/todos", "", &body), 200);
            CHECK_STR_EQ(body, want);
            free(body);
        }
        /* an unknown user: the transaction is rolled back */
        CHECK_EQ(ask(port, "POST", "/todos/nobody@example.com/done", "", &body), 404);
        CHECK_STR_EQ(body, "{\"error\":\"No such user\"}");
        free(body);
    }
    stop_cluster(n);
}
