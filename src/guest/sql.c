/* guest/sql.c: query() and execute() on the worker's SQLite connection.
 *
 * DESIGN: statements are prepared once per connection and kept in a small LRU cache keyed by
 * their SQL text, reset (not finalized) after each run: a handler that runs the same query on
 * every request pays for parsing once. Values cross as jsg_val built in an arena: parameters
 * are bound straight from it (SQLITE_STATIC), rows are built in it and converted to JS in one go.
 * NULL ↔ null, INTEGER ↔ number (bigint beyond ±2^53), REAL ↔ number, TEXT ↔ string,
 * BLOB ↔ Uint8Array. Transactions and the statements that wait for one to end are in guest/tx.c;
 * both run through guest_sql_run().
 *
 * DESIGN: results of expensive reads are remembered. A handler that aggregates a table on every
 * request makes SQLite scan the same unchanged pages again and again; the rows it got last time
 * are the answer as long as nothing has changed. So a statement is marked reusable when it is
 * prepared if it only reads ordinary tables of the main database and calls only deterministic
 * built-in functions (an authorizer watches the prepare; virtual tables and functions like
 * random() or datetime('now') make it not reusable). A run of a
 * reusable statement outside any transaction that cost GUEST_RESULT_MIN_STEPS VM steps or more
 * keeps its rows, keyed by its parameters, tagged with the database's data version
 * (SQLITE_FCNTL_DATA_VERSION, which changes on every commit by any connection or process, and
 * on a checkpoint) read while the statement's own read transaction was open. Before answering
 * from memory, a read transaction is started (a step of PRAGMA data_version) so that the version
 * is current; if it moved, everything remembered is dropped. The answer is then exactly what
 * running the statement would give, at the cost of building the JS rows. Statements that were
 * never expensive (a lookup by key) skip all of this but for reading SQLite's step counter.
 * Memory is bounded per worker (guest_sql_set_result_budget).
 *
 * DESIGN: the connection is every request's and the database file is trail's too, so a guest's
 * statement is held to an allow-list of SQLite's authorizer actions (guest_rules) while it is
 * prepared and while it runs: SQLite prepares statements again after a schema change, a pragma
 * function prepares its pragma when it runs, and a trigger's body is authorized with the
 * statement that fires it, so checking the first prepare alone would not do. Refused: setting any
 * pragma (the connection's, the file's and the process's settings stay trail's), names beginning
 * with '_' (trail's tables; reading _user is allowed), temporary objects (they would outlive the
 * request on the connection), ATTACH/DETACH/VACUUM, virtual tables other than FTS and R*Tree.
 * The refusal's reason is kept and becomes the statement's error. The connection is also in
 * defensive mode, keeps temporary data in files (bounded: db_open_guarded) and attaches nothing.
 * Its busy handler never waits for a guest's statement when there is a loop: the statement fails
 * with SQLITE_BUSY before it did anything, failed() marks it, and the caller parks its request
 * (guest/tx.c). */
#include "guest/guest_internal.h"

#include <ctype.h>
#include <math.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/db.h"

static int authorize(void *ud, int action, const char *a3, const char *a4, const char *db,
                     const char *inner);

/* SQLite's progress callback on the worker's connection, every GUEST_SQL_CHECK_STEPS steps: a
 * guest's statement that runs past the deadline of the call that started it (a recursive query
 * without end, a join of everything with everything) is stopped like JS that runs too long. */
static int progress(void *ud)
{
    guest_sql *s = ud;
    if (s->running == NULL) {
        /* a compiled component's statement (guest_sql_run_vals): its own CPU deadline */
        if (s->cpu_deadline_ns == 0 || tr_thread_cpu_ns() < s->cpu_deadline_ns) return 0;
    } else if (!jsg_overdue(s->running)) {
        return 0;
    }
    s->stopped = true;
    return 1;
}

/* The connection's busy handler. A guest's statement never waits inside SQLite for another
 * connection's lock: it fails at once and its request parks, retried from the loop (guest/tx.c)
 * while the worker goes on. trail's own statements on the connection (a job run's record), and
 * guests' statements where there is no loop to park on, wait here as a busy timeout would. */
static int on_busy(void *ud, int count)
{
    guest_sql *s = ud;
    if ((s->auth->guest && s->loop != NULL) || s->nowait) return 0;
    uint64_t now = tr_now_ns();
    if (count == 0) s->busy_since_ns = now;
    if (now - s->busy_since_ns >= (uint64_t)DB_BUSY_TIMEOUT_MS * 1000000u) return 0;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
    return 1;
}

