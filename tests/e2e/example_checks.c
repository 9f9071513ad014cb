/* tests/e2e/example_checks.c: see example_checks.h. */
#include "e2e/example_checks.h"

#include "test.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

th_resp ex_call(int port, const char *method, const char *path, const char *headers,
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

void ex_expect(th_resp r, int status, const char *type, const char *body)
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

void ex_check_http_handlers(int port)
{
    ex_expect(ex_call(port, "GET", "/users", "", NULL), 200, EX_JSON, "{\"users\":[]}");
    ex_expect(ex_call(port, "POST", "/users", "", "{\"name\":\"Ann\"}"), 200, EX_JSON,
              "{\"id\":1,\"name\":\"Ann\"}");
    ex_expect(ex_call(port, "PUT", "/users/7", "", "{\"name\":\"Bo\"}"), 200, EX_JSON,
              "{\"id\":\"7\",\"name\":\"Bo\"}");
    ex_expect(ex_call(port, "PATCH", "/users/7", "", "{\"age\":3}"), 200, EX_JSON,
              "{\"id\":\"7\",\"updated\":{\"age\":3}}");
    ex_expect(ex_call(port, "DELETE", "/users/a%20b", "", NULL), 200, EX_JSON,
              "{\"deleted\":\"a b\"}");
    /* a body that is not JSON: 400, the handler does not catch it */
    th_resp r = ex_call(port, "POST", "/users", "", "{nope");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "{\"error\":\"invalid JSON in request body: ");
    th_resp_free(&r);
    /* a method without a route on a path that has routes: 405, naming the methods it has */
    r = ex_call(port, "PUT", "/users", "", "{}");
    CHECK_EQ(r.status, 405);
    char allow[64];
    CHECK(th_resp_header(&r, "Allow", allow, sizeof allow) != NULL);
    CHECK_STR_EQ(allow, "GET, HEAD, POST");
    CHECK_CONTAINS(r.body, "{\"error\":\"method not allowed\"}");
    th_resp_free(&r);
    /* a path without a route: 404 */
    r = ex_call(port, "GET", "/nothing-here", "", NULL);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
}

void ex_check_request_api(int port)
{
    ex_expect(ex_call(port, "GET", "/api/example?page=2", "Content-Type: application/json\r\n",
                      "{\"a\":[1,2]}"),
              200, EX_JSON, "{\"page\":\"2\",\"limit\":\"10\",\"id\":null,\"body\":{\"a\":[1,2]}}");
    ex_expect(ex_call(port, "GET", "/api/example?limit=5%20x&page=", "", "\"s\""), 200, EX_JSON,
              "{\"page\":\"\",\"limit\":\"5 x\",\"id\":null,\"body\":\"s\"}");
    /* the sample reads the body as JSON even on GET: without one, json() is undefined, so the
     * response has no body key (the reference's own example, as written) */
    ex_expect(ex_call(port, "GET", "/api/example?page=2", "", NULL), 200, EX_JSON,
              "{\"page\":\"2\",\"limit\":\"10\",\"id\":null}");
    /* a body that is not JSON is still a 400 */
    th_resp r = ex_call(port, "GET", "/api/example", "", "{\"a\":");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    th_resp_free(&r);
}

void ex_check_response_api(int port)
{
    ex_expect(ex_call(port, "GET", "/text", "", NULL), 200, EX_TEXT, "Hello, World!");
    ex_expect(ex_call(port, "GET", "/json", "", NULL), 200, EX_JSON, "{\"status\":\"ok\"}");
    ex_expect(ex_call(port, "GET", "/not-found", "", NULL), 404, EX_JSON,
              "{\"error\":\"Not found\"}");
    th_resp r = ex_call(port, "GET", "/custom", "", NULL);
    char v[200];
    CHECK_STR_EQ(th_resp_header(&r, "X-Custom-Header", v, sizeof v), "value");
    CHECK_STR_EQ(th_resp_header(&r, "Cache-Control", v, sizeof v), "max-age=3600");
    ex_expect(r, 200, EX_JSON, "{\"data\":\"test\"}");
}

