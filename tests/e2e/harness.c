/* tests/e2e/harness.c: runs the real trail binary and talks raw HTTP to it (see harness.h).
 *
 * DESIGN: the child writes stdout/stderr straight into files under the test's temporary directory,
 * so the test can read the access log and error messages at any time without pipes filling up.
 * The listening line is found by polling the stdout file. */
#include "e2e/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define TH_MAX_ARGS 60

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *trail_bin(void)
{
    const char *b = getenv("TRAIL_BIN");
    return b && *b ? b : "build/asan/trail";
}

char *th_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, len = 0;
    char *d = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            d = realloc(d, cap + 1);
        }
        size_t n = fread(d + len, 1, cap - len, f);
        if (n == 0) break;
        len += n;
    }
    fclose(f);
    d[len] = '\0';
    if (len_out) *len_out = len;
    return d;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return -1;
    size_t n = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return n == len && rc == 0 ? 0 : -1;
}

static char *read_or_empty(const char *path)
{
    char *d = th_read_file(path, NULL);
    return d ? d : strdup("");
}

char *th_server_stdout(const th_server *s)
{
    return read_or_empty(s->out_path);
}

char *th_server_stderr(const th_server *s)
{
    return read_or_empty(s->err_path);
}

/* Forks and execs trail with argv, stdout/stderr into the given files. */
static pid_t spawn(char *const *argv, const char *out_path, const char *err_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) _exit(127);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    /* The test process blocks nothing, but reset anyway: the server relies on default masks. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    _exit(127);
}

static int decode_status(int status)
{
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

static int wait_pid(pid_t pid, int timeout_ms, int *status_out)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            *status_out = decode_status(status);
            return 0;
        }
        if (r < 0 && errno != EINTR) return -1;
        if (now_ms() >= end) return -1;
        usleep(5000);
    }
}

int th_server_start(th_server *s, const char *data_dir, const char *const *extra)
{
    return th_server_start_within(s, data_dir, extra, 20000);
}

int th_server_start_within(th_server *s, const char *data_dir, const char *const *extra,
                           int timeout_ms)
{
    static int seq;
    memset(s, 0, sizeof *s);
    const char *tmp = test_tmpdir();
    if (data_dir == NULL)
        snprintf(s->data_dir, sizeof s->data_dir, "%s/depot", tmp);
    else
        snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    seq++;
    snprintf(s->out_path, sizeof s->out_path, "%s/server%d.out", tmp, seq);
    snprintf(s->err_path, sizeof s->err_path, "%s/server%d.err", tmp, seq);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = trail_bin();
    argv[n++] = "run";
    argv[n++] = "--address";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data-dir";
    argv[n++] = s->data_dir;
    for (size_t i = 0; extra && extra[i] && n < TH_MAX_ARGS; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    s->pid = spawn((char *const *)argv, s->out_path, s->err_path);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }

    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        char *out = th_server_stdout(s);
        const char *p = strstr(out, "listening on http://");
        const char *nl = p ? strchr(p, '\n') : NULL;
        if (p && nl) {
            /* http://HOST:PORT, HOST possibly [v6]; the port follows the last ':' before ','. */
            const char *host = p + strlen("listening on http://");
            const char *end_addr = host;
            while (end_addr < nl && *end_addr != ',' && *end_addr != ' ')
                end_addr++;
            const char *colon = end_addr;
            while (colon > host && colon[-1] != ':')
                colon--;
            s->port = atoi(colon);
            free(out);
            if (s->port > 0) return 0;
            fprintf(stderr, "     harness: cannot parse the port from the listening line\n");
            return -1;
        }
        free(out);
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            char *err = th_server_stderr(s);
            fprintf(stderr, "     harness: trail exited (%d) before listening; stderr:\n%s\n",
                    decode_status(status), err);
            free(err);
            s->pid = 0;
            return -1;
        }
        usleep(5000);
    }
    fprintf(stderr, "     harness: no listening line within %d s\n", timeout_ms / 1000);
    kill(s->pid, SIGKILL);
    int st;
    wait_pid(s->pid, 5000, &st);
    s->pid = 0;
    return -1;
}

void th_server_signal(th_server *s, int sig)
{
    if (s->pid > 0) kill(s->pid, sig);
}

int th_server_wait(th_server *s, int timeout_ms)
{
    if (s->pid <= 0) return -1;
    int status;
    if (wait_pid(s->pid, timeout_ms, &status) < 0) return -1;
    s->pid = 0;
    return status;
}

int th_server_stop(th_server *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = th_server_wait(s, 20000);
    if (st < 0) {
        kill(s->pid, SIGKILL);
        st = th_server_wait(s, 5000);
        return st < 0 ? -1 : st;
    }
    return st;
}