guest_sql *guest_sql_new(db_conn *db)
{
    guest_sql *s = tr_calloc(1, sizeof *s);
    s->db = db;
    s->tx_timeout_ms = GUEST_TX_TIMEOUT_MS;
    s->result_budget = GUEST_RESULT_BUDGET_BYTES;
    sqlite3 *h = db_handle(db);
    /* Before the authorizer: trail's own settings of the connection. Temporary data goes to
     * files (bounded by db_open_guarded()), never to memory without a bound. Defensive mode
     * keeps SQLite's own guards up (no writable_schema, no writes to shadow tables, no
     * journal_mode=OFF); no database may be attached (VACUUM attaches one); no sorter threads. */
    if (sqlite3_exec(h, "PRAGMA temp_store=FILE", NULL, NULL, NULL) != SQLITE_OK)
        tr_log_warn(GUEST_LOG_PREFIX "PRAGMA temp_store=FILE failed: %s", sqlite3_errmsg(h));
    sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(h, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0, (int *)NULL);
    sqlite3_limit(h, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(h, SQLITE_LIMIT_WORKER_THREADS, 0);
    /* The authorizer's state belongs to the connection (freed when it closes), not to s. */
    guest__auth *auth = tr_calloc(1, sizeof *auth);
    sqlite3_set_clientdata(h, "trail.guest_sql", auth, tr_free);
    sqlite3_set_authorizer(h, authorize, auth);
    s->auth = auth;
    s->remote = auth->cluster = guest__cluster_mode();
    sqlite3_progress_handler(h, GUEST_SQL_CHECK_STEPS, progress, s);
    sqlite3_busy_handler(h, on_busy, s);
    return s;
}

static void forget_results(guest_sql *s, guest__cached_stmt *c)
{
    for (guest__result *r = c->results, *next; r != NULL; r = next) {
        next = r->next;
        s->result_bytes -= r->bytes;
        tr_arena_deinit(&r->arena);
        tr_free(r);
    }
    c->results = NULL;
    c->nresults = 0;
}

static void forget_all_results(guest_sql *s)
{
    for (size_t i = 0; i < s->ncache; i++)
        forget_results(s, &s->cache[i]);
}

void guest_sql_free(guest_sql *s)
{
    if (s == NULL) return;
    guest__tx_deinit(s);
    guest__sql_remote_close(s);
    for (size_t i = 0; i < s->ncache; i++) {
        forget_results(s, &s->cache[i]);
        sqlite3_finalize(s->cache[i].stmt);
        tr_free(s->cache[i].sql);
    }
    sqlite3_finalize(s->version_stmt);
    /* the connection may run statements after s is gone (PRAGMA optimize when it closes) */
    sqlite3_progress_handler(db_handle(s->db), 0, NULL, NULL);
    sqlite3_busy_timeout(db_handle(s->db), DB_BUSY_TIMEOUT_MS);
    tr_free(s);
}

void guest_sql_get_stats(const guest_sql *s, guest_sql_stats *out)
{
    *out = (guest_sql_stats){
        .hits = s->result_hits,
        .kept = s->results_kept,
        .bytes = s->result_bytes,
        .statements = s->ncache};
    for (size_t i = 0; i < s->ncache; i++)
        out->results += s->cache[i].nresults;
}

void guest_sql_set_result_budget(guest_sql *s, size_t bytes)
{
    s->result_budget = bytes;
    if (bytes == 0) forget_all_results(s);
}

static bool only_space_or_comments(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';') {
            p++;
        } else if (p + 1 < end && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n') p++;
        } else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/')) p++;
            p += 2;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- which statements' results may be remembered ---- */

/* Built-in SQL functions whose result depends on their arguments alone. Not here, so never
 * remembered: random(), randomblob(), changes(), last_insert_rowid(), the date and time
 * functions (they may read the clock), and every function trail or an extension adds. */
static const char *const deterministic_fns[] = {
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "avg", "ceil", "ceiling",
    "char", "coalesce", "concat", "concat_ws", "cos", "cosh", "count", "cume_dist", "degrees",
    "dense_rank", "exp", "first_value", "floor", "format", "glob", "group_concat", "hex", "if",
    "ifnull", "iif", "instr", "json", "json_array", "json_array_length", "json_extract",
    "json_group_array", "json_group_object", "json_insert", "json_object", "json_patch",
    "json_quote", "json_remove", "json_replace", "json_set", "json_type", "json_valid", "jsonb",
    "lag", "last_value", "lead", "length", "like", "likelihood", "likely", "ln", "log", "log10",
    "log2", "lower", "ltrim", "max", "min", "mod", "nth_value", "ntile", "nullif",
    "octet_length", "percent_rank", "pi", "pow", "power", "printf", "quote", "radians", "rank",
    "replace", "round", "row_number", "rtrim", "sign", "sin", "sinh", "sqrt", "string_agg",
    "substr", "substring", "sum", "tan", "tanh", "total", "trim", "trunc", "typeof", "unhex",
    "unicode", "unlikely", "upper", "zeroblob", "->", "->>",
};

#define ACCESS_MAX_TABLES 8

/* What an authorizer saw while a statement was prepared. */
typedef struct access_log {
    bool reusable;
    bool alter; /* an ALTER TABLE (it may rename: renamed_to()) */
    size_t ntables;
    char tables[ACCESS_MAX_TABLES][64];
} access_log;

static bool deterministic_fn(const char *name)
{
    for (size_t i = 0; i < TR_ARRAY_LEN(deterministic_fns); i++)
        if (sqlite3_stricmp(name, deterministic_fns[i]) == 0) return true;
    return false;
}

static bool note_table(access_log *log, const char *name)
{
    for (size_t i = 0; i < log->ntables; i++)
        if (strcmp(log->tables[i], name) == 0) return true;
    if (log->ntables == ACCESS_MAX_TABLES || strlen(name) >= sizeof log->tables[0]) return false;
    strcpy(log->tables[log->ntables++], name);
    return true;
}

/* ---- what a guest's SQL may do ---- */

/* Pragmas a guest may run. PRAGMA_ARG: with any argument (it names a table or an index, or a
 * check's limit, and the pragma only reports); PRAGMA_READ: without an argument, which reads a
 * setting. Any other pragma, or one of these with an argument it may not take, is refused:
 * setting one changes the connection every request of the worker shares, the database file, or
 * (soft_heap_limit, hard_heap_limit) the whole process. Pragmas that act without an argument
 * (optimize, shrink_memory, wal_checkpoint, incremental_vacuum) are not here, nor are
 * integrity_check and quick_check: each runs as one step of SQLite's VM, where the CPU budget's
 * progress callback cannot stop it, for as long as the database is large. */
enum { PRAGMA_READ = 1, PRAGMA_ARG = 2 };

static const struct {
    const char *name;
    int how;
} guest_pragmas[] = {
    {"analysis_limit", PRAGMA_READ},
    {"application_id", PRAGMA_READ},
    {"auto_vacuum", PRAGMA_READ},
    {"automatic_index", PRAGMA_READ},
    {"busy_timeout", PRAGMA_READ},
    {"cache_size", PRAGMA_READ},
    {"cache_spill", PRAGMA_READ},
    {"cell_size_check", PRAGMA_READ},
    {"collation_list", PRAGMA_READ},
    {"compile_options", PRAGMA_READ},
    {"data_version", PRAGMA_READ},
    {"defer_foreign_keys", PRAGMA_READ},
    {"encoding", PRAGMA_READ},
    {"foreign_key_check", PRAGMA_READ | PRAGMA_ARG},
    {"foreign_key_list", PRAGMA_ARG},
    {"foreign_keys", PRAGMA_READ},
    {"freelist_count", PRAGMA_READ},
    {"function_list", PRAGMA_READ},
    {"hard_heap_limit", PRAGMA_READ},
    {"ignore_check_constraints", PRAGMA_READ},
    {"index_info", PRAGMA_ARG},
    {"index_list", PRAGMA_ARG},
    {"index_xinfo", PRAGMA_ARG},
    {"journal_mode", PRAGMA_READ},
    {"journal_size_limit", PRAGMA_READ},
    {"legacy_alter_table", PRAGMA_READ},
    {"locking_mode", PRAGMA_READ},
    {"max_page_count", PRAGMA_READ},
    {"mmap_size", PRAGMA_READ},
    {"module_list", PRAGMA_READ},
    {"page_count", PRAGMA_READ},
    {"page_size", PRAGMA_READ},
    {"pragma_list", PRAGMA_READ},
    {"query_only", PRAGMA_READ},
    {"recursive_triggers", PRAGMA_READ},
    {"reverse_unordered_selects", PRAGMA_READ},
    {"schema_version", PRAGMA_READ},
    {"secure_delete", PRAGMA_READ},
    {"soft_heap_limit", PRAGMA_READ},
    {"synchronous", PRAGMA_READ},
    {"table_info", PRAGMA_ARG},
    {"table_list", PRAGMA_READ | PRAGMA_ARG},
    {"table_xinfo", PRAGMA_ARG},
    {"temp_store", PRAGMA_READ},
    {"threads", PRAGMA_READ},
    {"trusted_schema", PRAGMA_READ},
    {"user_version", PRAGMA_READ},
    {"wal_autocheckpoint", PRAGMA_READ},
    {"writable_schema", PRAGMA_READ},
};

/* Modules of the virtual tables a guest may create: full-text search and R*Trees. */
static const char *const guest_vtab_modules[] = {"fts3", "fts4", "fts5", "rtree", "rtree_i32"};

static bool pragma_allowed(const char *name, const char *arg)
{
    if (name == NULL) return false;
    for (size_t i = 0; i < TR_ARRAY_LEN(guest_pragmas); i++)
        if (sqlite3_stricmp(name, guest_pragmas[i].name) == 0)
            return (guest_pragmas[i].how & (arg ? PRAGMA_ARG : PRAGMA_READ)) != 0;
    return false;
}

/* trail's tables (and their indexes and triggers): every name that begins with '_' is trail's
 * (GUEST_SQL_READABLE_TABLE among them, the one a guest may read). */
static bool trails(const char *name)
{
    return name != NULL && name[0] == '_';
}

/* Refuses an action, keeping why for the statement's error message. */
__attribute__((format(printf, 2, 3))) static int deny(guest__auth *auth, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(auth->why, sizeof auth->why, fmt, ap);
    va_end(ap);
    return SQLITE_DENY;
}

static const char *nz(const char *s)
{
    return s ? s : "?";
}

#define TRAILS_MSG "%s: names that begin with _ are trail's own tables (handlers may read _user " \
                   "and nothing else of them)"

/* The rules for a guest's statement (an allow-list of SQLite's authorizer actions; anything not
 * named here, including actions a later SQLite may add, is refused). */
static int guest_rules(guest__auth *auth, int action, const char *a3, const char *a4)
{
    /* In cluster mode the statement runs on the leader only, so a schema change would leave the
     * local schema, against which these rules are checked, behind the cluster's (and a trigger
     * made so would run there unchecked): the schema is the migrations'. */
    switch (action) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
        if (auth->cluster)
            return deny(auth, "schema changes are made by migrations in cluster mode, not by "
                              "handlers (docs/scaling.md)");
        break;
    default:
        break;
    }
    switch (action) {
    case SQLITE_FUNCTION:
        /* trail's own functions begin with '_' (in cluster mode, the statement bound of
         * cluster/limit.c); SQLite is built without load_extension(); the rest only compute */
        if (trails(a4))
            return deny(auth, "%s(): functions whose names begin with _ are trail's own", a4);
        return SQLITE_OK;
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
    case SQLITE_TRANSACTION: /* plain BEGIN is undone and refused after it runs (guest_sql_run) */
    case SQLITE_SAVEPOINT:
    case SQLITE_ANALYZE:
    case SQLITE_REINDEX:
        return SQLITE_OK;
    case SQLITE_READ:
        if (trails(a3) && sqlite3_stricmp(a3, GUEST_SQL_READABLE_TABLE) != 0)
            return deny(auth, TRAILS_MSG, nz(a3));
        /* the password hash reads as NULL wherever it appears (SELECT *, WHERE): no guest
         * learns anything of it (docs/auth.md) */
        if (a3 != NULL && a4 != NULL && sqlite3_stricmp(a3, GUEST_SQL_READABLE_TABLE) == 0 &&
            sqlite3_stricmp(a4, "password_hash") == 0)
            return SQLITE_IGNORE;
        return SQLITE_OK;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_VIEW:
        /* sqlite_schema is written by DDL; SQLite itself refuses direct writes to it
         * (writable_schema cannot be set, and the connection is in defensive mode) */
        if (trails(a3)) return deny(auth, TRAILS_MSG, nz(a3));
        return SQLITE_OK;
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
        if (trails(a3)) return deny(auth, TRAILS_MSG, nz(a3));
        if (trails(a4)) return deny(auth, TRAILS_MSG, nz(a4));
        return SQLITE_OK;
    case SQLITE_ALTER_TABLE: /* a3 is the schema, a4 the table */
        if (trails(a4)) return deny(auth, TRAILS_MSG, nz(a4));
        return SQLITE_OK;
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
        if (trails(a3)) return deny(auth, TRAILS_MSG, nz(a3));
        for (size_t i = 0; i < TR_ARRAY_LEN(guest_vtab_modules); i++)
            if (a4 != NULL && sqlite3_stricmp(a4, guest_vtab_modules[i]) == 0) return SQLITE_OK;
        return deny(auth, "virtual tables of module %s are not available (fts3, fts4, fts5 and "
                          "rtree are)", nz(a4));
    case SQLITE_PRAGMA:
        if (pragma_allowed(a3, a4)) return SQLITE_OK;
        if (a4 != NULL)
            return deny(auth, "PRAGMA %s cannot be set from a handler (to %s): the worker's "
                              "connection and the database are trail's; reading settings and "
                              "introspecting the schema are allowed", nz(a3), a4);
        return deny(auth, "PRAGMA %s is not available to handlers: reading settings and "
                          "introspecting the schema are", nz(a3));
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_INDEX:
        return deny(auth, "temporary tables, views, triggers and indexes (%s) are not available: "
                          "they would stay on the worker's connection, shared by every later "
                          "request; use a WITH clause or an ordinary table", nz(a3));
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return deny(auth, "ATTACH, DETACH and VACUUM are not available: they open files other "
                          "than the database");
    default:
        return deny(auth, "this kind of statement (authorizer action %d) is not available to "
                          "handlers", action);
    }
}

