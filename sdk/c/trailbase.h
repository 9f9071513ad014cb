/* trailbase.h: trailbase-guest-c, the SDK for trail components written in C. One header, no
 * dependencies beyond wasi-libc: build with
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -o dist/component.wasm main.c
 *
 * (the scaffold's Makefile does). In exactly one file, define TRAILBASE_IMPLEMENTATION before
 * including it, and define tb_init(), which registers the component's routes and jobs:
 *
 *     #define TRAILBASE_IMPLEMENTATION
 *     #include "trailbase.h"
 *
 *     static void hello(tb_request *req) { tb_respond_text(req, 200, "Hello from C!"); }
 *
 *     void tb_init(void) { tb_route("GET", "/hello", hello); }
 *
 * A handler answers its request exactly once with one of the tb_respond* functions: before it
 * returns, or later, from the callback of a database query, a timer or a file read (nothing
 * blocks: the host calls back when the result is ready). After the answer, the request is freed.
 * A job ends with tb_run_done(), now or later. A record hook (tb_record_hook) runs synchronously
 * inside a Record API's write and answers before it returns.
 *
 * The ABI underneath is trail's for compiled components: docs/guest-abi.md. */
#ifndef TRAILBASE_H
#define TRAILBASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_request tb_request;
typedef struct tb_run tb_run;
typedef void (*tb_handler)(tb_request *req);
typedef void (*tb_job_fn)(tb_run *run);

/* ---- registration (in tb_init) ---- */

/* method: "GET", "POST", ... or "*" for any; path with :name or {name} parameters. */
void tb_route(const char *method, const char *path, tb_handler fn);
/* schedule: a cron expression ("0 * * * * *") or @hourly, @daily, ... */
void tb_job(const char *name, const char *schedule, tb_job_fn fn);
/* Written by the component: registers its routes, jobs and record hooks. */
void tb_init(void);

/* ---- record hooks (docs/records.md): a Record API's writes ----
 *
 * tb_record_hook("todos", TB_BEFORE_CREATE, fn) (in tb_init) runs fn for every record created
 * through the Record API "todos", on the worker that received the write. Before hooks run inside
 * the write's transaction: what they write with tb_db_execute commits or rolls back with it, and
 * they may change the record (tb_hook_set_record) or reject the write (tb_hook_reject: its status
 * and message are the answer). After hooks run once the write has committed and cannot undo it.
 * A hook runs synchronously: tb_db_query/tb_db_execute call back before they return (the
 * statement runs at once in the write's transaction); a call that would wait (tb_sleep, tb_fetch,
 * tb_read_file, tb_tx_begin) fails the write, and its callback never runs. A hook that returns
 * without tb_hook_set_record or tb_hook_reject keeps the record as it is. A trap (a crash,
 * __builtin_trap) or running past runtime.cpu_budget_ms fails the write (500, 503), and nothing
 * of it, the hook's own statements included, is written. */
enum {
    TB_BEFORE_CREATE,
    TB_AFTER_CREATE,
    TB_BEFORE_UPDATE,
    TB_AFTER_UPDATE,
    TB_BEFORE_DELETE,
    TB_AFTER_DELETE
};
typedef struct tb_hook tb_hook;
typedef void (*tb_hook_fn)(tb_hook *hook);
/* event: TB_BEFORE_CREATE, ...; api: the Record API's name (record_apis { name: ... }). */
void tb_record_hook(const char *api, int event, tb_hook_fn fn);

/* The hook's context (strings valid until the hook function returns): the API's name, the event
 * ("beforeCreate", ...), the record's id as text (update, delete, after create; NULL before a
 * create), the record as a JSON object (create, update: the fields sent, BLOBs as URL-safe
 * base64; after a write: as written; delete: {}), the caller's id and email (NULL when
 * anonymous), and the whole context as JSON text. */
const char *tb_hook_api(const tb_hook *hook);
const char *tb_hook_event(const tb_hook *hook);
const char *tb_hook_id(const tb_hook *hook);
const char *tb_hook_record(const tb_hook *hook, size_t *len);
const char *tb_hook_user_id(const tb_hook *hook);
const char *tb_hook_user_email(const tb_hook *hook);
const char *tb_hook_context(const tb_hook *hook, size_t *len);
/* Before create/update: writes json (one JSON object: column name to value) instead of the
 * record sent; it is checked like a request's body. */
void tb_hook_set_record(tb_hook *hook, const char *json);
/* Rejects the write: status 400-599 and message are the client's answer ({"error": message}). */
void tb_hook_reject(tb_hook *hook, int status, const char *message);

/* ---- the request (strings are NUL-terminated, valid until the request is answered) ---- */

const char *tb_method(const tb_request *req); /* "GET", upper case */
const char *tb_path(const tb_request *req);   /* without the query */
const char *tb_url(const tb_request *req);    /* the request target, with the query */
const char *tb_query(const tb_request *req);  /* the query string without '?', or "" */
/* A path parameter (percent-decoded), a query parameter (decoded), a header (the name in any
 * case); NULL when absent. */
const char *tb_param(const tb_request *req, const char *name);
const char *tb_query_param(const tb_request *req, const char *name);
const char *tb_header(const tb_request *req, const char *name);
/* The body (NUL-terminated too); *len its length. */
const char *tb_body(const tb_request *req, size_t *len);

/* ---- the caller (docs/auth.md): who sent the request, resolved by trail before the handler
 * runs: the `Authorization: Bearer` token or the `auth_token` cookie, its signature and expiry
 * checked. A cookie on a request that changes state (any method but GET, HEAD, OPTIONS) counts
 * only with a `CSRF-Token` header equal to the user's csrf_token: trail checks that too.
 *
 *     static void my_todos(tb_request *req) {
 *         const tb_user *user = tb_require_user(req);
 *         if (user == NULL) return; // answered: 401 or 403 {"error": ...}
 *         unsigned char id[16];
 *         tb_user_id_bytes(user, id);
 *         tb_db_query("SELECT text FROM todos WHERE owner = ?", (tb_value[]){tb_blob(id, 16)}, 1,
 *                     send_rows, req);
 *     }
 *     static void stats(tb_request *req) { tb_require_admin(req, stats_for_admin, NULL); }
 * ---- */

