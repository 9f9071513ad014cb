/* Serving components with the real server: handler failures become 500 with a JSON error and a
 * log line with the JS stack while the server keeps serving; console output appears prefixed
 * [WASM]; handlers that await timers are parked without blocking the isolate; route conflicts
 * and broken components stop start-up with a message naming them. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *depot(void)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/traildepot", test_tmpdir());
    return p;
}

static void install(const char *component, const char *file)
{
    char out[1000];
    snprintf(out, sizeof out, "%s/wasm/%s", depot(), file);
    fx_build_component(component, out);
}

static th_resp get(int port, const char *path)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

TEST_TIMEOUT(e2e_serving_handler_errors_are_500s, 120)
{
    install("throws", "throws.wasm");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_resp r = get(s.port, "/throws");
    CHECK_EQ(r.status, 500);
    CHECK_STR_EQ(r.body, "{\"error\":\"TypeError: the widget is broken\"}");
    th_resp_free(&r);
    r = get(s.port, "/rejects");
    CHECK_EQ(r.status, 500);
    CHECK_STR_EQ(r.body, "{\"error\":\"Error: async failure\"}");
    th_resp_free(&r);
    r = get(s.port, "/bad-response");
    CHECK_EQ(r.status, 500);
    th_resp_free(&r);
    /* the isolate keeps serving */
    for (int i = 0; i < 20; i++) {
        r = get(s.port, i % 2 ? "/throws" : "/ok");
        CHECK_EQ(r.status, i % 2 ? 500 : 200);
        th_resp_free(&r);
    }
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] throws.wasm GET /throws: uncaught TypeError: the widget is broken");
    CHECK_CONTAINS(log, "at explode (index.ts:5:"); /* the JS stack, in the TypeScript */
    CHECK_CONTAINS(log, "async failure");
    free(log);
}

/* An async handler's promise goes to the host as it is: an HttpError it rejects with still
 * answers with its status, headers and JSON body, and a result that is not a response still
 * answers 500 naming it, whether the promise settled during the call or later. */
TEST_TIMEOUT(e2e_serving_async_outcomes_as_sync_ones, 120)
{
    install("throws", "throws.wasm");
    th_server s;
    const char *one[] = {"--runtime-threads", "1", NULL}; /* one isolate: what it kept is seen */
    CHECK_EQ(th_server_start(&s, depot(), one), 0);
    char hv[64];
    for (int round = 0; round < 3; round++) {
        th_resp r = get(s.port, "/async-http-error");
        CHECK_EQ(r.status, 404);
        CHECK_STR_EQ(r.body, "{\"error\":\"no such widget\"}");
        CHECK_STR_EQ(th_resp_header(&r, "content-type", hv, sizeof hv), "application/json");
        CHECK_STR_EQ(th_resp_header(&r, "x-why", hv, sizeof hv), "gone");
        th_resp_free(&r);
        r = get(s.port, "/later-http-error");
        CHECK_EQ(r.status, 409);
        CHECK_STR_EQ(r.body, "{\"error\":\"changed meanwhile\"}");
        th_resp_free(&r);
        r = get(s.port, "/async-bad-response");
        CHECK_EQ(r.status, 500);
        CHECK_STR_EQ(r.body, "{\"error\":\"TypeError: a handler returned an object ([object "
                             "Object]); return a string, a Uint8Array or an HttpResponse (e.g. "
                             "HttpResponse.json(data))\"}");
        th_resp_free(&r);
        r = get(s.port, "/bad-response");
        CHECK_EQ(r.status, 500);
        CHECK_CONTAINS(r.body, "TypeError: a handler returned a number; return a string");
        th_resp_free(&r);
        r = get(s.port, "/later-bad-response");
        CHECK_EQ(r.status, 500);
        CHECK_CONTAINS(r.body, "TypeError: a handler returned null; return a string");
        th_resp_free(&r);
        r = get(s.port, "/later-rejects");
        CHECK_EQ(r.status, 500);
        CHECK_STR_EQ(r.body, "{\"error\":\"RangeError: late failure\"}");
        th_resp_free(&r);
        /* an instance of a subclass of HttpResponse is a response */
        r = get(s.port, "/subclass");
        CHECK_EQ(r.status, 201);
        CHECK_STR_EQ(r.body, "made");
        CHECK_STR_EQ(th_resp_header(&r, "content-type", hv, sizeof hv),
                     "text/plain; charset=utf-8");
        th_resp_free(&r);
        r = get(s.port, "/later-bytes");
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "hi");
        CHECK_STR_EQ(th_resp_header(&r, "content-type", hv, sizeof hv), "application/octet-stream");
        th_resp_free(&r);
    }
    /* request objects are reused (docs/guest-abi.md): never with another route's parameters,
     * never one a handler kept (the HttpRequest, or only the request object it holds), and the
     * HttpRequest a handler gets is always new (what it added to it is never seen again) */
    static const struct {
        const char *path, *want;
    } seq[] = {
        {"/id/7", "/id/7 7 null id"},
        {"/other/x", "/other/x null x other"},
        {"/id/8", "/id/8 8 null id"},
        {"/keep/9", "/keep/9 9 null id"},
        {"/other/y", "/other/y null y other"},
        {"/kept", "/keep/9 9 null id"},
        {"/keep-inner/10", "/keep-inner/10 10 null id"},
        {"/id/11", "/id/11 11 null id"},
        {"/other/z", "/other/z null z other"},
        {"/kept", "/keep-inner/10 10 null id"},
        {"/mark/1", "none"},
        {"/mark/2", "none"},
        {"/id/12", "/id/12 12 null id"},
        {"/mark/3", "none"},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        th_resp r = get(s.port, seq[i].path);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, seq[i].want);
        th_resp_free(&r);
    }
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] throws.wasm GET /later-rejects: uncaught RangeError: late failure");
    CHECK_CONTAINS(log, "[WASM] throws.wasm GET /async-bad-response: uncaught TypeError: a handler "
                        "returned an object");
    CHECK(strstr(log, "no such widget") == NULL); /* an HttpError is an answer, not a failure */
    free(log);
}

