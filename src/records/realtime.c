/* records/realtime.c: subscriptions to a Record API's changes, streamed as Server-Sent Events.
 *
 * DESIGN: every worker's connection carries three SQLite hooks (rec_db_attach). The pre-update
 * hook copies the values of each inserted, updated or deleted row of a table that a subscribable
 * API serves, while anyone subscribes at all (one atomic load otherwise): the Record API's own
 * writes, guests' execute() and jobs all run on these connections. The rollback hook drops what
 * was captured; the WAL hook, which SQLite calls once a transaction has committed, publishes it.
 * (The WAL hook replaces SQLite's automatic checkpoint, so it checkpoints as that did, passively
 * at 1,000 pages.)
 *
 * Publishing hands each event (immutable, refcounted) to the inbox of every worker that has a
 * subscriber to its API, under the hub's one mutex, and posts a wake-up to that worker only when
 * its inbox was empty. The worker then applies the API's read rule per event and per subscriber,
 * in a statement over the event's values (so a subscriber gets exactly what a read would give
 * it at that moment), and writes `data: {"Insert":{...},"seq":N}` to each subscriber allowed.
 * Subscribers are worker-local (their connection is), so nothing else is shared.
 *
 * Bounds: a subscriber whose connection has more than REC_SUB_MAX_PENDING bytes unsent gets an
 * error event saying so and its stream ends; a worker whose inbox holds REC_INBOX_MAX events
 * drops the rest and ends its subscribers' streams with a loss event. An idle subscriber costs
 * its connection and this struct; one timer per worker sends a comment to every subscriber when
 * it has been REC_PING_MS without one, so that dead peers and proxies notice. */
/* sqlite3.h declares the pre-update hook only for builds that enable it, as the Makefile's
 * SQLITE_OPTS does for the SQLite compiled into trail. */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "records/records_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/appdb.h"
#include "db/db.h"
#include "http/http.h"
#include "loop/loop.h"

enum { EV_INSERT = REC_EV_INSERT, EV_UPDATE = REC_EV_UPDATE, EV_DELETE = REC_EV_DELETE };

struct rec_event {
    atomic_int refs;
    const rec_api *api;
    int op;
    rec_value *vals; /* api->ncols; bytes in the same allocation */
};

typedef struct rec_slot rec_slot;

typedef struct rec_sub {
    struct rec_sub *prev, *next;
    rec_slot *slot;
    const rec_api *api;
    http_response *res;
    rec_user user;
    bool all;     /* subscribe/ *: every record */
    rec_value id; /* else the record's id */
    uint8_t idbuf[64];
    int64_t seq;
    /* The statement that decides whether an event reaches the subscriber: the read rule and the
     * filter[...] of the subscription over the event's row (?1 the user, ?2.. the row's columns,
     * then fvals); NULL when there is neither. */
    char *pred;
    rec_value *fvals;
    int nfvals;
} rec_sub;

/* One worker's share of the hub. Created on its first subscriber, kept until the hub is freed. */
struct rec_slot {
    struct rec_hub *hub;
    loop *loop;  /* the worker's */
    db_conn *db; /* the worker's connection */
    /* owning worker only */
    rec_sub *subs;
    size_t nsubs;
    loop_timer ping;
    bool ping_init;
    /* hub->mu */
    size_t *count; /* subscribers per API */
    rec_event **inbox;
    size_t ninbox, capinbox;
    bool posted, lost;
};

typedef struct rec_hub {
    const rec_set *set;
    pthread_mutex_t mu;
    rec_slot **slots;
    size_t nslots;
    atomic_long total;  /* subscribers anywhere: the hooks capture nothing while it is 0 */
    atomic_bool remote; /* cluster mode: events come from the cluster's feed, not the hooks */
} rec_hub;

/* What one connection captured in its open transaction. */
typedef struct rec_capture {
    rec_hub *hub;
    rec_event **ev;
    size_t n, cap;
} rec_capture;

static void event_unref(rec_event *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) tr_free(e);
}

