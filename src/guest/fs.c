/* guest/fs.c: the guest's read-only view of --runtime-root-fs (see fs.h).
 *
 * DESIGN: the kernel does the containment (openat2 with RESOLVE_BENEATH), so there is no path
 * string logic that could disagree with what the kernel resolves. The denied directory is
 * matched by (st_dev, st_ino) of every directory on the opened file's real path, which catches
 * it however it was reached (bind-mount aside). */
#include "guest/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct guest_fs {
    int root_fd;
    bool has_deny;
    dev_t deny_dev;
    ino_t deny_ino;
    char *root_real; /* realpath of root, for the denied-directory walk */
};

int guest_fs_open(const char *root, const char *deny_dir, guest_fs **out, tr_error *err)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return tr_error_set(err, -errno, "--runtime-root-fs %s: %s", root, strerror(errno));
    guest_fs *fs = tr_calloc(1, sizeof *fs);
    fs->root_fd = fd;
    char *real = realpath(root, NULL);
    fs->root_real = tr_strdup(real ? real : root);
    free(real);
    struct stat st;
    if (deny_dir != NULL && stat(deny_dir, &st) == 0) {
        fs->has_deny = true;
        fs->deny_dev = st.st_dev;
        fs->deny_ino = st.st_ino;
    }
    *out = fs;
    return 0;
}

void guest_fs_close(guest_fs *fs)
{
    if (fs == NULL) return;
    close(fs->root_fd);
    tr_free(fs->root_real);
    tr_free(fs);
}

/* Checks the guest path and makes it relative to the root ("/a/b" and "a/b" are the same). */
static int guest_rel_path(const char *path, size_t len, char *buf, size_t cap, tr_error *err)
{
    if (len > GUEST_FS_MAX_PATH)
        return tr_error_set(err, TR_EINVAL, "path is longer than %d bytes", GUEST_FS_MAX_PATH);
    if (memchr(path, '\0', len) != NULL)
        return tr_error_set(err, TR_EINVAL, "path contains a NUL byte");
    while (len > 0 && *path == '/') {
        path++;
        len--;
    }
    if (len == 0) {
        snprintf(buf, cap, ".");
        return 0;
    }
    if (len + 1 > cap) return tr_error_set(err, TR_EINVAL, "path is too long");
    memcpy(buf, path, len);
    buf[len] = '\0';
    return 0;
}

/* Is fd (or any directory above it up to the root) the denied directory? */
static bool is_denied(const guest_fs *fs, int fd)
{
    if (!fs->has_deny) return false;
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n <= 0) return true; /* cannot tell: refuse */
    real[n] = '\0';
    size_t root_len = strlen(fs->root_real);
    for (;;) {
        struct stat st;
        if (stat(real, &st) == 0 && st.st_dev == fs->deny_dev && st.st_ino == fs->deny_ino)
            return true;
        char *slash = strrchr(real, '/');
        if (slash == NULL || (size_t)(slash - real) < root_len || slash == real) return false;
        *slash = '\0';
    }
}

static int open_beneath(const guest_fs *fs, const char *guest, const char *rel, int flags,
                        tr_error *err)
{
    struct open_how how = {
        /* openat2 rejects flags that O_PATH ignores, such as O_NOCTTY. O_NONBLOCK: opening a
         * FIFO (or a device) under the root must not block the worker; such a file is then
         * refused as not regular. */
        .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY | O_NONBLOCK)),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, fs->root_fd, rel, &how, sizeof how);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return tr_error_set(err, TR_ENOTFOUND, "no such file or directory: '%s'", guest);
        if (e == EXDEV || e == ELOOP)
            return tr_error_set(err, TR_EINVAL, "path leaves the filesystem root: '%s'", guest);
        if (e == ENOSYS)
            return tr_error_set(err, -e, "the sandboxed filesystem needs Linux 5.6 (openat2)");
        return tr_error_set(err, -e, "'%s': %s", guest, strerror(e));
    }
    if (is_denied(fs, (int)fd)) {
        close((int)fd);
        return tr_error_set(err, TR_EINVAL, "access denied: '%s' is trail's database directory",
                            guest);
    }
    return (int)fd;
}

