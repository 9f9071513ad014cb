/* End-to-end tests for the HTTP server of `trail run`: the real binary (ASan build) on a loopback
 * port with a temporary data directory, spoken to with raw HTTP/1.1: keep-alive, pipelining,
 * chunked bodies, every limit and its status, 404/405/Allow, timeouts, the access log, and
 * graceful shutdown without losing in-flight requests. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates <tmp>/depot with config text (if any) and returns its path (free with tr_free). */
static char *depot_with_config(const char *config)
{
    char *d = tr_asprintf("%s/depot", test_tmpdir());
    mkdir(d, 0755);
    if (config) {
        char *p = tr_asprintf("%s/config.textproto", d);
        CHECK_EQ(th_write_file(p, config, strlen(config)), 0);
        tr_free(p);
    }
    return d;
}

static void start(th_server *s, const char *config, const char *const *extra)
{
    char *d = depot_with_config(config);
    CHECK_EQ(th_server_start(s, d, extra), 0);
    tr_free(d);
}

static void stop_ok(th_server *s)
{
    CHECK_EQ(th_server_stop(s), 0);
    char *err = th_server_stderr(s);
    if (strstr(err, "Sanitizer") || strstr(err, "runtime error"))
        test_fail(__FILE__, __LINE__, "sanitizer report on stderr:\n%s", err);
    free(err);
}

static void expect_status(int port, const char *raw, int status, const char *body)
{
    th_resp r;
    int rc = th_request(port, raw, &r);
    if (rc != 0) test_fail(__FILE__, __LINE__, "request failed (%d): %.80s", rc, raw);
    CHECK_EQ(r.status, status);
    if (body) CHECK_STR_EQ(r.body, body);
    th_resp_free(&r);
}

TEST_TIMEOUT(e2e_http_healthcheck_keepalive_and_log, 60)
{
    th_server s;
    start(&s, NULL, NULL);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        th_resp r;
        CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "Ok");
        char v[64];
        CHECK_STR_EQ(th_resp_header(&r, "Content-Length", v, sizeof v), "2");
        CHECK(th_resp_header(&r, "Date", v, sizeof v) != NULL);
        CHECK_CONTAINS(v, " GMT");
        CHECK(th_resp_header(&r, "Connection", v, sizeof v) == NULL);
        th_resp_free(&r);
    }
    /* HEAD: same headers, no body. */
    CHECK_EQ(th_conn_send_str(&c, "HEAD /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, true, 5000), 0);
    CHECK_EQ(r.status, 200);
    char v[64];
    CHECK_STR_EQ(th_resp_header(&r, "Content-Length", v, sizeof v), "2");
    th_resp_free(&r);
    /* Connection: close is honoured: answered with Connection: close, then closed. */
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "close");
    th_resp_free(&r);
    size_t extra = 0;
    CHECK_EQ(th_conn_wait_closed(&c, 5000, &extra), 1);
    CHECK_EQ(extra, 0);
    th_conn_close(&c);
    stop_ok(&s);
    char *out = th_server_stdout(&s);
    CHECK_CONTAINS(out, "trail: listening on http://127.0.0.1:");
    CHECK_CONTAINS(out, "GET /api/healthcheck 200 2 ");
    CHECK_CONTAINS(out, "HEAD /api/healthcheck 200 2 ");
    free(out);
}

