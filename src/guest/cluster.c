/* guest/cluster.c: guests' statements in cluster mode, run on the leader of the cluster's database
 * through trail's dqlite client (docs/scaling.md, "The application database in the cluster"),
 * without ever blocking the worker.
 *
 * DESIGN: guest/sql.c prepares the statement on the worker's local connection first (the schema
 * mirror), where trail's authorizer holds it to the guest's allow-list and the parameter count is
 * checked (guest__sql_check_remote); only a statement it accepted reaches the leader. The round
 * trip to the leader is made by a helper thread of the worker's (one per guest_sql, started on
 * first use), which owns the worker's blocking dq_client: the worker copies the statement's text
 * and parameters into a job (its own arena), queues it, and gives the guest a pending promise (a
 * compiled component a pending handle); the helper runs the jobs one at a time in queue order (so
 * one worker's statements keep their call order), puts each answered job on a list and wakes the
 * worker through an eventfd in its loop. The worker then turns the rows into JS values (isolates
 * are the worker's alone) and settles the promise. The helper touches no isolate, no loop and no
 * guest_sql field: only the job's request (read-only once queued) and answer, the queue under
 * r->mu, and its client.
 *
 * A thread rather than a client driven by the loop: a statement's Raft round trip is 1-2 ms, the
 * hand-off microseconds, and the blocking client, its leader search and its deadlines are reused
 * as they are.
 *
 * Failures the guest can act on: "not leader" (nothing ran) is sent once more to the leader found
 * anew; a statement whose answer was lost (the connection broke or timed out after it was sent,
 * or the leader lost its leadership while running it) fails saying its outcome is unknown and is
 * never sent again (a write could apply twice); while there is no leader (an election) the job
 * waits in the helper, up to GUEST_CLUSTER_LEADER_WAIT_MS, then fails saying so. An idle
 * connection found closed (its leader died since) is replaced before anything is sent on it.
 *
 * Guests' transactions (GUEST_OP_BEGIN, _TX_STMT, _COMMIT, _ROLLBACK: tx.c opens and ends them)
 * run on a second helper of the worker's (s->rtx, the same code with run_tx_job()), whose client
 * is the connection the open transaction holds on the leader: BEGIN IMMEDIATE, its statements in
 * call order, COMMIT. The worker has one transaction open at a time (tx.c queues the next), so
 * this one connection is the worker's whole pool, and the plain statements on s->rq never wait
 * behind a transaction's. The helper knows which transaction its connection holds (open_tx); a
 * request of any other (one lost with its connection: a leader change) fails saying the
 * transaction has ended, and the answer's tx_over makes the worker forget it. A request waiting
 * for the write lock (SQLITE_BUSY) is asked again by its helper before the next is taken, so no
 * request overtakes one queued before it.
 *
 * Every connection the helper opens asks the leader to bound its statements
 * (`_trail_statement_limit`, cluster/limit.c): a statement without end is interrupted there after
 * GUEST_CLUSTER_STMT_LIMIT_MS.
 *
 * Lifetimes: a job belongs to the worker's list r->out from submission until the worker takes its
 * answer (or the helper is stopped); its owner may go away before that (an isolate that dies, a
 * component instance freed, a reload): guest_sql_job_cancel() only clears its callback, and the
 * answer is then dropped. Stopping (guest_sql_free) sets r->stop, shuts down the socket of a call
 * in progress so that it fails at once, joins the helper and frees every job. */
#include "guest/guest_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster/appdb.h"
#include "cluster/cluster.h"
#include "db/db.h"

bool guest__cluster_mode(void)
{
    return adb_cluster_mode();
}

bool guest_sql_remote(const guest_sql *s)
{
    return s != NULL && s->remote;
}

/* ---- jobs and the helper thread ---- */

typedef void (*job_fn)(guest_sql *s, guest_sql_job *job);

struct guest_sql_job {
    guest_sql_job *next;          /* in r's queue or answered list: under r->mu */
    guest_sql_job *wprev, *wnext; /* r->out: the worker's */
    /* the request: written by the worker before it is queued, read-only afterwards */
    tr_arena arena; /* sql, params and their texts and blobs */
    guest__op op;
    uint32_t txid; /* the guest transaction it belongs to (GUEST_OP_STMT: 0) */
    bool rows;
    bool writes; /* the statement writes (not sqlite3_stmt_readonly on the schema mirror) */
    const char *sql;
    dq_value *params;
    size_t nparams;
    /* the answer: written by the helper, read by the worker once it is back */
    int rc;
    tr_error err;
    dq_rows dr;
    dq_result res;
    bool tx_over; /* txid has ended on the leader (rolled back there): the worker forgets it */
    /* the worker's alone */
    job_fn fn; /* NULL: cancelled, the answer is dropped */
    void *ud;
    guest_sql_job_fn vfn; /* guest_sql_remote_vals()'s caller */
    size_t max_bytes;
};

struct guest__remote {
    /* the worker's */
    guest_sql *s;
    loop *l;
    loop_io io; /* the eventfd the helper writes when it answered a job */
    int efd;
    guest_sql_job *out; /* jobs submitted and not yet delivered */
    pthread_t thread;
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job was queued, or stop */
    guest_sql_job *qhead, *qtail, *dhead, *dtail;
    bool stop;
    dq_client *calling; /* the client the helper is in a call on */
    /* the helper's */
    dq_client *leader;
    uint32_t db;
    uint64_t failure; /* query_that_writes(): the code of a COMMIT refused and rolled back */
    bool for_tx;      /* the transactions' helper (s->rtx): runs run_tx_job() */
    uint32_t open_tx; /* the transaction begun on leader, 0: none (the helper's) */
};

/* A JS guest's statement out on the leader: its promise. */
struct guest__rwait {
    guest__rwait *next, *prev; /* s->rwaits */
    guest *g;
    jsg_isolate *iso;
    jsg_deferred d; /* d.promise was handed to JS */
    guest_sql_job *job;
};

