/* guest/guest.h: the environment trail gives guest code: the host functions of `__trailhost`
 * (docs/guest-abi.md) and the prelude of standard globals built on them (guest/prelude.js).
 *
 * DESIGN: a guest_env belongs to a worker and holds what its isolates share: the loop (timers),
 * the worker's database connection with its statement cache, the sandboxed filesystem. A guest
 * belongs to one isolate: its timers and the prelude's hooks. Host functions that complete at
 * once (SQL on the worker's connection, file reads) settle their promise before returning;
 * timers settle later, from the loop, and then call the owner's wake function so that it can
 * look at the promises it is waiting for. So do SQL statements made while a transaction owns the
 * connection: they wait in a queue and run from the loop once it ends (guest/tx.c).
 *
 * Thread: owning worker only. */
#ifndef TRAIL_GUEST_GUEST_H
#define TRAIL_GUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "guest/fs.h"
#include "loop/loop.h"
#include "wasm/js/jsg.h"

struct db_conn;
typedef struct guest_sql guest_sql;

/* Limits on what one isolate may ask of the host. */
#define GUEST_MAX_TIMERS     10000
#define GUEST_MAX_SQL_CACHE  64
/* A prepared statement larger than this (SQLite's own estimate: a long IN list, a generated
 * query) is run once and finalized, not cached: 64 of them could hold gigabytes. */
#define GUEST_MAX_CACHED_STMT_BYTES (256 << 10)
#define GUEST_MAX_RANDOM     65536
/* The most keys, and key bytes, one kvListKeys() call returns (more: an error asking for a
 * longer prefix). */
#define GUEST_MAX_KV_KEYS       10000
#define GUEST_MAX_KV_LIST_BYTES (4 << 20)
/* Timer callbacks each have the CPU budget, but a guest can keep re-arming short ones forever.
 * An isolate whose timer callbacks, within one window of wall-clock time, use more than
 * GUEST_MIN_TIMER_CPU_MS of CPU and more than GUEST_MAX_TIMER_CPU_PCT of what its worker thread
 * used in that window is reported (guest_take_failure() gives TR_ELIMIT) and replaced. The
 * share is of the worker's own CPU, so it trips as well on a machine whose cores are busy with
 * other work; the floor leaves light background work alone. */
#define GUEST_MAX_TIMER_CPU_PCT   50
#define GUEST_MIN_TIMER_CPU_MS    250
#define GUEST_TIMER_CPU_WINDOW_MS 1000

/* Outgoing HTTP from guests (guest/fetch.h): the `fetch { ... }` policy, filled at the top from
 * the config. Everything is borrowed and must outlive the worker. */
typedef struct guest_fetch_opts {
    bool enabled;                       /* false refuses every request */
    char *const *allowed_hosts;         /* empty = any host; "*.x" matches x's subdomains */
    size_t allowed_hosts_len;
    char *const *allowed_private_hosts; /* hosts that may resolve to loopback/private addresses */
    size_t allowed_private_hosts_len;
    uint32_t timeout_ms;                /* per request when the guest gives none */
    uint64_t max_response_bytes;        /* largest response body */
} guest_fetch_opts;

typedef struct guest_env {
    loop *loop;              /* the worker's loop, for timers; NULL: timers are refused */
    struct db_conn *db;      /* the worker's connection (borrowed); NULL: none */
    guest_sql *sql;          /* the worker's connection; NULL: query/execute reject */
    const guest_fs *fs;      /* NULL: filesystem access is not enabled */
    size_t fs_max_read;      /* largest file fsReadFile returns */
    const guest_fetch_opts *fetch_opts; /* fetch() settings (borrowed); NULL: the defaults */
    struct guest_fetch *fetch;         /* outgoing HTTP (guest/fetch.h); made at the first use */
    struct kv_store *kv; /* the process's key-value store (borrowed, shared); NULL: none */
} guest_env;

/* Prepares env over the worker's loop and database connection (either may be NULL). */
void guest_env_init(guest_env *env, loop *l, struct db_conn *db, const guest_fs *fs);
void guest_env_deinit(guest_env *env);

typedef struct guest guest;

/* Called after host-initiated guest work ran (a timer fired and pending jobs ran). */
typedef void (*guest_wake_fn)(void *owner);

/* Installs `__trailhost` in iso and evaluates the prelude. env must outlive the guest. Errors
 * carry the JS exception of a failing prelude (a trail bug) or TR_ETRAP. */
int guest_new(jsg_isolate *iso, guest_env *env, guest_wake_fn wake, void *owner, guest **out,
              tr_error *err);

/* Stops the guest's timers and releases its refs; call before freeing the isolate. NULL is a
 * no-op. */
void guest_free(guest *g);

