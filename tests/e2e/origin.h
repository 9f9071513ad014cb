/* tests/e2e/origin.h: a small HTTP/1.1 origin server on 127.0.0.1 inside the test process, for
 * what trail downloads or fetches (component URLs, guest fetch): fixed routes, each with a status,
 * a body, optional extra header lines, and an optional delay before answering (for timeouts).
 * One connection at a time, `Connection: close` on every response. The last request received
 * (head and Content-Length body) is kept for the test to look at. */
#ifndef TRAIL_TESTS_E2E_ORIGIN_H
#define TRAIL_TESTS_E2E_ORIGIN_H

#include <pthread.h>
#include <stddef.h>

typedef struct th_origin_route {
    const char *path; /* exact match on the request target */
    int status;
    const char *content_type;
    const void *body;
    size_t body_len;
    int delay_ms; /* wait this long before answering */
} th_origin_route;

typedef struct th_origin {
    int listen_fd;
    int port;
    const th_origin_route *routes; /* borrowed; must outlive the server */
    size_t nroutes;
    const char *const *headers; /* NULL, or per route: extra header lines ending "\r\n", or NULL */
    int requests;               /* how many requests were answered */
    pthread_t thread;
    int stop_fd[2];
    int split;          /* th_origin_start_split() */
    int active;         /* connection threads running (split mode) */
    pthread_mutex_t mu; /* guards last */
    char last[65536];   /* the last request received, NUL-terminated (truncated) */
} th_origin;

/* Listens on an ephemeral loopback port and serves routes (unknown paths get 404). Returns 0. */
int th_origin_start(th_origin *o, const th_origin_route *routes, size_t nroutes);
/* The same; headers[i] (NULL for none) is sent with routes[i], e.g. "Location: /b\r\n". */
int th_origin_start_ex(th_origin *o, const th_origin_route *routes, const char *const *headers,
                       size_t nroutes);
/* Like th_origin_start(), but every connection is served on its own thread, and a route with a
 * delay sends its head and the first half of its body before the delay (the rest after it), so
 * that many clients hold partial responses at once. */
int th_origin_start_split(th_origin *o, const th_origin_route *routes, size_t nroutes);
/* Copies the last request received (NUL-terminated) into out. */
void th_origin_last_request(th_origin *o, char *out, size_t cap);
void th_origin_stop(th_origin *o);

/* A loopback port where nothing listens (connections are refused). */
int th_closed_port(void);

#endif
