/* cluster/appdb.c: trail's own statements on one node or on the cluster's leader (appdb.h).
 *
 * DESIGN: one node: every call is its SQLite call, an adb_stmt * is the sqlite3_stmt *. Cluster
 * mode: an adb_stmt holds the statement prepared on the schema mirror (for its parameter and
 * column counts and whether it writes), the parameters bound to it (copied: the mirror's
 * statement is never stepped) and, once stepped, the rows the leader answered. The calling
 * thread's connection to the leader and its last error live in a per-thread state freed by a
 * pthread key's destructor when the thread ends.
 *
 * How a statement runs on the leader: one without columns is an EXEC; one with columns a QUERY.
 * libdqlite 1.11 replicates nothing that a QUERY writes (the leader then aborts on its next write),
 * so a QUERY that writes (INSERT ... RETURNING) runs inside a transaction, where its pages reach the
 * WAL only at the COMMIT, which is replicated like any write: the caller's when one is open, else
 * BEGIN IMMEDIATE ... COMMIT around it here. A failed QUERY's code and message are garbled by
 * libdqlite 1.11 (they are read after the column names it had begun to send), so the statement is
 * run again as an EXEC inside a savepoint that is then rolled back, to read the real ones. */
#include "cluster/appdb.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/cluster.h"
#include "db/db.h"

/* The calls of the client: each a few Raft round trips at most. */
#define ADB_CALL_MS      (ADB_STMT_LIMIT_MS + 2000)
#define ADB_FIND_CALL_MS 500
#define ADB_BUSY_MIN_MS  2
#define ADB_BUSY_MAX_MS  50

static char **addrs;
static size_t naddrs;
static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static void thread_free(void *p);
static void thread_key_make(void);

bool adb_cluster_mode(void)
{
    return naddrs > 0;
}

const char *const *adb_cluster_addresses(size_t *n)
{
    *n = naddrs;
    return (const char *const *)addrs;
}

void adb_cluster_publish(const char *const *addresses, size_t n)
{
    for (size_t i = 0; i < naddrs; i++)
        tr_free(addrs[i]);
    tr_free(addrs);
    addrs = NULL;
    naddrs = 0;
    if (n == 0) {
        /* the calling thread's state: other threads' go when they end */
        if (pthread_once(&thread_once, thread_key_make) == 0 && pthread_getspecific(thread_key)) {
            thread_free(pthread_getspecific(thread_key));
            pthread_setspecific(thread_key, NULL);
        }
        return;
    }
    addrs = tr_calloc(n, sizeof *addrs);
    for (size_t i = 0; i < n; i++)
        addrs[i] = tr_strdup(addresses[i]);
    naddrs = n;
}

/* ---- the calling thread's state in cluster mode ---- */

typedef struct adb_thread {
    dq_client *c; /* connected to the leader, the database open on it; NULL when none */
    uint32_t db;
    bool in_tx;        /* a transaction is open on c */
    unsigned busy_ms;  /* adb_set_busy_wait */
    int code, ext;     /* the last statement's */
    char msg[512];     /* its message */
    int64_t changes, last_id;
} adb_thread;

static void thread_free(void *p)
{
    adb_thread *t = p;
    dq_client_close(t->c);
    tr_free(t);
}

static void thread_key_make(void)
{
    pthread_key_create(&thread_key, thread_free);
}

static adb_thread *self(void)
{
    pthread_once(&thread_once, thread_key_make);
    adb_thread *t = pthread_getspecific(thread_key);
    if (t == NULL) {
        t = tr_calloc(1, sizeof *t);
        t->busy_ms = DB_BUSY_TIMEOUT_MS;
        pthread_setspecific(thread_key, t);
    }
    return t;
}

void adb_set_busy_wait(unsigned ms)
{
    if (adb_cluster_mode()) self()->busy_ms = ms;
}

