/* server/control.c: the control socket DATA_DIR/trail.sock of `trail run`, and its client.
 *
 * DESIGN: one thread polls the listening socket, an eventfd and at most CONTROL_MAX_CLIENTS
 * connections. A connection sends one line, "run-job NAME"; the thread posts the run to a
 * worker (in turn) and keeps the connection until the worker says the run ended: the worker
 * fills a refcounted job_req, marks it done and writes the eventfd; the thread then sends
 * "ok\n" or "failed\n" followed by the text for the user, and closes. A job outlives the
 * connection that asked for it: its job_req is shared by the two threads (one reference each),
 * and the eventfd lives until server__control_free(), which comes after the workers ended.
 *
 * Safety: the socket file is created with mode 0600 (umask during bind, chmod after), and every
 * peer must be the server's own user (SO_PEERCRED), so only that user (and root) can ask. A
 * request is read for at most CONTROL_READ_TIMEOUT_MS and is at most CONTROL_MAX_LINE bytes.
 * A data directory whose path does not fit in sockaddr_un's 108 bytes is reached through
 * /proc/self/fd/N of the directory. */
#include "server/server_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "component/component.h"
#include "jobs/jobs.h"

#define CONTROL_MAX_CLIENTS     16
#define CONTROL_MAX_LINE        1024
#define CONTROL_READ_TIMEOUT_MS 10000
#define CONTROL_MAX_ANSWER      (1u << 20)

/* One requested job run, shared by the control thread and the worker that runs it. */
typedef struct job_req {
    _Atomic int refs;
    _Atomic bool done; /* set (release) by the worker after ok and answer are final */
    struct server_control *ctl;
    uint64_t deadline_ms;
    char name[CONTROL_MAX_LINE];
    char label[CONTROL_MAX_LINE + 300]; /* "job 'NAME' of COMPONENT", once it is found */
    uint64_t started_ns;
    bool ok;
    tr_buf answer;
} job_req;

typedef struct client {
    int fd; /* -1: a free slot */
    char in[CONTROL_MAX_LINE];
    size_t len;
    uint64_t read_deadline_ns;
    job_req *req; /* the run this connection waits for; NULL while reading */
} client;

struct server_control {
    int dirfd; /* the data directory (O_PATH) */
    int listen_fd;
    int wake_fd; /* eventfd: a job ended, or stop */
    dev_t dev;   /* of the socket file this server created */
    ino_t ino;
    char *path; /* DATA_DIR/trail.sock, for messages */
    wk_worker **workers;
    int nworkers;
    unsigned next;
    uint64_t deadline_ms;
    job_cluster *jobs_cluster; /* cluster mode: where runs are recorded; else NULL */
    pthread_t thread;
    bool started, stopped;
    _Atomic bool stopping;
    client clients[CONTROL_MAX_CLIENTS];
};

/* The address of DIR/trail.sock: the path itself when it fits, else through dirfd. */
static void socket_addr(const char *data_dir, int dirfd, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n =
        snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", data_dir, SERVER_CONTROL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path)
        snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dirfd,
                 SERVER_CONTROL_SOCKET_NAME);
}

static void req_unref(job_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1) return;
    tr_buf_free(&r->answer);
    tr_free(r);
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* the asker went away: nothing to tell */
        p += n;
        len -= (size_t)n;
    }
}

/* ---- on the worker ---- */

