/* records/handlers.c: the Record API's routes and what its endpoints share: the dispatcher
 * (caller, ACL, query string), the statement being built and its parameters, the answers to a
 * failed statement. The endpoints are in records/read.c (list, read, schema) and
 * records/write.c (create, update, delete, with the guests' record hooks around a write).
 *
 * DESIGN: each request builds one statement in its arena and runs it on the worker's connection,
 * synchronously (SQLite answers a lookup in microseconds). Statements that read or write the
 * application's tables go through cluster/appdb.h: on one node that is the SQLite call itself;
 * in cluster mode the statement is checked on the node's schema mirror and run on the cluster's
 * leader, the worker waiting for each round trip (a write's transaction is one transaction
 * there). Statements that touch no table (json_each over a body) stay on the local connection.
 * A write that finds another connection's lock fails at once, before it did anything, and the
 * request runs again from the worker's loop (rec__run), so the worker never sleeps in SQLite's
 * busy handler (in cluster mode: in appdb's wait for the leader's lock). The
 * statement's text is assembled from the schema's quoted identifiers, the API's rules and "?N"
 * placeholders; a request contributes only values, bound as parameters (?1 is always the
 * caller's user id, the _USER_.id of the rules). Where a rule applies it sits in the statement:
 *
 *   list/read  SELECT ... FROM (SELECT ?1 AS id) AS _USER_, t AS _ROW_ WHERE (rule) AND ...
 *   create     INSERT INTO t (...) SELECT ... FROM _USER_, (SELECT ?.. AS c, ...) AS _REQ_
 *              WHERE (rule) RETURNING pk          -- no row back: the rule refused
 *   update     UPDATE t SET ... WHERE pk IN (SELECT _ROW_.pk FROM _USER_, t AS _ROW_, _REQ_
 *              WHERE _ROW_.pk = ? AND (rule)) RETURNING pk
 *   delete     DELETE FROM t WHERE pk IN (SELECT ... WHERE _ROW_.pk = ? AND (rule)) RETURNING pk
 *
 * so nothing can change between the check and the write. Columns whose names start with '_'
 * may be written but are never read, filtered, ordered or expanded on; excluded columns do not
 * exist for the API at all. Request bodies are parsed by SQLite's JSON functions on the same
 * connection (json_each), never by hand. */
#include "records/records_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "http/http.h"

void rec__send_json(rec_ctx *c, int status, tr_buf *body)
{
    http_response_send(c->res, status, "application/json", body->data, body->len);
}

void rec__fail(rec_ctx *c, int status, const char *msg)
{
    if (c->batch == NULL) return http_response_send_error(c->res, status, msg);
    if (c->batch->status != 0) return;
    c->batch->status = status;
    if (msg != c->err) snprintf(c->err, sizeof c->err, "%s", msg);
}

void rec__ok(rec_ctx *c)
{
    if (c->batch != NULL)
        c->batch->status = 200;
    else
        http_response_send(c->res, 200, NULL, NULL, 0);
}

bool rec__answered(const rec_ctx *c)
{
    return c->busy || (c->batch ? c->batch->status != 0 : http_response_done(c->res));
}

void rec__busy(rec_ctx *c, const char *msg)
{
    if (c->wait == REC_WAIT_PARK)
        c->busy = true;
    else
        rec__fail(c, 503, msg);
}

void rec__nowait(bool on)
{
    const guest_env *env = rec__worker_env();
    if (env && env->sql) guest_sql_set_nowait(env->sql, on);
    /* cluster mode: another connection's lock on the leader parks the request as on one node;
     * only the wait for a leader (an election) still blocks, for at most ADB_LEADER_WAIT_MS */
    adb_set_busy_wait(on ? 0 : DB_BUSY_TIMEOUT_MS);
}

/* ---- waiting for the database without blocking the worker ---- */

typedef struct rec_wait {
    loop_timer t;
    loop *l;
    const http_request *req;
    http_response *res;
    rec_attempt_fn fn;
    const void *ud;
    int what;
    uint64_t give_up_ns;
    uint64_t delay_ms;
} rec_wait;

static void wait_cancel(void *ud)
{
    rec_wait *w = ud;
    loop_timer_stop(w->l, &w->t);
    tr_free(w);
}

