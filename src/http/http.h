/* http/http.h: trail's HTTP/1.1 server: requests, the response writer, the router, static files
 * and the per-worker server that owns the connections.
 *
 * DESIGN: a handler receives a request and a response writer. It may complete the response before
 * returning (built-in routes do) or later, from the same worker's loop (a WASM route awaiting a
 * query or a timer): until then the request is "parked", its connection reads and parses nothing
 * more, and responses to pipelined requests that follow wait, so they still go out in order.
 * The request and everything it points to stay valid until the response is completed or
 * cancelled (http_response_on_cancel: the peer reset the connection, or the server closed it).
 *
 * The router is built once at start-up and then read by every worker (immutable after publish);
 * http_server and its connections belong to one worker.
 * Thread: router read-only from any thread after set-up; everything else owning worker only. */
#ifndef TRAIL_HTTP_HTTP_H
#define TRAIL_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "loop/loop.h"

#define HTTP_MAX_PARAMS   16 /* named parameters (+ wildcard) per route */
#define HTTP_MAX_SEGMENTS 64 /* path segments the router looks at; deeper paths match no route */

typedef struct http_slice {
    const char *ptr;
    size_t len;
} http_slice;

typedef struct http_header {
    http_slice name;  /* as received (case preserved) */
    http_slice value; /* surrounding whitespace removed */
} http_header;

typedef struct http_param {
    http_slice name;  /* pattern's name; "*" for the trailing wildcard */
    http_slice value; /* raw (still percent-encoded) path bytes */
} http_param;

typedef struct http_request {
    http_slice method;     /* "GET", ... */
    http_slice target;     /* request-target as received: path + '?' + query */
    http_slice path;       /* target up to '?' (percent-encoded) */
    http_slice query;      /* after '?', without it; empty if none */
    uint8_t version_minor; /* HTTP/1.x */
    bool is_head;
    const http_header *headers;
    size_t nheaders;
    http_slice body; /* de-chunked */
    http_param params[HTTP_MAX_PARAMS];
    size_t nparams;
    tr_arena *arena; /* scratch freed when the response completes */
} http_request;

/* Case-insensitive header lookup; NULL if absent (the first one if repeated). */
const http_header *http_request_header(const http_request *req, const char *name);
/* A route parameter's raw value by name; NULL if the route has no such parameter. */
const http_slice *http_request_param(const http_request *req, const char *name);

/* ---- responses ---- */
typedef struct http_response http_response;

/* True when s is a non-empty token (RFC 9110 5.6.2): what a header field name must be. */
bool http_is_token(const char *s, size_t n);

/* The server's limits (the same for every response of the worker), e.g. to hold a handler's
 * response headers to what a request's may be: max_headers, max_header_bytes. */
const struct http_limits *http_response_limits(const http_response *res);

/* Adds a response header (before the response is sent). Date, Content-Length and Connection are
 * the server's; do not add them. The value must not contain CR or LF (asserted). */
void http_response_header(http_response *res, const char *name, const char *value,
                          size_t value_len);
/* Completes the response: status, optional Content-Type (NULL for none) and body (copied). For
 * HEAD the body is not sent but its length is (body may then be NULL). May be called once, from the
 * handler or later from the owning worker's loop. */
void http_response_send(http_response *res, int status, const char *content_type, const void *body,
                        size_t len);
/* Completes the response with len bytes of the open file fd, from its start, as the body; they
 * are sent with sendfile(2) after everything before it, and the pipelined requests behind wait.
 * Takes ownership of fd (closed once sent, or with the connection). If the file turns out
 * shorter than len, the connection is closed. */
void http_response_send_file(http_response *res, int status, const char *content_type, int fd,
                             uint64_t len);
/* Completes the response with {"error": msg} (msg JSON-escaped). */
void http_response_send_error(http_response *res, int status, const char *msg);
/* True once the response was sent. */
bool http_response_done(const http_response *res);
/* For a handler that completes later: fn(ud) is called if the connection goes away first (the
 * peer reset or closed it, or the server shut down). From then on res must not be used. Set
 * before returning from the handler; one callback per response. */
void http_response_on_cancel(http_response *res, void (*fn)(void *ud), void *ud);
/* The client's address as text ("127.0.0.1", "::1") into out; "" when unknown. */
void http_response_peer(const http_response *res, char *out, size_t cap);
/* ---- streamed responses (Server-Sent Events) ---- */
/* Starts a response whose body follows in pieces until http_response_stream_end(): the status
 * line and headers go out now, without Content-Length; the body ends with the connection, so
 * nothing after this request is read from it. From the handler or later from the owning
 * worker's loop. The cancel callback (http_response_on_cancel) runs if the connection goes away
 * before the end (the peer closed it, the server shuts down: a draining server ends streams). */
void http_response_stream_begin(http_response *res, int status, const char *content_type);
/* Appends body bytes and writes what the socket takes now. Returns 0, or -EPIPE when the peer
 * is gone: then end the stream. */
int http_response_stream_write(http_response *res, const void *data, size_t len);
/* Body bytes written that the peer has not taken yet (to bound what a slow reader costs). */
size_t http_response_stream_pending(const http_response *res);
/* Ends the body and closes the connection once it is written. res must not be used again. */
void http_response_stream_end(http_response *res);

/* The standard reason phrase for a status ("Not Found"); "Unknown" for others. */
const char *http_status_reason(int status);

/* ---- the router ---- */
typedef void (*http_handler_fn)(const http_request *req, http_response *res, void *ud);

typedef struct http_router http_router;

