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
 * sdk_scaffold_types_* check types: `npm run build` fails on a type error as tsc reports it and
 * leaves the component as it was, `npm run dev` reports one on every save and keeps watching;
 * the build's times on the scaffold and on a 1,000-line component are reported.
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

/* Starts argv in dir in its own process group, output to log_path; returns its pid. */
static pid_t spawn_in(const char *dir, const char *const *argv, const char *log_path)
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
    return pid;
}

/* Runs argv (argv[0] looked up in PATH) in dir with stdout and stderr to log_path. Returns the
 * exit status, 128+signal if it died of a signal, or -1 if it ran past deadline_s (and was
 * killed). */
static int run_in(const char *dir, const char *const *argv, const char *log_path, double deadline_s)
{
    pid_t pid = spawn_in(dir, argv, log_path);
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
    /* The reference's file replaced the scaffold's own entry: one entry, no warning. */
    CHECK(strstr(log, "warning") == NULL);
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

/* ---- the type check, in the scaffolded project ---- */

/* Scaffolds and installs a project in <tmp>/traildepot/wasm (wasm_dir, cap 800). */
static void scaffold(char *wasm_dir)
{
    char depot[700];
    snprintf(depot, sizeof depot, "%s/traildepot", test_tmpdir());
    snprintf(wasm_dir, 800, "%s/wasm", depot);
    char *out = NULL;
    CHECK_EQ(trail_components(depot, "add", "trailbase-guest-ts", &out), 0);
    free(out);
    char *log = NULL;
    const char *install[] = {"npm", "install", "--offline", "--no-audit", "--no-fund", NULL};
    int rc = npm_in(wasm_dir, install, &log);
    if (rc != 0) print_tail("npm install --offline (run tools/deps.sh to fill npm's cache)", log);
    CHECK_EQ(rc, 0);
    free(log);
}

static void write_in(const char *dir, const char *name, const char *text)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_EQ(th_write_file(path, text, strlen(text)), 0);
}

/* `npm run build` in dir: its exit status, its output in *log, its time in *secs. */
static int timed_build(const char *dir, char **log, double *secs)
{
    const char *build[] = {"npm", "run", "build", NULL};
    double t0 = now_s();
    int rc = npm_in(dir, build, log);
    *secs = now_s() - t0;
    return rc;
}

/* The scaffold's index.ts with the reference's type mistake on line 10, column 13. */
static char *with_type_error(const char *dir)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/index.ts", dir);
    char *src = th_read_file(path, NULL);
    CHECK(src != NULL);
    static const char from[] = "const name = req.getPathParam(\"name\");";
    static const char to[] = "const name: number = req.getPathParam(\"name\");";
    char *at = strstr(src, from);
    CHECK(at != NULL);
    size_t n = strlen(src) + sizeof to;
    char *out = malloc(n);
    CHECK(out != NULL);
    snprintf(out, n, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
    free(src);
    return out;
}

/* A component of about 1,000 lines: 100 routes, each with its own interface and function. */
static char *big_component(int variant)
{
    size_t cap = 200000, len = 0;
    char *s = malloc(cap);
    CHECK(s != NULL);
    len += (size_t)snprintf(s + len, cap - len,
                            "import { defineConfig } from \"trailbase-wasm\";\n"
                            "import { HttpHandler, HttpRequest, HttpResponse } from "
                            "\"trailbase-wasm/http\";\n\n");
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "interface Item%d {\n  id: number;\n  name: string;\n"
                                "  tags: readonly string[];\n}\n"
                                "function make%d(n: number): Item%d {\n"
                                "  return { id: n + %d, name: `item ${n}`, tags: [String(n)] };\n"
                                "}\n\n",
                                i, i, i, i + variant);
    len +=
        (size_t)snprintf(s + len, cap - len, "export default defineConfig({\n  httpHandlers: [\n");
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "    HttpHandler.get(\"/item%d/:n\", (req: HttpRequest) =>\n"
                                "      HttpResponse.json(make%d(Number(req.getPathParam(\"n\") ?? "
                                "0)))),\n",
                                i, i);
    snprintf(s + len, cap - len, "  ],\n});\n");
    return s;
}

