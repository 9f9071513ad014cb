/* guest/tx.c: transactions on the worker's connection (`txBegin`, `txQuery`, `txExecute`,
 * `txCommit`, `txRollback` of docs/guest-abi.md, and their synchronous forms `txBeginSync`, ...)
 * and the statements that wait while one is open.
 *
 * DESIGN: a worker has one connection and interleaves many requests (of one or more isolates) on
 * it, so an open transaction owns the connection: every plain query()/execute() and every other
 * txBegin() made meanwhile is queued (its promise stays pending; the worker never blocks) and
 * runs, in call order, after the transaction ends. The queue runs from a zero-delay loop timer,
 * never inside the host call that ended the transaction: a statement queued by another isolate
 * must be settled at the top of the loop, not nested inside this isolate's call. After each
 * queued statement the owning isolate's jobs run and its owner is woken, as after a timer. A
 * queued txBegin that opens a transaction stops the queue again.
 *
 * BEGIN IMMEDIATE takes the write lock at once, so a transaction never fails half way for lack
 * of it; if another connection holds it, SQLite's busy timeout (DB_BUSY_TIMEOUT_MS) makes the
 * worker wait for it, as any write does. A transaction open longer than tx_timeout_ms, or whose
 * isolate goes away, is rolled back; the ids of transactions ended that way (or by SQLite after
 * an error) are remembered so that their next call says why. */
#include "guest/guest_internal.h"

#include <stddef.h>
#include <string.h>

#include "db/db.h"

typedef enum wait_kind { WAIT_QUERY, WAIT_EXECUTE, WAIT_BEGIN } wait_kind;

struct guest_sql_wait {
    guest_sql_wait *next;
    guest *g;
    jsg_isolate *iso;
    wait_kind kind;
    char *sql; /* owned; NULL for WAIT_BEGIN */
    size_t len;
    jsg_ref params; /* owned; 0 for none */
    jsg_deferred d; /* d.promise was handed to JS */
};

struct guest_tx {
    loop_timer timeout; /* first: the loop hands us &timeout */
    guest_sql *s;
    guest *g;
    uint32_t id;
};

static void on_drain(loop *l, loop_timer *t);

/* ---- promises ---- */

/* A promise already settled: resolved with value (owned, consumed) or rejected with why. */
static int settled(jsg_isolate *iso, int rc, jsg_ref value, const tr_error *why, jsg_ref *result,
                   tr_error *err)
{
    if (rc == TR_ETRAP || rc == TR_EINTERRUPTED || rc == TR_ENOMEM) {
        if (value) jsg_ref_free(iso, value);
        return tr_error_set(err, rc, "%s", why->msg);
    }
    jsg_deferred d;
    int r = jsg_deferred_new(iso, &d, err);
    if (r == 0)
        r = rc < 0 ? jsg_deferred_reject(iso, &d, why->msg, strlen(why->msg), err)
                   : jsg_deferred_resolve(iso, &d, value, err);
    if (value) jsg_ref_free(iso, value);
    if (r < 0) {
        if (d.promise) jsg_ref_free(iso, d.promise);
        return r;
    }
    *result = d.promise;
    return 0;
}

/* What a transaction call gives: as settled() for the asynchronous functions; for the
 * synchronous ones (`txBeginSync`, ...), value itself, or the error thrown in the caller. */
static int finish(jsg_isolate *iso, bool sync, int rc, jsg_ref value, const tr_error *why,
                  jsg_ref *result, tr_error *err)
{
    if (!sync) return settled(iso, rc, value, why, result, err);
    if (rc < 0) {
        if (value) jsg_ref_free(iso, value);
        return tr_error_set(err, rc, "%s", why->msg);
    }
    *result = value;
    return 0;
}

static int number_value(jsg_isolate *iso, double n, jsg_ref *out, tr_error *err)
{
    jsg_val v = jsg_number(n);
    return jsg_from_val(iso, &v, out, err);
}

/* ---- transactions ---- */

/* Gives s the worker's loop (for its timers) the first time it needs it. */
static void use_loop(guest_sql *s, loop *l)
{
    if (s->loop == NULL && l != NULL) {
        s->loop = l;
        loop_timer_init(&s->drain, on_drain);
    }
}

static void arm_drain(guest_sql *s)
{
    if (s->qhead != NULL && s->tx == NULL && s->loop != NULL && !loop_timer_active(&s->drain))
        loop_timer_start(s->loop, &s->drain, 0);
}

/* Forgets the open transaction (its SQL is done) and lets the waiting statements run. why, when
 * not NULL, is what its next call will be told. */
