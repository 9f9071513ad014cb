/* fetch() from handlers, end to end: the real server running a component built with the SDK
 * (tests/data/components/fetch) that fetches from origin servers on 127.0.0.1: responses of
 * every kind (text, JSON, bytes, 404, redirects, headers), request bodies as the origin sees
 * them, failures that reject (connection refused, timeouts, oversized bodies, refused hosts),
 * many fetches at once, a fetch that does not hold up other requests on the isolate, and one
 * still in flight when the server shuts down; and jobs run by `trail jobs run` under the same
 * policy. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/origin.h"

#include <time.h>
#include <unistd.h>

static const char *depot(void)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/traildepot", test_tmpdir());
    return p;
}

/* The origins listen on loopback, which fetch() reaches only for hosts allowed by name. */
#define ALLOW_LOOPBACK "allowed_private_hosts: [\"127.0.0.1\", \"localhost\"]"

/* Writes config.textproto: text, with loopback allowed in its fetch section (added if none). */
static void write_config(const char *text)
{
    char path[800], full[2048];
    snprintf(path, sizeof path, "%s/config.textproto", depot());
    if (strncmp(text, "fetch {", 7) == 0)
        snprintf(full, sizeof full, "fetch { " ALLOW_LOOPBACK "%s", text + 7);
    else
        snprintf(full, sizeof full, "%sfetch { " ALLOW_LOOPBACK " }\n", text);
    CHECK_EQ(th_write_file(path, full, strlen(full)), 0);
}

static void install(void)
{
    char out[1000];
    snprintf(out, sizeof out, "%s/wasm/fetch.wasm", depot());
    fx_build_component("fetch", out);
    write_config("");
}

static th_resp get(int port, const char *path)
{
    char req[2048];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

/* GET handler?url=http://HOST:PORT/PATH[&extra] */
static th_resp via(int port, const char *handler, const char *host, int oport, const char *path,
                   const char *extra)
{
    char target[1024];
    snprintf(target, sizeof target, "%s?url=http://%s:%d%s%s%s", handler, host, oport, path,
             extra ? "&" : "", extra ? extra : "");
    return get(port, target);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char json_body[] = "{\"greeting\":\"hi\",\"n\":21}";

TEST_TIMEOUT(e2e_fetch_responses, 120)
{
    install();
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)i;
    th_origin_route routes[] = {
        {"/hello", 200, "text/plain; charset=utf-8", "hello there", 11, 0},
        {"/data.json", 200, "application/json", json_body, sizeof json_body - 1, 0},
        {"/bin", 200, "application/octet-stream", bin, sizeof bin, 0},
        {"/old", 301, "text/plain", "moved", 5, 0},
        {"/see-other", 303, "text/plain", "", 0, 0},
        {"/loop", 302, "text/plain", "", 0, 0},
    };
    /* filled in below, once the port is known and before the origin is asked for it */
    static char see_other[128];
    const char *headers[] = {"X-Custom: yes\r\n",    NULL,      NULL,
                             "Location: /hello\r\n", see_other, "Location: /loop\r\n"};
    th_origin o;
    CHECK_EQ(th_origin_start_ex(&o, routes, headers, sizeof routes / sizeof routes[0]), 0);
    int closed = th_closed_port();
    snprintf(see_other, sizeof see_other, "Location: http://127.0.0.1:%d/gone\r\n", closed);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);

    /* status, status text, headers, text, final URL */
    th_resp r = via(s.port, "/text", "127.0.0.1", o.port, "/hello", NULL);
    CHECK_EQ(r.status, 200);
    char want[512];
    snprintf(want, sizeof want,
             "{\"status\":200,\"statusText\":\"X\",\"ok\":true,\"contentType\":\"text/plain; "
             "charset=utf-8\",\"custom\":\"yes\",\"url\":\"http://127.0.0.1:%d/hello\","
             "\"redirected\":false,\"text\":\"hello there\"}",
             o.port);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);

    /* JSON */
    r = via(s.port, "/json", "127.0.0.1", o.port, "/data.json", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "{\"greeting\":\"hi\",\"doubled\":42}");
    th_resp_free(&r);

    /* bytes: every value 0..255 arrives unchanged */
    r = via(s.port, "/bytes", "127.0.0.1", o.port, "/bin", NULL);
    CHECK_STR_EQ(r.body, "256 bytes, sum 32640");
    th_resp_free(&r);

    /* a 404 is a response, not a rejection */
    r = via(s.port, "/text", "127.0.0.1", o.port, "/missing", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"status\":404");
    CHECK_CONTAINS(r.body, "\"ok\":false");
    CHECK_CONTAINS(r.body, "\"text\":\"no such path\"");
    th_resp_free(&r);

    /* a redirect is followed; the response says where it ended */
    r = via(s.port, "/text", "127.0.0.1", o.port, "/old", NULL);
    snprintf(want, sizeof want, "\"url\":\"http://127.0.0.1:%d/hello\",\"redirected\":true",
             o.port);
    CHECK_CONTAINS(r.body, want);
    CHECK_CONTAINS(r.body, "\"text\":\"hello there\"");
    th_resp_free(&r);

    /* a redirect loop ends with a rejection after 20 hops */
    r = via(s.port, "/catch", "127.0.0.1", o.port, "/loop", NULL);
    CHECK_CONTAINS(r.body, "TypeError: fetch failed: too many redirects (more than 20)");
    th_resp_free(&r);

    /* a 303 to a closed port: the redirect is followed (and fails to connect) */
    r = via(s.port, "/catch", "127.0.0.1", o.port, "/see-other", NULL);
    snprintf(want, sizeof want, "Failed to connect to 127.0.0.1 port %d", closed);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);

    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&o);
}

