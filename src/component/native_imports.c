/* component/native_imports.c: the `trail` imports of compiled components (docs/guest-abi.md):
 * logs, the manifest, answers to requests and job runs, SQL statements and transactions, timers,
 * fetch, file reads, the results of host calls and their handles; and the few WASI functions
 * beyond the engine's.
 *
 * DESIGN: an import never calls the guest. One that starts a host call returns a handle at once
 * and marks it ready when the result is there; native_host.c's pump then delivers it by
 * `trail_complete` from the worker's loop. Everything the guest passes is checked here: its
 * pointers through wrt_mem_ptr(), its encodings by native_encoding.c's readers. Only the shared
 * objects call the imports, never the executable: this file is linked because native_host.c
 * frees and finds handles here, so the handles stay in this file.
 *
 * Statements run on the worker's connection through guest_sql_run_vals() with the same allow-list
 * as JS; one that must wait (a JS transaction holds the connection, or another connection holds
 * the write lock) is retried from the loop and never blocks the worker. In cluster mode a
 * statement is checked on that connection and sent to the cluster's leader by the worker's helper
 * thread (guest_sql_remote_vals(), guest/cluster.c); its handle is ready when the answer is back.
 * A transaction there holds a connection to the leader of its own: its BEGIN, statements and
 * COMMIT go through guest_sql_remote_tx_*(), each handle ready when the leader answered.
 *
 * Thread: owning worker only; a scratch instance (comp__native_load) on the loading thread. */
#include "component/native_internal.h"

#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "guest/fs.h"

/* ---- handles ---- */

