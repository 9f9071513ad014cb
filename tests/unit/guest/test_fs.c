/* Tests for guest/fs.c: reads, stat and readdir under the root, and every way out refused:
 * `..`, absolute host paths, symlinks out of the root, the database directory however it is
 * reached, NUL bytes, very long paths. */
#include "test.h"
#include "guest/fs.h"

#include <sys/stat.h>
#include <unistd.h>

static char root[600], deny[700], outside[600];

static void put(const char *rel, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static guest_fs *setup(void)
{
    snprintf(root, sizeof root, "%s/root", test_tmpdir());
    snprintf(outside, sizeof outside, "%s/secret.txt", test_tmpdir());
    snprintf(deny, sizeof deny, "%s/traildepot/data", root);
    char p[1200];
    CHECK_EQ(mkdir(root, 0755), 0);
    snprintf(p, sizeof p, "%s/data", root);
    CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/traildepot", root);
    CHECK_EQ(mkdir(p, 0755), 0);
    CHECK_EQ(mkdir(deny, 0755), 0);
    put("data/config.json", "{\"a\":1}");
    put("hello.txt", "hi");
    put("traildepot/data/main.db", "SQLite format 3");
    put("traildepot/config.textproto", "# config");
    FILE *f = fopen(outside, "w");
    fputs("top secret", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/inner-link", root);
    CHECK_EQ(symlink("data/config.json", p), 0);
    snprintf(p, sizeof p, "%s/escape-abs", root);
    CHECK_EQ(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/escape-rel", root);
    CHECK_EQ(symlink("../secret.txt", p), 0);
    snprintf(p, sizeof p, "%s/db-link", root);
    CHECK_EQ(symlink("traildepot/data", p), 0);
    guest_fs *fs;
    tr_error err = {0};
    CHECK_EQ(guest_fs_open(root, deny, &fs, &err), 0);
    return fs;
}

static int read_str(guest_fs *fs, const char *path, tr_buf *out, tr_error *err)
{
    tr_buf_reset(out);
    return guest_fs_read(fs, path, strlen(path), 1 << 20, out, err);
}

TEST(guest_fs_reads_inside_root)
{
    guest_fs *fs = setup();
    tr_buf b = TR_BUF_INIT;
    tr_error err = {0};
    CHECK_EQ(read_str(fs, "/data/config.json", &b, &err), 0);
    CHECK_MEM_EQ(b.data, b.len, "{\"a\":1}");
    CHECK_EQ(read_str(fs, "data/config.json", &b, &err), 0);
    CHECK_EQ(read_str(fs, "/data/./../data/config.json", &b, &err), 0);
    CHECK_EQ(read_str(fs, "/inner-link", &b, &err), 0); /* a symlink that stays inside */
    CHECK_MEM_EQ(b.data, b.len, "{\"a\":1}");
    CHECK_EQ(read_str(fs, "/traildepot/config.textproto", &b, &err), 0);
    CHECK_EQ(read_str(fs, "/missing.txt", &b, &err), TR_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "'/missing.txt'");
    CHECK_EQ(read_str(fs, "/data", &b, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "not a regular file");
    /* the size limit */
    tr_buf_reset(&b);
    CHECK_EQ(guest_fs_read(fs, "/hello.txt", 10, 1, &b, &err), TR_ELIMIT);
    tr_buf_free(&b);
    guest_fs_close(fs);
}

TEST(guest_fs_refuses_every_way_out)
{
    guest_fs *fs = setup();
    tr_buf b = TR_BUF_INIT;
    tr_error err = {0};
    static const char *const escapes[] = {
        "../secret.txt", "/../secret.txt", "data/../../secret.txt", "/data/../../../../etc/passwd",
        "escape-abs", "escape-rel",
    };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        CHECK(read_str(fs, escapes[i], &b, &err) < 0);
        CHECK_CONTAINS(err.msg, "leaves the filesystem root");
        CHECK(strstr(err.msg, test_tmpdir()) == NULL); /* the host path is never revealed */
    }
    /* an absolute host path is a path under the root, where it does not exist */
    CHECK_EQ(read_str(fs, "/etc/passwd", &b, &err), TR_ENOTFOUND);
    char abs[800];
    snprintf(abs, sizeof abs, "%s", outside);
    CHECK_EQ(read_str(fs, abs, &b, &err), TR_ENOTFOUND);
    /* the database directory, directly and through a symlink inside the root */
    CHECK_EQ(read_str(fs, "/traildepot/data/main.db", &b, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "database directory");
    CHECK_EQ(read_str(fs, "/db-link/main.db", &b, &err), TR_EINVAL);
    CHECK_EQ(read_str(fs, "/traildepot/./data/../data/main.db", &b, &err), TR_EINVAL);
    tr_buf_reset(&b);
    CHECK_EQ(guest_fs_readdir(fs, "/traildepot/data", 16, &b, &err), TR_EINVAL);
    /* NUL bytes and very long paths */
    CHECK_EQ(guest_fs_read(fs, "/hello.txt\0.png", 15, 100, &b, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "NUL");
    char *longp = tr_malloc(GUEST_FS_MAX_PATH + 100);
    memset(longp, 'a', GUEST_FS_MAX_PATH + 99);
    longp[GUEST_FS_MAX_PATH + 99] = '\0';
    CHECK_EQ(read_str(fs, longp, &b, &err), TR_EINVAL);
    for (size_t i = 1; i < GUEST_FS_MAX_PATH; i += 2) longp[i] = '/';
    longp[GUEST_FS_MAX_PATH - 1] = '\0';
    CHECK(read_str(fs, longp, &b, &err) < 0);
    tr_free(longp);
    tr_buf_free(&b);
    guest_fs_close(fs);
}

TEST(guest_fs_stat_and_readdir)
{
    guest_fs *fs = setup();
    tr_error err = {0};
    guest_fs_stat st;
    CHECK_EQ(guest_fs_stat_path(fs, "/hello.txt", 10, &st, &err), 0);
    CHECK_EQ(st.type, GUEST_FS_FILE);
    CHECK_EQ(st.size, 2);
    CHECK(st.mtime_ms > 1700000000000LL);
    CHECK_EQ(guest_fs_stat_path(fs, "/", 1, &st, &err), 0);
    CHECK_EQ(st.type, GUEST_FS_DIR);
    CHECK_EQ(guest_fs_stat_path(fs, "/escape-abs", 11, &st, &err), TR_EINVAL);

    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(guest_fs_readdir(fs, "/", 1, &b, &err), 0);
    size_t pos = 0;
    const char *name;
    guest_fs_type type;
    tr_buf names = TR_BUF_INIT;
    while (guest_fs_dirent_next(&b, &pos, &name, &type)) tr_buf_printf(&names, "%s:%d ", name, type);
    CHECK_STR_EQ(names.data, "data:1 db-link:2 escape-abs:2 escape-rel:2 hello.txt:0 inner-link:2 "
                             "traildepot:1 ");
    tr_buf_reset(&b);
    tr_buf_reset(&names);
    CHECK_EQ(guest_fs_readdir(fs, "/traildepot", 11, &b, &err), 0);
    pos = 0;
    while (guest_fs_dirent_next(&b, &pos, &name, &type)) tr_buf_printf(&names, "%s ", name);
    CHECK_STR_EQ(names.data, "config.textproto "); /* data/ is hidden */
    CHECK_EQ(guest_fs_readdir(fs, "/hello.txt", 10, &b, &err), TR_ENOTFOUND);
    tr_buf_free(&b);
    tr_buf_free(&names);
    guest_fs_close(fs);
}
