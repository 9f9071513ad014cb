/* http/response.c: the response writer: status line, standard headers and body straight into the
 * connection's output buffer, which is written with one send() per batch of responses.
 *
 * DESIGN: nothing here allocates per response once the connection's buffers have grown to their
 * working size; the Date header is formatted at most once per second per worker. */
#include "http/http_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The reason phrases of the IANA HTTP status code registry (RFC 9110 and the WebDAV and other
 * codes beside it), and 418 as the reference's clients expect it; by code, for a binary search. */
static const struct {
    short code;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

const char *http_status_reason(int status)
{
    size_t lo = 0, hi = TR_ARRAY_LEN(reasons);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].code == status) return reasons[mid].reason;
        if (reasons[mid].code < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}

void http__date_update(http_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The loop's clock (monotonic, cached per iteration) says when the next second starts, so
     * the check per response is one comparison and a worker that slept is never stale. */
    s->date_next_ns = loop_now_ns(s->loop) + (1000000000ull - (uint64_t)ts.tv_nsec);
    if ((int64_t)ts.tv_sec == s->date_sec) return;
    s->date_sec = (int64_t)ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    s->date_len = strftime(s->date, sizeof s->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static inline char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

bool http__response_write(http_response *res, int status, const char *content_type,
                          const void *body, size_t len)
{
    http_conn *c = res->conn;
    http_server *s = c->srv;
    if (!c->keep_alive || s->draining) c->closing = true;
    if (loop_now_ns(s->loop) >= s->date_next_ns) http__date_update(s);
    bool no_body = status == 204 || status == 304 || status < 200;
    const char *reason = http_status_reason(status);
    size_t rl = strlen(reason), cl = content_type ? strlen(content_type) : 0;
    bool send_body = !no_body && !c->req.is_head;
    tr_buf *o = &c->out;
    tr_buf_reserve(o,
                   96 + rl + s->date_len + cl + res->headers.len + (send_body && body ? len : 0));
    char *p = o->data + o->len;
    p = put(p, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + status / 100 % 10);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, rl);
    p = put(p, "\r\n", 2);
    p = put(p, s->date, s->date_len);
    if (!no_body && !res->streaming) {
        p = put(p, "Content-Length: ", 16);
        p = put_u64(p, len);
        p = put(p, "\r\n", 2);
    }
    if (content_type) {
        p = put(p, "Content-Type: ", 14);
        p = put(p, content_type, cl);
        p = put(p, "\r\n", 2);
    }
    if (res->headers.len) p = put(p, res->headers.data, res->headers.len);
    if (c->closing)
        p = put(p, "Connection: close\r\n", 19);
    else if (c->req.version_minor == 0)
        p = put(p, "Connection: keep-alive\r\n", 24);
    p = put(p, "\r\n", 2);
    if (send_body && body && len) p = put(p, body, len);
    o->len = (size_t)(p - o->data);
    o->data[o->len] = '\0';
    return send_body && len > 0;
}

void http_response_header(http_response *res, const char *name, const char *value, size_t value_len)
{
    assert(!res->done);
    assert(memchr(value, '\r', value_len) == NULL && memchr(value, '\n', value_len) == NULL);
    tr_buf_append_str(&res->headers, name);
    tr_buf_append(&res->headers, ": ", 2);
    tr_buf_append(&res->headers, value, value_len);
    tr_buf_append(&res->headers, "\r\n", 2);
}

const http_limits *http_response_limits(const http_response *res)
{
    return &res->conn->srv->o.limits;
}

bool http_response_done(const http_response *res)
{
    return res->done;
}

void http_response_on_cancel(http_response *res, void (*fn)(void *ud), void *ud)
{
    assert(!res->done);
    res->cancel_fn = fn;
    res->cancel_ud = ud;
}

void http_response_send(http_response *res, int status, const char *content_type, const void *body,
                        size_t len)
{
    assert(!res->done);
    assert(body != NULL || len == 0 || res->conn->req.is_head);
    http__response_write(res, status, content_type, body, len);
    res->done = true;
    http__conn_response_done(res->conn, status, len);
}

void http_response_stream_begin(http_response *res, int status, const char *content_type)
{
    assert(!res->done && !res->streaming);
    http_conn *c = res->conn;
    res->streaming = true;
    res->stream_status = status;
    res->stream_bytes = 0;
    c->closing = true; /* the body ends with the connection */
    http__response_write(res, status, content_type, NULL, 0);
    if (!c->dispatching) http__conn_stream_flush(c);
}

int http_response_stream_write(http_response *res, const void *data, size_t len)
{
    assert(res->streaming && !res->done);
    http_conn *c = res->conn;
    if (c->req.is_head) return 0;
    tr_buf_append(&c->out, data, len);
    res->stream_bytes += len;
    if (c->dispatching) return 0;
    return http__conn_stream_flush(c) < 0 ? -EPIPE : 0;
}

size_t http_response_stream_pending(const http_response *res)
{
    return res->conn->out.len - res->conn->out_sent;
}

void http_response_stream_end(http_response *res)
{
    assert(res->streaming && !res->done);
    res->done = true;
    res->streaming = false;
    http__conn_response_done(res->conn, res->stream_status, res->stream_bytes);
}

void http_response_send_file(http_response *res, int status, const char *content_type, int fd,
                             uint64_t len)
{
    assert(!res->done);
    http_conn *c = res->conn;
    if (http__response_write(res, status, content_type, NULL, len)) {
        assert(c->file_fd < 0);
        c->file_fd = fd;
        c->file_off = 0;
        c->file_left = len;
    } else {
        close(fd);
    }
    res->done = true;
    http__conn_response_done(c, status, len);
}

void http_response_send_error(http_response *res, int status, const char *msg)
{
    char buf[512];
    size_t n = 0;
    n += (size_t)snprintf(buf, sizeof buf, "{\"error\":\"");
    for (const char *p = msg; *p && n < sizeof buf - 16; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\\u%04x", ch);
        } else {
            buf[n++] = (char)ch;
        }
    }
    buf[n++] = '"';
    buf[n++] = '}';
    http_response_send(res, status, "application/json", buf, n);
}

void http_response_peer(const http_response *res, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    out[0] = '\0';
    if (getpeername(res->conn->io.fd, (struct sockaddr *)&ss, &sl) != 0) return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}