static void job_free(guest_sql_job *job)
{
    dq_rows_free(&job->dr);
    tr_arena_deinit(&job->arena);
    tr_free(job);
}

/* Waits on r->cv until ms have passed or stop is set; whether stop is set. */
static bool nap(guest__remote *r, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&r->mu);
    if (!r->stop) pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    bool stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

#define STOPPING_MSG "the worker is stopping: the statement was not sent to the cluster"

/* Makes r->leader a connection to the leader with the cluster's database open on it and its
 * statements bounded there; waits for a leader until give_up_ns. Thread: the helper. */
static int find_leader(guest__remote *r, uint64_t give_up_ns, tr_error *err)
{
    if (r->leader != NULL && dq_client_idle_ok(r->leader)) return 0;
    dq_client_close(r->leader);
    r->leader = NULL;
    /* short calls while searching, so that a stop is never kept waiting long */
    static const dq_client_opts find = {GUEST_CLUSTER_FIND_CALL_MS, 64u << 20, 1u << 22};
    tr_error last = {0};
    for (;;) {
        /* foreign keys enforced, as on the worker's connection on one node (db_open) */
        static const dq_db_opts d = {GUEST_CLUSTER_DB, GUEST_CLUSTER_STMT_LIMIT_MS, true,
                                     GUEST_CLUSTER_CALL_MS};
        size_t naddrs;
        const char *const *addrs = adb_cluster_addresses(&naddrs);
        if (dq_client_open_leader_db(addrs, naddrs, &find, 1, &d, &r->leader, &r->db, &last) == 0)
            return 0;
        if (tr_now_ns() >= give_up_ns)
            return tr_error_set(err, TR_ETIMEDOUT,
                                "no leader of the cluster within %d ms (an election may be under "
                                "way, or most members are down); the statement was not sent: %s",
                                GUEST_CLUSTER_LEADER_WAIT_MS, last.msg);
        if (nap(r, 100)) return tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
    }
}

static void drop_leader(guest__remote *r)
{
    dq_client_close(r->leader);
    r->leader = NULL;
}

/* Ends the connection's transaction, or drops the connection when that fails (dqlite then drops the
 * transaction), so the next statement starts outside it. A failure of the query inside it keeps
 * r->failure 0: libdqlite 1.11's code of a failed query is unreliable (see run_job). */
static void rollback_or_drop(guest__remote *r)
{
    dq_result res;
    tr_error ignored = {0};
    if (r->leader != NULL && dq_exec_sql(r->leader, r->db, "ROLLBACK", NULL, 0, &res, &ignored) < 0)
        drop_leader(r);
}

/* A statement that writes and returns rows (query() of an INSERT ... RETURNING, say): libdqlite
 * 1.11 runs a QUERY without replicating what it wrote (the leader then aborts on its next write),
 * so it runs inside BEGIN IMMEDIATE ... COMMIT on the connection, where its pages reach the WAL
 * only at the COMMIT, which dqlite replicates through Raft like any write. *sent tells whether the
 * COMMIT went out (after that the outcome is unknown when its answer is lost). */
static int query_that_writes(guest__remote *r, guest_sql_job *job, bool *sent, tr_error *err)
{
    dq_result res;
    *sent = false;
    int rc = dq_exec_sql(r->leader, r->db, "BEGIN IMMEDIATE", NULL, 0, &res, err);
    if (rc < 0) return rc;
    uint64_t t0 = tr_now_ns();
    rc = dq_query_sql(r->leader, r->db, job->sql, job->params, job->nparams, &job->dr, err);
    if (rc == TR_ESQL && tr_now_ns() - t0 < (uint64_t)GUEST_CLUSTER_STMT_LIMIT_MS * 500000u) {
        /* libdqlite 1.11 sends a failed query's error after its column names, so the message
         * read is a column's name: the same statement as an EXEC, inside the transaction about
         * to be rolled back, gives the real one (a slow statement is not run twice) */
        tr_error again = {0};
        if (dq_exec_sql(r->leader, r->db, job->sql, job->params, job->nparams, &res, &again) ==
            TR_ESQL)
            *err = again;
    }
    if (rc < 0) {
        rollback_or_drop(r); /* a broken connection: dqlite drops its transaction */
        return rc;
    }
    *sent = true;
    rc = dq_exec_sql(r->leader, r->db, "COMMIT", NULL, 0, &res, err);
    if (rc < 0) dq_rows_free(&job->dr);
    /* a COMMIT refused (SQLITE_BUSY, say) leaves the transaction open: nothing was applied */
    if (rc == TR_ESQL && dq_client_failure_code(r->leader) != DQ_CODE_LEADERSHIP_LOST) {
        uint64_t code = dq_client_failure_code(r->leader);
        rollback_or_drop(r);
        r->failure = code;
    }
    return rc;
}

