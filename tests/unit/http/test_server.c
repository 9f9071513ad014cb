/* Tests for the HTTP server in-process (http/conn.c, server.c, response.c) with handlers that
 * exist only here: echoing bodies, and completing responses later from a timer (a parked
 * request, as WASM routes will), over real loopback sockets. */
#include "test.h"
#include "e2e/harness.h"
#include "http/http.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <pthread.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct fixture {
    pthread_t th;
    loop *l;
    http_server *s;
    http_router *r;
    int port;
} fixture;

static void echo(const http_request *req, http_response *res, void *ud)
{
    (void)ud;
    const http_header *ct = http_request_header(req, "content-type");
    char type[128];
    snprintf(type, sizeof type, "%.*s", ct ? (int)ct->value.len : 10,
             ct ? ct->value.ptr : "text/plain");
    http_response_header(res, "X-Method", req->method.ptr, req->method.len);
    http_response_header(res, "X-Query", req->query.ptr, req->query.len);
    http_response_send(res, 200, type, req->body.ptr, req->body.len);
}

/* Answers with the value of the X-Big header and the number of headers. */
static void header_value(const http_request *req, http_response *res, void *ud)
{
    (void)ud;
    const http_header *h = http_request_header(req, "x-big");
    char n[16];
    int nl = snprintf(n, sizeof n, "%zu", req->nheaders);
    http_response_header(res, "X-Count", n, (size_t)nl);
    http_response_send(res, 200, "text/plain", h ? h->value.ptr : "", h ? h->value.len : 0);
}

typedef struct later {
    loop_timer t;
    loop *l;
    http_response *res;
    char body[64];
    size_t len;
} later;

static _Atomic int cancelled;

static void on_later(loop *l, loop_timer *t)
{
    (void)l;
    later *x = (later *)t;
    http_response_send(x->res, 200, "text/plain", x->body, x->len);
}

static void on_cancel(void *ud)
{
    later *x = ud;
    loop_timer_stop(x->l, &x->t);
    cancelled++;
}

/* Parks the request and answers after :ms milliseconds from a loop timer. */
static void delayed(const http_request *req, http_response *res, void *ud)
{
    loop *l = ud;
    const http_slice *ms = http_request_param(req, "ms");
    later *x = tr_arena_alloc(req->arena, sizeof *x);
    x->res = res;
    x->l = l;
    http_response_on_cancel(res, on_cancel, x);
    x->len = (size_t)snprintf(x->body, sizeof x->body, "after %.*s", (int)ms->len, ms->ptr);
    loop_timer_init(&x->t, on_later);
    loop_timer_start(l, &x->t, strtoul(ms->ptr, NULL, 10));
}

static void *run_loop(void *arg)
{
    fixture *f = arg;
    loop_run(f->l);
    return NULL;
}

static void on_stop(loop *l, void *arg)
{
    fixture *f = arg;
    http_server_close_all(f->s);
    loop_stop(l);
}