TEST_TIMEOUT(e2e_fetch_request_body_reaches_the_origin, 120)
{
    install();
    th_origin_route routes[] = {{"/echo", 201, "text/plain", "created", 7, 0}};
    th_origin o;
    CHECK_EQ(th_origin_start(&o, routes, 1), 0);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    static const char body[] = "{\"hello\":\"world\",\"n\":42}";
    char req[1024];
    snprintf(req, sizeof req,
             "POST /post?url=http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             o.port, sizeof body - 1, body);
    th_resp r;
    CHECK_EQ(th_request(s.port, req, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "201 created");
    th_resp_free(&r);
    char seen[8192];
    th_origin_last_request(&o, seen, sizeof seen);
    CHECK_CONTAINS(seen, "POST /echo HTTP/1.1\r\n");
    CHECK_CONTAINS(seen, "\r\ncontent-type: application/json\r\n");
    CHECK_CONTAINS(seen, "\r\nx-token: abc\r\n");
    CHECK_CONTAINS(seen, "\r\nContent-Length: 24\r\n");
    CHECK_CONTAINS(seen, "\r\nUser-Agent: trail\r\n");
    CHECK(strstr(seen, "Expect:") == NULL);
    const char *end = strstr(seen, "\r\n\r\n");
    CHECK(end != NULL);
    CHECK_STR_EQ(end + 4, body);
    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&o);
}

TEST_TIMEOUT(e2e_fetch_failures_reject, 120)
{
    install();
    static char big[5000];
    memset(big, 'b', sizeof big);
    th_origin_route quick[] = {{"/big", 200, "text/plain", big, sizeof big, 0},
                               {"/small", 200, "text/plain", big, 1000, 0}};
    th_origin_route slow[] = {{"/slow", 200, "text/plain", "late", 4, 3000}};
    th_origin oq, os;
    CHECK_EQ(th_origin_start(&oq, quick, 2), 0);
    CHECK_EQ(th_origin_start(&os, slow, 1), 0);
    write_config("fetch { timeout_ms: 400 max_response_bytes: 1000 }\n");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);

    /* nothing listens */
    int closed = th_closed_port();
    th_resp r = via(s.port, "/catch", "127.0.0.1", closed, "/x", NULL);
    CHECK_EQ(r.status, 200);
    char want[256];
    snprintf(want, sizeof want, "TypeError: fetch failed: Failed to connect to 127.0.0.1 port %d",
             closed);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
    /* uncaught, the rejection is the handler's 500 */
    r = via(s.port, "/uncaught", "127.0.0.1", closed, "/x", NULL);
    CHECK_EQ(r.status, 500);
    CHECK_CONTAINS(r.body, "{\"error\":\"TypeError: fetch failed: Failed to connect");
    th_resp_free(&r);

    /* the request's own timeout */
    double t0 = now_ms();
    r = via(s.port, "/catch", "127.0.0.1", os.port, "/slow", "timeout=200");
    double took = now_ms() - t0;
    CHECK_CONTAINS(r.body, "TypeError: fetch failed: the request to 127.0.0.1 timed out after "
                           "200 ms");
    CHECK(took >= 190 && took < 2500);
    th_resp_free(&r);
    /* fetch.timeout_ms when it has none */
    t0 = now_ms();
    r = via(s.port, "/catch", "127.0.0.1", os.port, "/slow", NULL);
    took = now_ms() - t0;
    CHECK_CONTAINS(r.body, "timed out after 400 ms");
    CHECK(took >= 390 && took < 2700);
    th_resp_free(&r);

    /* fetch.max_response_bytes */
    r = via(s.port, "/catch", "127.0.0.1", oq.port, "/big", NULL);
    CHECK_CONTAINS(r.body, "fetch failed: the response from 127.0.0.1 is larger than 1000 bytes "
                           "(fetch.max_response_bytes)");
    th_resp_free(&r);
    r = via(s.port, "/catch", "127.0.0.1", oq.port, "/small", NULL);
    CHECK_CONTAINS(r.body, "resolved 200");
    th_resp_free(&r);

    /* not http(s), or not a URL at all */
    r = get(s.port, "/catch?url=file:///etc/passwd");
    CHECK_CONTAINS(r.body, "TypeError: fetch: only http: and https: URLs are supported");
    th_resp_free(&r);
    r = get(s.port, "/catch?url=nonsense");
    CHECK_CONTAINS(r.body, "rejected after");
    th_resp_free(&r);

    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&oq);
    th_origin_stop(&os);
}

