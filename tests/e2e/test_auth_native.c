/* The caller in compiled guests, end to end: examples/rust/my-todos (built by `make test` with the
 * real Rust toolchain into $TRAIL_RUST_DIR) and examples/c-my-todos (built here by the real C
 * SDK), each served by the real trail from a fresh data directory, through the story of
 * e2e/my_todos_checks.c. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/my_todos_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"

/* Compiling the module to native code happens before trail listens; on a busy two-core machine
 * it has taken over 30 s. The depot's cache links to one under the build directory shared with
 * the hostile battery, so a warm run loads the compiled object. */
#define COMPILE_WAIT_MS 400000

/* <tmp>/NAME with wasm/my_todos.wasm (a copy of wasm), the example's migration, auth without
 * email verification, and users a@example.org and b@example.org. */
static void depot_for(const char *name, const char *wasm, char *out, size_t cap)
{
    const char *root = getenv("TRAIL_ROOT");
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/wasm' '%s/migrations' && cp '%s' '%s/wasm/my_todos.wasm' && "
             "cp '%s/examples/c-my-todos/migrations/0001_todos.sql' '%s/migrations/'",
             out, out, wasm, out, root, out);
    CHECK_EQ(fx_sh(cmd), 0);
    char path[1200], cache[1000];
    snprintf(cache, sizeof cache, "%s/build/test-native-cache", root);
    mkdir(cache, 0755);
    snprintf(path, sizeof path, "%s/cache", out);
    CHECK(symlink(cache, path) == 0 || access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/config.textproto", out);
    static const char cfg[] = "auth {\n  require_email_verification: false\n}\n";
    CHECK_EQ(th_write_file(path, cfg, sizeof cfg - 1), 0);
    const char *add_a[] = {"user", "add", "a@example.org", "password-a", NULL};
    const char *add_b[] = {"user", "add", "b@example.org", "password-b", NULL};
    CHECK_EQ(ak_cli(out, add_a, NULL), 0);
    CHECK_EQ(ak_cli(out, add_b, NULL), 0);
}

/* The story against the module wasm (the Rust or the C example) on one trail. */
static void serve_my_todos(const char *name, const char *wasm, bool rust)
{
    char depot[700];
    depot_for(name, wasm, depot, sizeof depot);
    th_server s;
    CHECK_EQ(th_server_start_within(&s, depot, NULL, COMPILE_WAIT_MS), 0);
    mt_check(depot, &s.port, 1, rust);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_auth_native_rust_my_todos, 900)
{
    const char *built = getenv("TRAIL_RUST_DIR");
    if (built == NULL)
        test_fail(__FILE__, __LINE__, "TRAIL_RUST_DIR is not set (make test sets it)");
    char wasm[1000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", built);
    serve_my_todos("rust", wasm, true);
}

TEST_TIMEOUT(e2e_auth_native_c_my_todos, 900)
{
    char wasm[1000], cmd[3000];
    snprintf(wasm, sizeof wasm, "%s/my_todos.wasm", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/tools/c-build.sh' '%s/examples/c-my-todos' '%s'",
             getenv("TRAIL_ROOT"), getenv("TRAIL_ROOT"), wasm);
    CHECK_EQ(fx_sh(cmd), 0);
    serve_my_todos("c", wasm, false);
}