static void wait_retry(loop *l, loop_timer *t)
{
    rec_wait *w = TR_CONTAINER_OF(t, rec_wait, t);
    int wait = tr_now_ns() >= w->give_up_ns ? REC_WAIT_LAST : REC_WAIT_PARK;
    if (w->fn(w->req, w->res, w->ud, w->what, wait)) {
        tr_free(w);
        return;
    }
    w->delay_ms = w->delay_ms * 2 > 50 ? 50 : w->delay_ms * 2;
    loop_timer_start_at(l, t, loop_now_ns(l) + w->delay_ms * 1000000u);
}

void rec__run(const http_request *req, http_response *res, rec_attempt_fn fn, const void *ud,
              int what)
{
    const guest_env *env = rec__worker_env();
    loop *l = env ? env->loop : NULL;
    if (fn(req, res, ud, what, l ? REC_WAIT_PARK : REC_WAIT_BLOCK)) return;
    rec_wait *w = tr_calloc(1, sizeof *w);
    *w = (rec_wait){.l = l,
                    .req = req,
                    .res = res,
                    .fn = fn,
                    .ud = ud,
                    .what = what,
                    .give_up_ns = tr_now_ns() + (uint64_t)DB_BUSY_TIMEOUT_MS * 1000000u,
                    .delay_ms = 2};
    loop_timer_init(&w->t, wait_retry);
    http_response_on_cancel(res, wait_cancel, w);
    loop_timer_start_at(l, &w->t, loop_now_ns(l) + w->delay_ms * 1000000u);
}

/* Adds a parameter; returns its number (the N of ?N). */
int rec__bind_add(rec_ctx *c, const rec_value *v)
{
    if (c->nbinds == c->capbinds) {
        int cap = c->capbinds ? c->capbinds * 2 : 16;
        rec_value *nb = tr_arena_alloc(c->a, (size_t)cap * sizeof *nb);
        if (c->nbinds) memcpy(nb, c->binds, (size_t)c->nbinds * sizeof *nb);
        c->binds = nb;
        c->capbinds = cap;
    }
    c->binds[c->nbinds++] = *v;
    return c->nbinds;
}

void rec__bind_place(rec_ctx *c, const rec_value *v)
{
    tr_buf_printf(&c->sql, "?%d", rec__bind_add(c, v));
}

bool rec__allowed(const rec_api *api, const rec_user *u, uint32_t perm)
{
    uint32_t acl = api->acl_world | (u->signed_in ? api->acl_authenticated : 0);
    return (acl & perm) != 0;
}

/* Prepares c->sql and binds every parameter it names. */
int rec__prepare(rec_ctx *c, const char *sql, adb_stmt **out)
{
    adb_stmt *st = NULL;
    int rc = adb_prepare(c->db, sql, &st);
    if (rc != SQLITE_OK) return rc;
    int n = adb_bind_parameter_count(st);
    for (int i = 0; i < n && i < c->nbinds; i++)
        rec__bind_adb(st, i + 1, &c->binds[i]);
    *out = st;
    return SQLITE_OK;
}

bool rec__cluster_down(int rc, sqlite3 *db)
{
    /* appdb says SQLITE_BUSY for another connection's lock and for no leader: the message tells */
    static const char no_leader[] = "no leader of the cluster";
    return adb_cluster_mode() && (rc & 0xff) == SQLITE_BUSY &&
           strncmp(adb_errmsg(db), no_leader, sizeof no_leader - 1) == 0;
}

/* Cluster mode: answers the failures that are the cluster's rather than the statement's (503:
 * retry); false for the others. */
static bool fail_cluster(rec_ctx *c, int rc, const char *msg)
{
    int code = rc & 0xff;
    if (rec__cluster_down(rc, c->db)) {
        /* the wait for an election is over: parking would wait for it again */
        snprintf(c->err, sizeof c->err, "the cluster is unavailable: %.400s", msg);
        rec__fail(c, 503, c->err);
        return true;
    }
    if (code == SQLITE_IOERR || code == SQLITE_ABORT || code == SQLITE_INTERRUPT) {
        tr_log_warn("records %s: %s", c->api->name, msg);
        snprintf(c->err, sizeof c->err, "the cluster could not run the statement: %.400s", msg);
        rec__fail(c, 503, c->err);
        return true;
    }
    return false;
}

