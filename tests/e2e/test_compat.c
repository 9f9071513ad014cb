/* Code written for the reference system's SDK, on trail: two components of the repository
 * (tests/data/components/compat_named and compat_default), one in each export form, built with
 * tools/sdk-build.sh and served by the real `trail run`. They use every name of the reference's
 * API (requests with methods, response statics and setters, HttpError.from, StatusCode, the
 * HttpHandler and JobHandler constructors, escape, the synchronous Transaction, readFileSync,
 * base64, init and metadata); the test checks what comes back over HTTP, the rows the handlers and
 * jobs wrote, and that WebDAV methods reach HttpHandler.all(). */
#include "test.h"
#include "db/db.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Builds tests/data/components/NAME into a fresh data directory and serves it, with a root
 * directory for readFileSync holding /hello.txt. */
static void start(th_server *s, const char *name)
{
    const char *root = getenv("TRAIL_ROOT");
    char depot[700], files[700], cmd[6000];
    snprintf(depot, sizeof depot, "%s/%s", test_tmpdir(), name);
    snprintf(files, sizeof files, "%s/%s-files", test_tmpdir(), name);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/wasm' '%s' && printf 'hello file' > '%s/hello.txt' && "
             "'%s/tools/sdk-build.sh' '%s/tests/data/components/%s' '%s/wasm/%s.wasm' >/dev/null",
             depot, files, files, root, root, name, depot, name);
    if (fx_sh(cmd) != 0) test_fail(__FILE__, __LINE__, "building component %s failed", name);
    const char *extra[] = {"--runtime-root-fs", files, NULL};
    CHECK_EQ(th_server_start(s, depot, extra), 0);
}

static th_resp call(int port, const char *method, const char *path, const char *body)
{
    char req[4096];
    if (body)
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: example.test:8080\r\nX-Test: v\r\nContent-Length: "
                 "%zu\r\n\r\n%s",
                 method, path, strlen(body), body);
    else
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: example.test:8080\r\nX-Test: v\r\n\r\n",
                 method, path);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

/* Checks status, content type (prefix; NULL: not checked, "": none) and exact body; frees r. */
static void expect(th_resp r, int status, const char *type, const char *body)
{
    CHECK_EQ(r.status, status);
    char ct[200];
    if (type && type[0]) {
        CHECK(th_resp_header(&r, "content-type", ct, sizeof ct) != NULL);
        CHECK_CONTAINS(ct, type);
    } else if (type) {
        CHECK(th_resp_header(&r, "content-type", ct, sizeof ct) == NULL);
    }
    if (body) CHECK_STR_EQ(r.body, body);
    th_resp_free(&r);
}

static long long count(const char *name, const char *sql)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s/data/main.db", test_tmpdir(), name);
    db_conn *db;
    tr_error err = {0};
    CHECK_EQ(db_open(path, &db, &err), 0);
    int64_t v = -1;
    int rc = db_query_int(db, sql, &v, &err);
    db_close(db);
    CHECK_EQ(rc, 0);
    return (long long)v;
}

#define JSON "application/json"
#define TEXT "text/plain; charset=utf-8"

