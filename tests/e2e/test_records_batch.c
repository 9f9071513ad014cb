/* POST /api/transaction/v1/execute end to end: a batch of creates, updates and deletes across
 * APIs, all or nothing with "transaction": true (a refused rule or a constraint undoes the
 * operations before it), one by one without it, each operation under its API's ACL and rules,
 * every malformed batch refused with 400 naming the operation, and the endpoint absent unless
 * server.enable_record_transactions is set. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char notes_sql[] =
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, locked INTEGER NOT NULL\n"
    "  DEFAULT 0) STRICT;\n"
    "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;\n"
    "INSERT INTO notes VALUES (1, 'open', 0), (2, 'locked', 1);\n";

static const char notes_cfg[] = "server { access_log: false enable_record_transactions: true }\n"
                                "record_apis { name: \"notes\" table_name: \"notes\"\n"
                                "  acl_world: [CREATE, READ, UPDATE, DELETE]\n"
                                "  update_access_rule: \"_ROW_.locked = 0\"\n"
                                "  delete_access_rule: \"_ROW_.locked = 0\" }\n"
                                "record_apis { name: \"tags\" table_name: \"tags\"\n"
                                "  acl_world: [CREATE, READ] }\n";

#define EXEC "/api/transaction/v1/execute"

static void batch(int port, const char *body, int status, const char *want)
{
    th_resp r;
    rt_expect(port, "POST", EXEC, body, NULL, status, &r);
    if (want) CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
}

static void expect_body(int port, const char *path, const char *want)
{
    th_resp r;
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
}

/* How many notes have the text t. */
static long notes_with(int port, const char *t)
{
    char path[256];
    snprintf(path, sizeof path, "/api/records/v1/notes?filter[text]=%s&count=true&limit=0", t);
    return rt_total_count(port, path, NULL);
}

TEST_TIMEOUT(e2e_records_batch_transactions, 120)
{
    char depot[512];
    rt_depot("rbatch", notes_sql, notes_cfg, depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    int port = s.port;

    /* all or nothing, across two APIs: creates give their ids in order */
    batch(
        port,
        "{\"transaction\":true,\"operations\":["
        "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"a\"}}},"
        "{\"Create\":{\"api_name\":\"tags\",\"value\":{\"name\":\"red\"}}},"
        "{\"Update\":{\"api_name\":\"notes\",\"record_id\":\"1\",\"value\":{\"text\":\"edited\"}}},"
        "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"b\"}}},"
        "{\"Delete\":{\"api_name\":\"notes\",\"record_id\":3}}]}",
        200, "{\"ids\":[\"3\",\"1\",\"4\"]}");
    expect_body(port, "/api/records/v1/notes?order=id",
                "[{\"id\":1,\"text\":\"edited\",\"locked\":0},{\"id\":2,\"text\":\"locked\","
                "\"locked\":1},{\"id\":4,\"text\":\"b\",\"locked\":0}]");
    expect_body(port, "/api/records/v1/tags", "\"name\":\"red\"");

    /* a refused rule in the middle undoes the whole transaction */
    batch(port,
          "{\"transaction\":true,\"operations\":["
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"lost\"}}},"
          "{\"Update\":{\"api_name\":\"notes\",\"record_id\":\"1\",\"value\":{\"text\":\"lost\"}}},"
          "{\"Update\":{\"api_name\":\"notes\",\"record_id\":\"2\",\"value\":{\"text\":\"x\"}}}]}",
          403, "operation 2: forbidden by update_access_rule");
    /* and a constraint */
    batch(port,
          "{\"transaction\":true,\"operations\":["
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"lost\"}}},"
          "{\"Create\":{\"api_name\":\"tags\",\"value\":{\"name\":\"red\"}}}]}",
          409, "operation 1: UNIQUE constraint failed");
    CHECK_EQ(notes_with(port, "lost"), 0);
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/notes?count=true", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"total_count\":3");
    th_resp_free(&r);

    /* without a transaction, the operations before a failure stay */
    batch(port,
          "{\"operations\":["
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"kept\"}}},"
          "{\"Delete\":{\"api_name\":\"notes\",\"record_id\":\"2\"}},"
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"never\"}}}]}",
          403, "operation 1: forbidden by delete_access_rule");
    CHECK_EQ(notes_with(port, "kept"), 1);
    CHECK_EQ(notes_with(port, "never"), 0);

    /* the ACL of each operation's API is checked before anything runs */
    batch(port,
          "{\"transaction\":false,\"operations\":["
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"acl\"}}},"
          "{\"Delete\":{\"api_name\":\"tags\",\"record_id\":\"1\"}}]}",
          403, "operation 1: forbidden");
    CHECK_EQ(notes_with(port, "acl"), 0);

    /* validation and malformed batches */
    batch(port,
          "{\"transaction\":true,\"operations\":["
          "{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":null}}}]}",
          400, "operation 0");
    batch(port, "{\"operations\":[]}", 200, "{\"ids\":[]}");
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"operations\":{}}",
        "{\"operations\":[],\"transaction\":\"yes\"}",
        "{\"operations\":[{\"Upsert\":{\"api_name\":\"notes\"}}]}",
        "{\"operations\":[{\"Create\":{\"api_name\":\"notes\",\"value\":{\"text\":\"x\"}},"
        "\"Delete\":{\"api_name\":\"notes\",\"record_id\":\"1\"}}]}",
        "{\"operations\":[{\"Create\":{\"api_name\":\"nope\",\"value\":{}}}]}",
        "{\"operations\":[{\"Create\":{\"api_name\":\"notes\",\"value\":[{\"text\":\"x\"}]}}]}",
        "{\"operations\":[{\"Update\":{\"api_name\":\"notes\",\"record_id\":{},\"value\":{}}}]}",
        "{\"operations\":[{\"Delete\":{\"api_name\":\"notes\"}}]}",
        "{\"operations\":[{\"Delete\":{\"api_name\":\"notes\",\"record_id\":\"1 OR 1=1\"}}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rt_expect(port, "POST", EXEC, bad[i], NULL, 400, &r);
        CHECK_CONTAINS(r.body, "\"error\"");
        th_resp_free(&r);
    }
    /* more than 128 operations */
    tr_buf big = TR_BUF_INIT;
    tr_buf_append_str(&big, "{\"operations\":[");
    for (int i = 0; i < 129; i++)
        tr_buf_printf(&big, "%s{\"Create\":{\"api_name\":\"tags\",\"value\":{\"name\":\"t%d\"}}}",
                      i ? "," : "", i);
    tr_buf_append_str(&big, "]}");
    batch(port, big.data, 400, "more than 128 operations");
    tr_buf_free(&big);
    expect_body(port, "/api/records/v1/notes/1", "\"text\":\"edited\"");
    CHECK_EQ(th_server_stop(&s), 0);

    /* off by default */
    char plain[512];
    rt_depot("rbatch-off", notes_sql,
             "record_apis { name: \"notes\" table_name: \"notes\" acl_world: [CREATE] }\n", plain);
    CHECK_EQ(th_server_start(&s, plain, NULL), 0);
    rt_expect(s.port, "POST", EXEC, "{\"operations\":[]}", NULL, 404, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}