TEST_TIMEOUT(sdk_scaffold_types_checked_by_build, 170)
{
    char wasm_dir[800], path[1000];
    scaffold(wasm_dir);

    char *log = NULL;
    double cold = 0, again = 0, failed = 0;
    int rc = timed_build(wasm_dir, &log, &cold);
    if (rc != 0) print_tail("npm run build", log);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(log, "types checked in");
    CHECK(strstr(log, "warning") == NULL);
    free(log);
    /* Nothing changed: no check runs. */
    CHECK_EQ(timed_build(wasm_dir, &log, &again), 0);
    CHECK_CONTAINS(log, "types as checked before");
    free(log);

    snprintf(path, sizeof path, "%s/dist/component.wasm", wasm_dir);
    size_t len = 0;
    char *good = th_read_file(path, &len);
    CHECK(good != NULL);

    /* The reference's handler with a wrong type: tsc's message, a failure, the component kept. */
    char *bad = with_type_error(wasm_dir);
    write_in(wasm_dir, "index.ts", bad);
    free(bad);
    rc = timed_build(wasm_dir, &log, &failed);
    if (rc == 0) print_tail("npm run build", log);
    CHECK(rc != 0);
    CHECK_CONTAINS(log, "index.ts:10:13: error TS2322: Type 'string | null' is not assignable to "
                        "type 'number'.");
    CHECK_CONTAINS(log, "build failed (1 error)");
    free(log);
    size_t len2 = 0;
    char *kept = th_read_file(path, &len2);
    CHECK(kept != NULL);
    CHECK(len2 == len && memcmp(kept, good, len) == 0);
    free(kept);
    free(good);

    /* A 1,000-line component: checked from cold, after a one-line change, and unchanged. */
    double big_cold = 0, big_change = 0, big_same = 0;
    char *big = big_component(0);
    size_t lines = 0;
    for (const char *p = big; *p; p++)
        lines += *p == '\n';
    CHECK(lines >= 1000);
    write_in(wasm_dir, "index.ts", big);
    free(big);
    rc = timed_build(wasm_dir, &log, &big_cold);
    if (rc != 0) print_tail("npm run build (1,000 lines)", log);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(log, "types checked in");
    free(log);
    big = big_component(1);
    write_in(wasm_dir, "index.ts", big);
    free(big);
    CHECK_EQ(timed_build(wasm_dir, &log, &big_change), 0);
    CHECK_CONTAINS(log, "types checked in");
    free(log);
    CHECK_EQ(timed_build(wasm_dir, &log, &big_same), 0);
    CHECK_CONTAINS(log, "types as checked before");
    free(log);
    /* Sources under src/ still build, checked too, without a warning. */
    char from[1000], to[1000];
    snprintf(from, sizeof from, "%s/index.ts", wasm_dir);
    snprintf(to, sizeof to, "%s/src", wasm_dir);
    CHECK_EQ(mkdir(to, 0755), 0);
    snprintf(to, sizeof to, "%s/src/index.ts", wasm_dir);
    CHECK_EQ(rename(from, to), 0);
    double moved = 0;
    rc = timed_build(wasm_dir, &log, &moved);
    if (rc != 0) print_tail("npm run build (src/index.ts)", log);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(log, "src/index.ts -> dist/component.wasm");
    CHECK_CONTAINS(log, "types checked in");
    CHECK(strstr(log, "warning") == NULL);
    free(log);
    test_report("npm run build, end to end: scaffold %.2f s, unchanged %.2f s, type error %.2f s; "
                "%zu lines %.2f s, one line changed %.2f s, unchanged %.2f s",
                cold, again, failed, lines, big_cold, big_change, big_same);
}

/* Occurrences of needle in the file at path. */
static int count_in(const char *path, const char *needle)
{
    char *text = th_read_file(path, NULL);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

static bool file_has(const char *path, const char *needle)
{
    size_t len = 0;
    char *bytes = th_read_file(path, &len);
    bool has = bytes && memmem(bytes, len, needle, strlen(needle)) != NULL;
    free(bytes);
    return has;
}

TEST_TIMEOUT(sdk_scaffold_types_checked_by_dev, 170)
{
    char wasm_dir[800], out[1000], log_path[1000];
    scaffold(wasm_dir);
    snprintf(out, sizeof out, "%s/dist/component.wasm", wasm_dir);
    snprintf(log_path, sizeof log_path, "%s/dev.log", test_tmpdir());
    const char *dev[] = {"npm", "run", "dev", NULL};
    pid_t pid = spawn_in(wasm_dir, dev, log_path);
    double deadline = now_s() + 120;
    int status = 0;
#define WAIT_FOR(cond, what)                                                         \
    do {                                                                             \
        while (!(cond) && now_s() < deadline && waitpid(pid, &status, WNOHANG) == 0) \
            usleep(50 * 1000);                                                       \
        if (!(cond)) {                                                               \
            char *l = th_read_file(log_path, NULL);                                  \
            print_tail("npm run dev", l ? l : "");                                   \
            free(l);                                                                 \
            kill(-pid, SIGKILL);                                                     \
            waitpid(pid, &status, 0);                                                \
            test_fail(__FILE__, __LINE__, "npm run dev: no %s", what);               \
        }                                                                            \
    } while (0)

    WAIT_FOR(file_has(out, "Hello from WASM!"), "first build");
    /* A type error, then another: each save reported, and the watcher keeps going. */
    char *bad = with_type_error(wasm_dir);
    write_in(wasm_dir, "index.ts", bad);
    WAIT_FOR(count_in(log_path, "index.ts:10:13: error TS2322") == 1, "report of the type error");
    char *worse = strstr(bad, "const name: number");
    CHECK(worse != NULL);
    memcpy(worse, "const name: bigint", 18);
    write_in(wasm_dir, "index.ts", bad);
    WAIT_FOR(count_in(log_path, "index.ts:10:13: error TS2322: Type 'string | null' is not "
                                "assignable to type 'bigint'") == 1,
             "report on the next save");
    free(bad);
    CHECK_EQ(waitpid(pid, &status, WNOHANG), 0); /* still running */
    CHECK(file_has(out, "Hello from WASM!") && !file_has(out, "Fixed from WASM!"));
    /* Fixed: the next save builds. */
    char src_path[1000];
    snprintf(src_path, sizeof src_path, "%s/index.ts", wasm_dir);
    char *src = th_read_file(src_path, NULL);
    CHECK(src != NULL);
    char *at = strstr(src, "const name: bigint =");
    CHECK(at != NULL);
    memcpy(at, "const name         =", 20);
    at = strstr(src, "Hello from WASM!");
    CHECK(at != NULL);
    memcpy(at, "Fixed from WASM!", 16);
    write_in(wasm_dir, "index.ts", src);
    free(src);
    WAIT_FOR(file_has(out, "Fixed from WASM!"), "rebuild after the fix");
#undef WAIT_FOR
    kill(-pid, SIGTERM);
    waitpid(pid, &status, 0);
    test_report("npm run dev: both type errors reported as saved, then the fix built");
}
