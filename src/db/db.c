/* db/db.c: opening and closing SQLite connections, and small query helpers.
 *
 * DESIGN: every connection is set up the same way so that any worker's connection behaves like
 * any other: WAL (readers never wait for the writer), synchronous=NORMAL (durable across a crash of
 * trail; the last transactions may be lost only on power loss, the usual WAL trade-off), a busy
 * timeout so that concurrent writers wait instead of failing, foreign keys enforced, extended
 * result codes, and the uuid and vector (db/vec.c) functions registered. Workers' connections
 * (db_open_guarded) also bound their temporary files (db/tempvfs.c). SQLite's memory statistics
 * are off for the whole process (set once, before the first connection): with them on, every
 * allocation SQLite makes takes a process-wide mutex, and nothing in trail reads them. */
#include "db/db_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int db__sql_error(sqlite3 *db, tr_error *err, const char *what)
{
    return tr_error_set(err, TR_ESQL, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static int setup(sqlite3 *db, const char *path, tr_error *err)
{
    char what[600];
    snprintf(what, sizeof what, "open %s", path);
    sqlite3_extended_result_codes(db, 1);
    if (sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
        return db__sql_error(db, err, what);
    if (db__uuid_register(db) != SQLITE_OK) return db__sql_error(db, err, what);
    if (db__vec_register(db) != SQLITE_OK) return db__sql_error(db, err, what);
    /* Connections opening a new file at the same moment (workers, several processes) race to
     * switch it to WAL; SQLite answers the losers SQLITE_BUSY without waiting (it would be a
     * deadlock), so that is retried here, within the busy timeout. */
    int rc;
    char mode[16] = "";
    for (int waited_ms = 0;; waited_ms++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
            return db__sql_error(db, err, what);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *m = sqlite3_column_text(st, 0);
            snprintf(mode, sizeof mode, "%s", m ? (const char *)m : "");
        }
        sqlite3_finalize(st);
        if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= DB_BUSY_TIMEOUT_MS) break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (rc != SQLITE_ROW) return db__sql_error(db, err, what);
    bool in_memory = strcmp(path, ":memory:") == 0 || path[0] == '\0';
    if (strcmp(mode, "wal") != 0 && !in_memory)
        return tr_error_set(err, TR_ESQL, "%s: could not switch to WAL mode (journal mode is %s)",
                            what, mode);
    if (sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", NULL, NULL, NULL) !=
        SQLITE_OK)
        return db__sql_error(db, err, what);
    return 0;
}

static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void config_sqlite(void)
{
    /* Must precede sqlite3_initialize(); if something opened a connection first, SQLite refuses
     * (SQLITE_MISUSE) and keeps its default, which is only slower. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* sqlite3_auto_extension()'s entry point: SQLite calls it for each new connection. */
static int register_functions(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
    TR_UNUSED(errmsg);
    TR_UNUSED(api);
    int rc = db__uuid_register(db);
    if (rc == SQLITE_OK) rc = db__vec_register(db);
    return rc;
}

int db_functions_register_everywhere(void)
{
    pthread_once(&config_once, config_sqlite);
    /* SQLite declares the entry point without parameters; it calls it with these three. */
    if (sqlite3_auto_extension((void (*)(void))register_functions) != SQLITE_OK)
        return TR_ESQL;
    return 0;
}

static int open_with(const char *path, db__temp_vfs *temp, db_conn **out, tr_error *err)
{
    sqlite3 *db = NULL;
    /* NOMUTEX: a connection belongs to one thread (see db.h), so SQLite's own locking of the
     * connection would be pure overhead. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, temp ? db__temp_vfs_name(temp) : NULL) != SQLITE_OK) {
        char what[600];
        snprintf(what, sizeof what, "open %s", path);
        int rc = db__sql_error(db, err, what);
        sqlite3_close(db);
        return rc;
    }
    int rc = setup(db, path, err);
    if (rc < 0) {
        sqlite3_close(db);
        return rc;
    }
    db_conn *c = tr_calloc(1, sizeof *c);
    c->db = db;
    c->temp = temp;
    *out = c;
    return 0;
}

int db_open(const char *path, db_conn **out, tr_error *err)
{
    pthread_once(&config_once, config_sqlite);
    return open_with(path, NULL, out, err);
}

int db_open_guarded(const char *path, uint64_t temp_max_bytes, db_conn **out, tr_error *err)
{
    pthread_once(&config_once, config_sqlite);
    db__temp_vfs *temp = NULL;
    if (db__temp_vfs_new(temp_max_bytes, &temp) != SQLITE_OK)
        return tr_error_set(err, TR_ESQL, "open %s: cannot set up its temporary files", path);
    int rc = open_with(path, temp, out, err);
    if (rc < 0) db__temp_vfs_free(temp);
    return rc;
}

void db_close(db_conn *c)
{
    if (c == NULL) return;
    /* Lets SQLite refresh planner statistics it found missing during this connection's life. */
    sqlite3_exec(c->db, "PRAGMA optimize", NULL, NULL, NULL);
    if (sqlite3_close(c->db) != SQLITE_OK) {
        tr_log_error("db: closing with unfinalized statements: %s", sqlite3_errmsg(c->db));
        sqlite3_close_v2(c->db);
        c->temp = NULL; /* the connection lives on until they are finalized, and uses it */
    }
    db__temp_vfs_free(c->temp);
    tr_free(c);
}

struct sqlite3 *db_handle(db_conn *c)
{
    return c->db;
}

static int stop_requested(void *arg)
{
    return *((db_conn *)arg)->stop != 0;
}

void db_stop_on(db_conn *c, const volatile sig_atomic_t *flag)
{
    c->stop = flag;
    /* 1000 steps take microseconds, so a stop is seen at once. */
    sqlite3_progress_handler(c->db, flag ? 1000 : 0, flag ? stop_requested : NULL, c);
}

int db_exec(db_conn *c, const char *sql, tr_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = tr_error_set(err, TR_ESQL, "%s", msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int db_query_int(db_conn *c, const char *sql, int64_t *out, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(c->db));
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        ret = tr_error_set(err, TR_ENOTFOUND, "query returned no row");
    else
        ret = tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    return ret;
}
