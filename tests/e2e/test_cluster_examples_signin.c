/* The examples that sign in, against a three-node cluster: examples/rust/my-todos and
 * examples/c-my-todos through the story of e2e/my_todos_checks.c with each request through the
 * next node in turn (users added and promoted with `trail user`/`trail admin` on one node's data
 * directory, which in cluster mode act on the cluster), and the records-web page in headless
 * chromium served by a follower (sign-in, create, realtime, update, filter, delete, another user's
 * rows kept out), its records then read through the other nodes. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/cluster_util.h"
#include "e2e/fixtures.h"
#include "e2e/my_todos_checks.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Compiling a module to native code happens before a node listens (the cache is shared with the
 * one-trail tests, so a warm run loads it). */
#define COMPILE_START_MS 400000

/* The three nodes' data directories with the my-todos module wasm, its migration, auth without
 * email verification and the shared native cache. */
static void my_todos_dirs(const char *wasm)
{
    const char *root = getenv("TRAIL_ROOT");
    char cache[1000];
    snprintf(cache, sizeof cache, "%s/build/test-native-cache", root);
    mkdir(cache, 0755);
    for (int i = 0; i <= 3; i++) {
        char d[700], cmd[4096], path[1200];
        if (i == 0)
            snprintf(d, sizeof d, "%s/warm", test_tmpdir());
        else
            snprintf(d, sizeof d, "%s/n%d", test_tmpdir(), i);
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/wasm' '%s/migrations' && cp '%s' '%s/wasm/my_todos.wasm' && "
                 "cp '%s/examples/c-my-todos/migrations/0001_todos.sql' '%s/migrations/'",
                 d, d, wasm, d, root, d);
        CHECK_EQ(fx_sh(cmd), 0);
        snprintf(path, sizeof path, "%s/cache", d);
        CHECK(symlink(cache, path) == 0 || access(path, F_OK) == 0);
        snprintf(path, sizeof path, "%s/config.textproto", d);
        static const char cfg[] = "auth {\n  require_email_verification: false\n}\n";
        CHECK_EQ(th_write_file(path, cfg, sizeof cfg - 1), 0);
    }
}

static void my_todos_in_cluster(const char *wasm, bool rust)
{
    my_todos_dirs(wasm);
    /* the module compiled into the shared cache once, by one trail, before the nodes start */
    char warm_dir[700];
    snprintf(warm_dir, sizeof warm_dir, "%s/warm", test_tmpdir());
    th_server warm;
    CHECK_EQ(th_server_start_within(&warm, warm_dir, NULL, COMPILE_START_MS), 0);
    CHECK_EQ(th_server_stop(&warm), 0);
    cu_node n[3];
    cu_node_start(&n[0], 1, NULL, NULL);
    cu_node_start(&n[1], 2, n[0].addr, NULL);
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);
    cu_node_start(&n[2], 3, join, NULL);
    free(cu_wait_status(n[2].dir, 3, 60000));
    /* the users, through a follower's data directory */
    int li = cu_leader(n, 3);
    int f = (li + 1) % 3;
    const char *add_a[] = {"user", "add", "a@example.org", "password-a", NULL};
    const char *add_b[] = {"user", "add", "b@example.org", "password-b", NULL};
    CHECK_EQ(ak_cli(n[f].dir, add_a, NULL), 0);
    CHECK_EQ(ak_cli(n[f].dir, add_b, NULL), 0);
    int ports[3] = {n[f].srv.port, n[li].srv.port, n[(li + 2) % 3].srv.port};
    mt_check(n[f].dir, ports, 3, rust);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}