static void fixture_start(fixture *f)
{
    tr_error err;
    CHECK_EQ(loop_new(&f->l), 0);
    f->r = http_router_new();
    CHECK_EQ(http_router_add(f->r, "POST", "/echo", echo, NULL, &err), 0);
    CHECK_EQ(http_router_add(f->r, "GET", "/echo", echo, NULL, &err), 0);
    CHECK_EQ(http_router_add(f->r, "GET", "/later/:ms", delayed, f->l, &err), 0);
    CHECK_EQ(http_router_add(f->r, "GET", "/hdr", header_value, NULL, &err), 0);
    CHECK_EQ(http_builtin_register(f->r, &err), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(fd, 64), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    http_server_opts o = {
        .limits = {.max_body_bytes = 1000,
                   .max_header_bytes = 16384,
                   .max_headers = 20,
                   .max_target_bytes = 256,
                   .idle_timeout_ms = 5000,
                   .header_timeout_ms = 300,
                   .body_timeout_ms = 300,
                   .max_connections = 100},
        .router = f->r,
    };
    CHECK_EQ(http_server_new(f->l, fd, &o, &f->s), 0);
    CHECK_EQ(pthread_create(&f->th, NULL, run_loop, f), 0);
}

static void fixture_stop(fixture *f)
{
    loop_post(f->l, on_stop, f);
    pthread_join(f->th, NULL);
    http_server_free(f->s);
    loop_free(f->l);
    http_router_free(f->r);
}

TEST(http_server_chunked_body_split_across_writes)
{
    fixture f;
    fixture_start(&f);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    const char *parts[] = {"POST /echo?x=1 HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\n",
                           "Transfer-Encoding: chunked\r\n\r\n5\r\nhel", "lo\r\n6;ext=1\r\n wo",
                           "rld\r\n0\r\nTrailer: t\r\n\r\n"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(th_conn_send_str(&c, parts[i]), 0);
        usleep(20000);
    }
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "hello world");
    char v[64];
    CHECK_STR_EQ(th_resp_header(&r, "Content-Type", v, sizeof v), "text/x-test");
    CHECK_STR_EQ(th_resp_header(&r, "X-Query", v, sizeof v), "x=1");
    th_resp_free(&r);
    /* Trailers are consumed but not shown to the handler as headers. */
    CHECK_EQ(th_conn_send_str(&c, "GET /hdr HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "1\r\nz\r\n0\r\nX-Big: trailer\r\n\r\n"),
             0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "");
    CHECK_STR_EQ(th_resp_header(&r, "X-Count", v, sizeof v), "1");
    th_resp_free(&r);
    /* ...and count against the header limit (16 KiB here). */
    tr_buf t = TR_BUF_INIT;
    tr_buf_append_str(&t, "GET /hdr HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ");
    for (int i = 0; i < 20000; i++)
        tr_buf_append_char(&t, 't');
    tr_buf_append_str(&t, "\r\n\r\n");
    th_conn c2;
    CHECK_EQ(th_conn_open(&c2, f.port), 0);
    CHECK_EQ(th_conn_send(&c2, t.data, t.len), 0);
    CHECK_EQ(th_conn_read(&c2, &r, false, 5000), 0);
    CHECK_EQ(r.status, 431);
    th_resp_free(&r);
    th_conn_close(&c2);
    tr_buf_free(&t);
    /* Content-Length body on the same connection. */
    CHECK_EQ(th_conn_send_str(&c, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(r.body, "abc");
    th_resp_free(&r);
    /* A chunked body over the limit (1000 bytes): 413, then the connection closes. */
    CHECK_EQ(th_conn_send_str(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    char chunk[600];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 2; i++) {
        char head[16];
        snprintf(head, sizeof head, "%zx\r\n", sizeof chunk);
        th_conn_send_str(&c, head);
        th_conn_send(&c, chunk, sizeof chunk);
        th_conn_send_str(&c, "\r\n");
    }
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 413);
    CHECK_STR_EQ(r.body, "{\"error\":\"request body too large\"}");
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_parked_request_keeps_pipeline_order)
{
    fixture f;
    fixture_start(&f);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    /* The first request is answered 100 ms later; the two behind it wait and keep their order. */
    CHECK_EQ(th_conn_send_str(&c, "GET /later/100 HTTP/1.1\r\n\r\n"
                                  "GET /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "GET /later/10 HTTP/1.1\r\n\r\n"),
             0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(r.body, "after 100");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(r.body, "Ok");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(r.body, "after 10");
    th_resp_free(&r);
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_expect_continue_and_http10)
{
    fixture f;
    fixture_start(&f);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
             0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 100);
    th_resp_free(&r);
    CHECK_EQ(th_conn_send_str(&c, "hi"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "hi");
    th_resp_free(&r);
    th_conn_close(&c);

    /* HTTP/1.0 without keep-alive: answered, then closed. */
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.0\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    char v[64];
    CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "close");
    th_resp_free(&r);
    CHECK_EQ(th_conn_wait_closed(&c, 5000, NULL), 1);
    th_conn_close(&c);
    /* HTTP/1.0 with keep-alive stays open and says so. */
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(
        th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(th_resp_header(&r, "Connection", v, sizeof v), "keep-alive");
    th_resp_free(&r);
    CHECK_EQ(th_conn_send_str(&c, "GET /api/healthcheck HTTP/1.0\r\n\r\n"), 0);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_large_pipeline_and_slow_reader)
{
    fixture f;
    fixture_start(&f);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    /* 2000 pipelined requests in one go; responses come back complete and in order even though
     * we do not read until everything was sent. */
    tr_buf all = TR_BUF_INIT;
    for (int i = 0; i < 2000; i++)
        tr_buf_printf(&all, "GET /echo?%d HTTP/1.1\r\n\r\n", i);
    CHECK_EQ(th_conn_send(&c, all.data, all.len), 0);
    tr_buf_free(&all);
    for (int i = 0; i < 2000; i++) {
        th_resp r;
        CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
        char v[32], want[32];
        snprintf(want, sizeof want, "%d", i);
        CHECK_STR_EQ(th_resp_header(&r, "X-Query", v, sizeof v), want);
        th_resp_free(&r);
    }
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_parked_request_cancelled_on_reset_and_shutdown)
{
    fixture f;
    fixture_start(&f);
    cancelled = 0;
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /later/5000 HTTP/1.1\r\n\r\n"), 0);
    usleep(100000);
    /* Reset the connection: the parked handler hears about it and stops its timer. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    th_conn_close(&c);
    for (int i = 0; i < 100 && cancelled == 0; i++)
        usleep(10000);
    CHECK_EQ(cancelled, 1);
    /* A request still parked when the server closes everything is cancelled too. */
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /later/5000 HTTP/1.1\r\n\r\n"), 0);
    usleep(100000);
    fixture_stop(&f);
    CHECK_EQ(cancelled, 2);
    th_conn_close(&c);
}

TEST_TIMEOUT(http_server_request_split_at_every_byte, 30)
{
    fixture f;
    fixture_start(&f);
    static const char req[] = "POST /echo?q=split HTTP/1.1\r\nHost: example\r\n"
                              "Content-Type: text/x-split\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n";
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    for (size_t cut = 1; cut < sizeof req - 1; cut++) {
        CHECK_EQ(th_conn_send(&c, req, cut), 0);
        usleep(1000);
        CHECK_EQ(th_conn_send(&c, req + cut, sizeof req - 1 - cut), 0);
        th_resp r;
        CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
        CHECK_EQ(r.status, 200);
        CHECK_STR_EQ(r.body, "abcdefg");
        char v[64];
        CHECK_STR_EQ(th_resp_header(&r, "Content-Type", v, sizeof v), "text/x-split");
        CHECK_STR_EQ(th_resp_header(&r, "X-Query", v, sizeof v), "q=split");
        th_resp_free(&r);
    }
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_buffer_compaction_keeps_header_offsets)
{
    fixture f;
    fixture_start(&f);
    /* A small request, then most of a large one: the buffer must be compacted (the first
     * request's bytes dropped) and grown while the second is mid-headers. */
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_str(&b, "GET /hdr HTTP/1.1\r\nX-Big: small\r\n\r\n");
    tr_buf_append_str(&b, "GET /hdr HTTP/1.1\r\nX-A: 1\r\nX-Big: ");
    for (int i = 0; i < 12000; i++)
        tr_buf_append_char(&b, (char)('a' + i % 26));
    size_t first = b.len - 3000;
    tr_buf_append_str(&b, "\r\nX-C: 3\r\n\r\n");
    th_conn c;
    CHECK_EQ(th_conn_open(&c, f.port), 0);
    CHECK_EQ(th_conn_send(&c, b.data, first), 0);
    usleep(50000);
    CHECK_EQ(th_conn_send(&c, b.data + first, b.len - first), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_STR_EQ(r.body, "small");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 5000), 0);
    CHECK_EQ(r.body_len, 12000);
    for (size_t i = 0; i < 12000; i++)
        CHECK_EQ(r.body[i], (char)('a' + i % 26));
    char v[16];
    CHECK_STR_EQ(th_resp_header(&r, "X-Count", v, sizeof v), "3");
    th_resp_free(&r);
    tr_buf_free(&b);
    th_conn_close(&c);
    fixture_stop(&f);
}

TEST(http_server_date_is_current_after_idle)
{
    fixture f;
    fixture_start(&f);
    th_resp r;
    CHECK_EQ(th_request(f.port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", &r), 0);
    th_resp_free(&r);
    /* The worker sleeps; the next response must carry the time it is sent, not a cached one. */
    sleep(2);
    CHECK_EQ(th_request(f.port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", &r), 0);
    char v[64];
    CHECK(th_resp_header(&r, "Date", v, sizeof v) != NULL);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    CHECK(strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) != NULL);
    long long sent = (long long)timegm(&tm), now = (long long)time(NULL);
    CHECK(now - sent <= 1 && now - sent >= 0);
    th_resp_free(&r);
    fixture_stop(&f);
}