TEST_TIMEOUT(e2e_http_quiet_has_no_access_log, 60)
{
    th_server s;
    const char *extra[] = {"--quiet", NULL};
    start(&s, NULL, extra);
    expect_status(s.port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", 200, "Ok");
    stop_ok(&s);
    char *out = th_server_stdout(&s);
    CHECK_CONTAINS(out, "listening on");
    CHECK(strstr(out, "GET /api/healthcheck") == NULL);
    free(out);
}

TEST_TIMEOUT(e2e_http_pipelined_in_order_and_stops_at_malformed, 60)
{
    th_server s;
    start(&s, NULL, NULL);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "GET /missing HTTP/1.1\r\n\r\n"
                                  "HEAD /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
                                  "GET /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "GET /api/healthcheck HTTP/1.1\r\nBad Header\r\n\r\n"
                                  "GET /api/healthcheck HTTP/1.1\r\n\r\n"),
             0);
    int want[] = {200, 404, 200, 405, 200, 400};
    bool head[] = {false, false, true, false, false, false};
    for (int i = 0; i < 6; i++) {
        th_resp r;
        CHECK_EQ(th_conn_read(&c, &r, head[i], 5000), 0);
        CHECK_EQ(r.status, want[i]);
        if (i == 0 || i == 4) CHECK_STR_EQ(r.body, "Ok");
        if (i == 5) {
            char v[32];
            CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "close");
            CHECK_STR_EQ(th_resp_header(&r, "Content-Type", v, sizeof v), "application/json");
        }
        th_resp_free(&r);
    }
    /* Nothing after the malformed request is answered. */
    size_t extra = 1;
    CHECK_EQ(th_conn_wait_closed(&c, 5000, &extra), 1);
    CHECK_EQ(extra, 0);
    th_conn_close(&c);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_not_found_and_method_not_allowed, 60)
{
    th_server s;
    start(&s, NULL, NULL);
    th_resp r;
    CHECK_EQ(th_request(s.port, "GET /nope HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 404);
    CHECK_STR_EQ(r.body, "{\"error\":\"not found\"}");
    th_resp_free(&r);
    CHECK_EQ(th_request(s.port, "DELETE /api/healthcheck HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 405);
    char v[64];
    CHECK_STR_EQ(th_resp_header(&r, "Allow", v, sizeof v), "GET, HEAD");
    CHECK_STR_EQ(r.body, "{\"error\":\"method not allowed\"}");
    th_resp_free(&r);
    /* The query string is not part of the path; absolute-form targets route on their path. */
    expect_status(s.port, "GET /api/healthcheck?verbose=1 HTTP/1.1\r\n\r\n", 200, "Ok");
    expect_status(s.port, "GET http://example.com/api/healthcheck?x=1 HTTP/1.1\r\n\r\n", 200, "Ok");
    expect_status(s.port, "GET http://example.com HTTP/1.1\r\n\r\n", 404, NULL);
    expect_status(s.port, "OPTIONS * HTTP/1.1\r\n\r\n", 404, NULL);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_chunked_and_length_bodies_are_framed, 60)
{
    th_server s;
    start(&s, NULL, NULL);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    /* Bodies sent to a route that does not take them: the 405 must come after the whole body
     * was consumed, so the next pipelined request is parsed correctly. */
    CHECK_EQ(
        th_conn_send_str(&c, "POST /api/healthcheck HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                             "\r\n4\r\nGET \r\n1d\r\n/api/healthcheck HTTP/1.1\r\n\r\n\r\n0\r\n\r\n"
                             "GET /api/healthcheck HTTP/1.1\r\n\r\n"),
        0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 405);
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_conn_send_str(&c, "PUT /api/healthcheck HTTP/1.1\r\nContent-Length: 33\r\n\r\n"
                                  "GET /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "GET /missing HTTP/1.1\r\n\r\n"),
             0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 405);
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
    th_conn_close(&c);
    stop_ok(&s);
}

static void expect_error_and_close(int port, const char *raw, size_t raw_len, int status)
{
    th_conn c;
    CHECK_EQ(th_conn_open(&c, port), 0);
    th_conn_send(&c, raw, raw_len);
    th_resp r;
    int rc = th_conn_read(&c, &r, false, 10000);
    if (rc != 0) test_fail(__FILE__, __LINE__, "no response (%d) to %.60s", rc, raw);
    if (r.status != status)
        test_fail(__FILE__, __LINE__, "status %d, want %d, for %.60s", r.status, status, raw);
    char v[32];
    CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "close");
    CHECK_CONTAINS(r.body, "{\"error\":");
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
}

TEST_TIMEOUT(e2e_http_limits_and_their_statuses, 60)
{
    th_server s;
    start(&s,
          "server {\n  max_body_bytes: 1000\n  max_header_bytes: 4096\n  max_headers: 20\n"
          "  max_target_bytes: 512\n}\n",
          NULL);
    tr_buf b = TR_BUF_INIT;
    /* 414: request target over 512 bytes. */
    tr_buf_append_str(&b, "GET /");
    for (int i = 0; i < 600; i++)
        tr_buf_append_char(&b, 'a');
    tr_buf_append_str(&b, " HTTP/1.1\r\n\r\n");
    expect_error_and_close(s.port, b.data, b.len, 414);
    /* A target just under the limit is fine (404: no such route). */
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET /");
    for (int i = 0; i < 500; i++)
        tr_buf_append_char(&b, 'a');
    tr_buf_append_str(&b, " HTTP/1.1\r\n\r\n");
    expect_status(s.port, b.data, 404, NULL);
    /* 431: header section over 4096 bytes. */
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET /api/healthcheck HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 5000; i++)
        tr_buf_append_char(&b, 'b');
    tr_buf_append_str(&b, "\r\n\r\n");
    expect_error_and_close(s.port, b.data, b.len, 431);
    /* 431: more than 20 header fields. */
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET /api/healthcheck HTTP/1.1\r\n");
    for (int i = 0; i < 21; i++)
        tr_buf_printf(&b, "X-H%d: v\r\n", i);
    tr_buf_append_str(&b, "\r\n");
    expect_error_and_close(s.port, b.data, b.len, 431);
    /* 20 fields are fine. */
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET /api/healthcheck HTTP/1.1\r\n");
    for (int i = 0; i < 20; i++)
        tr_buf_printf(&b, "X-H%d: v\r\n", i);
    tr_buf_append_str(&b, "\r\n");
    expect_status(s.port, b.data, 200, "Ok");
    /* 413: declared Content-Length over the limit, answered before the body arrives. */
    const char *big = "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 1001\r\n\r\n";
    expect_error_and_close(s.port, big, strlen(big), 413);
    /* 413: a chunked body that grows over the limit. */
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "POST /api/healthcheck HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        tr_buf_append_str(&b, "190\r\n");
        for (int k = 0; k < 400; k++)
            tr_buf_append_char(&b, 'c');
        tr_buf_append_str(&b, "\r\n");
    }
    expect_error_and_close(s.port, b.data, b.len, 413);
    /* 400 and close: both Content-Length and Transfer-Encoding; conflicting lengths. */
    const char *both = "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    expect_error_and_close(s.port, both, strlen(both), 400);
    const char *both2 = "POST /api/healthcheck HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Length: 3\r\n\r\n0\r\n\r\n";
    expect_error_and_close(s.port, both2, strlen(both2), 400);
    const char *twolen = "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 3\r\n"
                         "Content-Length: 4\r\n\r\nabcd";
    expect_error_and_close(s.port, twolen, strlen(twolen), 400);
    const char *badlen = "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc";
    expect_error_and_close(s.port, badlen, strlen(badlen), 400);
    /* 501: a transfer coding we do not implement. */
    const char *gzip = "POST /api/healthcheck HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_error_and_close(s.port, gzip, strlen(gzip), 501);
    const char *gzch = "POST /api/healthcheck HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       "0\r\n\r\n";
    expect_error_and_close(s.port, gzch, strlen(gzch), 501);
    /* 400: malformed request line, bad header syntax, NUL byte. */
    const char *bad1 = "GET\r\n\r\n";
    expect_error_and_close(s.port, bad1, strlen(bad1), 400);
    const char *bad2 = "GET / HTTP/1.1\r\nNo-Colon\r\n\r\n";
    expect_error_and_close(s.port, bad2, strlen(bad2), 400);
    const char bad3[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    expect_error_and_close(s.port, bad3, sizeof bad3 - 1, 400);
    tr_buf_free(&b);
    /* The server still serves. */
    expect_status(s.port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", 200, "Ok");
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_timeouts_close_connections, 60)
{
    th_server s;
    start(&s,
          "server {\n  idle_timeout_ms: 300\n  header_timeout_ms: 400\n  body_timeout_ms: 400\n}\n",
          NULL);
    th_conn c;
    /* Idle keep-alive connection: closed silently. */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    th_resp_free(&r);
    size_t extra = 1;
    CHECK_EQ(th_conn_wait_closed(&c, 5000, &extra), 1);
    CHECK_EQ(extra, 0);
    th_conn_close(&c);
    /* Slow headers: a request line and nothing more, even if bytes keep trickling. */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\n"), 0);
    for (int i = 0; i < 3; i++) {
        usleep(150000);
        th_conn_send_str(&c, "X-A: b\r\n");
    }
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 408);
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
    /* Slow body: headers done, body stalls. */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(
        th_conn_send_str(&c, "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 408);
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_graceful_shutdown_finishes_in_flight, 60)
{
    th_server s;
    start(&s, NULL, NULL);
    /* An idle keep-alive connection, a half-sent request, and a full batch of pipelined requests
     * that is still being processed when SIGTERM arrives. */
    th_conn idle, half, batch;
    CHECK_EQ(th_conn_open(&idle, s.port), 0);
    CHECK_EQ(th_conn_send_str(&idle, "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&idle, &r, false, 5000), 0);
    th_resp_free(&r);
    CHECK_EQ(th_conn_open(&half, s.port), 0);
    CHECK_EQ(th_conn_send_str(&half, "GET /api/healthcheck HTTP/1.1\r\nHost: x\r\n"), 0);
    CHECK_EQ(th_conn_open(&batch, s.port), 0);
    tr_buf b = TR_BUF_INIT;
    for (int i = 0; i < 500; i++)
        tr_buf_append_str(&b, "GET /api/healthcheck HTTP/1.1\r\n\r\n");
    CHECK_EQ(th_conn_send(&batch, b.data, b.len), 0);
    tr_buf_free(&b);
    usleep(100000);
    th_server_signal(&s, SIGTERM);
    usleep(100000);
    /* The half-sent request completes after the signal and is answered, with Connection: close. */
    CHECK_EQ(th_conn_send_str(&half, "\r\n"), 0);
    CHECK_EQ(th_conn_read(&half, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "Ok");
    char v[32];
    CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "close");
    th_resp_free(&r);
    /* Every pipelined request was answered; the last one says close. */
    int n = 0;
    while (th_conn_read(&batch, &r, false, 5000) == 0) {
        CHECK_EQ(r.status, 200);
        n++;
        th_resp_free(&r);
    }
    CHECK(n >= 1);
    /* The idle connection was closed without a response. */
    CHECK_EQ(th_conn_wait_closed(&idle, 5000, NULL), 1);
    CHECK_EQ(th_server_wait(&s, 15000), 0);
    char *out = th_server_stdout(&s);
    /* The log counts what the server answered: all 500 requests of the batch were read before
     * the signal, so all are answered. */
    test_report("pipelined requests answered across shutdown: %d of 500", n);
    CHECK_EQ(n, 500);
    free(out);
    th_conn_close(&idle);
    th_conn_close(&half);
    th_conn_close(&batch);
    /* New connections are refused once the server is gone. */
    th_conn c;
    CHECK(th_conn_open(&c, s.port) != 0);
    /* Every worker closed its database: SQLite removed the WAL when the last one closed. */
    char *wal = tr_asprintf("%s/data/main.db-wal", s.data_dir);
    CHECK(access(wal, F_OK) != 0);
    tr_free(wal);
}

TEST_TIMEOUT(e2e_http_max_connections_per_worker, 60)
{
    th_server s;
    const char *extra[] = {"--runtime-threads", "1", NULL};
    start(&s, "server {\n  max_connections: 2\n}\n", extra);
    th_conn a, b, c, d;
    CHECK_EQ(th_conn_open(&a, s.port), 0);
    CHECK_EQ(th_conn_open(&b, s.port), 0);
    th_resp r;
    CHECK_EQ(th_conn_send_str(&a, "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&a, &r, false, 5000), 0);
    th_resp_free(&r);
    usleep(20000);
    CHECK_EQ(th_conn_send_str(&b, "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&b, &r, false, 5000), 0);
    th_resp_free(&r);
    /* A third connection is served: the one idle the longest (a) is closed to make room. */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&a, 5000, NULL), 1);
    th_conn_close(&a);
    /* With both connections in the middle of a request, none can go: a new one gets 503 at
     * once, naming the limit. */
    CHECK_EQ(th_conn_send_str(&b, "GET /api/healthcheck HTTP/1.1\r\n"), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\n"), 0);
    usleep(50000);
    CHECK_EQ(th_conn_open(&d, s.port), 0);
    CHECK_EQ(th_conn_read(&d, &r, false, 5000), 0);
    CHECK_EQ(r.status, 503);
    CHECK_CONTAINS(r.body, "server.max_connections");
    th_resp_free(&r);
    th_conn_close(&d);
    /* The busy ones finish their requests. */
    CHECK_EQ(th_conn_send_str(&b, "\r\n"), 0);
    CHECK_EQ(th_conn_read(&b, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_conn_send_str(&c, "\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    th_conn_close(&b);
    th_conn_close(&c);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_run_usage_errors, 60)
{
    const char *help[] = {"run", "--help", NULL};
    char *out = NULL, *err = NULL;
    CHECK_EQ(th_run(help, 10000, &out, &err), 0);
    CHECK_CONTAINS(out, "--address HOST:PORT");
    CHECK_CONTAINS(out, "--runtime-threads N");
    CHECK_CONTAINS(out, "--public-dir DIR");
    free(out);
    free(err);
    char *d = tr_asprintf("%s/depot", test_tmpdir());
    const char *bad_flag[] = {"run", "--data-dir", d, "--frobnicate", NULL};
    CHECK_EQ(th_run(bad_flag, 10000, NULL, &err), 2);
    CHECK_CONTAINS(err, "unknown option '--frobnicate'");
    free(err);
    const char *bad_threads[] = {"run", "--data-dir", d, "--runtime-threads", "0", NULL};
    CHECK_EQ(th_run(bad_threads, 10000, NULL, &err), 2);
    CHECK_CONTAINS(err, "--runtime-threads");
    free(err);
    const char *bad_addr[] = {"run", "--data-dir", d, "--address", "nowhere", NULL};
    CHECK_EQ(th_run(bad_addr, 30000, NULL, &err), 1);
    CHECK_CONTAINS(err, "invalid address 'nowhere'");
    free(err);
    const char *bad_pub[] = {"run",          "--data-dir",     d,   "--address", "127.0.0.1:0",
                             "--public-dir", "/nonexistent/x", NULL};
    CHECK_EQ(th_run(bad_pub, 30000, NULL, &err), 1);
    CHECK_CONTAINS(err, "/nonexistent/x");
    free(err);
    /* The port is taken: a clear error, not a crash. */
    th_server s;
    start(&s, NULL, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s.port);
    char *d2 = tr_asprintf("%s/depot2", test_tmpdir());
    const char *busy[] = {"run", "--data-dir", d2, "--address", addr, NULL};
    CHECK_EQ(th_run(busy, 30000, NULL, &err), 1);
    CHECK_CONTAINS(err, "cannot listen on");
    free(err);
    stop_ok(&s);
    tr_free(d);
    tr_free(d2);
}

TEST_TIMEOUT(e2e_http_many_connections_on_several_workers, 60)
{
    th_server s;
    const char *extra[] = {"--runtime-threads", "4", "--quiet", NULL};
    start(&s, NULL, extra);
    enum { NCONN = 32, NREQ = 10 };
    th_conn c[NCONN];
    for (int i = 0; i < NCONN; i++)
        CHECK_EQ(th_conn_open(&c[i], s.port), 0);
    for (int k = 0; k < NREQ; k++) {
        for (int i = 0; i < NCONN; i++)
            CHECK_EQ(th_conn_send_str(&c[i], "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
        for (int i = 0; i < NCONN; i++) {
            th_resp r;
            CHECK_EQ(th_conn_read(&c[i], &r, false, 5000), 0);
            CHECK_EQ(r.status, 200);
            CHECK_STR_EQ(r.body, "Ok");
            th_resp_free(&r);
        }
    }
    for (int i = 0; i < NCONN; i++)
        th_conn_close(&c[i]);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_out_of_descriptors_recovers, 60)
{
    /* The server runs with few file descriptors; connections beyond them are answered 503 at
     * once (a spare descriptor is given up to accept them), and once the others closed, new
     * connections are served again. */
    th_server s;
    const char *extra[] = {"--runtime-threads", "1", "--quiet", NULL};
    char *d = depot_with_config(NULL);
    int rc = th_server_start(&s, d, extra);
    tr_free(d);
    CHECK_EQ(rc, 0);
    /* trail raises its soft limit to the hard one at start-up, so lower both afterwards */
    struct rlimit low = {.rlim_cur = 48, .rlim_max = 48};
    CHECK_EQ(prlimit(s.pid, RLIMIT_NOFILE, &low, NULL), 0);
    enum { N = 80 };
    th_conn c[N];
    for (int i = 0; i < N; i++) {
        CHECK_EQ(th_conn_open(&c[i], s.port), 0);
        th_conn_send_str(&c[i], "GET /api/healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n");
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        th_resp r;
        CHECK_EQ(th_conn_read(&c[i], &r, false, 10000), 0);
        if (r.status == 200) ok++;
        if (r.status == 503) {
            CHECK_CONTAINS(r.body, "out of file descriptors");
            refused++;
        }
        th_resp_free(&r);
        th_conn_close(&c[i]);
    }
    CHECK(ok > 0);
    CHECK(refused > 0);
    CHECK_EQ(ok + refused, N);
    usleep(100000);
    for (int i = 0; i < 5; i++) {
        th_resp r;
        CHECK_EQ(
            th_request(s.port, "GET /api/healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n", &r),
            0);
        CHECK_EQ(r.status, 200);
        th_resp_free(&r);
    }
    test_report("80 connections to a server with 48 descriptors: %d served, %d answered 503 at "
                "once; then 5 of 5 new ones served",
                ok, refused);
    stop_ok(&s);
}

TEST_TIMEOUT(e2e_http_shutdown_timeout_bounds_the_drain, 60)
{
    th_server s;
    start(&s, "server {\n  shutdown_timeout_ms: 300\n}\n", NULL);
    /* A request that never completes must not hold the server beyond the shutdown timeout. */
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.1\r\nHost: x\r\n"), 0);
    usleep(100000);
    uint64_t t0 = tr_now_ns();
    th_server_signal(&s, SIGINT);
    CHECK_EQ(th_server_wait(&s, 10000), 0);
    uint64_t ms = (tr_now_ns() - t0) / 1000000;
    test_report("SIGINT with a stuck request: exited after %llu ms (shutdown_timeout_ms 300)",
                (unsigned long long)ms);
    CHECK(ms >= 250);
    CHECK(ms < 5000);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
    char *err = th_server_stderr(&s);
    CHECK_CONTAINS(err, "shutdown timeout, closing 1 connection(s)");
    free(err);
}

/* The server's resident memory in KiB (VmRSS), or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* Idle keep-alive connections keep no large buffer from an earlier request: 16 connections that
 * each sent an 8 MiB body and stay open held 16 x 8 MiB before (142 MiB RSS in the release
 * build); now the buffers go back when each response is done. ASan's quarantine would keep
 * freed memory resident, so this server runs without one. */
TEST_TIMEOUT(e2e_http_idle_connections_keep_no_large_buffers, 60)
{
    enum { N = 16, BODY = 8 << 20 };
    const char *old = getenv("ASAN_OPTIONS");
    char *opts = tr_asprintf("%s%squarantine_size_mb=0", old ? old : "", old ? ":" : "");
    char *saved = old ? tr_strdup(old) : NULL;
    setenv("ASAN_OPTIONS", opts, 1);
    th_server s;
    const char *extra[] = {"--runtime-threads", "1", NULL};
    start(&s, NULL, extra);
    if (saved)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    long before = rss_kib(s.pid);
    char *body = malloc(BODY);
    memset(body, 'x', BODY);
    char head[128];
    snprintf(head, sizeof head, "POST /api/healthcheck HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
             BODY);
    th_conn c[N];
    for (int i = 0; i < N; i++) {
        CHECK_EQ(th_conn_open(&c[i], s.port), 0);
        CHECK_EQ(th_conn_send_str(&c[i], head), 0);
        CHECK_EQ(th_conn_send(&c[i], body, BODY), 0);
        th_resp r;
        CHECK_EQ(th_conn_read(&c[i], &r, false, 10000), 0);
        CHECK_EQ(r.status, 405);
        th_resp_free(&r);
    }
    long after = rss_kib(s.pid);
    test_report("RSS %ld MiB before, %ld MiB with %d idle connections that each sent %d MiB",
                before >> 10, after >> 10, N, BODY >> 20);
    CHECK(before > 0 && after > 0);
    CHECK(after - before < 48 * 1024); /* far below N x 8 MiB = 128 MiB */
    /* and they still serve */
    for (int i = 0; i < N; i++) {
        th_resp r;
        CHECK_EQ(th_conn_send_str(&c[i], "GET /api/healthcheck HTTP/1.1\r\n\r\n"), 0);
        CHECK_EQ(th_conn_read(&c[i], &r, false, 5000), 0);
        CHECK_EQ(r.status, 200);
        th_resp_free(&r);
        th_conn_close(&c[i]);
    }
    free(body);
    tr_free(opts);
    tr_free(saved);
    stop_ok(&s);
}

/* Bodies that are still arriving count against the worker's max_buffered_body_bytes: one that
 * would go over it gets 503, and the room comes back as soon as a body is no longer needed. */
TEST_TIMEOUT(e2e_http_buffered_bodies_have_a_ceiling, 60)
{
    enum { MIB = 1 << 20 };
    th_server s;
    const char *extra[] = {"--runtime-threads", "1", NULL};
    start(&s, "server {\n  max_body_bytes: 4194304\n  max_buffered_body_bytes: 6291456\n}\n",
          extra);
    char *body = malloc(4 * MIB);
    memset(body, 'b', 4 * MIB);
    const char *head = "POST /api/healthcheck HTTP/1.1\r\nContent-Length: 4194304\r\n\r\n";
    /* a: 3 MiB of 4 arrived, held */
    th_conn a, b, c;
    CHECK_EQ(th_conn_open(&a, s.port), 0);
    CHECK_EQ(th_conn_send_str(&a, head), 0);
    CHECK_EQ(th_conn_send(&a, body, 3 * MIB), 0);
    usleep(300000);
    /* b: its 3.5 MiB would make 6.5 of the 6 allowed */
    CHECK_EQ(th_conn_open(&b, s.port), 0);
    CHECK_EQ(th_conn_send_str(&b, head), 0);
    th_conn_send(&b, body, 3 * MIB + MIB / 2);
    th_resp r;
    CHECK_EQ(th_conn_read(&b, &r, false, 5000), 0);
    CHECK_EQ(r.status, 503);
    CHECK_CONTAINS(r.body, "too many request bodies");
    th_resp_free(&r);
    th_conn_close(&b);
    /* a finishes: served as usual (405: the route takes no POST) */
    CHECK_EQ(th_conn_send(&a, body + 3 * MIB, MIB), 0);
    CHECK_EQ(th_conn_read(&a, &r, false, 5000), 0);
    CHECK_EQ(r.status, 405);
    th_resp_free(&r);
    /* its room is free again: a whole 4 MiB body on another connection */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, head), 0);
    CHECK_EQ(th_conn_send(&c, body, 4 * MIB), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 405);
    th_resp_free(&r);
    th_conn_close(&a);
    th_conn_close(&c);
    free(body);
    stop_ok(&s);
}
