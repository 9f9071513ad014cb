/* db/db_internal.h: helpers shared by the files of src/db/ only. */
#ifndef TRAIL_DB_DB_INTERNAL_H
#define TRAIL_DB_DB_INTERNAL_H

#include <signal.h>
#include <sqlite3.h>

#include "db/db.h"

typedef struct db__temp_vfs db__temp_vfs;

struct db_conn {
    sqlite3 *db;
    db__temp_vfs *temp; /* db_open_guarded(): the VFS bounding its temporary files; else NULL */
    const volatile sig_atomic_t *stop; /* db_stop_on(); NULL: none */
};

/* db/tempvfs.c: a copy of the default VFS, registered under its own name, whose temporary
 * files together never exceed max_bytes (a write past it fails with SQLITE_FULL). Returns a
 * SQLite result code. */
int db__temp_vfs_new(uint64_t max_bytes, db__temp_vfs **out);
const char *db__temp_vfs_name(const db__temp_vfs *v);
/* Unregisters and frees v (NULL is a no-op); no connection may use it any more. */
void db__temp_vfs_free(db__temp_vfs *v);

/* Registers uuid_v7(), uuid_text() and uuid_parse() on db. Returns a SQLite result code. */
int db__uuid_register(sqlite3 *db);

/* Registers vec_f32(), vec_length(), vec_distance_cosine() and vec_distance_l2() (db/vec.c) on
 * db. Returns a SQLite result code. */
int db__vec_register(sqlite3 *db);

/* Records SQLite's current error message on db as TR_ESQL in err, prefixed by what was being
 * done ("open data/main.db"); returns TR_ESQL. */
int db__sql_error(sqlite3 *db, tr_error *err, const char *what);

#endif