/* Runs job on the leader and leaves the answer in it. Thread: the helper. */
static void run_job(guest__remote *r, guest_sql_job *job)
{
    uint64_t give_up = tr_now_ns() + (uint64_t)GUEST_CLUSTER_LEADER_WAIT_MS * 1000000u;
    uint64_t busy_until = tr_now_ns() + (uint64_t)GUEST_CLUSTER_BUSY_WAIT_MS * 1000000u;
    unsigned busy_ms = GUEST_CLUSTER_BUSY_RETRY_MIN_MS;
    tr_error *err = &job->err;
    for (int attempt = 0;; attempt++) {
        int rc = find_leader(r, give_up, err);
        if (rc < 0) {
            job->rc = rc;
            return;
        }
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop;
        if (!stop) r->calling = r->leader;
        pthread_mutex_unlock(&r->mu);
        if (stop) {
            job->rc = tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
            return;
        }
        uint64_t sent_ns = tr_now_ns();
        bool committed_sent = true;
        r->failure = 0;
        if (job->rows && job->writes)
            rc = query_that_writes(r, job, &committed_sent, err);
        else if (job->rows)
            rc = dq_query_sql(r->leader, r->db, job->sql, job->params, job->nparams, &job->dr, err);
        else
            rc = dq_exec_sql(r->leader, r->db, job->sql, job->params, job->nparams, &job->res, err);
        pthread_mutex_lock(&r->mu);
        r->calling = NULL;
        stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        job->rc = rc;
        if (rc == 0) return;
        uint64_t code = r->failure                   ? r->failure
                        : rc == TR_ESQL && r->leader ? dq_client_failure_code(r->leader)
                                                     : 0;
        if (rc == TR_ESQL && (code & 0xff) == DQ_CODE_BUSY && !(job->rows && !job->writes)) {
            /* another connection's write holds the leader's write lock: nothing ran, ask again
             * (a query's failure code is unreliable in libdqlite 1.11: see below) */
            if (tr_now_ns() < busy_until) {
                if (nap(r, busy_ms)) {
                    job->rc = tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
                    return;
                }
                busy_ms = busy_ms * 2 < GUEST_CLUSTER_BUSY_RETRY_MAX_MS
                              ? busy_ms * 2
                              : GUEST_CLUSTER_BUSY_RETRY_MAX_MS;
                attempt--;
                continue;
            }
            job->rc = tr_error_set(err, TR_ESQL,
                                   "database is locked: other writes held the cluster leader's "
                                   "write lock for more than %d ms; the statement did not run",
                                   GUEST_CLUSTER_BUSY_WAIT_MS);
        } else if (!committed_sent && rc != TR_ESQL) {
            /* the connection broke before the COMMIT went out: dqlite drops the transaction */
            drop_leader(r);
            job->rc = tr_error_set(err, rc,
                                   "the connection to the cluster's leader failed before the "
                                   "statement was committed; it was not applied");
        } else if (code == DQ_CODE_NOT_LEADER) {
            /* nothing ran: the leader changed since the connection was made */
            drop_leader(r);
            if (attempt == 0) continue;
            job->rc = tr_error_set(err, TR_ESQL,
                                   "the cluster's leader changed twice while the statement was "
                                   "sent; it did not run: try again");
        } else if (code == DQ_CODE_LEADERSHIP_LOST) {
            drop_leader(r);
            job->rc = tr_error_set(err, TR_ESQL,
                                   "the cluster's leader lost its leadership while running the "
                                   "statement: its outcome is unknown (it may have been applied; "
                                   "trail does not send it again)");
        } else if (rc == TR_ESQL &&
                   (code == DQ_CODE_INTERRUPTED ||
                    (job->rows &&
                     tr_now_ns() - sent_ns >= (uint64_t)GUEST_CLUSTER_STMT_LIMIT_MS * 1000000u))) {
            /* libdqlite 1.11 writes a query's failure after the column names it had begun to
             * send, so the code reads as the column count: a query that failed after running
             * for the limit was interrupted there */
            job->rc = tr_error_set(err, TR_ESQL,
                                   "interrupted: the SQL statement ran past its limit of %d ms on "
                                   "the cluster's leader",
                                   GUEST_CLUSTER_STMT_LIMIT_MS);
        } else if (rc != TR_ESQL && rc != TR_EINVAL) {
            /* TR_EINVAL: a parameter the protocol cannot carry, refused before anything was
             * sent. Anything else broke the connection after the statement may have reached
             * the leader. */
            drop_leader(r);
            if (stop)
                job->rc = tr_error_set(err, TR_ETIMEDOUT,
                                       "the worker stopped while the statement was on the "
                                       "cluster's leader: its outcome is unknown");
            else {
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err->msg); /* err is rewritten below */
                job->rc = tr_error_set(err, rc,
                                       "the connection to the cluster's leader failed after the "
                                       "statement was sent: its outcome is unknown (it may have "
                                       "been applied; trail does not send it again): %s",
                                       why);
            }
        }
        return;
    }
}

/* ---- transactions: the held connection ---- */

/* Marks the helper in a call on its client (a stop then cuts it short); false when stopping. */
static bool call_begin(guest__remote *r)
{
    pthread_mutex_lock(&r->mu);
    bool stop = r->stop;
    if (!stop) r->calling = r->leader;
    pthread_mutex_unlock(&r->mu);
    return !stop;
}

static void call_end(guest__remote *r)
{
    pthread_mutex_lock(&r->mu);
    r->calling = NULL;
    pthread_mutex_unlock(&r->mu);
}

#define TX_LOST_MSG                                                                              \
    "the transaction has ended: the cluster's leader changed or the connection to it broke, "    \
    "and dqlite rolled the transaction back (nothing of it was applied)"
#define TX_OVER_MSG                                                                              \
    "the transaction has ended on the cluster's leader (it was rolled back there after an "      \
    "error, or the leader changed): nothing of it was applied"

/* BEGIN IMMEDIATE on a connection to the leader, which r then holds for job's transaction:
 * asked again while other connections hold the write lock (SQLITE_BUSY: nothing ran) for up to
 * GUEST_CLUSTER_BUSY_WAIT_MS, and once more on a leader found anew when the connection turns out
 * to be to a follower or broken (a BEGIN lost with its connection is rolled back by dqlite). */
