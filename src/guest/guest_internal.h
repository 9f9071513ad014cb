/* guest/guest_internal.h: what the files of src/guest/ share: the worker's SQL state (sql.c, the
 * statement cache; tx.c, transactions and the statements waiting for one to end) and the few
 * facts about a guest that tx.c needs from guest.c. */
#ifndef TRAIL_GUEST_GUEST_INTERNAL_H
#define TRAIL_GUEST_GUEST_INTERNAL_H

#include <sqlite3.h>

#include "guest/guest.h"

/* How often (in SQLite steps) a guest's running statement looks at its call's deadline: a
 * clock read every few tens of microseconds of SQL work. */
#define GUEST_SQL_CHECK_STEPS 10000

/* A statement whose rows took more than this on the host trims the heap once they are freed. */
#define GUEST_SQL_TRIM_BYTES ((size_t)8 << 20)

/* A guest's statement that needs a lock another connection holds is retried from the loop after
 * these delays (doubling from the first to the last) until DB_BUSY_TIMEOUT_MS have passed. */
#define GUEST_BUSY_RETRY_MIN_MS 2
#define GUEST_BUSY_RETRY_MAX_MS 50

/* A transaction left open longer than this is rolled back. */
#define GUEST_TX_TIMEOUT_MS 30000
/* Ids of transactions that ended without their owner asking (timed out, rolled back by SQLite
 * after an error): their next call rejects saying so. */
#define GUEST_TX_ENDED 32

/* A promise already settled, for a host call that finished at once: resolved with value (owned,
 * consumed) in one step, or rejected with an Error of why's message. A result that ends the
 * isolate (jsg_rc_is_fatal(rc)) makes no promise: it is returned, with why's message in err. */
int guest__settled(jsg_isolate *iso, int rc, jsg_ref value, const tr_error *why, jsg_ref *result,
                   tr_error *err);

typedef struct guest_tx guest_tx;
typedef struct guest__remote guest__remote;
typedef struct guest__rwait guest__rwait;
typedef struct guest_sql_wait guest_sql_wait;

/* A remembered result of an expensive read-only query (guest/sql.c): the rows for one set of
 * parameters, valid while the database's data version is the one they were read at. */
typedef struct guest__result {
    struct guest__result *next; /* the statement's results, most recently used first */
    tr_arena arena;             /* owns key and rows */
    const char *key;            /* the parameters, encoded */
    size_t key_len;
    jsg_val rows;
    size_t bytes; /* what it counts against the worker's budget */
} guest__result;

/* The one table of trail's (names beginning with '_') that a guest's SQL may read. */
#define GUEST_SQL_READABLE_TABLE "_user"

/* What the worker connection's authorizer keeps (owned by the connection: sql.c). */
typedef struct guest__auth {
    struct access_log *log; /* while a guest's statement is prepared */
    bool guest;             /* a guest's statement is prepared or runs: its rules apply */
    bool cluster;           /* cluster mode: no schema changes (the local schema is a mirror) */
    char why[256];          /* why the last refusal, for the statement's error */
} guest__auth;

typedef struct guest__cached_stmt {
    char *sql;
    size_t len;
    sqlite3_stmt *stmt;
    uint64_t last_used;
    bool reusable;           /* its results may be remembered: see sql.c */
    bool expensive;          /* a run took GUEST_RESULT_MIN_STEPS or more */
    bool ran;                /* it has run at least once */
    int reprepares;          /* SQLite's re-prepare count when reusable was decided */
    guest__result *results;  /* remembered results */
    size_t nresults;
} guest__cached_stmt;

