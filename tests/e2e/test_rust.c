/* Rust guests end to end: `trail components add trailbase-guest-rust`, the project's own
 * `./build.sh` with the real toolchain, `trail run` serving the Quick Start's outputs, dev mode
 * (`./build.sh --watch`) rebuilding on save and trail reloading, a failed build leaving the last
 * component serving, a restart with the compile cache warm; and the Rust examples
 * (examples/rust, built by `make test` into $TRAIL_RUST_DIR): database access, errors, jobs. */
#include "test.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Compiling a module to native code happens before trail listens; on a busy two-core machine it
 * has taken 30 s for one example, so the first start of a server gets this long. */
#define COMPILE_WAIT_MS 400000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static th_resp get(int port, const char *path)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

static th_resp post(int port, const char *path, const char *body)
{
    size_t n = strlen(body) + strlen(path) + 128;
    char *req = malloc(n);
    CHECK(req != NULL);
    snprintf(req, n, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", path,
             strlen(body), body);
    th_resp r;
    int rc = th_request(port, req, &r);
    free(req);
    CHECK_EQ(rc, 0);
    return r;
}

/* Checks status and exact body, then frees r. */
static void expect(th_resp r, int status, const char *body)
{
    CHECK_EQ(r.status, status);
    if (body) CHECK_STR_EQ(r.body, body);
    th_resp_free(&r);
}

/* Polls GET path until its body is want (true) or timeout_ms passes (false). */
static bool wait_body(int port, const char *path, const char *want, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        th_resp r;
        char req[1024];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
        if (th_request(port, req, &r) == 0) {
            bool same = r.status == 200 && strcmp(r.body, want) == 0;
            th_resp_free(&r);
            if (same) return true;
        }
        usleep(200 * 1000);
    }
    return false;
}

