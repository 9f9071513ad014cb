/* The apps of examples/ (one per section of the reference), each built with tools/sdk-build.sh
 * into a fresh data directory with its migrations, served by the real `trail run`, and checked
 * for status, headers and body; plus SQL type mapping, SQL and JSON errors, thrown and rejected
 * handlers, blobs over HTTP and a transaction that writes, with the database checked after. */
#include "test.h"
#include "db/db.h"
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

/* One request: method, path, extra header lines (each ending CRLF, may be ""), body (may be
 * NULL). */
static th_resp call(int port, const char *method, const char *path, const char *headers,
                    const char *body)
{
    char req[8192];
    if (body)
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s",
                 method, path, headers, strlen(body), body);
    else
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n", method, path, headers);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

/* Checks status, content type (prefix; NULL: not checked) and exact body, then frees r. */
static void expect(th_resp r, int status, const char *type, const char *body)
{
    CHECK_EQ(r.status, status);
    if (type) {
        char ct[200];
        CHECK(th_resp_header(&r, "content-type", ct, sizeof ct) != NULL);
        CHECK_CONTAINS(ct, type);
    }
    if (body) CHECK_STR_EQ(r.body, body);
    th_resp_free(&r);
}

#define JSON "application/json"
#define TEXT "text/plain; charset=utf-8"