struct guest_sql {
    struct db_conn *db;
    guest__cached_stmt cache[GUEST_MAX_SQL_CACHE];
    size_t ncache;
    guest__cached_stmt oneoff; /* a statement too large to cache, while it runs */
    uint64_t clock;
    guest__auth *auth;
    /* remembered results (sql.c) */
    size_t result_budget;       /* bytes; 0 remembers nothing */
    size_t result_bytes;        /* held now */
    unsigned data_version;      /* the database version every remembered result is of */
    sqlite3_stmt *version_stmt; /* PRAGMA data_version, to start a read transaction */
    uint64_t result_hits, results_kept;
    /* the isolate whose statement is running (for the progress callback: sql.c), and whether
     * the callback stopped it */
    jsg_isolate *running;
    bool stopped;
    uint64_t cpu_deadline_ns; /* guest_sql_run_vals(): when running is NULL; 0: none */
    /* transactions (guest/tx.c) */
    loop *loop;   /* the worker's loop; set by the first txBegin */
    guest_tx *tx; /* the open transaction, or NULL */
    uint32_t last_tx_id;
    uint64_t tx_timeout_ms; /* GUEST_TX_TIMEOUT_MS unless a test changes it */
    struct {
        uint32_t id;
        const char *why;
    } ended[GUEST_TX_ENDED]; /* a ring; next slot at nended % GUEST_TX_ENDED */
    size_t nended;
    guest_sql_wait *qhead, *qtail; /* statements waiting for the connection, in call order */
    loop_timer drain;              /* runs the waiting statements once no transaction is open */
    /* statements parked because another connection held a lock they need (guest/tx.c) */
    bool busy;                     /* the last statement failed so, and may be run again */
    uint64_t busy_since_ns;        /* the busy handler's wait, for trail's own statements */
    bool nowait;                   /* guest_sql_set_nowait(): the busy handler does not wait */
    guest_sql_wait *bhead, *btail; /* in call order */
    loop_timer retry;              /* runs them again */
    unsigned retry_ms;             /* the next retry's delay: GUEST_BUSY_RETRY_MIN_MS, doubling */
    /* cluster mode (adb_cluster_publish): statements run on the leader (cluster.c) */
    bool remote;
    guest__remote *rq;     /* the helper thread and its client; NULL until first used */
    guest__rwait *rwaits;  /* JS guests' statements out on the leader */
    guest__remote *rtx;    /* the transactions' helper thread and its held client; NULL until
                            * the first transaction */
    bool hook_sync; /* guest_sql_hook_sync(): statements run at once through cluster/appdb */
};

/* Cluster mode's bounds (docs/limits.md). How long a statement waits for a leader (an election
 * takes 3-6 s) before it fails, unsent. */
#define GUEST_CLUSTER_LEADER_WAIT_MS 10000
/* The wall time a guest's statement may run on the leader before it is interrupted there: below
 * dqlite's 3 s election timeout, because a statement holds the leader's only thread (its Raft
 * heartbeats too). */
#define GUEST_CLUSTER_STMT_LIMIT_MS 2000
/* How long a write waits, asked again 2, 4, ... 50 ms apart, while other connections' writes hold
 * the leader's write lock (dqlite answers SQLITE_BUSY at once: nothing ran), as on one node. */
#define GUEST_CLUSTER_BUSY_WAIT_MS      5000
#define GUEST_CLUSTER_BUSY_RETRY_MIN_MS 2
#define GUEST_CLUSTER_BUSY_RETRY_MAX_MS 50
/* The deadline of one statement's round trip (its run on the leader, a commit through Raft). */
#define GUEST_CLUSTER_CALL_MS 5000
/* The deadline of each call while the leader is searched for. */
#define GUEST_CLUSTER_FIND_CALL_MS 1000

/* cluster.c: whether adb_cluster_publish() named members (cluster mode). */
bool guest__cluster_mode(void);
/* cluster.c: a TS/JS guest's query() (rows) or execute() in cluster mode: checked on the local
 * connection (guest__sql_check_remote), then sent to the leader by the worker's helper thread;
 * *result is a promise, pending until the leader answered (or already rejected when the check
 * refused the statement). params is borrowed. Thread: g's worker. */
int guest__sql_remote_call(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                           jsg_ref params, jsg_ref *result, tr_error *err);
/* cluster.c: g goes away: its statements' answers are dropped, their promises released. */
void guest__sql_remote_forget(guest_sql *s, guest *g);
/* cluster.c: stops s's helper threads (a call in progress fails at once) and frees their jobs. */
void guest__sql_remote_close(guest_sql *s);
/* sql.c: the prepared statement for sql (the authorizer runs when it is prepared), cached or
 * s->oneoff; params bound to it, checked against its parameter count; whether it begins with
 * BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT or RELEASE (after blanks and comments). */