/* Thread: the worker. Hands the result to the control thread and drops the worker's ref. */
static void req_finish(job_req *r, bool ok)
{
    r->ok = ok;
    server_control *c = r->ctl;
    atomic_store_explicit(&r->done, true, memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(c->wake_fd, &one, sizeof one);
    (void)n; /* an eventfd only fails to count past 2^64 - 2 */
    req_unref(r);
}

static void on_job_done(void *ud, int rc, const tr_error *err)
{
    job_req *r = ud;
    unsigned long long ms = (unsigned long long)((tr_now_ns() - r->started_ns) / 1000000u);
    if (rc == 0)
        tr_buf_printf(&r->answer, "%s: ok (ran in the server, pid %d, in %llu ms)", r->label,
                      (int)getpid(), ms);
    else
        tr_buf_printf(&r->answer, "%s failed after %llu ms in the server: %s", r->label, ms,
                      err && err->msg[0] ? err->msg : tr_strerror(rc));
    req_finish(r, rc == 0);
}

/* A wk_post() message: finds the job in the set this worker serves now and runs it. */
static void run_on_worker(loop *l, void *arg)
{
    (void)l;
    job_req *r = arg;
    comp_worker *w = comp_worker_current();
    if (w == NULL) {
        tr_buf_printf(&r->answer, "no job named '%s': the server has no components", r->name);
        req_finish(r, false);
        return;
    }
    comp_module *m;
    size_t job;
    tr_error err = {0};
    if (job_find(comp_worker_set(w), r->name, &m, &job, &err) < 0) {
        tr_buf_printf(&r->answer, "%s", err.msg);
        req_finish(r, false);
        return;
    }
    snprintf(r->label, sizeof r->label, "job '%s' of %s", comp_module_job(m, job)->name,
             comp_module_name(m));
    tr_log_info("%s: run requested through %s", r->label, r->ctl->path);
    r->started_ns = tr_now_ns();
    job_run_opts o = {"manual", r->deadline_ms, r->ctl->jobs_cluster, 0};
    job_run_here(m, job, &o, on_job_done, r);
}

/* ---- on the control thread ---- */

static void client_close(client *cl)
{
    if (cl->fd < 0) return;
    close(cl->fd);
    cl->fd = -1;
    cl->len = 0;
    if (cl->req) req_unref(cl->req);
    cl->req = NULL;
}

static void answer_error(client *cl, const char *msg)
{
    char line[CONTROL_MAX_LINE + 200];
    int n = snprintf(line, sizeof line, "error\n%s\n", msg);
    send_all(cl->fd, line, TR_MIN((size_t)n, sizeof line - 1));
    client_close(cl);
}

static void handle_line(server_control *c, client *cl, char *line)
{
    static const char verb[] = "run-job ";
    if (strncmp(line, verb, sizeof verb - 1) != 0 || line[sizeof verb - 1] == '\0') {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown request '%.80s' (this server knows: run-job NAME)",
                 line);
        answer_error(cl, msg);
        return;
    }
    job_req *r = tr_calloc(1, sizeof *r);
    atomic_init(&r->refs, 2); /* this connection's and the worker's */
    atomic_init(&r->done, false);
    r->ctl = c;
    r->deadline_ms = c->deadline_ms;
    snprintf(r->name, sizeof r->name, "%s", line + sizeof verb - 1);
    snprintf(r->label, sizeof r->label, "job '%s'", r->name);
    cl->req = r;
    wk_post(c->workers[c->next++ % (unsigned)c->nworkers], run_on_worker, r);
}

static void client_read(server_control *c, client *cl)
{
    ssize_t n = recv(cl->fd, cl->in + cl->len, sizeof cl->in - 1 - cl->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        client_close(cl);
        return;
    }
    cl->len += (size_t)n;
    cl->in[cl->len] = '\0';
    char *nl = memchr(cl->in, '\n', cl->len);
    if (nl == NULL) {
        if (cl->len == sizeof cl->in - 1)
            answer_error(cl, "request too long (at most 1023 bytes, ending in a newline)");
        return;
    }
    *nl = '\0';
    if (strlen(cl->in) != (size_t)(nl - cl->in)) {
        answer_error(cl, "a request is text without NUL bytes");
        return;
    }
    handle_line(c, cl, cl->in);
}

static void accept_clients(server_control *c)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            /* Out of descriptors: the listener stays readable, so wait instead of spinning. */
            if (errno == EMFILE || errno == ENFILE) usleep(100 * 1000);
            return;
        }
        client tmp = {.fd = fd};
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != geteuid()) {
            answer_error(&tmp, "only the user that runs the server may use its control socket");
            continue;
        }
        client *slot = NULL;
        for (size_t i = 0; i < CONTROL_MAX_CLIENTS && slot == NULL; i++)
            if (c->clients[i].fd < 0) slot = &c->clients[i];
        if (slot == NULL) {
            answer_error(&tmp, "busy: too many control connections at once; try again");
            continue;
        }
        *slot = tmp;
        slot->read_deadline_ns = tr_now_ns() + (uint64_t)CONTROL_READ_TIMEOUT_MS * 1000000u;
    }
}

