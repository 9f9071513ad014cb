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
 * of it. A transaction open longer than tx_timeout_ms, or whose isolate goes away, is rolled
 * back; the ids of transactions ended that way (or by SQLite after an error) are remembered so
 * that their next call says why.
 *
 * DESIGN: another connection's lock (another worker's transaction, another process) never
 * blocks the worker's thread. The connection's busy handler (guest/sql.c) makes a guest's
 * statement or BEGIN fail at once with SQLITE_BUSY, before it did anything; it is then parked
 * (its promise stays pending) in a second list, retried from a loop timer after 2, 4, ... up to
 * 50 ms, and rejected with "database is locked" once it has waited DB_BUSY_TIMEOUT_MS. Other
 * statements are not held back by parked ones (they try at once, and park behind them if they
 * meet the lock too); while a transaction of this worker owns the connection, parked statements
 * join its queue instead.
 *
 * In cluster mode (s->remote) a transaction is the worker's record of one that runs on the
 * cluster's leader, on a connection held for it by the worker's transaction helper
 * (guest/cluster.c): its BEGIN, statements, COMMIT and ROLLBACK are requests to that helper,
 * their promises (a compiled component's handles) settled when the leader answered. Who may open
 * one, the queue of the next ones, the timeout and the rollback when its owner goes away are the
 * same as on one node; the local connection takes no part. The synchronous forms are refused:
 * they would wait for the network on the worker's thread. */
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
    uint64_t give_up_ns; /* parked for a lock: when it stops waiting (tr_now_ns); 0: never was */
};

struct guest_tx {
    loop_timer timeout; /* the loop hands us &timeout */
    guest_sql *s;
    guest *g;          /* the isolate's guest that opened it; NULL for another owner */
    const void *owner; /* that other owner (a compiled component's instance: guest_sql_tx_*) */
    uint32_t id;
    bool remote; /* cluster mode: it runs on a connection held on the leader (guest/cluster.c) */
};

static void on_drain(loop *l, loop_timer *t);
static void on_retry(loop *l, loop_timer *t);

/* ---- promises ---- */

/* What a transaction call gives: as guest__settled() for the asynchronous functions; for the
 * synchronous ones (`txBeginSync`, ...), value itself, or the error thrown in the caller. */
static int finish(jsg_isolate *iso, bool sync, int rc, jsg_ref value, const tr_error *why,
                  jsg_ref *result, tr_error *err)
{
    if (!sync) return guest__settled(iso, rc, value, why, result, err);
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
        loop_timer_init(&s->retry, on_retry);
    }
}