TEST_TIMEOUT(e2e_fetch_allowed_hosts, 120)
{
    install();
    th_origin_route routes[] = {{"/hello", 200, "text/plain", "hello there", 11, 0},
                                {"/away", 302, "text/plain", "", 0, 0}};
    static char away[128]; /* filled in once the port is known, before it is asked for */
    const char *headers[] = {NULL, away};
    th_origin o;
    CHECK_EQ(th_origin_start_ex(&o, routes, headers, 2), 0);
    snprintf(away, sizeof away, "Location: http://127.0.0.1:%d/hello\r\n", o.port);

    write_config("fetch { allowed_hosts: [\"localhost\", \"*.example.org\"] }\n");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_resp r = via(s.port, "/catch", "127.0.0.1", o.port, "/hello", NULL);
    CHECK_CONTAINS(r.body, "TypeError: fetch failed: host 127.0.0.1 is not in "
                           "fetch.allowed_hosts (config.textproto)");
    th_resp_free(&r);
    r = via(s.port, "/text", "localhost", o.port, "/hello", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"text\":\"hello there\"");
    th_resp_free(&r);
    /* a redirect to a host not listed is refused too */
    r = via(s.port, "/catch", "localhost", o.port, "/away", NULL);
    CHECK_CONTAINS(r.body, "fetch failed: redirect refused: host 127.0.0.1 is not in "
                           "fetch.allowed_hosts");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);

    write_config("fetch { enabled: false }\n");
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    r = via(s.port, "/catch", "localhost", o.port, "/hello", NULL);
    CHECK_CONTAINS(r.body, "fetch failed: outgoing HTTP requests are disabled (fetch.enabled: "
                           "false in config.textproto)");
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&o);
}