/* Answers a failed statement: constraint failures are the client's (400, 409 for a duplicate
 * key), a lock held too long is 503, anything else is ours (500, logged). */
void rec__fail_sql(rec_ctx *c, int rc)
{
    const char *msg = adb_errmsg(c->db);
    int ext = adb_extended_errcode(c->db);
    if (adb_cluster_mode() && fail_cluster(c, rc, msg)) return;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        bool dup = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY;
        rec__fail(c, dup ? 409 : 400, msg);
        return;
    }
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        rec__busy(c, "the database is busy; retry");
        return;
    }
    if ((rc & 0xff) == SQLITE_TOOBIG || (rc & 0xff) == SQLITE_RANGE) {
        rec__fail(c, 400, msg);
        return;
    }
    tr_log_error("records %s: %s (%s)", c->api->name, msg, c->sql.data ? c->sql.data : "");
    rec__fail(c, 500, "internal error");
}

/* ---- the query string ---- */

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent- and '+'-decodes s into the arena. False for a bad escape or a NUL byte. */
static bool url_decode(tr_arena *a, const char *s, size_t n, char **out, size_t *out_len)
{
    char *d = tr_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n) return false;
            int h = hexv(s[i + 1]), l = hexv(s[i + 2]);
            if (h < 0 || l < 0) return false;
            ch = (char)(h << 4 | l);
            i += 2;
        }
        if (ch == '\0') return false;
        d[o++] = ch;
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return true;
}

#define MAX_QPARAMS 128

/* Splits the query into at most MAX_QPARAMS decoded pairs. */
int rec__parse_query(rec_ctx *c, const char *q, size_t n, rec_qparam **out, size_t *nout)
{
    rec_qparam *ps = tr_arena_alloc(c->a, MAX_QPARAMS * sizeof *ps);
    size_t np = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            if (np == MAX_QPARAMS) {
                snprintf(c->err, sizeof c->err, "more than %d query parameters", MAX_QPARAMS);
                return -1;
            }
            size_t eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            rec_qparam *p = &ps[np++];
            if (!url_decode(c->a, q + i, eq - i, &p->key, &p->klen) ||
                !url_decode(c->a, eq < j ? q + eq + 1 : "", eq < j ? j - eq - 1 : 0, &p->val,
                            &p->vlen)) {
                snprintf(c->err, sizeof c->err, "malformed query string");
                return -1;
            }
        }
        i = j + 1;
    }
    *out = ps;
    *nout = np;
    return 0;
}

/* ---- what reads and writes share ---- */

void rec__user_bind(rec_ctx *c)
{
    rec_value u = {.type = SQLITE_NULL};
    if (c->user.signed_in)
        u = (rec_value){.type = SQLITE_BLOB, .p = (const char *)c->user.id, .n = sizeof c->user.id};
    rec__bind_add(c, &u); /* ?1 */
}

void rec__where_rule(rec_ctx *c, int op)
{
    const char *rule = c->api->rules[op];
    tr_buf_printf(&c->sql, " WHERE (%s)", rule ? rule : "1");
}

/* The record id of the path, converted by the id column's type. */
bool rec__path_id(rec_ctx *c, rec_value *out)
{
    char *s;
    size_t n;
    if (c->batch != NULL) {
        /* a batch's record_id: as it was in the JSON, not percent-encoded */
        if (c->batch->id == NULL || c->api->pk < 0) return false;
        s = tr_arena_strndup(c->a, c->batch->id, c->batch->id_len);
        n = c->batch->id_len;
        if (strlen(s) != n) return false;
    } else {
        const http_slice *raw = http_request_param(c->req, "id");
        if (raw == NULL || c->api->pk < 0 || !url_decode(c->a, raw->ptr, raw->len, &s, &n))
            return false;
    }
    const rec_column *pk = &c->api->cols[c->api->pk];
    if (!rec__value_from_text(pk, s, n, c->a, out)) return false;
    if (pk->type == REC_T_INTEGER && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0))
        return false;
    return true;
}

/* ---- dispatch ---- */

enum { H_LIST, H_CREATE, H_READ, H_UPDATE, H_DELETE, H_SCHEMA, H_SUBSCRIBE };

