/* db/tempvfs.c: the bound on a guarded connection's temporary files.
 *
 * DESIGN: SQLite puts what a statement sorts, groups or materializes beyond its page cache (and
 * statement journals, and the temp database) in files it unlinks as it opens them (etilqs_* in
 * the temp directory); nothing bounds their size, and they live as long as the statement. A
 * guarded connection opens through its own copy of the default VFS, registered under a unique
 * name (never the default) and unregistered when the connection closes. The copy differs in
 * xOpen alone: files of the database itself (main file, WAL, rollback journal) are opened
 * straight through the default VFS, untouched; every temporary file gets a wrapper that counts
 * the highest byte written to it. The connection's total is the sum over its open temporary
 * files; a write that would take it past the bound fails with SQLITE_FULL, so the statement
 * fails ("database or disk is full"), SQLite closes its temporary files and the total drops
 * back. The unix VFS reads its pAppData only in xOpen, which the copy calls on the real VFS, so
 * its other methods can be shared as they are. A connection is used by one thread at a time
 * and SQLite's sorter threads are off (SQLITE_LIMIT_WORKER_THREADS is 0 on guarded
 * connections), so the counters need no lock. */
#include "db/db_internal.h"

#include <stdio.h>

struct db__temp_vfs {
    sqlite3_vfs base; /* first: SQLite hands us &base */
    sqlite3_vfs *real;
    uint64_t max, used; /* bytes; used <= max */
    bool hit;           /* a write was refused since db_temp_take_limit_hit() */
    char name[48];
};

typedef struct temp_file {
    sqlite3_file base; /* first; pMethods is temp_methods */
    db__temp_vfs *vfs;
    sqlite3_int64 size; /* the highest byte written + 1, as counted in vfs->used */
    sqlite3_file *real; /* the default VFS's file, in the same allocation, right after this */
} temp_file;

static int temp_close(sqlite3_file *f)
{
    temp_file *t = (temp_file *)f;
    t->vfs->used -= (uint64_t)t->size;
    t->size = 0;
    return t->real->pMethods->xClose(t->real);
}

static int temp_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xRead(t->real, buf, amt, off);
}

static int temp_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    temp_file *t = (temp_file *)f;
    sqlite3_int64 end = off + amt;
    if (end > t->size) {
        uint64_t grow = (uint64_t)(end - t->size);
        if (grow > t->vfs->max - t->vfs->used) {
            t->vfs->hit = true;
            return SQLITE_FULL;
        }
        t->vfs->used += grow;
        t->size = end;
    }
    return t->real->pMethods->xWrite(t->real, buf, amt, off);
}

static int temp_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    temp_file *t = (temp_file *)f;
    if (size < t->size) {
        t->vfs->used -= (uint64_t)(t->size - size);
        t->size = size;
    }
    return t->real->pMethods->xTruncate(t->real, size);
}

static int temp_sync(sqlite3_file *f, int flags)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xSync(t->real, flags);
}

static int temp_file_size(sqlite3_file *f, sqlite3_int64 *out)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xFileSize(t->real, out);
}

static int temp_lock(sqlite3_file *f, int lock)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xLock(t->real, lock);
}

static int temp_unlock(sqlite3_file *f, int lock)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xUnlock(t->real, lock);
}

static int temp_check_reserved(sqlite3_file *f, int *out)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xCheckReservedLock(t->real, out);
}

static int temp_file_control(sqlite3_file *f, int op, void *arg)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xFileControl(t->real, op, arg);
}

static int temp_sector_size(sqlite3_file *f)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xSectorSize(t->real);
}

static int temp_device_characteristics(sqlite3_file *f)
{
    temp_file *t = (temp_file *)f;
    return t->real->pMethods->xDeviceCharacteristics(t->real);
}

/* Version 1: no shared memory (temporary files have none) and no memory mapping. */
static const sqlite3_io_methods temp_methods = {
    .iVersion = 1,
    .xClose = temp_close,
    .xRead = temp_read,
    .xWrite = temp_write,
    .xTruncate = temp_truncate,
    .xSync = temp_sync,
    .xFileSize = temp_file_size,
    .xLock = temp_lock,
    .xUnlock = temp_unlock,
    .xCheckReservedLock = temp_check_reserved,
    .xFileControl = temp_file_control,
    .xSectorSize = temp_sector_size,
    .xDeviceCharacteristics = temp_device_characteristics,
};

#define TEMP_FLAGS                                                                                 \
    (SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_TRANSIENT_DB |                   \
     SQLITE_OPEN_SUBJOURNAL)

static int temp_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                     int *out_flags)
{
    db__temp_vfs *v = (db__temp_vfs *)vfs;
    if (name != NULL && (flags & TEMP_FLAGS) == 0)
        return v->real->xOpen(v->real, name, f, flags, out_flags);
    temp_file *t = (temp_file *)f;
    t->base.pMethods = NULL;
    t->vfs = v;
    t->size = 0;
    t->real = (sqlite3_file *)(t + 1);
    t->real->pMethods = NULL;
    int rc = v->real->xOpen(v->real, name, t->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (t->real->pMethods != NULL) t->real->pMethods->xClose(t->real);
        return rc;
    }
    t->base.pMethods = &temp_methods;
    return SQLITE_OK;
}

int db__temp_vfs_new(uint64_t max_bytes, db__temp_vfs **out)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (real == NULL) return SQLITE_ERROR;
    db__temp_vfs *v = tr_calloc(1, sizeof *v);
    v->base = *real;
    v->base.pNext = NULL;
    v->base.szOsFile = (int)sizeof(temp_file) + real->szOsFile;
    snprintf(v->name, sizeof v->name, "trail-temp-%p", (void *)v);
    v->base.zName = v->name;
    v->base.xOpen = temp_open;
    v->real = real;
    v->max = max_bytes;
    int rc = sqlite3_vfs_register(&v->base, 0);
    if (rc != SQLITE_OK) {
        tr_free(v);
        return rc;
    }
    *out = v;
    return SQLITE_OK;
}

const char *db__temp_vfs_name(const db__temp_vfs *v)
{
    return v->name;
}

void db__temp_vfs_free(db__temp_vfs *v)
{
    if (v == NULL) return;
    sqlite3_vfs_unregister(&v->base);
    tr_free(v);
}

bool db_temp_take_limit_hit(db_conn *c)
{
    if (c->temp == NULL || !c->temp->hit) return false;
    c->temp->hit = false;
    return true;
}

uint64_t db_temp_max_bytes(const db_conn *c)
{
    return c->temp ? c->temp->max : 0;
}

uint64_t db_temp_used_bytes(const db_conn *c)
{
    return c->temp ? c->temp->used : 0;
}