/* Records the outcome of a statement: code (an SQLite code, extended or not) and its message. */
static int set_error(adb_thread *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_error(adb_thread *t, int code, const char *fmt, ...)
{
    t->ext = code;
    t->code = code & 0xff;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    return t->code;
}

static void set_ok(adb_thread *t)
{
    t->code = t->ext = SQLITE_OK;
    snprintf(t->msg, sizeof t->msg, "not an error");
}

static void drop(adb_thread *t)
{
    dq_client_close(t->c);
    t->c = NULL;
    t->in_tx = false;
}

/* Makes t->c a connection to the leader with the database open, statements bounded and foreign
 * keys enforced; waits for a leader up to ADB_LEADER_WAIT_MS. SQLITE_OK; SQLITE_BUSY (nothing was
 * sent); SQLITE_ABORT when the connection of an open transaction was lost (the transaction is
 * over). */
static int connect_leader(adb_thread *t)
{
    if (t->c != NULL && dq_client_idle_ok(t->c)) return SQLITE_OK;
    bool tx = t->in_tx;
    drop(t);
    if (tx)
        return set_error(t, SQLITE_ABORT,
                         "the connection to the cluster's leader was lost during the transaction, "
                         "which is rolled back; nothing was sent");
    static const dq_client_opts find = {ADB_FIND_CALL_MS, 64u << 20, 1u << 22};
    uint64_t give_up = tr_now_ns() + (uint64_t)ADB_LEADER_WAIT_MS * 1000000u;
    tr_error last = {0};
    for (;;) {
        /* foreign keys as db_open() sets them on one node: ON DELETE CASCADE of trail's tables */
        static const dq_db_opts d = {ADB_CLUSTER_DB, ADB_STMT_LIMIT_MS, true, ADB_CALL_MS};
        if (dq_client_open_leader_db((const char *const *)addrs, naddrs, &find, 1, &d, &t->c,
                                     &t->db, &last) == 0)
            return SQLITE_OK;
        if (tr_now_ns() >= give_up)
            return set_error(t, SQLITE_BUSY,
                             "no leader of the cluster within %d ms (an election may be under way, "
                             "or most members are down); nothing was sent: %s",
                             ADB_LEADER_WAIT_MS, last.msg);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- statements in cluster mode ---- */

struct adb_stmt {
    sqlite3_stmt *mirror; /* prepared on the schema mirror; never stepped */
    int nparams, ncols;
    bool writes;
    dq_value *params; /* nparams; texts and blobs owned */
    bool ran;
    dq_rows rows;
    size_t row; /* the next row to step onto */
    char **conv; /* per column: the current row's value as text, when asked as text */
};

#define REMOTE (adb_cluster_mode())
#define LOCAL(s) ((sqlite3_stmt *)(void *)(s))

int adb_prepare(sqlite3 *db, const char *sql, adb_stmt **out)
{
    if (!REMOTE) return sqlite3_prepare_v2(db, sql, -1, (sqlite3_stmt **)(void *)out, NULL);
    adb_thread *t = self();
    *out = NULL;
    sqlite3_stmt *m = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &m, NULL);
    if (rc != SQLITE_OK) {
        set_error(t, sqlite3_extended_errcode(db), "%s", sqlite3_errmsg(db));
        return rc;
    }
    if (m == NULL) return set_error(t, SQLITE_MISUSE, "an empty statement");
    adb_stmt *s = tr_calloc(1, sizeof *s);
    s->mirror = m;
    s->nparams = sqlite3_bind_parameter_count(m);
    s->ncols = sqlite3_column_count(m);
    s->writes = !sqlite3_stmt_readonly(m);
    s->params = tr_calloc(s->nparams > 0 ? (size_t)s->nparams : 1, sizeof *s->params);
    for (int i = 0; i < s->nparams; i++)
        s->params[i].type = DQ_NULL;
    s->conv = tr_calloc(s->ncols > 0 ? (size_t)s->ncols : 1, sizeof *s->conv);
    set_ok(t);
    *out = s;
    return SQLITE_OK;
}

int adb_bind_parameter_count(adb_stmt *s)
{
    return REMOTE ? s->nparams : sqlite3_bind_parameter_count(LOCAL(s));
}

/* The parameter i (1-based) emptied for a new value; NULL when out of range. */
static dq_value *param(adb_stmt *s, int i)
{
    if (i < 1 || i > s->nparams) {
        set_error(self(), SQLITE_RANGE, "column index out of range");
        return NULL;
    }
    dq_value *v = &s->params[i - 1];
    if (v->type == DQ_TEXT || v->type == DQ_BLOB) tr_free((void *)v->p);
    memset(v, 0, sizeof *v);
    v->type = DQ_NULL;
    return v;
}

int adb_bind_int64(adb_stmt *s, int i, int64_t x)
{
    if (!REMOTE) return sqlite3_bind_int64(LOCAL(s), i, x);
    dq_value *v = param(s, i);
    if (v == NULL) return SQLITE_RANGE;
    v->type = DQ_INTEGER;
    v->i = x;
    return SQLITE_OK;
}

int adb_bind_double(adb_stmt *s, int i, double x)
{
    if (!REMOTE) return sqlite3_bind_double(LOCAL(s), i, x);
    dq_value *v = param(s, i);
    if (v == NULL) return SQLITE_RANGE;
    v->type = DQ_FLOAT;
    v->f = x;
    return SQLITE_OK;
}

static int bind_bytes(adb_stmt *s, int i, const void *p, size_t n, int type)
{
    dq_value *v = param(s, i);
    if (v == NULL) return SQLITE_RANGE;
    char *copy = tr_malloc(n + 1);
    if (n > 0) memcpy(copy, p, n);
    copy[n] = '\0';
    v->type = type;
    v->p = copy;
    v->n = n;
    return SQLITE_OK;
}

int adb_bind_text(adb_stmt *s, int i, const char *p, int n)
{
    if (!REMOTE) return sqlite3_bind_text(LOCAL(s), i, p, n, SQLITE_TRANSIENT);
    if (p == NULL) return adb_bind_null(s, i);
    return bind_bytes(s, i, p, n < 0 ? strlen(p) : (size_t)n, DQ_TEXT);
}

int adb_bind_blob(adb_stmt *s, int i, const void *p, int n)
{
    if (!REMOTE) return sqlite3_bind_blob(LOCAL(s), i, p, n, SQLITE_TRANSIENT);
    if (p == NULL) return adb_bind_null(s, i);
    return bind_bytes(s, i, p, n < 0 ? 0 : (size_t)n, DQ_BLOB);
}

int adb_bind_null(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_bind_null(LOCAL(s), i);
    return param(s, i) ? SQLITE_OK : SQLITE_RANGE;
}

static void conv_clear(adb_stmt *s)
{
    for (int i = 0; i < s->ncols; i++) {
        tr_free(s->conv[i]);
        s->conv[i] = NULL;
    }
}

/* Whether sql (as the mirror prepared it) begins with one of the words. */
static bool starts_with_word(const char *sql, const char *word)
{
    sql += strspn(sql, " \t\r\n");
    size_t n = strlen(word);
    return strncasecmp(sql, word, n) == 0 &&
           (sql[n] == '\0' || sql[n] == ' ' || sql[n] == ';' || sql[n] == '\t' ||
            sql[n] == '\r' || sql[n] == '\n');
}

/* The failure of a call on t->c as the thread's error: the leader's code and message for a
 * statement it refused; the connection's breakage otherwise (the connection is then dropped,
 * and with it a transaction open on it). sent: whether the statement may have run. */
/* Whether the node refused the statement because the connection's database is gone: dqlite
 * closes a connection's database when its node loses the leadership, so a connection made to a
 * leader that lost and regained it answers "no database opened". Nothing ran; the connection is
 * stale, as after "not leader". */
static bool db_gone(const tr_error *err)
{
    return strstr(err->msg, "no database opened") != NULL;
}

static int call_failed(adb_thread *t, int rc, const tr_error *err, bool sent)
{
    if (rc == TR_ESQL) {
        uint64_t code = dq_client_failure_code(t->c);
        if (db_gone(err)) code = DQ_CODE_NOT_LEADER;
        if (code == DQ_CODE_LEADERSHIP_LOST || code == DQ_CODE_NOT_LEADER) {
            bool tx = t->in_tx;
            drop(t);
            if (tx)
                return set_error(t, SQLITE_ABORT,
                                 "the cluster's leader changed during the transaction, which it "
                                 "rolled back: %s",
                                 err->msg);
            if (code == DQ_CODE_NOT_LEADER)
                return set_error(t, SQLITE_BUSY, "the cluster's leader changed; nothing ran");
            return set_error(t, SQLITE_IOERR,
                             "the cluster's leader lost its leadership while running the "
                             "statement: its outcome is unknown");
        }
        if (code == DQ_CODE_INTERRUPTED)
            return set_error(t, SQLITE_INTERRUPT,
                             "interrupted: the statement ran past its limit of %d ms on the "
                             "cluster's leader",
                             ADB_STMT_LIMIT_MS);
        return set_error(t, code == 0 ? SQLITE_ERROR : (int)code, "%s", err->msg);
    }
    if (rc == TR_EINVAL) return set_error(t, SQLITE_RANGE, "%s", err->msg);
    bool tx = t->in_tx;
    drop(t);
    if (tx)
        return set_error(t, SQLITE_ABORT,
                         "the connection to the cluster's leader failed during the transaction, "
                         "which is rolled back: %s",
                         err->msg);
    if (!sent)
        return set_error(t, SQLITE_IOERR,
                         "the connection to the cluster's leader failed; nothing was applied: %s",
                         err->msg);
    return set_error(t, SQLITE_IOERR,
                     "the connection to the cluster's leader failed after the statement was sent: "
                     "its outcome is unknown: %s",
                     err->msg);
}

static int exec_on(adb_thread *t, const char *sql, const dq_value *p, size_t n, dq_result *res,
                   tr_error *err)
{
    return dq_exec_sql(t->c, t->db, sql, p, n, res, err);
}

/* A failed QUERY's real code and message: the statement again as an EXEC in a savepoint that is
 * rolled back (libdqlite 1.11 garbles a failed query's). Only for a statement that failed fast
 * (a slow one is not run twice). */
static int query_error(adb_thread *t, adb_stmt *s, const char *sql, int rc, tr_error *err,
                       uint64_t took_ns)
{
    uint64_t code = dq_client_failure_code(t->c);
    if (rc != TR_ESQL || code == DQ_CODE_NOT_LEADER || code == DQ_CODE_LEADERSHIP_LOST ||
        code == DQ_CODE_INTERRUPTED || db_gone(err))
        return call_failed(t, rc, err, true);
    if (took_ns >= (uint64_t)ADB_STMT_LIMIT_MS * 500000u)
        /* its code is garbled too; a query that failed after half its limit was interrupted */
        return set_error(t, SQLITE_INTERRUPT,
                         "interrupted: the statement ran past its limit of %d ms on the "
                         "cluster's leader",
                         ADB_STMT_LIMIT_MS);
    dq_result res;
    tr_error again = {0}, ignored = {0};
    if (exec_on(t, "SAVEPOINT adb_error", NULL, 0, &res, &ignored) == 0) {
        int rc2 = exec_on(t, sql, s->params, (size_t)s->nparams, &res, &again);
        uint64_t code2 = dq_client_failure_code(t->c);
        exec_on(t, "ROLLBACK TO adb_error; RELEASE adb_error", NULL, 0, &res, &ignored);
        if (rc2 == TR_ESQL && code2 != 0)
            return set_error(t, (int)code2, "%s", again.msg);
    }
    return call_failed(t, rc, err, true);
}

/* Runs s on the leader once: SQLITE_OK with s->rows, or an error code. */
static int run_once(adb_thread *t, adb_stmt *s, const char *sql, bool *sent)
{
    tr_error err = {0};
    dq_result res = {0, 0};
    *sent = false;
    int rc = connect_leader(t);
    if (rc != SQLITE_OK) return rc;
    *sent = true;
    if (s->ncols == 0) {
        rc = exec_on(t, sql, s->params, (size_t)s->nparams, &res, &err);
        if (rc < 0) return call_failed(t, rc, &err, true);
        t->changes = (int64_t)res.rows_affected;
        if (s->writes) t->last_id = (int64_t)res.last_insert_id;
        return SQLITE_OK;
    }
    bool wrap = s->writes && !t->in_tx;
    if (wrap) {
        *sent = false;
        rc = exec_on(t, "BEGIN IMMEDIATE", NULL, 0, &res, &err);
        if (rc < 0) return call_failed(t, rc, &err, false);
        *sent = true;
        t->in_tx = true; /* until the COMMIT: a failure rolls it back, nothing is applied */
    }
    uint64_t t0 = tr_now_ns();
    rc = dq_query_sql(t->c, t->db, sql, s->params, (size_t)s->nparams, &s->rows, &err);
    if (rc < 0) {
        int code = query_error(t, s, sql, rc, &err, tr_now_ns() - t0);
        if (wrap && t->c != NULL) {
            tr_error ignored = {0};
            if (exec_on(t, "ROLLBACK", NULL, 0, &res, &ignored) < 0) drop(t);
        }
        if (wrap) t->in_tx = false;
        return code;
    }
    t->changes = s->writes ? (int64_t)s->rows.nrows : 0;
    if (wrap) {
        t->in_tx = false; /* a COMMIT whose answer is lost has an unknown outcome */
        rc = exec_on(t, "COMMIT", NULL, 0, &res, &err);
        if (rc < 0) {
            dq_rows_free(&s->rows);
            int code = call_failed(t, rc, &err, true);
            if (t->c != NULL) {
                /* a COMMIT refused (SQLITE_BUSY) leaves the transaction open: nothing applied */
                tr_error ignored = {0};
                if (exec_on(t, "ROLLBACK", NULL, 0, &res, &ignored) < 0) drop(t);
            }
            return code;
        }
    }
    return SQLITE_OK;
}

/* Runs s on the leader, waiting out another connection's write lock (outside a transaction) for
 * the thread's busy wait. */
static int run(adb_stmt *s)
{
    adb_thread *t = self();
    const char *sql = sqlite3_sql(s->mirror);
    uint64_t until = tr_now_ns() + (uint64_t)t->busy_ms * 1000000u;
    unsigned nap = ADB_BUSY_MIN_MS;
    for (int attempt = 0;; attempt++) {
        bool sent = false;
        int rc = run_once(t, s, sql, &sent);
        if (rc == SQLITE_OK) {
            set_ok(t);
            return rc;
        }
        bool retry_leader = rc == SQLITE_BUSY && t->c == NULL && sent && attempt == 0;
        bool locked = rc == SQLITE_BUSY && t->c != NULL && !t->in_tx && tr_now_ns() < until;
        if (retry_leader) continue; /* "not leader": nothing ran, ask the new one */
        if (!locked) return rc;
        struct timespec ts = {0, (long)nap * 1000000L};
        nanosleep(&ts, NULL);
        nap = nap * 2 < ADB_BUSY_MAX_MS ? nap * 2 : ADB_BUSY_MAX_MS;
    }
}

int adb_step(adb_stmt *s)
{
    if (!REMOTE) return sqlite3_step(LOCAL(s));
    conv_clear(s);
    if (!s->ran) {
        s->ran = true;
        s->row = 0;
        int rc = run(s);
        if (rc != SQLITE_OK) return rc;
    }
    if (s->row >= s->rows.nrows) return SQLITE_DONE;
    s->row++;
    return SQLITE_ROW;
}

int adb_column_count(adb_stmt *s)
{
    return REMOTE ? s->ncols : sqlite3_column_count(LOCAL(s));
}

/* Column i of the current row; NULL when there is none. */
static const dq_value *col(adb_stmt *s, int i)
{
    if (s->row == 0 || s->row > s->rows.nrows || i < 0 || (unsigned)i >= s->rows.ncols)
        return NULL;
    return &s->rows.vals[(s->row - 1) * s->rows.ncols + (size_t)i];
}

int adb_column_type(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_type(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL) return SQLITE_NULL;
    switch (v->type) {
    case DQ_INTEGER: return SQLITE_INTEGER;
    case DQ_FLOAT: return SQLITE_FLOAT;
    case DQ_TEXT: return SQLITE_TEXT;
    case DQ_BLOB: return SQLITE_BLOB;
    default: return SQLITE_NULL;
    }
}

int64_t adb_column_int64(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_int64(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL) return 0;
    if (v->type == DQ_INTEGER) return v->i;
    if (v->type == DQ_FLOAT) return (int64_t)v->f;
    if (v->type == DQ_TEXT) return strtoll(v->p, NULL, 10);
    return 0;
}

int adb_column_int(adb_stmt *s, int i)
{
    return REMOTE ? (int)adb_column_int64(s, i) : sqlite3_column_int(LOCAL(s), i);
}

double adb_column_double(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_double(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL) return 0;
    if (v->type == DQ_FLOAT) return v->f;
    if (v->type == DQ_INTEGER) return (double)v->i;
    if (v->type == DQ_TEXT) return strtod(v->p, NULL);
    return 0;
}

const unsigned char *adb_column_text(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_text(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL || v->type == DQ_NULL) return NULL;
    if (v->type == DQ_TEXT || v->type == DQ_BLOB) return (const unsigned char *)v->p;
    if (s->conv[i] == NULL) {
        char buf[64];
        if (v->type == DQ_INTEGER)
            snprintf(buf, sizeof buf, "%lld", (long long)v->i);
        else
            sqlite3_snprintf(sizeof buf, buf, "%!.15g", v->f);
        s->conv[i] = tr_strdup(buf);
    }
    return (const unsigned char *)s->conv[i];
}

const void *adb_column_blob(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_blob(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL || v->type == DQ_NULL) return NULL;
    if (v->type == DQ_TEXT || v->type == DQ_BLOB) return v->n > 0 ? v->p : NULL;
    return adb_column_text(s, i);
}

int adb_column_bytes(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_bytes(LOCAL(s), i);
    const dq_value *v = col(s, i);
    if (v == NULL || v->type == DQ_NULL) return 0;
    if (v->type == DQ_TEXT || v->type == DQ_BLOB) return (int)v->n;
    return (int)strlen((const char *)adb_column_text(s, i));
}

const char *adb_column_name(adb_stmt *s, int i)
{
    if (!REMOTE) return sqlite3_column_name(LOCAL(s), i);
    return sqlite3_column_name(s->mirror, i);
}

int adb_reset(adb_stmt *s)
{
    if (!REMOTE) return sqlite3_reset(LOCAL(s));
    conv_clear(s);
    dq_rows_free(&s->rows);
    s->ran = false;
    s->row = 0;
    return SQLITE_OK;
}

void adb_take_rows(adb_stmt *s, dq_rows *out)
{
    if (!REMOTE || s == NULL) return;
    conv_clear(s);
    *out = s->rows;
    s->rows = (dq_rows)DQ_ROWS_INIT;
    s->row = 0;
}

int adb_finalize(adb_stmt *s)
{
    if (!REMOTE) return sqlite3_finalize(LOCAL(s));
    if (s == NULL) return SQLITE_OK;
    adb_reset(s);
    for (int i = 1; i <= s->nparams; i++)
        param(s, i);
    tr_free(s->params);
    tr_free(s->conv);
    sqlite3_finalize(s->mirror);
    tr_free(s);
    return SQLITE_OK;
}

/* ---- whole statements and the connection's state ---- */

/* How sql changes whether a transaction is open: +1 opens one, -1 ends it, 0 neither. */
static int tx_effect(const char *sql, bool in_tx)
{
    if (starts_with_word(sql, "BEGIN")) return 1;
    if (starts_with_word(sql, "SAVEPOINT")) return in_tx ? 0 : 1;
    if (starts_with_word(sql, "COMMIT") || starts_with_word(sql, "END")) return -1;
    if (starts_with_word(sql, "ROLLBACK")) {
        const char *p = sql + strspn(sql, " \t\r\n") + 8;
        p += strspn(p, " \t\r\n");
        if (starts_with_word(p, "TRANSACTION")) p += 11 + strspn(p + 11, " \t\r\n");
        return starts_with_word(p, "TO") ? 0 : -1;
    }
    return 0;
}

int adb_exec(sqlite3 *db, const char *sql)
{
    if (!REMOTE) return sqlite3_exec(db, sql, NULL, NULL, NULL);
    adb_thread *t = self();
    int effect = tx_effect(sql, t->in_tx);
    if (effect < 0 && t->c == NULL) {
        /* the connection (and its transaction) is gone: nothing to end */
        t->in_tx = false;
        if (starts_with_word(sql, "ROLLBACK")) {
            set_ok(t);
            return SQLITE_OK;
        }
        return set_error(t, SQLITE_ABORT, "the transaction was lost with the cluster's leader");
    }
    if (t->in_tx && t->c == NULL) t->in_tx = false;
    bool rollback = effect < 0 && starts_with_word(sql, "ROLLBACK");
    int rc = connect_leader(t);
    if (rc == SQLITE_ABORT && rollback) {
        set_ok(t); /* the transaction went with its connection */
        return SQLITE_OK;
    }
    if (rc != SQLITE_OK) return rc;
    tr_error err = {0};
    dq_result res = {0, 0};
    rc = exec_on(t, sql, NULL, 0, &res, &err);
    if (rc < 0) {
        int code = call_failed(t, rc, &err, effect <= 0);
        if (code == SQLITE_ABORT && rollback) {
            set_ok(t);
            return SQLITE_OK;
        }
        /* a COMMIT that failed leaves the transaction open on the leader, as SQLite's does */
        return code;
    }
    if (effect > 0) t->in_tx = true;
    if (effect < 0) t->in_tx = false;
    t->changes = (int64_t)res.rows_affected;
    set_ok(t);
    return SQLITE_OK;
}

int adb_get_autocommit(sqlite3 *db)
{
    if (!REMOTE) return sqlite3_get_autocommit(db);
    adb_thread *t = self();
    return !(t->in_tx && t->c != NULL);
}

const char *adb_errmsg(sqlite3 *db)
{
    return REMOTE ? self()->msg : sqlite3_errmsg(db);
}

int adb_errcode(sqlite3 *db)
{
    return REMOTE ? self()->code : sqlite3_errcode(db);
}

int adb_extended_errcode(sqlite3 *db)
{
    return REMOTE ? self()->ext : sqlite3_extended_errcode(db);
}

int64_t adb_changes(sqlite3 *db)
{
    return REMOTE ? self()->changes : sqlite3_changes64(db);
}

int64_t adb_last_insert_rowid(sqlite3 *db)
{
    return REMOTE ? self()->last_id : sqlite3_last_insert_rowid(db);
}
