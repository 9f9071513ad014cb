/* End-to-end tests for config.textproto under the real `trail run`: an error stops start-up with
 * file:line:col and what was expected; values from the file reach the server; flags win. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"

#include <sys/stat.h>
#include <unistd.h>

static char *write_config(const char *text)
{
    char *d = tr_asprintf("%s/depot", test_tmpdir());
    CHECK_EQ(mkdir(d, 0755), 0);
    char *p = tr_asprintf("%s/config.textproto", d);
    CHECK_EQ(th_write_file(p, text, strlen(text)), 0);
    tr_free(p);
    return d;
}

/* Runs trail against depot and expects it to fail with want on stderr. */
static void expect_start_error(const char *depot, const char *want)
{
    const char *args[] = {"run", "--address", "127.0.0.1:0", "--data-dir", depot, NULL};
    char *err = NULL;
    int status = th_run(args, 30000, NULL, &err);
    if (status == 0 || status == -1 || strstr(err, want) == NULL)
        test_fail(__FILE__, __LINE__, "status %d, stderr \"%s\" lacks \"%s\"", status, err, want);
    free(err);
}

TEST_TIMEOUT(e2e_config_unknown_field_stops_startup, 60)
{
    char *d = write_config("# my settings\nserver {\n  runtime_thread: 4\n}\n");
    char *want = tr_asprintf("%s/config.textproto:3:3: unknown field 'runtime_thread' in server; "
                             "expected one of: address, runtime_threads",
                             d);
    expect_start_error(d, want);
    tr_free(want);
    tr_free(d);
}

TEST_TIMEOUT(e2e_config_type_error_stops_startup, 60)
{
    char *d = write_config("server { runtime_threads: \"four\" }\n");
    char *want = tr_asprintf("%s/config.textproto:1:27: expected an integer for "
                             "server.runtime_threads (0..1024), got string \"four\"",
                             d);
    expect_start_error(d, want);
    tr_free(want);
    tr_free(d);
}

TEST_TIMEOUT(e2e_config_syntax_error_stops_startup, 60)
{
    char *d = write_config("server {\n  max_headers: 10\n");
    char *want = tr_asprintf("%s/config.textproto:3:1: expected '}' to close server (opened at "
                             "1:8), got end of file",
                             d);
    expect_start_error(d, want);
    tr_free(want);
    tr_free(d);
}

/* The file's request-target limit reaches the server (file > default), while the file's address
 * loses to --address (flag > file). */
TEST_TIMEOUT(e2e_config_file_values_and_flag_precedence, 60)
{
    char *d = write_config("server {\n"
                           "  address: \"127.0.0.1:1\"  # overridden by --address\n"
                           "  max_target_bytes: 100\n"
                           "}\n");
    th_server s;
    CHECK_EQ(th_server_start(&s, d, NULL), 0);
    CHECK(s.port != 1);
    th_resp r;
    CHECK_EQ(th_request(s.port, "GET /api/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    char req[400];
    char path[201];
    memset(path, 'a', 200);
    path[200] = '\0';
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    CHECK_EQ(th_request(s.port, req, &r), 0);
    CHECK_EQ(r.status, 414); /* 201 bytes > 100 from the file; the default 8 KiB would allow it */
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    tr_free(d);
}
