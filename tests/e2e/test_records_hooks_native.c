/* Record hooks in compiled guests end to end, over HTTP against the real binary: a C component
 * built with trailbase.h (tests/data/components/records_hooks_c) and a Rust one built with the
 * trailbase-wasm crate (tests/data/rust/record-hooks, built by `make test` into
 * $TRAIL_RUST_DIR), both compiled to native code by trail. The same checks run on both: before
 * hooks change and reject writes and write inside the write's transaction, after hooks see the
 * committed record and write elsewhere, and a hook that traps, runs out of CPU, leaves a call
 * waiting, answers garbage or tries to COMMIT the write's transaction leaves nothing written,
 * its own writes included. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Compiling the module to native code happens before trail listens (about 30 s on a busy
 * two-core machine; given far more). */
#define COMPILE_START_MS 300000

/* The checks both components must pass; the server runs one worker. */
static void check_hooks(int port)
{
    th_resp r;
    rt_hooks_check_writes(port);
    char *a;

    /* failures after the hook wrote: nothing of the request stays, the hook's row included */
    static const struct {
        const char *mode, *says;
        int status;
    } fails[] = {
        {"trap", "crashed", 500},
        {"loop", "CPU time limit", 503},
        {"wait", "without waiting", 500},
        {"boom", "{\"error\":\"boom\"}", 500},
        {"garbage", "not one JSON object", 500},
        /* a COMMIT of its own would write the hook's row whatever the write did next: refused */
        {"commit", "cannot end it", 500},
    };
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"mode\":\"%s\"}", fails[i].mode);
        rt_expect(port, "POST", "/api/records/v1/crashy", body, NULL, fails[i].status, &r);
        CHECK_CONTAINS(r.body, fails[i].says);
        th_resp_free(&r);
    }
    CHECK_EQ(rt_total_count(port, "/api/records/v1/crashy?count=true&limit=0", NULL), 0);
    /* the timer the "wait" hook started never calls back into the guest */
    usleep(300 * 1000);
    a = rt_audit_of(port);
    CHECK(strstr(a, "crashy") == NULL);
    free(a);
    /* the instance replaced after the trap and the CPU budget serves the next ones */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"ok\"}", NULL, 200, NULL);
    a = rt_audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"crashy ok was here\"");
    CHECK(strstr(a, "callback ran") == NULL);
    free(a);
    rt_expect(port, "GET", "/ok", NULL, NULL, 200, NULL);
}

TEST_TIMEOUT(e2e_records_hooks_c, 600)
{
    char depot[512], wasm[700];
    rt_depot("rhooks-c", rt_hooks_sql, rt_hooks_cfg, depot);
    snprintf(wasm, sizeof wasm, "%s/wasm/records_hooks_c.wasm", depot);
    fx_build_component("records_hooks_c", wasm);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start_within(&s, depot, one, COMPILE_START_MS), 0);
    check_hooks(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_records_hooks_rust, 600)
{
    const char *built = getenv("TRAIL_RUST_DIR");
    if (built == NULL)
        test_fail(__FILE__, __LINE__, "TRAIL_RUST_DIR is not set (make test sets it)");
    char depot[512], cmd[2048];
    rt_depot("rhooks-rust", rt_hooks_sql, rt_hooks_cfg, depot);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/wasm' && cp '%s/record_hooks.wasm' '%s/wasm/'", depot,
             built, depot);
    CHECK_EQ(fx_sh(cmd), 0);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start_within(&s, depot, one, COMPILE_START_MS), 0);
    check_hooks(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}
