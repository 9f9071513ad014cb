/* cluster/client.c: a blocking client of one dqlite node over TCP.
 *
 * DESIGN: one request at a time: the request is written whole, then its answer read whole, each
 * under the call's deadline (a non-blocking socket and poll()), so a node that stops answering
 * costs a caller at most timeout_ms, never a hung thread. A query's answer may come in several
 * ROWS messages that the node sends one after another without being asked. Anything that leaves
 * the conversation out of step (a timeout, a short read, an answer that does not decode, a result
 * over the client's bounds while the node still sends) marks the client broken: every later call
 * fails at once and the caller opens a new one. A failure answer (an SQL error, "not leader") does
 * not: the node is ready for the next request. */
#include "cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct dq_client {
    int fd;
    dq_client_opts opts;
    bool broken;
    uint64_t failure_code; /* of the last failure answer, 0 after a success */
    char *address;         /* as given to dq_client_open() */
    tr_buf req;            /* the request being built, reused */
};

/* ---- deadlines and whole reads and writes ---- */

static uint64_t deadline_after(uint32_t ms)
{
    return tr_now_ns() + (uint64_t)ms * 1000000u;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = tr_now_ns();
        if (now >= deadline) return TR_ETIMEDOUT;
        uint64_t left_ms = (deadline - now + 999999) / 1000000;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left_ms > 60000 ? 60000 : (int)left_ms);
        if (n < 0 && errno != EINTR) return -errno;
        if (n > 0) return 0;
    }
}

static int write_all(int fd, const void *data, size_t len, uint64_t deadline)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0) return rc;
    }
    return 0;
}

static int read_all(int fd, void *data, size_t len, uint64_t deadline)
{
    char *p = data;
    while (len > 0) {
        ssize_t r = recv(fd, p, len, 0);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r == 0) return -ECONNRESET;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- connecting ---- */

/* Splits "HOST:PORT" ("[v6]:PORT" too) into host[0..hcap) and port[0..pcap). */
static bool split_address(const char *address, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0') return false;
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']') return false;
        h++;
        hlen -= 2;
    }
    size_t plen = strlen(colon + 1);
    if (hlen >= hcap || plen >= pcap || strspn(colon + 1, "0123456789") != plen) return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return true;
}

static int connect_to(const char *address, uint64_t deadline, int *out, tr_error *err)
{
    char host[256], port[16];
    if (!split_address(address, host, sizeof host, port, sizeof port))
        return tr_error_set(err, TR_EINVAL, "dqlite address \"%s\" is not HOST:PORT", address);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return tr_error_set(err, TR_EINVAL, "dqlite address %s: %s", address, gai_strerror(g));
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            continue;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = -soerr;
        }
        if (rc == 0) {
            *out = fd;
            freeaddrinfo(res);
            return 0;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return tr_error_set(err, rc, "dqlite node %s: %s", address, tr_strerror(rc));
}

int dq_client_open(const char *address, const dq_client_opts *opts, dq_client **out, tr_error *err)
{
    static const dq_client_opts defaults = DQ_CLIENT_OPTS_DEFAULT;
    if (opts == NULL) opts = &defaults;
    uint64_t deadline = deadline_after(opts->timeout_ms);
    int fd;
    int rc = connect_to(address, deadline, &fd, err);
    if (rc < 0) return rc;
    uint8_t hs[8] = {DQ_PROTOCOL_VERSION, 0, 0, 0, 0, 0, 0, 0};
    rc = write_all(fd, hs, sizeof hs, deadline);
    if (rc < 0) {
        close(fd);
        return tr_error_set(err, rc, "dqlite node %s: handshake: %s", address, tr_strerror(rc));
    }
    dq_client *c = tr_calloc(1, sizeof *c);
    c->fd = fd;
    c->opts = *opts;
    c->address = tr_strdup(address);
    *out = c;
    return 0;
}

void dq_client_close(dq_client *c)
{
    if (c == NULL) return;
    close(c->fd);
    tr_free(c->address);
    tr_buf_free(&c->req);
    tr_free(c);
}

