/* Tests for tools/check-layers.sh: the repository's includes run one way, and the check fails on
 * an include from a lower layer to a higher one and on a folder no layer names. */
#include "test.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Runs the check over root; its exit status, its stderr in out. */
static int check(const char *root, char *out, size_t cap)
{
    const char *repo = getenv("TRAIL_ROOT");
    CHECK(repo != NULL);
    char *cmd = tr_asprintf("'%s/tools/check-layers.sh' '%s' 2>&1", repo, root);
    FILE *p = popen(cmd, "r");
    tr_free(cmd);
    CHECK(p != NULL);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    CHECK(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void put(const char *root, const char *rel, const char *text)
{
    char *path = tr_asprintf("%s/%s", root, rel);
    char *cmd = tr_asprintf("mkdir -p \"$(dirname '%s')\"", path);
    CHECK_EQ(system(cmd), 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    tr_free(cmd);
    tr_free(path);
}

static void remove_tree_file(const char *root, const char *rel)
{
    char *path = tr_asprintf("%s/%s", root, rel);
    CHECK_EQ(remove(path), 0);
    tr_free(path);
}

TEST_TIMEOUT(check_layers_passes_on_the_tree_and_fails_on_a_back_edge, 60)
{
    char out[4096];
    const char *repo = getenv("TRAIL_ROOT");
    CHECK(repo != NULL);
    CHECK_EQ(check(repo, out, sizeof out), 0);

    const char *t = test_tmpdir();
    put(t, "src/base/base.h", "#include <stdio.h>\n");
    put(t, "src/component/x.c", "#include \"base/base.h\"\n#include \"guest/guest.h\"\n");
    put(t, "src/guest/guest.h", "#include \"wasm/js/jsg.h\"\n");
    CHECK_EQ(check(t, out, sizeof out), 0);

    /* component/ reaching up into jobs/ (as cron parsing once did) */
    put(t, "src/component/y.c", "#include \"jobs/jobs.h\"\n");
    CHECK_EQ(check(t, out, sizeof out), 1);
    CHECK_CONTAINS(out, "src/component/y.c:1: component/ includes jobs/jobs.h");
    /* a folder of the same layer is no lower */
    put(t, "src/component/y.c", "\n#include \"db/db.h\"\n");
    put(t, "src/db/db.h", "#include \"kv/kv.h\"\n");
    CHECK_EQ(check(t, out, sizeof out), 1);
    CHECK_CONTAINS(out, "src/db/db.h:1: db/ includes kv/kv.h");
    put(t, "src/db/db.h", "\n");
    CHECK_EQ(check(t, out, sizeof out), 0);
    /* a folder in no layer */
    put(t, "src/newthing/n.c", "#include \"base/base.h\"\n");
    CHECK_EQ(check(t, out, sizeof out), 1);
    CHECK_CONTAINS(out, "its folder newthing/ is in no layer");
    remove_tree_file(t, "src/newthing/n.c");

    /* a source file over 1,200 lines */
    tr_buf big = {0};
    for (int i = 0; i < 1201; i++)
        tr_buf_append(&big, "int x;\n", 7);
    tr_buf_append(&big, "", 1);
    put(t, "src/db/big.c", big.data);
    tr_buf_free(&big);
    CHECK_EQ(check(t, out, sizeof out), 1);
    CHECK_CONTAINS(out, "src/db/big.c: 1201 lines; a source file has at most 1,200");
}
