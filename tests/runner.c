/* tests/runner.c: runs every registered test (or those whose name contains argv[1]), each in
 * its own process under an alarm, and ends with "N passed, N failed".
 *
 * DESIGN: a forked child runs one test and exits 0; a failed CHECK exits 1; a crash or a hang
 * (SIGALRM) fails only that test. Under LeakSanitizer the child's exit runs the leak check, so a
 * leak fails the test too. Figures a test reports go through a pipe and are printed under its
 * result line. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct test_case {
    const char *name;
    test_fn fn;
    unsigned timeout_s;
} test_case;

static test_case *tests;
static size_t ntests, captests;
static int report_fd = -1;
static char tmpdir_path[256];

void test_register(const char *name, test_fn fn, unsigned timeout_s)
{
    if (ntests == captests) {
        captests = captests ? captests * 2 : 64;
        tests = realloc(tests, captests * sizeof *tests);
        if (tests == NULL) abort();
    }
    tests[ntests++] = (test_case){name, fn, timeout_s};
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    int rc = system(cmd);
    (void)rc;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "     %s:%d: %s\n", file, line, msg);
    fflush(stderr);
    if (tmpdir_path[0]) rm_rf(tmpdir_path);
    exit(1);
}

void test_report(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof msg - 2) n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    if (report_fd >= 0) {
        ssize_t w = write(report_fd, msg, (size_t)n);
        (void)w;
    }
}

const char *test_tmpdir(void)
{
    if (tmpdir_path[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir_path, sizeof tmpdir_path, "%s/trail-test-XXXXXX", base ? base : "/tmp");
        if (mkdtemp(tmpdir_path) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return tmpdir_path;
}

static int cmp_case(const void *a, const void *b)
{
    return strcmp(((const test_case *)a)->name, ((const test_case *)b)->name);
}

static void run_child(const test_case *t, int fd)
{
    report_fd = fd;
    alarm(t->timeout_s);
    t->fn();
    if (tmpdir_path[0]) rm_rf(tmpdir_path);
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    qsort(tests, ntests, sizeof *tests, cmp_case);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < ntests; i++) {
        const test_case *t = &tests[i];
        if (filter && strstr(t->name, filter) == NULL) continue;
        int fds[2];
        if (pipe(fds) != 0) return 2;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            close(fds[0]);
            run_child(t, fds[1]);
        }
        close(fds[1]);
        char reports[16384];
        size_t rlen = 0;
        for (;;) {
            ssize_t n = read(fds[0], reports + rlen, sizeof reports - 1 - rlen);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            rlen += (size_t)n;
            if (rlen == sizeof reports - 1) break;
        }
        reports[rlen] = '\0';
        close(fds[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) {
            printf("ok   %s\n", t->name);
            passed++;
        } else {
            printf("FAIL %s\n", t->name);
            if (WIFSIGNALED(status))
                printf("     %s (signal %d)\n",
                       WTERMSIG(status) == SIGALRM ? "timed out" : strsignal(WTERMSIG(status)),
                       WTERMSIG(status));
            else if (WIFEXITED(status) && WEXITSTATUS(status) != 1)
                printf("     exit status %d\n", WEXITSTATUS(status));
            failed++;
        }
        /* Each report line is indented under its test. */
        for (char *line = strtok(reports, "\n"); line; line = strtok(NULL, "\n"))
            printf("     %s\n", line);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
