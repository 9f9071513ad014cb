/* db/db.h: SQLite connections, the data directory and schema migrations.
 *
 * DESIGN: every worker thread opens its own connection with db_open() (SQLite in WAL mode, so
 * readers on other connections never block behind a writer). Every connection gets the SQL
 * functions uuid_v7() (the built-in `_user` table's id default), uuid_text(blob) and
 * uuid_parse(text), and the float32 vector functions vec_f32(v), vec_length(v),
 * vec_distance_cosine(a, b) and vec_distance_l2(a, b) with sqlite-vec's semantics (db/vec.c).
 *
 * Start-up of `trail run`, in this order:
 *   db_datadir_init(dir, cfg_default_text())        creates what is missing, incl. the config
 *   cfg_init_defaults(); cfg_load_file(dir/DB_CONFIG_FILE)   any error: print err.msg, exit 1
 *   command-line flags over the cfg struct           (flag > file > default)
 *   db_open(dir/DB_MAIN_FILE); db_migrate(conn, dir/DB_MIGRATIONS_DIR)   error: print, exit 1
 *   then each worker opens its own connection with db_open(). */
#ifndef TRAIL_DB_DB_H
#define TRAIL_DB_DB_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct sqlite3;

typedef struct db_conn db_conn;

/* Paths inside the data directory. */
#define DB_CONFIG_FILE    "config.textproto"
#define DB_MAIN_FILE      "data/main.db"
#define DB_MIGRATIONS_DIR "migrations"

/* Busy timeout set on every connection. */
#define DB_BUSY_TIMEOUT_MS 5000
/* The table that records applied migrations: (name TEXT PRIMARY KEY, applied_at INTEGER
 * milliseconds since the epoch, checksum TEXT: 16 hex digits of the FNV-1a 64 hash of the file). */
#define DB_HISTORY_TABLE "_schema_history"

/* Creates DIR/{config.textproto (holding config_text, the commented default that the caller
 * takes from config/), data/, migrations/, wasm/} where missing, and DIR itself with any missing
 * parents. Existing files are never touched. Errors: -errno with err naming the path. */
int db_datadir_init(const char *data_dir, const char *config_text, tr_error *err);

/* Opens (creating) a SQLite file: WAL, busy timeout (DB_BUSY_TIMEOUT_MS), foreign keys on, and
 * uuid_v7() registered. Errors: TR_ESQL with SQLite's message in err. The connection may be used by
 * one thread at a time; open one per thread. */
int db_open(const char *path, db_conn **out, tr_error *err);

/* Temporary files of a connection opened with db_open_guarded() when the caller names no bound. */
#define DB_TEMP_MAX_DEFAULT ((uint64_t)256 << 20)

/* db_open() for a connection that runs guests' SQL: the temporary files SQLite makes for it
 * (sorts and groupings that outgrow the page cache, materialized subqueries, DISTINCT sets,
 * statement journals; db/tempvfs.c) together never hold more than temp_max_bytes: a write past
 * that fails the statement with SQLITE_FULL, and db_temp_take_limit_hit() then says that it was
 * this bound. Errors as db_open(). */
int db_open_guarded(const char *path, uint64_t temp_max_bytes, db_conn **out, tr_error *err);

/* True once after a write to a temporary file of c was refused for its bound (false for a
 * connection from db_open()); reading clears it. */
bool db_temp_take_limit_hit(db_conn *c);
/* The bound of c's temporary files and the bytes they hold now (0 and 0 for db_open()). */
uint64_t db_temp_max_bytes(const db_conn *c);
uint64_t db_temp_used_bytes(const db_conn *c);

/* Makes every SQLite connection opened in this process from now on carry trail's SQL functions
 * (the uuid and vector functions above), including connections trail does not open itself: those
 * of the dqlite node of cluster mode, which runs on trail's SQLite (docs/scaling.md, "Two
 * SQLites"). Also applies trail's process-wide SQLite settings first, as db_open() does. Returns 0
 * or TR_ESQL. Any thread; idempotent. */