static void end_tx(guest_sql *s, const char *why)
{
    guest_tx *tx = s->tx;
    if (why != NULL) {
        size_t slot = s->nended++ % GUEST_TX_ENDED;
        s->ended[slot].id = tx->id;
        s->ended[slot].why = why;
    }
    loop_timer_stop(s->loop, &tx->timeout);
    tr_free(tx);
    s->tx = NULL;
    arm_drain(s);
}

/* ROLLBACK if SQLite still has a transaction open. */
static void rollback(guest_sql *s)
{
    sqlite3 *h = db_handle(s->db);
    if (!sqlite3_get_autocommit(h) && sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        tr_log_error(GUEST_LOG_PREFIX "ROLLBACK failed: %s", sqlite3_errmsg(h));
}

static void on_tx_timeout(loop *l, loop_timer *t)
{
    (void)l;
    guest_tx *tx = (guest_tx *)t;
    guest_sql *s = tx->s;
    tr_log_warn(GUEST_LOG_PREFIX "transaction %u was open for more than %llu ms; it is rolled back",
                tx->id, (unsigned long long)s->tx_timeout_ms);
    rollback(s);
    end_tx(s, "transaction timed out");
}

static int begin_now(guest_sql *s, guest *g, uint32_t *id, tr_error *err)
{
    sqlite3 *h = db_handle(s->db);
    if (!sqlite3_get_autocommit(h))
        return tr_error_set(err, TR_ESQL,
                            "cannot begin a transaction: one was begun with a plain statement "
                            "and is still open");
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(h));
    guest_tx *tx = tr_calloc(1, sizeof *tx);
    tx->s = s;
    tx->g = g;
    tx->id = ++s->last_tx_id ? s->last_tx_id : ++s->last_tx_id;
    loop_timer_init(&tx->timeout, on_tx_timeout);
    loop_timer_start(s->loop, &tx->timeout, s->tx_timeout_ms);
    s->tx = tx;
    *id = tx->id;
    return 0;
}

/* The open transaction named by argument 0, if it is g's; otherwise an error saying why not. */
static int find_tx(guest_sql *s, guest *g, jsg_isolate *iso, size_t argc, const jsg_ref *argv,
                   guest_tx **out, tr_error *err)
{
    if (s == NULL) return tr_error_set(err, TR_ESQL, "no database is available here");
    tr_arena a;
    tr_arena_init(&a, 256);
    jsg_val v = jsg_undefined();
    int rc = argc > 0 ? jsg_to_val(iso, argv[0], &a, &v, err) : 0;
    tr_arena_deinit(&a);
    if (rc < 0) return rc;
    if (v.type != JSG_NUMBER || v.u.num < 1 || v.u.num > UINT32_MAX || v.u.num != (uint32_t)v.u.num)
        return tr_error_set(err, TR_EINVAL, "the transaction id must be a positive integer");
    uint32_t id = (uint32_t)v.u.num;
    if (s->tx != NULL && s->tx->id == id && s->tx->g == g) {
        *out = s->tx;
        return 0;
    }
    size_t n = s->nended < GUEST_TX_ENDED ? s->nended : GUEST_TX_ENDED;
    for (size_t i = 0; i < n; i++)
        if (s->ended[i].id == id) return tr_error_set(err, TR_ESQL, "%s", s->ended[i].why);
    return tr_error_set(err, TR_ESQL, "transaction %u is not open (it has ended)", id);
}

/* ---- waiting statements ---- */

bool guest__sql_must_wait(const guest_sql *s)
{
    return s != NULL && (s->tx != NULL || s->qhead != NULL);
}

static int enqueue(guest *g, jsg_isolate *iso, wait_kind kind, const char *sql, size_t len,
                   jsg_ref params, jsg_ref *result, tr_error *err)
{
    guest_sql *s = guest__env(g)->sql;
    guest_sql_wait *w = tr_calloc(1, sizeof *w);
    int rc = jsg_deferred_new(iso, &w->d, err);
    if (rc == 0 && params) rc = jsg_ref_dup(iso, params, &w->params);
    if (rc < 0) {
        if (w->d.promise) {
            jsg_deferred_free(iso, &w->d);
            jsg_ref_free(iso, w->d.promise);
        }
        tr_free(w);
        return rc;
    }
    w->g = g;
    w->iso = iso;
    w->kind = kind;
    if (sql) {
        w->sql = tr_strndup(sql, len);
        w->len = len;
    }
    if (s->qtail)
        s->qtail->next = w;
    else
        s->qhead = w;
    s->qtail = w;
    use_loop(s, guest__env(g)->loop);
    *result = w->d.promise;
    arm_drain(s);
    return 0;
}