int th_run(const char *const *args, int timeout_ms, char **out, char **err)
{
    static int seq;
    const char *tmp = test_tmpdir();
    char out_path[600], err_path[600];
    seq++;
    snprintf(out_path, sizeof out_path, "%s/run%d.out", tmp, seq);
    snprintf(err_path, sizeof err_path, "%s/run%d.err", tmp, seq);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = trail_bin();
    for (size_t i = 0; args && args[i] && n < TH_MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = spawn((char *const *)argv, out_path, err_path);
    if (pid < 0) return -1;
    int status;
    if (wait_pid(pid, timeout_ms, &status) < 0) {
        kill(pid, SIGKILL);
        wait_pid(pid, 5000, &status);
        status = -1;
    }
    if (out) *out = read_or_empty(out_path);
    if (err) *err = read_or_empty(err_path);
    return status;
}

/* ---- raw HTTP client ---- */

int th_conn_open(th_conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void th_conn_close(th_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

int th_conn_send(th_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int th_conn_send_str(th_conn *c, const char *s)
{
    return th_conn_send(c, s, strlen(s));
}

/* Reads more bytes into c->buf; 1 on data, 0 on EOF/reset, -2 on timeout. */
static int fill(th_conn *c, long long deadline)
{
    if (c->cap - c->len < 4096) {
        c->cap = c->cap ? c->cap * 2 : 16384;
        c->buf = realloc(c->buf, c->cap + 1);
    }
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return -2;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) return -2;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        c->len += (size_t)n;
        return 1;
    }
}

static const char *find_crlfcrlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return p + i;
    return NULL;
}

const char *th_resp_header(const th_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line) {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

void th_resp_free(th_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void consume(th_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

int th_conn_read(th_conn *c, th_resp *r, bool head_only, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    long long deadline = now_ms() + timeout_ms;
    const char *e;
    for (;;) {
        e = c->buf ? find_crlfcrlf(c->buf, c->len) : NULL;
        if (e) break;
        int f = fill(c, deadline);
        if (f <= 0) return f == 0 ? -1 : -2;
    }
    size_t head_len = (size_t)(e - c->buf) + 4;
    r->head = malloc(head_len + 1);
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    consume(c, head_len);
    if (strncmp(r->head, "HTTP/1.", 7) != 0 || strlen(r->head) < 12) return -3;
    r->status = atoi(r->head + 9);

    char v[64];
    bool chunked =
        th_resp_header(r, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0;
    const char *cl = th_resp_header(r, "Content-Length", v, sizeof v);
    bool no_body = head_only || r->status == 204 || r->status == 304 || r->status / 100 == 1;
    size_t cap = 64, len = 0;
    r->body = malloc(cap + 1);
    if (no_body) {
    } else if (chunked) {
        for (;;) {
            const char *crlf;
            while ((crlf = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL) == NULL) {
                int f = fill(c, deadline);
                if (f <= 0) return f == 0 ? -1 : -2;
            }
            size_t size = strtoul(c->buf, NULL, 16);
            size_t line = (size_t)(crlf - c->buf) + 2;
            while (c->len < line + size + 2) {
                int f = fill(c, deadline);
                if (f <= 0) return f == 0 ? -1 : -2;
            }
            if (len + size > cap) {
                cap = (len + size) * 2;
                r->body = realloc(r->body, cap + 1);
            }
            memcpy(r->body + len, c->buf + line, size);
            len += size;
            consume(c, line + size + 2);
            if (size == 0) break;
        }
    } else if (cl) {
        size_t want = strtoul(cl, NULL, 10);
        while (c->len < want) {
            int f = fill(c, deadline);
            if (f <= 0) return f == 0 ? -1 : -2;
        }
        if (want > cap) {
            cap = want;
            r->body = realloc(r->body, cap + 1);
        }
        memcpy(r->body, c->buf, want);
        len = want;
        consume(c, want);
    } else {
        for (;;) {
            int f = fill(c, deadline);
            if (f == -2) return -2;
            if (f == 0) break;
        }
        if (c->len > cap) {
            cap = c->len;
            r->body = realloc(r->body, cap + 1);
        }
        memcpy(r->body, c->buf, c->len);
        len = c->len;
        consume(c, c->len);
    }
    r->body[len] = '\0';
    r->body_len = len;
    return 0;
}

int th_conn_wait_closed(th_conn *c, int timeout_ms, size_t *extra)
{
    long long deadline = now_ms() + timeout_ms;
    size_t got = c->len;
    c->len = 0;
    for (;;) {
        int f = fill(c, deadline);
        if (f == -2) {
            if (extra) *extra = got;
            return 0;
        }
        if (f == 0) {
            if (extra) *extra = got;
            return 1;
        }
        got += c->len;
        c->len = 0;
    }
}

int th_request(int port, const char *raw, th_resp *r)
{
    th_conn c;
    memset(r, 0, sizeof *r);
    if (th_conn_open(&c, port) != 0) return -1;
    int rc = th_conn_send_str(&c, raw);
    if (rc == 0) rc = th_conn_read(&c, r, strncmp(raw, "HEAD ", 5) == 0, 10000);
    th_conn_close(&c);
    return rc;
}