int db_functions_register_everywhere(void);

/* Closes c (NULL is a no-op). Statements prepared on db_handle(c) must be finalized first. */
void db_close(db_conn *c);

/* The underlying SQLite handle, borrowed until db_close(). */
struct sqlite3 *db_handle(db_conn *c);

/* Applies the built-in migrations, then the *.sql files of migrations_dir in file-name order (byte
 * order of the names), each at most once, each in its own transaction, recorded in
 * DB_HISTORY_TABLE. migrations_dir may be NULL or missing (only the built-in ones run). A file that
 * changed after it was applied is logged as a warning, not run again. A failing migration is rolled
 * back (those before it stay applied) and returns TR_ESQL with err "migration DIR/FILE failed at
 * line N: SQLite message"; an unreadable file or directory returns -errno naming it. */
int db_migrate(db_conn *c, const char *migrations_dir, tr_error *err);

/* What db_migrate_run() did: migrations run now, already applied before, and already applied but
 * changed since (each of those also logged as a warning). */
typedef struct db_migrate_stats {
    unsigned applied, skipped, changed;
} db_migrate_stats;

/* db_migrate() that also reports counts in *stats (may be NULL). */
int db_migrate_run(db_conn *c, const char *migrations_dir, db_migrate_stats *stats, tr_error *err);

/* The statement that creates DB_HISTORY_TABLE when it is missing. */
#define DB_HISTORY_DDL                                    \
    "CREATE TABLE IF NOT EXISTS " DB_HISTORY_TABLE " (\n" \
    "  name       TEXT PRIMARY KEY NOT NULL,\n"           \
    "  applied_at INTEGER NOT NULL,\n"                    \
    "  checksum   TEXT NOT NULL\n"                        \
    ") STRICT"

/* One migration, for a runner other than db_migrate() (cluster mode applies them through the
 * cluster's leader): its history name, a label for messages (a built-in's name or the file's
 * path), its SQL text (len bytes, NUL-terminated, borrowed for the call) and its checksum (16 hex
 * digits). A negative return stops the walk and is returned. */
typedef int (*db_migration_fn)(void *ud, const char *name, const char *label, const char *sql,
                               size_t len, const char *checksum, tr_error *err);
/* Calls fn for every migration in the order db_migrate() applies them: the built-in ones, then
 * the *.sql files of migrations_dir (NULL or missing: none). Errors: fn's, or an unreadable file
 * or directory as db_migrate(). */
int db_migrations_each(const char *migrations_dir, db_migration_fn fn, void *ud, tr_error *err);
/* Logs the warning db_migrate() gives for a migration whose checksum changed since it was
 * applied (nothing when old and sum are equal). */
void db_migration_warn_if_changed(const char *label, const char *old, const char *sum);

/* While *flag is nonzero (a signal handler sets it), every statement running on c stops within
 * a few thousand SQLite steps with SQLITE_INTERRUPT ("interrupted"), so a statement without end
 * (a recursive query in a migration) can be stopped. flag NULL removes it. db_migrate() rolls a
 * migration stopped this way back like any failed one. */
void db_stop_on(db_conn *c, const volatile sig_atomic_t *flag);

/* Executes one or more SQL statements without results. Errors: TR_ESQL with SQLite's message. */
int db_exec(db_conn *c, const char *sql, tr_error *err);

/* Runs sql (one statement, no parameters) and stores the first column of its first row in *out.
 * Errors: TR_ESQL; TR_ENOTFOUND when there is no row. */
int db_query_int(db_conn *c, const char *sql, int64_t *out, tr_error *err);

/* Writes a fresh UUIDv7 (RFC 9562: 48-bit Unix milliseconds, version 7, variant 10, random
 * bits from getrandom, monotonic within a thread for the same millisecond) into out. */
void db_uuid_v7(uint8_t out[16]);

#endif
