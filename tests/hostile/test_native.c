/* The hostile battery's compiled twins: the cases of runaway guests that apply to compiled code,
 * against the real server (ASan build) serving tests/data/components/native_hostile (C, built by
 * the C SDK), with the battery's limits and a healthy load on other connections. */
#include "hostile/hostile.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/fixtures.h"
#include "e2e/origin.h"
#include "test.h"

#define CPU_MSG      "runtime.cpu_budget_ms"
#define DEADLINE_MSG "runtime.deadline_ms"
#define TRAP_MSG     "WebAssembly trap"

/* The battery's compiled component, its compiled object shared by the battery's tests (the
 * depot's cache is a link to one under the build directory): the first test compiles it, the
 * others load it. Compiling is tested by the e2e tests, on fresh data directories. */
static void serve_native(void)
{
    hz_set_component("native_hostile");
    char cache[1000], link[1100], scratch[900], wasm[1000];
    snprintf(cache, sizeof cache, "%s/build/test-native-cache", getenv("TRAIL_ROOT"));
    snprintf(link, sizeof link, "%s/cache", hz_depot());
    mkdir(cache, 0755);
    mkdir(hz_depot(), 0755);
    CHECK(symlink(cache, link) == 0 || access(link, F_OK) == 0);
    /* hz_start's server waits 20 s for its start, which a compile on a busy machine may take:
     * `components add` fills the shared cache first (at once when it is warm) */
    snprintf(scratch, sizeof scratch, "%s/warm", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/native_hostile.wasm", test_tmpdir());
    fx_build_component("native_hostile", wasm);
    mkdir(scratch, 0755);
    snprintf(link, sizeof link, "%s/cache", scratch);
    CHECK(symlink(cache, link) == 0 || access(link, F_OK) == 0);
    const char *add[] = {"components", "add", wasm, "--data-dir", scratch, NULL};
    char *out = NULL, *err = NULL;
    int st = th_run(add, 240000, &out, &err);
    if (st != 0) fprintf(stderr, "%s%s", out ? out : "", err ? err : "");
    CHECK_EQ(st, 0);
    free(out);
    free(err);
}

static void get_case(const th_server *s, const char *label, const char *path, int status,
                     const char *want, int repeats)
{
    hz_case c = {.label = label, .method = "GET", .path = path, .want_status = status,
                 .want_body = want, .repeats = repeats};
    hz_attack(s, &c);
}

static void check_log(th_server *s, const char *what)
{
    char *log = th_server_stderr(s);
    CHECK_CONTAINS(log, what);
    free(log);
}

TEST_TIMEOUT(hostile_native_runaway, 480)
{
    th_server s;
    serve_native();
    hz_start(&s, NULL, NULL);
    get_case(&s, "compiled: endless loop", "/spin", 503, CPU_MSG, 3);
    hz_check_recreated(&s, "/spin", 503, false);
    get_case(&s, "compiled: trap (unreachable)", "/trap", 500, TRAP_MSG, 3);
    hz_check_recreated(&s, "/trap", 500, false);
    get_case(&s, "compiled: load out of bounds", "/oob", 500, TRAP_MSG, 3);
    hz_check_recreated(&s, "/oob", 500, false);
    get_case(&s, "compiled: recursion without end", "/recurse", 500, TRAP_MSG, 3);
    hz_check_recreated(&s, "/recurse", 500, false);
    get_case(&s, "compiled: never answers", "/never", 503, DEADLINE_MSG, 2);
    hz_check_recreated(&s, "/never", 503, true);
    get_case(&s, "compiled: host asked to read outside memory", "/badptr", 200, "-1", 3);
    get_case(&s, "compiled: a response head of 1,000,000 header fields", "/many-headers", 500,
             "the handler returned an invalid response", 3);
    get_case(&s, "compiled: a statement with 1,000,000 parameters", "/many-params", 200,
             "1 malformed SQL parameters", 3);
    check_log(&s, "exceeded its CPU time limit of 200 ms (runtime.cpu_budget_ms); the instance "
                  "is replaced");
    check_log(&s, "WebAssembly trap): unreachable executed; the instance is replaced");
    check_log(&s, "WebAssembly trap): out of bounds memory access; the instance is replaced");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Callbacks that each stay within the CPU budget but, re-armed again and again, would take the
 * worker: the instance is replaced once they use more than half of its CPU (deadline far away,
 * so that it is this limit that ends them). */
TEST_TIMEOUT(hostile_native_callback_hog, 480)
{
    th_server s;
    serve_native();
    hz_start(&s, "runtime {\n  memory_limit_mb: 32\n  cpu_budget_ms: 200\n  deadline_ms: 30000\n}\n",
             NULL);
    get_case(&s, "compiled: callbacks hogging the worker", "/hog", 503,
             "callbacks used more than 50% of its worker's CPU", 2);
    check_log(&s, "callbacks used more than 50% of its worker's CPU (over 250 ms within 1000 ms); "
                  "the instance is replaced");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(hostile_native_sql, 480)
{
    th_server s;
    serve_native();
    hz_start(&s, NULL, NULL);
    get_case(&s, "compiled: SQL reading trail's tables", "/sql/trail", 500,
             "not authorized: _job_runs", 3);
    get_case(&s, "compiled: SQL writing trail's tables", "/sql/write-trail", 500,
             "not authorized: _user", 3);
    get_case(&s, "compiled: SQL without end", "/sql/forever", 500,
             "interrupted: the SQL statement ran past its deadline", 2);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* fetch() from compiled code goes through the same policy: loopback by a name that is not
 * listed, private, IPv6 loopback, link-local (cloud metadata) and unspecified addresses are
 * refused before any packet;
 * the listed 127.0.0.1 is reached (an origin of the test answers). */
TEST_TIMEOUT(hostile_native_fetch_private, 480)
{
    static const th_origin_route routes[] = {{"/", 200, "text/plain", "hi", 2, 0}};
    th_origin o;
    CHECK_EQ(th_origin_start(&o, routes, 1), 0);
    th_server s;
    serve_native();
    hz_start(&s, NULL, NULL);
    char path[200];
    static const char *const refused[] = {"localhost", "10.0.0.7", "[::1]", "169.254.169.254",
                                          "0.0.0.0"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char url[100];
        snprintf(url, sizeof url, "http://%s:%d/", refused[i], o.port);
        snprintf(path, sizeof path, "/fetch?url=%s", url);
        hz_case c = {.label = "compiled: fetch to a non-public address", .method = "GET",
                     .path = path, .want_status = 502,
                     .want_body = "fetch.allowed_private_hosts", .repeats = 1};
        hz_attack(&s, &c);
    }
    snprintf(path, sizeof path, "/fetch?url=http://127.0.0.1:%d/", o.port);
    th_resp r;
    CHECK_EQ(hz_call(s.port, "GET", path, NULL, 0, &r, NULL), 200);
    CHECK_STR_EQ(r.body, "200 hi");
    th_resp_free(&r);
    CHECK_EQ(o.requests, 1);
    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&o);
}

/* The instance's linear memory stops at runtime.memory_limit_mb: malloc fails there and the
 * guest goes on. */
TEST_TIMEOUT(hostile_native_memory_cap, 480)
{
    th_server s;
    serve_native();
    hz_start(&s, HZ_MEMORY_CASES_CFG, NULL);
    get_case(&s, "compiled: allocation without bound", "/grow", 200, "allocated ", 3);
    th_resp r;
    CHECK_EQ(hz_call(s.port, "GET", "/grow", NULL, 0, &r, NULL), 200);
    long mib = -1;
    CHECK_EQ(sscanf(r.body, "allocated %ld MiB", &mib), 1);
    th_resp_free(&r);
    test_report("compiled: malloc stopped after %ld MiB with memory_limit_mb 32", mib);
    CHECK(mib >= 16);
    CHECK(mib < 32);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Guests waiting on a timer or on another connection's write lock do not hold their worker:
 * other requests are answered at once meanwhile. */
TEST_TIMEOUT(hostile_native_waiting_guests, 480)
{
    th_server s;
    serve_native();
    /* a deadline beyond the lock's 1.5 s */
    hz_start(&s, "runtime {\n  memory_limit_mb: 32\n  cpu_budget_ms: 200\n  deadline_ms: 10000\n}\n",
             (const char *const[]){"--runtime-threads", "1", NULL});
    /* eight 500 ms sleeps at once on one worker, and GET /ok between them */
    th_conn c[8];
    double t0 = hz_now_ms();
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(th_conn_open(&c[i], s.port), 0);
        CHECK_EQ(th_conn_send_str(&c[i], "GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    }
    double worst_ok = 0;
    for (int i = 0; i < 5; i++) {
        th_resp r;
        double ms = 0;
        CHECK_EQ(hz_call(s.port, "GET", "/ok", NULL, 0, &r, &ms), 200);
        th_resp_free(&r);
        if (ms > worst_ok) worst_ok = ms;
    }
    for (int i = 0; i < 8; i++) {
        th_resp r;
        CHECK_EQ(th_conn_read(&c[i], &r, false, 10000), 0);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "slept");
        th_resp_free(&r);
        th_conn_close(&c[i]);
    }
    double all_ms = hz_now_ms() - t0;

    /* another connection holds the write lock for 1.5 s while the guest inserts */
    char db_path[1000];
    snprintf(db_path, sizeof db_path, "%s/data/main.db", hz_depot());
    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open(db_path, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "CREATE TABLE native_notes (id INTEGER PRIMARY KEY, body TEXT)",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO native_notes (body) VALUES ('x')",
                          NULL, NULL, NULL),
             SQLITE_OK);
    th_conn w;
    CHECK_EQ(th_conn_open(&w, s.port), 0);
    double t1 = hz_now_ms();
    CHECK_EQ(th_conn_send_str(&w, "POST /sql/insert HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                  "0\r\n\r\n"),
             0);
    double worst_locked = 0;
    while (hz_now_ms() - t1 < 1500) {
        th_resp r;
        double ms = 0;
        CHECK_EQ(hz_call(s.port, "GET", "/ok", NULL, 0, &r, &ms), 200);
        th_resp_free(&r);
        if (ms > worst_locked) worst_locked = ms;
        usleep(50000);
    }
    CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    th_resp r;
    CHECK_EQ(th_conn_read(&w, &r, false, 10000), 0);
    double insert_ms = hz_now_ms() - t1;
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "changed 1");
    th_resp_free(&r);
    th_conn_close(&w);
    sqlite3_close(db);
    test_report("compiled: 8 sleeps of 500 ms on one worker done in %.0f ms, GET /ok meanwhile "
                "at most %.0f ms; an insert behind another connection's write lock (1.5 s) "
                "answered after %.0f ms, GET /ok meanwhile at most %.0f ms",
                all_ms, worst_ok, insert_ms, worst_locked);
    CHECK(all_ms < 3500); /* one after another they would take 4000 ms */
    CHECK(worst_ok < 400);
    CHECK(insert_ms >= 1400);
    CHECK(worst_locked < 1000);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* A module over the size trail compiles is refused at load, naming the limit. */
TEST_TIMEOUT(hostile_native_huge_module, 120)
{
    char dir[800], path[900];
    snprintf(dir, sizeof dir, "%s/huge", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/huge.wasm", test_tmpdir());
    /* a well-framed module exporting trail_http, padded by a 65 MiB custom section */
    static const unsigned char head[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,             /* magic, version */
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                         /* type: () -> () */
        0x03, 0x02, 0x01, 0x00,                                     /* one function */
        0x07, 0x0e, 0x01, 0x0a, 't', 'r', 'a', 'i', 'l', '_', 'h', 't', 't', 'p', 0x00, 0x00,
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                         /* its body */
    };
    size_t pad = (size_t)65 << 20;
    unsigned char sec[8] = {0x00, (unsigned char)(0x80 | ((pad + 2) & 0x7f)),
                            (unsigned char)(0x80 | (((pad + 2) >> 7) & 0x7f)),
                            (unsigned char)(0x80 | (((pad + 2) >> 14) & 0x7f)),
                            (unsigned char)((pad + 2) >> 21), 0x01, 'x'};
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fwrite(head, 1, sizeof head, f);
    fwrite(sec, 1, 7, f);
    char *zeros = calloc(1, pad);
    fwrite(zeros, 1, pad, f);
    free(zeros);
    fclose(f);
    const char *args[] = {"components", "add", path, "--data-dir", dir, NULL};
    char *out = NULL, *err = NULL;
    int st = th_run(args, 60000, &out, &err);
    test_report("compiled: a 65 MiB module: `components add` exits %d: %.200s", st, err);
    CHECK_EQ(st, 1);
    CHECK_CONTAINS(err, "more than the 64 MiB trail compiles");
    free(out);
    free(err);
}