TEST_TIMEOUT(e2e_example_http_handlers, 120)
{
    th_server s;
    start(&s, "http-handlers", false, NULL);
    expect(call(s.port, "GET", "/users", "", NULL), 200, JSON, "{\"users\":[]}");
    expect(call(s.port, "POST", "/users", "", "{\"name\":\"Ann\"}"), 200, JSON,
           "{\"id\":1,\"name\":\"Ann\"}");
    expect(call(s.port, "PUT", "/users/7", "", "{\"name\":\"Bo\"}"), 200, JSON,
           "{\"id\":\"7\",\"name\":\"Bo\"}");
    expect(call(s.port, "PATCH", "/users/7", "", "{\"age\":3}"), 200, JSON,
           "{\"id\":\"7\",\"updated\":{\"age\":3}}");
    expect(call(s.port, "DELETE", "/users/a%20b", "", NULL), 200, JSON, "{\"deleted\":\"a b\"}");
    /* a body that is not JSON: 400, the handler does not catch it */
    th_resp r = call(s.port, "POST", "/users", "", "{nope");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    /* a method without a route on a path that has routes: 405, naming the methods it has */
    r = call(s.port, "PUT", "/users", "", "{}");
    CHECK_EQ(r.status, 405);
    char allow[64];
    CHECK(th_resp_header(&r, "Allow", allow, sizeof allow) != NULL);
    CHECK_STR_EQ(allow, "GET, HEAD, POST");
    CHECK_CONTAINS(r.body, "{\"error\":\"method not allowed\"}");
    th_resp_free(&r);
    /* a path without a route: 404 */
    r = call(s.port, "GET", "/nothing-here", "", NULL);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_request_api, 120)
{
    th_server s;
    start(&s, "request-api", false, NULL);
    expect(call(s.port, "GET", "/api/example?page=2", "Content-Type: application/json\r\n",
                "{\"a\":[1,2]}"),
           200, JSON, "{\"page\":\"2\",\"limit\":\"10\",\"id\":null,\"body\":{\"a\":[1,2]}}");
    expect(call(s.port, "GET", "/api/example?limit=5%20x&page=", "", "\"s\""), 200, JSON,
           "{\"page\":\"\",\"limit\":\"5 x\",\"id\":null,\"body\":\"s\"}");
    /* the sample reads the body as JSON even on GET: without one, json() is undefined, so the
     * response has no body key (the reference's own example, as written) */
    expect(call(s.port, "GET", "/api/example?page=2", "", NULL), 200, JSON,
           "{\"page\":\"2\",\"limit\":\"10\",\"id\":null}");
    /* a body that is not JSON is still a 400 */
    th_resp r = call(s.port, "GET", "/api/example", "", "{\"a\":");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_response_api, 120)
{
    th_server s;
    start(&s, "response-api", false, NULL);
    expect(call(s.port, "GET", "/text", "", NULL), 200, TEXT, "Hello, World!");
    expect(call(s.port, "GET", "/json", "", NULL), 200, JSON, "{\"status\":\"ok\"}");
    expect(call(s.port, "GET", "/not-found", "", NULL), 404, JSON, "{\"error\":\"Not found\"}");
    th_resp r = call(s.port, "GET", "/custom", "", NULL);
    char v[200];
    CHECK_STR_EQ(th_resp_header(&r, "X-Custom-Header", v, sizeof v), "value");
    CHECK_STR_EQ(th_resp_header(&r, "Cache-Control", v, sizeof v), "max-age=3600");
    expect(r, 200, JSON, "{\"data\":\"test\"}");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_database_access, 120)
{
    th_server s;
    start(&s, "database-access", false, NULL);
    expect(call(s.port, "GET", "/stats/todos", "", NULL), 200, JSON,
           "{\"total\":6,\"done\":3,\"pending\":3}");
    th_resp r = call(s.port, "GET", "/todos/search?q=Buy", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"Buy milk\"");
    CHECK_CONTAINS(r.body, "\"Buy coffee beans\"");
    CHECK(strstr(r.body, "Book flights") == NULL);
    th_resp_free(&r);
    /* a LIKE pattern from user input stays a parameter */
    expect(call(s.port, "GET", "/todos/search?q=%27%20OR%201%3D1%20--", "", NULL), 200, JSON,
           "{\"results\":[]}");
    /* the join with the built-in _user table */
    expect(call(s.port, "GET", "/reports/user-activity", "", NULL), 200, JSON,
           "{\"topUsers\":[[\"alice@example.com\",3,2],[\"bob@example.com\",2,1],"
           "[\"carol@example.com\",1,0]]}");
    /* a BLOB from one query (the _user id) as the parameter of the next */
    r = call(s.port, "GET", "/todos/user/bob@example.com", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"Buy coffee beans\"");
    CHECK_CONTAINS(r.body, "\"Water the plants\"");
    CHECK(strstr(r.body, "Buy milk") == NULL);
    th_resp_free(&r);
    expect(call(s.port, "GET", "/todos/user/nobody@example.com", "", NULL), 404, JSON,
           "{\"error\":\"No such user\"}");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_async_operations, 120)
{
    th_server s;
    start(&s, "async-operations", false, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect(call(s.port, "GET", "/delayed-response", "", NULL), 200, TEXT, "Delayed by 1 second");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 1000);
    /* the periodic callback keeps running after the response, and stops itself after 10 */
    expect(call(s.port, "GET", "/periodic", "", NULL), 200, TEXT, "Started periodic task");
    expect(call(s.port, "GET", "/dashboard", "", NULL), 200, JSON,
           "{\"users\":2,\"todos\":3,\"articles\":4}");
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
    for (int i = 0; i < 10; i++)
        expect(call(s.port, "GET", "/api/expensive", "X-Forwarded-For: 10.0.0.1\r\n", NULL), 200,
               TEXT, "OK");
    expect(call(s.port, "GET", "/api/expensive", "X-Forwarded-For: 10.0.0.1\r\n", NULL), 429, JSON,
           "{\"error\":\"Rate limit exceeded\"}");
    /* another client has its own count; no header counts as "unknown" */
    expect(call(s.port, "GET", "/api/expensive", "x-forwarded-for: 10.0.0.2\r\n", NULL), 200, TEXT,
           "OK");
    expect(call(s.port, "GET", "/api/expensive", "", NULL), 200, TEXT, "OK");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_analytics, 120)
{
    th_server s;
    start(&s, "analytics", false, NULL);
    expect(call(s.port, "GET", "/api/analytics/overview", "", NULL), 200, JSON,
           "{\"users\":{\"total\":4,\"active\":2},\"todos\":{\"total\":8,\"completionRate\":"
           "\"37.5%\"}}");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_dashboard, 120)
{
    th_server s;
    start(&s, "dashboard", false, NULL);
    expect(call(s.port, "GET", "/dashboard", "", NULL), 200, JSON,
           "{\"users\":2,\"todos\":3,\"articles\":4}");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_vector_search, 120)
{
    th_server s;
    start(&s, "vector-search", false, NULL);
    /* the sample's mock embedding is a zero vector: every distance is NULL, LIMIT still holds */
    expect(call(s.port, "GET", "/api/search?q=fruity&limit=2", "", NULL), 200, JSON,
           "{\"results\":[[\"Ethiopia Yirgacheffe\",\"Washed heirloom varieties from Gedeo\","
           "\"jasmine, lemon, bergamot\",null],[\"Colombia Huila\",\"Caturra and Castillo from "
           "smallholders\",\"caramel, red apple, cocoa\",null]]}");
    th_resp r = call(s.port, "GET", "/api/search?q=x", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "Panama Geisha"); /* the default limit of 10 covers all 8 */
    th_resp_free(&r);
    expect(call(s.port, "GET", "/api/search", "", NULL), 400, JSON,
           "{\"error\":\"Missing query\"}");
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_example_error_handling, 120)
{
    th_server s;
    start(&s, "error-handling", false, NULL);
    expect(call(s.port, "GET", "/api/risky", "", NULL), 500, JSON,
           "{\"error\":\"Internal server error\"}");
    th_resp r = call(s.port, "GET", "/api/slow", "", NULL);
    CHECK_EQ(r.status, 200);
    long duration = -1, rows = -1;
    CHECK_EQ(sscanf(r.body, "{\"duration\":%ld,\"rows\":%ld}", &duration, &rows), 2);
    CHECK_EQ(rows, 10000);
    CHECK(duration >= 0);
    th_resp_free(&r);
    expect(call(s.port, "POST", "/api/resource", "", "{\"a\":1}"), 200, JSON, "{\"success\":true}");
    r = call(s.port, "POST", "/api/resource", "", "not json");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    th_resp_free(&r);
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
    expect(call(s.port, "GET", "/types", "", NULL), 200, JSON,
           "{\"rows\":[\"null (null)\",\"number 0 (integer)\",\"number -1 (integer)\","
           "\"number 9007199254740991 (integer)\",\"number -9007199254740991 (integer)\","
           "\"bigint 9007199254740992 (integer)\",\"bigint -9007199254740992 (integer)\","
           "\"bigint 9223372036854775807 (integer)\",\"bigint -9223372036854775808 (integer)\","
           "\"number 1.5 (real)\",\"number -0.25 (real)\",\"number 1e+300 (real)\","
           "\"string \\\"\\\" 0 (text)\",\"string \\\"héllo 🌍\\\" 8 (text)\","
           "\"string \\\"a\\\\u0000b\\\" 3 (text)\",\"bytes [0,1,2,255] (blob)\","
           "\"bytes [] (blob)\",\"number 1 (integer)\",\"null (null)\","
           "\"bytes [0,0,192,63] (blob)\"],\"big\":1}");
    expect(call(s.port, "GET", "/bad-param", "", NULL), 200, TEXT,
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
    expect(call(s.port, "GET", "/sql-error", "", NULL), 200, TEXT,
           "caught Error: no such table: nope");
    expect(call(s.port, "GET", "/sql-error-uncaught", "", NULL), 500, JSON,
           "{\"error\":\"Error: no such table: nope\"}");
    th_resp r = call(s.port, "POST", "/json", "", "{bad");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    expect(call(s.port, "POST", "/json", "", "[1,{\"x\":null}]"), 200, JSON,
           "{\"got\":[1,{\"x\":null}]}");
    expect(call(s.port, "POST", "/json-caught", "", "{bad"), 422, JSON, "{\"mine\":400}");
    expect(call(s.port, "GET", "/throw", "", NULL), 500, JSON, "{\"error\":\"Error: boom\"}");
    expect(call(s.port, "GET", "/reject", "", NULL), 500, JSON,
           "{\"error\":\"RangeError: async boom\"}");
    expect(call(s.port, "GET", "/http-error", "", NULL), 409, JSON,
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
    expect(call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":30}"), 200, JSON,
           "{\"balance\":70}");
    /* short of funds: the callback throws, both updates are rolled back */
    expect(call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":80}"), 409, JSON,
           "{\"error\":\"insufficient funds\"}");
    expect(call(s.port, "POST", "/transfer", "", "{\"from\":2,\"to\":1,\"amount\":10}"), 200, JSON,
           "{\"balance\":20}");
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
    expect(call(s.port, "POST", "/transfer", "", "{\"from\":1,\"to\":2,\"amount\":1}"), 409, JSON,
           "{\"error\":\"insufficient funds\"}");
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
    expect(call(s.port, "GET", "/r/a%20b/x/c%2Fd?q=1+2&q=%F0%9F%8C%8D&e&x=y",
                "X-Multi: 1\r\nX-Multi: 2\r\nX-Case: Up\r\n", NULL),
           200, JSON,
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
    expect(r, 200, TEXT, "get body");
    th_conn_close(&c);
    r = call(s.port, "OPTIONS", "/h", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Allow", v, sizeof v), "GET, HEAD, OPTIONS");
    expect(r, 204, NULL, "");
    /* the catch-all takes methods without a route of their own */
    expect(call(s.port, "PATCH", "/any", "", NULL), 200, TEXT, "any PATCH");
    expect(call(s.port, "GET", "/any", "", NULL), 200, TEXT, "any GET");
    expect(call(s.port, "POST", "/any", "", ""), 200, TEXT, "post has its own route");
    /* text(): invalid UTF-8 becomes U+FFFD; body(): bytes in, bytes out */
    expect(call(s.port, "POST", "/text", "", "h\xffi"), 200, TEXT, "3:h\xef\xbf\xbdi");
    expect(call(s.port, "PUT", "/bytes", "", "abc"), 200, "application/octet-stream", "cba");
    /* custom status, content type, a header given twice */
    r = call(s.port, "GET", "/multi", "", NULL);
    CHECK_CONTAINS(r.head, "\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
    CHECK_STR_EQ(th_resp_header(&r, "X-One", v, sizeof v), "1");
    expect(r, 201, "text/x-custom", "multi");
    r = call(s.port, "GET", "/pairs", "", NULL);
    CHECK_CONTAINS(r.head, "\r\nX-P: 1\r\nx-p: 2\r\n");
    expect(r, 200, TEXT, "pairs");
    r = call(s.port, "DELETE", "/gone", "", NULL);
    CHECK(th_resp_header(&r, "Content-Type", v, sizeof v) == NULL);
    expect(r, 204, NULL, "");
    r = call(s.port, "GET", "/teapot", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Retry-After", v, sizeof v), "5");
    expect(r, 418, JSON, "{\"error\":\"short and stout\"}");
    r = call(s.port, "GET", "/redirect", "", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Location", v, sizeof v), "/h");
    expect(r, 307, NULL, NULL);
    /* a header name that is not a token, or a value with CR LF, is never written */
    const char *const bad[] = {"/bad/name", "/bad/colon", "/bad/crlf"};
    for (size_t i = 0; i < 3; i++) {
        r = call(s.port, "GET", bad[i], "", NULL);
        CHECK(strstr(r.head, "evil") == NULL && strstr(r.head, "bad name") == NULL &&
              strstr(r.head, "x-a:b") == NULL);
        expect(r, 500, JSON, "{\"error\":\"the handler returned an invalid response\"}");
    }
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "a header name is not a token");
    CHECK_CONTAINS(log, "without CR, LF or NUL");
    free(log);
    /* 10 MiB bodies arrive whole, as text and as bytes */
    r = call(s.port, "GET", "/big", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, (size_t)10 << 20);
    CHECK(r.body[0] == 'x' && r.body[r.body_len - 1] == 'x');
    th_resp_free(&r);
    r = call(s.port, "GET", "/big-bytes", "", NULL);
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
        expect(call(port, "GET", path, "Connection: close\r\n", NULL), 200, JSON, want);
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
    expect(call(s.port, "POST", "/items/7", "", NULL), 200, JSON, "{\"inserted\":1}");
    expect_everywhere(s.port, "/stats", "{\"count\":20001,\"sum\":200010007}", 20);
    expect_everywhere(s.port, "/stats/3", "{\"count\":2000,\"sum\":19996000}", 4);
    /* a transaction sees its own row; after the commit everyone does */
    expect(call(s.port, "POST", "/tx-items/100", "", NULL), 200, JSON,
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
    test_report("%d reads during 150 acknowledged inserts on 2 workers: %d stale", r.reads, r.stale);
    CHECK_EQ(r.stale, 0);
    CHECK(r.reads > 20);
    expect(call(s.port, "GET", "/stats", "", NULL), 200, JSON,
           "{\"count\":20150,\"sum\":200010150}");
    CHECK_EQ(th_server_stop(&s), 0);
}