TEST_TIMEOUT(e2e_rust_quickstart_from_scratch, 1500)
{
    char depot[700], wasm[800], cmd[4096];
    snprintf(depot, sizeof depot, "%s/traildepot", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/wasm", depot);

    const char *add[] = {"components", "add", "trailbase-guest-rust", "--data-dir", depot, NULL};
    char *out, *err;
    CHECK_EQ(th_run(add, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "Installed trailbase-guest-rust");
    free(out);
    free(err);

    /* the README's build command, with whatever toolchain this machine has first on PATH */
    snprintf(cmd, sizeof cmd, "cd '%s' && ./build.sh > build.log 2>&1", wasm);
    if (fx_sh(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/build.log' >&2", wasm);
        fx_sh(cmd);
        CHECK(!"./build.sh failed");
    }
    snprintf(cmd, sizeof cmd, "grep -q 'wrote dist/component.wasm' '%s/build.log'", wasm);
    CHECK_EQ(fx_sh(cmd), 0);

    th_server s;
    long long t0 = now_ms();
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_WAIT_MS), 0);
    long long first_start_ms = now_ms() - t0;
    expect(get(s.port, "/hello"), 200, "Hello from WASM!");
    th_resp r = get(s.port, "/hello");
    char ct[128];
    CHECK_CONTAINS(th_resp_header(&r, "content-type", ct, sizeof ct), "text/plain");
    th_resp_free(&r);
    expect(get(s.port, "/greet/Alice"), 200, "Hello, Alice!");
    expect(get(s.port, "/greet/Al%20ice"), 200, "Hello, Al ice!");

    long long before = (long long)time(NULL) * 1000;
    r = post(s.port, "/json", "{\"message\":\"test\"}");
    long long after = (long long)time(NULL) * 1000 + 1000;
    CHECK_EQ(r.status, 200);
    long long ts = 0;
    CHECK_EQ(sscanf(r.body, "{\"received\":{\"message\":\"test\"},\"timestamp\":%lld}", &ts), 1);
    CHECK(ts >= before && ts <= after);
    CHECK_CONTAINS(th_resp_header(&r, "content-type", ct, sizeof ct), "application/json");
    th_resp_free(&r);
    /* a body that is not JSON: the SDK's 400 */
    r = post(s.port, "/json", "{\"message\"");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    /* no route */
    r = get(s.port, "/nope");
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);

    /* installed shows the project, built */
    const char *inst[] = {"components", "installed", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(inst, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "trailbase-guest-rust");
    CHECK_CONTAINS(out, "built to dist/component.wasm");
    free(out);
    free(err);

    /* dev mode: ./build.sh --watch rebuilds when src/lib.rs changes; trail reloads */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { setsid ./build.sh --watch > watch.log 2>&1 & echo $! > watch.pid; }",
             wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/watch.pid", wasm);
    char *pidtext = th_read_file(cmd, NULL);
    CHECK(pidtext != NULL);
    pid_t watcher = (pid_t)atoi(pidtext);
    free(pidtext);
    CHECK(watcher > 0);
    /* its first build finds nothing to do */
    long long end = now_ms() + 300000;
    snprintf(cmd, sizeof cmd, "grep -q 'watching src/' '%s/watch.log'", wasm);
    while (fx_sh(cmd) != 0 && now_ms() < end)
        usleep(200 * 1000);
    snprintf(cmd, sizeof cmd, "sed -i 's/Hello from WASM!/Hello again from WASM!/' '%s/src/lib.rs'",
             wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    bool reloaded = wait_body(s.port, "/hello", "Hello again from WASM!", 600000);
    /* a change that does not compile: the build fails, the last component keeps serving */
    snprintf(cmd, sizeof cmd, "printf 'fn broken( {\\n' >> '%s/src/lib.rs'", wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    end = now_ms() + 300000;
    snprintf(cmd, sizeof cmd, "grep -q 'the build failed' '%s/watch.log'", wasm);
    bool failed = false;
    while (!(failed = fx_sh(cmd) == 0) && now_ms() < end)
        usleep(200 * 1000);
    kill(-watcher, SIGTERM);
    if (!reloaded || !failed) {
        snprintf(cmd, sizeof cmd, "cat '%s/watch.log' >&2", wasm);
        fx_sh(cmd);
    }
    CHECK(reloaded);
    CHECK(failed);
    expect(get(s.port, "/hello"), 200, "Hello again from WASM!");
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "compiled to native code in ");
    free(log);

    /* a restart with the compile cache warm serves at once */
    t0 = now_ms();
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    expect(get(s.port, "/hello"), 200, "Hello again from WASM!");
    long long warm_ms = now_ms() - t0;
    CHECK_EQ(th_server_stop(&s), 0);
    log = th_server_stderr(&s);
    CHECK(strstr(log, "compiled to native code") == NULL);
    free(log);
    test_report("first start (compiling) %lld ms; restart with the cache warm to the first "
                "response %lld ms",
                first_start_ms, warm_ms);
}

/* Starts trail on a fresh data directory holding the examples' modules (names without .wasm,
 * from $TRAIL_RUST_DIR) and the migrations (paths under $TRAIL_ROOT, copied in order), with
 * config.textproto (NULL: none) and extra arguments (may be NULL). */
static void start_examples_with(th_server *s, const char *name, const char *const *modules,
                                const char *const *migrations, const char *config,
                                const char *const *extra)
{
    const char *root = getenv("TRAIL_ROOT");
    const char *built = getenv("TRAIL_RUST_DIR");
    if (built == NULL)
        test_fail(__FILE__, __LINE__, "TRAIL_RUST_DIR is not set (make test sets it)");
    char depot[700], cmd[4096];
    snprintf(depot, sizeof depot, "%s/%s", test_tmpdir(), name);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/wasm' '%s/migrations'", depot, depot);
    CHECK_EQ(fx_sh(cmd), 0);
    for (size_t i = 0; modules[i]; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/%s.wasm' '%s/wasm/'", built, modules[i], depot);
        CHECK_EQ(fx_sh(cmd), 0);
    }
    for (size_t i = 0; migrations[i]; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s/migrations/%04zu.sql'", root ? root : ".",
                 migrations[i], depot, i + 1);
        CHECK_EQ(fx_sh(cmd), 0);
    }
    if (config) {
        snprintf(cmd, sizeof cmd, "%s/config.textproto", depot);
        CHECK_EQ(th_write_file(cmd, config, strlen(config)), 0);
    }
    CHECK_EQ(th_server_start_within(s, depot, extra, COMPILE_WAIT_MS), 0);
}

static void start_examples(th_server *s, const char *name, const char *const *modules,
                           const char *const *migrations)
{
    start_examples_with(s, name, modules, migrations, NULL, NULL);
}

/* The database-access and error-handling examples' answers through the trail at port (their
 * data as their migrations leave it: the checks only read, so they pass any number of times). */
static void db_and_errors_checks(int port)
{
    /* database access: the same outputs as the TypeScript example */
    expect(get(port, "/stats/todos"), 200, "{\"total\":6,\"done\":3,\"pending\":3}");
    th_resp r = get(port, "/todos/search?q=Buy");
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"Buy milk\"");
    CHECK_CONTAINS(r.body, "\"Buy coffee beans\"");
    CHECK(strstr(r.body, "Book flights") == NULL);
    th_resp_free(&r);
    expect(get(port, "/todos/search?q=%27%20OR%201%3D1%20--"), 200, "{\"results\":[]}");
    expect(get(port, "/reports/user-activity"), 200,
           "{\"topUsers\":[[\"alice@example.com\",3,2],[\"bob@example.com\",2,1],"
           "[\"carol@example.com\",1,0]]}");
    /* a BLOB from one query (the _user id) as the parameter of the next */
    expect(get(port, "/todos/user/bob@example.com"), 200,
           "{\"todos\":[\"Buy coffee beans\",\"Water the plants\"]}");
    expect(get(port, "/todos/user/nobody@example.com"), 404, "{\"error\":\"No such user\"}");

    /* errors */
    expect(get(port, "/api/risky"), 500, "{\"error\":\"Internal server error\"}");
    r = get(port, "/api/slow");
    CHECK_EQ(r.status, 200);
    long duration = -1, rows = -1;
    CHECK_EQ(sscanf(r.body, "{\"duration\":%ld,\"rows\":%ld}", &duration, &rows), 2);
    CHECK_EQ(rows, 10000);
    CHECK(duration >= 0);
    th_resp_free(&r);
    expect(post(port, "/api/resource", "{\"a\":1}"), 200, "{\"success\":true}");
    r = post(port, "/api/resource", "not json");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    /* JSON nested deeper than the SDK parses (json::MAX_DEPTH, 128): a 400, not a deep recursion */
    char deep[2 * 5000 + 1];
    memset(deep, '[', 5000);
    memset(deep + 5000, ']', 5000);
    deep[10000] = '\0';
    r = post(port, "/api/resource", deep);
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "JSON nested too deeply");
    th_resp_free(&r);
    /* an error passed up with `?` is a 500 with SQLite's message */
    expect(get(port, "/api/question-mark"), 500, "{\"error\":\"no such column: nope\"}");
    /* a panic is a trap: 500, the message logged, and the next request gets a fresh instance */
    for (int i = 0; i < 3; i++) {
        r = get(port, "/api/panic");
        CHECK_EQ(r.status, 500);
        CHECK_CONTAINS(r.body, "WebAssembly trap");
        th_resp_free(&r);
        expect(post(port, "/api/resource", "{}"), 200, "{\"success\":true}");
    }
    expect(get(port, "/stats/todos"), 200, "{\"total\":6,\"done\":3,\"pending\":3}");
}

