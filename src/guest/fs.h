/* guest/fs.h: the read-only filesystem a guest sees under `--runtime-root-fs DIR`.
 *
 * The guest's "/" is DIR. Every lookup goes through openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) from DIR, so `..`, absolute symlinks and relative symlinks that would
 * leave DIR are refused by the kernel, whatever route they take. The database directory
 * (DATA_DIR/data) is refused even when it lies inside DIR. Paths must be valid, NUL-free and at
 * most GUEST_FS_MAX_PATH bytes; files are read up to a size limit.
 *
 * Thread: a guest_fs is immutable after guest_fs_open() and may be shared by all workers. */
#ifndef TRAIL_GUEST_FS_H
#define TRAIL_GUEST_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define GUEST_FS_MAX_PATH 4096

typedef struct guest_fs guest_fs;

/* Opens root for guests. deny_dir (may be NULL) is a directory no guest path may reach
 * (trail passes DATA_DIR/data). */
int guest_fs_open(const char *root, const char *deny_dir, guest_fs **out, tr_error *err);
void guest_fs_close(guest_fs *fs);

/* Reads the whole file at the guest path (path, len) into out, at most max_bytes. Errors are
 * TR_ENOTFOUND, TR_EINVAL (bad path, a directory), TR_ELIMIT (too large) or -errno, with a
 * message in err naming the guest path (never the host path). */
int guest_fs_read(const guest_fs *fs, const char *path, size_t len, size_t max_bytes, tr_buf *out,
                  tr_error *err);

typedef enum guest_fs_type {
    GUEST_FS_FILE,
    GUEST_FS_DIR,
    GUEST_FS_SYMLINK,
    GUEST_FS_OTHER,
} guest_fs_type;

typedef struct guest_fs_stat {
    guest_fs_type type;
    uint64_t size;
    int64_t mtime_ms;
} guest_fs_stat;

int guest_fs_stat_path(const guest_fs *fs, const char *path, size_t len, guest_fs_stat *out,
                       tr_error *err);

/* Lists a directory: out receives "name\0" type-byte entries, see guest_fs_dirent_next(). Names
 * are sorted; "." and ".." are left out, and so is the denied directory. */
int guest_fs_readdir(const guest_fs *fs, const char *path, size_t len, tr_buf *out,
                     tr_error *err);

/* Iterates a readdir buffer: *pos starts at 0; returns false at the end. */
bool guest_fs_dirent_next(const tr_buf *list, size_t *pos, const char **name,
                          guest_fs_type *type);

#endif