int guest__sql_prepare(guest_sql *s, const char *sql, size_t len, guest__cached_stmt **out,
                       tr_error *err);
int guest__sql_bind(sqlite3_stmt *stmt, const jsg_val *params, tr_error *err);
/* sql.c: after a statement's run (or check): a one-off statement finalized, a cached one reset with
 * its bindings cleared for the next use. c may be NULL (nothing was prepared). */
void guest__sql_release(guest_sql *s, guest__cached_stmt *c);
bool guest__sql_ends_tx(sqlite3_stmt *stmt);
#define GUEST_HOST_TX_MSG                                                                        \
    "not authorized: a record hook runs inside the write's transaction and cannot end it or "   \
    "open another (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE)"
#define GUEST_CLUSTER_TX_MSG                                                                     \
    "in cluster mode a statement cannot begin or end a transaction (BEGIN, COMMIT, END, "      \
    "ROLLBACK, SAVEPOINT, RELEASE): use transaction() or beginTransaction() (a compiled "       \
    "component: tx_begin), whose statements share one connection to the cluster's leader"
#define GUEST_CLUSTER_SYNC_TX_MSG                                                                \
    "new Transaction() (synchronous) is not available in cluster mode: its statements would "  \
    "hold the worker while they go to the cluster's leader; use transaction() or "              \
    "beginTransaction() from trailbase-wasm/db"
/* What a guest's transaction in cluster mode asks of the transactions' helper (cluster.c). */
typedef enum guest__op {
    GUEST_OP_STMT,     /* a plain statement: the worker's own helper and connection */
    GUEST_OP_BEGIN,    /* BEGIN IMMEDIATE on the held connection (asked again while BUSY) */
    GUEST_OP_TX_STMT,  /* a statement of the open transaction, on the held connection */
    GUEST_OP_COMMIT,   /* answered once committed through Raft */
    GUEST_OP_ROLLBACK,
} guest__op;
/* cluster.c: a TS/JS guest's request op for transaction txid (0 for GUEST_OP_STMT): statements
 * are checked on the local connection first (a transaction's may not end it). The answer settles
 * given (a deferred whose promise JS already holds; taken over, settled even on error) or, when
 * given is NULL, a new promise put in *result (rejected at once when the check refused the
 * statement). A GUEST_OP_BEGIN that fails ends txid (guest__tx_remote_over). Thread: g's worker. */
int guest__sql_remote_op(guest *g, jsg_isolate *iso, guest__op op, uint32_t txid, bool rows,
                         const char *sql, size_t len, jsg_ref params, jsg_deferred *given,
                         jsg_ref *result, tr_error *err);
/* cluster.c: rolls back transaction txid on its held connection (nothing waits for the answer). */
void guest__sql_remote_rollback(guest_sql *s, uint32_t txid);
/* tx.c: transaction txid of s ended on the leader (its BEGIN failed, the connection was lost, the
 * leader changed, SQLite rolled it back): forgotten, if still open; why (static), when not NULL,
 * is what its next call is told. */
void guest__tx_remote_over(guest_sql *s, uint32_t txid, const char *why);
/* cluster_local.c: prepares a guest's statement on the local connection (the schema mirror: the
 * authorizer runs), binds params (checking their count and types), refuses what cluster mode does
 * not run (statements that begin or end a transaction: transactions are host calls), and gives
 * the statement's text as prepared (one statement, copied into a). Nothing is stepped. Errors: as
 * guest_sql_run's. */
int guest__sql_check_remote(guest_sql *s, const char *sql, size_t sql_len, const jsg_val *params,
                            bool in_tx, tr_arena *a, const char **text, bool *writes,
                            tr_error *err);
/* cluster_local.c: a record hook's statement (guest_sql_hook_sync), checked and its parameters
 * made by the caller: run now through cluster/appdb on this thread's connection to the leader,
 * inside the write's transaction open there; its rows (when rows) into dr, what it changed into
 * res. Errors: TR_ESQL with the leader's message. */
struct dq_value;
struct dq_rows;
struct dq_result;
int guest__sql_run_sync(guest_sql *s, const char *sql, const struct dq_value *params,
                        size_t nparams, bool rows, struct dq_rows *dr, struct dq_result *res,
                        tr_error *err);