static void *control_main(void *arg)
{
    server_control *c = arg;
    while (!atomic_load(&c->stopping)) {
        struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
        client *of[2 + CONTROL_MAX_CLIENTS];
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = c->wake_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
        uint64_t now = tr_now_ns(), next = UINT64_MAX;
        for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
            client *cl = &c->clients[i];
            if (cl->fd < 0 || cl->req) continue;
            if (cl->read_deadline_ns <= now) {
                answer_error(cl, "no request within 10 s");
                continue;
            }
            next = TR_MIN(next, cl->read_deadline_ns);
            of[n] = cl;
            pfd[n++] = (struct pollfd){.fd = cl->fd, .events = POLLIN};
        }
        int timeout = next == UINT64_MAX ? -1 : (int)((next - now) / 1000000u + 1);
        if (poll(pfd, n, timeout) < 0) continue;
        if (pfd[0].revents) {
            uint64_t v;
            ssize_t r = read(c->wake_fd, &v, sizeof v);
            (void)r;
            for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
                client *cl = &c->clients[i];
                if (cl->fd < 0 || cl->req == NULL ||
                    !atomic_load_explicit(&cl->req->done, memory_order_acquire))
                    continue;
                const char *status = cl->req->ok ? "ok\n" : "failed\n";
                send_all(cl->fd, status, strlen(status));
                send_all(cl->fd, cl->req->answer.data ? cl->req->answer.data : "",
                         TR_MIN(cl->req->answer.len, CONTROL_MAX_ANSWER));
                send_all(cl->fd, "\n", 1);
                client_close(cl);
            }
        }
        for (nfds_t i = 2; i < n; i++)
            if (pfd[i].revents && of[i]->fd >= 0) client_read(c, of[i]);
        if (pfd[1].revents) accept_clients(c);
    }
    return NULL;
}

/* ---- lifetime ---- */

/* Who answers at sa: 1 a server, 0 nobody (stale), -errno when it cannot be told. */
static int probe(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 ? 1
             : errno == ECONNREFUSED                                   ? 0
                                                                       : -errno;
    close(fd);
    return rc;
}

int server__control_open(const char *data_dir, server_control **out, tr_error *err)
{
    server_control *c = tr_calloc(1, sizeof *c);
    c->listen_fd = c->wake_fd = -1;
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->clients[i].fd = -1;
    c->path = tr_asprintf("%s/%s", data_dir, SERVER_CONTROL_SOCKET_NAME);
    int rc;
    c->dirfd = open(data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0) {
        rc = tr_error_set(err, -errno, "cannot open %s: %s", data_dir, strerror(errno));
        goto fail;
    }
    struct sockaddr_un sa;
    socket_addr(data_dir, c->dirfd, &sa);
    struct stat st;
    if (fstatat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            rc = tr_error_set(err, TR_ECONFLICT, "%s exists and is not a socket", c->path);
            goto fail;
        }
        rc = probe(&sa);
        if (rc == 1) {
            rc = tr_error_set(err, TR_ECONFLICT, "another trail serves %s (it answers on %s)",
                              data_dir, c->path);
            goto fail;
        }
        /* Left behind by a server that did not stop cleanly. */
        if (rc == 0) unlinkat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, 0);
    }
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0) {
        rc = tr_error_set(err, -errno, "socket: %s", strerror(errno));
        goto fail;
    }
    mode_t old = umask(0177); /* the file is created srw------- */
    rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -errno;
    umask(old);
    if (rc < 0) {
        tr_error_set(err, rc, "cannot create %s: %s", c->path, strerror(-rc));
        goto fail;
    }
    if (fchmodat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, 0600, 0) != 0 ||
        fstatat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        listen(c->listen_fd, 16) != 0) {
        rc = tr_error_set(err, -errno, "cannot set up %s: %s", c->path, strerror(errno));
        unlinkat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, 0);
        goto fail;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->wake_fd < 0) {
        rc = tr_error_set(err, -errno, "eventfd: %s", strerror(errno));
        unlinkat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, 0);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (c->listen_fd >= 0) close(c->listen_fd);
    if (c->dirfd >= 0) close(c->dirfd);
    tr_free(c->path);
    tr_free(c);
    return rc;
}

