/* tests/e2e/test_sdk.c: the TypeScript SDK.
 *
 * sdk_npm_test runs the SDK's own suite (`npm test` in sdk/ts) so that `make test` covers it: the
 * runtime under a fake host, the same code inside the pinned engine, `tsc --strict` over the SDK
 * and every code sample of the reference, and `trailbase-wasm build` (component sections checked
 * with wabt, build errors, --watch, a scaffolded `npm install`).
 *
 * sdk_scaffold_* go through trail itself: `trail components add trailbase-guest-ts` writes the
 * project and the SDK tarball embedded in the binary; `npm install --offline` (from the npm cache
 * tools/deps.sh filled: tests talk to no server but 127.0.0.1) and `npm run build` turn the
 * reference's Quick Start into dist/component.wasm, which `trail components installed` accepts.
 *
 * DESIGN: npm runs in its own process group so that, on our own deadline (shorter than the
 * runner's alarm), the whole tree (npm, node, esbuild, tsc) can be killed instead of orphaned.
 * Its output goes to a file in the test's temporary directory; on failure the tail is printed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"
#include "test.h"

#define SDK_DEADLINE_S 170

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv (argv[0] looked up in PATH) in dir with stdout and stderr to log_path. Returns the
 * exit status, 128+signal if it died of a signal, or -1 if it ran past deadline_s (and was
 * killed). */
static int run_in(const char *dir, const char *const *argv, const char *log_path, double deadline_s)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir) != 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    double deadline = now_s() + deadline_s;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        CHECK(r >= 0);
        if (r == pid) {
            kill(-pid, SIGKILL); /* anything left behind (a --watch child) */
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (now_s() > deadline) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        usleep(50 * 1000);
    }
}

/* Prints the tail of a log to stderr, for a failing check to be understood. */
static void print_tail(const char *what, const char *log)
{
    size_t n = strlen(log);
    fprintf(stderr, "---- %s (last 6000 bytes) ----\n%s\n----\n", what, log + (n > 6000 ? n - 6000 : 0));
}

