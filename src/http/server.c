/* http/server.c: one worker's HTTP server: the listeners, the connection list, the access log and
 * the cached Date header.
 *
 * DESIGN: each worker has its own SO_REUSEPORT listener (one per address: localhost is
 * 127.0.0.1 and ::1), so the kernel spreads connections and
 * no lock is taken on accept. The access log is appended in memory per request and written with
 * one write() per loop iteration (tick hook). */
#include "http/http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void on_tick(loop *l, void *ud)
{
    (void)l;
    http_server *s = ud;
    size_t off = 0;
    while (off < s->log.len) {
        ssize_t n = write(1, s->log.data + off, s->log.len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* stdout gone: drop the log rather than stall serving */
        off += (size_t)n;
    }
    tr_buf_reset(&s->log);
}

static void on_accept_resume(loop *l, loop_timer *t)
{
    http_server *s = TR_CONTAINER_OF(t, http_server, accept_timer);
    for (int i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd >= 0) loop_io_mod(l, &s->listeners[i].io, EPOLLIN);
}

/* Answers a connection the worker cannot take and closes it, without reading anything: the
 * client learns at once instead of waiting in the listen queue. */
static void refuse(int fd, const char *why)
{
    char body[160], head[160];
    int bn = snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n",
                     bn);
    struct iovec iov[2] = {{head, (size_t)n}, {body, (size_t)bn}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* a fresh socket's buffer takes it; if not, the close says enough */
    close(fd);
}

/* Out of descriptors: the spare one makes room to accept the connection and refuse it, so the
 * client gets a 503 instead of waiting in the queue, and the listener stops being ready. */
static bool refuse_with_spare(http_server *s, int listen_fd)
{
    if (s->spare_fd < 0) return false;
    close(s->spare_fd);
    s->spare_fd = -1;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) refuse(fd, "the server is out of file descriptors; try again later");
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

static void accept_all(http_listener *ln)
{
    http_server *s = ln->s;
    /* Another thread may have taken the number the spare gave up; try again each time. */
    if (s->spare_fd < 0) s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < 128; i++) {
        int fd = accept4(ln->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE) && refuse_with_spare(s, ln->fd)) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* Out of descriptors (or memory): the listeners stay readable, so pause them
                 * for a moment instead of spinning. */
                tr_log_warn("http: accept: %s; pausing accept for 100 ms", tr_strerror(-errno));
                if (!s->draining) {
                    for (int j = 0; j < s->nlisteners; j++)
                        if (s->listeners[j].fd >= 0) loop_io_mod(s->loop, &s->listeners[j].io, 0);
                    loop_timer_start(s->loop, &s->accept_timer, 100);
                }
            }
            return;
        }
        /* At the cap, the connection idle the longest makes room (it has nothing in flight, so
         * closing it is what its idle timeout would do later); when every one is busy, the new
         * one is refused at once. */
        if (s->nconns >= s->o.limits.max_connections && !http__conn_evict_idle(s)) {
            refuse(fd, "too many connections (server.max_connections); try again later");
            continue;
        }
        http__conn_accept(s, fd);
    }
}

static void on_accept(loop *l, loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    accept_all(TR_CONTAINER_OF(io, http_listener, io));
}

int http_server_add_listener(http_server *s, int fd)
{
    if (s->nlisteners == HTTP_MAX_LISTENERS) {
        close(fd);
        return -EMFILE;
    }
    http_listener *ln = &s->listeners[s->nlisteners];
    ln->s = s;
    ln->fd = fd;
    int rc = loop_io_add(s->loop, &ln->io, fd, EPOLLIN, on_accept);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    s->nlisteners++;
    return 0;
}

int http_server_new(loop *l, int listen_fd, const http_server_opts *o, http_server **out)
{
    http_server *s = tr_calloc(1, sizeof *s);
    s->loop = l;
    s->o = *o;
    s->date_sec = -1;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    http__date_update(s);
    loop_timer_init(&s->accept_timer, on_accept_resume);
    int rc = http_server_add_listener(s, listen_fd);
    if (rc < 0) {
        if (s->spare_fd >= 0) close(s->spare_fd);
        tr_free(s);
        return rc;
    }
    loop_on_tick(l, on_tick, s);
    *out = s;
    return 0;
}

static void close_listeners(http_server *s)
{
    loop_timer_stop(s->loop, &s->accept_timer);
    for (int i = 0; i < s->nlisteners; i++) {
        http_listener *ln = &s->listeners[i];
        if (ln->fd < 0) continue;
        loop_io_del(s->loop, &ln->io);
        close(ln->fd);
        ln->fd = -1;
    }
}

void http_server_drain(http_server *s, void (*done)(void *arg), void *arg)
{
    /* Queued connections would be reset by close(). */
    for (int i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd >= 0) accept_all(&s->listeners[i]);
    close_listeners(s);
    s->draining = true;
    s->drain_done = done;
    s->drain_arg = arg;
    http_conn *c = s->conns;
    while (c) {
        http_conn *next = c->next;
        http__conn_drain(c);
        c = next;
    }
    if (s->nconns == 0 && s->drain_done) {
        s->drain_done = NULL;
        done(arg);
    }
}

void http_server_close_all(http_server *s)
{
    s->drain_done = NULL;
    while (s->conns)
        http__conn_close(s->conns);
}

size_t http_server_conn_count(const http_server *s)
{
    return s->nconns;
}

void http_server_set_router(http_server *s, const http_router *r)
{
    s->o.router = r;
}

void http_server_free(http_server *s)
{
    if (s == NULL) return;
    http_server_close_all(s);
    close_listeners(s);
    while (s->free_conns) {
        http_conn *c = s->free_conns;
        s->free_conns = c->next;
        http__conn_free(c);
    }
    on_tick(s->loop, s);
    if (s->spare_fd >= 0) close(s->spare_fd);
    tr_buf_free(&s->log);
    tr_free(s);
}