void comp__native_handle_free(struct Z_trail_instance_t *ni, comp_native_handle *h)
{
    for (comp_native_handle **p = &ni->handles; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    ni->nhandles--;
    if (ni->env) loop_timer_stop(ni->env->loop, &h->timer);
    if (h->job && ni->env) guest_sql_job_cancel(ni->env->sql, h->job);
    tr_buf_free(&h->result);
    tr_buf_free(&h->params);
    tr_free(h->sql);
    tr_free(h);
}

comp_native_handle *comp__native_handle_find(struct Z_trail_instance_t *ni, uint32_t id)
{
    for (comp_native_handle *h = ni->handles; h; h = h->next)
        if (h->id == id && !h->released) return h;
    return NULL;
}

/* The guest is done with h: freed now, or when its transfer ends. */
static void handle_release(struct Z_trail_instance_t *ni, comp_native_handle *h)
{
    if (h->in_fetch)
        h->released = true;
    else
        comp__native_handle_free(ni, h);
}

static comp_native_handle *new_handle(struct Z_trail_instance_t *ni)
{
    if (ni->nhandles >= COMP_NATIVE_MAX_HANDLES) return NULL;
    comp_native_handle *h = tr_calloc(1, sizeof *h);
    h->ni = ni;
    h->in_hook = ni->in_hook;
    loop_timer_init(&h->timer, NULL); /* a zeroed timer would look active */
    h->id = ni->next_id++;
    if (ni->next_id == 0 || ni->next_id > INT32_MAX) ni->next_id = 1;
    h->next = ni->handles;
    ni->handles = h;
    ni->nhandles++;
    return h;
}

static void ready(struct Z_trail_instance_t *ni, comp_native_handle *h, bool ok)
{
    h->state = COMP_NATIVE_READY;
    h->ok = ok;
    h->notify = true;
    if (ni->env && ni->nat->complete && !loop_timer_active(&ni->pump))
        loop_timer_start(ni->env->loop, &ni->pump, 0);
}

static void ready_error(struct Z_trail_instance_t *ni, comp_native_handle *h, const char *msg)
{
    tr_buf_reset(&h->result);
    tr_buf_append_str(&h->result, msg);
    ready(ni, h, false);
}

/* ---- statements ---- */

/* Cluster mode: the leader's answer to h's BEGIN (the transaction's id) or COMMIT/ROLLBACK. */
static void remote_tx_done(void *ud, int rc, const jsg_val *out, const tr_error *err)
{
    comp_native_handle *h = ud;
    h->job = NULL;
    tr_buf_reset(&h->result);
    if (rc < 0)
        tr_buf_append_str(&h->result, err->msg);
    else if (h->begin)
        comp__put_u32(&h->result, (uint32_t)out->u.big);
    ready(h->ni, h, rc == 0);
}

/* Opens h's transaction now (in cluster mode: its BEGIN sent to the leader, h ready once
 * answered); false when it must wait. */
static bool run_begin(struct Z_trail_instance_t *ni, comp_native_handle *h)
{
    bool wait = false;
    uint32_t id = 0;
    tr_error err = {0};
    if (guest_sql_remote(ni->env->sql)) {
        int rc = guest_sql_remote_tx_begin(ni->env->sql, ni->env->loop, ni, &wait, remote_tx_done,
                                           h, &h->job, &err);
        if (rc == 0 && wait) return false;
        if (rc < 0) ready_error(ni, h, err.msg);
        return true;
    }
    int rc = guest_sql_tx_begin_for(ni->env->sql, ni->env->loop, ni, &wait, &id, &err);
    if (rc == 0 && wait) return false;
    tr_buf_reset(&h->result);
    if (rc < 0)
        tr_buf_append_str(&h->result, err.msg);
    else
        comp__put_u32(&h->result, id);
    ready(ni, h, rc == 0);
    return true;
}

/* h's result: a statement's answer (out: as guest_sql_run_vals() gives it) or its error. */
static void put_result(comp_native_handle *h, int rc, const jsg_val *out, const tr_error *err)
{
    tr_buf_reset(&h->result);
    if (rc < 0) {
        tr_buf_append_str(&h->result, err->msg);
    } else if (!h->rows) {
        comp__put_u64(&h->result, (uint64_t)out->u.big);
    } else {
        const jsg_val *names = &out->u.arr.items[0];
        comp__put_u32(&h->result, (uint32_t)names->u.arr.len);
        for (size_t i = 0; i < names->u.arr.len; i++)
            comp__put_str(&h->result, names->u.arr.items[i].u.str.ptr,
                          names->u.arr.items[i].u.str.len);
        comp__put_u32(&h->result, (uint32_t)(out->u.arr.len - 1));
        for (size_t i = 1; i < out->u.arr.len; i++)
            for (size_t k = 0; k < out->u.arr.items[i].u.arr.len; k++)
                comp__put_val(&h->result, &out->u.arr.items[i].u.arr.items[k]);
    }
}

/* Cluster mode: the leader's answer to h's statement, on the worker's loop. */
static void remote_done(void *ud, int rc, const jsg_val *out, const tr_error *err)
{
    comp_native_handle *h = ud;
    h->job = NULL;
    put_result(h, rc, out, err);
    ready(h->ni, h, rc == 0);
}

/* Cluster mode: checks h's statement on the local connection and sends it to the leader; h is
 * ready when the answer is back (or at once when the check refused it). Never waits. */
static void run_remote(struct Z_trail_instance_t *ni, comp_native_handle *h)
{
    tr_arena a;
    tr_arena_init(&a, 16384);
    comp_reader r = {(const unsigned char *)h->params.data, h->params.len, 0, false};
    jsg_val params;
    tr_error err = {0};
    int rc = !comp__get_params(&r, &a, &params)
                 ? tr_error_set(&err, TR_EINVAL, "malformed SQL parameters (docs/guest-abi.md)")
             : h->tx != 0
                 ? guest_sql_remote_tx_vals(ni->env->sql, ni, h->tx, h->rows, h->sql, h->sql_len,
                                            &params, ni->mod->limits.memory_limit, remote_done, h,
                                            &h->job, &err)
                 : guest_sql_remote_vals(ni->env->sql, h->rows, h->sql, h->sql_len, &params,
                                         ni->mod->limits.memory_limit, remote_done, h, &h->job,
                                         &err);
    tr_arena_deinit(&a);
    tr_free(h->sql);
    h->sql = NULL;
    tr_buf_free(&h->params);
    if (rc < 0) ready_error(ni, h, err.msg);
}

/* Runs h's statement now; false when it must wait (and then it is retried from the loop). */
static bool run_sql(struct Z_trail_instance_t *ni, comp_native_handle *h, uint64_t cpu_deadline_ns)
{
    if (h->begin) return run_begin(ni, h);
    guest_sql *s = ni->env->sql;
    tr_error err = {0};
    int rc = 0;
    if (guest_sql_remote(s)) { /* a transaction's too: on the connection it holds */
        run_remote(ni, h);
        return true;
    }
    if (h->tx != 0) {
        rc = guest_sql_tx_check(s, ni, h->tx, &err);
    } else if (guest_sql_must_wait(s) && !(ni->in_hook && guest_sql_in_host_tx(s))) {
        /* a before hook's statement runs at once, inside the write's transaction, which holds
         * the connection until the hook returns: there is nothing to wait for */
        return false;
    }
    tr_arena a;
    tr_arena_init(&a, 16384);
    comp_reader r = {(const unsigned char *)h->params.data, h->params.len, 0, false};
    jsg_val params, out = {0};
    if (rc == 0)
        rc = comp__get_params(&r, &a, &params)
                 ? guest_sql_run_vals(s, h->rows, h->sql, h->sql_len, &params, cpu_deadline_ns,
                                      ni->mod->limits.memory_limit, &a, &out, &err)
                 : tr_error_set(&err, TR_EINVAL, "malformed SQL parameters (docs/guest-abi.md)");
    if (h->tx != 0) guest_sql_tx_after_statement(s);
    if (rc < 0 && h->tx == 0 && guest_sql_busy(s)) {
        tr_arena_deinit(&a);
        return false;
    }
    put_result(h, rc, &out, &err);
    tr_arena_deinit(&a);
    tr_free(h->sql);
    h->sql = NULL;
    tr_buf_free(&h->params);
    ready(ni, h, rc == 0);
    return true;
}

/* The longest a statement or BEGIN waits for the worker's connection (a transaction of this
 * worker holds it); a transaction is rolled back after 30 s anyway. */
#define NATIVE_SQL_MAX_WAIT_MS 60000

/* A statement that waits: for a transaction of the worker to end, or for another connection's
 * lock (at most DB_BUSY_TIMEOUT_MS, as for JS). */
static void retry_sql(loop *l, loop_timer *t)
{
    comp_native_handle *h = (comp_native_handle *)t;
    struct Z_trail_instance_t *ni = h->ni;
    uint64_t budget = ni->mod->limits.cpu_budget_ms * 1000000u;
    if (run_sql(ni, h, tr_thread_cpu_ns() + budget)) return;
    uint64_t waited_ms = (tr_now_ns() - h->since_ns) / 1000000u;
    bool busy = guest_sql_busy(ni->env->sql);
    if ((busy && waited_ms >= DB_BUSY_TIMEOUT_MS) || waited_ms >= NATIVE_SQL_MAX_WAIT_MS) {
        char msg[200];
        if (busy)
            snprintf(msg, sizeof msg,
                     "database is locked: another connection held the lock this statement "
                     "needs for more than %d ms",
                     DB_BUSY_TIMEOUT_MS);
        else
            snprintf(msg, sizeof msg,
                     "the worker's database connection was taken by a transaction for more "
                     "than %d ms",
                     NATIVE_SQL_MAX_WAIT_MS);
        tr_free(h->sql);
        h->sql = NULL;
        ready_error(ni, h, msg);
        return;
    }
    h->retry_ms = TR_MIN(h->retry_ms * 2, 50u);
    loop_timer_start(l, &h->timer, h->retry_ms);
}

/* Runs h now, or from the loop when it must wait. */
static void start_sql(struct Z_trail_instance_t *ni, comp_native_handle *h)
{
    h->since_ns = tr_now_ns();
    if (!run_sql(ni, h, comp__native_call_deadline())) {
        loop_timer_init(&h->timer, retry_sql);
        h->retry_ms = 2;
        loop_timer_start(ni->env->loop, &h->timer, h->retry_ms);
    }
}

/* ---- the imports (module "trail") ---- */

static const char *guest_bytes(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    if (ni->mem == NULL) return NULL;
    const char *p = wrt_mem_ptr(ni->mem, ptr, len);
    return p ? p : NULL;
}

#define ERR_BAD_POINTER ((uint32_t)-1)
#define ERR_TOO_MANY    ((uint32_t)-2)

void Z_trailZ_log(struct Z_trail_instance_t *ni, uint32_t level, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *msg = guest_bytes(ni, ptr, len);
    if (msg != NULL) {
        static const tr_log_level levels[] = {TR_LOG_DEBUG, TR_LOG_INFO, TR_LOG_WARN,
                                              TR_LOG_ERROR};
        tr_buf line = TR_BUF_INIT;
        guest_log_escape(msg, TR_MIN(len, GUEST_LOG_MAX_BYTES), &line);
        tr_log(levels[level <= 3 ? level : 1], GUEST_LOG_PREFIX "%.*s", (int)line.len,
               line.data ? line.data : "");
        tr_buf_free(&line);
    }
    wrt_host_leave(saved);
}

uint32_t Z_trailZ_manifest(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    const char *p = guest_bytes(ni, ptr, len);
    if (!ni->in_init || ni->got_manifest || p == NULL || len > (1u << 20)) {
        rc = ERR_BAD_POINTER;
    } else {
        tr_buf_reset(&ni->manifest);
        tr_buf_append(&ni->manifest, p, len);
        ni->got_manifest = true;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_respond(struct Z_trail_instance_t *ni, uint32_t req, uint32_t status,
                          uint32_t head_ptr, uint32_t head_len, uint32_t body_ptr,
                          uint32_t body_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    comp_native_wait *w = comp__native_wait_find(ni, req);
    const char *head = guest_bytes(ni, head_ptr, head_len);
    const char *body = guest_bytes(ni, body_ptr, body_len);
    if (w == NULL || w->res == NULL || w->answered) {
        rc = ERR_BAD_POINTER;
    } else {
        tr_arena *a = w->req->arena;
        jsg_prop *props = tr_arena_alloc(a, 3 * sizeof *props);
        props[0] = (jsg_prop){"status", 6, jsg_number(status)};
        props[1] = (jsg_prop){"headers", 7, jsg_number(0)}; /* invalid unless decoded below */
        props[2] = (jsg_prop){"body", 4, jsg_null()};
        /* more header fields than a response may have is refused before any is decoded: the
         * host allocates about nine times the encoding's bytes for them */
        comp_reader r = {(const unsigned char *)head, head && body ? head_len : 0, 0, false};
        uint32_t n = head && body ? comp__get_count(&r, 8) : 0;
        if (n > http_response_limits(w->res)->max_headers) r.bad = true;
        if (head && body && !r.bad) {
            jsg_val *pairs = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *pairs);
            for (uint32_t i = 0; i < n && !r.bad; i++) {
                size_t nl, vl;
                const char *name = comp__get_str(&r, &nl);
                const char *val = comp__get_str(&r, &vl);
                pairs[n + 2 * i] = jsg_string(tr_arena_strndup(a, name, nl), nl);
                pairs[n + 2 * i + 1] = jsg_string(tr_arena_strndup(a, val, vl), vl);
                pairs[i] = jsg_array(&pairs[n + 2 * i], 2);
            }
            if (!r.bad && r.pos == r.len) props[1].val = jsg_array(pairs, n);
            char *copy = tr_arena_alloc(a, body_len ? body_len : 1);
            memcpy(copy, body, body_len);
            props[2].val = jsg_bytes(copy, body_len);
        }
        if (status < 100 || status > 599 || props[1].val.type != JSG_ARRAY) rc = (uint32_t)-2;
        w->answer = jsg_object(props, 3);
        w->answered = true;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_job_done(struct Z_trail_instance_t *ni, uint32_t run, uint32_t ok,
                           uint32_t msg_ptr, uint32_t msg_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    comp_native_wait *w = comp__native_wait_find(ni, run);
    const char *msg = guest_bytes(ni, msg_ptr, msg_len);
    if (w == NULL || w->res != NULL || w->answered) {
        rc = ERR_BAD_POINTER;
    } else {
        w->answered = true;
        w->job_ok = ok != 0;
        if (!w->job_ok) w->job_msg = msg ? tr_strndup(msg, TR_MIN(msg_len, 4096)) : NULL;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_sql(struct Z_trail_instance_t *ni, uint32_t tx, uint32_t kind, uint32_t sql_ptr,
                      uint32_t sql_len, uint32_t params_ptr, uint32_t params_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc;
    const char *sql = guest_bytes(ni, sql_ptr, sql_len);
    const char *params = guest_bytes(ni, params_ptr, params_len);
    comp_native_handle *h = sql && params && kind <= 1 ? new_handle(ni) : NULL;
    if (sql == NULL || params == NULL || kind > 1) {
        rc = ERR_BAD_POINTER;
    } else if (h == NULL) {
        rc = ERR_TOO_MANY;
    } else {
        rc = h->id;
        if (ni->env == NULL || ni->env->sql == NULL) {
            ready_error(ni, h,
                                     "no database here (statements cannot run in trail_init)");
        } else {
            h->rows = kind == 0;
            h->tx = tx;
            h->sql = tr_strndup(sql, sql_len);
            h->sql_len = sql_len;
            tr_buf_append(&h->params, params, params_len);
            start_sql(ni, h);
        }
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_tx_begin(struct Z_trail_instance_t *ni)
{
    bool saved = wrt_host_enter();
    comp_native_handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && (ni->env == NULL || ni->env->sql == NULL || ni->env->loop == NULL)) {
        ready_error(ni, h, "no database here (transactions cannot run in trail_init)");
    } else if (h) {
        h->begin = true;
        start_sql(ni, h);
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_tx_end(struct Z_trail_instance_t *ni, uint32_t tx, uint32_t commit)
{
    bool saved = wrt_host_enter();
    comp_native_handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && (ni->env == NULL || ni->env->sql == NULL)) {
        ready_error(ni, h, "no database here");
    } else if (h && guest_sql_remote(ni->env->sql)) {
        /* cluster mode: ready once the leader answered (a COMMIT once committed through Raft) */
        tr_error err = {0};
        if (guest_sql_remote_tx_end(ni->env->sql, ni, tx, commit != 0, remote_tx_done, h, &h->job,
                                    &err) < 0)
            ready_error(ni, h, err.msg);
    } else if (h) {
        tr_error err = {0};
        if (guest_sql_tx_end_for(ni->env->sql, ni, tx, commit != 0, &err) < 0)
            ready_error(ni, h, err.msg);
        else
            ready(ni, h, true);
    }
    wrt_host_leave(saved);
    return rc;
}

static void timer_fired(loop *l, loop_timer *t)
{
    (void)l;
    comp_native_handle *h = (comp_native_handle *)t;
    tr_buf_reset(&h->result);
    ready(h->ni, h, true);
}

uint32_t Z_trailZ_timer(struct Z_trail_instance_t *ni, uint32_t ms)
{
    bool saved = wrt_host_enter();
    comp_native_handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && ni->env == NULL) {
        ready_error(ni, h, "no timers here (trail_init)");
    } else if (h) {
        loop_timer_init(&h->timer, timer_fired);
        loop_timer_start(ni->env->loop, &h->timer, ms);
    }
    wrt_host_leave(saved);
    return rc;
}

static void fetch_done(void *ud, int rc, const tr_error *why, const jsg_val *response)
{
    comp_native_handle *h = ud;
    struct Z_trail_instance_t *ni = h->ni;
    h->in_fetch = false;
    if (h->released) {
        comp__native_handle_free(ni, h);
        return;
    }
    if (rc < 0) {
        ready_error(ni, h, why->msg);
        return;
    }
    /* [status, statusText, headers, body, finalUrl] */
    const jsg_val *v = response->u.arr.items;
    tr_buf_reset(&h->result);
    comp__put_u32(&h->result, (uint32_t)v[0].u.num);
    comp__put_u32(&h->result, (uint32_t)v[2].u.arr.len);
    for (size_t i = 0; i < v[2].u.arr.len; i++) {
        const jsg_val *pair = v[2].u.arr.items[i].u.arr.items;
        comp__put_str(&h->result, pair[0].u.str.ptr, pair[0].u.str.len);
        comp__put_str(&h->result, pair[1].u.str.ptr, pair[1].u.str.len);
    }
    if (v[3].type == JSG_BYTES)
        comp__put_str(&h->result, v[3].u.str.ptr, v[3].u.str.len);
    else
        comp__put_str(&h->result, "", 0);
    comp__put_str(&h->result, v[4].u.str.ptr, v[4].u.str.len);
    ready(ni, h, true);
}

/* The fetch request's encoding (docs/guest-abi.md) as the five values guest_fetch_start()
 * takes, in a; false when malformed. */
static bool decode_fetch(comp_reader *r, tr_arena *a, jsg_val *args)
{
    size_t ml, ul, bl;
    const char *method = comp__get_str(r, &ml);
    const char *url = comp__get_str(r, &ul);
    uint32_t n = comp__get_count(r, 8);
    if (n > GUEST_FETCH_MAX_HEADERS) return false; /* never allocated for */
    jsg_val *pairs = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *pairs);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        size_t nl, vl;
        const char *name = comp__get_str(r, &nl);
        const char *val = comp__get_str(r, &vl);
        pairs[n + 2 * i] = jsg_string(name, nl);
        pairs[n + 2 * i + 1] = jsg_string(val, vl);
        pairs[i] = jsg_array(&pairs[n + 2 * i], 2);
    }
    const char *body = comp__get_str(r, &bl);
    uint32_t timeout = comp__get_u32(r);
    args[0] = jsg_string(method, ml);
    args[1] = jsg_string(url, ul);
    args[2] = jsg_array(pairs, n);
    args[3] = bl ? jsg_bytes(body, bl) : jsg_null();
    args[4] = jsg_number(timeout);
    return !r->bad && r->pos == r->len;
}

uint32_t Z_trailZ_fetch(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *req = guest_bytes(ni, ptr, len);
    comp_native_handle *h = req ? new_handle(ni) : NULL;
    uint32_t rc = req == NULL ? ERR_BAD_POINTER : h ? h->id : ERR_TOO_MANY;
    if (h && ni->env == NULL) {
        ready_error(ni, h, "fetch is not available in trail_init");
    } else if (h) {
        tr_arena a;
        tr_arena_init(&a, 1024);
        comp_reader r = {(const unsigned char *)req, len, 0, false};
        jsg_val args[5];
        tr_error why = {0};
        if (!decode_fetch(&r, &a, args))
            ready_error(ni, h, "malformed fetch request (docs/guest-abi.md)");
        else if (guest_fetch_start(ni->env, &ni->fetches, args, fetch_done, h, &why) < 0)
            ready_error(ni, h, why.msg);
        else
            h->in_fetch = true;
        tr_arena_deinit(&a);
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_read_file(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *path = guest_bytes(ni, ptr, len);
    comp_native_handle *h = path ? new_handle(ni) : NULL;
    uint32_t rc = path == NULL ? ERR_BAD_POINTER : h ? h->id : ERR_TOO_MANY;
    if (h) {
        tr_error err = {0};
        if (ni->env == NULL || ni->env->fs == NULL) {
            ready_error(ni, h,
                        "ENOSYS: no filesystem is enabled (trail run --runtime-root-fs DIR)");
        } else if (guest_fs_read(ni->env->fs, path, len,
                                 TR_MIN(ni->env->fs_max_read, ni->mod->limits.memory_limit),
                                 &h->result, &err) < 0) {
            ready_error(ni, h, err.msg);
        } else {
            ready(ni, h, true);
        }
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_result_len(struct Z_trail_instance_t *ni, uint32_t id)
{
    comp_native_handle *h = comp__native_handle_find(ni, id);
    if (h == NULL) return (uint32_t)-2;
    if (h->state == COMP_NATIVE_PENDING) return (uint32_t)-1;
    return (uint32_t)h->result.len;
}

uint32_t Z_trailZ_result_take(struct Z_trail_instance_t *ni, uint32_t id, uint32_t ptr,
                              uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc;
    comp_native_handle *h = comp__native_handle_find(ni, id);
    char *dst = ni->mem ? wrt_mem_ptr(ni->mem, ptr, len) : NULL;
    if (h == NULL) {
        rc = (uint32_t)-2;
    } else if (h->state == COMP_NATIVE_PENDING) {
        rc = (uint32_t)-1;
    } else if (dst == NULL || len != h->result.len) {
        rc = (uint32_t)-3;
    } else {
        if (len) memcpy(dst, h->result.data, len);
        rc = h->ok ? 0 : 1;
        handle_release(ni, h);
    }
    wrt_host_leave(saved);
    return rc;
}

void Z_trailZ_release(struct Z_trail_instance_t *ni, uint32_t id)
{
    bool saved = wrt_host_enter();
    comp_native_handle *h = comp__native_handle_find(ni, id);
    if (h) handle_release(ni, h);
    wrt_host_leave(saved);
}

/* ---- WASI beyond what the engine needs (wasm/wasi/wasi.c has the rest) ---- */

void Z_wasi_snapshot_preview1Z_proc_exit(wasi_ctx *ctx, uint32_t code);
void Z_wasi_snapshot_preview1Z_proc_exit(wasi_ctx *ctx, uint32_t code)
{
    (void)ctx;
    (void)code;
    wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

/* No environment and no arguments: both counts 0. */
static uint32_t two_zeros(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    char *pa = wrt_mem_ptr(ctx->memory, a, 4), *pb = wrt_mem_ptr(ctx->memory, b, 4);
    if (pa == NULL || pb == NULL)
        rc = WASI_EFAULT;
    else
        memset(pa, 0, 4), memset(pb, 0, 4);
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    return two_zeros(ctx, a, b);
}

uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    return two_zeros(ctx, a, b);
}

uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    (void)a;
    (void)b;
    return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_args_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_args_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    (void)a;
    (void)b;
    return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_sched_yield(wasi_ctx *ctx);
uint32_t Z_wasi_snapshot_preview1Z_sched_yield(wasi_ctx *ctx)
{
    (void)ctx;
    return WASI_ESUCCESS;
}
