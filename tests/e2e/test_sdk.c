/* tests/e2e/test_sdk.c: the TypeScript SDK's own test suite (`npm test` in sdk/ts), so that
 * `make test` covers it: the runtime under a fake host, the same code inside the pinned engine,
 * `tsc --strict` over the SDK and every code sample of the reference, and `trailbase-wasm build`
 * (component sections checked with wabt, build errors, --watch, a scaffolded `npm install`).
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

/* Runs `npm test` in dir with stdout and stderr to log_path. Returns the exit status, 128+signal
 * if it died of a signal, or -1 if it ran past the deadline (and was killed). */
static int run_npm_test(const char *dir, const char *log_path)
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
        execlp("npm", "npm", "test", "--silent", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    double deadline = now_s() + SDK_DEADLINE_S;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        CHECK(r >= 0);
        if (r == pid) {
            kill(-pid, SIGKILL); /* anything the suite left behind (a --watch child) */
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
    int rc = run_npm_test(dir, log_path);
    double secs = now_s() - t0;
    char *log = th_read_file(log_path, NULL);
    CHECK(log != NULL);
    long tests = tap_count(log, "tests"), pass = tap_count(log, "pass"), fail = tap_count(log, "fail");
    if (rc != 0 || fail != 0 || tests <= 0 || pass != tests) {
        size_t n = strlen(log);
        fprintf(stderr, "---- npm test (last 6000 bytes) ----\n%s\n----\n", log + (n > 6000 ? n - 6000 : 0));
    }
    test_report("sdk/ts npm test: %ld tests, %ld passed, %ld failed in %.1f s", tests, pass, fail, secs);
    free(log);
    CHECK(rc != -1); /* ran past the deadline */
    CHECK_EQ(rc, 0);
    CHECK_EQ(fail, 0);
    CHECK(tests >= 60);
    CHECK_EQ(pass, tests);
}