int server__control_start(server_control *c, wk_worker **workers, int nworkers,
                          uint64_t job_deadline_ms, job_cluster *jobs_cluster, tr_error *err)
{
    assert(nworkers > 0);
    c->jobs_cluster = jobs_cluster;
    c->workers = workers;
    c->nworkers = nworkers;
    c->deadline_ms = job_deadline_ms;
    int rc = pthread_create(&c->thread, NULL, control_main, c);
    if (rc != 0) return tr_error_set(err, -rc, "cannot start a thread: %s", strerror(rc));
    c->started = true;
    return 0;
}

void server__control_stop(server_control *c)
{
    if (c == NULL || c->stopped) return;
    c->stopped = true;
    if (c->started) {
        atomic_store(&c->stopping, true);
        uint64_t one = 1;
        ssize_t n = write(c->wake_fd, &one, sizeof one);
        (void)n;
        pthread_join(c->thread, NULL);
    }
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        client *cl = &c->clients[i];
        if (cl->fd >= 0 && cl->req) {
            static const char msg[] = "failed\nthe server is stopping: its workers end the job "
                                      "(see the server's log and _job_runs)\n";
            send_all(cl->fd, msg, sizeof msg - 1);
        }
        client_close(cl);
    }
    close(c->listen_fd);
    c->listen_fd = -1;
    /* Only the file this server made: another server may have replaced a socket we lost. */
    struct stat st;
    if (fstatat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_dev == c->dev && st.st_ino == c->ino)
        unlinkat(c->dirfd, SERVER_CONTROL_SOCKET_NAME, 0);
}

void server__control_free(server_control *c)
{
    if (c == NULL) return;
    server__control_stop(c);
    close(c->wake_fd);
    close(c->dirfd);
    tr_free(c->path);
    tr_free(c);
}

/* ---- the client ---- */

int server_control_call(const char *data_dir, const char *request, bool *ok, tr_buf *text,
                        tr_error *err)
{
    *ok = false;
    int dirfd = open(data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return tr_error_set(err, TR_ENOTFOUND, "no server runs on %s (%s)", data_dir,
                            strerror(errno));
    struct sockaddr_un sa;
    socket_addr(data_dir, dirfd, &sa);
    int rc = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = tr_error_set(err, -errno, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            rc = tr_error_set(err, TR_ENOTFOUND, "no server runs on %s", data_dir);
        else
            rc = tr_error_set(err, -errno, "cannot reach the server on %s through %s/%s: %s",
                              data_dir, data_dir, SERVER_CONTROL_SOCKET_NAME, strerror(errno));
        goto out;
    }
    tr_buf req = TR_BUF_INIT;
    tr_buf_printf(&req, "%s\n", request);
    send_all(fd, req.data, req.len);
    tr_buf_free(&req);
    tr_buf in = TR_BUF_INIT;
    char chunk[4096];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (in.len + (size_t)n > CONTROL_MAX_ANSWER + 64) break;
        tr_buf_append(&in, chunk, (size_t)n);
    }
    const char *nl = in.len ? memchr(in.data, '\n', in.len) : NULL;
    if (nl == NULL) {
        rc = tr_error_set(err, TR_EIO, "the server on %s closed the connection without an answer",
                          data_dir);
    } else {
        size_t head = (size_t)(nl - in.data);
        *ok = head == 2 && memcmp(in.data, "ok", 2) == 0;
        size_t len = in.len - head - 1;
        while (len > 0 && nl[len] == '\n')
            len--; /* nl[len] is the last byte */
        tr_buf_append(text, nl + 1, len);
    }
    tr_buf_free(&in);
out:
    if (fd >= 0) close(fd);
    close(dirfd);
    return rc;
}