/* cluster.c: a compiled component's request op for transaction txid (0 for GUEST_OP_STMT), as
 * guest_sql_remote_vals() (a GUEST_OP_BEGIN's answer is txid as a JSG_BIGINT, a COMMIT's or
 * ROLLBACK's null). A GUEST_OP_BEGIN that fails ends txid (guest__tx_remote_over). */
int guest__sql_remote_vals_op(guest_sql *s, guest__op op, uint32_t txid, bool rows,
                              const char *sql, size_t sql_len, const jsg_val *params,
                              size_t max_bytes, guest_sql_job_fn fn, void *ud, guest_sql_job **out,
                              tr_error *err);
/* tx.c: opens transaction (its id returned) of g or owner on s in cluster mode: only the worker's
 * record of it and its timeout; the caller sends its BEGIN (GUEST_OP_BEGIN). */
uint32_t guest__tx_open_remote(guest_sql *s, loop *l, guest *g, const void *owner);

/* guest.c: the length of the valid UTF-8 sequence at s[i] (i < n), or 0 when it is invalid
 * (overlong forms and surrogates are invalid). */
size_t guest__utf8_seq(const unsigned char *s, size_t i, size_t n);

/* json.c: len bytes of JSON text into *out (strings may point into text; the rest is allocated
 * in arena), exactly as JSON.parse reads them. False for text it does not take: invalid JSON,
 * bytes that are not UTF-8, containers nested GUEST_JSON_MAX_DEPTH deep (jsg converts at most
 * 64 levels), or a value that would take more than about max_bytes on the host. */
#define GUEST_JSON_MAX_DEPTH 60
bool guest__json_parse(const void *text, size_t len, size_t max_bytes, tr_arena *arena,
                       jsg_val *out);

/* guest.c: the environment and wake function a guest was created with. */
guest_env *guest__env(guest *g);
void guest__wake(guest *g);

/* tx.c: the transaction host functions. */
int guest__tx_begin(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err);
int guest__tx_query(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err);
int guest__tx_execute(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                      jsg_ref *result, tr_error *err);
int guest__tx_commit(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                     jsg_ref *result, tr_error *err);
int guest__tx_rollback(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                       const jsg_ref *argv, jsg_ref *result, tr_error *err);
/* The synchronous forms (the SDK's `new Transaction()`): the value itself, or a thrown Error;
 * txBeginSync throws instead of waiting when a transaction is open. */
int guest__tx_begin_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                         const jsg_ref *argv, jsg_ref *result, tr_error *err);
int guest__tx_query_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                         const jsg_ref *argv, jsg_ref *result, tr_error *err);
int guest__tx_execute_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                           const jsg_ref *argv, jsg_ref *result, tr_error *err);
int guest__tx_commit_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                          const jsg_ref *argv, jsg_ref *result, tr_error *err);
int guest__tx_rollback_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                            const jsg_ref *argv, jsg_ref *result, tr_error *err);

/* True while a plain query()/execute() must wait: a transaction is open or statements are
 * already waiting (they run in call order). */
bool guest__sql_must_wait(const guest_sql *s);

/* Queues a plain query (rows) or execute on behalf of g and gives JS a pending promise in
 * *result, settled once the connection is free. params is borrowed (a ref is kept). */
int guest__sql_enqueue(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                       jsg_ref params, jsg_ref *result, tr_error *err);

/* Parks a plain query (rows) or execute that failed for another connection's lock (s->busy):
 * JS gets a pending promise in *result, settled once a retry from the loop runs it, or
 * rejected once it has waited DB_BUSY_TIMEOUT_MS. params is borrowed (a ref is kept). */
int guest__sql_park(guest *g, jsg_isolate *iso, bool rows, const char *sql, size_t len,
                    jsg_ref params, jsg_ref *result, tr_error *err);

/* Gives s the worker's loop, for its timers (guest.c, when the environment is made). */
void guest__sql_use_loop(guest_sql *s, loop *l);

/* Called when g goes away: rolls back its open transaction and drops its waiting statements
 * (without touching its isolate if that is dead). */
void guest__sql_forget(guest *g);

/* Stops the timers and frees what tx.c holds in s (the worker is shutting down). */
void guest__tx_deinit(guest_sql *s);

#endif
