/* tests/e2e/records_util.c: see records_util.h. */
#include "e2e/records_util.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

void rt_depot(const char *name, const char *sql, const char *config, char *depot)
{
    snprintf(depot, 512, "%s/%s", test_tmpdir(), name);
    char path[700];
    mkdir(depot, 0700);
    snprintf(path, sizeof path, "%s/migrations", depot);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/migrations/001.sql", depot);
    CHECK_EQ(th_write_file(path, sql, strlen(sql)), 0);
    snprintf(path, sizeof path, "%s/config.textproto", depot);
    CHECK_EQ(th_write_file(path, config, strlen(config)), 0);
}

void rt_user(const char *depot, const char *email, char *token, char *id)
{
    const char *add[] = {"user", "add", email, "password123", "--data-dir", depot, NULL};
    char *out = NULL, *err = NULL;
    int st = th_run(add, 60000, &out, &err);
    if (st != 0) fprintf(stderr, "trail user add: %s%s\n", out, err);
    CHECK_EQ(st, 0);
    const char *p = strstr(out, "(id ");
    CHECK(p != NULL);
    snprintf(id, 64, "%.*s", (int)strcspn(p + 4, ")"), p + 4);
    free(out);
    free(err);
    const char *mint[] = {"user", "mint-token", email, "--data-dir", depot, NULL};
    st = th_run(mint, 60000, &out, &err);
    CHECK_EQ(st, 0);
    p = strstr(out, "auth_token: ");
    CHECK(p != NULL);
    snprintf(token, 2048, "%.*s", (int)strcspn(p + 12, "\n"), p + 12);
    free(out);
    free(err);
}

th_resp rt_req(int port, const char *method, const char *path, const char *body, const char *token)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = 4096 + blen + strlen(path);
    char *raw = malloc(cap);
    int n = snprintf(raw, cap, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", method, path);
    if (token) n += snprintf(raw + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (body)
        n += snprintf(raw + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(raw + n, cap - (size_t)n, "\r\n%s", body ? body : "");
    th_resp r;
    int rc = th_request(port, raw, &r);
    free(raw);
    CHECK_EQ(rc, 0);
    return r;
}

void rt_expect(int port, const char *method, const char *path, const char *body, const char *token,
               int status, th_resp *out)
{
    th_resp r = rt_req(port, method, path, body, token);
    if (r.status != status)
        fprintf(stderr, "%s %s -> %d %s (expected %d)\n", method, path, r.status, r.body, status);
    CHECK_EQ(r.status, status);
    if (out)
        *out = r;
    else
        th_resp_free(&r);
}

long rt_total_count(int port, const char *path, const char *token)
{
    th_resp r;
    rt_expect(port, "GET", path, NULL, token, 200, &r);
    const char *p = strstr(r.body, "\"total_count\":");
    CHECK(p != NULL);
    long n = p ? strtol(p + 14, NULL, 10) : -1;
    th_resp_free(&r);
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rt_sse_wait(th_conn *c, const char *needle, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        if (c->buf && memmem(c->buf, c->len, needle, strlen(needle)) != NULL) return 0;
        long long left = end - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) continue;
        if (c->cap - c->len < 65536 + 1) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -2;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
}

int rt_sse_open(int port, const char *path, const char *token, th_conn *c)
{
    if (th_conn_open(c, port) < 0) return -1;
    char req[4096];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n",
                     path);
    if (token)
        n += snprintf(req + n, sizeof req - (size_t)n, "Authorization: Bearer %s\r\n", token);
    snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    if (th_conn_send_str(c, req) < 0) return -1;
    int rc = rt_sse_wait(c, "\r\n\r\n", 30000);
    if (rc == 0 && strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0) {
        rt_sse_wait(c, "}", 5000); /* the error's JSON body */
        rc = -1;
    } else if (rc == 0) {
        rc = rt_sse_wait(c, ": subscribed\n\n", 30000);
    }
    if (rc < 0) {
        fprintf(stderr, "subscribe %s: %.*s\n", path, (int)(c->len > 300 ? 300 : c->len),
                c->buf ? c->buf : "");
        return -1;
    }
    return 0;
}

/* ---- record hooks ---- */

const char rt_hooks_sql[] =
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, stamped INTEGER,\n"
    "  keep INTEGER NOT NULL DEFAULT 0) STRICT;\n"
    "CREATE TABLE crashy (id INTEGER PRIMARY KEY, mode TEXT) STRICT;\n"
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT) STRICT;\n";