void dq_client_abort(dq_client *c)
{
    /* shutdown(), not close(): the descriptor stays the caller's until dq_client_close(), so no
     * other file can take its number while a call still polls it */
    shutdown(c->fd, SHUT_RDWR);
}

void dq_client_set_timeout(dq_client *c, uint32_t timeout_ms)
{
    c->opts.timeout_ms = timeout_ms;
}

bool dq_client_idle_ok(const dq_client *c)
{
    if (c->broken) return false;
    /* between requests a node sends nothing: anything readable is its end of the connection */
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) == 0;
}

uint64_t dq_client_failure_code(const dq_client *c)
{
    return c->failure_code;
}

bool dq_client_busy(const dq_client *c)
{
    return c->failure_code != 0 && (c->failure_code & 0xff) == DQ_CODE_BUSY;
}

/* ---- one request, one answer ---- */

static int broken(dq_client *c, int rc, tr_error *err, const char *what)
{
    c->broken = true;
    if (err && err->code == rc) return rc; /* err says more already */
    return tr_error_set(err, rc, "dqlite node %s: %s: %s", c->address, what, tr_strerror(rc));
}

/* Reads one message: its type, and its body in *body (tr_malloc'd, *len bytes, plus a NUL after
 * them so that an empty body is still a valid block). */
static int read_message(dq_client *c, uint64_t deadline, int *type, char **body, size_t *len,
                        tr_error *err)
{
    uint8_t hdr[8];
    int rc = read_all(c->fd, hdr, sizeof hdr, deadline);
    if (rc < 0) return broken(c, rc, err, "reading an answer");
    rc = dq_header_parse(hdr, c->opts.max_body_bytes, len, type, err);
    if (rc < 0) return broken(c, rc, err, "reading an answer");
    *body = tr_malloc(*len + 1);
    (*body)[*len] = '\0';
    rc = read_all(c->fd, *body, *len, deadline);
    if (rc < 0) {
        tr_free(*body);
        *body = NULL;
        return broken(c, rc, err, "reading an answer");
    }
    return 0;
}

/* Turns a FAILURE body into TR_ESQL with the node's message; frees body. */
static int failure_answer(dq_client *c, char *body, size_t len, tr_error *err)
{
    uint64_t code;
    const char *msg;
    if (dq_parse_failure((const uint8_t *)body, len, &code, &msg) < 0) {
        tr_free(body);
        return broken(c, TR_EPARSE, err, "a failure answer without a code");
    }
    c->failure_code = code ? code : 1;
    int rc = tr_error_set(err, TR_ESQL, "%s", *msg ? msg : "dqlite failure without a message");
    tr_free(body);
    return rc;
}

/* Sends c->req and reads an answer of type expect into *body (owned by the caller). */
static int call(dq_client *c, int expect, char **body, size_t *len, tr_error *err)
{
    if (c->broken)
        return tr_error_set(err, TR_EIO,
                            "dqlite node %s: the connection is unusable after an "
                            "earlier failure",
                            c->address);
    c->failure_code = 0;
    uint64_t deadline = deadline_after(c->opts.timeout_ms);
    int rc = write_all(c->fd, c->req.data, c->req.len, deadline);
    if (rc < 0) return broken(c, rc, err, "sending a request");
    int type;
    rc = read_message(c, deadline, &type, body, len, err);
    if (rc < 0) return rc;
    if (type == DQ_RESP_FAILURE) return failure_answer(c, *body, *len, err);
    if (type != expect) {
        tr_free(*body);
        *body = NULL;
        c->broken = true;
        return tr_error_set(err, TR_EPARSE, "dqlite node %s: answer of type %d, expected %d",
                            c->address, type, expect);
    }
    return 0;
}

static size_t begin(dq_client *c, int type)
{
    size_t start;
    tr_buf_reset(&c->req);
    dq_msg_begin(&c->req, type, &start);
    return start;
}

