/* cluster/limit.c: a wall-time bound on the statements a client's connection runs on this node,
 * asked for by the client itself (trail's workers ask for it on their guests' connections).
 *
 * DESIGN: libdqlite 1.11 runs every statement on the node's one thread, inside its libuv loop,
 * with nothing that stops a statement without end (a `WITH RECURSIVE` counting to 1e10 would hold
 * the node, its Raft heartbeats included, for hours). The node runs on trail's SQLite, so trail
 * registers the SQL function `_trail_statement_limit(MS)` for every connection (an auto
 * extension): called on a connection, it installs there a trace hook that notes when each
 * statement starts running and a progress handler that interrupts the statement once it has run
 * MS of wall time (the client then gets SQLite's "interrupted"). A connection without the call
 * (migrations applied through the leader, other clients) is not bounded. The bound only ever
 * tightens: a later call with a larger value, or 0, changes nothing, and guests cannot call
 * functions whose names begin with '_' (guest/sql.c's authorizer). */
#include "cluster/cluster.h"

#include <sqlite3.h>
#include <string.h>

/* How often (in SQLite VM steps) a bounded statement reads the clock. */
#define LIMIT_CHECK_STEPS 10000

typedef struct stmt_limit {
    uint64_t limit_ns;
    uint64_t started_ns; /* when the running top-level statement began; 0: none seen yet */
} stmt_limit;

static int on_trace(unsigned type, void *ud, void *p, void *x)
{
    (void)p;
    stmt_limit *l = ud;
    const char *sql = x;
    /* a trigger's body reports itself as "-- ...": it belongs to the statement already timed */
    if (type == SQLITE_TRACE_STMT && !(sql && sql[0] == '-' && sql[1] == '-'))
        l->started_ns = tr_now_ns();
    return 0;
}

static int on_progress(void *ud)
{
    stmt_limit *l = ud;
    return l->started_ns != 0 && tr_now_ns() - l->started_ns > l->limit_ns;
}

static void set_limit(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3 *db = sqlite3_context_db_handle(ctx);
    sqlite3_int64 ms = sqlite3_value_int64(argv[0]);
    stmt_limit *l = sqlite3_get_clientdata(db, "trail.stmt_limit");
    if (ms <= 0 || ms > 86400000 || (l != NULL && (uint64_t)ms * 1000000u >= l->limit_ns)) {
        sqlite3_result_int64(ctx, l ? (sqlite3_int64)(l->limit_ns / 1000000u) : 0);
        return;
    }
    if (l == NULL) {
        l = sqlite3_malloc(sizeof *l);
        if (l == NULL) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        memset(l, 0, sizeof *l);
        if (sqlite3_set_clientdata(db, "trail.stmt_limit", l, sqlite3_free) != SQLITE_OK) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_trace, l);
        sqlite3_progress_handler(db, LIMIT_CHECK_STEPS, on_progress, l);
    }
    l->limit_ns = (uint64_t)ms * 1000000u;
    /* this very statement counts from now */
    l->started_ns = tr_now_ns();
    sqlite3_result_int64(ctx, ms);
}

/* sqlite3_auto_extension()'s entry point: SQLite calls it for each new connection. */
static int register_limit(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    return sqlite3_create_function(db, "_trail_statement_limit", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                   NULL, set_limit, NULL, NULL);
}

int cluster_limit_register_everywhere(void)
{
    /* SQLite declares the entry point without parameters; it calls it with these three. */
    if (sqlite3_auto_extension((void (*)(void))register_limit) != SQLITE_OK) return TR_ESQL;
    return 0;
}
