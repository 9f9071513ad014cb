/* tests/e2e/origin.c: the in-process origin server of origin.h. */
#include "e2e/origin.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
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
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
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

static void serve_one(th_origin *o, int fd)
{
    char req[8192];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (n <= 0) return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    char target[2048] = "";
    if (sscanf(req, "%*s %2047s", target) != 1) return;
    const th_origin_route *r = NULL;
    for (size_t i = 0; i < o->nroutes; i++)
        if (strcmp(o->routes[i].path, target) == 0) r = &o->routes[i];
    static const th_origin_route not_found = {"", 404, "text/plain", "no such path", 12, 0};
    if (r == NULL) r = &not_found;
    if (r->delay_ms > 0) {
        struct pollfd p = {.fd = o->stop_fd[0], .events = POLLIN};
        if (poll(&p, 1, r->delay_ms) > 0) return;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     r->status, r->content_type ? r->content_type : "application/octet-stream",
                     r->body_len);
    send_all(fd, head, (size_t)n);
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
        serve_one(o, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

int th_origin_start(th_origin *o, const th_origin_route *routes, size_t nroutes)
{
    memset(o, 0, sizeof *o);
    o->routes = routes;
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
}