TEST_TIMEOUT(e2e_compat_reference_export_form, 180)
{
    th_server s;
    start(&s, "compat_named");
    int p = s.port;
    /* requests: lower-case method(), path() with the query, an absolute url(), header bytes */
    expect(call(p, "GET", "/method", NULL), 200, TEXT, "get");
    expect(call(p, "POST", "/method", ""), 200, TEXT, "post");
    expect(call(p, "DELETE", "/method", NULL), 200, TEXT, "delete");
    expect(call(p, "PUT", "/method", ""), 200, TEXT, "put via the constructor: put");
    expect(call(p, "PROPFIND", "/method", NULL), 200, TEXT, "own route: propfind");
    th_resp r = call(p, "PATCH", "/method", "");
    char v[200];
    CHECK_CONTAINS(th_resp_header(&r, "Allow", v, sizeof v), "PROPFIND");
    expect(r, 405, JSON, NULL);
    expect(call(p, "GET", "/req/7?q=a%20b", NULL), 200, JSON,
           "{\"method\":\"get\",\"path\":\"/req/7?q=a%20b\",\"url\":\"http://"
           "example.test:8080/req/7?q=a%20b\",\"search\":\"a b\",\"scheme\":\"HTTP\","
           "\"authority\":\"example.test:8080\",\"headers\":[[\"x-test\",\"v\"]],"
           "\"pathParams\":[[\"id\",\"7\"]],\"id\":\"7\",\"q\":\"a b\",\"user\":null}");
    /* WebDAV and other methods reach HttpHandler.all() */
    const char *const dav[] = {"PROPFIND",  "MKCOL",  "LOCK",   "UNLOCK", "COPY",   "MOVE",
                               "PROPPATCH", "REPORT", "SEARCH", "GET",    "OPTIONS"};
    for (size_t i = 0; i < sizeof dav / sizeof dav[0]; i++) {
        char want[100];
        snprintf(want, sizeof want, "%s /dav/a/b?x=1", dav[i]);
        for (char *c = want; *c != ' '; c++)
            *c = (char)(*c - 'A' + 'a');
        expect(call(p, dav[i], "/dav/a/b?x=1", NULL), 200, TEXT, want);
    }
    /* errors: HttpError.from and StatusCode; trail answers with its JSON error body */
    expect(call(p, "GET", "/error", NULL), 418, JSON, "{\"error\":\"I'm a teapot\"}");
    expect(call(p, "GET", "/error-new", NULL), 400, JSON, "{\"error\":\"Missing ?url param\"}");
    /* json() without a body is undefined; with one, the value */
    const char *dflt = "{\"int\":5,\"real\":4.2,\"msg\":\"foo\",\"obj\":{\"nested\":true}}";
    expect(call(p, "GET", "/json", NULL), 200, JSON, dflt);
    expect(call(p, "POST", "/json", ""), 200, JSON, dflt);
    expect(call(p, "POST", "/json", "{\"x\":[1]}"), 200, JSON, "{\"x\":[1]}");
    r = call(p, "POST", "/json", "{\"x\":");
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    expect(r, 400, JSON, NULL);
    /* a handler that returns nothing: 200, no body */
    expect(call(p, "GET", "/void", NULL), 200, "", "");
    expect(call(p, "GET", "/void-async", NULL), 200, "", "");
    /* response statics and chainable setters */
    r = call(p, "GET", "/ok", NULL);
    CHECK_CONTAINS(r.head, "\r\nx-a: 1\r\nx-b: 2\r\n");
    expect(r, 200, TEXT, "fine");
    expect(call(p, "GET", "/ok-empty", NULL), 200, "", "");
    expect(call(p, "GET", "/status", NULL), 201, TEXT, "remade");
    expect(call(p, "GET", "/status-bytes", NULL), 202, "application/octet-stream", "hi");
    expect(call(p, "GET", "/text-bytes", NULL), 200, TEXT, "bytes as text");
    r = call(p, "GET", "/json-chain", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "x-json", v, sizeof v), "yes");
    expect(r, 200, JSON, "{\"a\":1}");
    /* the synchronous Transaction: commits, rolls back, reports SQL errors, refuses reuse */
    expect(call(p, "GET", "/transaction", NULL), 200, TEXT, "count 1");
    expect(call(p, "GET", "/transaction", NULL), 200, TEXT, "count 2");
    expect(call(p, "GET", "/transaction-rollback", NULL), 200, JSON,
           "{\"before\":2,\"active\":false,\"reused\":\"the transaction has already ended\"}");
    expect(call(p, "GET", "/transaction-error", NULL), 200, TEXT,
           "caught: no such table: no_such_table");
    expect(call(p, "GET", "/transaction", NULL), 200, TEXT, "count 3");
    /* escape(): a table name and a literal with a quote */
    expect(call(p, "GET", "/count/tx/", NULL), 200, TEXT, "Got 3 rows\n");
    expect(call(p, "GET", "/escape?s=it%27s", NULL), 200, TEXT, "'it''s'");
    expect(call(p, "GET", "/escape-sql?s=it%27s%20%27%3B%20DROP%20TABLE%20tx%3B%20--", NULL), 200,
           TEXT, "it's '; DROP TABLE tx; --");
    expect(call(p, "GET", "/values", NULL), 200, JSON, "[null,1,7,1.5,\"s\",[1,2]]");
    expect(call(p, "GET", "/base64", NULL), 200, JSON,
           "{\"std\":\"APv/Pj9oaQ==\",\"safe\":\"APv_Pj9oaQ==\",\"back\":[0,251,255,62,63,104,105],"
           "\"safeBack\":[0,251,255,62,63,104,105],\"bigRoundTrip\":100000}");
    expect(call(p, "GET", "/file", NULL), 200, "application/octet-stream", "hello file");
    expect(call(p, "GET", "/file-missing", NULL), 200, TEXT, "ENOENT");
    r = call(p, "GET", "/init", NULL);
    CHECK_CONTAINS(r.body, "{\"init\":{},\"manifest\":{\"metadata\":{\"display_name\":\"compat\","
                           "\"description\":\"the reference's API\",\"guest_runtime\":"
                           "\"ecma_script\"},\"http_handlers\":[{\"method\":\"get\",\"path\":"
                           "\"/method\"}");
    CHECK_CONTAINS(r.body, "{\"method\":\"*\",\"path\":\"/dav/*\"}");
    CHECK_CONTAINS(r.body, "\"job_handlers\":[{\"name\":\"every-second\",\"spec\":\"* * * * * "
                           "*\"},{\"name\":\"new-year-2030\",\"spec\":\"0 0 0 1 1 * 2030\"}");
    expect(r, 200, JSON, NULL);

    /* the 6-field job (seconds first) runs every second; the 7-field one is due in 2030 */
    long long ticks = 0;
    for (int i = 0; i < 200 && ticks < 2; i++) {
        usleep(50000);
        ticks = count("compat_named", "SELECT count(*) FROM _job_runs WHERE job = "
                                      "'every-second' AND ok = 1");
    }
    CHECK(ticks >= 2);
    CHECK(count("compat_named", "SELECT count(*) FROM ticks") >= 2);
    CHECK_EQ(count("compat_named", "SELECT count(*) FROM tx"), 3);
    char *o, *e, depot[700];
    snprintf(depot, sizeof depot, "%s/compat_named", test_tmpdir());
    const char *list[] = {"jobs", "list", "--data-dir", depot, NULL};
    CHECK_EQ(th_run(list, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "0 0 0 1 1 * 2030 2030-01-01 00:00:00");
    CHECK_CONTAINS(o, "plain-object");
    free(o);
    free(e);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_compat_default_export_form, 180)
{
    th_server s;
    start(&s, "compat_default");
    int p = s.port;
    /* the reference document's Request API example, as written, on GET without a body */
    expect(call(p, "GET", "/api/example?page=2", NULL), 200, JSON,
           "{\"page\":\"2\",\"limit\":\"10\",\"id\":null}");
    /* trail's request properties beside the reference's methods that do not collide */
    th_resp r = call(p, "GET", "/trail/9?z=1", NULL);
    char v[200];
    CHECK_STR_EQ(th_resp_header(&r, "X-Custom-Header", v, sizeof v), "value");
    CHECK_STR_EQ(th_resp_header(&r, "Cache-Control", v, sizeof v), "max-age=3600");
    expect(r, 203, JSON,
           "{\"method\":\"GET\",\"path\":\"/trail/9\",\"url\":\"/trail/9?z=1\",\"query\":\"z=1\","
           "\"headers\":[[\"x-test\",\"v\"]],\"scheme\":\"HTTP\",\"authority\":"
           "\"example.test:8080\",\"pathParams\":[[\"id\",\"9\"]],\"user\":null,\"isGet\":true}");
    const char *const dav[] = {"PROPFIND", "MKCOL", "LOCK", "REPORT", "DELETE"};
    for (size_t i = 0; i < sizeof dav / sizeof dav[0]; i++) {
        char want[100];
        snprintf(want, sizeof want, "%s /dav/x", dav[i]);
        expect(call(p, dav[i], "/dav/x", NULL), 200, TEXT, want);
    }
    expect(call(p, "MKCOL", "/mkcol", NULL), 201, TEXT, "made by MKCOL");
    r = call(p, "PROPFIND", "/mkcol", NULL);
    CHECK_STR_EQ(th_resp_header(&r, "Allow", v, sizeof v), "MKCOL");
    expect(r, 405, JSON, NULL);
    expect(call(p, "POST", "/json", NULL), 200, JSON, "{\"got\":\"nothing\"}");
    expect(call(p, "POST", "/json", "[1]"), 200, JSON, "{\"got\":[1]}");
    r = call(p, "POST", "/json", "[1");
    CHECK_CONTAINS(r.body, "invalid JSON in request body");
    expect(r, 400, JSON, NULL);
    expect(call(p, "GET", "/teapot", NULL), 418, JSON, "{\"error\":\"short and stout\"}");
    expect(call(p, "GET", "/void", NULL), 200, "", "");
    /* the synchronous and the asynchronous transaction on one connection */
    expect(call(p, "GET", "/both-tx", NULL), 200, TEXT, "rows 1");
    expect(call(p, "GET", "/both-tx", NULL), 200, TEXT, "rows 2");
    expect(call(p, "GET", "/tx-busy", NULL), 200, TEXT,
           "another transaction is open on this worker's database connection; new "
           "Transaction() cannot wait for it (use transaction() from trailbase-wasm/db, which "
           "waits)");
    expect(call(p, "GET", "/both-tx", NULL), 200, TEXT, "rows 3");
    CHECK_EQ(count("compat_default", "SELECT count(*) FROM t WHERE v = 'it''s'"), 3);
    expect(call(p, "GET", "/file", NULL), 200, TEXT, "hello file");
    expect(call(p, "GET", "/b64", NULL), 200, TEXT, "aGk/+w==");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Hand-made components (no SDK) served by `trail run`: the named form is found without a
 * default export and serves any method of its route; a module with neither form, or with a route
 * method that is not a method name, stops the start with a message saying why. */
TEST_TIMEOUT(e2e_compat_entry_and_methods_checked, 120)
{
    static const char obj[] =
        "const c = { manifest: () => ({ http: [[%s, '/x']], jobs: [] }), dispatch: () => 'x',"
        " complete: () => 'x', responseClass: class {}, runJob: async () => {} };\n%s\n";
    struct {
        const char *method, *export_line;
        const char *expect; /* for a refusal; NULL: it serves `send` on /x */
        const char *send;
    } cases[] = {
        {"'PROPFIND'", "export const incomingHandler = c;", NULL, "PROPFIND"},
        {"'*'", "export const incomingHandler = c, initEndpoint = {};", NULL, "MKCOL"},
        {"'GET'", "export const incomingHandler = c; export default c;", NULL, "GET"},
        {"'GET'", "export const handler = c;",
         "no default export made by defineConfig() (export default defineConfig({...}), or "
         "export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } = "
         "defineConfig({...}))",
         NULL},
        {"'GET'", "export default 5; export const incomingHandler = 7;", "no default export", NULL},
        {"'get'", "export default c;", "route get /x: the method must be 1 to 32 upper-case", NULL},
        {"'GET POST'", "export const incomingHandler = c;", "the method must be 1 to 32", NULL},
        {"'G\\nET'", "export default c;", "the method must be 1 to 32", NULL},
        {"'ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG'", "export default c;", "the method must be 1 to 32",
         NULL},
        {"''", "export default c;", "the method must be 1 to 32", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char js[1000], depot[700], path[800];
        snprintf(js, sizeof js, obj, cases[i].method, cases[i].export_line);
        snprintf(depot, sizeof depot, "%s/hand%zu", test_tmpdir(), i);
        snprintf(path, sizeof path, "mkdir -p '%s/wasm'", depot);
        CHECK_EQ(fx_sh(path), 0);
        snprintf(path, sizeof path, "%s/wasm/hand.wasm", depot);
        size_t len;
        unsigned char *comp = fx_component(js, NULL, false, &len);
        CHECK_EQ(th_write_file(path, comp, len), 0);
        free(comp);
        if (cases[i].expect == NULL) {
            th_server s;
            CHECK_EQ(th_server_start(&s, depot, NULL), 0);
            expect(call(s.port, cases[i].send, "/x", NULL), 200, TEXT, "x");
            CHECK_EQ(th_server_stop(&s), 0);
        } else {
            const char *args[] = {"run", "--address", "127.0.0.1:0", "--data-dir", depot, NULL};
            char *o, *e;
            CHECK_EQ(th_run(args, 60000, &o, &e), 1);
            CHECK_CONTAINS(e, cases[i].expect);
            free(o);
            free(e);
        }
    }
}