typedef struct tb_user {
    const char *id;         /* URL-safe base64 of the 16 bytes of _user.id, padded (24 chars) */
    const char *email;      /* the address the token was issued for; NULL when none */
    const char *csrf_token; /* the token's csrf_token claim */
} tb_user;

/* The signed-in user of req; NULL for an anonymous request and for credentials that do not
 * count. Valid until req is answered. */
const tb_user *tb_req_user(const tb_request *req);
/* Why the credentials req carried do not count (an invalid or expired token: *status 401; a
 * cookie without its CSRF token: 403); NULL when it carried none or they count. status may be
 * NULL. */
const char *tb_req_auth_error(const tb_request *req, int *status);
/* The 16 bytes of user's id into out (to bind: tb_blob(out, 16)); 0, or -1 when the id is not
 * the base64 of 16 bytes. */
int tb_user_id_bytes(const tb_user *user, unsigned char out[16]);
/* The signed-in user of req; otherwise answers req (which is then freed) with 401
 * {"error": ...} for an anonymous request or an invalid or expired token, 403 for a cookie
 * without its CSRF token, and returns NULL. */
const tb_user *tb_require_user(tb_request *req);
/* Calls fn(req, user, ud) when req's user is an admin now (_user.admin, read at the call, not
 * the token's claim, which may be stale); otherwise answers req: as tb_require_user, 403
 * {"error": "admins only"}, or 500 when _user cannot be read. fn may run before this returns. */
typedef void (*tb_user_handler)(tb_request *req, const tb_user *user, void *ud);
void tb_require_admin(tb_request *req, tb_user_handler fn, void *ud);

/* ---- answers: each frees the request ---- */

/* content_type NULL: no content-type header. */
void tb_respond(tb_request *req, int status, const char *content_type, const void *body,
                size_t len);
void tb_respond_text(tb_request *req, int status, const char *text);
/* json: JSON text, sent as application/json. */
void tb_respond_json(tb_request *req, int status, const char *json);
/* {"error": message}, as trail's own errors. */
void tb_respond_error(tb_request *req, int status, const char *message);
/* Adds a header to the response the next tb_respond* of req sends. */
void tb_set_header(tb_request *req, const char *name, const char *value);

/* ---- values and rows ---- */

enum { TB_NULL = 0, TB_INTEGER = 1, TB_REAL = 2, TB_TEXT = 3, TB_BLOB = 4 };

typedef struct tb_value {
    int type;
    int64_t i;      /* TB_INTEGER */
    double r;       /* TB_REAL */
    const char *s;  /* TB_TEXT (NUL-terminated), TB_BLOB */
    size_t len;     /* TB_TEXT, TB_BLOB */
} tb_value;

tb_value tb_null(void);
tb_value tb_int(int64_t v);
tb_value tb_real(double v);
tb_value tb_text(const char *s);
tb_value tb_blob(const void *p, size_t len);

typedef struct tb_rows {
    int ncols;
    const char **names; /* column names */
    int nrows;
    tb_value *values;   /* nrows * ncols, row by row */
} tb_rows;

/* Row r, column c. Valid during the callback that received rows. */
const tb_value *tb_rows_get(const tb_rows *rows, int r, int c);

/* ---- asynchronous host calls: the callback runs once, with error NULL on success (a NULL
 * callback: nobody is told) ---- */

typedef void (*tb_rows_cb)(const tb_rows *rows, const char *error, void *ud);
typedef void (*tb_changed_cb)(int64_t changed, const char *error, void *ud);
typedef void (*tb_done_cb)(const char *error, void *ud);
typedef void (*tb_bytes_cb)(const char *data, size_t len, const char *error, void *ud);

void tb_db_query(const char *sql, const tb_value *params, int nparams, tb_rows_cb cb, void *ud);
void tb_db_execute(const char *sql, const tb_value *params, int nparams, tb_changed_cb cb,
                   void *ud);
void tb_sleep(uint32_t ms, tb_done_cb cb, void *ud);

/* Outgoing HTTP, under trail's fetch policy (fetch.allowed_hosts; no loopback or private
 * addresses unless listed in fetch.allowed_private_hosts; redirects followed; limits).
 * headers: NULL or a NULL-terminated list of name, value, name, value, ... Every HTTP response
 * (4xx and 5xx too) is a response; error is a connection failure, a timeout or a refusal. */
typedef struct tb_fetch_response {
    int status;
    int nheaders;
    const char **names, **values;
    const char *body; /* NUL-terminated too */
    size_t body_len;
    const char *url; /* after redirects */
} tb_fetch_response;
typedef void (*tb_fetch_cb)(const tb_fetch_response *res, const char *error, void *ud);
void tb_fetch(const char *method, const char *url, const char *const *headers, const void *body,
              size_t body_len, tb_fetch_cb cb, void *ud);

/* Transactions: tb_tx_begin calls back with the transaction's id (BEGIN IMMEDIATE ran; it waits
 * while another transaction of the worker or another connection holds the database). Statements
 * in it go through tb_tx_query/tb_tx_execute; it ends with tb_tx_commit or tb_tx_rollback. One
 * left open is rolled back after 30 s, and when the instance goes away. */
typedef void (*tb_tx_cb)(uint32_t tx, const char *error, void *ud);
void tb_tx_begin(tb_tx_cb cb, void *ud);
void tb_tx_query(uint32_t tx, const char *sql, const tb_value *params, int nparams, tb_rows_cb cb,
                 void *ud);
void tb_tx_execute(uint32_t tx, const char *sql, const tb_value *params, int nparams,
                   tb_changed_cb cb, void *ud);
void tb_tx_commit(uint32_t tx, tb_done_cb cb, void *ud);
void tb_tx_rollback(uint32_t tx, tb_done_cb cb, void *ud);
void tb_read_file(const char *path, tb_bytes_cb cb, void *ud);