/* Sends c->req expecting an answer with fixed words only, decoded into words[0..n). */
static int call_words(dq_client *c, int expect, uint64_t *words, size_t n, tr_error *err)
{
    char *body;
    size_t len;
    int rc = call(c, expect, &body, &len, err);
    if (rc < 0) return rc;
    dq_cursor cur = {(const uint8_t *)body, len};
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = dq_get_u64(&cur, &words[i]);
    tr_free(body);
    if (rc < 0) return broken(c, TR_EPARSE, err, "an answer cut short");
    return 0;
}

int dq_leader(dq_client *c, uint64_t *id, char **address, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_LEADER);
    dq_put_u64(&c->req, 0);
    dq_msg_end(&c->req, start);
    char *body;
    size_t len;
    int rc = call(c, DQ_RESP_SERVER, &body, &len, err);
    if (rc < 0) return rc;
    dq_cursor cur = {(const uint8_t *)body, len};
    const char *addr;
    size_t alen;
    if (dq_get_u64(&cur, id) < 0 || dq_get_text(&cur, &addr, &alen) < 0) {
        tr_free(body);
        return broken(c, TR_EPARSE, err, "a leader answer cut short");
    }
    *address = tr_strndup(addr, alen);
    tr_free(body);
    return 0;
}

int dq_register(dq_client *c, uint64_t client_id, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_CLIENT);
    dq_put_u64(&c->req, client_id);
    dq_msg_end(&c->req, start);
    uint64_t heartbeat;
    return call_words(c, DQ_RESP_WELCOME, &heartbeat, 1, err);
}

int dq_cluster(dq_client *c, dq_node_info **nodes, size_t *n, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_CLUSTER);
    dq_put_u64(&c->req, 1); /* format 1: with roles */
    dq_msg_end(&c->req, start);
    char *body;
    size_t len;
    int rc = call(c, DQ_RESP_SERVERS, &body, &len, err);
    if (rc < 0) return rc;
    rc = dq_parse_servers((const uint8_t *)body, len, nodes, n, err);
    tr_free(body);
    if (rc < 0) c->broken = true;
    return rc;
}

int dq_add(dq_client *c, uint64_t id, const char *address, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_ADD);
    dq_put_u64(&c->req, id);
    dq_put_text(&c->req, address);
    dq_msg_end(&c->req, start);
    uint64_t unused;
    return call_words(c, DQ_RESP_EMPTY, &unused, 1, err);
}

int dq_assign(dq_client *c, uint64_t id, uint64_t role, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_ASSIGN);
    dq_put_u64(&c->req, id);
    dq_put_u64(&c->req, role);
    dq_msg_end(&c->req, start);
    uint64_t unused;
    return call_words(c, DQ_RESP_EMPTY, &unused, 1, err);
}

/* A request whose body is one node id and whose answer is empty (REMOVE, TRANSFER). */
static int call_on_node(dq_client *c, int type, uint64_t id, tr_error *err)
{
    size_t start = begin(c, type);
    dq_put_u64(&c->req, id);
    dq_msg_end(&c->req, start);
    uint64_t unused;
    return call_words(c, DQ_RESP_EMPTY, &unused, 1, err);
}

int dq_remove(dq_client *c, uint64_t id, tr_error *err)
{
    return call_on_node(c, DQ_REQ_REMOVE, id, err);
}

int dq_transfer(dq_client *c, uint64_t id, tr_error *err)
{
    return call_on_node(c, DQ_REQ_TRANSFER, id, err);
}

int dq_open(dq_client *c, const char *name, uint32_t *db, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_OPEN);
    dq_put_text(&c->req, name);
    dq_put_u64(&c->req, 0);   /* flags: unused */
    dq_put_text(&c->req, ""); /* vfs: unused */
    dq_msg_end(&c->req, start);
    uint64_t w;
    int rc = call_words(c, DQ_RESP_DB, &w, 1, err);
    if (rc == 0) *db = (uint32_t)w;
    return rc;
}

int dq_prepare(dq_client *c, uint32_t db, const char *sql, uint32_t *stmt, uint64_t *nparams,
               tr_error *err)
{
    size_t start = begin(c, DQ_REQ_PREPARE);
    dq_put_u64(&c->req, db);
    dq_put_text(&c->req, sql);
    dq_msg_end(&c->req, start);
    uint64_t w[2];
    int rc = call_words(c, DQ_RESP_STMT, w, 2, err);
    if (rc < 0) return rc;
    *stmt = (uint32_t)(w[0] >> 32);
    if (nparams) *nparams = w[1];
    return 0;
}