const char rt_hooks_cfg[] =
    "server { access_log: false enable_record_transactions: true }\n"
    "runtime { cpu_budget_ms: 300 }\n"
    "record_apis { name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [CREATE, READ, UPDATE, DELETE] }\n"
    "record_apis { name: \"crashy\" table_name: \"crashy\" acl_world: [CREATE, READ] }\n"
    "record_apis { name: \"audit\" table_name: \"audit\" acl_world: [READ] }\n";

char *rt_audit_of(int port)
{
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/audit?order=id&limit=100", NULL, NULL, 200, &r);
    char *out = strdup(r.body);
    th_resp_free(&r);
    return out;
}

void rt_hooks_check_writes(int port)
{
    th_resp r;
    /* before create changes the record; after create sees it committed and writes elsewhere */
    rt_expect(port, "POST", "/api/records/v1/notes", "{\"text\":\"  hello \"}", NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"ids\":[\"1\"]}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/notes/1", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":1,\"text\":\"HELLO\",\"stamped\":1,\"keep\":0}");
    th_resp_free(&r);
    char *a = rt_audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"before create   hello  by anonymous\"");
    CHECK_CONTAINS(a, "\"what\":\"after create 1 HELLO\"");
    free(a);
    /* a rejection: its status and message reach the client, nothing is written */
    rt_expect(port, "POST", "/api/records/v1/notes", "{\"text\":\"a forbidden word\"}", NULL, 422,
              &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"no forbidden words\"}");
    th_resp_free(&r);
    /* several records: the hooks run for each, in the one transaction */
    rt_expect(port, "POST", "/api/records/v1/notes",
              "[{\"text\":\"b\",\"keep\":1},{\"text\":\"c\"}]", NULL, 200, NULL);
    rt_expect(port, "POST", "/api/records/v1/notes", "[{\"text\":\"d\"},{\"text\":\"forbidden\"}]",
              NULL, 422, NULL);
    CHECK_EQ(rt_total_count(port, "/api/records/v1/notes?count=true&limit=0", NULL), 3);
    a = rt_audit_of(port);
    CHECK(strstr(a, "before create d") == NULL); /* the hook's write went with the request */
    free(a);

    /* update: changed by the hook, or rejected */
    rt_expect(port, "PATCH", "/api/records/v1/notes/3", "{\"text\":\"C!\"}", NULL, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/3", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":3,\"text\":\"C!\",\"stamped\":2,\"keep\":0}");
    th_resp_free(&r);
    rt_expect(port, "PATCH", "/api/records/v1/notes/3", "{\"keep\":1}", NULL, 403, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"notes cannot be kept by an update\"}");
    th_resp_free(&r);
    /* delete: the hook reads the row inside the transaction and refuses a kept one */
    rt_expect(port, "DELETE", "/api/records/v1/notes/2", NULL, NULL, 409, &r);
    CHECK_STR_EQ(r.body, "{\"error\":\"this note is kept\"}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/notes/2", NULL, NULL, 200, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/notes/3", NULL, NULL, 200, NULL);
    a = rt_audit_of(port);
    CHECK_CONTAINS(a, "\"what\":\"after update 3\"");
    CHECK_CONTAINS(a, "\"what\":\"after delete 3\"");
    CHECK(strstr(a, "after delete 2") == NULL);
    free(a);
}