static int tx_begin_remote(guest__remote *r, guest_sql_job *job, tr_error *err)
{
    if (r->open_tx != 0) { /* one the worker forgot without its ROLLBACK: never kept */
        rollback_or_drop(r);
        r->open_tx = 0;
    }
    uint64_t give_up = tr_now_ns() + (uint64_t)GUEST_CLUSTER_LEADER_WAIT_MS * 1000000u;
    uint64_t busy_until = tr_now_ns() + (uint64_t)GUEST_CLUSTER_BUSY_WAIT_MS * 1000000u;
    unsigned busy_ms = GUEST_CLUSTER_BUSY_RETRY_MIN_MS;
    for (int attempt = 0;; attempt++) {
        int rc = find_leader(r, give_up, err);
        if (rc < 0) return rc;
        if (!call_begin(r)) return tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
        dq_result res;
        rc = dq_exec_sql(r->leader, r->db, "BEGIN IMMEDIATE", NULL, 0, &res, err);
        call_end(r);
        if (rc == 0) {
            r->open_tx = job->txid;
            return 0;
        }
        uint64_t code = rc == TR_ESQL ? dq_client_failure_code(r->leader) : 0;
        if (rc == TR_ESQL && (code & 0xff) == DQ_CODE_BUSY) {
            if (tr_now_ns() >= busy_until)
                return tr_error_set(err, TR_ESQL,
                                    "database is locked: other writes held the cluster leader's "
                                    "write lock for more than %d ms; the transaction did not "
                                    "begin",
                                    GUEST_CLUSTER_BUSY_WAIT_MS);
            if (nap(r, busy_ms)) return tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
            busy_ms = TR_MIN(busy_ms * 2, GUEST_CLUSTER_BUSY_RETRY_MAX_MS);
            attempt--;
            continue;
        }
        if (rc == TR_ESQL && code != DQ_CODE_NOT_LEADER && code != DQ_CODE_LEADERSHIP_LOST)
            return rc;
        drop_leader(r);
        if (attempt < 2) continue;
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return tr_error_set(err, rc == TR_ESQL ? TR_ESQL : rc,
                            "the transaction did not begin: the cluster's leader changed or the "
                            "connection to it failed: %s",
                            why);
    }
}

/* Whether the held connection is still in a transaction after one of its statements failed
 * (SQLite rolls a transaction back by itself after some errors): a BEGIN inside one fails, and
 * one that began is ended again at once. */
static bool tx_still_open(guest__remote *r)
{
    dq_result res;
    tr_error ignored = {0};
    if (!call_begin(r)) return false;
    int rc = dq_exec_sql(r->leader, r->db, "BEGIN", NULL, 0, &res, &ignored);
    call_end(r);
    if (rc == TR_ESQL && dq_client_failure_code(r->leader) == SQLITE_ERROR) return true;
    if (rc == 0)
        rollback_or_drop(r);
    else
        drop_leader(r);
    return false;
}

/* A query that failed inside the transaction: libdqlite 1.11 sends its error after the column
 * names, so the message read is unreliable; the same statement run as an EXEC inside a savepoint
 * that is rolled back at once gives SQLite's real message (a failed statement changed nothing,
 * and whatever the second run does is undone). */
static void tx_query_error(guest__remote *r, guest_sql_job *job, tr_error *err)
{
    dq_result res;
    tr_error again = {0}, ignored = {0};
    if (!call_begin(r)) return;
    if (dq_exec_sql(r->leader, r->db, "SAVEPOINT _trail_error", NULL, 0, &res, &ignored) == 0) {
        if (dq_exec_sql(r->leader, r->db, job->sql, job->params, job->nparams, &res, &again) ==
            TR_ESQL)
            *err = again;
        if (dq_exec_sql(r->leader, r->db, "ROLLBACK TO _trail_error", NULL, 0, &res, &ignored) <
                0 ||
            dq_exec_sql(r->leader, r->db, "RELEASE _trail_error", NULL, 0, &res, &ignored) < 0) {
            call_end(r);
            drop_leader(r); /* the transaction is gone with the connection */
            r->open_tx = 0;
            job->tx_over = true;
            return;
        }
    }
    call_end(r);
}

/* Runs a transaction's job on the connection r holds for it. Thread: the transactions' helper. */
static void run_tx_job(guest__remote *r, guest_sql_job *job)
{
    tr_error *err = &job->err;
    if (job->op == GUEST_OP_BEGIN) {
        job->rc = tx_begin_remote(r, job, err);
        return;
    }
    if (r->open_tx != job->txid || r->leader == NULL) {
        /* lost with its connection, or ended by an earlier statement's failure */
        job->rc = job->op == GUEST_OP_ROLLBACK ? 0 : tr_error_set(err, TR_ESQL, TX_LOST_MSG);
        job->tx_over = true;
        return;
    }
    if (!call_begin(r)) {
        job->rc = tr_error_set(err, TR_ETIMEDOUT, STOPPING_MSG);
        return;
    }
    dq_result res;
    uint64_t sent_ns = tr_now_ns();
    int rc;
    if (job->op == GUEST_OP_ROLLBACK)
        rc = dq_exec_sql(r->leader, r->db, "ROLLBACK", NULL, 0, &res, err);
    else if (job->op == GUEST_OP_COMMIT)
        rc = dq_exec_sql(r->leader, r->db, "COMMIT", NULL, 0, &res, err);
    else if (job->rows)
        rc = dq_query_sql(r->leader, r->db, job->sql, job->params, job->nparams, &job->dr, err);
    else
        rc = dq_exec_sql(r->leader, r->db, job->sql, job->params, job->nparams, &job->res, err);
    call_end(r);
    bool stop = false;
    pthread_mutex_lock(&r->mu);
    stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    job->rc = rc;
    if (job->op == GUEST_OP_ROLLBACK) {
        if (rc < 0) drop_leader(r); /* dqlite rolls back what a closed connection left open */
        r->open_tx = 0;
        job->rc = 0;
        return;
    }
    if (rc == 0) {
        if (job->op == GUEST_OP_COMMIT) r->open_tx = 0;
        return;
    }
    if (rc == TR_EINVAL) return; /* a parameter the protocol cannot carry: nothing was sent */
    dq_rows_free(&job->dr);
    uint64_t code = rc == TR_ESQL ? dq_client_failure_code(r->leader) : 0;
    bool commit = job->op == GUEST_OP_COMMIT;
    if (rc != TR_ESQL || code == DQ_CODE_NOT_LEADER || code == DQ_CODE_LEADERSHIP_LOST) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        drop_leader(r);
        r->open_tx = 0;
        job->tx_over = true;
        if (commit && (rc != TR_ESQL || code == DQ_CODE_LEADERSHIP_LOST))
            job->rc = tr_error_set(err, rc,
                                   "%s while the transaction's COMMIT was on the cluster's "
                                   "leader: its outcome is unknown (it may have been committed; "
                                   "trail does not send it again): %s",
                                   stop ? "the worker stopped" : "the connection failed", why);
        else
            job->rc = tr_error_set(err, rc, "%s: %s", TX_LOST_MSG, why);
        return;
    }
    if (commit) { /* refused (a deferred constraint, say): nothing was committed */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rollback_or_drop(r);
        r->open_tx = 0;
        job->tx_over = true;
        job->rc = tr_error_set(err, TR_ESQL, "%s; the transaction was rolled back", why);
        return;
    }
    if ((!job->rows && code == DQ_CODE_INTERRUPTED) ||
        (job->rows && tr_now_ns() - sent_ns >= (uint64_t)GUEST_CLUSTER_STMT_LIMIT_MS * 1000000u)) {
        /* SQLite rolls back a transaction whose write was interrupted; end it either way */
        rollback_or_drop(r);
        r->open_tx = 0;
        job->tx_over = true;
        job->rc = tr_error_set(err, TR_ESQL,
                               "interrupted: the SQL statement ran past its limit of %d ms on the "
                               "cluster's leader; the transaction was rolled back",
                               GUEST_CLUSTER_STMT_LIMIT_MS);
        return;
    }
    if (job->rows) tx_query_error(r, job, err);
    if (r->open_tx == job->txid && !tx_still_open(r)) {
        r->open_tx = 0;
        job->tx_over = true;
    }
}

