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

static const char hooks_sql[] =
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, stamped INTEGER,\n"
    "  keep INTEGER NOT NULL DEFAULT 0) STRICT;\n"
    "CREATE TABLE crashy (id INTEGER PRIMARY KEY, mode TEXT) STRICT;\n"
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT) STRICT;\n";

static const char hooks_cfg[] =
    "server { access_log: false enable_record_transactions: true }\n"
    "runtime { cpu_budget_ms: 300 }\n"
    "record_apis { name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [CREATE, READ, UPDATE, DELETE] }\n"
    "record_apis { name: \"crashy\" table_name: \"crashy\" acl_world: [CREATE, READ] }\n"
    "record_apis { name: \"audit\" table_name: \"audit\" acl_world: [READ] }\n";

/* The audit table's texts, oldest first, one per line. */
static char *audit_of(int port)
{
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/audit?order=id&limit=100", NULL, NULL, 200, &r);
    char *out = strdup(r.body);
    th_resp_free(&r);
    return out;
}

TEST_TIMEOUT(e2e_records_hooks_change_reject_and_roll_back, 180)
{
    char depot[512], wasm[700];
    rt_depot("rhooks", hooks_sql, hooks_cfg, depot);
    snprintf(wasm, sizeof wasm, "%s/wasm/records_hooks.wasm", depot);
    fx_build_component("records_hooks", wasm);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);
    int port = s.port;
    th_resp r;

    /* before create changes the record; after create sees it committed */
    rt_expect(port, "POST", "/api/records/v1/notes", "{\"text\":\"  hello \"}", NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"ids\":[\"1\"]}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/notes/1", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":1,\"text\":\"HELLO\",\"stamped\":1,\"keep\":0}");
    th_resp_free(&r);
    char *a = audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"before create   hello  by anonymous\"");
    CHECK_CONTAINS(a, "\"what\":\"after create 1 HELLO\"");
    free(a);
    /* a rejection: its status and message, nothing written */
    rt_expect(port, "POST", "/api/records/v1/notes", "{\"text\":\"a forbidden word\"}", NULL, 422,
              &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"no forbidden words\"}");
    th_resp_free(&r);
    /* several records: the hooks run for each, in the one transaction */
    rt_expect(port, "POST", "/api/records/v1/notes",
              "[{\"text\":\"b\",\"keep\":1},{\"text\":\"c\"}]", NULL, 200, NULL);
    rt_expect(port, "POST", "/api/records/v1/notes", "[{\"text\":\"d\"},{\"text\":\"forbidden\"}]",
              NULL, 422, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes?count=true&limit=0", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"total_count\":3");
    th_resp_free(&r);
    a = audit_of(port);
    CHECK(strstr(a, "before create d") == NULL); /* the hook's write went with the request */
    free(a);

    /* update: changed by the hook, or rejected */
    rt_expect(port, "PATCH", "/api/records/v1/notes/3", "{\"text\":\"C!\"}", NULL, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/3", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":3,\"text\":\"C!\",\"stamped\":2,\"keep\":0}");
    th_resp_free(&r);
    rt_expect(port, "PATCH", "/api/records/v1/notes/3", "{\"keep\":1}", NULL, 403, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"notes cannot be kept by an update\"}");
    th_resp_free(&r);
    /* delete: the hook reads the row inside the transaction and refuses a kept one */
    rt_expect(port, "DELETE", "/api/records/v1/notes/2", NULL, NULL, 409, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/2", NULL, NULL, 200, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/notes/3", NULL, NULL, 200, NULL);
    a = audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"after update 3\"");
    CHECK_CONTAINS(a, "\"what\":\"after delete 3\"");
    CHECK(strstr(a, "after delete 2") == NULL);
    free(a);

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
    a = audit_of(port);
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
    a = audit_of(port);
    CHECK(strstr(a, "crashy") == NULL);
    free(a);
    /* the isolate replaced after the CPU budget serves the next one */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"ok\"}", NULL, 200, NULL);
    a = audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"crashy ok was here\"");
    free(a);
    rt_expect(port, "GET", "/ok", NULL, NULL, 200, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}