/* The worker connection's authorizer, set once (setting one expires every prepared statement
 * of the connection, so it is never switched on and off). While a guest's statement is
 * prepared or runs (auth->guest: a statement is re-prepared when the schema changed, and a
 * pragma function prepares its pragma when it runs) it applies guest_rules(); trail's own
 * statements on the connection (the job runner's records, transactions) pass. While a guest's
 * statement is prepared it also notes whether the statement stays within plain reads of main's
 * tables and deterministic built-in functions. */
static int authorize(void *ud, int action, const char *a3, const char *a4, const char *db,
                     const char *inner)
{
    (void)inner;
    guest__auth *auth = ud;
    if (auth->guest) {
        int rc = guest_rules(auth, action, a3, a4);
        if (rc != SQLITE_OK) return rc;
    }
    access_log *log = auth->log;
    if (log == NULL) return SQLITE_OK;
    if (action == SQLITE_ALTER_TABLE) log->alter = true;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
        break;
    case SQLITE_READ:
        if (a3 == NULL || db == NULL || strcmp(db, "main") != 0 || !note_table(log, a3))
            log->reusable = false;
        break;
    case SQLITE_FUNCTION:
        if (a4 == NULL || !deterministic_fn(a4)) log->reusable = false;
        break;
    default:
        log->reusable = false;
    }
    return SQLITE_OK;
}