/* TR_EINTERRUPTED or TR_ENOMEM when guest code the host ran on its own (a timer's callback, the
 * jobs after a fetch or a waiting statement settled) ran past the CPU budget or out of memory
 * since the last call (jsg_take_limit_error()), TR_ELIMIT when timer callbacks used more than
 * GUEST_MAX_TIMER_CPU_PCT of the worker's CPU, else 0; reading clears it. The owner's wake
 * function asks, and replaces the isolate as after a request that did the same. */
int guest_take_failure(guest *g);

/* The text a log line from the guest gets in front of it. */
#define GUEST_LOG_PREFIX "[WASM] "
/* The most of one console message that reaches the log (the log line is cut at 4 KiB anyway). */
#define GUEST_LOG_MAX_BYTES (1u << 20)

/* Appends s to out with what could break a log line escaped, so that one console call is one
 * line of the log: \n, \r, \t and \\ as such, other control characters (C0, DEL, and C1
 * such as CSI written as UTF-8) as \xHH. Everything else (UTF-8 text) is copied. */
void guest_log_escape(const char *s, size_t n, tr_buf *out);

/* ---- SQL on the worker's connection (guest/sql.c) ---- */

guest_sql *guest_sql_new(struct db_conn *db);
void guest_sql_free(guest_sql *s);

/* Cluster mode (docs/scaling.md, "The application database in the cluster") is on while
 * adb_cluster_publish() (cluster/appdb.h) names the members: every guest_sql made then prepares
 * a guest's statement on its local connection (the schema mirror, where the authorizer runs) and
 * runs it on the leader of the cluster's database GUEST_CLUSTER_DB, found through those members. */
#define GUEST_CLUSTER_DB "main.db"

/* Runs sql with params (a JS array, borrowed; 0 for none). For a query, *out gets the rows as a
 * JS array of arrays; for an execute, the number of rows changed. Errors: TR_ESQL with SQLite's
 * message, TR_EINVAL for a parameter that cannot be bound. */
int guest_sql_run(guest_sql *s, jsg_isolate *iso, bool rows, const char *sql, size_t sql_len,
                  jsg_ref params, jsg_ref *out, tr_error *err);

/* The same for a host that is not an isolate (compiled components, component/native_imports.c):
 * params an array of values (NULL: none; integers as JSG_BIGINT or JSG_NUMBER), the result in
 * *out allocated in a: for a query an array whose first item is the array of column names and
 * whose other items are the rows (INTEGER as JSG_BIGINT, REAL as JSG_NUMBER, TEXT, BLOB, NULL);
 * for an execute the rows changed as a JSG_BIGINT. The statement stops at the calling thread's
 * CPU time cpu_deadline_ns (0: never) with TR_EINTERRUPTED; rows or a value taking more than
 * max_bytes fail with TR_ELIMIT. Nothing is remembered between runs (no result cache). A
 * statement that fails for another connection's lock sets guest_sql_busy(). */
int guest_sql_run_vals(guest_sql *s, bool rows, const char *sql, size_t sql_len,
                       const jsg_val *params, uint64_t cpu_deadline_ns, size_t max_bytes,
                       tr_arena *a, jsg_val *out, tr_error *err);
/* Cluster mode: whether s's statements run on the cluster's leader. Then a compiled component's
 * statement goes through guest_sql_remote_vals() instead of guest_sql_run_vals(). */
bool guest_sql_remote(const guest_sql *s);
typedef struct guest_sql_job guest_sql_job;
/* The answer of a statement run on the leader: rc 0 and *out (as guest_sql_run_vals() gives it;
 * valid during the call), or rc < 0 and err's message. */
typedef void (*guest_sql_job_fn)(void *ud, int rc, const jsg_val *out, const tr_error *err);
/* Checks sql on the local connection as guest_sql_run_vals() would, then sends it to the leader
 * without blocking: fn(ud, ...) is called later from the worker's loop (never from this call; not
 * at all when this returns an error). *job identifies it until then, for guest_sql_job_cancel()
 * (its owner goes away: fn is never called). Rows taking more than max_bytes fail with
 * TR_ELIMIT. Thread: s's worker. */
int guest_sql_remote_vals(guest_sql *s, bool rows, const char *sql, size_t sql_len,
                          const jsg_val *params, size_t max_bytes, guest_sql_job_fn fn, void *ud,
                          guest_sql_job **job, tr_error *err);
/* Cluster mode: a statement of owner's transaction tx (guest_sql_tx_check() first), as
 * guest_sql_remote_vals(), on the connection the transaction holds on the leader. */
int guest_sql_remote_tx_vals(guest_sql *s, const void *owner, uint32_t tx, bool rows,
                             const char *sql, size_t sql_len, const jsg_val *params,
                             size_t max_bytes, guest_sql_job_fn fn, void *ud, guest_sql_job **job,
                             tr_error *err);
