/* The reference's Quick Start, end to end, from a clean directory: `trail components add
 * trailbase-guest-ts`, the reference's code as index.ts (where the reference puts it), `npm
 * install && npm run build`, `trail run`, and the three requests with the outputs the reference
 * prints; then a type error, which fails the build and leaves the running server serving what
 * built before. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <time.h>

TEST_TIMEOUT(e2e_quickstart_from_scratch, 300)
{
    char depot[700], wasm[800], cmd[4096];
    snprintf(depot, sizeof depot, "%s/traildepot", test_tmpdir());
    snprintf(wasm, sizeof wasm, "%s/wasm", depot);

    const char *add[] = {"components", "add", "trailbase-guest-ts", "--data-dir", depot, NULL};
    char *out, *err;
    CHECK_EQ(th_run(add, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "Installed trailbase-guest-ts");
    free(out);
    free(err);

    /* The reference's Quick Start code, verbatim. */
    snprintf(cmd, sizeof cmd, "cp '%s/sdk/ts/test/reference/quick-start.ts' '%s/index.ts'",
             getenv("TRAIL_ROOT"), wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && npm install --no-audit --no-fund --loglevel=error >/dev/null && "
             "npm run build >/dev/null",
             wasm);
    CHECK_EQ(fx_sh(cmd), 0);

    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    th_resp r;
    CHECK_EQ(th_request(s.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "Hello from WASM!");
    char ct[128];
    CHECK_CONTAINS(th_resp_header(&r, "content-type", ct, sizeof ct), "text/plain");
    th_resp_free(&r);

    CHECK_EQ(th_request(s.port, "GET /greet/Alice HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "Hello, Alice!");
    th_resp_free(&r);

    long long before = (long long)time(NULL) * 1000;
    CHECK_EQ(th_request(s.port,
                        "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
                        "urlencoded\r\nContent-Length: 18\r\n\r\n{\"message\":\"test\"}",
                        &r),
             0);
    long long after = (long long)time(NULL) * 1000 + 1000;
    CHECK_EQ(r.status, 200);
    long long ts = 0;
    CHECK_EQ(sscanf(r.body, "{\"received\":{\"message\":\"test\"},\"timestamp\":%lld}", &ts), 1);
    CHECK(ts >= before && ts <= after);
    CHECK_CONTAINS(th_resp_header(&r, "content-type", ct, sizeof ct), "application/json");
    th_resp_free(&r);

    /* installed lists the built component with its engine */
    const char *inst[] = {"components", "installed", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(inst, 60000, &out, &err), 0);
    CHECK_CONTAINS(out, "dist/component.wasm");
    CHECK_CONTAINS(out, "quickjs-wasi 3.6.2");
    CHECK_CONTAINS(out, "route GET     /hello\n");
    CHECK_CONTAINS(out, "route GET     /greet/:name\n");
    CHECK_CONTAINS(out, "route POST    /json\n");
    free(out);
    free(err);

    /* A type error in the reference's handler: the build fails and the server keeps serving
     * the component that built. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sed -i 's/const name = req.getPathParam/const name: number = "
             "req.getPathParam/' index.ts && grep -q 'const name: number' index.ts && "
             "! npm run build > build.log 2>&1 && grep -q 'index.ts:10:13: error TS2322' build.log",
             wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    CHECK_EQ(th_request(s.port, "GET /greet/Alice HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "Hello, Alice!");
    th_resp_free(&r);

    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "component dist/component.wasm");
    CHECK_CONTAINS(log, "3 routes");
    free(log);
}
