/* http/conn.c: one HTTP/1.1 connection on its worker, from accept() to close().
 *
 * DESIGN: received bytes go into conn->in and are fed to llhttp; its callbacks record offsets of
 * the target and headers (not pointers: in may move when it grows or is compacted between reads)
 * and copy the body out (de-chunked) into conn->body, so the bytes of a body already parsed can be
 * dropped from in. on_message_complete pauses the parser; the request is then dispatched with
 * pointers into in. While a handler has not completed its response (parked), the connection
 * neither reads nor parses, so in stays put and pipelined requests wait their turn. Responses are
 * appended to conn->out and written with one send() after the whole batch of input was handled.
 *
 * After an error response (400, 413, 431, ...) or a "Connection: close" exchange nothing more is
 * parsed; the write side is shut down and input is discarded until the peer closes or a short
 * linger timer fires, so the peer reads the response instead of a reset.
 *
 * Timeouts use one timer per connection with a lazily moved deadline: pushing the deadline later
 * (every keep-alive request) is a store; the timer re-arms itself when it fires early. */
#include "http/http_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_INITIAL     8192
#define OUT_HIGH       (1u << 20) /* stop parsing while this much output is unwritten */
#define LINGER_MS      1000
#define FREE_CONNS_MAX 256
#define BUF_KEEP_MAX   (64u << 10) /* buffers larger than this are released on reuse */


static void conn_process(http_conn *c);
static void conn_error(http_conn *c, int status, const char *msg);

/* ---- deadlines ---- */

static void set_deadline(http_conn *c, uint8_t kind, uint32_t ms)
{
    loop *l = c->srv->loop;
    c->dl_kind = kind;
    c->deadline_ns = loop_now_ns(l) + (uint64_t)ms * 1000000u;
    if (!loop_timer_active(&c->timer) || c->timer.deadline_ns > c->deadline_ns)
        loop_timer_start_at(l, &c->timer, c->deadline_ns);
}

/* Progress pushes the body's deadline out by body_timeout_ms, but never past the bound on the
 * whole body: a client sending a byte now and then cannot keep its connection for ever. */
static void set_body_deadline(http_conn *c, uint32_t ms)
{
    loop *l = c->srv->loop;
    uint64_t at = loop_now_ns(l) + (uint64_t)ms * 1000000u;
    if (at > c->body_deadline_ns) at = c->body_deadline_ns;
    c->dl_kind = DL_BODY;
    c->deadline_ns = at;
    if (!loop_timer_active(&c->timer) || c->timer.deadline_ns > at)
        loop_timer_start_at(l, &c->timer, at);
}

static void update_deadline(http_conn *c)
{
    const http_limits *lim = &c->srv->o.limits;
    if (c->lingering) return;
    if (c->parked) {
        c->dl_kind = DL_NONE;
    } else if (c->in_message) {
        if (c->headers_done)
            set_body_deadline(c, lim->body_timeout_ms);
        else if (c->dl_kind != DL_HEADER)
            set_deadline(c, DL_HEADER, lim->header_timeout_ms);
    } else {
        set_deadline(c, DL_IDLE, lim->idle_timeout_ms);
    }
}

/* ---- interest ---- */

static void update_interest(http_conn *c)
{
    uint32_t ev = 0;
    bool out_pending = c->out_sent < c->out.len || c->file_fd >= 0;
    if (c->lingering)
        ev = EPOLLIN;
    else if (!c->parked && !c->closing && !c->peer_closed && c->out.len - c->out_sent < OUT_HIGH)
        ev = EPOLLIN;
    if (out_pending) ev |= EPOLLOUT;
    if (loop_io_mod(c->srv->loop, &c->io, ev) < 0) c->broken = true;
}

/* ---- llhttp callbacks ---- */

static inline http_conn *pconn(llhttp_t *p)
{
    return p->data;
}

static inline uint32_t off_of(http_conn *c, const char *at)
{
    return (uint32_t)(at - c->in.data);
}

static int fail(http_conn *c, int status, const char *msg)
{
    if (c->err_status == 0) {
        c->err_status = status;
        c->err_msg = msg;
    }
    return -1;
}

