/* db/datadir.c: creating the data directory layout on first run.
 *
 * DESIGN: only what is missing is created, so running against an existing directory never changes
 * a file the user edited. config.textproto is created with O_EXCL, so two processes starting at
 * once cannot both write it, and a partly written file is removed rather than left to fail parsing.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir that accepts an existing directory (and nothing else) at path. */
static int ensure_dir(const char *path, tr_error *err)
{
    if (mkdir(path, 0755) == 0) return 0;
    int rc = -errno;
    struct stat st;
    if (rc == -EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return 0;
        rc = -ENOTDIR;
    }
    return tr_error_set(err, rc, "cannot create directory %s: %s", path, tr_strerror(rc));
}

/* mkdir -p: creates every missing component of path. */
static int ensure_dirs(const char *path, tr_error *err)
{
    char *p = tr_strdup(path);
    int rc = 0;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/') continue;
        *s = '\0';
        rc = ensure_dir(p, err);
        *s = '/';
    }
    if (rc == 0) rc = ensure_dir(p, err);
    tr_free(p);
    return rc;
}

static int write_default_config(const char *path, const char *text, tr_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST) return 0;
        int rc = -errno;
        return tr_error_set(err, rc, "cannot create %s: %s", path, tr_strerror(rc));
    }
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc < 0) {
        unlink(path);
        return tr_error_set(err, rc, "cannot write %s: %s", path, tr_strerror(rc));
    }
    return 0;
}

int db_datadir_init(const char *data_dir, const char *config_text, tr_error *err)
{
    int rc = ensure_dirs(data_dir, err);
    static const char *const subdirs[] = {"data", "migrations", "wasm"};
    for (size_t i = 0; i < TR_ARRAY_LEN(subdirs) && rc == 0; i++) {
        char *p = tr_asprintf("%s/%s", data_dir, subdirs[i]);
        rc = ensure_dir(p, err);
        tr_free(p);
    }
    if (rc == 0) {
        char *p = tr_asprintf("%s/%s", data_dir, DB_CONFIG_FILE);
        rc = write_default_config(p, config_text, err);
        tr_free(p);
    }
    return rc;
}
