/* Stack traces in the user's TypeScript, against the real server and a component built by the
 * real SDK (tests/data/components/stacks): error.stack read by a handler, console.error() of a
 * caught error, Error.captureStackTrace(), an uncaught error, and failed job runs (sync and
 * after an await) as _job_runs records them. Each names src/helper.ts and index.ts with their
 * lines, and none names the bundle (component.js). hostile_stack_map_fake_frames calls the
 * host's stack writer with frames that lie about their positions. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *depot(void)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/traildepot", test_tmpdir());
    return p;
}

static void start(th_server *s)
{
    char out[800];
    snprintf(out, sizeof out, "%s/wasm/stacks.wasm", depot());
    fx_build_component("stacks", out);
    CHECK_EQ(th_server_start(s, depot(), NULL), 0);
}

static char *get(const th_server *s, const char *path, int status)
{
    char raw[300];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    CHECK_EQ(th_request(s->port, raw, &r), 0);
    CHECK_EQ(r.status, status);
    char *body = strdup(r.body);
    th_resp_free(&r);
    return body;
}

/* The error column of the newest failed run of job, or NULL when it has none yet. */
static char *job_error(const char *job)
{
    char path[800];
    snprintf(path, sizeof path, "%s/data/main.db", depot());
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(db,
                                "SELECT error FROM _job_runs WHERE job = ? AND ok = 0 "
                                "ORDER BY id DESC LIMIT 1",
                                -1, &st, NULL),
             SQLITE_OK);
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

#define CHECK_NO_BUNDLE(text)                                                       \
    do {                                                                            \
        if (strstr((text), "component.js") != NULL)                                 \
            test_fail(__FILE__, __LINE__, "a stack names the bundle:\n%s", (text)); \
    } while (0)

TEST_TIMEOUT(e2e_stacks_in_typescript_everywhere, 120)
{
    th_server s;
    start(&s);

    /* e.stack read by the handler */
    char *body = get(&s, "/stack", 200);
    CHECK_CONTAINS(body,
                   "    at explode (src/helper.ts:3:22)\n    at <anonymous> (index.ts:27:9)\n");
    CHECK_NO_BUNDLE(body);
    free(body);

    /* Error.captureStackTrace() on a plain object */
    body = get(&s, "/captured", 200);
    CHECK_CONTAINS(body, "    at <anonymous> (index.ts:42:");
    CHECK_NO_BUNDLE(body);
    free(body);

    /* console.error("caught:", e), and an uncaught error */
    free(get(&s, "/logged", 200));
    body = get(&s, "/uncaught", 500);
    CHECK_CONTAINS(body, "uncaught exploded");
    free(body);

    /* The jobs run every second: wait for a failed run of each (generously: a busy machine). */
    char *sync_err = NULL, *async_err = NULL;
    for (int i = 0; i < 300 && (sync_err == NULL || async_err == NULL); i++) {
        if (sync_err == NULL) sync_err = job_error("fails");
        if (async_err == NULL) async_err = job_error("fails-later");
        if (sync_err == NULL || async_err == NULL) usleep(100 * 1000);
    }
    CHECK(sync_err != NULL);
    CHECK(async_err != NULL);
    CHECK_EQ(th_server_stop(&s), 0);

    CHECK_CONTAINS(sync_err, "Error: job exploded\n    at explode (src/helper.ts:3:22)\n    at "
                             "<anonymous> (index.ts:66:7)\n");
    CHECK_NO_BUNDLE(sync_err);
    CHECK_CONTAINS(async_err, "Error: async job exploded\n    at explode (src/helper.ts:3:22)\n    "
                              "at <anonymous> (index.ts:70:7)");
    CHECK_NO_BUNDLE(async_err);
    free(sync_err);
    free(async_err);

    char *log = th_server_stderr(&s);
    /* console output is one log record: its newlines are escaped (docs/limits.md) */
    CHECK_CONTAINS(log,
                   "[WASM] caught: Error: logged exploded\\n    at explode (src/helper.ts:3:22)"
                   "\\n    at <anonymous> (index.ts:34:9)\\n");
    CHECK_CONTAINS(log, "uncaught Error: uncaught exploded\n    at explode (src/helper.ts:3:22)\n"
                        "    at <anonymous> (index.ts:45:40)\n");
    CHECK_NO_BUNDLE(log);
    free(log);
}

TEST_TIMEOUT(hostile_stack_map_fake_frames, 60)
{
    th_server s;
    start(&s);
    /* Positions past the bundle, negative, fractional, NaN, objects and strings, and a file
     * name that only starts like the bundle's: each frame is written as it came, unmapped. */
    char *body = get(&s, "/fake-frames", 200);
    CHECK_CONTAINS(body, "    at fake (component.js:1099511627776:1)\n"
                         "    at fake (component.js:-1:5)\n"
                         "    at fake (component.js:1.5:1)\n"
                         "    at fake (component.js:NaN:1)\n"
                         "    at fake (component.js:1:1)\n"
                         "    at fake (component.js:1:1)\n"
                         "    at fake (component.js:1000000000:1000000000)\n"
                         "    at fake (component.jscomponent.js");
    size_t frames = 0;
    for (const char *p = body; (p = strstr(p, "    at fake (")) != NULL; p++)
        frames++;
    CHECK_EQ(frames, 9);
    free(body);
    /* The isolate and the server are fine: the real stacks are still mapped. */
    body = get(&s, "/stack", 200);
    CHECK_CONTAINS(body, "    at explode (src/helper.ts:3:22)\n");
    free(body);
    test_report("9 lying frames written unmapped; the next request's stack mapped");
    CHECK_EQ(th_server_stop(&s), 0);
}