TEST_TIMEOUT(e2e_fetch_concurrent_and_non_blocking, 120)
{
    install();
    th_origin_route routes[] = {
        {"/data.json", 200, "application/json", json_body, sizeof json_body - 1, 0}};
    th_origin_route slow[] = {{"/slow", 200, "text/plain", "late", 4, 2000}};
    th_origin o, os;
    CHECK_EQ(th_origin_start(&o, routes, 1), 0);
    CHECK_EQ(th_origin_start(&os, slow, 1), 0);
    const char *extra[] = {"--runtime-threads", "1", NULL};
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);

    /* 100 fetches at once from one isolate */
    th_resp r = via(s.port, "/many", "127.0.0.1", o.port, "/data.json", "n=100");
    CHECK_EQ(r.status, 200);
    char want[256];
    snprintf(want, sizeof want, "100 responses, 100 equal, first %s", json_body);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
    CHECK_EQ(__atomic_load_n(&o.requests, __ATOMIC_SEQ_CST), 100);

    /* a request waiting 2 s on its fetch does not hold up others on the (single) isolate */
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    char req[512];
    snprintf(req, sizeof req, "GET /text?url=http://127.0.0.1:%d/slow HTTP/1.1\r\nHost: x\r\n\r\n",
             os.port);
    CHECK_EQ(th_conn_send_str(&c, req), 0);
    for (int i = 1; i <= 5; i++) {
        r = get(s.port, "/count");
        snprintf(want, sizeof want, "count %d", i);
        CHECK_STR_EQ(r.body, want);
        th_resp_free(&r);
    }
    CHECK_EQ(th_conn_read(&c, &r, false, 1), -2); /* still waiting */
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_CONTAINS(r.body, "\"text\":\"late\"");
    th_resp_free(&r);
    th_conn_close(&c);

    /* figures: a loopback round trip through the guest, against the same request without one */
    int n = 200;
    double t0;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    snprintf(req, sizeof req,
             "GET /json?url=http://127.0.0.1:%d/data.json HTTP/1.1\r\nHost: x\r\n\r\n", o.port);
    t0 = now_ms();
    for (int i = 0; i < n; i++) {
        CHECK_EQ(th_conn_send_str(&c, req), 0);
        CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
        CHECK_EQ(r.status, 200);
        th_resp_free(&r);
    }
    double with_fetch = (now_ms() - t0) / n;
    t0 = now_ms();
    for (int i = 0; i < n; i++) {
        CHECK_EQ(th_conn_send_str(&c, "GET /count HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
        th_resp_free(&r);
    }
    double without = (now_ms() - t0) / n;
    th_conn_close(&c);
    test_report("request with a loopback fetch (new connection each): %.3f ms; without: %.3f ms "
                "(ASan build)",
                with_fetch, without);
    CHECK_EQ(th_server_stop(&s), 0);
    th_origin_stop(&o);
    th_origin_stop(&os);
}

TEST_TIMEOUT(e2e_fetch_in_flight_at_shutdown, 120)
{
    install();
    th_origin_route slow[] = {{"/slow", 200, "text/plain", "late", 4, 10000}};
    th_origin os;
    CHECK_EQ(th_origin_start(&os, slow, 1), 0);
    write_config("server { shutdown_timeout_ms: 300 }\n");
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    char req[512];
    snprintf(req, sizeof req, "GET /text?url=http://127.0.0.1:%d/slow HTTP/1.1\r\nHost: x\r\n\r\n",
             os.port);
    CHECK_EQ(th_conn_send_str(&c, req), 0);
    /* wait until the origin has the request: the fetch is in flight */
    char seen[1024] = "";
    for (int i = 0; i < 200 && strstr(seen, "GET /slow") == NULL; i++) {
        usleep(10000);
        th_origin_last_request(&os, seen, sizeof seen);
    }
    CHECK_CONTAINS(seen, "GET /slow");
    /* exits cleanly (the ASan build fails the exit status on a leak or a bad access) */
    CHECK_EQ(th_server_stop(&s), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 503);
    th_resp_free(&r);
    th_conn_close(&c);
    th_origin_stop(&os);
}

TEST_TIMEOUT(e2e_fetch_jobs_follow_the_same_policy, 120)
{
    install();
    const char *args[] = {"jobs", "run", "fetch-closed-port", "--data-dir", depot(), NULL};
    char *out, *err;
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "TypeError: fetch failed: Failed to connect to 127.0.0.1 port 1");
    free(out);
    free(err);
    write_config("fetch { allowed_hosts: \"localhost\" }\n");
    CHECK_EQ(th_run(args, 60000, &out, &err), 1);
    CHECK_CONTAINS(err, "TypeError: fetch failed: host 127.0.0.1 is not in fetch.allowed_hosts");
    free(out);
    free(err);
}