/* Cluster mode: begins a transaction for owner on a connection of its own to the leader, without
 * blocking. Sets *wait (and does nothing) while this worker's transaction is open or waiting, as
 * guest_sql_tx_begin_for(); otherwise fn(ud, rc, id as a JSG_BIGINT, err) comes from the loop
 * once BEGIN IMMEDIATE ran there (or failed). guest_sql_remote_tx_end() commits (fn once
 * committed through Raft) or rolls back owner's transaction id; out NULL for fn. */
int guest_sql_remote_tx_begin(guest_sql *s, loop *l, const void *owner, bool *wait,
                              guest_sql_job_fn fn, void *ud, guest_sql_job **job, tr_error *err);
int guest_sql_remote_tx_end(guest_sql *s, const void *owner, uint32_t id, bool commit,
                            guest_sql_job_fn fn, void *ud, guest_sql_job **job, tr_error *err);
void guest_sql_job_cancel(guest_sql *s, guest_sql_job *job);
/* Cluster mode: while on, a guest's statement is run at once on the worker's thread through
 * cluster/appdb (its connection to the leader, where trail's own transaction is open) instead of
 * by the helper thread, and its promise or handle is settled before the call returns: for a
 * caller that runs a guest synchronously inside its own transaction (a record hook). A statement
 * that would end or open a transaction is refused. */
void guest_sql_hook_sync(guest_sql *s, bool on);
/* Whether the last statement failed only for another connection's lock (run it again later). */
bool guest_sql_busy(const guest_sql *s);
/* While on, no statement on the connection waits for another connection's lock: it fails at once
 * with SQLITE_BUSY, before it did anything, as a guest's does. For a caller that waits on the
 * loop itself (the Record API's writes); off again before anything else runs on the connection. */
void guest_sql_set_nowait(guest_sql *s, bool on);
/* Whether a statement must wait now: a transaction is open on the connection, or statements
 * already wait for one (they run in call order). */
bool guest_sql_must_wait(const guest_sql *s);
/* Whether trail itself holds a transaction open on the connection (no guest's: a Record API
 * write around a record hook), whose statements run inside it and never wait. */
bool guest_sql_in_host_tx(const guest_sql *s);

/* Transactions for a host that is not an isolate (compiled components), owned by `owner` (an
 * address that identifies it): as txBegin/txCommit/txRollback, sharing the worker's connection
 * and its queue with the isolates' transactions. guest_sql_tx_begin_for() sets *wait (and does
 * nothing) while the connection is taken (a transaction is open, statements wait) or another
 * connection holds the write lock (then guest_sql_busy()): call it again later from the loop l.
 * guest_sql_tx_check() says whether transaction id is open and owner's, or why not; run its
 * statements with guest_sql_run_vals() and call guest_sql_tx_after_statement() after each (SQLite
 * may have ended it). guest_sql_tx_forget() rolls back owner's open transaction (owner goes
 * away). In cluster mode use guest_sql_remote_tx_begin(), guest_sql_remote_tx_vals() and
 * guest_sql_remote_tx_end() instead (guest_sql_tx_check() and guest_sql_tx_forget() serve both). */
int guest_sql_tx_begin_for(guest_sql *s, loop *l, const void *owner, bool *wait, uint32_t *id,
                           tr_error *err);
int guest_sql_tx_check(const guest_sql *s, const void *owner, uint32_t id, tr_error *err);
void guest_sql_tx_after_statement(guest_sql *s);
int guest_sql_tx_end_for(guest_sql *s, const void *owner, uint32_t id, bool commit,
                         tr_error *err);
void guest_sql_tx_forget(guest_sql *s, const void *owner);

/* Sets how long a transaction may stay open before it is rolled back (default 30 s; for tests).
 * Transactions themselves are host functions (guest/tx.c, docs/guest-abi.md). */
void guest_sql_set_tx_timeout(guest_sql *s, uint64_t ms);

/* Results of expensive read-only queries are remembered per worker and given again while the
 * database is unchanged (guest/sql.c, docs/database.md). A run is remembered when it cost at
 * least GUEST_RESULT_MIN_STEPS SQLite VM steps (a scan of thousands of rows; a lookup by key
 * is tens) and its rows fit in a quarter of the budget; a statement keeps GUEST_RESULTS_PER_STMT
 * parameter sets at most. */
#define GUEST_RESULT_BUDGET_BYTES (8u << 20)
#define GUEST_RESULT_MIN_STEPS    10000
#define GUEST_RESULTS_PER_STMT    8

/* Sets the budget in bytes (GUEST_RESULT_BUDGET_BYTES by default); 0 remembers nothing and
 * forgets what was remembered. */
void guest_sql_set_result_budget(guest_sql *s, size_t bytes);

typedef struct guest_sql_stats {
    uint64_t hits;    /* queries answered from memory */
    uint64_t kept;    /* results remembered */
    size_t results;   /* remembered now */
    size_t bytes;     /* and the memory they hold */
    size_t statements; /* prepared statements cached */
} guest_sql_stats;

void guest_sql_get_stats(const guest_sql *s, guest_sql_stats *out);

#endif