/* ---- jobs and logging ---- */

const char *tb_run_name(const tb_run *run);
/* error NULL: the run succeeded. Frees run. */
void tb_run_done(tb_run *run, const char *error);

/* One line in trail's log, "[WASM] ...": level 0 debug, 1 info, 2 warn, 3 error. */
void tb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds since the epoch. */
int64_t tb_now_ms(void);
/* Whether (text, len) is one valid JSON value. */
int tb_json_valid(const char *text, size_t len);
/* Appends s as a JSON string (quoted, escaped) to the buffer *buf of *len bytes (realloc'd). */
void tb_json_append_string(char **buf, size_t *len, const char *s);
/* The value of key in the JSON object (obj, len), as JSON text (a pointer into obj, *vlen its
 * length); NULL when obj is not an object or has no such key. */
const char *tb_json_get(const char *obj, size_t len, const char *key, size_t *vlen);
/* The JSON string (v, len) decoded to UTF-8, NUL-terminated (malloc'd: free it); NULL when v is
 * not a JSON string. */
char *tb_json_string(const char *v, size_t len);

#ifdef __cplusplus
}
#endif

/* ======================================================================================== */
#ifdef TRAILBASE_IMPLEMENTATION

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TB_IMPORT(name) __attribute__((import_module("trail"), import_name(#name)))
#define TB_EXPORT(name) __attribute__((export_name(#name)))

TB_IMPORT(log) void tb__log(int level, const char *p, size_t len);
TB_IMPORT(manifest) int tb__manifest(const void *p, size_t len);
TB_IMPORT(respond)
int tb__respond(int req, int status, const void *head, size_t head_len, const void *body,
                size_t body_len);
TB_IMPORT(job_done) int tb__job_done(int run, int ok, const char *msg, size_t len);
TB_IMPORT(sql)
int tb__sql(int tx, int kind, const char *sql, size_t len, const void *params, size_t plen);
TB_IMPORT(tx_begin) int tb__tx_begin(void);
TB_IMPORT(tx_end) int tb__tx_end(uint32_t tx, int commit);
TB_IMPORT(timer) int tb__timer(uint32_t ms);
TB_IMPORT(read_file) int tb__read_file(const char *path, size_t len);
TB_IMPORT(fetch) int tb__fetch(const void *req, size_t len);
TB_IMPORT(result_len) int tb__result_len(int handle);
TB_IMPORT(result_take) int tb__result_take(int handle, void *p, size_t len);
TB_IMPORT(release) void tb__release(int handle);
TB_IMPORT(hook_result) int tb__hook_result(int status, const void *p, size_t len);

/* ---- a growable byte buffer ---- */

typedef struct tb__buf {
    char *p;
    size_t len, cap;
} tb__buf;

static void tb__put(tb__buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        b->p = (char *)realloc(b->p, cap);
        if (b->p == NULL) __builtin_trap();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb__u32(tb__buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    tb__put(b, x, 4);
}

static void tb__str(tb__buf *b, const char *s, size_t n)
{
    tb__u32(b, (uint32_t)n);
    tb__put(b, s, n);
}

static void tb__value(tb__buf *b, const tb_value *v)
{
    unsigned char tag = (unsigned char)v->type;
    tb__put(b, &tag, 1);
    if (v->type == TB_INTEGER || v->type == TB_REAL) {
        uint64_t bits;
        if (v->type == TB_INTEGER)
            bits = (uint64_t)v->i;
        else
            memcpy(&bits, &v->r, 8);
        tb__u32(b, (uint32_t)bits);
        tb__u32(b, (uint32_t)(bits >> 32));
    } else if (v->type == TB_TEXT || v->type == TB_BLOB) {
        tb__str(b, v->s ? v->s : "", v->len);
    }
}

/* ---- reading the host's encodings ---- */

typedef struct tb__rd {
    const unsigned char *p;
    size_t len, pos;
} tb__rd;

static uint32_t tb__get_u32(tb__rd *r)
{
    if (r->len - r->pos < 4) __builtin_trap(); /* the host's encoding is never short */
    const unsigned char *p = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A str as a NUL-terminated copy (malloc'd). */
static char *tb__get_str(tb__rd *r, size_t *len)
{
    uint32_t n = tb__get_u32(r);
    if (n > r->len - r->pos) __builtin_trap();
    char *s = (char *)malloc(n + 1);
    if (s == NULL) __builtin_trap();
    memcpy(s, r->p + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    if (len) *len = n;
    return s;
}

/* ---- routes and jobs ---- */

typedef struct tb__route {
    const char *method, *path;
    tb_handler fn;
} tb__route;

typedef struct tb__jobdef {
    const char *name, *schedule;
    tb_job_fn fn;
} tb__jobdef;

typedef struct tb__hookdef {
    const char *api;
    int event;
    tb_hook_fn fn;
} tb__hookdef;

static tb__route *tb__routes;
static size_t tb__nroutes;
static tb__jobdef *tb__jobs;
static size_t tb__njobs;
static tb__hookdef *tb__hooks;
static size_t tb__nhooks;
static const char *const tb__events[] = {"beforeCreate", "afterCreate",  "beforeUpdate",
                                         "afterUpdate",  "beforeDelete", "afterDelete"};

void tb_record_hook(const char *api, int event, tb_hook_fn fn)
{
    if (event < TB_BEFORE_CREATE || event > TB_AFTER_DELETE) __builtin_trap();
    tb__hooks = (tb__hookdef *)realloc(tb__hooks, (tb__nhooks + 1) * sizeof *tb__hooks);
    tb__hooks[tb__nhooks++] = (tb__hookdef){api, event, fn};
}

void tb_route(const char *method, const char *path, tb_handler fn)
{
    tb__routes = (tb__route *)realloc(tb__routes, (tb__nroutes + 1) * sizeof *tb__routes);
    tb__routes[tb__nroutes++] = (tb__route){method, path, fn};
}

void tb_job(const char *name, const char *schedule, tb_job_fn fn)
{
    tb__jobs = (tb__jobdef *)realloc(tb__jobs, (tb__njobs + 1) * sizeof *tb__jobs);
    tb__jobs[tb__njobs++] = (tb__jobdef){name, schedule, fn};
}

TB_EXPORT(trail_init) void tb__trail_init(void)
{
    tb_init();
    tb__buf b = {0};
    tb__u32(&b, (uint32_t)tb__nroutes);
    for (size_t i = 0; i < tb__nroutes; i++) {
        tb__str(&b, tb__routes[i].method, strlen(tb__routes[i].method));
        tb__str(&b, tb__routes[i].path, strlen(tb__routes[i].path));
    }
    tb__u32(&b, (uint32_t)tb__njobs);
    for (size_t i = 0; i < tb__njobs; i++) {
        tb__str(&b, tb__jobs[i].name, strlen(tb__jobs[i].name));
        tb__str(&b, tb__jobs[i].schedule, strlen(tb__jobs[i].schedule));
    }
    /* the hooks section only when there are hooks: a component without any loads in a trail
     * older than record hooks too */
    if (tb__nhooks > 0) {
        tb__u32(&b, (uint32_t)tb__nhooks);
        for (size_t i = 0; i < tb__nhooks; i++) {
            const char *ev = tb__events[tb__hooks[i].event];
            tb__str(&b, tb__hooks[i].api, strlen(tb__hooks[i].api));
            tb__str(&b, ev, strlen(ev));
        }
    }
    tb__manifest(b.p, b.len);
    free(b.p);
}

TB_EXPORT(trail_alloc) void *tb__trail_alloc(size_t n)
{
    return malloc(n ? n : 1);
}

/* ---- requests ---- */

typedef struct tb__pair {
    char *name, *value;
} tb__pair;

/* The caller that ends a request's encoding (docs/guest-abi.md): a tag byte, then 1: the user,
 * 2: the status and message of credentials that do not count, 0: nobody. */
typedef struct tb__caller {
    int signed_in;
    tb_user user;   /* its strings malloc'd when signed_in */
    char *error;    /* malloc'd; NULL when none */
    int error_status;
} tb__caller;

static void tb__read_caller(tb__rd *r, tb__caller *c)
{
    if (r->pos >= r->len) return; /* a host of ABI 1: anonymous */
    unsigned char tag = r->p[r->pos++];
    if (tag == 1) {
        c->signed_in = 1;
        size_t n;
        c->user.id = tb__get_str(r, NULL);
        char *email = tb__get_str(r, &n);
        if (n == 0) {
            free(email);
            email = NULL;
        }
        c->user.email = email;
        c->user.csrf_token = tb__get_str(r, NULL);
    } else if (tag == 2) {
        c->error_status = tb__get_u32(r) == 403 ? 403 : 401;
        c->error = tb__get_str(r, NULL);
    } /* 0, or a tag of a later version: nobody (nothing unknown grants a user) */
}

static void tb__free_caller(tb__caller *c)
{
    if (c->signed_in) { /* an anonymous request pays no calls here */
        free((char *)c->user.id);
        free((char *)c->user.email);
        free((char *)c->user.csrf_token);
    }
    if (c->error) free(c->error);
}

struct tb_request {
    int id;
    char *method, *url, *path, *query, *body;
    size_t body_len;
    tb__pair *params, *headers, *qparams;
    size_t nparams, nheaders, nqparams;
    int qparsed;
    tb__buf head; /* response headers set so far, encoded */
    uint32_t nhead;
    tb__caller caller;
};

static void tb__pairs(tb__rd *r, tb__pair **out, size_t *n)
{
    *n = tb__get_u32(r);
    *out = (tb__pair *)calloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++) {
        (*out)[i].name = tb__get_str(r, NULL);
        (*out)[i].value = tb__get_str(r, NULL);
    }
}

static void tb__free_pairs(tb__pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
}

static void tb__request_free(tb_request *req)
{
    free(req->method);
    free(req->url);
    free(req->path);
    free(req->query);
    free(req->body);
    tb__free_pairs(req->params, req->nparams);
    tb__free_pairs(req->headers, req->nheaders);
    tb__free_pairs(req->qparams, req->nqparams);
    free(req->head.p);
    tb__free_caller(&req->caller);
    free(req);
}

TB_EXPORT(trail_http) void tb__trail_http(int id, int route, void *p, size_t len)
{
    tb_request *req = (tb_request *)calloc(1, sizeof *req);
    tb__rd r = {(const unsigned char *)p, len, 0};
    req->id = id;
    req->method = tb__get_str(&r, NULL);
    req->url = tb__get_str(&r, NULL);
    req->path = tb__get_str(&r, NULL);
    req->query = tb__get_str(&r, NULL);
    tb__pairs(&r, &req->params, &req->nparams);
    tb__pairs(&r, &req->headers, &req->nheaders);
    req->body = tb__get_str(&r, &req->body_len);
    tb__read_caller(&r, &req->caller);
    free(p);
    if (route < 0 || (size_t)route >= tb__nroutes) {
        tb_respond_error(req, 500, "no such route");
        return;
    }
    tb__routes[route].fn(req);
}

const char *tb_method(const tb_request *req) { return req->method; }
const char *tb_path(const tb_request *req) { return req->path; }
const char *tb_url(const tb_request *req) { return req->url; }
const char *tb_query(const tb_request *req) { return req->query; }

const char *tb_body(const tb_request *req, size_t *len)
{
    if (len) *len = req->body_len;
    return req->body;
}

const char *tb_param(const tb_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0) return req->params[i].value;
    return NULL;
}

const char *tb_header(const tb_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

static int tb__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *tb__decode(const char *s, size_t n)
{
    char *d = (char *)malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = s[i] == '%' && i + 2 < n ? tb__hex(s[i + 1]) : -1;
        int lo = hi >= 0 ? tb__hex(s[i + 2]) : -1;
        if (lo >= 0) {
            d[j++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[j++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    d[j] = '\0';
    return d;
}

const char *tb_query_param(const tb_request *creq, const char *name)
{
    tb_request *req = (tb_request *)creq;
    if (!req->qparsed) {
        req->qparsed = 1;
        const char *q = req->query;
        while (*q) {
            size_t n = strcspn(q, "&");
            const char *eq = memchr(q, '=', n);
            size_t kn = eq ? (size_t)(eq - q) : n;
            req->qparams = (tb__pair *)realloc(req->qparams, (req->nqparams + 1) *
                                                                 sizeof *req->qparams);
            req->qparams[req->nqparams].name = tb__decode(q, kn);
            req->qparams[req->nqparams].value = eq ? tb__decode(eq + 1, n - kn - 1) : tb__decode("", 0);
            req->nqparams++;
            q += n;
            if (*q == '&') q++;
        }
    }
    for (size_t i = 0; i < req->nqparams; i++)
        if (strcmp(req->qparams[i].name, name) == 0) return req->qparams[i].value;
    return NULL;
}

void tb_set_header(tb_request *req, const char *name, const char *value)
{
    tb__str(&req->head, name, strlen(name));
    tb__str(&req->head, value, strlen(value));
    req->nhead++;
}

void tb_respond(tb_request *req, int status, const char *content_type, const void *body,
                size_t len)
{
    if (content_type) tb_set_header(req, "content-type", content_type);
    tb__buf head = {0};
    tb__u32(&head, req->nhead);
    tb__put(&head, req->head.p, req->head.len);
    tb__respond(req->id, status, head.p, head.len, body ? body : "", len);
    free(head.p);
    tb__request_free(req);
}

void tb_respond_text(tb_request *req, int status, const char *text)
{
    tb_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

void tb_respond_json(tb_request *req, int status, const char *json)
{
    tb_respond(req, status, "application/json", json, strlen(json));
}

void tb_json_append_string(char **buf, size_t *len, const char *s)
{
    tb__buf b = {*buf, *len, *buf ? *len + 1 : 0};
    tb__put(&b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            tb__put(&b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            tb__put(&b, esc, 6);
        } else {
            tb__put(&b, s, 1);
        }
    }
    tb__put(&b, "\"", 1);
    *buf = b.p;
    *len = b.len;
}

void tb_respond_error(tb_request *req, int status, const char *message)
{
    char *json = NULL;
    size_t len = 0;
    tb__buf b = {0};
    tb__put(&b, "{\"error\":", 9);
    json = b.p;
    len = b.len;
    tb_json_append_string(&json, &len, message);
    b.p = json;
    b.len = len;
    b.cap = len + 1;
    tb__put(&b, "}", 1);
    tb_respond(req, status, "application/json", b.p, b.len);
    free(b.p);
}

/* ---- the caller ---- */

const tb_user *tb_req_user(const tb_request *req)
{
    return req->caller.signed_in ? &req->caller.user : NULL;
}

const char *tb_req_auth_error(const tb_request *req, int *status)
{
    if (status) *status = req->caller.error ? req->caller.error_status : 0;
    return req->caller.error;
}

int tb_user_id_bytes(const tb_user *user, unsigned char out[16])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (const char *s = user->id; *s && *s != '='; s++) {
        char c = *s;
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0) return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == 16) return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n == 16 ? 0 : -1;
}

const tb_user *tb_require_user(tb_request *req)
{
    if (req->caller.signed_in) return &req->caller.user;
    if (req->caller.error)
        tb_respond_error(req, req->caller.error_status, req->caller.error);
    else
        tb_respond_error(req, 401, "sign in first (no auth token was sent)");
    return NULL;
}

typedef struct tb__admin_check {
    tb_request *req;
    tb_user_handler fn;
    void *ud;
} tb__admin_check;

static void tb__admin_checked(const tb_rows *rows, const char *error, void *ud)
{
    tb__admin_check c = *(tb__admin_check *)ud;
    free(ud);
    if (error) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read _user.admin: %s", error);
        tb_respond_error(c.req, 500, msg);
        return;
    }
    const tb_value *v = rows->nrows > 0 && rows->ncols > 0 ? tb_rows_get(rows, 0, 0) : NULL;
    if (v == NULL || v->type != TB_INTEGER || v->i <= 0) {
        tb_respond_error(c.req, 403, "admins only");
        return;
    }
    c.fn(c.req, &c.req->caller.user, c.ud);
}

void tb_require_admin(tb_request *req, tb_user_handler fn, void *ud)
{
    const tb_user *user = tb_require_user(req);
    if (user == NULL) return;
    unsigned char id[16];
    if (tb_user_id_bytes(user, id) < 0) {
        tb_respond_error(req, 403, "admins only");
        return;
    }
    tb__admin_check *c = (tb__admin_check *)malloc(sizeof *c);
    if (c == NULL) __builtin_trap();
    *c = (tb__admin_check){req, fn, ud};
    tb_value param = tb_blob(id, 16);
    tb_db_query("SELECT admin FROM \"_user\" WHERE id = ?", &param, 1, tb__admin_checked, c);
}

/* ---- asynchronous calls ---- */

enum { TB__ROWS, TB__CHANGED, TB__DONE, TB__BYTES, TB__TX, TB__FETCH };

typedef struct tb__pending {
    int handle, kind;
    void *cb, *ud;
    struct tb__pending *next;
} tb__pending;

static tb__pending *tb__waiting;

static void tb__deliver(int kind, void *cb, void *ud, int status, char *data, size_t len)
{
    const char *error = status == 0 ? NULL : data;
    if (cb == NULL) return; /* the caller does not want to know */
    switch (kind) {
    case TB__ROWS: {
        tb_rows rows = {0};
        tb_value *vals = NULL;
        char **strs = NULL;
        size_t nstrs = 0;
        if (status == 0) {
            tb__rd r = {(const unsigned char *)data, len, 0};
            rows.ncols = (int)tb__get_u32(&r);
            rows.names = (const char **)calloc((size_t)rows.ncols + 1, sizeof *rows.names);
            strs = (char **)malloc(sizeof *strs);
            for (int i = 0; i < rows.ncols; i++) rows.names[i] = tb__get_str(&r, NULL);
            rows.nrows = (int)tb__get_u32(&r);
            size_t n = (size_t)rows.nrows * (size_t)rows.ncols;
            vals = (tb_value *)calloc(n ? n : 1, sizeof *vals);
            for (size_t i = 0; i < n; i++) {
                if (r.pos >= r.len) __builtin_trap();
                vals[i].type = r.p[r.pos++];
                if (vals[i].type == TB_INTEGER || vals[i].type == TB_REAL) {
                    uint64_t bits = tb__get_u32(&r);
                    bits |= (uint64_t)tb__get_u32(&r) << 32;
                    if (vals[i].type == TB_INTEGER)
                        vals[i].i = (int64_t)bits;
                    else
                        memcpy(&vals[i].r, &bits, 8);
                } else if (vals[i].type == TB_TEXT || vals[i].type == TB_BLOB) {
                    char *s = tb__get_str(&r, &vals[i].len);
                    vals[i].s = s;
                    strs = (char **)realloc(strs, (nstrs + 1) * sizeof *strs);
                    strs[nstrs++] = s;
                }
            }
            rows.values = vals;
        }
        ((tb_rows_cb)cb)(status == 0 ? &rows : NULL, error, ud);
        for (int i = 0; i < rows.ncols; i++) free((void *)rows.names[i]);
        free(rows.names);
        for (size_t i = 0; i < nstrs; i++) free(strs[i]);
        free(strs);
        free(vals);
        break;
    }
    case TB__CHANGED: {
        int64_t changed = 0;
        if (status == 0 && len == 8) {
            uint64_t bits = 0;
            for (int i = 7; i >= 0; i--) bits = bits << 8 | (unsigned char)data[i];
            changed = (int64_t)bits;
        }
        ((tb_changed_cb)cb)(changed, error, ud);
        break;
    }
    case TB__DONE:
        ((tb_done_cb)cb)(error, ud);
        break;
    case TB__BYTES:
        ((tb_bytes_cb)cb)(status == 0 ? data : NULL, status == 0 ? len : 0, error, ud);
        break;
    case TB__FETCH: {
        tb_fetch_response res = {0};
        char **strs = NULL;
        if (status == 0) {
            tb__rd r = {(const unsigned char *)data, len, 0};
            res.status = (int)tb__get_u32(&r);
            res.nheaders = (int)tb__get_u32(&r);
            strs = (char **)calloc((size_t)res.nheaders * 2 + 2, sizeof *strs);
            res.names = (const char **)calloc((size_t)res.nheaders + 1, sizeof *res.names);
            res.values = (const char **)calloc((size_t)res.nheaders + 1, sizeof *res.values);
            for (int i = 0; i < res.nheaders; i++) {
                res.names[i] = strs[2 * i] = tb__get_str(&r, NULL);
                res.values[i] = strs[2 * i + 1] = tb__get_str(&r, NULL);
            }
            res.body = strs[2 * res.nheaders] = tb__get_str(&r, &res.body_len);
            res.url = strs[2 * res.nheaders + 1] = tb__get_str(&r, NULL);
        }
        ((tb_fetch_cb)cb)(status == 0 ? &res : NULL, error, ud);
        if (strs)
            for (int i = 0; i < res.nheaders * 2 + 2; i++) free(strs[i]);
        free(strs);
        free(res.names);
        free(res.values);
        break;
    }
    case TB__TX: {
        uint32_t tx = 0;
        if (status == 0 && len == 4)
            tx = (uint32_t)(unsigned char)data[0] | (uint32_t)(unsigned char)data[1] << 8 |
                 (uint32_t)(unsigned char)data[2] << 16 | (uint32_t)(unsigned char)data[3] << 24;
        ((tb_tx_cb)cb)(tx, error, ud);
        break;
    }
    }
}

/* Takes handle's result if it is ready (then calls back and returns 1). */
static int tb__try(int handle, int kind, void *cb, void *ud)
{
    int len = tb__result_len(handle);
    if (len < 0) return 0;
    char *data = (char *)malloc((size_t)len + 1);
    int status = tb__result_take(handle, data, (size_t)len);
    data[len] = '\0';
    tb__deliver(kind, cb, ud, status, data, (size_t)len);
    free(data);
    return 1;
}

static void tb__start(int handle, int kind, void *cb, void *ud)
{
    if (handle < 0) {
        char msg[] = "the host refused the call (too many calls in flight, or a bad argument)";
        tb__deliver(kind, cb, ud, 1, msg, sizeof msg - 1);
        return;
    }
    if (tb__try(handle, kind, cb, ud)) return;
    tb__pending *p = (tb__pending *)malloc(sizeof *p);
    *p = (tb__pending){handle, kind, cb, ud, tb__waiting};
    tb__waiting = p;
}

TB_EXPORT(trail_complete) void tb__trail_complete(int handle)
{
    for (tb__pending **pp = &tb__waiting; *pp; pp = &(*pp)->next) {
        tb__pending *p = *pp;
        if (p->handle != handle) continue;
        *pp = p->next;
        if (!tb__try(handle, p->kind, p->cb, p->ud)) {
            p->next = tb__waiting; /* not ready after all: keep waiting */
            tb__waiting = p;
            return;
        }
        free(p);
        return;
    }
}

static int tb__sql_call(uint32_t tx, int kind, const char *sql, const tb_value *params, int n)
{
    tb__buf b = {0};
    if (n > 0) {
        tb__u32(&b, (uint32_t)n);
        for (int i = 0; i < n; i++) tb__value(&b, &params[i]);
    }
    int h = tb__sql((int)tx, kind, sql, strlen(sql), b.p ? b.p : "", b.len);
    free(b.p);
    return h;
}

void tb_db_query(const char *sql, const tb_value *params, int nparams, tb_rows_cb cb, void *ud)
{
    tb__start(tb__sql_call(0, 0, sql, params, nparams), TB__ROWS, (void *)cb, ud);
}

void tb_db_execute(const char *sql, const tb_value *params, int nparams, tb_changed_cb cb,
                   void *ud)
{
    tb__start(tb__sql_call(0, 1, sql, params, nparams), TB__CHANGED, (void *)cb, ud);
}

void tb_fetch(const char *method, const char *url, const char *const *headers, const void *body,
              size_t body_len, tb_fetch_cb cb, void *ud)
{
    tb__buf b = {0};
    tb__str(&b, method, strlen(method));
    tb__str(&b, url, strlen(url));
    uint32_t n = 0;
    while (headers && headers[2 * n] && headers[2 * n + 1]) n++;
    tb__u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        tb__str(&b, headers[2 * i], strlen(headers[2 * i]));
        tb__str(&b, headers[2 * i + 1], strlen(headers[2 * i + 1]));
    }
    tb__str(&b, body ? (const char *)body : "", body ? body_len : 0);
    tb__u32(&b, 0); /* fetch.timeout_ms */
    int h = tb__fetch(b.p, b.len);
    free(b.p);
    tb__start(h, TB__FETCH, (void *)cb, ud);
}

void tb_tx_begin(tb_tx_cb cb, void *ud)
{
    tb__start(tb__tx_begin(), TB__TX, (void *)cb, ud);
}

void tb_tx_query(uint32_t tx, const char *sql, const tb_value *params, int nparams, tb_rows_cb cb,
                 void *ud)
{
    tb__start(tb__sql_call(tx, 0, sql, params, nparams), TB__ROWS, (void *)cb, ud);
}

void tb_tx_execute(uint32_t tx, const char *sql, const tb_value *params, int nparams,
                   tb_changed_cb cb, void *ud)
{
    tb__start(tb__sql_call(tx, 1, sql, params, nparams), TB__CHANGED, (void *)cb, ud);
}

void tb_tx_commit(uint32_t tx, tb_done_cb cb, void *ud)
{
    tb__start(tb__tx_end(tx, 1), TB__DONE, (void *)cb, ud);
}

void tb_tx_rollback(uint32_t tx, tb_done_cb cb, void *ud)
{
    tb__start(tb__tx_end(tx, 0), TB__DONE, (void *)cb, ud);
}

void tb_sleep(uint32_t ms, tb_done_cb cb, void *ud)
{
    tb__start(tb__timer(ms), TB__DONE, (void *)cb, ud);
}

void tb_read_file(const char *path, tb_bytes_cb cb, void *ud)
{
    tb__start(tb__read_file(path, strlen(path)), TB__BYTES, (void *)cb, ud);
}

const tb_value *tb_rows_get(const tb_rows *rows, int r, int c)
{
    return &rows->values[(size_t)r * (size_t)rows->ncols + (size_t)c];
}

tb_value tb_null(void) { tb_value v = {0}; return v; }
tb_value tb_int(int64_t i) { tb_value v = {0}; v.type = TB_INTEGER; v.i = i; return v; }
tb_value tb_real(double r) { tb_value v = {0}; v.type = TB_REAL; v.r = r; return v; }
tb_value tb_text(const char *s) { tb_value v = {0}; v.type = TB_TEXT; v.s = s; v.len = strlen(s); return v; }
tb_value tb_blob(const void *p, size_t len) { tb_value v = {0}; v.type = TB_BLOB; v.s = (const char *)p; v.len = len; return v; }

/* ---- jobs ---- */

struct tb_run {
    int id;
    const char *name;
};

TB_EXPORT(trail_job) void tb__trail_job(int id, int job)
{
    tb_run *run = (tb_run *)malloc(sizeof *run);
    run->id = id;
    run->name = job >= 0 && (size_t)job < tb__njobs ? tb__jobs[job].name : "";
    if (job < 0 || (size_t)job >= tb__njobs) {
        tb_run_done(run, "no such job");
        return;
    }
    tb__jobs[job].fn(run);
}

const char *tb_run_name(const tb_run *run) { return run->name; }

void tb_run_done(tb_run *run, const char *error)
{
    tb__job_done(run->id, error == NULL, error ? error : "", error ? strlen(error) : 0);
    free(run);
}

/* ---- the rest ---- */

void tb_log(int level, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        tb__log(level, small, (size_t)n);
        return;
    }
    char *big = (char *)malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tb__log(level, big, (size_t)n);
    free(big);
}

int64_t tb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A recursive-descent check of one JSON value (RFC 8259), at most 128 levels deep. */
static const char *tb__ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *tb__jvalue(const char *p, const char *e, int depth);

static const char *tb__jstring(const char *p, const char *e)
{
    if (p >= e || *p != '"') return NULL;
    for (p++; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++p >= e) return NULL;
            if (*p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++p >= e || tb__hex(*p) < 0) return NULL;
            } else if (!strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *tb__jnumber(const char *p, const char *e)
{
    if (p < e && *p == '-') p++;
    if (p >= e) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *tb__jvalue(const char *p, const char *e, int depth)
{
    if (depth > 128) return NULL;
    p = tb__ws(p, e);
    if (p >= e) return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int object = *p == '{';
        p = tb__ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (object) {
                p = tb__jstring(tb__ws(p, e), e);
                if (p == NULL) return NULL;
                p = tb__ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            p = tb__jvalue(p, e, depth + 1);
            if (p == NULL) return NULL;
            p = tb__ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == close) return p + 1;
            return NULL;
        }
    }
    if (*p == '"') return tb__jstring(p, e);
    if ((size_t)(e - p) >= 4 && memcmp(p, "true", 4) == 0) return p + 4;
    if ((size_t)(e - p) >= 5 && memcmp(p, "false", 5) == 0) return p + 5;
    if ((size_t)(e - p) >= 4 && memcmp(p, "null", 4) == 0) return p + 4;
    return tb__jnumber(p, e);
}

int tb_json_valid(const char *text, size_t len)
{
    const char *e = text + len, *p = tb__jvalue(text, e, 0);
    return p != NULL && tb__ws(p, e) == e;
}

/* ---- record hooks ---- */

struct tb_hook {
    const char *ctx;
    size_t ctx_len;
    const char *record;
    size_t record_len;
    char *api, *event, *id, *user_id, *user_email;
    int answered;
};

/* A string member of (obj, len) decoded, or NULL. */
static char *tb__member_str(const char *obj, size_t len, const char *key)
{
    size_t vlen;
    const char *v = tb_json_get(obj, len, key, &vlen);
    return v ? tb_json_string(v, vlen) : NULL;
}

TB_EXPORT(trail_record_hook) void tb__trail_record_hook(int index, void *p, size_t len)
{
    tb_hook h;
    memset(&h, 0, sizeof h);
    h.ctx = (const char *)p;
    h.ctx_len = len;
    h.record = tb_json_get(h.ctx, len, "record", &h.record_len);
    if (h.record == NULL) {
        h.record = "{}";
        h.record_len = 2;
    }
    h.api = tb__member_str(h.ctx, len, "api");
    h.event = tb__member_str(h.ctx, len, "event");
    h.id = tb__member_str(h.ctx, len, "id");
    size_t ulen;
    const char *user = tb_json_get(h.ctx, len, "user", &ulen);
    if (user) {
        h.user_id = tb__member_str(user, ulen, "id");
        h.user_email = tb__member_str(user, ulen, "email");
    }
    tb__pending *before = tb__waiting;
    if (index >= 0 && (size_t)index < tb__nhooks)
        tb__hooks[index].fn(&h);
    else
        tb_hook_reject(&h, 500, "no such record hook");
    /* calls the hook left waiting are forgotten: trail released them and fails the write */
    int left = 0;
    while (tb__waiting != before && tb__waiting != NULL) {
        tb__pending *w = tb__waiting;
        tb__waiting = w->next;
        tb__release(w->handle);
        free(w);
        left = 1;
    }
    if (!h.answered && !left) tb__hook_result(0, "", 0);
    free(h.api);
    free(h.event);
    free(h.id);
    free(h.user_id);
    free(h.user_email);
    free(p);
}

const char *tb_hook_api(const tb_hook *hook) { return hook->api ? hook->api : ""; }
const char *tb_hook_event(const tb_hook *hook) { return hook->event ? hook->event : ""; }
const char *tb_hook_id(const tb_hook *hook) { return hook->id; }
const char *tb_hook_user_id(const tb_hook *hook) { return hook->user_id; }
const char *tb_hook_user_email(const tb_hook *hook) { return hook->user_email; }

const char *tb_hook_record(const tb_hook *hook, size_t *len)
{
    if (len) *len = hook->record_len;
    return hook->record;
}

const char *tb_hook_context(const tb_hook *hook, size_t *len)
{
    if (len) *len = hook->ctx_len;
    return hook->ctx;
}

void tb_hook_set_record(tb_hook *hook, const char *json)
{
    if (hook->answered) return;
    hook->answered = 1;
    tb__hook_result(0, json, strlen(json));
}

void tb_hook_reject(tb_hook *hook, int status, const char *message)
{
    if (hook->answered) return;
    hook->answered = 1;
    tb__hook_result(status, message, strlen(message));
}

const char *tb_json_get(const char *obj, size_t len, const char *key, size_t *vlen)
{
    const char *e = obj + len, *p = tb__ws(obj, e);
    size_t klen = strlen(key);
    if (p >= e || *p != '{') return NULL;
    p = tb__ws(p + 1, e);
    if (p < e && *p == '}') return NULL;
    for (;;) {
        const char *k = tb__ws(p, e), *kend = tb__jstring(k, e);
        if (kend == NULL) return NULL;
        p = tb__ws(kend, e);
        if (p >= e || *p != ':') return NULL;
        const char *v = tb__ws(p + 1, e), *vend = tb__jvalue(v, e, 1);
        if (vend == NULL) return NULL;
        /* keys are compared as written: trail writes them without escapes */
        if ((size_t)(kend - k) == klen + 2 && memcmp(k + 1, key, klen) == 0) {
            if (vlen) *vlen = (size_t)(vend - v);
            return v;
        }
        p = tb__ws(vend, e);
        if (p < e && *p == ',') {
            p++;
            continue;
        }
        return NULL;
    }
}

static void tb__utf8(tb__buf *b, uint32_t c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | c >> 6);
        u[1] = (char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xe0 | c >> 12);
        u[1] = (char)(0x80 | (c >> 6 & 0x3f));
        u[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | c >> 18);
        u[1] = (char)(0x80 | (c >> 12 & 0x3f));
        u[2] = (char)(0x80 | (c >> 6 & 0x3f));
        u[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    }
    tb__put(b, u, n);
}

static uint32_t tb__hex4(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 4 | (uint32_t)tb__hex(p[i]);
    return v;
}

char *tb_json_string(const char *v, size_t len)
{
    const char *e = v + len;
    if (tb__jstring(v, e) != e) return NULL;
    tb__buf b = {0};
    tb__put(&b, "", 0);
    for (const char *p = v + 1; p < e - 1; p++) {
        if (*p != '\\') {
            tb__put(&b, p, 1);
            continue;
        }
        p++;
        switch (*p) {
        case 'b': tb__put(&b, "\b", 1); break;
        case 'f': tb__put(&b, "\f", 1); break;
        case 'n': tb__put(&b, "\n", 1); break;
        case 'r': tb__put(&b, "\r", 1); break;
        case 't': tb__put(&b, "\t", 1); break;
        case 'u': {
            uint32_t c = tb__hex4(p + 1);
            p += 4;
            if (c >= 0xd800 && c < 0xdc00 && e - 1 - p > 6 && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo = tb__hex4(p + 3);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (c >= 0xd800 && c < 0xe000) c = 0xfffd; /* a lone surrogate */
            tb__utf8(&b, c);
            break;
        }
        default: tb__put(&b, p, 1); break; /* \" \\ \/ */
        }
    }
    return b.p;
}

#endif /* TRAILBASE_IMPLEMENTATION */
#endif /* TRAILBASE_H */