void ex_check_database_access(int port)
{
    ex_expect(ex_call(port, "GET", "/stats/todos", "", NULL), 200, EX_JSON,
              "{\"total\":6,\"done\":3,\"pending\":3}");
    th_resp r = ex_call(port, "GET", "/todos/search?q=Buy", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"Buy milk\"");
    CHECK_CONTAINS(r.body, "\"Buy coffee beans\"");
    CHECK(strstr(r.body, "Book flights") == NULL);
    th_resp_free(&r);
    /* a LIKE pattern from user input stays a parameter */
    ex_expect(ex_call(port, "GET", "/todos/search?q=%27%20OR%201%3D1%20--", "", NULL), 200, EX_JSON,
              "{\"results\":[]}");
    /* the join with the built-in _user table */
    ex_expect(ex_call(port, "GET", "/reports/user-activity", "", NULL), 200, EX_JSON,
              "{\"topUsers\":[[\"alice@example.com\",3,2],[\"bob@example.com\",2,1],"
              "[\"carol@example.com\",1,0]]}");
    /* a BLOB from one query (the _user id) as the parameter of the next */
    r = ex_call(port, "GET", "/todos/user/bob@example.com", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"Buy coffee beans\"");
    CHECK_CONTAINS(r.body, "\"Water the plants\"");
    CHECK(strstr(r.body, "Buy milk") == NULL);
    th_resp_free(&r);
    ex_expect(ex_call(port, "GET", "/todos/user/nobody@example.com", "", NULL), 404, EX_JSON,
              "{\"error\":\"No such user\"}");
}

void ex_check_async_operations(int port)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ex_expect(ex_call(port, "GET", "/delayed-response", "", NULL), 200, EX_TEXT,
              "Delayed by 1 second");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 1000);
    /* the periodic callback keeps running after the response, and stops itself after 10 */
    ex_expect(ex_call(port, "GET", "/periodic", "", NULL), 200, EX_TEXT, "Started periodic task");
    ex_expect(ex_call(port, "GET", "/dashboard", "", NULL), 200, EX_JSON,
              "{\"users\":2,\"todos\":3,\"articles\":4}");
}

void ex_check_rate_limiting(int port, const char *client)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "X-Forwarded-For: %s\r\n", client);
    for (int i = 0; i < 10; i++)
        ex_expect(ex_call(port, "GET", "/api/expensive", hdr, NULL), 200, EX_TEXT, "OK");
    ex_expect(ex_call(port, "GET", "/api/expensive", hdr, NULL), 429, EX_JSON,
              "{\"error\":\"Rate limit exceeded\"}");
    /* another client has its own count; no header counts as "unknown" */
    ex_expect(ex_call(port, "GET", "/api/expensive", "x-forwarded-for: 10.9.9.9\r\n", NULL), 200,
              EX_TEXT, "OK");
    ex_expect(ex_call(port, "GET", "/api/expensive", "", NULL), 200, EX_TEXT, "OK");
}

void ex_check_analytics(int port)
{
    ex_expect(ex_call(port, "GET", "/api/analytics/overview", "", NULL), 200, EX_JSON,
              "{\"users\":{\"total\":4,\"active\":2},\"todos\":{\"total\":8,\"completionRate\":"
              "\"37.5%\"}}");
}

void ex_check_dashboard(int port)
{
    ex_expect(ex_call(port, "GET", "/dashboard", "", NULL), 200, EX_JSON,
              "{\"users\":2,\"todos\":3,\"articles\":4}");
}