/* True for a table of main stored in the file (not a virtual table: an eponymous one such as
 * json_each or a pragma function has no row in sqlite_schema). */
static bool ordinary_table(sqlite3 *h, const char *name)
{
    sqlite3_stmt *st = NULL;
    bool ok = false;
    static const char sql[] =
        "SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?1";
    if (sqlite3_prepare_v2(h, sql, sizeof sql - 1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        ok = text != NULL && sqlite3_strnicmp(text, "CREATE VIRTUAL", 14) != 0;
    }
    sqlite3_finalize(st);
    return ok;
}

static bool reusable(sqlite3 *h, sqlite3_stmt *stmt, const access_log *log)
{
    if (!log->reusable || !sqlite3_stmt_readonly(stmt) || sqlite3_stmt_isexplain(stmt))
        return false;
    for (size_t i = 0; i < log->ntables; i++)
        if (!ordinary_table(h, log->tables[i])) return false;
    return true;
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/* The new name that `ALTER TABLE t RENAME TO name` in sql gives a table, without its quotes,
 * in out (truncated to cap); false when the text has no RENAME TO. The authorizer sees only the
 * old name of a renamed table, so the new one is read from the text: SQL's tokens are words,
 * quoted names and strings (a doubled quote inside them is one character), comments,
 * whitespace and punctuation. */
static bool renamed_to(const char *p, const char *end, char *out, size_t cap)
{
    int seen = 0; /* 1: after the word RENAME; 2: after RENAME TO */
    while (p < end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            p++;
            continue;
        }
        if (c == '-' && p + 1 < end && p[1] == '-') {
            while (p < end && *p != '\n') p++;
            continue;
        }
        if (c == '/' && p + 1 < end && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/')) p++;
            p = p + 2 < end ? p + 2 : end;
            continue;
        }
        const char *start = p;
        bool quoted = c == '"' || c == '`' || c == '[' || c == '\'';
        if (quoted) {
            char close = c == '[' ? ']' : c;
            for (p++; p < end; p++) {
                if (*p != close) continue;
                if (close != ']' && p + 1 < end && p[1] == close) {
                    p++;
                    continue;
                }
                break;
            }
            if (p < end) p++;
        } else if (word_char(c)) {
            while (p < end && word_char(*p)) p++;
        } else {
            p++;
        }
        size_t n = (size_t)(p - start);
        if (seen == 2) {
            if (quoted) {
                start++;
                n = n >= 2 ? n - 2 : 0;
            }
            if (n >= cap) n = cap - 1;
            memcpy(out, start, n);
            out[n] = '\0';
            return true;
        }
        if (!quoted && n == 6 && sqlite3_strnicmp(start, "RENAME", 6) == 0)
            seen = 1;
        else if (seen == 1 && !quoted && n == 2 && sqlite3_strnicmp(start, "TO", 2) == 0)
            seen = 2;
        else
            seen = 0;
    }
    return false;
}

/* The error of the guest's statement that just failed on the connection: SQLite's message,
 * with the reason when the authorizer refused it, or naming the bound when its temporary files
 * outgrew it. Sets s->busy when it failed for another connection's lock and may simply be run
 * again later (outside any transaction, nothing of it done). */
void guest__sql_release(guest_sql *s, guest__cached_stmt *c)
{
    if (c == &s->oneoff) {
        sqlite3_finalize(c->stmt);
        s->oneoff.stmt = NULL;
    } else if (c != NULL && c->stmt != NULL) {
        sqlite3_reset(c->stmt);
        sqlite3_clear_bindings(c->stmt);
    }
}

static int failed(guest_sql *s, tr_error *err)
{
    sqlite3 *h = db_handle(s->db);
    int code = sqlite3_errcode(h) & 0xff; /* the connection has extended result codes */
    if (code == SQLITE_BUSY && s->loop != NULL && s->tx == NULL && sqlite3_get_autocommit(h))
        s->busy = true;
    if (code == SQLITE_AUTH && s->auth->why[0] != '\0')
        return tr_error_set(err, TR_ESQL, "not authorized: %s", s->auth->why);
    if (code == SQLITE_FULL && db_temp_take_limit_hit(s->db))
        return tr_error_set(err, TR_ELIMIT,
                            "the statement's temporary data (what it sorts, groups or "
                            "materializes) took more than the worker's limit of %llu MiB "
                            "(database.temp_max_mb)",
                            (unsigned long long)(db_temp_max_bytes(s->db) >> 20));
    return tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(h));
}

