/* The apps of examples/ (one per section of the reference), each built with tools/sdk-build.sh
 * into a fresh data directory with its migrations, served by the real `trail run`, and checked
 * for status, headers and body; plus SQL type mapping, SQL and JSON errors, thrown and rejected
 * handlers, blobs over HTTP and a transaction that writes, with the database checked after. */
#include "test.h"
#include "db/db.h"
#include "e2e/example_checks.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Builds examples/NAME (or, with test_component, tests/data/components/NAME) into a fresh data
 * directory, copies its migrations, and starts trail on it. */
static void start(th_server *s, const char *name, bool test_component, const char *const *extra)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", test_component ? "tests/data/components" : "examples", name);
    fx_start_app(s, dir, NULL, extra);
}

TEST_TIMEOUT(e2e_example_http_handlers, 120)
{
    th_server s;
    start(&s, "http-handlers", false, NULL);
    ex_check_http_handlers(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_request_api, 120)
{
    th_server s;
    start(&s, "request-api", false, NULL);
    ex_check_request_api(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_response_api, 120)
{
    th_server s;
    start(&s, "response-api", false, NULL);
    ex_check_response_api(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_database_access, 120)
{
    th_server s;
    start(&s, "database-access", false, NULL);
    ex_check_database_access(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_async_operations, 120)
{
    th_server s;
    start(&s, "async-operations", false, NULL);
    ex_check_async_operations(s.port);
    usleep(3500 * 1000);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "INFO  [WASM] Callback #0\n");
    CHECK_CONTAINS(log, "INFO  [WASM] Callback #9\n");
    CHECK(strstr(log, "Callback #10") == NULL);
    free(log);
}

TEST_TIMEOUT(e2e_example_rate_limiting, 120)
{
    const char *one[] = {"--runtime-threads", "1", NULL};
    th_server s;
    start(&s, "rate-limiting", false, one);
    ex_check_rate_limiting(s.port, "10.0.0.1");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_analytics, 120)
{
    th_server s;
    start(&s, "analytics", false, NULL);
    ex_check_analytics(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_dashboard, 120)
{
    th_server s;
    start(&s, "dashboard", false, NULL);
    ex_check_dashboard(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_vector_search, 120)
{
    th_server s;
    start(&s, "vector-search", false, NULL);
    ex_check_vector_search(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_error_handling, 120)
{
    th_server s;
    start(&s, "error-handling", false, NULL);
    ex_check_error_handling(s.port);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "ERROR [WASM] Query failed: Error: no such table: nonexistent_table");
    CHECK_CONTAINS(log, "INFO  [WASM] Query took ");
    CHECK_CONTAINS(log, "ERROR [WASM] Error: ");
    free(log);
}

/* ---- type mapping and error paths (tests/data/components/dbtypes) ---- */

TEST_TIMEOUT(e2e_sql_values_round_trip, 120)
{
    th_server s;
    start(&s, "dbtypes", true, NULL);
    ex_expect(ex_call(s.port, "GET", "/types", "", NULL), 200, EX_JSON,
              "{\"rows\":[\"null (null)\",\"number 0 (integer)\",\"number -1 (integer)\","
              "\"number 9007199254740991 (integer)\",\"number -9007199254740991 (integer)\","
              "\"bigint 9007199254740992 (integer)\",\"bigint -9007199254740992 (integer)\","
              "\"bigint 9223372036854775807 (integer)\",\"bigint -9223372036854775808 (integer)\","
              "\"number 1.5 (real)\",\"number -0.25 (real)\",\"number 1e+300 (real)\","
              "\"string \\\"\\\" 0 (text)\",\"string \\\"héllo 🌍\\\" 8 (text)\","
              "\"string \\\"a\\\\u0000b\\\" 3 (text)\",\"bytes [0,1,2,255] (blob)\","
              "\"bytes [] (blob)\",\"number 1 (integer)\",\"null (null)\","
              "\"bytes [0,0,192,63] (blob)\"],\"big\":1}");
    ex_expect(ex_call(s.port, "GET", "/bad-param", "", NULL), 200, EX_TEXT,
              "TypeError: SQL parameter 1: unsupported type [object Object]");
    /* a blob over HTTP: request body in, BLOB stored, Uint8Array out as octets */
    static const char bin[] = "\x00\x01\xff\x80zz\x00";
    char req[256];
    int n =
        snprintf(req, sizeof req, "POST /blob HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                 sizeof bin - 1);
    memcpy(req + n, bin, sizeof bin - 1);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send(&c, req, (size_t)n + sizeof bin - 1), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 10000), 0);
    CHECK_EQ(r.status, 200);
    char ct[200];
    CHECK_STR_EQ(th_resp_header(&r, "content-type", ct, sizeof ct), "application/octet-stream");
    CHECK_EQ(r.body_len, sizeof bin - 1);
    CHECK(memcmp(r.body, bin, sizeof bin - 1) == 0);
    th_resp_free(&r);
    th_conn_close(&c);
    CHECK_EQ(th_server_stop(&s), 0);

    /* what the handlers wrote, read back with SQLite itself */
    char path[800];
    snprintf(path, sizeof path, "%s/dbtypes/data/main.db", test_tmpdir());
    db_conn *db;
    tr_error err = {0};
    CHECK_EQ(db_open(path, &db, &err), 0);
    int64_t v = 0;
    CHECK_EQ(db_query_int(db, "SELECT v FROM vals WHERE typeof(v) = 'integer' ORDER BY v LIMIT 1",
                          &v, &err),
             0);
    CHECK_EQ(v, INT64_MIN);
    CHECK_EQ(db_query_int(db,
                          "SELECT count(*) FROM vals WHERE v = 'héllo 🌍' OR v = X'000102FF' "
                          "OR v = 'a' || char(0) || 'b'",
                          &v, &err),
             0);
    CHECK_EQ(v, 3);
    CHECK_EQ(db_query_int(db, "SELECT length(b) FROM blobs", &v, &err), 0);
    CHECK_EQ(v, (int64_t)sizeof bin - 1);
    db_close(db);
}

TEST_TIMEOUT(e2e_sql_and_handler_errors, 120)
{
    th_server s;
    start(&s, "dbtypes", true, NULL);
    ex_expect(ex_call(s.port, "GET", "/sql-error", "", NULL), 200, EX_TEXT,
              "caught Error: no such table: nope");
    ex_expect(ex_call(s.port, "GET", "/sql-error-uncaught", "", NULL), 500, EX_JSON,
              "{\"error\":\"Error: no such table: nope\"}");
    th_resp r = ex_call(s.port, "POST", "/json", "", "{bad");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    ex_expect(ex_call(s.port, "POST", "/json", "", "[1,{\"x\":null}]"), 200, EX_JSON,
              "{\"got\":[1,{\"x\":null}]}");
    ex_expect(ex_call(s.port, "POST", "/json-caught", "", "{bad"), 422, EX_JSON, "{\"mine\":400}");
    ex_expect(ex_call(s.port, "GET", "/throw", "", NULL), 500, EX_JSON,
              "{\"error\":\"Error: boom\"}");
    ex_expect(ex_call(s.port, "GET", "/reject", "", NULL), 500, EX_JSON,
              "{\"error\":\"RangeError: async boom\"}");
    ex_expect(ex_call(s.port, "GET", "/http-error", "", NULL), 409, EX_JSON,
              "{\"error\":\"already there\"}");
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "GET /sql-error-uncaught: uncaught Error: no such table: nope");
    CHECK_CONTAINS(log, "GET /reject: uncaught RangeError: async boom");
    free(log);
}

TEST_TIMEOUT(e2e_transaction_commits_and_rolls_back, 120)
{
    const char *one[] = {"--runtime-threads", "1", NULL};
    th_server s;
    start(&s, "dbtypes", true, one);
    ex_expect(ex_call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":30}"), 200,
              EX_JSON, "{\"balance\":70}");
    /* short of funds: the callback throws, both updates are rolled back */
    ex_expect(ex_call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":80}"), 409,
              EX_JSON, "{\"error\":\"insufficient funds\"}");
    ex_expect(ex_call(s.port, "POST", "/transfer", "", "{\"from\":2,\"to\":1,\"amount\":10}"), 200,
              EX_JSON, "{\"balance\":20}");
    /* concurrent transfers on one worker, each holding its transaction open across a 30 ms
     * timer: every other request's statements and transaction wait for it, none blocks */
    th_conn c[8];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(th_conn_open(&c[i], s.port), 0);
        static const char body[] = "{\"from\":1,\"to\":2,\"amount\":10,\"delay\":30}";
        char req[256];
        snprintf(req, sizeof req,
                 "POST /transfer HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                 sizeof body - 1, body);
        CHECK_EQ(th_conn_send_str(&c[i], req), 0);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < 8; i++) {
        th_resp r;
        CHECK_EQ(th_conn_read(&c[i], &r, false, 10000), 0);
        if (r.status == 200) ok++;
        if (r.status == 409) conflict++;
        th_resp_free(&r);
        th_conn_close(&c[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 8 * 30); /* the transactions ran one after another */
    CHECK_EQ(ok, 8);     /* 80 left on account 1: eight transfers of 10 fit exactly */
    CHECK_EQ(conflict, 0);
    ex_expect(ex_call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":1}"), 409,
              EX_JSON, "{\"error\":\"insufficient funds\"}");
    CHECK_EQ(th_server_stop(&s), 0);

    char path[800];
    snprintf(path, sizeof path, "%s/dbtypes/data/main.db", test_tmpdir());
    db_conn *db;
    tr_error err = {0};
    CHECK_EQ(db_open(path, &db, &err), 0);
    int64_t v = -1;
    CHECK_EQ(db_query_int(db, "SELECT balance FROM accounts WHERE id = 1", &v, &err), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(db_query_int(db, "SELECT balance FROM accounts WHERE id = 2", &v, &err), 0);
    CHECK_EQ(v, 100);
    db_close(db);
}

/* ---- requests and responses (tests/data/components/reqres) ---- */

TEST_TIMEOUT(e2e_requests_and_responses, 120)
{
    th_server s;
    start(&s, "reqres", true, NULL);
    /* both parameter syntaxes, decoded; the query decoded (+, %XX, repeated, empty, absent);
     * headers case-insensitive, repeated ones joined, all of them in arrival order */
    ex_expect(
        ex_call(s.port, "GET", "/r/a%20b/x/c%2Fd?q=1+2&q=%F0%9F%8C%8D&e&x=y",
                "X-Multi: 1\r\nX-Multi: 2\r\nX-Case: Up\r\n", NULL),
        200, EX_JSON,
        "{\"a\":\"a "
        "b\",\"b\":\"c/d\",\"none\":null,\"method\":\"GET\",\"path\":\"/r/a%20b/x/c%2Fd\","
        "\"url\":\"/r/a%20b/x/c%2Fd?q=1+2&q=%F0%9F%8C%8D&e&x=y\",\"q\":\"1 2\","
        "\"qs\":[\"1 2\",\"🌍\"],\"empty\":\"\",\"missing\":null,\"multi\":\"1, 2\","
        "\"lower\":\"Up\",\"absent\":null,\"headers\":[[\"x-multi\",\"1\"],[\"x-multi\",\"2\"],"
        "[\"x-case\",\"Up\"]]}");
    /* HEAD: the handler's status and headers, no body */
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(
                 &c, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /h HTTP/1.1\r\nHost: x\r\n\r\n"),
             0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, true, 10000), 0);
    char v[200];
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(th_resp_header(&r, "X-Head", v, sizeof v), "1");
    CHECK_STR_EQ(th_resp_header(&r, "Content-Length", v, sizeof v), "25");
    CHECK_EQ(r.body_len, 0);
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 10000), 0); /* the next response on the connection */
    ex_expect(r, 200, EX_TEXT, "get body");
    th_conn_close(&c);
    r = ex_call(s.port, "OPTIONS", "/h", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Allow", v, sizeof v), "GET, HEAD, OPTIONS");
    ex_expect(r, 204, NULL, "");
    /* the catch-all takes methods without a route of their own */
    ex_expect(ex_call(s.port, "PATCH", "/any", "", NULL), 200, EX_TEXT, "any PATCH");
    ex_expect(ex_call(s.port, "GET", "/any", "", NULL), 200, EX_TEXT, "any GET");
    ex_expect(ex_call(s.port, "POST", "/any", "", ""), 200, EX_TEXT, "post has its own route");
    /* text(): invalid UTF-8 becomes U+FFFD; body(): bytes in, bytes out */
    ex_expect(ex_call(s.port, "POST", "/text", "", "h\xffi"), 200, EX_TEXT, "3:h\xef\xbf\xbdi");
    ex_expect(ex_call(s.port, "PUT", "/bytes", "", "abc"), 200, "application/octet-stream", "cba");
    /* custom status, content type, a header given twice */
    r = ex_call(s.port, "GET", "/multi", "", NULL);
    CHECK_CONTAINS(r.head, "\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
    CHECK_STR_EQ(th_resp_header(&r, "X-One", v, sizeof v), "1");
    ex_expect(r, 201, "text/x-custom", "multi");
    r = ex_call(s.port, "GET", "/pairs", "", NULL);
    CHECK_CONTAINS(r.head, "\r\nX-P: 1\r\nx-p: 2\r\n");
    ex_expect(r, 200, EX_TEXT, "pairs");
    r = ex_call(s.port, "DELETE", "/gone", "", NULL);
    CHECK(th_resp_header(&r, "Content-Type", v, sizeof v) == NULL);
    ex_expect(r, 204, NULL, "");
    r = ex_call(s.port, "GET", "/teapot", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Retry-After", v, sizeof v), "5");
    ex_expect(r, 418, EX_JSON, "{\"error\":\"short and stout\"}");
    r = ex_call(s.port, "GET", "/redirect", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Location", v, sizeof v), "/h");
    ex_expect(r, 307, NULL, NULL);
    /* a header name that is not a token, or a value with CR LF, is never written */
    const char *const bad[] = {"/bad/name", "/bad/colon", "/bad/crlf"};
    for (size_t i = 0; i < 3; i++) {
        r = ex_call(s.port, "GET", bad[i], "", NULL);
        CHECK(strstr(r.head, "evil") == NULL && strstr(r.head, "bad name") == NULL &&
              strstr(r.head, "x-a:b") == NULL);
        ex_expect(r, 500, EX_JSON, "{\"error\":\"the handler returned an invalid response\"}");
    }
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "a header name is not a token");
    CHECK_CONTAINS(log, "without CR, LF or NUL");
    free(log);
    /* 10 MiB bodies arrive whole, as text and as bytes */
    r = ex_call(s.port, "GET", "/big", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, (size_t)10 << 20);
    CHECK(r.body[0] == 'x' && r.body[r.body_len - 1] == 'x');
    th_resp_free(&r);
    r = ex_call(s.port, "GET", "/big-bytes", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, (size_t)10 << 20);
    CHECK_EQ((unsigned char)r.body[4096 * 255], 255);
    CHECK_EQ((unsigned char)r.body[4096 * 256], 0);
    CHECK_EQ((unsigned char)r.body[4096 * 257], 1);
    CHECK_EQ((unsigned char)r.body[4097], 0);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* ---- remembered results (tests/data/components/stats, docs/database.md) ---- */

/* GET path on fresh connections (spread over the workers by SO_REUSEPORT), n times: each body
 * must be want. */
static void expect_everywhere(int port, const char *path, const char *want, int n)
{
    for (int i = 0; i < n; i++)
        ex_expect(ex_call(port, "GET", path, "Connection: close\r\n", NULL), 200, EX_JSON, want);
}

TEST_TIMEOUT(e2e_remembered_results_follow_every_write, 120)
{
    const char *two[] = {"--runtime-threads", "2", NULL};
    th_server s;
    start(&s, "stats", true, two);
    /* sum of 1..20000 = 200010000; group 3: 3, 13, ..., 19993 */
    expect_everywhere(s.port, "/stats", "{\"count\":20000,\"sum\":200010000}", 20);
    expect_everywhere(s.port, "/stats/3", "{\"count\":2000,\"sum\":19996000}", 10);
    /* a write through one worker: every worker's next answer has it */
    ex_expect(ex_call(s.port, "POST", "/items/7", "", NULL), 200, EX_JSON, "{\"inserted\":1}");
    expect_everywhere(s.port, "/stats", "{\"count\":20001,\"sum\":200010007}", 20);
    expect_everywhere(s.port, "/stats/3", "{\"count\":2000,\"sum\":19996000}", 4);
    /* a transaction sees its own row; after the commit everyone does */
    ex_expect(ex_call(s.port, "POST", "/tx-items/100", "", NULL), 200, EX_JSON,
              "{\"count\":20002,\"sum\":200010107}");
    expect_everywhere(s.port, "/stats", "{\"count\":20002,\"sum\":200010107}", 20);
    /* a write by another process's connection to the file (here: this test's own) */
    char path[800];
    snprintf(path, sizeof path, "%s/stats/data/main.db", test_tmpdir());
    db_conn *db;
    tr_error err = {0};
    CHECK_EQ(db_open(path, &db, &err), 0);
    CHECK_EQ(db_exec(db, "UPDATE items SET v = v + 1000 WHERE grp = 3", &err), 0);
    expect_everywhere(s.port, "/stats", "{\"count\":20002,\"sum\":202010107}", 20);
    expect_everywhere(s.port, "/stats/3", "{\"count\":2000,\"sum\":21996000}", 10);
    CHECK_EQ(db_exec(db, "DELETE FROM items WHERE id > 10000", &err), 0);
    expect_everywhere(s.port, "/stats", "{\"count\":10000,\"sum\":51005000}", 20);
    db_close(db);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Readers on two workers while a writer commits: every read counts at least every insert that
 * was acknowledged before the read was sent (a remembered result is never older than a commit
 * the client already saw). */
typedef struct race {
    int port;
    atomic_int acked; /* inserts answered so far */
    atomic_bool done;
    int stale, reads;
} race;

static void *race_writer(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 150; i++) {
        th_resp resp;
        if (th_request(r->port, "POST /items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       &resp) == 0 &&
            resp.status == 200)
            atomic_fetch_add(&r->acked, 1);
        th_resp_free(&resp);
        usleep(2000); /* several reads per write, so that some are answered from memory */
    }
    atomic_store(&r->done, true);
    return NULL;
}

TEST_TIMEOUT(e2e_remembered_results_never_older_than_an_acknowledged_write, 120)
{
    const char *two[] = {"--runtime-threads", "2", NULL};
    th_server s;
    start(&s, "stats", true, two);
    race r = {.port = s.port};
    pthread_t w;
    CHECK_EQ(pthread_create(&w, NULL, race_writer, &r), 0);
    while (!atomic_load(&r.done)) {
        int before = atomic_load(&r.acked);
        th_resp resp;
        CHECK_EQ(th_request(s.port, "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            &resp),
                 0);
        CHECK_EQ(resp.status, 200);
        int count = 0;
        CHECK_EQ(sscanf(resp.body, "{\"count\":%d", &count), 1);
        if (count < 20000 + before) r.stale++;
        r.reads++;
        th_resp_free(&resp);
    }
    pthread_join(w, NULL);
    test_report("%d reads during 150 acknowledged inserts on 2 workers: %d stale", r.reads,
                r.stale);
    CHECK_EQ(r.stale, 0);
    CHECK(r.reads > 20);
    ex_expect(ex_call(s.port, "GET", "/stats", "", NULL), 200, EX_JSON,
              "{\"count\":20150,\"sum\":200010150}");
    CHECK_EQ(th_server_stop(&s), 0);
}
