/* http/static.c: files from --public-dir, and the built-in routes.
 *
 * DESIGN: the public root is opened once (O_PATH) and every file is opened relative to it with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel refuses any resolution that
 * leaves the root, whether through "..", an absolute symlink or a relative one, so there is no
 * check-then-open race. Before that, the request path is percent-decoded once and refused when it
 * contains a NUL, an encoded '/' or '\', or a "." / ".." segment; every refusal is a 404 so the
 * response says nothing about what exists outside. Small files are copied into the response
 * (one send for headers and body); larger ones follow with sendfile(2). Range is not supported. */
#include "http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Files up to this size are copied into the response; larger ones are sent with sendfile. */
#define SMALL_FILE (16u << 10)

struct http_static {
    int root_fd; /* O_PATH | O_DIRECTORY */
};

int http_static_open(const char *dir, http_static **out, tr_error *err)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return tr_error_set(err, rc, "public directory %s: %s", dir, tr_strerror(rc));
    }
    http_static *st = tr_calloc(1, sizeof *st);
    st->root_fd = fd;
    *out = st;
    return 0;
}

void http_static_free(http_static *st)
{
    if (st == NULL) return;
    close(st->root_fd);
    tr_free(st);
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
};

const char *http_mime_type(const char *name, size_t len)
{
    size_t i = len;
    while (i > 0 && name[i - 1] != '.' && name[i - 1] != '/')
        i--;
    if (i == 0 || name[i - 1] != '.') return "application/octet-stream";
    const char *ext = name + i;
    size_t el = len - i;
    for (size_t k = 0; k < TR_ARRAY_LEN(mime_types); k++)
        if (strlen(mime_types[k].ext) == el && strncasecmp(mime_types[k].ext, ext, el) == 0)
            return mime_types[k].type;
    return "application/octet-stream";
}

/* Decodes path (starting with '/') into out as a relative path ("." for the root). Returns the
 * length, or -1 when the path must be refused. */
static long decode_path(const char *path, size_t len, char *out, size_t cap)
{
    /* A malformed escape, or one that hides a separator or NUL, is refused; so is a NUL. */
    if (memchr(path, '\0', len) != NULL) return -1;
    long decoded = len > 1 ? tr_percent_decode(path + 1, len - 1, out, cap - 1, "/\\") : 0;
    if (decoded < 0) return -1;
    size_t n = (size_t)decoded;
    /* Refuse "." and ".." segments (decoded), empty segments are harmless. */
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || out[i] == '/') {
            size_t sl = i - seg;
            if ((sl == 1 && out[seg] == '.') || (sl == 2 && out[seg] == '.' && out[seg + 1] == '.'))
                return -1;
            seg = i + 1;
        }
    }
    if (n == 0) out[n++] = '.';
    out[n] = '\0';
    return (long)n;
}

static int open_beneath(int root, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

/* True if the If-None-Match list contains etag (weak comparison) or "*". */
static bool etag_matches(const http_slice *inm, const char *etag, size_t el)
{
    const char *p = inm->ptr, *end = inm->ptr + inm->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e - s == 1 && *s == '*') return true;
        if (e - s >= 2 && s[0] == 'W' && s[1] == '/') s += 2;
        if ((size_t)(e - s) == el && memcmp(s, etag, el) == 0) return true;
    }
    return false;
}

void http_static_serve(const http_static *st, const http_request *req, http_response *res)
{
    char rel[4096 + 16];
    long rl = decode_path(req->path.ptr, req->path.len, rel, sizeof rel - 16);
    if (rl < 0) {
        http_response_send_error(res, 404, "not found");
        return;
    }
    int fd = open_beneath(st->root_fd, rel);
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        size_t n = (size_t)rl;
        if (rel[n - 1] != '/') rel[n++] = '/';
        memcpy(rel + n, "index.html", 11);
        rl = (long)(n + 10);
        fd = open_beneath(st->root_fd, rel);
    }
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        http_response_send_error(res, 404, "not found");
        return;
    }
    char etag[64];
    int el = snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)sb.st_size,
                      (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                          (unsigned long long)sb.st_mtim.tv_nsec);
    http_response_header(res, "ETag", etag, (size_t)el);
    const http_header *inm = http_request_header(req, "If-None-Match");
    if (inm && etag_matches(&inm->value, etag, (size_t)el)) {
        close(fd);
        http_response_send(res, 304, NULL, NULL, 0);
        return;
    }
    const char *type = http_mime_type(rel, (size_t)rl);
    size_t size = (size_t)sb.st_size;
    if (req->is_head) {
        close(fd);
        /* The length is what GET would send; no body is read for HEAD. */
        http_response_send(res, 200, type, NULL, size);
        return;
    }
    if (size > SMALL_FILE) {
        /* Large files go out with sendfile(2) straight from the page cache. */
        http_response_send_file(res, 200, type, fd, size);
        return;
    }
    char data[SMALL_FILE];
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, data + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        http_response_send_error(res, 500, "cannot read file");
        return;
    }
    http_response_send(res, 200, type, data, size);
}

/* ---- built-in routes ---- */

static void healthcheck(const http_request *req, http_response *res, void *ud)
{
    (void)req;
    (void)ud;
    http_response_send(res, 200, "text/plain; charset=utf-8", "Ok", 2);
}

int http_builtin_register(http_router *r, tr_error *err)
{
    return http_router_add(r, "GET", "/api/healthcheck", healthcheck, NULL, err);
}