/* The error of a step that gave neither a row nor SQLITE_DONE: the deadline's interrupt, a value
 * larger than what (an "isolate" or an "instance") may hold (limit bytes), or SQLite's error. */
static int step_failed(guest_sql *s, int step, const char *what, size_t limit, tr_error *err)
{
    if (step == SQLITE_INTERRUPT && s->stopped)
        return tr_error_set(err, TR_EINTERRUPTED,
                            "interrupted: the SQL statement ran past its deadline");
    if (step == SQLITE_TOOBIG)
        return tr_error_set(err, TR_ELIMIT,
                            "%s: a value larger than the %s's memory limit of %zu MiB "
                            "(runtime.memory_limit_mb)",
                            sqlite3_errmsg(db_handle(s->db)), what, limit >> 20);
    return failed(s, err);
}

/* The prepared statement for sql, from the cache or freshly prepared into it. */
int guest__sql_prepare(guest_sql *s, const char *sql, size_t len, guest__cached_stmt **out,
                       tr_error *err)
{
    s->clock++;
    for (size_t i = 0; i < s->ncache; i++) {
        guest__cached_stmt *c = &s->cache[i];
        if (c->len == len && memcmp(c->sql, sql, len) == 0) {
            c->last_used = s->clock;
            *out = c;
            return 0;
        }
    }
    sqlite3 *h = db_handle(s->db);
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    if (len > (size_t)INT32_MAX) return tr_error_set(err, TR_ELIMIT, "SQL text is too long");
    access_log log = {.reusable = true};
    s->auth->log = &log;
    int rc = sqlite3_prepare_v3(h, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    s->auth->log = NULL;
    if (rc != SQLITE_OK) return failed(s, err);
    if (stmt == NULL) return tr_error_set(err, TR_ESQL, "the SQL text holds no statement");
    if (tail && !only_space_or_comments(tail, sql + len)) {
        sqlite3_finalize(stmt);
        return tr_error_set(err, TR_ESQL,
                            "one SQL statement per call: more text follows the first statement");
    }
    char renamed[64];
    if (log.alter && renamed_to(sql, tail ? tail : sql + len, renamed, sizeof renamed) &&
        trails(renamed)) {
        sqlite3_finalize(stmt);
        return tr_error_set(err, TR_ESQL, "not authorized: " TRAILS_MSG, renamed);
    }
    if (sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_MEMUSED, 0) > GUEST_MAX_CACHED_STMT_BYTES) {
        /* run once (guest_sql_run finalizes it), and nothing of it remembered */
        s->oneoff = (guest__cached_stmt){.stmt = stmt, .last_used = s->clock};
        *out = &s->oneoff;
        return 0;
    }
    size_t slot = s->ncache;
    if (slot == GUEST_MAX_SQL_CACHE) {
        slot = 0;
        for (size_t i = 1; i < s->ncache; i++)
            if (s->cache[i].last_used < s->cache[slot].last_used) slot = i;
        forget_results(s, &s->cache[slot]);
        sqlite3_finalize(s->cache[slot].stmt);
        tr_free(s->cache[slot].sql);
    } else {
        s->ncache++;
    }
    s->cache[slot] = (guest__cached_stmt){
        .sql = tr_strndup(sql, len),
        .len = len,
        .stmt = stmt,
        .last_used = s->clock,
        .reusable = reusable(h, stmt, &log),
        .reprepares = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0),
    };
    *out = &s->cache[slot];
    return 0;
}

/* ---- remembered results ---- */

/* The database's data version, after starting (and ending) a read transaction so that commits
 * by other connections are seen. */
