/* tests/e2e/origin.c: the in-process origin server of origin.h. */
#include "e2e/origin.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 256) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int th_closed_port(void)
{
    int port = 0;
    int fd = listen_loopback(&port);
    if (fd >= 0) close(fd);
    return port;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

#define REQ_MAX 65536

static void serve_one(th_origin *o, int fd, char *req)
{
    size_t len = 0;
    char *end = NULL;
    while (len < REQ_MAX - 1) {
        ssize_t n = recv(fd, req + len, REQ_MAX - 1 - len, 0);
        if (n <= 0) return;
        len += (size_t)n;
        req[len] = '\0';
        if ((end = strstr(req, "\r\n\r\n")) != NULL) break;
    }
    /* the body, as far as Content-Length says and the buffer holds */
    const char *cl = end ? strcasestr(req, "\r\ncontent-length:") : NULL;
    size_t want = cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    size_t head = end ? (size_t)(end + 4 - req) : len;
    while (len < head + want && len < REQ_MAX - 1) {
        ssize_t n = recv(fd, req + len, REQ_MAX - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        req[len] = '\0';
    }
    pthread_mutex_lock(&o->mu);
    memcpy(o->last, req, len + 1);
    pthread_mutex_unlock(&o->mu);
    char target[2048] = "";
    if (sscanf(req, "%*s %2047s", target) != 1) return;
    const th_origin_route *r = NULL;
    const char *extra = "";
    for (size_t i = 0; i < o->nroutes; i++) {
        if (strcmp(o->routes[i].path, target) == 0) {
            r = &o->routes[i];
            extra = o->headers && o->headers[i] ? o->headers[i] : "";
        }
    }
    static const th_origin_route not_found = {"", 404, "text/plain", "no such path", 12, 0};
    if (r == NULL) r = &not_found;
    char hdr[4096];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     r->status, r->content_type ? r->content_type : "application/octet-stream",
                     r->body_len, extra);
    /* split: the head and half the body before the delay, so the client holds a partial one */
    size_t first = 0;
    if (o->split && r->delay_ms > 0) {
        first = r->body_len / 2;
        send_all(fd, hdr, (size_t)n < sizeof hdr ? (size_t)n : sizeof hdr - 1);
        send_all(fd, r->body, first);
    }
    if (r->delay_ms > 0) {
        struct pollfd p = {.fd = o->stop_fd[0], .events = POLLIN};
        if (poll(&p, 1, r->delay_ms) > 0) return;
    }
    if (first == 0) send_all(fd, hdr, (size_t)n < sizeof hdr ? (size_t)n : sizeof hdr - 1);
    send_all(fd, (const char *)r->body + first, r->body_len - first);
    __atomic_add_fetch(&o->requests, 1, __ATOMIC_SEQ_CST);
}

typedef struct conn_job {
    th_origin *o;
    int fd;
} conn_job;

static void serve_conn(th_origin *o, int fd)
{
    char *req = malloc(REQ_MAX);
    serve_one(o, fd, req);
    free(req);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void *conn_main(void *arg)
{
    conn_job *j = arg;
    serve_conn(j->o, j->fd);
    __atomic_sub_fetch(&j->o->active, 1, __ATOMIC_SEQ_CST);
    free(j);
    return NULL;
}

static void *origin_main(void *arg)
{
    th_origin *o = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = o->listen_fd, .events = POLLIN},
                              {.fd = o->stop_fd[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        int fd = accept4(o->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        if (!o->split) {
            serve_conn(o, fd);
            continue;
        }
        /* a client that never sends its request must not hold th_origin_stop() forever */
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        conn_job *j = malloc(sizeof *j);
        j->o = o;
        j->fd = fd;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        __atomic_add_fetch(&o->active, 1, __ATOMIC_SEQ_CST);
        if (pthread_create(&t, &attr, conn_main, j) != 0) {
            __atomic_sub_fetch(&o->active, 1, __ATOMIC_SEQ_CST);
            free(j);
            close(fd);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

int th_origin_start(th_origin *o, const th_origin_route *routes, size_t nroutes)
{
    return th_origin_start_ex(o, routes, NULL, nroutes);
}

void th_origin_last_request(th_origin *o, char *out, size_t cap)
{
    pthread_mutex_lock(&o->mu);
    snprintf(out, cap, "%s", o->last);
    pthread_mutex_unlock(&o->mu);
}

static int origin_start(th_origin *o, const th_origin_route *routes, const char *const *headers,
                        size_t nroutes, int split)
{
    memset(o, 0, sizeof *o);
    o->split = split;
    pthread_mutex_init(&o->mu, NULL);
    o->routes = routes;
    o->headers = headers;
    o->nroutes = nroutes;
    o->listen_fd = listen_loopback(&o->port);
    if (o->listen_fd < 0 || pipe(o->stop_fd) != 0) return -1;
    return pthread_create(&o->thread, NULL, origin_main, o) == 0 ? 0 : -1;
}

int th_origin_start_ex(th_origin *o, const th_origin_route *routes, const char *const *headers,
                       size_t nroutes)
{
    return origin_start(o, routes, headers, nroutes, 0);
}

int th_origin_start_split(th_origin *o, const th_origin_route *routes, size_t nroutes)
{
    return origin_start(o, routes, NULL, nroutes, 1);
}

void th_origin_stop(th_origin *o)
{
    ssize_t w = write(o->stop_fd[1], "x", 1);
    (void)w;
    pthread_join(o->thread, NULL);
    /* connection threads of split mode see the stop pipe too */
    while (__atomic_load_n(&o->active, __ATOMIC_SEQ_CST) > 0)
        usleep(1000);
    close(o->listen_fd);
    close(o->stop_fd[0]);
    close(o->stop_fd[1]);
    pthread_mutex_destroy(&o->mu);
}
