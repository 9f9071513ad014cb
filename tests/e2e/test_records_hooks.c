/* Record hooks in a TypeScript guest (trailbase-wasm/records) end to end: before hooks change
 * and reject writes and write inside the write's transaction, after hooks see the committed
 * record, and a hook that throws, runs out of CPU or waits for a timer leaves nothing written,
 * its own writes included. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST_TIMEOUT(e2e_records_hooks_change_reject_and_roll_back, 180)
{
    char depot[512], wasm[700];
    rt_depot("rhooks", rt_hooks_sql, rt_hooks_cfg, depot);
    snprintf(wasm, sizeof wasm, "%s/wasm/records_hooks.wasm", depot);
    fx_build_component("records_hooks", wasm);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);
    int port = s.port;
    th_resp r;

    rt_hooks_check_writes(port);
    char *a;

    /* a batch in a transaction: each operation's hooks; a rejection undoes the operations before
     * it with their hooks' writes, and no after hook runs */
    rt_expect(port, "POST", "/api/transaction/v1/execute",
              "{\"transaction\":true,\"operations\":["
              "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"batch a\"}}},"
              "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"forbidden b\"}}}]}",
              NULL, 422, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"operation 1: no forbidden words\"}");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/transaction/v1/execute",
              "{\"transaction\":true,\"operations\":["
              "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"batch c\"}}},"
              "{\"Update\":{\"api_name\":\"notes\",\"record_id\":\"2\","
              "\"value\":{\"text\":\"B!\"}}}]}",
              NULL, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/2", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":2,\"text\":\"B!\",\"stamped\":2,\"keep\":1}");
    th_resp_free(&r);
    a = rt_audit_of(port);
    CHECK(strstr(a, "batch a") == NULL && strstr(a, "BATCH A") == NULL);
    CHECK_CONTAINS(a, "\"what\":\"before create batch c by anonymous\"");
    CHECK_CONTAINS(a, " BATCH C\"");
    CHECK_CONTAINS(a, "\"what\":\"after update 2\"");
    free(a);

    /* failures after the hook wrote: nothing of the request stays */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"throw\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "boom");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"loop\"}", NULL, 503, NULL);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"wait\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "without waiting");
    th_resp_free(&r);
    /* a COMMIT of its own would write the hook's row whatever the write did next: refused */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"commit\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "cannot end it");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/crashy?count=true", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"total_count\":0,\"records\":[]}");
    th_resp_free(&r);
    a = rt_audit_of(port);
    CHECK(strstr(a, "crashy") == NULL);
    free(a);
    /* the isolate replaced after the CPU budget serves the next one */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"ok\"}", NULL, 200, NULL);
    a = rt_audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"crashy ok was here\"");
    free(a);
    rt_expect(port, "GET", "/ok", NULL, NULL, 200, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}