TEST_TIMEOUT(e2e_cluster_examples_rust_my_todos, 900)
{
    const char *built = getenv("TRAIL_RUST_DIR");
    if (built == NULL)
        test_fail(__FILE__, __LINE__, "TRAIL_RUST_DIR is not set (make test sets it)");
    char wasm[1000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", built);
    my_todos_in_cluster(wasm, true);
}

TEST_TIMEOUT(e2e_cluster_examples_c_my_todos, 900)
{
    char wasm[1000], cmd[3000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/tools/c-build.sh' '%s/examples/c-my-todos' '%s'",
             getenv("TRAIL_ROOT"), getenv("TRAIL_ROOT"), wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    my_todos_in_cluster(wasm, false);
}

TEST_TIMEOUT(e2e_cluster_examples_records_web_page, 600)
{
    const char *root = getenv("TRAIL_ROOT");
    if (root == NULL) root = ".";
    char client[1024];
    struct stat st;
    snprintf(client, sizeof client, "%s/examples/records-web/node_modules/trailbase/dist/index.js",
             root);
    if (stat(client, &st) != 0)
        test_fail(__FILE__, __LINE__, "%s is missing: run tools/deps.sh", client);
    CHECK_EQ(stat("/usr/bin/chromium", &st), 0);
    char cmd[8192];
    for (int i = 1; i <= 3; i++) {
        snprintf(cmd, sizeof cmd,
                 "set -e; d='%s/n%d'; mkdir -p \"$d/migrations\" \"$d/public\"; "
                 "cp '%s/examples/records-web/migrations/'*.sql \"$d/migrations/\"; "
                 "cp '%s/examples/records-web/config.textproto' \"$d/\"; "
                 "cp '%s/examples/records-web/public/index.html' "
                 "'%s/examples/records-web/public/app.js' \"$d/public/\"; "
                 "cp '%s' \"$d/public/trailbase.js\"",
                 test_tmpdir(), i, root, root, root, root, client);
        CHECK_EQ(fx_sh(cmd), 0);
    }
    /* every node serves the page from its own public directory */
    static char pubs[3][700];
    static const char *extra[3][3];
    for (int i = 0; i < 3; i++) {
        snprintf(pubs[i], sizeof pubs[i], "%s/n%d/public", test_tmpdir(), i + 1);
        extra[i][0] = "--public-dir";
        extra[i][1] = pubs[i];
        extra[i][2] = NULL;
    }
    cu_node n[3];
    cu_node_start(&n[0], 1, NULL, extra[0]);
    cu_node_start(&n[1], 2, n[0].addr, extra[1]);
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);
    cu_node_start(&n[2], 3, join, extra[2]);
    free(cu_wait_status(n[2].dir, 3, 60000));
    int li = cu_leader(n, 3);
    int f = (li + 1) % 3, g = (li + 2) % 3;

    /* two users, made on another node's data directory than the one serving the page */
    char tok[2048], id[64], tok2[2048], id2[64];
    rt_user(n[g].dir, "web@example.com", tok, id);
    rt_user(n[g].dir, "other@example.com", tok2, id2);

    const char *outbase = getenv("TRAIL_TEST_OUTPUT");
    char out[1024];
    snprintf(out, sizeof out, "%s/cluster-records-browser",
             outbase ? outbase : "build/test-output");
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && cd '%s/tests/browser' && timeout 200 node records.mjs "
             "http://127.0.0.1:%d '%s' web@example.com '%s' '%s' '%s' >&2",
             out, root, n[f].srv.port, out, tok, tok2, id2);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc));
    CHECK_EQ(WEXITSTATUS(rc), 0);

    /* what the page left is the cluster's: the same list through every node */
    char *lists[3];
    for (int i = 0; i < 3; i++) {
        th_resp r = rt_req(n[i].srv.port, "GET", "/api/records/v1/todos", NULL, tok);
        CHECK_EQ(r.status, 200);
        CHECK_CONTAINS(r.body, "\"records\":");
        lists[i] = strdup(r.body);
        th_resp_free(&r);
    }
    CHECK_STR_EQ(lists[0], lists[1]);
    CHECK_STR_EQ(lists[1], lists[2]);
    for (int i = 0; i < 3; i++)
        free(lists[i]);
    test_report("records-web page in headless chromium through follower node %d of three: "
                "sign-in, create, realtime, update, filter + count, delete held",
                f + 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
