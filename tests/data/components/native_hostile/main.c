/* The hostile battery's compiled component: the routes of hostile_limits the battery needs (/ok,
 * /whoami) and one route per way a compiled guest can misbehave. */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long served;
static char instance_id[32];

static void ok(tb_request *req)
{
    char text[32];
    snprintf(text, sizeof text, "ok %ld", ++served);
    tb_respond_text(req, 200, text);
}

static void whoami(tb_request *req)
{
    tb_respond_text(req, 200, instance_id);
}

/* An endless loop that never calls the host. */
static void spin(tb_request *req)
{
    volatile unsigned long n = 0;
    for (;;) n++;
    tb_respond_text(req, 200, "unreachable");
}

static void trap(tb_request *req)
{
    (void)req;
    __builtin_trap();
}

/* A load far beyond the end of linear memory. */
static void oob(tb_request *req)
{
    volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)0xfffffff0u;
    char text[32];
    snprintf(text, sizeof text, "%d", p[0]);
    tb_respond_text(req, 200, text);
}

static int (*volatile deeper)(int); /* through a pointer: clang sees no endless recursion */

static int deep(int n)
{
    volatile char frame[256];
    frame[0] = (char)n;
    return deeper(n + 1) + frame[0];
}

static void recurse(tb_request *req)
{
    char text[32];
    deeper = deep;
    snprintf(text, sizeof text, "%d", deep(0));
    tb_respond_text(req, 200, text);
}

/* Allocates 1 MiB blocks until malloc fails, touching each; answers how many it got. */
static void grow(tb_request *req)
{
    long mib = 0;
    void *head = NULL;
    for (;;) {
        void **block = malloc(1 << 20);
        if (block == NULL) break;
        memset(block, 1, 1 << 20);
        *block = head;
        head = block;
        mib++;
    }
    while (head) {
        void *next = *(void **)head;
        free(head);
        head = next;
    }
    char text[64];
    snprintf(text, sizeof text, "allocated %ld MiB", mib);
    tb_respond_text(req, 200, text);
}

static void slept(const char *error, void *ud)
{
    tb_request *req = ud;
    tb_respond_text(req, error ? 500 : 200, error ? error : "slept");
}

/* Waits 500 ms on a timer: the worker serves other requests meanwhile. */
static void sleepy(tb_request *req)
{
    tb_sleep(500, slept, req);
}

/* Sleeps 1 ms, then burns 150 ms of CPU (within the budget), again and again, forever: the
 * worker would spend all its time here. */
static void hog_again(const char *error, void *ud)
{
    (void)error;
    volatile unsigned long n = 0;
    int64_t until = tb_now_ms() + 150;
    while (tb_now_ms() < until) n++;
    tb_sleep(1, hog_again, ud);
}

static void hog(tb_request *req)
{
    tb_sleep(1, hog_again, req);
}

static void never(tb_request *req)
{
    (void)req; /* never answered: the deadline answers it */
}

static void rows_done(const tb_rows *rows, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 500, error);
        return;
    }
    char text[64];
    snprintf(text, sizeof text, "%d rows", rows->nrows);
    tb_respond_text(req, 200, text);
}

/* SQL on trail's own tables: refused by the allow-list. */
static void sql_trail(tb_request *req)
{
    tb_db_query("SELECT * FROM _job_runs", NULL, 0, rows_done, req);
}

static void sql_write_trail(tb_request *req)
{
    tb_db_query("DELETE FROM _user RETURNING id", NULL, 0, rows_done, req);
}

/* A recursive query without end: stopped at the CPU budget. */
static void sql_forever(tb_request *req)
{
    tb_db_query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT count(*) FROM c",
                NULL, 0, rows_done, req);
}

static void changed_done(int64_t changed, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 400, error);
        return;
    }
    char text[32];
    snprintf(text, sizeof text, "changed %lld", (long long)changed);
    tb_respond_text(req, 200, text);
}

/* A write that may meet another connection's write lock: it waits without blocking the worker. */
static void sql_insert(tb_request *req)
{
    tb_value v = tb_text("from the compiled guest");
    tb_db_execute("INSERT INTO native_notes (body) VALUES (?)", &v, 1, changed_done, req);
}

static void fetched(const tb_fetch_response *res, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 502, error);
        return;
    }
    char text[600];
    snprintf(text, sizeof text, "%d %.500s", res->status, res->body);
    tb_respond_text(req, 200, text);
}

/* fetch() of a URL given in the query (?url=...): private addresses are refused unless listed. */
static void fetch_url(tb_request *req)
{
    const char *url = tb_query_param(req, "url");
    tb_fetch("GET", url ? url : "", NULL, NULL, 0, fetched, req);
}

/* Bytes the host is asked to read from outside linear memory. */
static void badptr(tb_request *req)
{
    int h = tb__sql(0, 0, (const char *)(uintptr_t)0xffffff00u, 4096, "", 0);
    char text[32];
    snprintf(text, sizeof text, "%d", h);
    tb_respond_text(req, 200, text);
}

/* A response head claiming 1,000,000 header fields (8 MB of empty names and values): refused
 * before the host decodes any. */
static void many_headers(tb_request *req)
{
    size_t n = 1000000, len = 4 + 8 * n;
    unsigned char *head = calloc(1, len);
    head[0] = (unsigned char)n;
    head[1] = (unsigned char)(n >> 8);
    head[2] = (unsigned char)(n >> 16);
    tb__respond(req->id, 200, head, len, "x", 1);
    free(head);
    tb__request_free(req);
}

/* A statement with 1,000,000 NULL parameters (1 MB): refused before the host decodes them. */
static void many_params(tb_request *req)
{
    size_t n = 1000000;
    unsigned char *p = malloc(4 + n);
    p[0] = (unsigned char)n;
    p[1] = (unsigned char)(n >> 8);
    p[2] = (unsigned char)(n >> 16);
    p[3] = 0;
    memset(p + 4, 0, n);
    int h = tb__sql(0, 0, "SELECT 1", 8, p, 4 + n);
    free(p);
    int len = tb__result_len(h);
    char *msg = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
    int st = tb__result_take(h, msg, (size_t)(len > 0 ? len : 0));
    char text[300];
    snprintf(text, sizeof text, "%d %s", st, msg);
    free(msg);
    tb_respond_text(req, 200, text);
}

void tb_init(void)
{
    unsigned r = 0;
    getentropy(&r, sizeof r);
    snprintf(instance_id, sizeof instance_id, "%lld-%u", (long long)tb_now_ms(), r);
    tb_route("GET", "/ok", ok);
    tb_route("GET", "/whoami", whoami);
    tb_route("GET", "/spin", spin);
    tb_route("GET", "/trap", trap);
    tb_route("GET", "/oob", oob);
    tb_route("GET", "/recurse", recurse);
    tb_route("GET", "/grow", grow);
    tb_route("GET", "/sleep", sleepy);
    tb_route("GET", "/never", never);
    tb_route("GET", "/hog", hog);
    tb_route("GET", "/sql/trail", sql_trail);
    tb_route("GET", "/sql/write-trail", sql_write_trail);
    tb_route("GET", "/sql/forever", sql_forever);
    tb_route("GET", "/badptr", badptr);
    tb_route("POST", "/sql/insert", sql_insert);
    tb_route("GET", "/fetch", fetch_url);
    tb_route("GET", "/many-headers", many_headers);
    tb_route("GET", "/many-params", many_params);
}
