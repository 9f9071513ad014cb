/* Compiled components end to end: the C Quick Start from `trail components add
 * trailbase-guest-c` and its Makefile, the C database example, hot reload of a compiled
 * component, `components add/installed/remove` of a .wasm file, jobs, and a restart with the
 * compile cache warm. Every component is built by the real C SDK (clang, wasi-libc) and compiled
 * by the real trail (wasm2c, cc). */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* GET path; the status, the body in body (cap bytes). */
static int get(int port, const char *path, char *body, size_t cap)
{
    char raw[600];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    if (th_request(port, raw, &r) != 0) return -1;
    snprintf(body, cap, "%s", r.body);
    int st = r.status;
    th_resp_free(&r);
    return st;
}

/* Writes the C source src as DIR/main.c and builds it with tools/c-build.sh into out. */
static void build_c(const char *src, const char *out)
{
    char dir[800], path[900], cmd[4096];
    snprintf(dir, sizeof dir, "%s/csrc-%d", test_tmpdir(), (int)(now_ms() * 1000) % 1000000);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/main.c", dir);
    CHECK_EQ(th_write_file(path, src, strlen(src)), 0);
    snprintf(cmd, sizeof cmd, "'%s/tools/c-build.sh' '%s' '%s'", getenv("TRAIL_ROOT"), dir, out);
    CHECK_EQ(fx_sh(cmd), 0);
}

/* A component answering GET /version with `text`, and running job "tick" (hourly), which
 * inserts a row into ticks. */
static const char versioned[] =
    "#define TRAILBASE_IMPLEMENTATION\n"
    "#include \"trailbase.h\"\n"
    "static void version(tb_request *req) { tb_respond_text(req, 200, VERSION); }\n"
    "static void ticked(int64_t n, const char *error, void *ud) { tb_run_done(ud, error); (void)n; }\n"
    "static void tick(tb_run *run) {\n"
    "    tb_log(1, \"job %s runs\", tb_run_name(run));\n"
    "    tb_db_execute(\"INSERT INTO ticks (at) VALUES (?)\", (tb_value[]){tb_int(tb_now_ms())}, 1,\n"
    "                  ticked, run);\n"
    "}\n"
    "void tb_init(void) { tb_route(\"GET\", \"/version\", version); tb_job(\"tick\", \"@hourly\", tick); }\n";

static void build_versioned(const char *version, const char *out)
{
    char src[sizeof versioned + 100];
    snprintf(src, sizeof src, "#define VERSION \"%s\"\n%s", version, versioned);
    build_c(src, out);
}

/* A start that compiles a component may take long on a busy machine. */
#define COMPILE_START_MS 240000

TEST_TIMEOUT(e2e_native_quickstart, 400)
{
    char depot[700], wasm[800], cmd[2048];
    snprintf(depot, sizeof depot, "%s/traildepot", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/wasm", depot);
    const char *list[] = {"components", "list", NULL};
    char *out, *err;
    CHECK_EQ(th_run(list, 20000, &out, &err), 0);
    CHECK_CONTAINS(out, "- trailbase-guest-c (C runtime)\n");
    free(out);
    free(err);

    const char *add[] = {"components", "add", "trailbase-guest-c", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(add, 20000, &out, &err), 0);
    CHECK_CONTAINS(out, "Installed trailbase-guest-c");
    free(out);
    free(err);
    /* a second add refuses to overwrite the project */
    CHECK_EQ(th_run(add, 20000, &out, &err), 1);
    CHECK_CONTAINS(err, "exists already");
    free(out);
    free(err);
    /* not beside a TypeScript project: both would build dist/component.wasm */
    char other[800];
    snprintf(other, sizeof other, "%s/ts", test_tmpdir());
    const char *add_ts[] = {"components", "add", "trailbase-guest-ts", "--data-dir", other, NULL};
    CHECK_EQ(th_run(add_ts, 20000, &out, &err), 0);
    free(out);
    free(err);
    const char *add_c[] = {"components", "add", "trailbase-guest-c", "--data-dir", other, NULL};
    CHECK_EQ(th_run(add_c, 20000, &out, &err), 1);
    CHECK_CONTAINS(err, "holds another project (package.json)");
    free(out);
    free(err);
    /* the documented build: make in the project */
    snprintf(cmd, sizeof cmd, "make -s -C '%s' >/dev/null", wasm);
    CHECK_EQ(fx_sh(cmd), 0);

    th_server s;
    double t0 = now_ms();
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_START_MS), 0);
    double start_ms = now_ms() - t0;
    char body[512];
    CHECK_EQ(get(s.port, "/hello", body, sizeof body), 200);
    CHECK_STR_EQ(body, "Hello from C!");
    CHECK_EQ(get(s.port, "/greet/Alice", body, sizeof body), 200);
    CHECK_STR_EQ(body, "Hello, Alice!");
    CHECK_EQ(get(s.port, "/greet/J%C3%BCrgen%20B", body, sizeof body), 200);
    CHECK_STR_EQ(body, "Hello, J\xC3\xBCrgen B!");
    th_resp r;
    long long before = (long long)time(NULL) * 1000;
    CHECK_EQ(th_request(s.port,
                        "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n\r\n"
                        "{\"message\":\"test\"}",
                        &r),
             0);
    long long after = (long long)time(NULL) * 1000 + 1000;
    CHECK_EQ(r.status, 200);
    long long ts = 0;
    CHECK_EQ(sscanf(r.body, "{\"received\":{\"message\":\"test\"},\"timestamp\":%lld}", &ts), 1);
    CHECK(ts >= before && ts <= after);
    char ct[128];
    CHECK_CONTAINS(th_resp_header(&r, "content-type", ct, sizeof ct), "application/json");
    th_resp_free(&r);
    CHECK_EQ(th_request(s.port,
                        "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{bad", &r),
             0);
    CHECK_EQ(r.status, 400);
    CHECK_STR_EQ(r.body, "{\"error\":\"the body is not valid JSON\"}");
    th_resp_free(&r);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "compiled to native code in");
    free(log);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("C Quick Start: first start (compiling the component) %.0f ms", start_ms);

    const char *inst[] = {"components", "installed", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(inst, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "dist/component.wasm");
    CHECK_CONTAINS(out, "compiled");
    CHECK_CONTAINS(out, "route GET     /greet/:name\n");
    free(out);
    free(err);
    const char *rm[] = {"components", "remove", "trailbase-guest-c", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(rm, 20000, &out, &err), 0);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s/main.c", wasm);
    CHECK(access(cmd, F_OK) != 0);
}