/* The guest path as text for messages: printable, shortened. */
static void guest_name(const char *path, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap; i++)
        out[n++] = (path[i] >= 0x20 && path[i] < 0x7f) ? path[i] : '?';
    if (n + 4 >= cap && len > n) {
        out[n++] = '.';
        out[n++] = '.';
        out[n++] = '.';
    }
    out[n] = '\0';
}

/* Checks the guest path, names it for messages in guest[128], and opens it under the root. */
static int open_guest(const guest_fs *fs, const char *path, size_t len, int flags, char *guest,
                      tr_error *err)
{
    char rel[GUEST_FS_MAX_PATH + 2];
    guest_name(path, len, guest, 128);
    int rc = guest_rel_path(path, len, rel, sizeof rel, err);
    if (rc < 0) return rc;
    return open_beneath(fs, guest, rel, flags, err);
}

int guest_fs_read(const guest_fs *fs, const char *path, size_t len, size_t max_bytes, tr_buf *out,
                  tr_error *err)
{
    char guest[128];
    int rc = 0;
    int fd = open_guest(fs, path, len, O_RDONLY, guest, err);
    if (fd < 0) return fd;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tr_error_set(err, TR_EINVAL, "not a regular file: '%s'", guest);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return tr_error_set(err, TR_ELIMIT, "'%s' is larger than the %zu-byte read limit", guest,
                            max_bytes);
    }
    size_t start = out->len;
    for (;;) {
        tr_buf_reserve(out, 65536);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = tr_error_set(err, -errno, "'%s': %s", guest, strerror(errno));
            break;
        }
        if (n == 0) break;
        out->len += (size_t)n;
        if (out->len - start > max_bytes) {
            rc = tr_error_set(err, TR_ELIMIT, "'%s' is larger than the %zu-byte read limit",
                              guest, max_bytes);
            break;
        }
    }
    if (rc < 0) out->len = start;
    out->data[out->len] = '\0';
    close(fd);
    return rc;
}

static guest_fs_type type_of(mode_t m)
{
    return S_ISREG(m) ? GUEST_FS_FILE : S_ISDIR(m) ? GUEST_FS_DIR : S_ISLNK(m) ? GUEST_FS_SYMLINK
                                                                              : GUEST_FS_OTHER;
}

int guest_fs_stat_path(const guest_fs *fs, const char *path, size_t len, guest_fs_stat *out,
                       tr_error *err)
{
    char guest[128];
    int fd = open_guest(fs, path, len, O_PATH, guest, err);
    if (fd < 0) return fd;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : tr_error_set(err, -errno, "'%s': %s", guest, strerror(errno));
    close(fd);
    if (rc < 0) return rc;
    out->type = type_of(st.st_mode);
    out->size = (uint64_t)st.st_size;
    out->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int guest_fs_readdir(const guest_fs *fs, const char *path, size_t len, tr_buf *out, tr_error *err)
{
    char guest[128];
    int fd = open_guest(fs, path, len, O_RDONLY | O_DIRECTORY, guest, err);
    if (fd < 0) return fd;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return tr_error_set(err, -errno, "'%s': %s", guest, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (fs->has_deny && st.st_dev == fs->deny_dev && st.st_ino == fs->deny_ino) continue;
        size_t nl = strlen(e->d_name);
        char *entry = tr_malloc(nl + 2);
        memcpy(entry, e->d_name, nl + 1);
        entry[nl + 1] = (char)type_of(st.st_mode);
        names = tr_realloc(names, (n + 1) * sizeof *names);
        names[n++] = entry;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        tr_buf_append(out, names[i], strlen(names[i]) + 2);
        tr_free(names[i]);
    }
    tr_free(names);
    return 0;
}

bool guest_fs_dirent_next(const tr_buf *list, size_t *pos, const char **name, guest_fs_type *type)
{
    if (*pos >= list->len) return false;
    *name = list->data + *pos;
    size_t nl = strlen(*name);
    *type = (guest_fs_type)(unsigned char)list->data[*pos + nl + 1];
    *pos += nl + 2;
    return true;
}
