/* The hostile battery, the filesystem: trailbase-wasm/fs (readFile, readTextFile, readDir, stat)
 * from a real component against `trail run --runtime-root-fs ROOT`. Reads inside ROOT work;
 * every way out is refused: "..", absolute host paths, symlinks pointing out (absolute and
 * relative, to files and to directories), very long paths, NUL bytes, a FIFO that would block
 * the worker, and the database directory (the depot lives inside ROOT here, so DATA_DIR/data
 * is reachable by name and by a symlink). Without the flag every call rejects with
 * "filesystem access is not enabled". Healthy requests run throughout. */
#include "hostile/hostile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"

typedef struct fs_case {
    const char *op; /* read, text, dir, stat */
    const char *path;
    size_t len; /* 0: strlen(path) */
    int status;
    const char *want;
    const char *code; /* the Error's code for a refusal */
} fs_case;

static char root[600], outside[600];

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[1000];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK_EQ(th_write_file(p, text, strlen(text)), 0);
}

static void make_tree(void)
{
    snprintf(root, sizeof root, "%s/root", test_tmpdir());
    snprintf(outside, sizeof outside, "%s/outside", test_tmpdir());
    char p[1000], q[1000];
    CHECK_EQ(mkdir(root, 0755), 0);
    CHECK_EQ(mkdir(outside, 0755), 0);
    snprintf(p, sizeof p, "%s/sub", root);
    CHECK_EQ(mkdir(p, 0755), 0);
    write_text(root, "hello.txt", "hello from the root");
    write_text(root, "sub/inner.txt", "inner");
    write_text(outside, "secret.txt", "TOP SECRET");
    snprintf(p, sizeof p, "%s/link_in", root);
    CHECK_EQ(symlink("sub/inner.txt", p), 0);
    snprintf(p, sizeof p, "%s/link_abs", root);
    snprintf(q, sizeof q, "%s/secret.txt", outside);
    CHECK_EQ(symlink(q, p), 0);
    snprintf(p, sizeof p, "%s/link_up", root);
    CHECK_EQ(symlink("../outside/secret.txt", p), 0);
    snprintf(p, sizeof p, "%s/sub/link_up2", root);
    CHECK_EQ(symlink("../../outside", p), 0);
    snprintf(p, sizeof p, "%s/dir_out", root);
    CHECK_EQ(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/etc_link", root);
    CHECK_EQ(symlink("/etc", p), 0);
    snprintf(p, sizeof p, "%s/db_link", root);
    CHECK_EQ(symlink("traildepot/data", p), 0);
    snprintf(p, sizeof p, "%s/fifo", root);
    CHECK_EQ(mkfifo(p, 0644), 0);
    snprintf(p, sizeof p, "%s/traildepot", root);
    hz_set_depot(p);
}

/* Runs the cases with the healthy load on; returns how many were refused. */
static int run_cases(const th_server *s, const fs_case *cases, size_t n, hz_stats *st)
{
    hz_load *l = hz_load_start(s);
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        const fs_case *c = &cases[i];
        char path[64];
        snprintf(path, sizeof path, "/fs/%s", c->op);
        size_t len = c->len ? c->len : strlen(c->path);
        th_resp r;
        int status = hz_call(s->port, "POST", path, c->path, len, &r, NULL);
        if (status != c->status || (c->want && strstr(r.body, c->want) == NULL) ||
            (c->code && strstr(r.body, c->code) == NULL))
            fprintf(stderr, "fs case %zu (%s %.60s): %d %.300s\n", i, c->op, c->path, status,
                    status > 0 ? r.body : "");
        CHECK_EQ(status, c->status);
        if (c->want) CHECK_CONTAINS(r.body, c->want);
        if (c->code) {
            char code[64];
            snprintf(code, sizeof code, "\"code\":\"%s\"", c->code);
            CHECK_CONTAINS(r.body, code);
        }
        CHECK(strstr(r.body, "TOP SECRET") == NULL);
        CHECK(strstr(r.body, "root:x:0:0") == NULL);
        refused += status == 403;
        th_resp_free(&r);
    }
    hz_load_stop(l, st);
    return refused;
}

#define OUT "leaves the filesystem root", "EACCES"
#define DENIED "database directory", "EACCES"
#define NOENT "no such file", "ENOENT"