void guest__sql_use_loop(guest_sql *s, loop *l)
{
    use_loop(s, l);
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

/* ROLLBACK if SQLite still has a transaction open; in cluster mode, the open transaction's
 * ROLLBACK is sent on its held connection (its answer is not awaited; the helper's queue keeps
 * it ahead of the next BEGIN). */
static void rollback(guest_sql *s)
{
    if (s->tx != NULL && s->tx->remote) {
        guest__sql_remote_rollback(s, s->tx->id);
        return;
    }
    sqlite3 *h = db_handle(s->db);
    if (!sqlite3_get_autocommit(h) && sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        tr_log_error(GUEST_LOG_PREFIX "ROLLBACK failed: %s", sqlite3_errmsg(h));
}

static void on_tx_timeout(loop *l, loop_timer *t)
{
    (void)l;
    guest_tx *tx = TR_CONTAINER_OF(t, guest_tx, timeout);
    guest_sql *s = tx->s;
    tr_log_warn(GUEST_LOG_PREFIX "transaction %u was open for more than %llu ms; it is rolled back",
                tx->id, (unsigned long long)s->tx_timeout_ms);
    rollback(s);
    end_tx(s, "transaction timed out");
}

static int begin_now(guest_sql *s, guest *g, uint32_t *id, tr_error *err)
{
    sqlite3 *h = db_handle(s->db);
    s->busy = false;
    if (!sqlite3_get_autocommit(h))
        return tr_error_set(err, TR_ESQL,
                            "cannot begin a transaction: one was begun with a plain statement "
                            "and is still open");
    s->auth->guest = true; /* so that the busy handler does not wait */
    int rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    s->auth->guest = false;
    if (rc != SQLITE_OK) {
        s->busy = (sqlite3_errcode(h) & 0xff) == SQLITE_BUSY && s->loop != NULL &&
                  sqlite3_get_autocommit(h);
        return tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(h));
    }
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

uint32_t guest__tx_open_remote(guest_sql *s, loop *l, guest *g, const void *owner)
{
    use_loop(s, l);
    guest_tx *tx = tr_calloc(1, sizeof *tx);
    tx->s = s;
    tx->g = g;
    tx->owner = owner;
    tx->remote = true;
    tx->id = ++s->last_tx_id ? s->last_tx_id : ++s->last_tx_id;
    loop_timer_init(&tx->timeout, on_tx_timeout);
    loop_timer_start(s->loop, &tx->timeout, s->tx_timeout_ms);
    s->tx = tx;
    return tx->id;
}

void guest__tx_remote_over(guest_sql *s, uint32_t txid, const char *why)
{
    if (s->tx != NULL && s->tx->id == txid) end_tx(s, why);
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

static void park(guest_sql *s, guest_sql_wait *w);

/* A pending promise for a statement that runs later: queued behind the open transaction, or
 * (parked) set aside until another connection's lock is gone. */
static int enqueue_as(guest *g, jsg_isolate *iso, wait_kind kind, const char *sql, size_t len,
                      jsg_ref params, bool parked, jsg_ref *result, tr_error *err)
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
    use_loop(s, guest__env(g)->loop);
    *result = w->d.promise;
    if (parked) {
        park(s, w);
        return 0;
    }
    if (s->qtail)
        s->qtail->next = w;
    else
        s->qhead = w;
    s->qtail = w;
    arm_drain(s);
    return 0;
}

static int enqueue(guest *g, jsg_isolate *iso, wait_kind kind, const char *sql, size_t len,
                   jsg_ref params, jsg_ref *result, tr_error *err)
{
    return enqueue_as(g, iso, kind, sql, len, params, false, result, err);
}

int guest__sql_enqueue(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                       jsg_ref params, jsg_ref *result, tr_error *err)
{
    return enqueue(g, iso, rows ? WAIT_QUERY : WAIT_EXECUTE, sql, len, params, result, err);
}

int guest__sql_park(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                    jsg_ref params, jsg_ref *result, tr_error *err)
{
    return enqueue_as(g, iso, rows ? WAIT_QUERY : WAIT_EXECUTE, sql, len, params, true, result,
                      err);
}

/* Appends w to the parked statements and makes sure a retry is coming. */
static void park(guest_sql *s, guest_sql_wait *w)
{
    if (w->give_up_ns == 0) w->give_up_ns = tr_now_ns() + (uint64_t)DB_BUSY_TIMEOUT_MS * 1000000u;
    w->next = NULL;
    if (s->btail)
        s->btail->next = w;
    else
        s->bhead = w;
    s->btail = w;
    if (!loop_timer_active(&s->retry)) {
        if (s->retry_ms == 0) s->retry_ms = GUEST_BUSY_RETRY_MIN_MS;
        loop_timer_start(s->loop, &s->retry, s->retry_ms);
    }
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

/* Runs one waiting statement and settles its promise in its isolate, or parks it (again) when
 * another connection holds the lock it needs and it has not waited its time yet. */
static void run_wait(guest_sql *s, guest_sql_wait *w)
{
    jsg_isolate *iso = w->iso;
    tr_error why = {0}, err = {0};
    jsg_ref value = 0;
    int rc;
    if (w->kind == WAIT_BEGIN && s->remote) {
        /* cluster mode: its BEGIN goes to the leader; the answer settles w's promise */
        uint32_t id = guest__tx_open_remote(s, s->loop, w->g, NULL);
        if (guest__sql_remote_op(w->g, iso, GUEST_OP_BEGIN, id, false, NULL, 0, 0, &w->d, NULL,
                                 &err) < 0)
            tr_log_error(GUEST_LOG_PREFIX "beginning a waiting transaction failed: %s", err.msg);
        guest *g = w->g;
        wait_free(w);
        guest__wake(g);
        return;
    }
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
    if (rc < 0 && s->busy) {
        s->busy = false;
        if (w->give_up_ns == 0 || tr_now_ns() < w->give_up_ns) {
            park(s, w);
            return;
        }
        rc = tr_error_set(&why, TR_ESQL,
                          "database is locked: another connection held the lock this statement "
                          "needs for more than %d ms (it waited without blocking the worker)",
                          DB_BUSY_TIMEOUT_MS);
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
    guest_sql *s = TR_CONTAINER_OF(t, guest_sql, drain);
    while (s->tx == NULL && s->qhead != NULL) {
        guest_sql_wait *w = s->qhead;
        s->qhead = w->next;
        if (s->qhead == NULL) s->qtail = NULL;
        run_wait(s, w);
    }
}

/* Runs the parked statements again, in order (those that meet the lock again park again). */
static void on_retry(loop *l, loop_timer *t)
{
    (void)l;
    guest_sql *s = TR_CONTAINER_OF(t, guest_sql, retry);
    guest_sql_wait *list = s->bhead;
    s->bhead = s->btail = NULL;
    while (list != NULL) {
        guest_sql_wait *w = list;
        if (s->tx != NULL || s->qhead != NULL) {
            /* a transaction of this worker owns the connection: after it, in its queue */
            if (s->qtail)
                s->qtail->next = list;
            else
                s->qhead = list;
            while (list->next != NULL) list = list->next;
            s->qtail = list;
            arm_drain(s);
            break;
        }
        list = w->next;
        w->next = NULL;
        run_wait(s, w);
    }
    if (s->bhead != NULL) {
        s->retry_ms = TR_MIN(s->retry_ms * 2, GUEST_BUSY_RETRY_MAX_MS);
        loop_timer_start(s->loop, &s->retry, s->retry_ms);
    } else {
        s->retry_ms = 0;
    }
}

static void drop_waits_of(guest_sql_wait **head, guest_sql_wait **tail, guest *g)
{
    guest_sql_wait **pp = head;
    *tail = NULL;
    while (*pp != NULL) {
        guest_sql_wait *w = *pp;
        if (w->g == g) {
            *pp = w->next;
            wait_free(w);
        } else {
            *tail = w;
            pp = &w->next;
        }
    }
}

void guest__sql_forget(guest *g)
{
    guest_sql *s = guest__env(g)->sql;
    if (s == NULL) return;
    guest__sql_remote_forget(s, g);
    if (s->tx != NULL && s->tx->g == g) {
        rollback(s);
        end_tx(s, NULL);
    }
    drop_waits_of(&s->qhead, &s->qtail, g);
    drop_waits_of(&s->bhead, &s->btail, g);
    if (s->qhead == NULL && s->loop) loop_timer_stop(s->loop, &s->drain);
    if (s->bhead == NULL && s->loop) loop_timer_stop(s->loop, &s->retry);
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
    while (s->bhead != NULL) {
        guest_sql_wait *w = s->bhead;
        s->bhead = w->next;
        wait_free(w);
    }
    s->btail = NULL;
    if (s->loop) {
        loop_timer_stop(s->loop, &s->drain);
        loop_timer_stop(s->loop, &s->retry);
    }
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
    else if (s->remote && sync)
        rc = tr_error_set(&why, TR_ESQL, GUEST_CLUSTER_SYNC_TX_MSG);
    if (rc == 0 && s->remote) {
        /* cluster mode: BEGIN on a connection of its own to the leader (guest/cluster.c); one
         * transaction per worker at a time, the others wait for it as on one node */
        use_loop(s, env->loop);
        if (guest__sql_must_wait(s)) return enqueue(g, iso, WAIT_BEGIN, NULL, 0, 0, result, err);
        uint32_t id = guest__tx_open_remote(s, env->loop, g, NULL);
        return guest__sql_remote_op(g, iso, GUEST_OP_BEGIN, id, false, NULL, 0, 0, NULL, result,
                                    err);
    }
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
        if (rc < 0 && s->busy) { /* another connection holds the write lock */
            s->busy = false;
            /* a synchronous caller cannot park: it gets the error at once */
            if (!sync) return enqueue_as(g, iso, WAIT_BEGIN, NULL, 0, 0, true, result, err);
            rc = tr_error_set(&why, TR_ESQL,
                              "database is locked by another connection; new Transaction() "
                              "cannot wait for it (use transaction() from trailbase-wasm/db, "
                              "which waits)");
        }
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
    if (rc == 0 && tx->remote && sync) rc = tr_error_set(&why, TR_ESQL, GUEST_CLUSTER_SYNC_TX_MSG);
    if (rc == 0) {
        tr_arena a;
        tr_arena_init(&a, 1024);
        jsg_val sql = jsg_undefined();
        rc = argc > 1 ? jsg_to_val(iso, argv[1], &a, &sql, &why) : 0;
        if (rc == 0 && sql.type != JSG_STRING)
            rc = tr_error_set(&why, TR_EINVAL, "sql must be a string");
        if (rc == 0 && tx->remote) {
            /* cluster mode: in call order on the connection it holds (guest/cluster.c) */
            rc = guest__sql_remote_op(g, iso, GUEST_OP_TX_STMT, tx->id, rows, sql.u.str.ptr,
                                      sql.u.str.len, argc > 2 ? argv[2] : 0, NULL, result, err);
            tr_arena_deinit(&a);
            return rc;
        }
        if (rc == 0)
            rc = guest_sql_run(s, iso, rows, sql.u.str.ptr, sql.u.str.len, argc > 2 ? argv[2] : 0,
                               &value, &why);
        tr_arena_deinit(&a);
        /* SQLite rolls a transaction back by itself after some errors (SQLITE_FULL, SQLITE_IOERR,
         * ...), and a COMMIT or ROLLBACK statement ends it: either way it is over. */
        if (!tx->remote && sqlite3_get_autocommit(db_handle(s->db)))
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
    if (rc == 0 && tx->remote && sync) rc = tr_error_set(&why, TR_ESQL, GUEST_CLUSTER_SYNC_TX_MSG);
    if (rc == 0 && tx->remote) {
        /* cluster mode: the promise settles once the leader answered (a COMMIT once committed
         * through Raft); the worker's next transaction may begin now, its BEGIN queued after */
        uint32_t id = tx->id;
        end_tx(s, NULL);
        return guest__sql_remote_op(g, iso, commit ? GUEST_OP_COMMIT : GUEST_OP_ROLLBACK, id,
                                    false, NULL, 0, 0, NULL, result, err);
    }
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

/* ---- transactions of hosts that are not isolates (compiled components) ---- */

int guest_sql_tx_begin_for(guest_sql *s, loop *l, const void *owner, bool *wait, uint32_t *id,
                           tr_error *err)
{
    *wait = false;
    if (s->remote) /* cluster mode: guest_sql_remote_tx_begin(), which does not block */
        return tr_error_set(err, TR_ESQL, "in cluster mode a transaction begins on the leader");
    use_loop(s, l);
    if (guest__sql_must_wait(s)) {
        *wait = true;
        return 0;
    }
    int rc = begin_now(s, NULL, id, err);
    if (rc < 0 && s->busy) {
        *wait = true;
        return 0;
    }
    if (rc == 0) s->tx->owner = owner;
    return rc;
}

int guest_sql_tx_check(const guest_sql *s, const void *owner, uint32_t id, tr_error *err)
{
    if (s->tx != NULL && s->tx->id == id && s->tx->g == NULL && s->tx->owner == owner) return 0;
    size_t n = s->nended < GUEST_TX_ENDED ? s->nended : GUEST_TX_ENDED;
    for (size_t i = 0; i < n; i++)
        if (s->ended[i].id == id) return tr_error_set(err, TR_ESQL, "%s", s->ended[i].why);
    return tr_error_set(err, TR_ESQL, "transaction %u is not open (it has ended)", id);
}

void guest_sql_tx_after_statement(guest_sql *s)
{
    if (s->tx != NULL && !s->tx->remote && sqlite3_get_autocommit(db_handle(s->db)))
        end_tx(s, "the transaction has ended: SQLite rolled it back after an error, or a "
                  "statement in it ended it");
}

int guest_sql_tx_end_for(guest_sql *s, const void *owner, uint32_t id, bool commit,
                         tr_error *err)
{
    int rc = guest_sql_tx_check(s, owner, id, err);
    if (rc < 0) return rc;
    sqlite3 *h = db_handle(s->db);
    if (commit && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(h));
        rollback(s);
    } else if (!commit) {
        rollback(s);
    }
    end_tx(s, NULL);
    return rc;
}

void guest_sql_tx_forget(guest_sql *s, const void *owner)
{
    if (s != NULL && s->tx != NULL && s->tx->g == NULL && s->tx->owner == owner) {
        rollback(s);
        end_tx(s, NULL);
    }
}

int guest_sql_remote_tx_begin(guest_sql *s, loop *l, const void *owner, bool *wait,
                              guest_sql_job_fn fn, void *ud, guest_sql_job **job, tr_error *err)
{
    use_loop(s, l);
    *wait = guest__sql_must_wait(s);
    if (*wait) return 0;
    uint32_t id = guest__tx_open_remote(s, l, NULL, owner);
    return guest__sql_remote_vals_op(s, GUEST_OP_BEGIN, id, false, NULL, 0, NULL, 0, fn, ud, job,
                                     err);
}

int guest_sql_remote_tx_end(guest_sql *s, const void *owner, uint32_t id, bool commit,
                            guest_sql_job_fn fn, void *ud, guest_sql_job **job, tr_error *err)
{
    int rc = guest_sql_tx_check(s, owner, id, err);
    if (rc < 0) return rc;
    end_tx(s, NULL);
    return guest__sql_remote_vals_op(s, commit ? GUEST_OP_COMMIT : GUEST_OP_ROLLBACK, id, false,
                                     NULL, 0, NULL, 0, fn, ud, job, err);
}