static const uint32_t needs[] = {
    [H_LIST] = CFG_PERM_READ,      [H_CREATE] = CFG_PERM_CREATE, [H_READ] = CFG_PERM_READ,
    [H_UPDATE] = CFG_PERM_UPDATE,  [H_DELETE] = CFG_PERM_DELETE, [H_SCHEMA] = CFG_PERM_SCHEMA,
    [H_SUBSCRIBE] = CFG_PERM_READ,
};

/* One run of a Record API request (rec_attempt_fn); ud: the API. */
static bool attempt(const http_request *req, http_response *res, const void *ud, int what, int wait)
{
    const rec_api *api = ud;
    rec_ctx c = {.api = api, .req = req, .res = res, .a = req->arena};
    if (api->set->who != NULL) {
        const char *why = NULL;
        int st = api->set->who(req, &c.user, &why);
        if (st != 0) {
            http_response_send_error(res, st, why ? why : "unauthorized");
            return true;
        }
    }
    if (!rec__allowed(api, &c.user, needs[what])) {
        http_response_send_error(res, 403, "forbidden");
        return true;
    }
    const guest_env *env = rec__worker_env();
    db_conn *db = env ? env->db : NULL;
    if (db == NULL) {
        http_response_send_error(res, 503, "no database");
        return true;
    }
    c.db = db_handle(db);
    rec_qparam *ps = NULL;
    size_t np = 0;
    if ((what == H_LIST || what == H_READ || what == H_SUBSCRIBE) &&
        rec__parse_query(&c, req->query.ptr, req->query.len, &ps, &np) < 0) {
        http_response_send_error(res, 400, c.err);
        return true;
    }
    /* writes wait for the database on the loop; reads (WAL: never behind a writer) do not */
    bool write = what == H_CREATE || what == H_UPDATE || what == H_DELETE;
    c.wait = write ? wait : REC_WAIT_BLOCK;
    if (c.wait != REC_WAIT_BLOCK) rec__nowait(true);
    switch (what) {
    case H_SUBSCRIBE:
        rec__subscribe(&c, ps, np);
        break;
    case H_LIST:
        rec__list(&c, ps, np);
        break;
    case H_READ:
        rec__read(&c, ps, np);
        break;
    case H_CREATE:
        rec__create(&c);
        break;
    case H_UPDATE:
        rec__update(&c);
        break;
    case H_DELETE:
        rec__delete(&c);
        break;
    case H_SCHEMA:
        rec__schema(&c);
        break;
    }
    if (c.wait != REC_WAIT_BLOCK) rec__nowait(false);
    tr_buf_free(&c.sql);
    return !c.busy;
}

#define HANDLER(fn, what)                                                 \
    static void fn(const http_request *req, http_response *res, void *ud) \
    {                                                                     \
        rec__run(req, res, attempt, ud, what);                            \
    }
HANDLER(on_list, H_LIST)
HANDLER(on_create, H_CREATE)
HANDLER(on_read, H_READ)
HANDLER(on_update, H_UPDATE)
HANDLER(on_delete, H_DELETE)
HANDLER(on_schema, H_SCHEMA)
HANDLER(on_subscribe, H_SUBSCRIBE)

int rec_register_routes(const rec_set *s, http_router *r, tr_error *err)
{
    if (s && s->transactions && s->napis > 0) {
        int rc = http_router_add(r, "POST", REC_BATCH_PATH, rec__batch_handle, (void *)s, err);
        if (rc < 0) return rc;
    }
    for (size_t i = 0; s && i < s->napis; i++) {
        rec_api *api = &s->apis[i];
        struct {
            const char *method, *suffix;
            http_handler_fn fn;
        } routes[] = {
            {"GET", "", on_list},
            {"POST", "", on_create},
            {"GET", "/schema", on_schema},
            {"GET", "/:id", on_read},
            {"PATCH", "/:id", on_update},
            {"DELETE", "/:id", on_delete},
            {"GET", "/subscribe/:id", on_subscribe},
        };
        for (size_t k = 0; k < TR_ARRAY_LEN(routes); k++) {
            char *pat = tr_asprintf(REC_PATH_PREFIX "%s%s", api->name, routes[k].suffix);
            int rc = http_router_add(r, routes[k].method, pat, routes[k].fn, api, err);
            tr_free(pat);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

int rec_routes_cb(http_router *r, void *ud, tr_error *err)
{
    return rec_register_routes(ud, r, err);
}