static int data_version(guest_sql *s, unsigned *out)
{
    sqlite3 *h = db_handle(s->db);
    if (s->version_stmt == NULL &&
        sqlite3_prepare_v3(h, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                           &s->version_stmt, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(s->version_stmt);
    sqlite3_reset(s->version_stmt);
    if (rc != SQLITE_ROW) return -1;
    return sqlite3_file_control(h, "main", SQLITE_FCNTL_DATA_VERSION, out) == SQLITE_OK ? 0 : -1;
}

static void key_put(tr_buf *b, char tag, const void *p, size_t n)
{
    tr_buf_append(b, &tag, 1);
    if (tag == 's' || tag == 'b') tr_buf_append(b, &n, sizeof n);
    tr_buf_append(b, p, n);
}

/* The parameters as bytes that differ whenever the bound values differ. */
static void encode_key(const jsg_val *params, tr_buf *b)
{
    size_t n = params ? params->u.arr.len : 0;
    for (size_t i = 0; i < n; i++) {
        const jsg_val *v = &params->u.arr.items[i];
        switch (v->type) {
        case JSG_BOOL:
            key_put(b, 'i', &(double){v->u.b}, sizeof(double));
            break;
        case JSG_NUMBER:
            key_put(b, 'i', &v->u.num, sizeof v->u.num);
            break;
        case JSG_BIGINT:
            key_put(b, 'g', &v->u.big, sizeof v->u.big);
            break;
        case JSG_STRING:
            key_put(b, 's', v->u.str.ptr, v->u.str.len);
            break;
        case JSG_BYTES:
            key_put(b, 'b', v->u.str.ptr, v->u.str.len);
            break;
        default:
            key_put(b, 'n', NULL, 0);
        }
    }
}

static guest__result *find_result(guest__cached_stmt *c, const tr_buf *key)
{
    for (guest__result **pp = &c->results; *pp != NULL; pp = &(*pp)->next) {
        guest__result *r = *pp;
        if (r->key_len == key->len && (key->len == 0 || memcmp(r->key, key->data, key->len) == 0)) {
            *pp = r->next; /* to the front */
            r->next = c->results;
            c->results = r;
            return r;
        }
    }
    return NULL;
}

/* Frees room for bytes more: the statement's own oldest result first when it has its fill,
 * then the results of the least recently used statements. */
static void make_room(guest_sql *s, guest__cached_stmt *keep, size_t bytes)
{
    if (keep->nresults >= GUEST_RESULTS_PER_STMT) {
        guest__result **pp = &keep->results;
        while ((*pp)->next != NULL) pp = &(*pp)->next;
        s->result_bytes -= (*pp)->bytes;
        tr_arena_deinit(&(*pp)->arena);
        tr_free(*pp);
        *pp = NULL;
        keep->nresults--;
    }
    while (s->result_bytes + bytes > s->result_budget) {
        guest__cached_stmt *oldest = NULL;
        for (size_t i = 0; i < s->ncache; i++) {
            guest__cached_stmt *c = &s->cache[i];
            if (c != keep && c->results && (oldest == NULL || c->last_used < oldest->last_used))
                oldest = c;
        }
        if (oldest == NULL) {
            forget_results(s, keep);
            return;
        }
        forget_results(s, oldest);
    }
}

/* Keeps rows (in arena a, which the result takes over) under key. */
static void remember(guest_sql *s, guest__cached_stmt *c, const tr_buf *key, tr_arena *a,
                     jsg_val rows)
{
    char *k = tr_arena_alloc(a, key->len ? key->len : 1);
    if (key->len) memcpy(k, key->data, key->len);
    size_t bytes = tr_arena_size(a) + sizeof(guest__result);
    if (bytes > s->result_budget / 4) return;
    make_room(s, c, bytes);
    guest__result *r = tr_calloc(1, sizeof *r);
    r->arena = *a;
    tr_arena_init(a, 0); /* the caller's arena is now empty */
    r->key = k;
    r->key_len = key->len;
    r->rows = rows;
    r->bytes = bytes;
    r->next = c->results;
    c->results = r;
    c->nresults++;
    s->results_kept++;
    s->result_bytes += bytes;
}

int guest__sql_bind(sqlite3_stmt *stmt, const jsg_val *params, tr_error *err)
{
    int want = sqlite3_bind_parameter_count(stmt);
    size_t got = params ? params->u.arr.len : 0;
    if ((size_t)want != got)
        return tr_error_set(err, TR_ESQL, "the statement has %d parameter%s but %zu %s given",
                            want, want == 1 ? "" : "s", got, got == 1 ? "was" : "were");
    for (size_t i = 0; i < got; i++) {
        const jsg_val *v = &params->u.arr.items[i];
        int idx = (int)i + 1, rc;
        switch (v->type) {
        case JSG_UNDEFINED:
        case JSG_NULL:
            rc = sqlite3_bind_null(stmt, idx);
            break;
        case JSG_BOOL:
            rc = sqlite3_bind_int(stmt, idx, v->u.b);
            break;
        case JSG_NUMBER: {
            double d = v->u.num;
            /* Integral numbers bind as INTEGER so that they compare equal to integer columns. */
            if (d == floor(d) && fabs(d) < 9.2e18)
                rc = sqlite3_bind_int64(stmt, idx, (sqlite3_int64)d);
            else
                rc = sqlite3_bind_double(stmt, idx, d);
            break;
        }
        case JSG_BIGINT:
            rc = sqlite3_bind_int64(stmt, idx, v->u.big);
            break;
        case JSG_STRING:
            rc = sqlite3_bind_text64(stmt, idx, v->u.str.ptr, v->u.str.len, SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        case JSG_BYTES:
            rc = sqlite3_bind_blob64(stmt, idx, v->u.str.len ? v->u.str.ptr : "", v->u.str.len,
                                     SQLITE_STATIC);
            break;
        default:
            return tr_error_set(err, TR_EINVAL,
                                "SQL parameter %zu: unsupported type (use null, a number, a "
                                "bigint, a string or a Uint8Array)",
                                i + 1);
        }
        if (rc != SQLITE_OK)
            return tr_error_set(err, TR_ESQL, "SQL parameter %zu: %s", i + 1, sqlite3_errstr(rc));
    }
    return 0;
}

static jsg_val column_value(sqlite3_stmt *stmt, int col, tr_arena *a)
{
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER: {
        sqlite3_int64 v = sqlite3_column_int64(stmt, col);
        if (v >= -9007199254740991LL && v <= 9007199254740991LL) return jsg_number((double)v);
        return jsg_bigint(v);
    }
    case SQLITE_FLOAT:
        return jsg_number(sqlite3_column_double(stmt, col));
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        return jsg_string(tr_arena_strndup(a, t ? t : "", n), n);
    }
    case SQLITE_BLOB: {
        const void *b = sqlite3_column_blob(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        char *copy = tr_arena_alloc(a, n ? n : 1);
        if (n) memcpy(copy, b, n);
        return jsg_bytes(copy, n);
    }
    default:
        return jsg_null();
    }
}

/* Whether stmt is one of the statements that end or nest a transaction (its first keyword, after
 * blanks and comments). Refused inside a transaction trail holds around the guest: a COMMIT
 * there would write the hook's statements and half of the write, whatever happens next. The
 * authorizer cannot refuse them there (it runs when a statement is prepared, and prepared
 * statements are cached), so this looks at each run. */
bool guest__sql_ends_tx(sqlite3_stmt *stmt)
{
    const char *p = sqlite3_sql(stmt);
    for (;;) {
        while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')) p++;
        if (p && p[0] == '-' && p[1] == '-') {
            p = strchr(p, '\n');
        } else if (p && p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (p) p += 2;
        } else {
            break;
        }
    }
    if (p == NULL) return false;
    static const char *const words[] = {"BEGIN",    "COMMIT",    "END",
                                        "ROLLBACK", "SAVEPOINT", "RELEASE"};
    for (size_t i = 0; i < TR_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i]);
        if (sqlite3_strnicmp(p, words[i], (int)n) == 0 &&
            !(isalnum((unsigned char)p[n]) || p[n] == '_'))
            return true;
    }
    return false;
}