static int call_result(dq_client *c, dq_result *res, tr_error *err)
{
    uint64_t w[2];
    int rc = call_words(c, DQ_RESP_RESULT, w, 2, err);
    if (rc == 0 && res) {
        res->last_insert_id = w[0];
        res->rows_affected = w[1];
    }
    return rc;
}

/* Sends c->req and gathers the ROWS answers into rows. */
static int call_rows(dq_client *c, dq_rows *rows, tr_error *err)
{
    *rows = (dq_rows)DQ_ROWS_INIT;
    char *body;
    size_t len;
    int rc = call(c, DQ_RESP_ROWS, &body, &len, err);
    if (rc < 0) return rc;
    uint64_t deadline = deadline_after(c->opts.timeout_ms);
    for (;;) {
        bool more;
        rc = dq_rows_add_body(rows, body, len, c->opts.max_result_values, &more, err);
        /* The node may still be sending batches: the conversation is out of step. */
        if (rc < 0) {
            c->broken = true;
            break;
        }
        if (!more) return 0;
        int type;
        rc = read_message(c, deadline, &type, &body, &len, err);
        if (rc < 0) break;
        /* Batches without rows would not count against max_result_values. */
        if (rows->bytes + len > c->opts.max_body_bytes) {
            tr_free(body);
            rc = broken(c, TR_ELIMIT, err, "a query's answer over the size limit");
            break;
        }
        if (type == DQ_RESP_FAILURE) {
            rc = failure_answer(c, body, len, err);
            break;
        }
        if (type != DQ_RESP_ROWS) {
            tr_free(body);
            rc = broken(c, TR_EPARSE, err, "a query's answer interrupted by another");
            break;
        }
    }
    dq_rows_free(rows);
    return rc;
}

static int put_stmt_request(dq_client *c, int type, uint32_t db, uint32_t stmt,
                            const dq_value *params, size_t n, tr_error *err)
{
    size_t start = begin(c, type);
    dq_put_u32_pair(&c->req, db, stmt);
    int rc = dq_put_params(&c->req, params, n, err);
    if (rc < 0) return rc;
    dq_msg_end(&c->req, start);
    return 0;
}

int dq_exec(dq_client *c, uint32_t db, uint32_t stmt, const dq_value *params, size_t n,
            dq_result *res, tr_error *err)
{
    int rc = put_stmt_request(c, DQ_REQ_EXEC, db, stmt, params, n, err);
    return rc < 0 ? rc : call_result(c, res, err);
}

int dq_query(dq_client *c, uint32_t db, uint32_t stmt, const dq_value *params, size_t n,
             dq_rows *rows, tr_error *err)
{
    *rows = (dq_rows)DQ_ROWS_INIT;
    int rc = put_stmt_request(c, DQ_REQ_QUERY, db, stmt, params, n, err);
    return rc < 0 ? rc : call_rows(c, rows, err);
}

int dq_finalize(dq_client *c, uint32_t db, uint32_t stmt, tr_error *err)
{
    size_t start = begin(c, DQ_REQ_FINALIZE);
    dq_put_u32_pair(&c->req, db, stmt);
    dq_msg_end(&c->req, start);
    uint64_t unused;
    return call_words(c, DQ_RESP_EMPTY, &unused, 1, err);
}

static int put_sql_request(dq_client *c, int type, uint32_t db, const char *sql,
                           const dq_value *params, size_t n, tr_error *err)
{
    size_t start = begin(c, type);
    dq_put_u64(&c->req, db);
    dq_put_text(&c->req, sql);
    int rc = dq_put_params(&c->req, params, n, err);
    if (rc < 0) return rc;
    dq_msg_end(&c->req, start);
    return 0;
}