TEST_TIMEOUT(e2e_rust_examples_database_and_errors, 900)
{
    th_server s;
    const char *const modules[] = {"database_access", "error_handling", NULL};
    const char *const migrations[] = {"examples/database-access/migrations/0001_todos.sql",
                                      "examples/error-handling/migrations/0001_large_table.sql",
                                      NULL};
    start_examples(&s, "rust-db", modules, migrations);

    db_and_errors_checks(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "ERROR [WASM] Query failed: no such table: nonexistent_table");
    CHECK_CONTAINS(log, "INFO  [WASM] Query took ");
    CHECK_CONTAINS(log, "ERROR [WASM] Error: invalid JSON in request body: ");
    CHECK_CONTAINS(log, "ERROR [WASM] panic: panicked at 'index out of bounds");
    free(log);
}

/* The same examples against a three-node cluster: each node's data directory holds the modules
 * and migrations (applied once, through the leader), and the checks pass through every node in
 * turn: their statements run on the leader whichever node the request came to. */
TEST_TIMEOUT(e2e_cluster_rust_examples_database_and_errors, 900)
{
    const char *root = getenv("TRAIL_ROOT");
    const char *built = getenv("TRAIL_RUST_DIR");
    CHECK(root != NULL && built != NULL);
    /* compiled once into the shared cache by one trail, so that the nodes start at once */
    th_server warm;
    const char *const modules[] = {"database_access", "error_handling", NULL};
    const char *const migrations[] = {"examples/database-access/migrations/0001_todos.sql",
                                      "examples/error-handling/migrations/0001_large_table.sql",
                                      NULL};
    start_examples(&warm, "warm", modules, migrations);
    CHECK_EQ(th_server_stop(&warm), 0);
    char cmd[4096];
    for (int i = 1; i <= 3; i++) {
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/n%d' && cp -r '%s/warm/wasm' '%s/warm/migrations' '%s/warm/cache' "
                 "'%s/n%d/'",
                 test_tmpdir(), i, test_tmpdir(), test_tmpdir(), test_tmpdir(), test_tmpdir(), i);
        CHECK_EQ(fx_sh(cmd), 0);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);
    for (int i = 0; i < 3; i++) {
        fprintf(stderr, "checking rust database-access and error-handling through node %d\n", i + 1);
        db_and_errors_checks(n[i].srv.port);
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

/* Runs `trail jobs run NAME` against the server's data directory; its exit status. */
static int run_job(const th_server *s, const char *name, char **out)
{
    const char *args[] = {"jobs", "run", name, "--data-dir", s->data_dir, NULL};
    char *err;
    int rc = th_run(args, 60000, out, &err);
    free(err);
    return rc;
}

TEST_TIMEOUT(e2e_rust_example_jobs, 900)
{
    th_server s;
    const char *const modules[] = {"jobs", NULL};
    const char *const migrations[] = {"examples/rust/jobs/migrations/0001_todos.sql", NULL};
    start_examples(&s, "rust-jobs", modules, migrations);

    /* the schedules, as trail reads them from the manifest */
    const char *list[] = {"jobs", "list", "--data-dir", s.data_dir, NULL};
    char *out, *err;
    CHECK_EQ(th_run(list, 60000, &out, &err), 0);
    CHECK(strstr(out, "cleanup-old-todos") && strstr(out, "* * * * *"));
    CHECK(strstr(out, "send-reminders") && strstr(out, "0 * * * *"));
    CHECK(strstr(out, "daily-report") && strstr(out, "0 0 * * *"));
    CHECK(strstr(out, "weekly-cleanup") && strstr(out, "0 0 * * 0"));
    CHECK(strstr(out, "every-ten-minutes") && strstr(out, "0 */10 * * * *"));
    free(out);
    free(err);

    expect(get(s.port, "/todos/count"), 200, "5");
    CHECK_EQ(run_job(&s, "cleanup-old-todos", &out), 0);
    CHECK_CONTAINS(out, "ok (ran in the server");
    free(out);
    /* the two completed todos older than a week are gone; the one done yesterday stays */
    expect(get(s.port, "/todos/count"), 200, "3");
    CHECK_EQ(run_job(&s, "send-reminders", &out), 0);
    free(out);
    CHECK_EQ(run_job(&s, "daily-report", &out), 0);
    free(out);
    CHECK_EQ(run_job(&s, "weekly-cleanup", &out), 0);
    free(out);
    CHECK_EQ(run_job(&s, "always-fails", &out), 1);
    free(out);

    CHECK_EQ(th_run(list, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "FAILED at ");
    CHECK_CONTAINS(out, "the mail server is down");
    free(out);
    free(err);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "INFO  [WASM] Cleaned up 2 old completed todos");
    CHECK_CONTAINS(log, "INFO  [WASM] Reminder: File the taxes is overdue for bob@example.com");
    CHECK(strstr(log, "Plan the party is overdue") == NULL);
    CHECK_CONTAINS(log, "INFO  [WASM] Daily report: 3 todos created today");
    CHECK_CONTAINS(log, "INFO  [WASM] Weekly cleanup started");
    free(log);
}

/* The crate's own unit tests (cargo test on the host, against its stand-in for trail's imports),
 * on a copy of the crate, with the first toolchain found as tools/rust-build.sh looks for one. */
TEST_TIMEOUT(rust_sdk_unit_tests, 900)
{
    const char *root = getenv("TRAIL_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/sdk/rust/trailbase-wasm' '%s/crate' && rm -f '%s/crate/Cargo.lock' && "
             "cd '%s/crate' && for pair in \"${CARGO:-cargo} ${RUSTC:-rustc}\" "
             "\"/usr/bin/cargo /usr/bin/rustc\"; do set -- $pair; "
             "command -v \"$1\" >/dev/null 2>&1 && \"$2\" --version >/dev/null 2>&1 || continue; "
             "RUSTC=$2 \"$1\" test --quiet > '%s/cargo-test.log' 2>&1; exit $?; done; exit 127",
             root ? root : ".", test_tmpdir(), test_tmpdir(), test_tmpdir(), test_tmpdir());
    int rc = fx_sh(cmd);
    char path[700];
    snprintf(path, sizeof path, "%s/cargo-test.log", test_tmpdir());
    char *log = th_read_file(path, NULL);
    if (rc != 0 && log) fprintf(stderr, "%s\n", log);
    CHECK_EQ(rc, 0);
    CHECK(log != NULL);
    CHECK_CONTAINS(log, "test result: ok.");
    CHECK(strstr(log, "FAILED") == NULL);
    free(log);
}

TEST_TIMEOUT(e2e_rust_example_async_operations, 900)
{
    char root_fs[700], path[800];
    snprintf(root_fs, sizeof root_fs, "%s/rootfs", test_tmpdir());
    snprintf(path, sizeof path, "mkdir -p '%s'", root_fs);
    CHECK_EQ(fx_sh(path), 0);
    snprintf(path, sizeof path, "%s/hello.txt", root_fs);
    CHECK_EQ(th_write_file(path, "from the root", 13), 0);
    th_server s;
    const char *const modules[] = {"async_operations", NULL};
    const char *const migrations[] = {"examples/async-operations/migrations/0001_dashboard.sql",
                                      NULL};
    const char *const extra[] = {"--runtime-root-fs", root_fs, NULL};
    start_examples_with(&s, "rust-async", modules, migrations,
                        "fetch {\n  allowed_private_hosts: \"127.0.0.1\"\n}\n", extra);

    long long t0 = now_ms();
    expect(get(s.port, "/delayed-response"), 200, "Delayed by 1 second");
    CHECK(now_ms() - t0 >= 1000);
    /* the periodic task runs on after the response and stops itself after 10 rounds */
    expect(get(s.port, "/periodic"), 200, "Started periodic task");
    expect(get(s.port, "/dashboard"), 200, "{\"users\":2,\"todos\":3,\"articles\":4}");

    /* transactions: committed, rolled back, dropped half-way (rolled back) */
    expect(post(s.port, "/articles/commit", "A"), 200, "5 inside, 5 after");
    expect(post(s.port, "/articles/rollback", "B"), 200, "6 inside, 5 after");
    expect(post(s.port, "/articles/drop", "C"), 200, "6 inside, 5 after");
    th_resp r = post(s.port, "/articles/other", "D");
    CHECK_EQ(r.status, 400);
    th_resp_free(&r);
    /* the 400 came after the insert: its transaction was dropped too */
    expect(get(s.port, "/dashboard"), 200, "{\"users\":2,\"todos\":3,\"articles\":5}");

    /* fetch: this server itself (127.0.0.1 is allowed), and a private host that is not */
    char url[200];
    snprintf(url, sizeof url, "/fetch?url=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fdashboard", s.port);
    expect(get(s.port, url), 200, "200 {\"users\":2,\"todos\":3,\"articles\":5}");
    r = get(s.port, "/fetch?url=http%3A%2F%2Flocalhost%3A9%2F");
    CHECK_EQ(r.status, 502);
    CHECK_CONTAINS(r.body, "fetch failed: ");
    CHECK_CONTAINS(r.body, "allowed_private_hosts");
    th_resp_free(&r);

    /* files under --runtime-root-fs, and nothing outside it */
    expect(get(s.port, "/file?path=/hello.txt"), 200, "from the root");
    r = get(s.port, "/file?path=/nope.txt");
    CHECK_EQ(r.status, 404);
    CHECK_CONTAINS(r.body, "ENOENT");
    th_resp_free(&r);
    r = get(s.port, "/file?path=/../../../../etc/passwd");
    CHECK(r.status == 403 || r.status == 404);
    CHECK(strstr(r.body, "root:x:0") == NULL); /* not /etc/passwd */
    th_resp_free(&r);

    usleep(3500 * 1000);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "INFO  [WASM] Callback #0\n");
    CHECK_CONTAINS(log, "INFO  [WASM] Callback #9\n");
    CHECK(strstr(log, "Callback #10") == NULL);
    free(log);
}
