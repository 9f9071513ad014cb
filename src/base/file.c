/* base/file.c: whole-file reads and atomic writes. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tr_read_file(const char *path, size_t max_bytes, tr_buf *out, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tr_error_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tr_error_set(err, TR_EINVAL, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return tr_error_set(err, TR_ELIMIT, "%s is larger than %zu bytes", path, max_bytes);
    }
    tr_buf_reserve(out, (size_t)st.st_size);
    for (;;) {
        tr_buf_reserve(out, 65536);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return tr_error_set(err, -e, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0) break;
        out->len += (size_t)n;
        if (out->len > max_bytes) {
            close(fd);
            return tr_error_set(err, TR_ELIMIT, "%s is larger than %zu bytes", path, max_bytes);
        }
    }
    out->data[out->len] = '\0';
    close(fd);
    return 0;
}

int tr_write_file_atomic(const char *path, const void *data, size_t len, tr_error *err)
{
    char *tmp = tr_asprintf("%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = tr_error_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = tr_error_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rc = tr_error_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = tr_error_set(err, -errno, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
    }
out:
    tr_free(tmp);
    return rc;
}