/* The value of "# NAME N" in node's TAP summary, or -1. */
static long tap_count(const char *log, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "# %s ", name);
    const char *p = strstr(log, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

TEST_TIMEOUT(sdk_npm_test, 180)
{
    const char *root = getenv("TRAIL_ROOT");
    CHECK(root != NULL);
    char dir[1024], modules[1100], log_path[1024];
    snprintf(dir, sizeof dir, "%s/sdk/ts", root);
    snprintf(modules, sizeof modules, "%s/node_modules/.bin/tsc", dir);
    struct stat st;
    if (stat(modules, &st) != 0) {
        test_fail(__FILE__, __LINE__, "%s missing: run tools/deps.sh (npm ci in sdk/ts)", modules);
    }
    snprintf(log_path, sizeof log_path, "%s/npm-test.log", test_tmpdir());

    double t0 = now_s();
    const char *argv[] = {"npm", "test", "--silent", NULL};
    int rc = run_in(dir, argv, log_path, SDK_DEADLINE_S);
    double secs = now_s() - t0;
    char *log = th_read_file(log_path, NULL);
    CHECK(log != NULL);
    long tests = tap_count(log, "tests"), pass = tap_count(log, "pass"), fail = tap_count(log, "fail");
    if (rc != 0 || fail != 0 || tests <= 0 || pass != tests) print_tail("npm test", log);
    test_report("sdk/ts npm test: %ld tests, %ld passed, %ld failed in %.1f s", tests, pass, fail, secs);
    free(log);
    CHECK(rc != -1); /* ran past the deadline */
    CHECK_EQ(rc, 0);
    CHECK_EQ(fail, 0);
    CHECK(tests >= 60);
    CHECK_EQ(pass, tests);
}

/* ---- the scaffolded project, through trail ---- */

static const char *const QUICK_START_MARKERS[] = {"Hello from WASM!", "/greet/:name", "/json"};

/* Runs `$TRAIL_BIN components ARGS... --data-dir depot`; returns the exit status. */
static int trail_components(const char *depot, const char *a1, const char *a2, char **out)
{
    const char *args[] = {"components", a1, a2 ? a2 : "--data-dir", a2 ? "--data-dir" : depot,
                          a2 ? depot : NULL, NULL};
    char *err = NULL;
    int rc = th_run(args, 60000, out, &err);
    if (rc != 0) fprintf(stderr, "trail components %s: %s", a1, err ? err : "");
    free(err);
    return rc;
}

/* Runs npm with args in dir; returns the exit status and leaves the output in *log. */
static int npm_in(const char *dir, const char *const *argv, char **log)
{
    char log_path[1024];
    snprintf(log_path, sizeof log_path, "%s/npm.log", test_tmpdir());
    int rc = run_in(dir, argv, log_path, 120);
    *log = th_read_file(log_path, NULL);
    CHECK(*log != NULL);
    return rc;
}

TEST_TIMEOUT(sdk_scaffold_quick_start_builds, 150)
{
    char depot[700], wasm_dir[800], path[900];
    snprintf(depot, sizeof depot, "%s/traildepot", test_tmpdir());
    snprintf(wasm_dir, sizeof wasm_dir, "%s/wasm", depot);

    char *out = NULL;
    CHECK_EQ(trail_components(depot, "add", "trailbase-guest-ts", &out), 0);
    free(out);
    const char *files[] = {"package.json", "tsconfig.json", "index.ts", "trailbase-wasm-0.1.0.tgz"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", wasm_dir, files[i]);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size > 0);
    }

    /* The reference's Quick Start, in the file the reference names: traildepot/wasm/index.ts. */
    char ref[1024];
    snprintf(ref, sizeof ref, "%s/sdk/ts/test/reference/quick-start.ts", getenv("TRAIL_ROOT"));
    size_t ref_len = 0;
    char *quick_start = th_read_file(ref, &ref_len);
    CHECK(quick_start != NULL);
    snprintf(path, sizeof path, "%s/index.ts", wasm_dir);
    CHECK_EQ(th_write_file(path, quick_start, ref_len), 0);
    free(quick_start);

    char *log = NULL;
    const char *install[] = {"npm", "install", "--offline", "--no-audit", "--no-fund", NULL};
    int rc = npm_in(wasm_dir, install, &log);
    if (rc != 0) print_tail("npm install --offline (run tools/deps.sh to fill npm's cache)", log);
    CHECK_EQ(rc, 0);
    free(log);

    const char *build[] = {"npm", "run", "build", NULL};
    rc = npm_in(wasm_dir, build, &log);
    if (rc != 0) print_tail("npm run build", log);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(log, "index.ts -> dist/component.wasm");
    free(log);

    snprintf(path, sizeof path, "%s/dist/component.wasm", wasm_dir);
    size_t len = 0;
    char *comp = th_read_file(path, &len);
    CHECK(comp != NULL);
    CHECK(len > 600000);
    CHECK(memcmp(comp, "\0asm\1\0\0\0", 8) == 0);
    for (size_t i = 0; i < sizeof QUICK_START_MARKERS / sizeof *QUICK_START_MARKERS; i++)
        CHECK(memmem(comp, len, QUICK_START_MARKERS[i], strlen(QUICK_START_MARKERS[i])) != NULL);
    CHECK(memmem(comp, len, "trailbase.engine", 16) != NULL);
    test_report("dist/component.wasm: %zu bytes", len);

    /* trail accepts what the SDK built: the engine is the one compiled in. */
    CHECK_EQ(trail_components(depot, "installed", NULL, &out), 0);
    CHECK_CONTAINS(out, "dist/component.wasm");
    CHECK_CONTAINS(out, "quickjs-wasi 3.6.2");
    free(out);

    /* A syntax error: file:line:col, a non-zero exit, and the last good component stays. */
    const char *broken = "import { defineConfig } from \"trailbase-wasm\";\n\nexport default defineConfig({ httpHandlers: [ });\n";
    snprintf(path, sizeof path, "%s/index.ts", wasm_dir);
    CHECK_EQ(th_write_file(path, broken, strlen(broken)), 0);
    rc = npm_in(wasm_dir, build, &log);
    CHECK(rc != 0);
    CHECK_CONTAINS(log, "index.ts:3:47: error: Unexpected \"}\"");
    free(log);
    snprintf(path, sizeof path, "%s/dist/component.wasm", wasm_dir);
    size_t len2 = 0;
    char *comp2 = th_read_file(path, &len2);
    CHECK(comp2 != NULL);
    CHECK_EQ(len2, len);
    CHECK(memcmp(comp, comp2, len) == 0);
    free(comp2);
    free(comp);
}