int guest_sql_run(guest_sql *s, jsg_isolate *iso, bool rows, const char *sql, size_t sql_len,
                  jsg_ref params, jsg_ref *out, tr_error *err)
{
    tr_arena a;
    tr_arena_init(&a, 16384);
    tr_buf key = TR_BUF_INIT;
    jsg_val pv, *pvp = NULL;
    guest__cached_stmt *c = NULL;
    sqlite3_stmt *stmt = NULL;
    sqlite3 *h = db_handle(s->db);
    int rc = 0;
    /* the guest's rules hold while its statement is prepared and while it runs */
    s->auth->guest = true;
    s->auth->why[0] = '\0';
    s->busy = false;
    if (params != 0) {
        rc = jsg_to_val(iso, params, &a, &pv, err);
        if (rc < 0) goto out;
        if (pv.type != JSG_ARRAY && pv.type != JSG_UNDEFINED && pv.type != JSG_NULL) {
            rc = tr_error_set(err, TR_EINVAL, "SQL parameters must be an array");
            goto out;
        }
        if (pv.type == JSG_ARRAY) pvp = &pv;
    }
    rc = guest__sql_prepare(s, sql, sql_len, &c, err);
    if (rc < 0) goto out;
    stmt = c->stmt;
    rc = guest__sql_bind(stmt, pvp, err);
    if (rc < 0) goto out;

    /* A transaction trail itself holds open around the guest (a Record API write running the
     * guest's record hooks) is not the guest's BEGIN: its statements run inside it. */
    bool in_host_tx = s->tx == NULL && !sqlite3_get_autocommit(h);
    if (in_host_tx && guest__sql_ends_tx(stmt)) {
        rc = tr_error_set(err, TR_ESQL, GUEST_HOST_TX_MSG);
        goto out;
    }
    if (s->remote) { /* guest.c and tx.c send a cluster's statements to guest/cluster.c */
        rc = tr_error_set(err, TR_ESQL, "in cluster mode statements run on the cluster's leader");
        goto out;
    }
    /* Remembered rows, when this statement may have them (see DESIGN above). */
    bool reuse = rows && c->reusable && s->result_budget > 0 &&
                 s->tx == NULL && sqlite3_get_autocommit(h);
    if (reuse && sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0) != c->reprepares) {
        /* the schema changed under it: what it reads may be something else now */
        c->reusable = reuse = false;
        forget_results(s, c);
    }
    /* Only a statement that has been expensive pays for the version check and the key; a cheap
     * one (a lookup by key) looks at SQLite's step counter and nothing else after its first run. */
    unsigned version = 0;
    bool keyed = false;
    if (reuse && c->expensive && c->results != NULL && data_version(s, &version) == 0) {
        if (version != s->data_version) {
            forget_all_results(s);
            s->data_version = version;
        }
        encode_key(pvp, &key);
        keyed = true;
        guest__result *r = find_result(c, &key);
        if (r != NULL) {
            s->result_hits++;
            rc = jsg_from_val(iso, &r->rows, out, err);
            goto out;
        }
    }
    /* the version the rows are read at, from the first row */
    bool want_version = reuse && (c->expensive || !c->ran), have_version = false;
    c->ran = true;

    size_t nrows = 0, cap = 0, held = 0, limit = jsg_memory_limit(iso);
    jsg_val *list = NULL;
    int ncols = sqlite3_column_count(stmt);
    s->running = iso;
    s->stopped = false;
    jsg_overdue_start(iso);
    /* no string or blob SQLite makes for it may be larger than the isolate could hold */
    sqlite3_limit(h, SQLITE_LIMIT_LENGTH, (int)TR_MIN(limit, (size_t)INT32_MAX));
    for (;;) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = step_failed(s, step, "isolate", limit, err);
            goto out;
        }
        if (!rows) continue;
        if (want_version && nrows == 0)
            have_version = sqlite3_file_control(h, "main", SQLITE_FCNTL_DATA_VERSION, &version) ==
                           SQLITE_OK;
        if (nrows == cap) {
            cap = cap ? cap * 2 : 16;
            jsg_val *grown = tr_arena_alloc(&a, cap * sizeof *grown);
            if (nrows) memcpy(grown, list, nrows * sizeof *grown);
            list = grown;
        }
        jsg_val *cols = tr_arena_alloc(&a, (size_t)(ncols ? ncols : 1) * sizeof *cols);
        held += sizeof *list + (size_t)ncols * sizeof *cols;
        for (int i = 0; i < ncols; i++) {
            cols[i] = column_value(stmt, i, &a);
            if (cols[i].type == JSG_STRING || cols[i].type == JSG_BYTES) held += cols[i].u.str.len;
        }
        list[nrows++] = jsg_array(cols, (size_t)ncols);
        if (held > limit) {
            /* as values in the isolate they would take more still: they cannot fit */
            rc = tr_error_set(err, TR_ELIMIT,
                              "the query's rows take more than the isolate's memory limit of "
                              "%zu MiB (runtime.memory_limit_mb): select fewer rows (LIMIT)",
                              limit >> 20);
            goto out;
        }
    }
    if (s->tx == NULL && !in_host_tx && !sqlite3_get_autocommit(h)) {
        /* A plain BEGIN or SAVEPOINT would leave the connection every request of this worker
         * shares inside one handler's transaction, taking their statements into it. */
        sqlite3_reset(stmt);
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        rc = tr_error_set(err, TR_ESQL,
                          "BEGIN and SAVEPOINT are not allowed in query() or execute(): the "
                          "connection is shared by every request of the worker; use transaction() "
                          "or beginTransaction() of trailbase-wasm/db");
        goto out;
    }
    if (rows) {
        jsg_val result = jsg_array(list, nrows);
        rc = jsg_from_val(iso, &result, out, err);
        if (reuse && sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_VM_STEP, 1) >=
                         GUEST_RESULT_MIN_STEPS) {
            c->expensive = true;
            if (rc == 0 && have_version) {
                if (version != s->data_version) {
                    /* a newer version than what is remembered (versions only grow) */
                    forget_all_results(s);
                    s->data_version = version;
                }
                if (!keyed) encode_key(pvp, &key);
                remember(s, c, &key, &a, result);
            }
        }
    } else {
        jsg_val n = jsg_number((double)sqlite3_changes64(h));
        rc = jsg_from_val(iso, &n, out, err);
    }