rec_hub *rec__hub_new(const rec_set *s)
{
    bool any = false;
    for (size_t i = 0; i < s->napis; i++)
        any = any || s->apis[i].subscriptions;
    if (!any) return NULL;
    rec_hub *h = tr_calloc(1, sizeof *h);
    h->set = s;
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void rec__hub_free(rec_hub *h)
{
    if (h == NULL) return;
    for (size_t i = 0; i < h->nslots; i++) {
        rec_slot *sl = h->slots[i];
        for (size_t k = 0; k < sl->ninbox; k++)
            event_unref(sl->inbox[k]);
        tr_free(sl->inbox);
        tr_free(sl->count);
        tr_free(sl);
    }
    tr_free(h->slots);
    pthread_mutex_destroy(&h->mu);
    tr_free(h);
}

/* ---- capture (on the writing connection's thread) ---- */

/* The row being changed as an event: its values as SQLite's pre-update hook has them (borrowed
 * for the call), copied by rec__event_new(). */
static rec_event *event_new(const rec_api *api, int op, sqlite3 *db, bool old)
{
    int n = sqlite3_preupdate_count(db);
    rec_value *vals = tr_calloc(api->ncols ? api->ncols : 1, sizeof *vals);
    for (size_t i = 0; i < api->ncols; i++) {
        sqlite3_value *v = NULL;
        int t = api->cols[i].tcol;
        vals[i].type = SQLITE_NULL;
        if (t < 0 || t >= n ||
            (old ? sqlite3_preupdate_old(db, t, &v) : sqlite3_preupdate_new(db, t, &v)) !=
                SQLITE_OK ||
            v == NULL)
            continue;
        rec_value *o = &vals[i];
        o->type = sqlite3_value_type(v);
        if (o->type == SQLITE_INTEGER) o->i = sqlite3_value_int64(v);
        if (o->type == SQLITE_FLOAT) o->d = sqlite3_value_double(v);
        if (o->type == SQLITE_TEXT || o->type == SQLITE_BLOB) {
            o->p = o->type == SQLITE_TEXT ? (const char *)sqlite3_value_text(v)
                                          : (const char *)sqlite3_value_blob(v);
            o->n = (size_t)sqlite3_value_bytes(v);
        }
    }
    rec_event *e = rec__event_new(api, op, vals);
    tr_free(vals);
    return e;
}

static void on_preupdate(void *ud, sqlite3 *db, int op, const char *zdb, const char *table,
                         sqlite3_int64 k1, sqlite3_int64 k2)
{
    (void)k1;
    (void)k2;
    rec_capture *cap = ud;
    if (atomic_load_explicit(&cap->hub->total, memory_order_relaxed) == 0) return;
    /* In cluster mode the node's own file is a schema mirror: its rows are not the application's,
     * and every write of the application's reaches the subscribers through the feed. */
    if (atomic_load_explicit(&cap->hub->remote, memory_order_relaxed)) return;
    if (strcmp(zdb, "main") != 0) return;
    const rec_set *s = cap->hub->set;
    for (size_t i = 0; i < s->napis; i++) {
        const rec_api *api = &s->apis[i];
        if (!api->subscriptions || api->is_view || strcmp(api->table, table) != 0) continue;
        int kind = op == SQLITE_INSERT ? EV_INSERT : op == SQLITE_DELETE ? EV_DELETE : EV_UPDATE;
        rec_event *e = event_new(api, kind, db, kind == EV_DELETE);
        if (cap->n == cap->cap) {
            cap->cap = cap->cap ? cap->cap * 2 : 8;
            cap->ev = tr_realloc(cap->ev, cap->cap * sizeof *cap->ev);
        }
        cap->ev[cap->n++] = e;
    }
}

static void capture_drop(rec_capture *cap)
{
    for (size_t i = 0; i < cap->n; i++)
        event_unref(cap->ev[i]);
    cap->n = 0;
}

static void on_rollback(void *ud)
{
    capture_drop(ud);
}

static void deliver(loop *l, void *arg);

/* Hands the committed events evs[0..n) to every worker with a subscriber to their API (each
 * worker takes a reference of its own; the caller keeps its own). */
static void publish_events(rec_hub *h, rec_event *const *evs, size_t n)
{
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        rec_event *e = evs[i];
        size_t ai = (size_t)(e->api - h->set->apis);
        for (size_t k = 0; k < h->nslots; k++) {
            rec_slot *sl = h->slots[k];
            if (sl->count[ai] == 0) continue;
            if (sl->ninbox >= REC_INBOX_MAX) {
                sl->lost = true;
            } else {
                if (sl->ninbox == sl->capinbox) {
                    sl->capinbox = sl->capinbox ? sl->capinbox * 2 : 16;
                    sl->inbox = tr_realloc(sl->inbox, sl->capinbox * sizeof *sl->inbox);
                }
                atomic_fetch_add(&e->refs, 1);
                sl->inbox[sl->ninbox++] = e;
            }
            if (!sl->posted) {
                sl->posted = true;
                loop_post(sl->loop, deliver, sl);
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
}

static void publish(rec_capture *cap)
{
    publish_events(cap->hub, cap->ev, cap->n);
    capture_drop(cap);
}

/* ---- events from the cluster's feed (records/cluster_feed.c) ---- */

rec_event *rec__event_new(const rec_api *api, int op, const rec_value *vals)
{
    size_t bytes = sizeof(rec_event) + api->ncols * sizeof(rec_value);
    for (size_t i = 0; vals && i < api->ncols; i++)
        if (vals[i].type == SQLITE_TEXT || vals[i].type == SQLITE_BLOB) bytes += vals[i].n + 1;
    rec_event *e = tr_malloc(bytes);
    atomic_init(&e->refs, 1);
    e->api = api;
    e->op = op;
    e->vals = (rec_value *)(e + 1);
    char *p = (char *)(e->vals + api->ncols);
    for (size_t i = 0; i < api->ncols; i++) {
        rec_value *o = &e->vals[i];
        *o = vals ? vals[i] : (rec_value){.type = SQLITE_NULL};
        if (o->type == SQLITE_TEXT || o->type == SQLITE_BLOB) {
            if (o->n) memcpy(p, vals[i].p, o->n);
            p[o->n] = '\0';
            o->p = p;
            p += o->n + 1;
        } else {
            o->p = NULL;
            o->n = 0;
        }
    }
    return e;
}

void rec__hub_publish(rec_hub *h, rec_event **evs, size_t n)
{
    publish_events(h, evs, n);
    for (size_t i = 0; i < n; i++)
        event_unref(evs[i]);
}

void rec__hub_set_remote(rec_hub *h)
{
    atomic_store(&h->remote, true);
}

bool rec__hub_remote(const rec_hub *h)
{
    return h && atomic_load(&h->remote);
}

long rec__hub_subscribers(rec_hub *h)
{
    return atomic_load(&h->total);
}

void rec__hub_lost(rec_hub *h)
{
    pthread_mutex_lock(&h->mu);
    for (size_t k = 0; k < h->nslots; k++) {
        rec_slot *sl = h->slots[k];
        bool any = false;
        for (size_t a = 0; a < h->set->napis; a++)
            any = any || sl->count[a] > 0;
        if (!any) continue;
        sl->lost = true;
        if (!sl->posted) {
            sl->posted = true;
            loop_post(sl->loop, deliver, sl);
        }
    }
    pthread_mutex_unlock(&h->mu);
}

static int on_wal(void *ud, sqlite3 *db, const char *zdb, int pages)
{
    rec_capture *cap = ud;
    if (cap->n) publish(cap);
    /* what SQLite's automatic checkpoint did before this hook replaced it */
    if (pages >= 1000) sqlite3_wal_checkpoint_v2(db, zdb, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static void capture_free(void *p)
{
    rec_capture *cap = p;
    capture_drop(cap);
    tr_free(cap->ev);
    tr_free(cap);
}

void rec_db_attach(db_conn *db, void *ud)
{
    const rec_set *s = ud;
    if (s == NULL || s->hub == NULL || db == NULL) return;
    sqlite3 *h = db_handle(db);
    rec_capture *cap = tr_calloc(1, sizeof *cap);
    cap->hub = s->hub;
    sqlite3_set_clientdata(h, "trail.records", cap, capture_free);
    sqlite3_preupdate_hook(h, on_preupdate, cap);
    sqlite3_rollback_hook(h, on_rollback, cap);
    sqlite3_wal_hook(h, on_wal, cap);
}

/* ---- subscribers (on their worker) ---- */

static void sub_free(rec_sub *sub)
{
    for (int i = 0; i < sub->nfvals; i++)
        tr_free((void *)sub->fvals[i].p);
    tr_free(sub->fvals);
    tr_free(sub->pred);
    tr_free(sub);
}

/* Builds sub->pred from the API's read rule and the subscription's filters (c: the subscribe
 * request); -1 with c->err set for a malformed filter. */
static int sub_predicate(rec_ctx *c, rec_sub *sub, const rec_qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    bool filters = false;
    for (size_t i = 0; i < np; i++)
        filters |= strncmp(ps[i].key, "filter", 6) == 0;
    if (api->rules[REC_OP_READ] == NULL && !filters) return 0;
    rec__user_bind(c);
    tr_buf_append_str(&c->sql, "SELECT 1 FROM (SELECT ?1 AS id) AS _USER_, (SELECT ");
    rec_value null = {.type = SQLITE_NULL};
    for (size_t i = 0; i < api->ncols; i++) {
        if (i) tr_buf_append_str(&c->sql, ", ");
        rec__bind_place(c, &null); /* the event's column i */
        tr_buf_printf(&c->sql, " AS %s", api->cols[i].quoted);
    }
    tr_buf_append_str(&c->sql, ") AS _ROW_");
    rec__where_rule(c, REC_OP_READ);
    tr_buf_append_str(&c->sql, " AND ");
    int first = c->nbinds;
    if (rec__filter_sql(c, ps, np) < 0) return -1;
    sub->pred = tr_strdup(c->sql.data);
    sub->nfvals = c->nbinds - first;
    sub->fvals = tr_calloc((size_t)sub->nfvals + 1, sizeof *sub->fvals);
    for (int i = 0; i < sub->nfvals; i++) {
        rec_value v = c->binds[first + i];
        if (v.type == SQLITE_TEXT || v.type == SQLITE_BLOB) {
            char *copy = tr_malloc(v.n + 1);
            memcpy(copy, v.p, v.n);
            v.p = copy;
        } else {
            v.p = NULL;
        }
        sub->fvals[i] = v;
    }
    return 0;
}

/* Whether the event reaches sub: its read rule and filters hold for the event's row. */
static int sub_wants(const rec_sub *sub, const rec_event *e, sqlite3 *db, bool *out)
{
    *out = true;
    if (sub->pred == NULL) return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sub->pred, -1, &st, NULL) != SQLITE_OK) return TR_ESQL;
    if (sub->user.signed_in)
        sqlite3_bind_blob(st, 1, sub->user.id, sizeof sub->user.id, SQLITE_STATIC);
    int n = (int)e->api->ncols;
    for (int i = 0; i < n; i++)
        rec__bind(st, i + 2, &e->vals[i]);
    for (int i = 0; i < sub->nfvals; i++)
        rec__bind(st, n + 2 + i, &sub->fvals[i]);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return TR_ESQL;
    *out = rc == SQLITE_ROW;
    return 0;
}

static void sub_unlink(rec_sub *sub)
{
    rec_slot *sl = sub->slot;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        sl->subs = sub->next;
    if (sub->next) sub->next->prev = sub->prev;
    sl->nsubs--;
    pthread_mutex_lock(&sl->hub->mu);
    sl->count[sub->api - sl->hub->set->apis]--;
    pthread_mutex_unlock(&sl->hub->mu);
    atomic_fetch_sub(&sl->hub->total, 1);
    if (sl->nsubs == 0 && sl->ping_init) loop_timer_stop(sl->loop, &sl->ping);
}

static void on_cancel(void *ud)
{
    rec_sub *sub = ud;
    sub_unlink(sub);
    sub_free(sub);
}

/* Ends a subscriber's stream with an error event (status: the reference's EventErrorStatus). */
static void sub_end(rec_sub *sub, int status, const char *msg)
{
    http_response *res = sub->res;
    sub_unlink(sub);
    if (msg != NULL) {
        tr_buf b = TR_BUF_INIT;
        tr_buf_printf(&b, "data: {\"Error\":{\"status\":%d,\"message\":", status);
        rec__json_str(&b, msg, strlen(msg));
        tr_buf_printf(&b, "},\"seq\":%lld}\n\n", (long long)++sub->seq);
        http_response_stream_write(res, b.data, b.len);
        tr_buf_free(&b);
    }
    sub_free(sub);
    http_response_stream_end(res);
}

static bool id_matches(const rec_sub *sub, const rec_event *e)
{
    if (sub->all) return true;
    const rec_value *v = &e->vals[e->api->pk];
    if (v->type != sub->id.type) return false;
    if (v->type == SQLITE_INTEGER) return v->i == sub->id.i;
    if (v->type == SQLITE_BLOB || v->type == SQLITE_TEXT)
        return v->n == sub->id.n && memcmp(v->p, sub->id.p, v->n) == 0;
    return false;
}

static void send_event(rec_sub *sub, const rec_event *e, sqlite3 *db)
{
    bool ok = false;
    if (sub_wants(sub, e, db, &ok) < 0) {
        tr_log_error("records %s: read rule or filter on an event: %s", e->api->name,
                     sqlite3_errmsg(db));
        return;
    }
    if (!ok) return;
    if (http_response_stream_pending(sub->res) > REC_SUB_MAX_PENDING) {
        sub_end(sub, 2, "the subscriber did not read its events fast enough; events were lost");
        return;
    }
    static const char *const names[] = {"Insert", "Update", "Delete"};
    tr_buf b = TR_BUF_INIT;
    tr_buf_printf(&b, "data: {\"%s\":{", names[e->op]);
    bool any = false;
    for (size_t i = 0; i < e->api->ncols; i++) {
        const rec_column *c = &e->api->cols[i];
        if (c->hidden) continue;
        if (any) tr_buf_append_char(&b, ',');
        any = true;
        rec__json_str(&b, c->name, strlen(c->name));
        tr_buf_append_char(&b, ':');
        rec__json_value(&b, &e->vals[i]);
    }
    tr_buf_printf(&b, "},\"seq\":%lld}\n\n", (long long)++sub->seq);
    int rc = http_response_stream_write(sub->res, b.data, b.len);
    tr_buf_free(&b);
    if (rc < 0) sub_end(sub, 0, NULL);
}

static void deliver(loop *l, void *arg)
{
    (void)l;
    rec_slot *sl = arg;
    rec_hub *h = sl->hub;
    pthread_mutex_lock(&h->mu);
    rec_event **evs = sl->inbox;
    size_t n = sl->ninbox;
    bool lost = sl->lost;
    sl->inbox = NULL;
    sl->ninbox = sl->capinbox = 0;
    sl->posted = false;
    sl->lost = false;
    pthread_mutex_unlock(&h->mu);
    db_conn *db = sl->db;
    for (size_t i = 0; i < n; i++) {
        rec_event *e = evs[i];
        for (rec_sub *sub = sl->subs, *next; sub && db; sub = next) {
            next = sub->next; /* sub may end here */
            if (sub->api != e->api) continue;
            if (e->op == REC_EV_LOST)
                sub_end(sub, 2,
                        "a change was too large for the cluster's realtime feed; events were "
                        "lost");
            else if (id_matches(sub, e))
                send_event(sub, e, db_handle(db));
        }
        event_unref(e);
    }
    tr_free(evs);
    if (lost)
        while (sl->subs)
            sub_end(sl->subs, 2, "the server dropped events for this worker's subscribers");
}

static void on_ping(loop *l, loop_timer *t)
{
    rec_slot *sl = (rec_slot *)((char *)t - offsetof(rec_slot, ping));
    for (rec_sub *sub = sl->subs, *next; sub; sub = next) {
        next = sub->next;
        if (http_response_stream_pending(sub->res) > REC_SUB_MAX_PENDING)
            sub_end(sub, 2, "the subscriber did not read its events fast enough");
        else if (http_response_stream_write(sub->res, ":\n\n", 3) < 0)
            sub_end(sub, 0, NULL);
    }
    if (sl->nsubs) loop_timer_start_at(l, t, loop_now_ns(l) + (uint64_t)REC_PING_MS * 1000000u);
}

static rec_slot *slot_for(rec_hub *h, const guest_env *env)
{
    pthread_mutex_lock(&h->mu);
    rec_slot *sl = NULL;
    for (size_t i = 0; i < h->nslots && !sl; i++)
        if (h->slots[i]->loop == env->loop) sl = h->slots[i];
    if (sl == NULL) {
        sl = tr_calloc(1, sizeof *sl);
        sl->hub = h;
        sl->loop = env->loop;
        sl->db = env->db;
        sl->count = tr_calloc(h->set->napis, sizeof *sl->count);
        h->slots = tr_realloc(h->slots, (h->nslots + 1) * sizeof *h->slots);
        h->slots[h->nslots++] = sl;
    }
    pthread_mutex_unlock(&h->mu);
    return sl;
}

void rec__subscribe(rec_ctx *c, const rec_qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    const http_request *req = c->req;
    http_response *res = c->res;
    const rec_user *u = &c->user;
    rec_hub *h = api->set->hub;
    if (!api->subscriptions || h == NULL || api->is_view || api->pk < 0)
        return http_response_send_error(res, 403, "subscriptions are not enabled for this API");
    const guest_env *env = rec__worker_env();
    if (env == NULL || env->db == NULL || env->loop == NULL)
        return http_response_send_error(res, 503, "no database");
    for (size_t i = 0; i < np; i++)
        if (strcmp(ps[i].key, "ws") == 0 && strcmp(ps[i].val, "false") != 0)
            return http_response_send_error(res, 400,
                                            "WebSocket subscriptions are not supported; "
                                            "subscribe with Server-Sent Events (no ?ws=true)");
    rec_sub *sub = tr_calloc(1, sizeof *sub);
    sub->api = api;
    sub->user = *u;
    sub->res = res;
    if (sub_predicate(c, sub, ps, np) < 0) {
        sub_free(sub);
        return http_response_send_error(res, 400, c->err);
    }
    if (req->is_head) {
        sub_free(sub);
        return http_response_send(res, 200, "text/event-stream", NULL, 0);
    }
    const http_slice *raw = http_request_param(req, "id");
    if (raw && raw->len == 1 && raw->ptr[0] == '*') {
        sub->all = true;
    } else {
        /* one record: it must exist and be readable now (in cluster mode: on the leader) */
        char id[64];
        rec_value v;
        const rec_column *pk = &api->cols[api->pk];
        if (raw == NULL || raw->len >= sizeof id || raw->len == 0) goto bad_id;
        memcpy(id, raw->ptr, raw->len);
        id[raw->len] = '\0';
        if (!rec__value_from_text(pk, id, raw->len, req->arena, &v) ||
            (v.type != SQLITE_INTEGER && v.type != SQLITE_BLOB) || v.n > sizeof sub->idbuf)
            goto bad_id;
        sub->id = v;
        if (v.type == SQLITE_BLOB) {
            memcpy(sub->idbuf, v.p, v.n);
            sub->id.p = (const char *)sub->idbuf;
        }
        tr_buf sql = TR_BUF_INIT;
        tr_buf_printf(&sql,
                      "SELECT 1 FROM (SELECT ?1 AS id) AS _USER_, %s AS _ROW_ WHERE (%s) AND "
                      "_ROW_.%s = ?2",
                      api->quoted, api->rules[REC_OP_READ] ? api->rules[REC_OP_READ] : "1",
                      pk->quoted);
        adb_stmt *st = NULL;
        int rc = adb_prepare(db_handle(env->db), sql.data, &st);
        tr_buf_free(&sql);
        if (rc == SQLITE_OK) {
            if (u->signed_in) adb_bind_blob(st, 1, u->id, sizeof u->id);
            rec__bind_adb(st, 2, &sub->id);
            rc = adb_step(st);
        }
        adb_finalize(st);
        if (rc != SQLITE_ROW) {
            sub_free(sub);
            bool cluster = adb_cluster_mode() && rc != SQLITE_DONE;
            return http_response_send_error(res,
                                            rc == SQLITE_DONE ? 404
                                            : cluster         ? 503
                                                              : 500,
                                            rc == SQLITE_DONE ? "record not found"
                                            : cluster ? "the cluster's database is not reachable "
                                                        "now; try again"
                                                      : "internal error");
        }
    }
    rec_slot *sl = slot_for(h, env);
    sub->slot = sl;
    sub->next = sl->subs;
    if (sl->subs) sl->subs->prev = sub;
    sl->subs = sub;
    sl->nsubs++;
    pthread_mutex_lock(&h->mu);
    sl->count[api - h->set->apis]++;
    pthread_mutex_unlock(&h->mu);
    atomic_fetch_add(&h->total, 1);
    loop *l = env->loop;
    if (!sl->ping_init) {
        loop_timer_init(&sl->ping, on_ping);
        sl->ping_init = true;
    }
    if (!loop_timer_active(&sl->ping))
        loop_timer_start_at(l, &sl->ping, loop_now_ns(l) + (uint64_t)REC_PING_MS * 1000000u);
    http_response_header(res, "Cache-Control", "no-cache", 8);
    http_response_on_cancel(res, on_cancel, sub);
    http_response_stream_begin(res, 200, "text/event-stream");
    /* a comment first, so that a client knows the subscription is in place */
    http_response_stream_write(res, ": subscribed\n\n", 14);
    return;
bad_id:
    sub_free(sub);
    http_response_send_error(res, 400, "invalid record id");
}
