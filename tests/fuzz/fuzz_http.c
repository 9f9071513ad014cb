/* tests/fuzz/fuzz_http.c: libFuzzer target for the HTTP connection: llhttp glue, limits,
 * pipelining, error responses, the router and the static-file path checks, all on one
 * connection fed the input through a socketpair.
 *
 * `make fuzz` builds and runs it (FUZZ_SECONDS, default 60; its corpus is kept under
 * build/fuzz/); `make test` builds it.
 * The first input byte chooses where the input is split into two writes. Every input must end
 * with the connection closed, everything written back must be a sequence of well-formed HTTP/1.1
 * responses, and the canary file outside the public directory (reachable only through a symlink
 * or traversal) must never appear. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Answers with the body's length, so no body can look like a status line to the checker. */
static void echo(const http_request *req, http_response *res, void *ud)
{
    (void)ud;
    char n[32];
    int nl = snprintf(n, sizeof n, "%zu bytes", req->body.len);
    http_response_send(res, 200, "text/plain", n, (size_t)nl);
}

typedef struct ctx {
    http_server *s;
    int peer;
    const uint8_t *in;
    size_t in_len, in_sent;
    size_t split;
    tr_buf out;
    int idle_ticks;
} ctx;

static void on_tick(loop *l, void *ud)
{
    ctx *x = ud;
    /* Feed the input in two writes, then close our side. */
    if (x->in_sent < x->in_len) {
        size_t upto = x->in_sent < x->split ? x->split : x->in_len;
        ssize_t n =
            send(x->peer, x->in + x->in_sent, upto - x->in_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) x->in_sent += (size_t)n;
        if (n < 0 && errno != EAGAIN) x->in_sent = x->in_len;
        if (x->in_sent == x->in_len) shutdown(x->peer, SHUT_WR);
    }
    char buf[65536];
    ssize_t n;
    while ((n = recv(x->peer, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        tr_buf_append(&x->out, buf, (size_t)n);
    if (http_server_conn_count(x->s) == 0 || ++x->idle_ticks > 100000) loop_stop(l);
}

static void check_responses(const tr_buf *out)
{
    size_t i = 0;
    while (i < out->len) {
        const char *p = out->data + i;
        size_t left = out->len - i;
        assert(left >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0);
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        assert(end != NULL);
        size_t head = (size_t)(end - p) + 4;
        const char *cl = memmem(p, head, "Content-Length: ", 16);
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        int status = atoi(p + 9);
        assert(status >= 100 && status <= 599);
        if (status == 100 || status == 304) body = 0;
        /* A HEAD response carries a length but no body: the next status line follows. */
        if (left - head >= 9 && memcmp(p + head, "HTTP/1.1 ", 9) == 0) body = 0;
        if (left - head == 0) body = 0;
        assert(head + body <= left);
        i += head + body;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static http_router *router;
    static http_static *statics;
    if (router == NULL) {
        tr_error err;
        /* A public directory with a symlink out of it to a canary that must never be served. */
        char root[] = "/tmp/fuzz-http-XXXXXX";
        if (mkdtemp(root) == NULL) abort();
        char path[256];
        snprintf(path, sizeof path, "%s/public", root);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/secret.txt", root);
        FILE *f = fopen(path, "w");
        fputs("CANARY-SECRET", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/public/index.html", root);
        f = fopen(path, "w");
        fputs("<p>index</p>", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/public/out", root);
        symlink("../secret.txt", path);
        snprintf(path, sizeof path, "%s/public", root);
        if (http_static_open(path, &statics, &err) < 0) abort();
        router = http_router_new();
        http_builtin_register(router, &err);
        http_router_add(router, "POST", "/echo/:x", echo, NULL, &err);
        http_router_add(router, "GET", "/files/*", echo, NULL, &err);
        tr_log_set_level(TR_LOG_ERROR);
    }
    if (size == 0) return 0;
    loop *l;
    if (loop_new(&l) < 0) abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    http_server_opts o = {
        .limits = {.max_body_bytes = 512,
                   .max_buffered_body_bytes = 384, /* reachable: 503 paths too */
                   .max_header_bytes = 1024,
                   .max_headers = 8,
                   .max_target_bytes = 128,
                   .idle_timeout_ms = 50,
                   .header_timeout_ms = 50,
                   .body_timeout_ms = 50,
                   .max_connections = 4},
        .router = router,
        .statics = statics,
    };
    http_server *s;
    if (http_server_new(l, lfd, &o, &s) < 0) abort();
    ctx x = {.s = s,
             .peer = sv[1],
             .in = data + 1,
             .in_len = size - 1,
             .split = (size - 1) ? data[0] % size : 0};
    loop_on_tick(l, on_tick, &x);
    http__conn_accept(s, sv[0]);
    loop_run(l);
    char buf[65536];
    ssize_t n;
    while ((n = recv(x.peer, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        tr_buf_append(&x.out, buf, (size_t)n);
    assert(http_server_conn_count(s) == 0);
    check_responses(&x.out);
    assert(x.out.len == 0 || memmem(x.out.data, x.out.len, "CANARY", 6) == NULL);
    http_server_free(s);
    loop_free(l);
    close(sv[1]);
    tr_buf_free(&x.out);
    return 0;
}