void ex_check_vector_search(int port)
{
    /* the sample's mock embedding is a zero vector: every distance is NULL, LIMIT still holds */
    ex_expect(ex_call(port, "GET", "/api/search?q=fruity&limit=2", "", NULL), 200, EX_JSON,
              "{\"results\":[[\"Ethiopia Yirgacheffe\",\"Washed heirloom varieties from Gedeo\","
              "\"jasmine, lemon, bergamot\",null],[\"Colombia Huila\",\"Caturra and Castillo from "
              "smallholders\",\"caramel, red apple, cocoa\",null]]}");
    th_resp r = ex_call(port, "GET", "/api/search?q=x", "", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "Panama Geisha"); /* the default limit of 10 covers all 8 */
    th_resp_free(&r);
    ex_expect(ex_call(port, "GET", "/api/search", "", NULL), 400, EX_JSON,
              "{\"error\":\"Missing query\"}");
}

void ex_check_error_handling(int port)
{
    ex_expect(ex_call(port, "GET", "/api/risky", "", NULL), 500, EX_JSON,
              "{\"error\":\"Internal server error\"}");
    th_resp r = ex_call(port, "GET", "/api/slow", "", NULL);
    CHECK_EQ(r.status, 200);
    long duration = -1, rows = -1;
    CHECK_EQ(sscanf(r.body, "{\"duration\":%ld,\"rows\":%ld}", &duration, &rows), 2);
    CHECK_EQ(rows, 10000);
    CHECK(duration >= 0);
    th_resp_free(&r);
    ex_expect(ex_call(port, "POST", "/api/resource", "", "{\"a\":1}"), 200, EX_JSON,
              "{\"success\":true}");
    r = ex_call(port, "POST", "/api/resource", "", "not json");
    CHECK_EQ(r.status, 400);
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    th_resp_free(&r);
}

void ex_check_kv_rate_limiting(int port, const char *client)
{
    /* The limiter counts in fixed one-minute windows of the wall clock: start early in one, so
     * that the 11 requests fall in the same window however slow the machine is. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec % 60 >= 45) {
        long wait_ms = (60 - now.tv_sec % 60) * 1000L - now.tv_nsec / 1000000 + 200;
        nanosleep(&(struct timespec){wait_ms / 1000, (wait_ms % 1000) * 1000000L}, NULL);
    }
    char hdr[128];
    snprintf(hdr, sizeof hdr, "X-Forwarded-For: %s\r\nConnection: close\r\n", client);
    for (int i = 0; i < 10; i++)
        ex_expect(ex_call(port, "GET", "/api/expensive", hdr, NULL), 200, NULL, "OK");
    ex_expect(ex_call(port, "GET", "/api/expensive", hdr, NULL), 429, EX_JSON,
              "{\"error\":\"Rate limit exceeded\"}");
    ex_expect(ex_call(port, "GET", "/api/expensive", "X-Forwarded-For: 10.9.9.8\r\n", NULL), 200,
              NULL, "OK");
}

void ex_check_kv_cache(int port, int total)
{
    char want[200];
    snprintf(want, sizeof want,
             "{\"source\":\"database\",\"stats\":{\"total\":%d,\"completed\":1}}", total);
    ex_expect(ex_call(port, "GET", "/stats/todos", "", NULL), 200, EX_JSON, want);
    snprintf(want, sizeof want, "{\"source\":\"cache\",\"stats\":{\"total\":%d,\"completed\":1}}",
             total);
    for (int i = 0; i < 6; i++)
        ex_expect(ex_call(port, "GET", "/stats/todos", "Connection: close\r\n", NULL), 200, EX_JSON,
                  want);
    ex_expect(ex_call(port, "POST", "/todos", "", "{\"title\":\"more\"}"), 201, EX_JSON,
              "{\"added\":\"more\"}");
    snprintf(want, sizeof want,
             "{\"source\":\"database\",\"stats\":{\"total\":%d,\"completed\":1}}", total + 1);
    ex_expect(ex_call(port, "GET", "/stats/todos", "", NULL), 200, EX_JSON, want);
}