static void *helper_main(void *arg)
{
    guest__remote *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->qhead == NULL)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) break;
        guest_sql_job *job = r->qhead;
        r->qhead = job->next;
        if (r->qhead == NULL) r->qtail = NULL;
        pthread_mutex_unlock(&r->mu);
        if (r->for_tx)
            run_tx_job(r, job);
        else
            run_job(r, job);
        pthread_mutex_lock(&r->mu);
        job->next = NULL;
        if (r->dtail)
            r->dtail->next = job;
        else
            r->dhead = job;
        r->dtail = job;
        uint64_t one = 1;
        /* an eventfd's counter cannot overflow here: the worker reads it every iteration */
        if (write(r->efd, &one, sizeof one) < 0)
            tr_log_error(GUEST_LOG_PREFIX "cluster: waking the worker failed: %s", strerror(errno));
    }
    pthread_mutex_unlock(&r->mu);
    drop_leader(r);
    return NULL;
}

static void unlink_out(guest__remote *r, guest_sql_job *job)
{
    if (job->wprev)
        job->wprev->wnext = job->wnext;
    else
        r->out = job->wnext;
    if (job->wnext) job->wnext->wprev = job->wprev;
    job->wprev = job->wnext = NULL;
}

/* The worker's side of the eventfd: delivers every answered job, in the order they were run. */
static void on_answers(loop *l, loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    guest__remote *r = TR_CONTAINER_OF(io, guest__remote, io);
    uint64_t n;
    if (read(r->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        tr_log_error(GUEST_LOG_PREFIX "cluster: reading the eventfd failed: %s", strerror(errno));
    pthread_mutex_lock(&r->mu);
    guest_sql_job *list = r->dhead;
    r->dhead = r->dtail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (list != NULL) {
        guest_sql_job *job = list;
        list = job->next;
        unlink_out(r, job);
        /* the transaction is over on the leader: forgotten before its owner hears of it, so that
         * what the owner does next sees it ended */
        if (job->tx_over || (job->op == GUEST_OP_BEGIN && job->rc < 0))
            guest__tx_remote_over(r->s, job->txid, job->tx_over ? TX_OVER_MSG : NULL);
        /* the callback may run guest code, which may submit or cancel other jobs: this one is
         * off every list, and cancelling only clears a callback */
        if (job->fn) job->fn(r->s, job);
        job_free(job);
    }
}

/* Starts the helper of s that for_tx names (s->rtx: the transactions', s->rq: the statements'). */
static int remote_start(guest_sql *s, bool for_tx, tr_error *err)
{
    guest__remote **slot = for_tx ? &s->rtx : &s->rq;
    if (*slot != NULL) return 0;
    if (s->loop == NULL)
        return tr_error_set(err, TR_ESQL, "the cluster's database is not available here");
    guest__remote *r = tr_calloc(1, sizeof *r);
    r->s = s;
    r->l = s->loop;
    r->for_tx = for_tx;
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0) {
        int rc = -errno;
        tr_free(r);
        return tr_error_set(err, rc, "cluster: eventfd: %s", tr_strerror(rc));
    }
    int rc = loop_io_add(r->l, &r->io, r->efd, EPOLLIN, on_answers);
    if (rc < 0) {
        close(r->efd);
        tr_free(r);
        return tr_error_set(err, rc, "cluster: %s", tr_strerror(rc));
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    int prc = pthread_create(&r->thread, NULL, helper_main, r);
    if (prc != 0) {
        loop_io_del(r->l, &r->io);
        close(r->efd);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        tr_free(r);
        return tr_error_set(err, -prc, "cluster: starting the worker's client thread: %s",
                            strerror(prc));
    }
    *slot = r;
    return 0;
}

static void remote_stop(guest__remote *r)
{
    if (r == NULL) return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    if (r->calling) dq_client_abort(r->calling);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    /* every job is on r->out: queued, answered, or both (the helper is gone) */
    while (r->out != NULL) {
        guest_sql_job *job = r->out;
        unlink_out(r, job);
        job_free(job);
    }
    loop_io_del(r->l, &r->io);
    close(r->efd);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    tr_free(r);
}

void guest__sql_remote_close(guest_sql *s)
{
    remote_stop(s->rq);
    remote_stop(s->rtx);
    s->rq = s->rtx = NULL;
    /* the guests' promises went with their guests (guest__sql_remote_forget) */
    while (s->rwaits != NULL) {
        guest__rwait *w = s->rwaits;
        s->rwaits = w->next;
        if (!jsg_isolate_dead(w->iso)) jsg_deferred_free(w->iso, &w->d);
        tr_free(w);
    }
}

/* Queues job (its request filled in) for its helper: a transaction's for the transactions'. */
static void submit(guest_sql *s, guest_sql_job *job)
{
    guest__remote *r = job->op == GUEST_OP_STMT ? s->rq : s->rtx;
    job->wnext = r->out;
    if (r->out) r->out->wprev = job;
    r->out = job;
    pthread_mutex_lock(&r->mu);
    job->next = NULL;
    if (r->qtail)
        r->qtail->next = job;
    else
        r->qhead = job;
    r->qtail = job;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void guest_sql_job_cancel(guest_sql *s, guest_sql_job *job)
{
    (void)s;
    if (job != NULL) job->fn = NULL;
}

/* ---- requests ---- */

/* The guest's parameters as dqlite values in job's arena, typed as bind_params() binds them
 * locally; texts and blobs are copied (the protocol's texts end with a NUL). */
static int remote_params(const jsg_val *params, guest_sql_job *job, tr_error *err)
{
    tr_arena *a = &job->arena;
    size_t got = params ? params->u.arr.len : 0;
    job->params = NULL;
    job->nparams = got;
    if (got == 0) return 0;
    if (got > DQ_MAX_PARAMS)
        return tr_error_set(err, TR_ELIMIT,
                            "the statement has %zu parameters; in cluster mode at most %d", got,
                            DQ_MAX_PARAMS);
    dq_value *v = tr_arena_alloc(a, got * sizeof *v);
    for (size_t i = 0; i < got; i++) {
        const jsg_val *p = &params->u.arr.items[i];
        v[i] = (dq_value){.type = DQ_NULL};
        switch (p->type) {
        case JSG_UNDEFINED:
        case JSG_NULL:
            break;
        case JSG_BOOL:
            v[i] = (dq_value){.type = DQ_INTEGER, .i = p->u.b};
            break;
        case JSG_NUMBER:
            if (p->u.num == floor(p->u.num) && fabs(p->u.num) < 9.2e18)
                v[i] = (dq_value){.type = DQ_INTEGER, .i = (int64_t)p->u.num};
            else
                v[i] = (dq_value){.type = DQ_FLOAT, .f = p->u.num};
            break;
        case JSG_BIGINT:
            v[i] = (dq_value){.type = DQ_INTEGER, .i = p->u.big};
            break;
        case JSG_STRING:
            v[i] = (dq_value){.type = DQ_TEXT,
                              .p = tr_arena_strndup(a, p->u.str.ptr, p->u.str.len),
                              .n = p->u.str.len};
            break;
        case JSG_BYTES: {
            char *copy = tr_arena_alloc(a, p->u.str.len ? p->u.str.len : 1);
            if (p->u.str.len) memcpy(copy, p->u.str.ptr, p->u.str.len);
            v[i] = (dq_value){.type = DQ_BLOB, .p = copy, .n = p->u.str.len};
            break;
        }
        default:
            return tr_error_set(err, TR_EINVAL,
                                "SQL parameter %zu: unsupported type (use null, a number, a "
                                "bigint, a string or a Uint8Array)",
                                i + 1);
        }
    }
    job->params = v;
    return 0;
}

/* A job for op (of transaction txid) and sql (a statement's: checked against the local schema
 * first: the authorizer, the parameter count), its helper started. Errors: the statement's
 * refusal, a parameter's, the helper's start. */
static int new_job(guest_sql *s, guest__op op, uint32_t txid, bool rows, const char *sql,
                   size_t len, const jsg_val *params, guest_sql_job **out, tr_error *err)
{
    guest_sql_job *job = tr_calloc(1, sizeof *job);
    tr_arena_init(&job->arena, 1024);
    job->op = op;
    job->txid = txid;
    job->rows = rows;
    job->dr = (dq_rows)DQ_ROWS_INIT;
    int rc = 0;
    if (op == GUEST_OP_STMT || op == GUEST_OP_TX_STMT) {
        rc = guest__sql_check_remote(s, sql, len, params, op == GUEST_OP_TX_STMT, &job->arena,
                                     &job->sql, &job->writes, err);
        if (rc == 0) rc = remote_params(params, job, err);
    }
    if (rc == 0 && !(s->hook_sync && op == GUEST_OP_STMT))
        rc = remote_start(s, op != GUEST_OP_STMT, err);
    if (rc < 0) {
        job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

/* A record hook's statement (guest_sql_hook_sync): run now, its answer left in job as the
 * helper leaves one. */
static void run_sync(guest_sql *s, guest_sql_job *job)
{
    job->rc = guest__sql_run_sync(s, job->sql, job->params, job->nparams, job->rows, &job->dr,
                                  &job->res, &job->err);
}

/* ---- answers as values ---- */

/* job's rows as JS-ready values in a: an array of rows of values (vals: with the column names
 * first and every integer a bigint, as guest_sql_run_vals gives), held to limit bytes. */
static int rows_value(const guest_sql_job *job, bool vals, size_t limit, tr_arena *a, jsg_val *out,
                      tr_error *err)
{
    const dq_rows *dr = &job->dr;
    size_t n = dr->nrows + (vals ? 1 : 0), held = 0, k = 0;
    jsg_val *list = tr_arena_alloc(a, (n ? n : 1) * sizeof *list);
    if (vals) {
        jsg_val *names = tr_arena_alloc(a, (dr->ncols ? dr->ncols : 1) * sizeof *names);
        for (unsigned c = 0; c < dr->ncols; c++) {
            size_t len = strlen(dr->names[c]);
            names[c] = jsg_string(tr_arena_strndup(a, dr->names[c], len), len);
        }
        list[k++] = jsg_array(names, dr->ncols);
    }
    for (size_t r = 0; r < dr->nrows; r++) {
        jsg_val *cols = tr_arena_alloc(a, (dr->ncols ? dr->ncols : 1) * sizeof *cols);
        held += sizeof *list + dr->ncols * sizeof *cols;
        for (unsigned c = 0; c < dr->ncols; c++) {
            const dq_value *v = &dr->vals[r * dr->ncols + c];
            switch (v->type) {
            case DQ_INTEGER:
                cols[c] = vals || v->i < -9007199254740991LL || v->i > 9007199254740991LL
                              ? jsg_bigint(v->i)
                              : jsg_number((double)v->i);
                break;
            case DQ_FLOAT:
                cols[c] = jsg_number(v->f);
                break;
            case DQ_TEXT:
                cols[c] = jsg_string(tr_arena_strndup(a, v->p, v->n), v->n);
                held += v->n;
                break;
            case DQ_BLOB: {
                char *copy = tr_arena_alloc(a, v->n ? v->n : 1);
                if (v->n) memcpy(copy, v->p, v->n);
                cols[c] = jsg_bytes(copy, v->n);
                held += v->n;
                break;
            }
            default:
                cols[c] = jsg_null();
            }
        }
        list[k++] = jsg_array(cols, dr->ncols);
        if (held > limit)
            return tr_error_set(err, TR_ELIMIT,
                                "the query's rows take more than the %s's memory limit of %zu MiB "
                                "(runtime.memory_limit_mb): select fewer rows (LIMIT)",
                                vals ? "instance" : "isolate", limit >> 20);
    }
    *out = jsg_array(list, k);
    return 0;
}

/* ---- TS/JS guests: query() and execute() ---- */

static void rwait_unlink(guest_sql *s, guest__rwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        s->rwaits = w->next;
    if (w->next) w->next->prev = w->prev;
}

/* The answer of a JS guest's statement: its promise settled in its isolate. Thread: the worker. */
static void js_done(guest_sql *s, guest_sql_job *job)
{
    guest__rwait *w = job->ud;
    rwait_unlink(s, w);
    jsg_isolate *iso = w->iso;
    if (jsg_isolate_dead(iso)) { /* it trapped meanwhile: nothing to settle (as guest/tx.c) */
        guest *g = w->g;
        tr_free(w);
        guest__wake(g);
        return;
    }
    tr_error why = job->err, err = {0};
    int rc = job->rc;
    jsg_ref value = 0;
    if (rc == 0) {
        tr_arena a;
        tr_arena_init(&a, 16384);
        jsg_val v = jsg_undefined(); /* COMMIT, ROLLBACK */
        if (job->op == GUEST_OP_BEGIN)
            v = jsg_number(job->txid);
        else if (job->op == GUEST_OP_COMMIT || job->op == GUEST_OP_ROLLBACK)
            ;
        else if (job->rows)
            rc = rows_value(job, false, jsg_memory_limit(iso), &a, &v, &why);
        else
            v = jsg_number((double)job->res.rows_affected);
        if (rc == 0) rc = jsg_from_val(iso, &v, &value, &why);
        tr_arena_deinit(&a);
    }
    int r = rc < 0 ? jsg_deferred_reject(iso, &w->d, why.msg, strlen(why.msg), &err)
                   : jsg_deferred_resolve(iso, &w->d, value, &err);
    if (value) jsg_ref_free(iso, value);
    if (r == 0) r = jsg_run_jobs(iso, &err);
    if (r < 0) tr_log_error(GUEST_LOG_PREFIX "settling a cluster statement failed: %s", err.msg);
    guest *g = w->g;
    tr_free(w);
    guest__wake(g);
}

int guest__sql_remote_call(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                           jsg_ref params, jsg_ref *result, tr_error *err)
{
    return guest__sql_remote_op(g, iso, GUEST_OP_STMT, 0, rows, sql, len, params, NULL, result,
                                err);
}

int guest__sql_remote_op(guest *g, jsg_isolate *iso, guest__op op, uint32_t txid, bool rows,
                         const char *sql, size_t len, jsg_ref params, jsg_deferred *given,
                         jsg_ref *result, tr_error *err)
{
    guest_sql *s = guest__env(g)->sql;
    tr_arena a;
    tr_arena_init(&a, 4096);
    tr_error why = {0};
    jsg_val pv, *pvp = NULL;
    int rc = 0;
    if (params != 0) {
        rc = jsg_to_val(iso, params, &a, &pv, &why);
        if (rc == 0 && pv.type != JSG_ARRAY && pv.type != JSG_UNDEFINED && pv.type != JSG_NULL)
            rc = tr_error_set(&why, TR_EINVAL, "SQL parameters must be an array");
        if (rc == 0 && pv.type == JSG_ARRAY) pvp = &pv;
    }
    guest_sql_job *job = NULL;
    if (rc == 0) rc = new_job(s, op, txid, rows, sql, len, pvp, &job, &why);
    tr_arena_deinit(&a);
    if (rc < 0 && op == GUEST_OP_BEGIN) guest__tx_remote_over(s, txid, NULL);
    if (rc < 0 && given != NULL) {
        /* JS holds given's promise already: rejected here, as an answer would have been */
        int r = jsg_rc_is_fatal(rc)
                    ? rc
                    : jsg_deferred_reject(iso, given, why.msg, strlen(why.msg), err);
        if (given->resolve || given->reject) jsg_deferred_free(iso, given);
        *given = (jsg_deferred){0};
        if (r == 0) r = jsg_run_jobs(iso, err);
        return jsg_rc_is_fatal(rc) ? tr_error_set(err, rc, "%s", why.msg) : r;
    }
    if (rc < 0) {
        if (jsg_rc_is_fatal(rc)) return tr_error_set(err, rc, "%s", why.msg);
        return guest__settled(iso, rc, 0, &why, result, err);
    }
    if (s->hook_sync && op == GUEST_OP_STMT && given == NULL) {
        run_sync(s, job);
        jsg_ref value = 0;
        why = job->err;
        rc = job->rc;
        if (rc == 0) {
            tr_arena_init(&a, 16384);
            jsg_val v = jsg_undefined();
            if (job->rows)
                rc = rows_value(job, false, jsg_memory_limit(iso), &a, &v, &why);
            else
                v = jsg_number((double)job->res.rows_affected);
            if (rc == 0) rc = jsg_from_val(iso, &v, &value, &why);
            tr_arena_deinit(&a);
        }
        job_free(job);
        if (jsg_rc_is_fatal(rc)) return tr_error_set(err, rc, "%s", why.msg);
        rc = guest__settled(iso, rc, value, &why, result, err);
        return rc;
    }
    guest__rwait *w = tr_calloc(1, sizeof *w);
    if (given != NULL) {
        w->d = *given;
        *given = (jsg_deferred){0};
    } else {
        rc = jsg_deferred_new(iso, &w->d, err);
        if (rc < 0) {
            tr_free(w);
            job_free(job);
            if (op == GUEST_OP_BEGIN) guest__tx_remote_over(s, txid, NULL);
            return rc;
        }
    }
    w->g = g;
    w->iso = iso;
    w->job = job;
    w->next = s->rwaits;
    if (s->rwaits) s->rwaits->prev = w;
    s->rwaits = w;
    job->fn = js_done;
    job->ud = w;
    submit(s, job);
    if (given == NULL) *result = w->d.promise;
    return 0;
}

void guest__sql_remote_rollback(guest_sql *s, uint32_t txid)
{
    if (s->rtx == NULL) return; /* no BEGIN was ever sent */
    guest_sql_job *job = tr_calloc(1, sizeof *job);
    tr_arena_init(&job->arena, 256);
    job->op = GUEST_OP_ROLLBACK;
    job->txid = txid;
    job->dr = (dq_rows)DQ_ROWS_INIT;
    submit(s, job); /* no callback: its answer is dropped */
}

void guest__sql_remote_forget(guest_sql *s, guest *g)
{
    for (guest__rwait *w = s->rwaits, *next; w != NULL; w = next) {
        next = w->next;
        if (w->g != g) continue;
        guest_sql_job_cancel(s, w->job);
        rwait_unlink(s, w);
        if (!jsg_isolate_dead(w->iso)) jsg_deferred_free(w->iso, &w->d);
        tr_free(w);
    }
}

/* ---- compiled components ---- */

static void vals_done(guest_sql *s, guest_sql_job *job)
{
    (void)s;
    tr_arena a;
    tr_arena_init(&a, 16384);
    tr_error why = job->err;
    int rc = job->rc;
    jsg_val v = jsg_null(); /* COMMIT, ROLLBACK */
    if (rc == 0 && job->op == GUEST_OP_BEGIN) {
        v = jsg_bigint(job->txid);
    } else if (rc == 0 && (job->op == GUEST_OP_STMT || job->op == GUEST_OP_TX_STMT)) {
        if (job->rows)
            rc = rows_value(job, true, job->max_bytes, &a, &v, &why);
        else
            v = jsg_bigint((int64_t)job->res.rows_affected);
    }
    job->vfn(job->ud, rc, &v, &why);
    tr_arena_deinit(&a);
}

int guest_sql_remote_vals(guest_sql *s, bool rows, const char *sql, size_t sql_len,
                          const jsg_val *params, size_t max_bytes, guest_sql_job_fn fn, void *ud,
                          guest_sql_job **out, tr_error *err)
{
    return guest__sql_remote_vals_op(s, GUEST_OP_STMT, 0, rows, sql, sql_len, params, max_bytes,
                                     fn, ud, out, err);
}

int guest_sql_remote_tx_vals(guest_sql *s, const void *owner, uint32_t tx, bool rows,
                             const char *sql, size_t sql_len, const jsg_val *params,
                             size_t max_bytes, guest_sql_job_fn fn, void *ud, guest_sql_job **out,
                             tr_error *err)
{
    int rc = guest_sql_tx_check(s, owner, tx, err);
    if (rc < 0) return rc;
    return guest__sql_remote_vals_op(s, GUEST_OP_TX_STMT, tx, rows, sql, sql_len, params,
                                     max_bytes, fn, ud, out, err);
}

int guest__sql_remote_vals_op(guest_sql *s, guest__op op, uint32_t txid, bool rows,
                              const char *sql, size_t sql_len, const jsg_val *params,
                              size_t max_bytes, guest_sql_job_fn fn, void *ud, guest_sql_job **out,
                              tr_error *err)
{
    guest_sql_job *job = NULL;
    int rc = new_job(s, op, txid, rows, sql, sql_len, params, &job, err);
    if (rc < 0) {
        if (op == GUEST_OP_BEGIN) guest__tx_remote_over(s, txid, NULL);
        return rc;
    }
    job->fn = vals_done;
    job->vfn = fn;
    job->ud = ud;
    job->max_bytes = max_bytes;
    if (s->hook_sync && op == GUEST_OP_STMT) {
        *out = NULL;
        run_sync(s, job);
        vals_done(s, job);
        job_free(job);
        return 0;
    }
    submit(s, job);
    *out = job;
    return 0;
}