int guest__sql_enqueue(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                       jsg_ref params, jsg_ref *result, tr_error *err)
{
    return enqueue(g, iso, rows ? WAIT_QUERY : WAIT_EXECUTE, sql, len, params, result, err);
}

static void wait_free(guest_sql_wait *w)
{
    if (!jsg_isolate_dead(w->iso)) {
        if (w->params) jsg_ref_free(w->iso, w->params);
        if (w->d.resolve || w->d.reject) jsg_deferred_free(w->iso, &w->d);
    }
    tr_free(w->sql);
    tr_free(w);
}

/* Runs one waiting statement and settles its promise in its isolate. */
static void run_wait(guest_sql *s, guest_sql_wait *w)
{
    jsg_isolate *iso = w->iso;
    tr_error why = {0}, err = {0};
    jsg_ref value = 0;
    int rc;
    if (w->kind == WAIT_BEGIN) {
        uint32_t id = 0;
        rc = begin_now(s, w->g, &id, &why);
        if (rc == 0) rc = number_value(iso, id, &value, &why);
        if (rc < 0 && s->tx != NULL && s->tx->g == w->g) {
            rollback(s);
            end_tx(s, NULL);
        }
    } else {
        rc = guest_sql_run(s, iso, w->kind == WAIT_QUERY, w->sql, w->len, w->params, &value, &why);
    }
    if (!jsg_isolate_dead(iso)) {
        int r = rc < 0 ? jsg_deferred_reject(iso, &w->d, why.msg, strlen(why.msg), &err)
                       : jsg_deferred_resolve(iso, &w->d, value, &err);
        if (value) jsg_ref_free(iso, value);
        if (r == 0) r = jsg_run_jobs(iso, &err);
        if (r < 0)
            tr_log_error(GUEST_LOG_PREFIX "settling a waiting statement failed: %s", err.msg);
    }
    guest *g = w->g;
    wait_free(w);
    guest__wake(g);
}

static void on_drain(loop *l, loop_timer *t)
{
    (void)l;
    guest_sql *s = (guest_sql *)((char *)t - offsetof(guest_sql, drain));
    while (s->tx == NULL && s->qhead != NULL) {
        guest_sql_wait *w = s->qhead;
        s->qhead = w->next;
        if (s->qhead == NULL) s->qtail = NULL;
        run_wait(s, w);
    }
}

void guest__sql_forget(guest *g)
{
    guest_sql *s = guest__env(g)->sql;
    if (s == NULL) return;
    if (s->tx != NULL && s->tx->g == g) {
        rollback(s);
        end_tx(s, NULL);
    }
    guest_sql_wait **pp = &s->qhead;
    s->qtail = NULL;
    while (*pp != NULL) {
        guest_sql_wait *w = *pp;
        if (w->g == g) {
            *pp = w->next;
            wait_free(w);
        } else {
            s->qtail = w;
            pp = &w->next;
        }
    }
    if (s->qhead == NULL && s->loop) loop_timer_stop(s->loop, &s->drain);
}

void guest__tx_deinit(guest_sql *s)
{
    if (s->tx != NULL) {
        rollback(s);
        if (s->loop) loop_timer_stop(s->loop, &s->tx->timeout);
        tr_free(s->tx);
        s->tx = NULL;
    }
    while (s->qhead != NULL) {
        guest_sql_wait *w = s->qhead;
        s->qhead = w->next;
        wait_free(w);
    }
    s->qtail = NULL;
    if (s->loop) loop_timer_stop(s->loop, &s->drain);
}

void guest_sql_set_tx_timeout(guest_sql *s, uint64_t ms)
{
    s->tx_timeout_ms = ms;
}

/* ---- host functions ---- */

