/* The hostile battery's record hook cases for compiled guests: a component that calls the hook
 * ABI's imports directly (tests/data/components/records_hooks_hostile) answers twice, outside a
 * hook, with a status that is neither 0 nor 400-599, with keys smuggled beside the record, with
 * a message that is not UTF-8, tries every way to end or nest the write's transaction, and
 * leaves a thousand timers pending, again and again. Each write must get its documented answer,
 * nothing of a failed one may stay (the hook's own row included), and the instance must keep
 * its host call handles. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char sql[] = "CREATE TABLE things (id INTEGER PRIMARY KEY, mode TEXT) STRICT;\n"
                          "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT) STRICT;\n";

static const char cfg[] =
    "server { access_log: false }\n"
    "record_apis { name: \"things\" table_name: \"things\"\n"
    "  acl_world: [CREATE, READ] }\n"
    "record_apis { name: \"audit\" table_name: \"audit\" acl_world: [READ] }\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void post_mode(int port, const char *mode, int status, const char *want)
{
    char body[100];
    snprintf(body, sizeof body, "{\"mode\":\"%s\"}", mode);
    th_resp r;
    rt_expect(port, "POST", "/api/records/v1/things", body, NULL, status, &r);
    if (want) CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
}

TEST_TIMEOUT(hostile_records_hooks_native, 600)
{
    char depot[512], wasm[700];
    rt_depot("hhooks", sql, cfg, depot);
    snprintf(wasm, sizeof wasm, "%s/wasm/records_hooks_hostile.wasm", depot);
    fx_build_component("records_hooks_hostile", wasm);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start_within(&s, depot, one, 300000), 0);
    int port = s.port;
    th_resp r;

    /* an answer outside a hook, and a second one in a hook, are refused (-1); the first counts */
    rt_expect(port, "GET", "/outside", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "-1");
    th_resp_free(&r);
    post_mode(port, "twice", 200, "\"ids\":[\"1\"]");
    /* garbage answers fail the write */
    post_mode(port, "status200", 500, "answered status 200");
    post_mode(port, "inject", 500, "not one JSON object");
    post_mode(port, "array", 500, "not one JSON object");
    /* a message with quotes, control bytes and bytes that are not UTF-8 reaches the client as
     * a JSON string */
    rt_expect(port, "POST", "/api/records/v1/things", "{\"mode\":\"message\"}", NULL, 451, &r);
    CHECK_STR_EQ(r.body,
                 "{\"error\":\"a \\\"quoted\\\" \\u0001 \xef\xbf\xbd\xef\xbf\xbd line\\u000aend "
                 "\xe2\x82\xac\"}");
    th_resp_free(&r);
    /* COMMIT, END, ROLLBACK (TO), SAVEPOINT, RELEASE and BEGIN, however written, and
     * trail.tx_begin: all refused inside the write's transaction */
    post_mode(port, "escape", 418, "refused 10 of 10");

    /* a thousand pending timers per write, twenty times: each write fails and the timers are
     * released (the instance could not start a thousand more otherwise) */
    double t0 = now_ms();
    for (int i = 0; i < 20; i++)
        post_mode(port, "pending", 500, "without waiting");
    double pending_ms = now_ms() - t0;
    rt_expect(port, "GET", "/handles", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "1000");
    th_resp_free(&r);

    /* only the write that succeeded stays, with its own audit rows */
    rt_expect(port, "GET", "/api/records/v1/things?count=true&limit=0", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"total_count\":1");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/audit?order=id&limit=100", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"records\":[{\"id\":1,\"what\":\"twice\"},"
                           "{\"id\":2,\"what\":\"twice: first 0 second -1\"}]");
    th_resp_free(&r);
    rt_expect(port, "GET", "/ok", NULL, NULL, 200, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("compiled record hooks: answers outside a hook and second answers refused, 3 "
                "malformed answers failed the write, a non-UTF-8 message escaped, 10 ways out of "
                "the write's transaction refused; 20 writes leaving 1000 timers each failed in "
                "%.0f ms, the instance's handles all free after",
                pending_ms);
}