TEST_TIMEOUT(e2e_serving_console_goes_to_the_log, 120)
{
    install("logs", "logs.wasm");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_resp r = get(s.port, "/log");
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "logged");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "INFO  [WASM] Info message\n");
    CHECK_CONTAINS(log, "WARN  [WASM] Warning message\n");
    CHECK_CONTAINS(log, "ERROR [WASM] Error message\n");
    CHECK_CONTAINS(log, "[WASM] object { a: [ 1, 2 ] } 3\n");
    free(log);
}

TEST_TIMEOUT(e2e_serving_parks_requests_awaiting_timers, 120)
{
    install("async", "async.wasm");
    const char *extra[] = {"--runtime-threads", "1", NULL};
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);
    /* A request sleeping 400 ms does not hold up others on the same (single) isolate. */
    th_conn slow;
    CHECK_EQ(th_conn_open(&slow, s.port), 0);
    CHECK_EQ(th_conn_send_str(&slow, "GET /sleep/400 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    for (int i = 1; i <= 5; i++) {
        th_resp r = get(s.port, "/count");
        CHECK_EQ(r.status, 200);
        char want[32];
        snprintf(want, sizeof want, "count %d", i);
        CHECK_STR_EQ(r.body, want);
        th_resp_free(&r);
    }
    th_resp r;
    CHECK_EQ(th_conn_read(&slow, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "slept 400");
    th_resp_free(&r);
    th_conn_close(&slow);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_serving_deadline_answers_503, 120)
{
    install("async", "async.wasm");
    char cfg[800];
    snprintf(cfg, sizeof cfg, "%s/config.textproto", depot());
    const char *text = "runtime { deadline_ms: 300 }\n";
    CHECK_EQ(th_write_file(cfg, text, strlen(text)), 0);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_resp r = get(s.port, "/never");
    CHECK_EQ(r.status, 503);
    CHECK_CONTAINS(r.body, "did not respond within 300 ms");
    th_resp_free(&r);
    r = get(s.port, "/count");
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_serving_start_up_refusals, 180)
{
    char *out, *err;
    const char *args[] = {"run", "--address", "127.0.0.1:0", "--data-dir", depot(), NULL};
    char path[1000];

    /* two components with the same route */
    install("conflict_a", "a.wasm");
    install("conflict_b", "b.wasm");
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "route GET /users/{name} of component b.wasm conflicts with component "
                        "a.wasm");
    free(out);
    free(err);
    snprintf(path, sizeof path, "%s/wasm/b.wasm", depot());
    CHECK_EQ(unlink(path), 0);

    /* a route of trail's own */
    install("builtin_conflict", "mine.wasm");
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "route GET /api/healthcheck of component mine.wasm conflicts with a "
                        "built-in route of trail");
    free(out);
    free(err);
    snprintf(path, sizeof path, "%s/wasm/mine.wasm", depot());
    CHECK_EQ(unlink(path), 0);

    /* an invalid cron schedule names the job */
    install("badjob", "badjob.wasm");
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "job 'broken-schedule': invalid schedule '61 * * * *'");
    free(out);
    free(err);
    snprintf(path, sizeof path, "%s/wasm/badjob.wasm", depot());
    CHECK_EQ(unlink(path), 0);

    /* a corrupt file in wasm/ */
    snprintf(path, sizeof path, "%s/wasm/corrupt.wasm", depot());
    CHECK_EQ(th_write_file(path, "\0asm\1\0\0\0\x01\xff", 10), 0);
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "corrupt.wasm");
    CHECK_CONTAINS(err, "overruns");
    free(out);
    free(err);
}

TEST_TIMEOUT(e2e_serving_standard_globals, 120)
{
    install("globals", "globals.wasm");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_resp r = get(s.port, "/globals");
    CHECK_EQ(r.status, 200);
    /* every check says "ok": no "FAIL" anywhere */
    CHECK(strstr(r.body, "FAIL") == NULL);
    CHECK_CONTAINS(r.body, "\"enc\":\"ok\"");
    CHECK_CONTAINS(r.body, "\"url\":\"ok\"");
    CHECK_CONTAINS(r.body, "\"sc\":\"ok\"");
    CHECK_CONTAINS(r.body, "\"uuid\":\"ok\"");
    CHECK_CONTAINS(r.body, "\"headers\":\"ok\"");
    th_resp_free(&r);
    r = get(s.port, "/b64");
    CHECK_STR_EQ(r.body, "dHJhaWw= trail");
    th_resp_free(&r);
    long long before = (long long)time(NULL) * 1000;
    r = get(s.port, "/time");
    long long now = 0;
    CHECK_EQ(sscanf(r.body, "{\"now\":%lld,\"perf\":true}", &now), 1);
    CHECK(now >= before && now <= before + 2000);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] hello 1 { a: [ 1, \"x\" ] } null");
    CHECK_CONTAINS(log, "ERROR [WASM] bad x 42");
    free(log);
}