out:
    s->running = NULL;
    s->auth->guest = false;
    guest__sql_release(s, c);
    tr_buf_free(&key);
    /* A large result's memory goes back to the system: glibc keeps what a thread's arena freed
     * for that thread, so every worker would otherwise stay at its largest result. */
    bool large = tr_arena_size(&a) > GUEST_SQL_TRIM_BYTES;
    tr_arena_deinit(&a);
    if (large) malloc_trim(0);
    return rc;
}

int guest_sql_run_vals(guest_sql *s, bool rows, const char *sql, size_t sql_len,
                       const jsg_val *params, uint64_t cpu_deadline_ns, size_t max_bytes,
                       tr_arena *a, jsg_val *out, tr_error *err)
{
    if (s->remote) /* cluster mode: guest_sql_remote_vals(), which does not block */
        return tr_error_set(err, TR_ESQL, "in cluster mode statements run on the cluster's leader");
    guest__cached_stmt *c = NULL;
    sqlite3_stmt *stmt = NULL;
    sqlite3 *h = db_handle(s->db);
    s->auth->guest = true;
    s->auth->why[0] = '\0';
    s->busy = false;
    int rc = guest__sql_prepare(s, sql, sql_len, &c, err);
    if (rc < 0) goto out;
    stmt = c->stmt;
    rc = guest__sql_bind(stmt, params, err);
    if (rc < 0) goto out;
    /* a transaction trail itself holds open around the guest (a Record API write running a
     * compiled guest's record hook) is not the guest's BEGIN: its statements run inside it */
    bool in_host_tx = s->tx == NULL && !sqlite3_get_autocommit(h);
    if (in_host_tx && guest__sql_ends_tx(stmt)) {
        rc = tr_error_set(err, TR_ESQL, GUEST_HOST_TX_MSG);
        goto out;
    }
    int ncols = sqlite3_column_count(stmt);
    size_t nrows = 0, cap = 0, held = 0;
    jsg_val *list = NULL;
    if (rows) {
        /* the first item: the column names */
        jsg_val *names = tr_arena_alloc(a, (size_t)(ncols ? ncols : 1) * sizeof *names);
        for (int i = 0; i < ncols; i++) {
            const char *n = sqlite3_column_name(stmt, i);
            n = n ? n : "";
            names[i] = jsg_string(tr_arena_strndup(a, n, strlen(n)), strlen(n));
        }
        cap = 16;
        list = tr_arena_alloc(a, cap * sizeof *list);
        list[nrows++] = jsg_array(names, (size_t)ncols);
    }
    s->cpu_deadline_ns = cpu_deadline_ns;
    s->stopped = false;
    sqlite3_limit(h, SQLITE_LIMIT_LENGTH, (int)TR_MIN(max_bytes, (size_t)INT32_MAX));
    for (;;) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = step_failed(s, step, "instance", max_bytes, err);
            goto out;
        }
        if (!rows) continue;
        if (nrows == cap) {
            cap *= 2;
            jsg_val *grown = tr_arena_alloc(a, cap * sizeof *grown);
            memcpy(grown, list, nrows * sizeof *grown);
            list = grown;
        }
        jsg_val *cols = tr_arena_alloc(a, (size_t)(ncols ? ncols : 1) * sizeof *cols);
        held += 16 + (size_t)ncols * 9;
        for (int i = 0; i < ncols; i++) {
            /* integers stay integers: the guest's encoding tells INTEGER from REAL */
            cols[i] = sqlite3_column_type(stmt, i) == SQLITE_INTEGER
                          ? jsg_bigint(sqlite3_column_int64(stmt, i))
                          : column_value(stmt, i, a);
            if (cols[i].type == JSG_STRING || cols[i].type == JSG_BYTES) held += cols[i].u.str.len;
        }
        list[nrows++] = jsg_array(cols, (size_t)ncols);
        if (held > max_bytes) {
            rc = tr_error_set(err, TR_ELIMIT,
                              "the query's rows take more than the instance's memory limit of "
                              "%zu MiB (runtime.memory_limit_mb): select fewer rows (LIMIT)",
                              max_bytes >> 20);
            goto out;
        }
    }
    if (s->tx == NULL && !in_host_tx && !sqlite3_get_autocommit(h)) {
        sqlite3_reset(stmt);
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        rc = tr_error_set(err, TR_ESQL,
                          "BEGIN and SAVEPOINT are not allowed in a plain statement: the "
                          "connection is shared by every request of the worker");
        goto out;
    }
    *out = rows ? jsg_array(list, nrows) : jsg_bigint(sqlite3_changes64(h));
out:
    s->cpu_deadline_ns = 0;
    s->auth->guest = false;
    guest__sql_release(s, c);
    return rc;
}

void guest_sql_set_nowait(guest_sql *s, bool on)
{
    s->nowait = on;
}

bool guest_sql_busy(const guest_sql *s)
{
    return s->busy;
}

bool guest_sql_must_wait(const guest_sql *s)
{
    return guest__sql_must_wait(s);
}

bool guest_sql_in_host_tx(const guest_sql *s)
{
    return s->tx == NULL && !sqlite3_get_autocommit(db_handle(s->db));
}