TEST_TIMEOUT(e2e_native_database_example, 400)
{
    /* compiled first (fx_start_app's server waits 20 s for its start): `components add` of the
     * same build into the same data directory fills its cache */
    char depot[700], wasm[800], cmd[2048];
    snprintf(depot, sizeof depot, "%s/c-database-access", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/c-database-access.wasm", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/tools/c-build.sh' '%s/examples/c-database-access' '%s'",
             getenv("TRAIL_ROOT"), getenv("TRAIL_ROOT"), wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    const char *add[] = {"components", "add", wasm, "--data-dir", depot, NULL};
    char *out, *err;
    CHECK_EQ(th_run(add, COMPILE_START_MS, &out, &err), 0);
    free(out);
    free(err);
    th_server s;
    fx_start_app(&s, "examples/c-database-access", NULL, NULL);
    char body[512];
    CHECK_EQ(get(s.port, "/stats/todos", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"total\":6,\"done\":3,\"pending\":3}");
    CHECK_EQ(get(s.port, "/todos/search?q=Buy", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"results\":[\"Buy milk\",\"Buy coffee beans\"]}");
    CHECK_EQ(get(s.port, "/todos/search?q=%27%20OR%201%3D1%20--", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"results\":[]}");
    th_resp r;
    CHECK_EQ(th_request(s.port,
                        "POST /todos/bob@example.com HTTP/1.1\r\nHost: x\r\nContent-Length: "
                        "9\r\n\r\nBuy bread",
                        &r),
             0);
    CHECK_EQ(r.status, 201);
    th_resp_free(&r);
    CHECK_EQ(th_request(s.port,
                        "POST /todos/nobody@example.com HTTP/1.1\r\nHost: x\r\nContent-Length: "
                        "1\r\n\r\nx",
                        &r),
             0);
    CHECK_EQ(r.status, 404);
    CHECK_STR_EQ(r.body, "{\"error\":\"No such user\"}");
    th_resp_free(&r);
    CHECK_EQ(get(s.port, "/stats/todos", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"total\":7,\"done\":3,\"pending\":4}");
    CHECK_EQ(get(s.port, "/todos/search?q=bread", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"results\":[\"Buy bread\"]}");
    /* a transaction: select the user, update their todos, commit */
    CHECK_EQ(th_request(s.port,
                        "POST /todos/bob@example.com/done HTTP/1.1\r\nHost: x\r\nContent-Length: "
                        "0\r\n\r\n",
                        &r),
             0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "{\"completed\":2}");
    th_resp_free(&r);
    CHECK_EQ(th_request(s.port,
                        "POST /todos/nobody@example.com/done HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 0\r\n\r\n",
                        &r),
             0);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
    CHECK_EQ(get(s.port, "/stats/todos", body, sizeof body), 200);
    CHECK_STR_EQ(body, "{\"total\":7,\"done\":5,\"pending\":2}");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* components add FILE compiles it (the cache is warm for the server), installed lists it,
 * the server runs its job on `trail jobs run`, a new file is picked up by hot reload, remove
 * takes it away; a restart with the cache warm compiles nothing. */
TEST_TIMEOUT(e2e_native_lifecycle, 600)
{
    char depot[700], v1[800], v2[800], path[900], cmd[4096];
    snprintf(depot, sizeof depot, "%s/depot", test_tmpdir());
    snprintf(v1, sizeof v1, "%s/v1/clock.wasm", test_tmpdir());
    snprintf(v2, sizeof v2, "%s/v2/clock.wasm", test_tmpdir());
    build_versioned("v1", v1);
    build_versioned("v2", v2);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/migrations' && printf 'CREATE TABLE ticks (at "
                              "INTEGER);\\n' > '%s/migrations/0001_ticks.sql'",
             depot, depot);
    CHECK_EQ(fx_sh(cmd), 0);

    const char *add[] = {"components", "add", v1, "--data-dir", depot, NULL};
    char *out, *err;
    double t0 = now_ms();
    CHECK_EQ(th_run(add, COMPILE_START_MS, &out, &err), 0);
    double add_ms = now_ms() - t0;
    CHECK_CONTAINS(out, "Compiled ");
    CHECK_CONTAINS(out, "a compiled component");
    free(out);
    free(err);
    const char *inst[] = {"components", "installed", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(inst, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "clock.wasm");
    CHECK_CONTAINS(out, "route GET     /version\n");
    CHECK_CONTAINS(out, "job   tick");
    free(out);
    free(err);

    /* the server starts from the cache `add` filled */
    th_server s;
    t0 = now_ms();
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_START_MS), 0);
    char body[256];
    CHECK_EQ(get(s.port, "/version", body, sizeof body), 200);
    double first_ms = now_ms() - t0;
    CHECK_STR_EQ(body, "v1");
    char *log = th_server_stderr(&s);
    CHECK(strstr(log, "compiled to native code") == NULL);
    free(log);

    /* the job, run by the server */
    const char *run[] = {"jobs", "run", "tick", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(run, 60000, &out, &err), 0);
    free(out);
    free(err);
    log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] job tick runs");
    free(log);

    /* hot reload: v2 over v1 */
    snprintf(path, sizeof path, "%s/wasm/clock.wasm", depot);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", v2, path, path, path);
    t0 = now_ms();
    CHECK_EQ(fx_sh(cmd), 0);
    bool reloaded = false;
    while (now_ms() - t0 < COMPILE_START_MS) {
        if (get(s.port, "/version", body, sizeof body) == 200 && strcmp(body, "v2") == 0) {
            reloaded = true;
            break;
        }
        usleep(50000);
    }
    double reload_ms = now_ms() - t0;
    CHECK(reloaded);
    CHECK_EQ(th_server_stop(&s), 0);

    /* a restart with the cache warm: nothing compiled, serving at once */
    t0 = now_ms();
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_START_MS), 0);
    CHECK_EQ(get(s.port, "/version", body, sizeof body), 200);
    double warm_ms = now_ms() - t0;
    CHECK_STR_EQ(body, "v2");
    log = th_server_stderr(&s);
    CHECK(strstr(log, "compiled to native code") == NULL);
    free(log);
    CHECK_EQ(th_server_stop(&s), 0);
    /* the job's row is in the database */
    snprintf(cmd, sizeof cmd, "test \"$(sqlite3 '%s/data/main.db' 'SELECT count(*) FROM ticks')\" = 1",
             depot);
    CHECK_EQ(fx_sh(cmd), 0);

    const char *rm[] = {"components", "remove", "clock.wasm", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(rm, 20000, &out, &err), 0);
    free(out);
    free(err);
    CHECK(access(path, F_OK) != 0);
    test_report("compiled component: `components add` (compiling) %.0f ms; start to first "
                "response with the cache warm %.0f ms (after add), %.0f ms (restart); hot reload "
                "to the new code (compiling) %.0f ms",
                add_ms, first_ms, warm_ms, reload_ms);
}

/* Without a C compiler on PATH, loading a compiled component fails naming what to install. */
TEST_TIMEOUT(e2e_native_no_compiler, 120)
{
    char depot[700], wasm[900], bin[800], cmd[2048];
    snprintf(depot, sizeof depot, "%s/depot", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/wasm/q.wasm", depot);
    snprintf(bin, sizeof bin, "%s/bin", test_tmpdir());
    build_versioned("v1", wasm);
    /* a PATH with wasm2c but no cc */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -sf \"$(command -v wasm2c)\" '%s/wasm2c'", bin,
             bin);
    CHECK_EQ(fx_sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "PATH='%s' '%s' run --data-dir '%s' --address 127.0.0.1:0 > '%s/out' 2>&1; "
             "grep -q 'needs a C compiler (cc), which is not on PATH: install the Debian package "
             "gcc' '%s/out'",
             bin, getenv("TRAIL_BIN"), depot, test_tmpdir(), test_tmpdir());
    CHECK_EQ(fx_sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "PATH=/nonexistent '%s' run --data-dir '%s' --address 127.0.0.1:0 > '%s/out' 2>&1; "
             "grep -q 'needs wasm2c, which is not on PATH: install the Debian package wabt' "
             "'%s/out'",
             getenv("TRAIL_BIN"), depot, test_tmpdir(), test_tmpdir());
    CHECK_EQ(fx_sh(cmd), 0);
}
