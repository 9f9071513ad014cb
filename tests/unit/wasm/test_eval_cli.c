/* Tests for cli/cmd_eval.c: `trail eval` run as a real process (the ASan binary, TRAIL_BIN). */
#include "test.h"

#include <sys/wait.h>

#include "base/base.h"

typedef struct run_out {
    int status;
    char out[4096], err[4096];
} run_out;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
}

/* Runs `trail eval ARGS` (ARGS is shell text) and captures both streams and the exit status. */
static void trail_eval(const char *args, run_out *r)
{
    const char *bin = getenv("TRAIL_BIN");
    CHECK(bin != NULL);
    const char *dir = test_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval %s >out.txt 2>err.txt", dir, bin, args);
    int st = system(cmd);
    CHECK(WIFEXITED(st));
    r->status = WEXITSTATUS(st);
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    slurp(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    slurp(path, r->err, sizeof r->err);
}

TEST_TIMEOUT(eval_cli_prints_results, 30)
{
    run_out r;
    trail_eval("'1+2'", &r);
    CHECK_EQ(r.status, 0);
    CHECK_STR_EQ(r.out, "3\n");
    trail_eval("'\"he\" + \"llo\"'", &r);
    CHECK_STR_EQ(r.out, "hello\n");
    trail_eval("'({a: [1, \"x\", null], b: {c: true}})'", &r);
    CHECK_STR_EQ(r.out, "{\"a\":[1,\"x\",null],\"b\":{\"c\":true}}\n");
    trail_eval("'undefined'", &r);
    CHECK_STR_EQ(r.out, "undefined\n");
    trail_eval("'Promise.resolve(6).then(x => x * 7)'", &r);
    CHECK_STR_EQ(r.out, "42\n");
    trail_eval("'\"\\u{1F600}\"'", &r);
    CHECK_STR_EQ(r.out, "\xf0\x9f\x98\x80\n");
    trail_eval("--module 'export const x = 1; export default \"d\";'", &r);
    CHECK_EQ(r.status, 0);
    CHECK_STR_EQ(r.out, "{\"default\":\"d\",\"x\":1}\n");
}

TEST_TIMEOUT(eval_cli_reports_exceptions, 30)
{
    run_out r;
    trail_eval("'function f() { throw new RangeError(\"too far\") }\nf()'", &r);
    CHECK_EQ(r.status, 1);
    CHECK_STR_EQ(r.out, "");
    CHECK_CONTAINS(r.err, "RangeError: too far");
    CHECK_CONTAINS(r.err, "at f (<eval>:1");
    trail_eval("'Promise.reject(new Error(\"later\"))'", &r);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "Error: later");
    trail_eval("'Promise.reject(new Error(\"nobody\")); 5'", &r);
    CHECK_EQ(r.status, 0);
    CHECK_STR_EQ(r.out, "5\n");
    CHECK_CONTAINS(r.err, "unhandled promise rejection: Error: nobody");
    trail_eval("--timeout 100 'while (true) {}'", &r);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "interrupted");
    trail_eval("--memory 8 '\"x\".repeat(1 << 28)'", &r);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "out of memory");
    trail_eval("'function f() { return f() } f()'", &r);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "RangeError");
}

TEST_TIMEOUT(eval_cli_usage, 30)
{
    run_out r;
    trail_eval("--help", &r);
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "Usage: trail eval");
    trail_eval("", &r);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "Usage: trail eval");
    trail_eval("--bogus 1", &r);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "unknown option '--bogus'");
    trail_eval("--timeout soon 1", &r);
    CHECK_EQ(r.status, 2);
    trail_eval("-f /nonexistent/x.js", &r);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "/nonexistent/x.js");
    char path[512];
    snprintf(path, sizeof path, "%s/in.js", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("[1, 2].map(x => x + 1)", f);
    fclose(f);
    trail_eval("-f - < in.js", &r);
    CHECK_EQ(r.status, 0);
    CHECK_STR_EQ(r.out, "[2,3]\n");
}
