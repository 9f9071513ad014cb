/* The command line says what it does: an unknown subcommand names itself and the valid ones in
 * every command group; every command's --help names what it has; `components inspect` shows a
 * component; `components update` says when nothing changed; `jobs run` runs the job in the
 * server on the data directory (its isolate, its log, its _job_runs) through the control socket
 * and only runs it in its own process when no server runs; localhost listens on 127.0.0.1 and
 * ::1; `trail run` warns about a TypeScript project that was never built and prints its workers
 * and --runtime-root-fs. All against the real binary. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char *depot(void)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/depot", test_tmpdir());
    return p;
}

static const char *sock_path(void)
{
    static char p[800];
    snprintf(p, sizeof p, "%s/trail.sock", depot());
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long long count(const char *sql)
{
    char path[800];
    snprintf(path, sizeof path, "%s/data/main.db", depot());
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Runs trail with args; checks the exit status; returns stderr (stdout into *out if not NULL). */
static char *run_expect(const char *const *args, int status, char **out)
{
    char *o, *e;
    CHECK_EQ(th_run(args, 60000, &o, &e), status);
    if (out)
        *out = o;
    else
        free(o);
    return e;
}

TEST_TIMEOUT(e2e_cli_unknown_subcommands_name_the_valid_ones, 60)
{
    struct {
        const char *args[4];
        const char *says;
        const char *lists;
    } cases[] = {
        {{"frob", NULL}, "trail: unknown command 'frob'", "run, components, jobs, eval"},
        {{"components", "frob", "x", NULL},
         "trail components: unknown command 'frob'",
         "list, add, inspect, installed, remove, update"},
        {{"components", "frob", NULL}, "unknown command 'frob'", "inspect"},
        {{"jobs", "frob", NULL}, "trail jobs: unknown command 'frob'", "list, history, run"},
        {{"run", "frob", NULL}, "trail run: unexpected argument 'frob'", "options only"},
        {{"run", "--frob", NULL}, "trail run: unknown option '--frob'", "trail run --help"},
        {{"eval", "--frob", NULL}, "trail eval: unknown option '--frob'", "trail eval --help"},
        {{"jobs", "run", NULL}, "trail jobs run: expected one job name", "trail jobs --help"},
        {{"components", "inspect", NULL}, "expected one argument", "trail components --help"},
        {{"components", "list", "x", NULL}, "takes no arguments", "trail components --help"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = run_expect(cases[i].args, 2, NULL);
        CHECK_CONTAINS(err, cases[i].says);
        CHECK_CONTAINS(err, cases[i].lists);
        free(err);
    }
}

/* Each --help names what the command has, and every command it names exists (a named
 * subcommand never answers "unknown command"). */
TEST_TIMEOUT(e2e_cli_help_is_true, 60)
{
    char *out;
    const char *top[] = {"--help", NULL};
    free(run_expect(top, 0, &out));
    static const char *const cmds[] = {"run", "components", "jobs", "eval"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_CONTAINS(out, cmds[i]);
        const char *help[] = {cmds[i], "--help", NULL};
        char *sub;
        free(run_expect(help, 0, &sub));
        CHECK_CONTAINS(sub, "Usage: trail ");
        free(sub);
    }
    free(out);

    const char *comp_help[] = {"components", "--help", NULL};
    free(run_expect(comp_help, 0, &out));
    static const char *const subs[] = {"list", "add", "inspect", "installed", "remove", "update"};
    for (size_t i = 0; i < 6; i++) {
        CHECK_CONTAINS(out, subs[i]);
        /* exists: at worst it complains about its arguments or the data directory */
        const char *args[] = {"components", subs[i], "--data-dir", depot(), NULL};
        char *o, *e;
        int st = th_run(args, 60000, &o, &e);
        CHECK(st == 0 || st == 1 || st == 2);
        CHECK(strstr(e, "unknown command") == NULL);
        free(o);
        free(e);
    }
    free(out);

    const char *run_help[] = {"run", "--help", NULL};
    free(run_expect(run_help, 0, &out));
    static const char *const flags[] = {"--address",         "--data-dir",        "--public-dir",
                                        "--runtime-root-fs", "--runtime-threads", "--quiet",
                                        "127.0.0.1 and ::1", "trail.sock"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        CHECK_CONTAINS(out, flags[i]);
    free(out);

    const char *jobs_help[] = {"jobs", "--help", NULL};
    free(run_expect(jobs_help, 0, &out));
    CHECK_CONTAINS(out, "list");
    CHECK_CONTAINS(out, "run NAME");
    CHECK_CONTAINS(out, "in the server");
    free(out);
}

TEST_TIMEOUT(e2e_cli_components_inspect, 120)
{
    char built[800];
    snprintf(built, sizeof built, "%s/build/jobs.wasm", test_tmpdir());
    fx_build_component("jobs_cli", built);
    const char *add[] = {"components", "add", built, "--data-dir", depot(), NULL};
    free(run_expect(add, 0, NULL));

    size_t len;
    char *bytes = th_read_file(built, &len);
    CHECK(bytes != NULL);
    free(bytes);
    char size[64];
    snprintf(size, sizeof size, "size      %zu bytes", len);

    /* by installed name, with or without .wasm, and by path */
    const char *by_name[] = {"components", "inspect", "jobs", "--data-dir", depot(), NULL};
    const char *by_full[] = {"components", "inspect", "jobs.wasm", "--data-dir", depot(), NULL};
    const char *by_path[] = {"components", "inspect", built, NULL};
    const char *const *ways[] = {by_name, by_full, by_path};
    for (size_t i = 0; i < 3; i++) {
        char *out;
        free(run_expect(ways[i], 0, &out));
        CHECK_CONTAINS(out, size);
        CHECK_CONTAINS(out, "sha256    ");
        CHECK_CONTAINS(out, "version   ");
        CHECK_CONTAINS(out, "engine    quickjs-wasi 3.6.2");
        CHECK_CONTAINS(out, "routes    1\n  GET     /bumps\n");
        CHECK_CONTAINS(out, "jobs      3\n  bump ");
        CHECK_CONTAINS(out, "  explode ");
        CHECK_CONTAINS(out, "0 0 0 1 1 *");
        CHECK_CONTAINS(out, "status    loads");
        if (i < 2) CHECK_CONTAINS(out, "component jobs.wasm");
        free(out);
    }
    /* the version is what `trail run` logs for it */
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    CHECK_EQ(th_server_stop(&s), 0);
    char *log = th_server_stderr(&s);
    char *out;
    free(run_expect(by_name, 0, &out));
    const char *v = strstr(out, "version   ");
    CHECK(v != NULL);
    char want[64];
    snprintf(want, sizeof want, "(version %.12s)", v + 10);
    CHECK_CONTAINS(log, want);
    free(log);
    free(out);

    /* a file trail would not load says why, with exit status 1 */
    char bad[800];
    snprintf(bad, sizeof bad, "%s/bad.wasm", test_tmpdir());
    CHECK_EQ(th_write_file(bad, "<html>", 6), 0);
    const char *inspect_bad[] = {"components", "inspect", bad, NULL};
    free(run_expect(inspect_bad, 1, &out));
    CHECK_CONTAINS(out, "not a component trail can load");
    free(out);
    const char *none[] = {"components", "inspect", "nope", "--data-dir", depot(), NULL};
    char *err = run_expect(none, 1, NULL);
    CHECK_CONTAINS(err, "'nope' is neither an installed component");
    free(err);
    /* a first-party project names the command that builds it */
    const char *fp[] = {"components", "add", "trailbase-guest-ts", "--data-dir", depot(), NULL};
    free(run_expect(fp, 0, NULL));
    const char *fp_inspect[] = {"components", "inspect", "trailbase-guest-ts",
                                "--data-dir", depot(),   NULL};
    err = run_expect(fp_inspect, 1, NULL);
    CHECK_CONTAINS(err, "not built yet");
    CHECK_CONTAINS(err, "npm run build");
    free(err);
}

TEST_TIMEOUT(e2e_cli_components_update_says_already_up_to_date, 60)
{
    const char *add[] = {"components", "add", "trailbase-guest-ts", "--data-dir", depot(), NULL};
    const char *update[] = {"components", "update", "--data-dir", depot(), NULL};
    free(run_expect(add, 0, NULL));
    char *out;
    free(run_expect(update, 0, &out));
    CHECK_CONTAINS(out, "trailbase-guest-ts in ");
    CHECK_CONTAINS(out, "is already up to date");
    CHECK(strstr(out, "Updated") == NULL);
    free(out);
    /* changed bytes are updated, once */
    char tgz[800];
    snprintf(tgz, sizeof tgz, "%s/wasm/trailbase-wasm-0.1.0.tgz", depot());
    CHECK_EQ(th_write_file(tgz, "stale", 5), 0);
    free(run_expect(update, 0, &out));
    CHECK_CONTAINS(out, "Updated trailbase-guest-ts");
    CHECK_CONTAINS(out, "trailbase-wasm-0.1.0.tgz");
    free(out);
    free(run_expect(update, 0, &out));
    CHECK_CONTAINS(out, "is already up to date");
    free(out);
}

/* Sends raw bytes to the control socket and returns the whole answer (free()). */
static char *control_raw(const char *bytes, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    CHECK(strlen(sock_path()) < sizeof sa.sun_path);
    strcpy(sa.sun_path, sock_path());
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char *buf = calloc(1, 8192);
    size_t got = 0;
    ssize_t n;
    while (got < 8191 && (n = recv(fd, buf + got, 8191 - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    return buf;
}

TEST_TIMEOUT(e2e_cli_jobs_run_in_the_running_server, 180)
{
    char wasm[800];
    snprintf(wasm, sizeof wasm, "%s/wasm/jobs.wasm", depot());
    fx_build_component("jobs_cli", wasm);
    const char *extra[] = {"--runtime-threads", "1", NULL};
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);

    /* the control socket: only the server's user may connect */
    struct stat st;
    CHECK_EQ(lstat(sock_path(), &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_uid, geteuid());

    const char *bump[] = {"jobs", "run", "bump", "--data-dir", depot(), NULL};
    for (int i = 0; i < 2; i++) {
        char *out;
        char *err = run_expect(bump, 0, &out);
        CHECK_CONTAINS(out, "job 'bump' of jobs.wasm: ok (ran in the server, pid ");
        CHECK(strstr(out, "[WASM]") == NULL); /* the job's console goes to the server's log */
        CHECK(strstr(err, "[WASM]") == NULL);
        CHECK(strstr(err, "no server") == NULL);
        free(out);
        free(err);
    }
    /* it ran in the server's isolate: its state is what the server's route answers */
    th_resp r;
    CHECK_EQ(th_request(s.port, "GET /bumps HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "2");
    th_resp_free(&r);

    /* a failure comes back with the error and its stack, exit status 1 */
    const char *explode[] = {"jobs", "run", "explode", "--data-dir", depot(), NULL};
    char *err = run_expect(explode, 1, NULL);
    CHECK_CONTAINS(err, "job 'explode' of jobs.wasm failed");
    CHECK_CONTAINS(err, "in the server");
    CHECK_CONTAINS(err, "manual job exploded");
    CHECK_CONTAINS(err, "index.ts:");
    free(err);
    const char *nope[] = {"jobs", "run", "nope", "--data-dir", depot(), NULL};
    err = run_expect(nope, 1, NULL);
    CHECK_CONTAINS(err, "no job named 'nope'");
    free(err);

    /* what is not a request gets an error, not a crash */
    char *ans = control_raw("hello\n", 6);
    CHECK_CONTAINS(ans, "error\nunknown request 'hello'");
    free(ans);
    char big[3000];
    memset(big, 'x', sizeof big);
    ans = control_raw(big, sizeof big);
    CHECK_CONTAINS(ans, "error\nrequest too long");
    free(ans);
    ans = control_raw("run-job bump\n", 13);
    CHECK_CONTAINS(ans, "ok\njob 'bump' of jobs.wasm: ok");
    free(ans);

    /* a server that stops while a job runs tells the command so, and ends the job */
    char slow_out[800], cmd[2400];
    snprintf(slow_out, sizeof slow_out, "%s/slow.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "('%s' jobs run slow --data-dir '%s'; echo \"rc=$?\") > '%s' 2>&1 < /dev/null &",
             getenv("TRAIL_BIN"), depot(), slow_out);
    CHECK_EQ(fx_sh(cmd), 0);
    for (int i = 0; i < 400; i++) {
        char *l = th_server_stderr(&s);
        bool started = strstr(l, "job 'slow' of jobs.wasm started (manual)") != NULL;
        free(l);
        if (started) break;
        usleep(50 * 1000);
    }
    CHECK_EQ(th_server_stop(&s), 0);
    char *slow = NULL;
    for (int i = 0; i < 400; i++) {
        free(slow);
        slow = th_read_file(slow_out, NULL);
        if (slow && strstr(slow, "rc=")) break;
        usleep(50 * 1000);
    }
    CHECK(slow != NULL);
    CHECK_CONTAINS(slow, "the server is stopping");
    CHECK_CONTAINS(slow, "rc=1");
    free(slow);
    CHECK(!exists(sock_path())); /* removed at exit */
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] bump ran, bumps=1");
    CHECK_CONTAINS(log, "[WASM] bump ran, bumps=3");
    CHECK_CONTAINS(log, "job 'explode' of jobs.wasm failed");
    CHECK_CONTAINS(log, "job 'slow' of jobs.wasm failed after");
    free(log);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'bump' AND trigger = 'manual' "
                   "AND ok = 1"),
             3);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'explode' AND ok = 0"), 1);

    /* no server: the job runs here, and the command says so */
    char *out;
    err = run_expect(bump, 0, &out);
    CHECK_CONTAINS(err, "no server is running on");
    CHECK_CONTAINS(err, "running 'bump' in this process");
    CHECK_CONTAINS(err, "[WASM] bump ran, bumps=1"); /* a fresh isolate of its own */
    CHECK_CONTAINS(out, "job 'bump' of jobs.wasm: ok (ran in this process)");
    free(out);
    free(err);

    /* a server killed without cleaning up leaves a stale socket: the CLI runs locally, and the
     * next server takes the socket over */
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);
    th_server_signal(&s, SIGKILL);
    CHECK_EQ(th_server_wait(&s, 20000), 128 + SIGKILL);
    CHECK(exists(sock_path()));
    err = run_expect(bump, 0, &out);
    CHECK_CONTAINS(err, "no server is running on");
    CHECK_CONTAINS(out, "ran in this process");
    free(out);
    free(err);
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);
    err = run_expect(bump, 0, &out);
    CHECK_CONTAINS(out, "ran in the server");
    free(out);
    free(err);
    /* a second server on the same data directory leaves the socket to the first */
    th_server s2;
    CHECK_EQ(th_server_start(&s2, depot(), extra), 0);
    CHECK_EQ(th_server_stop(&s2), 0);
    log = th_server_stderr(&s2);
    CHECK_CONTAINS(log, "another trail serves");
    free(log);
    CHECK(exists(sock_path()));
    err = run_expect(bump, 0, &out);
    CHECK_CONTAINS(out, "ran in the server");
    free(out);
    free(err);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Connects to addr:port over TCP; returns 0 when a connection is made, -errno otherwise. */
static int tcp_connect(int family, const char *addr, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        inet_pton(AF_INET6, addr, &sa.sin6_addr);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, addr, &sa.sin_addr);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    rc = rc == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* The status of a GET of a path nothing serves, over IPv6 to ::1. */
static int get_over_v6(int port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    inet_pton(AF_INET6, "::1", &sa.sin6_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char req[] = "GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64] = {0};
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    CHECK(n > 12);
    CHECK(strncmp(buf, "HTTP/1.1 ", 9) == 0);
    return atoi(buf + 9);
}

TEST_TIMEOUT(e2e_cli_localhost_listens_on_ipv4_and_ipv6, 90)
{
    int probe = tcp_connect(AF_INET6, "::1", 1);
    if (probe == -EAFNOSUPPORT || probe == -EADDRNOTAVAIL) {
        test_report("skipped: this machine has no IPv6 loopback");
        return;
    }
    th_server s;
    const char *name[] = {"--address", "localhost:0", NULL};
    CHECK_EQ(th_server_start(&s, depot(), name), 0);
    char *out = th_server_stdout(&s);
    char want[100];
    snprintf(want, sizeof want, "listening on http://localhost:%d (127.0.0.1, ::1)", s.port);
    CHECK_CONTAINS(out, want);
    free(out);
    CHECK_EQ(tcp_connect(AF_INET, "127.0.0.1", s.port), 0);
    CHECK_EQ(get_over_v6(s.port), 404); /* served over ::1 */
    th_resp r;
    CHECK_EQ(th_request(s.port, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);

    /* a numeric address listens there only */
    const char *v4[] = {"--address", "127.0.0.1:0", NULL};
    CHECK_EQ(th_server_start(&s, depot(), v4), 0);
    CHECK_EQ(tcp_connect(AF_INET, "127.0.0.1", s.port), 0);
    CHECK_EQ(tcp_connect(AF_INET6, "::1", s.port), -ECONNREFUSED);
    CHECK_EQ(th_server_stop(&s), 0);
    const char *v6[] = {"--address", "[::1]:0", NULL};
    CHECK_EQ(th_server_start(&s, depot(), v6), 0);
    CHECK_EQ(get_over_v6(s.port), 404);
    CHECK_EQ(tcp_connect(AF_INET, "127.0.0.1", s.port), -ECONNREFUSED);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_cli_run_warns_about_an_unbuilt_project_and_prints_its_setup, 60)
{
    char path[900];
    snprintf(path, sizeof path, "%s/wasm/app", depot());
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' '%s/public' && echo '{}' > '%s/wasm/package.json' && "
             "echo '{}' > '%s/package.json'",
             path, test_tmpdir(), depot(), path);
    CHECK_EQ(fx_sh(cmd), 0);
    char root_fs[800];
    snprintf(root_fs, sizeof root_fs, "%s/public", test_tmpdir());
    const char *extra[] = {"--runtime-threads", "3", "--runtime-root-fs", root_fs, NULL};
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), extra), 0);
    CHECK_EQ(th_server_stop(&s), 0);
    char *err = th_server_stderr(&s);
    char want[1200];
    snprintf(want, sizeof want,
             "%s/wasm holds a TypeScript project that was never built (no dist/component.wasm)",
             depot());
    CHECK_CONTAINS(err, want);
    snprintf(want, sizeof want, "`cd %s/wasm && npm install && npm run build`", depot());
    CHECK_CONTAINS(err, want);
    snprintf(want, sizeof want, "`cd %s && npm install && npm run build`", path);
    CHECK_CONTAINS(err, want);
    free(err);
    char *out = th_server_stdout(&s);
    snprintf(want, sizeof want, "trail: 3 workers; guests may read %s (--runtime-root-fs)",
             root_fs);
    CHECK_CONTAINS(out, want);
    free(out);

    /* built: no warning; without --runtime-root-fs that is said too */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/wasm/dist' '%s/dist'", depot(), path);
    CHECK_EQ(fx_sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/wasm/dist/component.wasm", depot());
    fx_build_component("counter", cmd);
    snprintf(cmd, sizeof cmd, "%s/dist/component.wasm", path);
    fx_build_component("jobs_cli", cmd);
    const char *one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot(), one), 0);
    CHECK_EQ(th_server_stop(&s), 0);
    err = th_server_stderr(&s);
    CHECK(strstr(err, "never built") == NULL);
    free(err);
    out = th_server_stdout(&s);
    CHECK_CONTAINS(out, "trail: 1 worker; guests read no files (no --runtime-root-fs)");
    free(out);
}