int dq_exec_sql(dq_client *c, uint32_t db, const char *sql, const dq_value *params, size_t n,
                dq_result *res, tr_error *err)
{
    int rc = put_sql_request(c, DQ_REQ_EXEC_SQL, db, sql, params, n, err);
    return rc < 0 ? rc : call_result(c, res, err);
}

int dq_query_sql(dq_client *c, uint32_t db, const char *sql, const dq_value *params, size_t n,
                 dq_rows *rows, tr_error *err)
{
    *rows = (dq_rows)DQ_ROWS_INIT;
    int rc = put_sql_request(c, DQ_REQ_QUERY_SQL, db, sql, params, n, err);
    return rc < 0 ? rc : call_rows(c, rows, err);
}

/* ---- finding the leader ---- */

/* Connects to address and keeps the connection when that node is the leader (*out), or names the
 * leader it knows of (*leader, owned, "" when none). */
static int try_node(const char *address, const dq_client_opts *opts, dq_client **out, char **leader,
                    tr_error *err)
{
    dq_client *c;
    int rc = dq_client_open(address, opts, &c, err);
    if (rc < 0) return rc;
    uint64_t id;
    rc = dq_leader(c, &id, leader, err);
    if (rc < 0) {
        dq_client_close(c);
        return rc;
    }
    if (**leader != '\0' && strcmp(*leader, address) == 0) {
        rc = dq_register(c, 0, err);
        if (rc < 0) {
            dq_client_close(c);
            return rc;
        }
        *out = c;
        return 0;
    }
    dq_client_close(c);
    return 0;
}

int dq_client_open_leader(const char *const *addresses, size_t n, const dq_client_opts *opts,
                          uint32_t timeout_ms, dq_client **out, tr_error *err)
{
    uint64_t deadline = deadline_after(timeout_ms);
    tr_error last = {0};
    tr_error_set(&last, TR_ETIMEDOUT, "no node given");
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            dq_client *c = NULL;
            char *leader = NULL;
            tr_error e = {0};
            int rc = try_node(addresses[i], opts, &c, &leader, &e);
            if (rc == 0 && c == NULL && leader[0] != '\0') {
                /* The node named another: ask that one, which must call itself the leader. */
                char *again = NULL;
                rc = try_node(leader, opts, &c, &again, &e);
                if (rc == 0 && c == NULL)
                    tr_error_set(&e, TR_ENOTFOUND, "%s, named leader by %s, is not the leader",
                                 leader, addresses[i]);
                tr_free(again);
            } else if (rc == 0 && c == NULL) {
                tr_error_set(&e, TR_ENOTFOUND, "%s knows no leader", addresses[i]);
            }
            tr_free(leader);
            if (c) {
                *out = c;
                return 0;
            }
            last = e;
        }
        if (tr_now_ns() >= deadline) break;
        nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
    return tr_error_set(err, TR_ETIMEDOUT, "no dqlite leader within %u ms: %s", timeout_ms,
                        last.msg);
}

int dq_client_open_leader_db(const char *const *addresses, size_t n, const dq_client_opts *opts,
                             uint32_t timeout_ms, const dq_db_opts *d, dq_client **out,
                             uint32_t *db, tr_error *err)
{
    dq_client *c = NULL;
    int rc = dq_client_open_leader(addresses, n, opts, timeout_ms, &c, err);
    if (rc < 0) return rc;
    rc = dq_open(c, d->name, db, err);
    if (rc == 0 && d->stmt_limit_ms > 0) {
        char bound[64];
        dq_rows rows = DQ_ROWS_INIT;
        snprintf(bound, sizeof bound, "SELECT _trail_statement_limit(%u)", d->stmt_limit_ms);
        rc = dq_query_sql(c, *db, bound, NULL, 0, &rows, err);
        dq_rows_free(&rows);
    }
    dq_result res;
    if (rc == 0 && d->foreign_keys)
        rc = dq_exec_sql(c, *db, "PRAGMA foreign_keys=ON", NULL, 0, &res, err);
    if (rc < 0) {
        dq_client_close(c);
        return rc;
    }
    if (d->call_ms > 0) dq_client_set_timeout(c, d->call_ms);
    *out = c;
    return 0;
}