/* The connection's request body no longer counts against the worker's buffered total. */
static void body_release(http_conn *c)
{
    if (c->body_counted == 0) return; /* also when the server itself is going away */
    c->srv->body_bytes -= c->body_counted;
    c->body_counted = 0;
}

static int check_header_bytes(http_conn *c, uint32_t end)
{
    if (end - c->msg_start > c->srv->o.limits.max_header_bytes)
        return fail(c, 431, "request header fields too large");
    if (end > c->hdr_end) c->hdr_end = end;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    http_conn *c = pconn(p);
    c->in_message = true;
    c->headers_done = false;
    c->hdr_state = 0;
    c->expect_continue = false;
    c->te_unsupported = false;
    c->has_cl = c->has_te = c->has_host = false;
    c->url_off = c->url_len = 0;
    c->nhdrs = 0;
    c->trailer_len = 0;
    c->msg_start = c->parsed;
    c->hdr_end = (uint32_t)c->parsed;
    body_release(c);
    tr_buf_reset(&c->body);
    if (c->srv->o.access_log) c->req_start_ns = tr_now_ns();
    set_deadline(c, DL_HEADER, c->srv->o.limits.header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    http_conn *c = pconn(p);
    if (c->url_len == 0) c->url_off = off_of(c, at);
    c->url_len += (uint32_t)len;
    if (c->url_len > c->srv->o.limits.max_target_bytes)
        return fail(c, 414, "request target too long");
    return check_header_bytes(c, off_of(c, at) + (uint32_t)len);
}

/* Trailer fields (after a chunked body) are checked against the header limit and dropped:
 * handlers see the header section only. */
static int trailer_bytes(http_conn *c, size_t len)
{
    c->trailer_len += (uint32_t)len;
    if (c->trailer_len > c->srv->o.limits.max_header_bytes)
        return fail(c, 431, "request trailer fields too large");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    http_conn *c = pconn(p);
    if (c->headers_done) return trailer_bytes(c, len + 4);
    if (c->hdr_state != 1) {
        if (c->nhdrs == c->srv->o.limits.max_headers) return fail(c, 431, "too many header fields");
        if (c->nhdrs == c->hdrs_cap) {
            c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
            c->hdrs = tr_realloc(c->hdrs, c->hdrs_cap * sizeof *c->hdrs);
            c->headers = tr_realloc(c->headers, c->hdrs_cap * sizeof *c->headers);
        }
        http_hdr_off *h = &c->hdrs[c->nhdrs++];
        h->name_off = off_of(c, at);
        h->name_len = 0;
        h->value_off = h->name_off;
        h->value_len = 0;
        c->hdr_state = 1;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)len;
    return check_header_bytes(c, off_of(c, at) + (uint32_t)len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    http_conn *c = pconn(p);
    if (c->headers_done) return trailer_bytes(c, len);
    if (c->hdr_state != 2 && c->hdr_state != 3) return fail(c, 400, "header value without a name");
    http_hdr_off *h = &c->hdrs[c->nhdrs - 1];
    if (c->hdr_state != 2) {
        h->value_off = off_of(c, at);
        h->value_len = 0;
        c->hdr_state = 2;
    }
    h->value_len += (uint32_t)len;
    return check_header_bytes(c, off_of(c, at) + (uint32_t)len);
}

static void trim(const char **p, size_t *n)
{
    while (*n && ((*p)[0] == ' ' || (*p)[0] == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

bool http_is_token(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return false;
    return true;
}

static int on_header_field_complete(llhttp_t *p)
{
    http_conn *c = pconn(p);
    if (c->headers_done) return 0;
    /* RFC 9112 5.1: a field name is a non-empty token; whitespace before the colon is a 400
     * (llhttp lets some of these through). */
    if (c->hdr_state != 1) return fail(c, 400, "empty header field name");
    const http_hdr_off *h = &c->hdrs[c->nhdrs - 1];
    if (h->name_len == 0) return fail(c, 400, "empty header field name");
    for (uint32_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)c->in.data[h->name_off + i]))
            return fail(c, 400, "invalid header field name");
    /* An empty value produces no on_header_value; the next field must still start a header. */
    c->hdr_state = 3;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    http_conn *c = pconn(p);
    if (c->headers_done || c->nhdrs == 0) return 0;
    http_hdr_off *h = &c->hdrs[c->nhdrs - 1];
    c->hdr_state = 0;
    const char *name = c->in.data + h->name_off;
    const char *v = c->in.data + h->value_off;
    size_t vl = h->value_len;
    /* RFC 9112 5.2: we reject obsolete line folding rather than unfold it. */
    if (memchr(v, '\r', vl) || memchr(v, '\n', vl)) return fail(c, 400, "obsolete line folding");
    trim(&v, &vl);
    if (tr_mem_ieq(name, h->name_len, "transfer-encoding")) {
        /* We decode exactly one coding: chunked. Anything else (gzip, "chunked, chunked", a
         * second Transfer-Encoding header) is not implemented. */
        if (c->has_te || !tr_mem_ieq(v, vl, "chunked")) c->te_unsupported = true;
        c->has_te = true;
    } else if (tr_mem_ieq(name, h->name_len, "content-length")) {
        c->has_cl = true;
    } else if (tr_mem_ieq(name, h->name_len, "host")) {
        if (c->has_host) return fail(c, 400, "more than one Host header");
        c->has_host = true;
    } else if (tr_mem_ieq(name, h->name_len, "expect")) {
        if (tr_mem_ieq(v, vl, "100-continue")) c->expect_continue = true;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn *c = pconn(p);
    if (c->has_cl && c->has_te) return fail(c, 400, "both Content-Length and Transfer-Encoding");
    if (c->te_unsupported) return fail(c, 501, "unsupported transfer coding");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->o.limits.max_body_bytes)
        return fail(c, 413, "request body too large");
    c->headers_done = true;
    uint32_t total_ms = c->srv->o.limits.body_total_timeout_ms;
    c->body_deadline_ns =
        total_ms ? loop_now_ns(c->srv->loop) + (uint64_t)total_ms * 1000000u : UINT64_MAX;
    if (c->expect_continue && p->http_minor >= 1 &&
        ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)))
        tr_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    set_deadline(c, DL_BODY, c->srv->o.limits.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    http_conn *c = pconn(p);
    if (c->body.len + len > c->srv->o.limits.max_body_bytes)
        return fail(c, 413, "request body too large");
    uint64_t most = c->srv->o.limits.max_buffered_body_bytes;
    if (most != 0 && c->srv->body_bytes + len > most)
        return fail(c, 503, "the server is receiving too many request bodies at once; try again");
    tr_buf_append(&c->body, at, len);
    c->body_counted += len;
    c->srv->body_bytes += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_conn *c = pconn(p);
    c->in_message = false;
    c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- requests ---- */

const http_header *http_request_header(const http_request *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.len == nl && strncasecmp(req->headers[i].name.ptr, name, nl) == 0)
            return &req->headers[i];
    return NULL;
}

const http_slice *http_request_param(const http_request *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nparams; i++)
        if (req->params[i].name.len == nl && memcmp(req->params[i].name.ptr, name, nl) == 0)
            return &req->params[i].value;
    return NULL;
}

static void begin_response(http_conn *c)
{
    c->res.done = false;
    c->res.streaming = false;
    c->res.cancel_fn = NULL;
    tr_buf_reset(&c->res.headers);
    c->parked = true;
    c->dispatching = true;
}

static void dispatch(http_conn *c)
{
    http_server *s = c->srv;
    http_request *req = &c->req;
    const char *m = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    req->method.ptr = m;
    req->method.len = strlen(m);
    req->is_head = req->method.len == 4 && memcmp(m, "HEAD", 4) == 0;
    req->version_minor = llhttp_get_http_minor(&c->parser);
    req->target.ptr = c->in.data + c->url_off;
    req->target.len = c->url_len;
    const char *t = req->target.ptr, *end = t + req->target.len;
    const char *q = memchr(t, '?', req->target.len);
    const char *qend = q ? q : end;
    req->path.ptr = t;
    if (t < end && t[0] != '/') {
        /* absolute-form (RFC 9112 3.2.2): route on the path after scheme://authority */
        const char *sep = memmem(t, (size_t)(qend - t), "://", 3);
        const char *slash = sep ? memchr(sep + 3, '/', (size_t)(qend - sep - 3)) : NULL;
        if (slash)
            req->path.ptr = slash;
        else if (sep)
            req->path.ptr = qend;
    }
    req->path.len = (size_t)(qend - req->path.ptr);
    if (req->path.len == 0) {
        req->path.ptr = "/";
        req->path.len = 1;
    }
    req->query.ptr = q ? q + 1 : end;
    req->query.len = q ? (size_t)(end - q - 1) : 0;
    for (uint32_t i = 0; i < c->nhdrs; i++) {
        const char *v = c->in.data + c->hdrs[i].value_off;
        size_t vl = c->hdrs[i].value_len;
        trim(&v, &vl);
        c->headers[i].name.ptr = c->in.data + c->hdrs[i].name_off;
        c->headers[i].name.len = c->hdrs[i].name_len;
        c->headers[i].value.ptr = v;
        c->headers[i].value.len = vl;
    }
    req->headers = c->headers;
    req->nheaders = c->nhdrs;
    req->body.ptr = c->body.data ? c->body.data : "";
    req->body.len = c->body.len;
    req->nparams = 0;
    tr_arena_reset(&c->arena);
    req->arena = &c->arena;

    begin_response(c);
    if (s->o.mount.accepts && s->o.mount.accepts(req->path.ptr, req->path.len)) {
        s->o.mount.fn(req, &c->res, s->o.mount.ud);
        c->dispatching = false;
        if (!c->res.done) {
            update_interest(c);
            update_deadline(c);
        }
        return;
    }
    http_match match;
    http_match_result r = http_router_match(s->o.router, req->method.ptr, req->method.len,
                                            req->path.ptr, req->path.len, &match);
    if (r == HTTP_MATCH_FOUND) {
        memcpy(req->params, match.params, match.nparams * sizeof match.params[0]);
        req->nparams = match.nparams;
        match.fn(req, &c->res, match.ud);
    } else if (r == HTTP_MATCH_NOT_FOUND) {
        bool get = req->is_head || (req->method.len == 3 && memcmp(m, "GET", 3) == 0);
        if (s->o.statics && get)
            http_static_serve(s->o.statics, req, &c->res);
        else
            http_response_send_error(&c->res, 404, "not found");
    } else {
        http_response_header(&c->res, "Allow", match.allow, strlen(match.allow));
        http_response_send_error(&c->res, 405, "method not allowed");
    }
    c->dispatching = false;
    if (!c->res.done) {
        update_interest(c);
        update_deadline(c);
    }
}

static void list_unlink(http_server *s, http_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_push_front(http_server *s, http_conn *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    else
        s->conns_tail = c;
    s->conns = c;
}

void http__conn_response_done(http_conn *c, int status, size_t body_len)
{
    http_server *s = c->srv;
    c->parked = false;
    /* Most recently active first, so that eviction picks connections idle the longest. */
    if (s->conns != c) {
        list_unlink(s, c);
        list_push_front(s, c);
    }
    if (s->o.access_log) {
        uint64_t us = (tr_now_ns() - c->req_start_ns) / 1000;
        tr_buf_printf(&s->log, "%.*s %.*s %d %zu %llu\n", (int)c->req.method.len, c->req.method.ptr,
                      (int)c->req.path.len, c->req.path.ptr, status, body_len,
                      (unsigned long long)us);
    }
    if (!c->dispatching) http__conn_resume(c);
}

/* Answers a message that cannot be processed, then closes: nothing after it is parsed. */
static void conn_error(http_conn *c, int status, const char *msg)
{
    http_request *req = &c->req;
    req->method.ptr = "-";
    req->method.len = 1;
    req->path.ptr = "-";
    req->path.len = 1;
    req->is_head = false;
    req->version_minor = 1;
    req->nheaders = 0;
    req->nparams = 0;
    c->keep_alive = false;
    c->in_message = false;
    begin_response(c);
    http_response_send_error(&c->res, status, msg);
    c->dispatching = false;
    c->closing = true;
}

/* ---- processing ---- */

static void conn_process(http_conn *c)
{
    const http_limits *lim = &c->srv->o.limits;
    while (!c->parked && !c->closing && c->file_fd < 0 && c->parsed < c->in.len &&
           c->out.len - c->out_sent < OUT_HIGH) {
        c->err_status = 0;
        llhttp_errno_t e =
            llhttp_execute(&c->parser, c->in.data + c->parsed, c->in.len - c->parsed);
        if (e == HPE_OK) {
            c->parsed = c->in.len;
            if (c->in_message && !c->headers_done &&
                c->in.len - c->msg_start > lim->max_header_bytes) {
                conn_error(c, 431, "request header fields too large");
            } else if (c->in_message && c->headers_done) {
                /* The body parsed so far was copied out; keep only the head. */
                c->in.len = c->parsed = c->hdr_end;
            }
            break;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            c->parsed = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
            if (e == HPE_PAUSED_UPGRADE) {
                c->keep_alive = false;
                llhttp_resume_after_upgrade(&c->parser);
            } else {
                llhttp_resume(&c->parser);
            }
            dispatch(c);
            continue;
        }
        int status = c->err_status;
        const char *msg = c->err_msg;
        if (status == 0) {
            if (c->has_cl && c->has_te) {
                status = 400;
                msg = "both Content-Length and Transfer-Encoding";
            } else if (c->te_unsupported || e == HPE_INVALID_TRANSFER_ENCODING) {
                status = c->te_unsupported ? 501 : 400;
                msg = c->te_unsupported ? "unsupported transfer coding"
                                        : "malformed Transfer-Encoding";
            } else {
                status = 400;
                msg = "malformed request";
            }
        }
        conn_error(c, status, msg);
        break;
    }
    /* Everything handled: start over at the front of the buffer without moving bytes. */
    if (!c->in_message && !c->parked && c->parsed == c->in.len) c->in.len = c->parsed = 0;
    if (c->peer_closed && !c->parked) c->closing = true;
}

/* Writes out; returns -1 if the connection is dead. Starts lingering when closing. */
static int conn_flush(http_conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n =
            send(c->io.fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_sent += (size_t)n;
    }
    c->out.len = c->out_sent = 0;
    while (c->file_fd >= 0) {
        ssize_t n = sendfile(c->io.fd, c->file_fd, &c->file_off,
                             (size_t)TR_MIN(c->file_left, (uint64_t)1 << 30));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        if (n == 0) return -1; /* the file shrank: the promised length cannot be kept */
        c->file_left -= (uint64_t)n;
        if (c->file_left == 0) {
            close(c->file_fd);
            c->file_fd = -1;
        }
    }
    if (c->closing && !c->parked && !c->lingering) {
        if (c->peer_closed) return -1;
        shutdown(c->io.fd, SHUT_WR);
        c->lingering = true;
        c->dl_kind = DL_LINGER;
        c->deadline_ns = loop_now_ns(c->srv->loop) + LINGER_MS * 1000000ull;
        loop_timer_start_at(c->srv->loop, &c->timer, c->deadline_ns);
    }
    return 0;
}

int http__conn_stream_flush(http_conn *c)
{
    if (conn_flush(c) < 0) return -1;
    update_interest(c);
    return c->broken ? -1 : 0;
}

/* Makes room for at least 1 KiB more input without dropping bytes a message still needs. */
static void ensure_space(http_conn *c)
{
    if (c->in.cap - c->in.len >= 1024 && c->in.data) return;
    size_t keep = c->in_message ? c->msg_start : c->parsed;
    if (keep > 0) {
        memmove(c->in.data, c->in.data + keep, c->in.len - keep);
        c->in.len -= keep;
        c->parsed -= keep;
        if (c->in_message) {
            uint32_t k = (uint32_t)keep;
            c->msg_start -= keep;
            c->hdr_end -= k;
            if (c->url_len) c->url_off -= k;
            for (uint32_t i = 0; i < c->nhdrs; i++) {
                c->hdrs[i].name_off -= k;
                c->hdrs[i].value_off -= k;
            }
        }
    }
    if (c->in.cap - c->in.len < 1024 || c->in.data == NULL)
        tr_buf_reserve(&c->in, c->in.cap ? c->in.cap : IN_INITIAL);
}

static void shrink_idle(http_conn *c);

/* After any change: parse what is buffered, write, and arm interest and deadline. */
void http__conn_resume(http_conn *c)
{
    for (;;) {
        conn_process(c);
        if (conn_flush(c) < 0 || c->broken) {
            http__conn_close(c);
            return;
        }
        /* Parsing stopped behind a file body or the output high-water mark, and everything got
         * written at once: go on with the pipelined requests still buffered. */
        if (c->parked || c->closing || c->file_fd >= 0 || c->out_sent < c->out.len ||
            c->parsed >= c->in.len || c->in_message)
            break;
    }
    update_interest(c);
    if (c->broken) {
        http__conn_close(c);
        return;
    }
    /* Between requests a keep-alive connection keeps no large buffer: a thousand idle ones that
     * each once received a 16 MiB body or sent a 16 MiB response would hold 16 GiB. */
    if (!c->in_message && !c->parked && c->out.len == 0) {
        body_release(c);
        shrink_idle(c);
    }
    update_deadline(c);
}

static void conn_linger_read(http_conn *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = recv(c->io.fd, scratch, sizeof scratch, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        http__conn_close(c);
        return;
    }
}

static void conn_read(http_conn *c)
{
    if (c->lingering) {
        conn_linger_read(c);
        return;
    }
    if (c->parked || c->closing || c->peer_closed) return;
    ensure_space(c);
    ssize_t n;
    do {
        n = recv(c->io.fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        http__conn_close(c);
        return;
    }
    if (n == 0) {
        /* The peer finished sending. Answer what it sent, then close. */
        c->peer_closed = true;
        if (!c->in_message && c->parsed == c->in.len && c->out_sent == c->out.len && !c->parked) {
            http__conn_close(c);
            return;
        }
    } else {
        c->in.len += (size_t)n;
        c->in.data[c->in.len] = '\0';
    }
    http__conn_resume(c);
}

static void on_io(loop *l, loop_io *io, uint32_t events)
{
    (void)l;
    http_conn *c = TR_CONTAINER_OF(io, http_conn, io);
    if (c->parked && (events & (EPOLLHUP | EPOLLERR))) {
        /* Reported even without interest: the peer is gone while a handler works. */
        http__conn_close(c);
        return;
    }
    if (events & EPOLLOUT) {
        if (conn_flush(c) < 0) {
            http__conn_close(c);
            return;
        }
        if (c->out_sent == c->out.len && c->file_fd < 0) {
            /* Output drained: parsing may have stopped at the high-water mark. */
            http__conn_resume(c);
            return;
        }
        /* A slow reader that keeps taking bytes (a large file) is not idle. */
        if (!c->lingering && c->dl_kind == DL_IDLE) update_deadline(c);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) conn_read(c);
}

static void on_timer(loop *l, loop_timer *t)
{
    http_conn *c = TR_CONTAINER_OF(t, http_conn, timer);
    if (c->dl_kind == DL_NONE) return;
    if (loop_now_ns(l) < c->deadline_ns) {
        loop_timer_start_at(l, t, c->deadline_ns);
        return;
    }
    switch (c->dl_kind) {
    case DL_HEADER:
    case DL_BODY:
        conn_error(c, 408,
                   c->dl_kind == DL_HEADER ? "request header timeout" : "request body timeout");
        http__conn_resume(c);
        return;
    default:
        http__conn_close(c);
        return;
    }
}

/* ---- lifetime ---- */

void http__conn_accept(http_server *s, int fd)
{
    http_conn *c = s->free_conns;
    if (c) {
        s->free_conns = c->next;
        s->nfree--;
    } else {
        c = tr_calloc(1, sizeof *c);
        tr_arena_init(&c->arena, 4096);
        c->res.conn = c;
    }
    c->srv = s;
    c->parsed = c->msg_start = 0;
    c->hdr_end = 0;
    c->in_message = c->headers_done = false;
    c->nhdrs = 0;
    c->parked = c->dispatching = c->closing = c->lingering = c->peer_closed = c->broken = false;
    c->keep_alive = true;
    c->out_sent = 0;
    c->file_fd = -1;
    tr_buf_reset(&c->in);
    tr_buf_reset(&c->out);
    tr_buf_reset(&c->body);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    loop_timer_init(&c->timer, on_timer);
    if (loop_io_add(s->loop, &c->io, fd, EPOLLIN, on_io) < 0) {
        close(fd);
        http__conn_free(c);
        return;
    }
    list_push_front(s, c);
    s->nconns++;
    c->dl_kind = DL_NONE;
    set_deadline(c, DL_IDLE, s->o.limits.idle_timeout_ms);
}

void http__conn_free(http_conn *c)
{
    body_release(c);
    tr_buf_free(&c->in);
    tr_buf_free(&c->out);
    tr_buf_free(&c->body);
    tr_buf_free(&c->res.headers);
    tr_free(c->hdrs);
    tr_free(c->headers);
    tr_arena_deinit(&c->arena);
    tr_free(c);
}

static void shrink(tr_buf *b)
{
    if (b->cap > BUF_KEEP_MAX) tr_buf_free(b);
}

/* Between requests (or once closed) nothing points into the request's arena or buffers any
 * more: the last response was written, so what a handler built for it (a guest's 20 MiB body in
 * the arena, a long header list) can go. */
static void shrink_idle(http_conn *c)
{
    if (c->in.len == 0) shrink(&c->in); /* else it holds the next pipelined request */
    shrink(&c->body);
    shrink(&c->out);
    shrink(&c->res.headers);
    if (tr_arena_size(&c->arena) > BUF_KEEP_MAX)
        tr_arena_deinit(&c->arena);
    else
        tr_arena_reset(&c->arena);
}

void http__conn_close(http_conn *c)
{
    http_server *s = c->srv;
    if (c->parked && c->res.cancel_fn) {
        void (*fn)(void *) = c->res.cancel_fn;
        c->res.cancel_fn = NULL;
        fn(c->res.cancel_ud);
    }
    c->parked = false;
    loop_io_del(s->loop, &c->io);
    close(c->io.fd);
    if (c->file_fd >= 0) close(c->file_fd);
    c->file_fd = -1;
    loop_timer_stop(s->loop, &c->timer);
    list_unlink(s, c);
    s->nconns--;
    body_release(c);
    if (s->nfree < FREE_CONNS_MAX && !s->draining) {
        shrink_idle(c);
        c->next = s->free_conns;
        s->free_conns = c;
        s->nfree++;
    } else {
        http__conn_free(c);
    }
    if (s->draining && s->nconns == 0 && s->drain_done) {
        void (*done)(void *) = s->drain_done;
        s->drain_done = NULL;
        done(s->drain_arg);
    }
}

void http__conn_drain(http_conn *c)
{
    /* A stream (a subscription) has no end of its own: a draining server ends it now. */
    if (c->parked && c->res.streaming) {
        http__conn_close(c);
        return;
    }
    if (c->lingering || c->parked || c->in_message || c->out_sent < c->out.len || c->file_fd >= 0)
        return;
    /* Idle as far as we know; a request may be sitting unread in the socket. */
    ensure_space(c);
    ssize_t n = recv(c->io.fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n > 0) {
        c->in.len += (size_t)n;
        http__conn_resume(c);
        return;
    }
    http__conn_close(c);
}

#define EVICT_SCAN_MAX 256

bool http__conn_evict_idle(http_server *s)
{
    http_conn *c = s->conns_tail;
    for (int i = 0; c != NULL && i < EVICT_SCAN_MAX; i++, c = c->prev) {
        bool idle = !c->in_message && !c->parked && !c->dispatching && c->in.len == 0 &&
                    c->out_sent == c->out.len && c->file_fd < 0;
        if (idle || c->lingering) {
            http__conn_close(c);
            return true;
        }
    }
    return false;
}
