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

static const char hooks_sql[] =
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, stamped INTEGER,\n"
    "  keep INTEGER NOT NULL DEFAULT 0) STRICT;\n"
    "CREATE TABLE crashy (id INTEGER PRIMARY KEY, mode TEXT) STRICT;\n"
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT) STRICT;\n";

static const char hooks_cfg[] =
    "server { access_log: false }\n"
    "runtime { cpu_budget_ms: 300 }\n"
    "record_apis { name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [CREATE, READ, UPDATE, DELETE] }\n"
    "record_apis { name: \"crashy\" table_name: \"crashy\" acl_world: [CREATE, READ] }\n"
    "record_apis { name: \"audit\" table_name: \"audit\" acl_world: [READ] }\n";

/* The audit table's texts, oldest first. */
static char *audit_of(int port)
{
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/audit?order=id&limit=100", NULL, NULL, 200, &r);
    char *out = strdup(r.body);
    th_resp_free(&r);
    return out;
}

static void expect_count(int port, const char *api, int n)
{
    char path[200], want[64];
    snprintf(path, sizeof path, "/api/records/v1/%s?count=true&limit=0", api);
    snprintf(want, sizeof want, "\"total_count\":%d", n);
    th_resp r;
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
}

/* The checks both components must pass; the server runs one worker. */
static void check_hooks(int port)
{
    th_resp r;
    /* before create changes the record; after create sees it committed and writes elsewhere */
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
    /* a rejection: its status and message reach the client, nothing is written */
    rt_expect(port, "POST", "/api/records/v1/notes", "{\"text\":\"a forbidden word\"}", NULL, 422,
              &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"no forbidden words\"}");
    th_resp_free(&r);
    /* several records: the hooks run for each, in the one transaction */
    rt_expect(port, "POST", "/api/records/v1/notes",
              "[{\"text\":\"b\",\"keep\":1},{\"text\":\"c\"}]", NULL, 200, NULL);
    rt_expect(port, "POST", "/api/records/v1/notes", "[{\"text\":\"d\"},{\"text\":\"forbidden\"}]",
              NULL, 422, NULL);
    expect_count(port, "notes", 3);
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
    rt_expect(port, "DELETE", "/api/records/v1/notes/2", NULL, NULL, 409, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"this note is kept\"}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/notes/2", NULL, NULL, 200, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/notes/3", NULL, NULL, 200, NULL);
    a = audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"after update 3\"");
    CHECK_CONTAINS(a, "\"what\":\"after delete 3\"");
    CHECK(strstr(a, "after delete 2") == NULL);
    free(a);

    /* failures after the hook wrote: nothing of the request stays, the hook's row included */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"trap\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "crashed");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"loop\"}", NULL, 503, &r);
    CHECK_CONTAINS(r.body, "CPU time limit");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"wait\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "without waiting");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"boom\"}", NULL, 500, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"boom\"}");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"garbage\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "not one JSON object");
    th_resp_free(&r);
    /* a COMMIT of its own would write the hook's row whatever the write did next: refused */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"commit\"}", NULL, 500, &r);
    CHECK_CONTAINS(r.body, "cannot end it");
    th_resp_free(&r);
    expect_count(port, "crashy", 0);
    /* the timer the "wait" hook started never calls back into the guest */
    usleep(300 * 1000);
    a = audit_of(port);
    CHECK(strstr(a, "crashy") == NULL);
    free(a);
    /* the instance replaced after the trap and the CPU budget serves the next ones */
    rt_expect(port, "POST", "/api/records/v1/crashy", "{\"mode\":\"ok\"}", NULL, 200, NULL);
    a = audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"crashy ok was here\"");
    CHECK(strstr(a, "callback ran") == NULL);
    free(a);
    rt_expect(port, "GET", "/ok", NULL, NULL, 200, NULL);
}

TEST_TIMEOUT(e2e_records_hooks_c, 600)
{
    char depot[512], wasm[700];
    rt_depot("rhooks-c", hooks_sql, hooks_cfg, depot);
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
    rt_depot("rhooks-rust", hooks_sql, hooks_cfg, depot);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/wasm' && cp '%s/record_hooks.wasm' '%s/wasm/'", depot,
             built, depot);
    CHECK_EQ(fx_sh(cmd), 0);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start_within(&s, depot, one, COMPILE_START_MS), 0);
    check_hooks(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}