static int tx_begin(jsg_isolate *iso, guest *g, bool sync, jsg_ref *result, tr_error *err)
{
    guest_env *env = guest__env(g);
    guest_sql *s = env->sql;
    tr_error why = {0};
    jsg_ref value = 0;
    int rc = 0;
    if (s == NULL)
        rc = tr_error_set(&why, TR_ESQL, "no database is available here");
    else if (env->loop == NULL)
        rc = tr_error_set(&why, TR_ESQL, "transactions are not available here");
    if (rc == 0) {
        use_loop(s, env->loop);
        /* A synchronous transaction cannot wait for the open one: that one ends only when its
         * request runs on, and this call holds the worker. (Statements merely queued behind a
         * transaction that has ended wait for this one instead; they run when it ends.) */
        if (sync && s->tx != NULL)
            rc = tr_error_set(&why, TR_ESQL,
                              "another transaction is open on this worker's database "
                              "connection; new Transaction() cannot wait for it (use "
                              "transaction() from trailbase-wasm/db, which waits)");
        else if (!sync && guest__sql_must_wait(s))
            return enqueue(g, iso, WAIT_BEGIN, NULL, 0, 0, result, err);
    }
    if (rc == 0) {
        uint32_t id = 0;
        rc = begin_now(s, g, &id, &why);
        if (rc == 0) {
            rc = number_value(iso, id, &value, &why);
            if (rc < 0) {
                rollback(s);
                end_tx(s, NULL);
            }
        }
    }
    return finish(iso, sync, rc, value, &why, result, err);
}

static int tx_sql(jsg_isolate *iso, guest *g, bool sync, bool rows, size_t argc,
                  const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    guest_sql *s = guest__env(g)->sql;
    tr_error why = {0};
    jsg_ref value = 0;
    guest_tx *tx = NULL;
    int rc = find_tx(s, g, iso, argc, argv, &tx, &why);
    if (rc == 0) {
        tr_arena a;
        tr_arena_init(&a, 1024);
        jsg_val sql = jsg_undefined();
        rc = argc > 1 ? jsg_to_val(iso, argv[1], &a, &sql, &why) : 0;
        if (rc == 0 && sql.type != JSG_STRING)
            rc = tr_error_set(&why, TR_EINVAL, "sql must be a string");
        if (rc == 0)
            rc = guest_sql_run(s, iso, rows, sql.u.str.ptr, sql.u.str.len, argc > 2 ? argv[2] : 0,
                               &value, &why);
        tr_arena_deinit(&a);
        /* SQLite rolls a transaction back by itself after some errors (SQLITE_FULL, SQLITE_IOERR,
         * ...), and a COMMIT or ROLLBACK statement ends it: either way it is over. */
        if (sqlite3_get_autocommit(db_handle(s->db)))
            end_tx(s, "the transaction has ended: SQLite rolled it back after an error, or a "
                      "statement in it ended it");
    }
    return finish(iso, sync, rc, value, &why, result, err);
}

static int tx_end(jsg_isolate *iso, guest *g, bool sync, bool commit, size_t argc,
                  const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    guest_sql *s = guest__env(g)->sql;
    tr_error why = {0};
    guest_tx *tx = NULL;
    int rc = find_tx(s, g, iso, argc, argv, &tx, &why);
    if (rc == 0) {
        sqlite3 *h = db_handle(s->db);
        if (commit && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            rc = tr_error_set(&why, TR_ESQL, "%s", sqlite3_errmsg(h));
            rollback(s);
        } else if (!commit) {
            rollback(s);
        }
        end_tx(s, NULL);
    }
    return finish(iso, sync, rc, 0, &why, result, err);
}

/* The host functions: asynchronous (a promise) and synchronous (the value, or a throw). */
#define TX_HOST_FN(name, call)                                                              \
    int name(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv, \
             jsg_ref *result, tr_error *err)                                                \
    {                                                                                       \
        (void)this_;                                                                        \
        (void)argc;                                                                         \
        (void)argv;                                                                         \
        return call;                                                                        \
    }

TX_HOST_FN(guest__tx_begin, tx_begin(iso, user, false, result, err))
TX_HOST_FN(guest__tx_query, tx_sql(iso, user, false, true, argc, argv, result, err))
TX_HOST_FN(guest__tx_execute, tx_sql(iso, user, false, false, argc, argv, result, err))
TX_HOST_FN(guest__tx_commit, tx_end(iso, user, false, true, argc, argv, result, err))
TX_HOST_FN(guest__tx_rollback, tx_end(iso, user, false, false, argc, argv, result, err))
TX_HOST_FN(guest__tx_begin_sync, tx_begin(iso, user, true, result, err))
TX_HOST_FN(guest__tx_query_sync, tx_sql(iso, user, true, true, argc, argv, result, err))
TX_HOST_FN(guest__tx_execute_sync, tx_sql(iso, user, true, false, argc, argv, result, err))
TX_HOST_FN(guest__tx_commit_sync, tx_end(iso, user, true, true, argc, argv, result, err))
TX_HOST_FN(guest__tx_rollback_sync, tx_end(iso, user, true, false, argc, argv, result, err))
