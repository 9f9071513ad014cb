/* tests/e2e/origin.c: the in-process origin server of origin.h. */
#include "e2e/origin.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    if (r->delay_ms > 0) {
        struct pollfd p = {.fd = o->stop_fd[0], .events = POLLIN};
        if (poll(&p, 1, r->delay_ms) > 0) return;
    }
    char hdr[4096];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     r->status, r->content_type ? r->content_type : "application/octet-stream",
                     r->body_len, extra);
    send_all(fd, hdr, (size_t)n < sizeof hdr ? (size_t)n : sizeof hdr - 1);
    send_all(fd, r->body, r->body_len);
    __atomic_add_fetch(&o->requests, 1, __ATOMIC_SEQ_CST);
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
        char *req = malloc(REQ_MAX);
        serve_one(o, fd, req);
        free(req);
        shutdown(fd, SHUT_WR);
        close(fd);
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

int th_origin_start_ex(th_origin *o, const th_origin_route *routes, const char *const *headers,
                       size_t nroutes)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    o->routes = routes;
    o->headers = headers;
    o->nroutes = nroutes;
    o->listen_fd = listen_loopback(&o->port);
    if (o->listen_fd < 0 || pipe(o->stop_fd) != 0) return -1;
    return pthread_create(&o->thread, NULL, origin_main, o) == 0 ? 0 : -1;
}

void th_origin_stop(th_origin *o)
{
    ssize_t w = write(o->stop_fd[1], "x", 1);
    (void)w;
    pthread_join(o->thread, NULL);
    close(o->listen_fd);
    close(o->stop_fd[0]);
    close(o->stop_fd[1]);
    pthread_mutex_destroy(&o->mu);
}