TEST_TIMEOUT(hostile_fs_traversal, 120)
{
    make_tree();
    static char long_path[6000], long_name[400], nul_path[32];
    for (size_t i = 0; i + 2 < 5000; i += 2) memcpy(long_path + i, "a/", 2);
    memset(long_name, 'x', 300);
    memcpy(nul_path, "hello.txt\0/../../outside", 25);
    const fs_case cases[] = {
        /* what works */
        {"text", "/hello.txt", 0, 200, "hello from the root", NULL},
        {"text", "hello.txt", 0, 200, "hello from the root", NULL},
        {"read", "/hello.txt", 0, 200, "{\"ok\":19}", NULL},
        {"text", "/sub/../hello.txt", 0, 200, "hello from the root", NULL},
        {"text", "/link_in", 0, 200, "inner", NULL},
        {"dir", "/", 0, 200, "\"hello.txt\"", NULL},
        {"stat", "/sub", 0, 200, "\"isDirectory\":true", NULL},
        {"stat", "/hello.txt", 0, 200, "\"size\":19", NULL},
        /* ".." in every position */
        {"text", "/../outside/secret.txt", 0, 403, OUT},
        {"text", "../outside/secret.txt", 0, 403, OUT},
        {"text", "/sub/../../outside/secret.txt", 0, 403, OUT},
        {"text", "/sub/../../../../../../../../etc/passwd", 0, 403, OUT},
        {"dir", "/..", 0, 403, OUT},
        {"stat", "..", 0, 403, OUT},
        {"read", "/./sub/./../../outside/secret.txt", 0, 403, OUT},
        /* absolute host paths are paths inside the root */
        {"text", "/etc/passwd", 0, 403, NOENT},
        {"dir", "/proc/self", 0, 403, NOENT},
        {"text", "//etc//passwd", 0, 403, NOENT},
        /* symlinks out */
        {"text", "/link_abs", 0, 403, OUT},
        {"text", "/link_up", 0, 403, OUT},
        {"text", "/sub/link_up2/secret.txt", 0, 403, OUT},
        {"dir", "/sub/link_up2", 0, 403, OUT},
        {"text", "/dir_out/secret.txt", 0, 403, OUT},
        {"stat", "/dir_out", 0, 403, OUT},
        {"text", "/etc_link/passwd", 0, 403, OUT},
        {"dir", "/etc_link", 0, 403, OUT},
        /* very long paths, NUL bytes */
        {"text", long_path, 0, 403, "longer than 4096", "EINVAL"},
        {"stat", long_name, 0, 403, "File name too long", "EIO"},
        {"text", nul_path, 24, 403, "NUL byte", "EINVAL"},
        {"stat", "\0", 1, 403, "NUL byte", "EINVAL"},
        /* things that are not regular files */
        {"text", "/fifo", 0, 403, "not a regular file", "EISDIR"},
        {"read", "/sub", 0, 403, "not a regular file", "EISDIR"},
        /* the database directory, however it is reached */
        {"read", "/traildepot/data/main.db", 0, 403, DENIED},
        {"dir", "/traildepot/data", 0, 403, DENIED},
        {"stat", "/traildepot/data", 0, 403, DENIED},
        {"read", "/traildepot/../traildepot/data/main.db", 0, 403, DENIED},
        {"read", "/db_link/main.db", 0, 403, DENIED},
        {"dir", "/db_link", 0, 403, DENIED},
    };
    th_server s;
    const char *args[] = {"--runtime-root-fs", root, NULL};
    hz_start(&s, NULL, args);
    hz_stats st;
    int refused = run_cases(&s, cases, TR_ARRAY_LEN(cases), &st);
    /* the database directory exists and is not listed */
    th_resp r;
    CHECK_EQ(hz_call(s.port, "POST", "/fs/dir", "/traildepot", 11, &r, NULL), 200);
    CHECK(strstr(r.body, "\"data\"") == NULL);
    CHECK_CONTAINS(r.body, "\"wasm\"");
    th_resp_free(&r);
    test_report("filesystem: %zu reads, %d traversal forms refused; healthy meanwhile: %ld/%ld "
                "ok, p99 %.1f ms; server peak RSS %ld MiB (bound %d)",
                TR_ARRAY_LEN(cases) - (size_t)refused, refused, st.ok, st.ok + st.failed,
                st.p99_ms, st.peak_rss_kib >> 10, HZ_RSS_BOUND_MIB);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(hostile_fs_not_enabled, 120)
{
    static const char *const ops[] = {"read", "text", "dir", "stat"};
    th_server s;
    hz_start(&s, NULL, NULL);
    hz_load *l = hz_load_start(&s);
    int n = 0;
    for (size_t i = 0; i < TR_ARRAY_LEN(ops); i++) {
        static const char *const paths[] = {"/", "/hello.txt", "../etc/passwd", "/etc/passwd"};
        for (size_t k = 0; k < TR_ARRAY_LEN(paths); k++) {
            char path[64];
            snprintf(path, sizeof path, "/fs/%s", ops[i]);
            th_resp r;
            CHECK_EQ(hz_call(s.port, "POST", path, paths[k], strlen(paths[k]), &r, NULL), 403);
            CHECK_CONTAINS(r.body, "filesystem access is not enabled");
            CHECK_CONTAINS(r.body, "\"code\":\"ENOSYS\"");
            th_resp_free(&r);
            n++;
        }
    }
    hz_stats st;
    hz_load_stop(l, &st);
    test_report("filesystem without --runtime-root-fs: %d calls rejected; healthy meanwhile: "
                "%ld/%ld ok, p99 %.1f ms",
                n, st.ok, st.ok + st.failed, st.p99_ms);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}