http_router *http_router_new(void);
void http_router_free(http_router *r); /* NULL is a no-op */

/* Registers method (e.g. "GET", "PROPFIND"; upper-case letters, or "*" for a route that takes
 * any method without a route of its own) + pattern. Pattern: starts with '/', segments are
 * literals, `:name` or `{name}` parameters (a parameter matches one non-empty segment), and an
 * optional final `*` that matches the rest of the path (possibly empty) as parameter "*".
 * Errors: TR_EINVAL for a malformed pattern, TR_ECONFLICT when the same method already has an
 * equivalent pattern (same shape, parameter names aside); err names both patterns. */
int http_router_add(http_router *r, const char *method, const char *pattern, http_handler_fn fn,
                    void *ud, tr_error *err);
/* The route that http_router_add(r, method, pattern) would conflict with: true and its handler's
 * ud in *ud_out when there is one, false when there is none (or pattern is malformed). */
bool http_router_conflict(const http_router *r, const char *method, const char *pattern,
                          void **ud_out);

typedef enum http_match_result {
    HTTP_MATCH_FOUND,
    HTTP_MATCH_NOT_FOUND,
    HTTP_MATCH_METHOD_NOT_ALLOWED,
} http_match_result;

typedef struct http_match {
    http_handler_fn fn;
    void *ud;
    const char *pattern; /* the matched route's pattern */
    http_param params[HTTP_MAX_PARAMS];
    size_t nparams;
    char allow[128]; /* for METHOD_NOT_ALLOWED: "GET, HEAD, POST" */
} http_match;

/* Finds the route for method + path (raw, without query). The most specific route wins:
 * segment by segment, a literal beats a parameter beats the wildcard; on the same pattern the
 * method's own route beats GET (for HEAD, which falls back to GET) beats "*". Parameter values
 * point into path. */
http_match_result http_router_match(const http_router *r, const char *method, size_t method_len,
                                    const char *path, size_t path_len, http_match *m);

/* ---- static files ---- */
typedef struct http_static http_static;

/* Opens dir as the public root. Errors: -errno, err naming the directory. */
int http_static_open(const char *dir, http_static **out, tr_error *err);
void http_static_free(http_static *st); /* NULL is a no-op */
/* Serves req->path (GET or HEAD) from the root: 200 with Content-Type and ETag, 304 when
 * If-None-Match matches, index.html for directories, 404 for anything missing or resolving
 * outside the root (.., encoded dots or slashes, NUL, symlinks leaving the root). */
void http_static_serve(const http_static *st, const http_request *req, http_response *res);
/* The MIME type for a file name by its extension; "application/octet-stream" if unknown. */
const char *http_mime_type(const char *name, size_t len);

/* Registers GET /api/healthcheck -> 200 "Ok". */
int http_builtin_register(http_router *r, tr_error *err);

/* ---- the per-worker server ---- */
typedef struct http_limits {
    uint64_t max_body_bytes;
    uint64_t max_buffered_body_bytes; /* bodies of all connections being received; 0: no limit */
    uint32_t max_header_bytes; /* request line + headers */
    uint32_t max_headers;
    uint32_t max_target_bytes;
    uint32_t idle_timeout_ms;
    uint32_t header_timeout_ms; /* from a request's first byte to the end of its headers */
    uint32_t body_timeout_ms;   /* longest pause while a body is being received */
    uint32_t body_total_timeout_ms; /* end of the headers to the body's last byte; 0: none */
    uint32_t max_connections;   /* open at once; see http_server_new() for what happens beyond */
} http_limits;

/* A handler for every path that prefix accepts, consulted before the router, so that no route
 * of a component can shadow it (the auth API). */
typedef struct http_mount {
    bool (*accepts)(const char *path, size_t len);
    http_handler_fn fn;
    void *ud;
} http_mount;

typedef struct http_server_opts {
    http_limits limits;
    const http_router *router;  /* borrowed, must outlive the server */
    http_mount mount;           /* accepts NULL: none */
    const http_static *statics; /* may be NULL: no static files; borrowed */
    bool access_log;            /* one line per request to stdout */
} http_server_opts;

typedef struct http_server http_server;

/* Starts serving on listen_fd (a listening socket; the server takes ownership and closes it).
 * Returns 0 or -errno. A connection beyond limits.max_connections closes the one idle the
 * longest (between requests, nothing to write), or, when none is, is answered 503 and closed at
 * once; so is one accepted while the process is out of descriptors (a spare one, held for that,
 * is given up to accept it). */
int http_server_new(loop *l, int listen_fd, const http_server_opts *o, http_server **out);
/* Serves on one more listening socket (another address of the same server), taking ownership
 * of fd like http_server_new(). At most HTTP_MAX_LISTENERS in all. Returns 0 or -errno. */
#define HTTP_MAX_LISTENERS 4
int http_server_add_listener(http_server *s, int fd);
/* Graceful stop: closes the listener, closes idle connections, lets the others finish the request
 * they are on (responses then carry Connection: close); calls done(arg) once no connection is
 * left (possibly before returning). */
void http_server_drain(http_server *s, void (*done)(void *arg), void *arg);
/* Closes every connection now (parked requests get their cancel callbacks). */
void http_server_close_all(http_server *s);
size_t http_server_conn_count(const http_server *s);
/* Routes requests parsed from now on with r (borrowed, must outlive its use); for reloads. */
void http_server_set_router(http_server *s, const http_router *r);
/* Frees the server; connections must be closed (http_server_close_all). NULL is a no-op. */
void http_server_free(http_server *s);

#endif
