/* trailbase-wasm/kv end to end: the store every worker and component of a `trail run` shares.
 * Counts that must be exact across four workers (the rate-limit example, concurrent increments),
 * expiry, the store's limit, and every operation of the API over HTTP. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const four_workers[] = {"--runtime-threads", "4", NULL};

static th_resp get(int port, const char *path)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    th_resp r;
    CHECK_EQ(th_request(port, req, &r), 0);
    return r;
}

/* GET path: checks the status and the exact body. */
static void expect(int port, const char *path, int status, const char *body)
{
    th_resp r = get(port, path);
    if (r.status != status) fprintf(stderr, "GET %s: %d %s\n", path, r.status, r.body);
    CHECK_EQ(r.status, status);
    if (body) CHECK_STR_EQ(r.body, body);
    th_resp_free(&r);
}

/* Keep-alive connections, one per worker: opens connections until it has seen `want` different
 * isolates of the component (each worker has its own), closing the others. */
static int connections_on_workers(int port, th_conn *out, int want)
{
    char ids[8][64];
    int n = 0;
    for (int tries = 0; tries < 128 && n < want; tries++) {
        th_conn c;
        CHECK_EQ(th_conn_open(&c, port), 0);
        CHECK_EQ(th_conn_send_str(&c, "GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        th_resp r;
        CHECK_EQ(th_conn_read(&c, &r, false, 30000), 0);
        CHECK_EQ(r.status, 200);
        bool seen = false;
        for (int i = 0; i < n; i++) seen = seen || strcmp(ids[i], r.body) == 0;
        if (!seen) {
            snprintf(ids[n], sizeof ids[n], "%s", r.body);
            out[n++] = c;
        } else {
            th_conn_close(&c);
        }
        th_resp_free(&r);
    }
    return n;
}

/* The reference's rate limiter on kv: with four workers, 45 requests from one address on fresh
 * connections (spread over the workers by the kernel) get exactly 10 x 200, then 429. The Map of
 * the reference's own sample would allow 10 per worker. */
TEST_TIMEOUT(e2e_kv_rate_limit_is_exact_across_workers, 120)
{
    th_server s;
    fx_start_app(&s, "examples/kv-rate-limiting", NULL, four_workers);
    int ok = 0, limited = 0;
    for (int i = 0; i < 45; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "GET /api/expensive HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n"
                 "Connection: close\r\n\r\n");
        th_resp r;
        CHECK_EQ(th_request(s.port, req, &r), 0);
        if (r.status == 200) {
            CHECK_STR_EQ(r.body, "OK");
            CHECK_EQ(limited, 0); /* every 200 comes before the first 429 */
            ok++;
        } else {
            CHECK_EQ(r.status, 429);
            CHECK_STR_EQ(r.body, "{\"error\":\"Rate limit exceeded\"}");
            limited++;
        }
        th_resp_free(&r);
    }
    test_report("45 requests over 4 workers: %d x 200, %d x 429", ok, limited);
    CHECK_EQ(ok, 10);
    CHECK_EQ(limited, 35);
    /* another address has its own count */
    th_resp r;
    CHECK_EQ(th_request(s.port,
                        "GET /api/expensive HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.2\r\n"
                        "Connection: close\r\n\r\n",
                        &r),
             0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}

typedef struct looper {
    th_conn *c;
    int status;
    char body[128];
} looper;

static void *run_loop(void *arg)
{
    looper *l = arg;
    th_resp r;
    l->status = th_conn_send_str(l->c, "GET /incr-loop/shared/10000 HTTP/1.1\r\nHost: x\r\n\r\n");
    if (l->status == 0) l->status = th_conn_read(l->c, &r, false, 60000);
    if (l->status == 0) {
        l->status = r.status;
        snprintf(l->body, sizeof l->body, "%s", r.body);
        th_resp_free(&r);
    }
    return NULL;
}

/* Four workers increment one key 10,000 times each, at the same time: the sum is exact. */
TEST_TIMEOUT(e2e_kv_concurrent_increments_sum_exactly, 120)
{
    th_server s;
    fx_start_app(&s, "tests/data/components/kv", NULL, four_workers);
    th_conn c[4];
    int n = connections_on_workers(s.port, c, 4);
    CHECK_EQ(n, 4);
    looper l[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        l[i] = (looper){.c = &c[i]};
        CHECK_EQ(pthread_create(&t[i], NULL, run_loop, &l[i]), 0);
    }
    long highest = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(l[i].status, 200);
        const char *sp = strchr(l[i].body, ' ');
        CHECK(sp != NULL);
        long last = atol(sp + 1);
        if (last > highest) highest = last;
        th_conn_close(&c[i]);
    }
    expect(s.port, "/text/shared", 200, "40000");
    CHECK_EQ(highest, 40000); /* whichever finished last saw the total */
    test_report("4 workers x 10,000 increments of one key: %ld", highest);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Every operation, text and bytes, expiry, errors, and a second component sharing the store. */
TEST_TIMEOUT(e2e_kv_operations_and_expiry, 120)
{
    const char *root = getenv("TRAIL_ROOT");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/kv/wasm' && '%s/tools/sdk-build.sh' "
             "'%s/tests/data/components/kv_reader' '%s/kv/wasm/kv_reader.wasm' >/dev/null",
             test_tmpdir(), root, root, test_tmpdir());
    CHECK_EQ(fx_sh(cmd), 0);
    th_server s;
    fx_start_app(&s, "tests/data/components/kv", NULL, NULL);
    int p = s.port;
    expect(p, "/get/a", 404, "{\"missing\":true}");
    expect(p, "/exists/a", 200, "false");
    expect(p, "/set-text/a/hello", 200, "ok");
    expect(p, "/get/a", 200, "hello");
    expect(p, "/exists/a", 200, "true");
    expect(p, "/reader/a", 200, "hello"); /* the other component sees it */
    /* bytes in and out, exactly */
    static const char put[] = "PUT /set/bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
                              "\x00\x01\xfe\xff";
    th_conn c;
    CHECK_EQ(th_conn_open(&c, p), 0);
    CHECK_EQ(th_conn_send(&c, put, sizeof put - 1), 0);
    th_resp r;
    CHECK_EQ(th_conn_read(&c, &r, false, 30000), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    th_conn_close(&c);
    r = get(p, "/get/bin");
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 4);
    CHECK(memcmp(r.body, "\x00\x01\xfe\xff", 4) == 0);
    th_resp_free(&r);
    /* counters */
    expect(p, "/incr/n", 200, "1");
    expect(p, "/incr/n?by=41", 200, "42");
    expect(p, "/incr/n?by=-50", 200, "-8");
    expect(p, "/text/n", 200, "-8");
    expect(p, "/keys?prefix=b", 200, "[\"bin\"]");
    expect(p, "/keys", 200, "[\"a\",\"bin\",\"n\"]");
    expect(p, "/delete/a", 200, "true");
    expect(p, "/delete/a", 200, "false");
    expect(p, "/reader/a", 200, "none");
    /* expiry: a value and a counter window */
    expect(p, "/set-text/t/soon?ttl=300", 200, "ok");
    expect(p, "/incr/w?ttl=300", 200, "1");
    expect(p, "/incr/w?ttl=60000", 200, "2"); /* an existing counter keeps its expiry */
    expect(p, "/exists/t", 200, "true");
    usleep(700 * 1000);
    expect(p, "/exists/t", 200, "false");
    expect(p, "/get/t", 404, NULL);
    expect(p, "/incr/w", 200, "1");
    expect(p, "/keys?prefix=t", 200, "[]");
    /* a set without ttl clears an expiry */
    expect(p, "/set-text/k/v?ttl=200", 200, "ok");
    expect(p, "/set-text/k/v2", 200, "ok");
    usleep(400 * 1000);
    expect(p, "/text/k", 200, "v2");
    /* errors name what is wrong */
    expect(p, "/bad-key", 200,
           "[\"a key must not be empty\",\"a key is limited to 4096 bytes\","
           "\"the value under this key is not an integer\","
           "\"delta must be an integer within 2^53\"]");
    expect(p, "/incr/big?by=9007199254740991", 200, "9007199254740991");
    expect(p, "/incr/big", 400,
           "{\"error\":\"the sum would leave the range of exact numbers (2^53)\"}");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* A full store refuses writes with an error naming kv.max_mb; the server and the store go on, a
 * small write that fits still succeeds, and deleting makes room again. */
TEST_TIMEOUT(e2e_kv_full_store_refuses_writes, 120)
{
    th_server s;
    fx_start_app(&s, "tests/data/components/kv", "kv {\n  max_mb: 1\n}\n", NULL);
    th_resp r = get(s.port, "/fill/x");
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"error\":\"the key-value store is full (kv.max_mb = 1)\"");
    int stored = 0;
    CHECK_EQ(sscanf(r.body, "{\"stored\":%d", &stored), 1);
    th_resp_free(&r);
    test_report("1 MiB store: %d values of 64 KiB fit before the store refused one", stored);
    CHECK(stored >= 14 && stored <= 16);
    /* full it stays, and reading goes on */
    expect(s.port, "/fill/y", 200,
           "{\"stored\":0,\"error\":\"the key-value store is full (kv.max_mb = 1)\"}");
    expect(s.port, "/exists/x-0", 200, "true");
    expect(s.port, "/incr/small", 200, "1");
    /* deleting makes room for one more */
    expect(s.port, "/delete/x-0", 200, "true");
    expect(s.port, "/fill/z", 200,
           "{\"stored\":1,\"error\":\"the key-value store is full (kv.max_mb = 1)\"}");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* The cached-aggregate example: the first read computes, the next comes from the store (on any
 * worker), and a write through the app drops it. */
TEST_TIMEOUT(e2e_kv_cache_example, 120)
{
    th_server s;
    fx_start_app(&s, "examples/kv-cache", NULL, four_workers);
    expect(s.port, "/stats/todos", 200,
           "{\"source\":\"database\",\"stats\":{\"total\":3,\"completed\":1}}");
    for (int i = 0; i < 6; i++)
        expect(s.port, "/stats/todos", 200,
               "{\"source\":\"cache\",\"stats\":{\"total\":3,\"completed\":1}}");
    th_resp r;
    CHECK_EQ(th_request(s.port,
                        "POST /todos HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n"
                        "Connection: close\r\n\r\n{\"title\":\"more\"}",
                        &r),
             0);
    CHECK_EQ(r.status, 201);
    th_resp_free(&r);
    expect(s.port, "/stats/todos", 200,
           "{\"source\":\"database\",\"stats\":{\"total\":4,\"completed\":1}}");
    CHECK_EQ(th_server_stop(&s), 0);
}

/* kv { persist: true }: what was stored survives a restart (a clean one, and a SIGKILL after the
 * snapshot interval), expiry included; without it the store starts empty. A damaged snapshot
 * stops the start with a message naming the file instead of being overwritten. */
TEST_TIMEOUT(e2e_kv_persist_across_restarts, 120)
{
    th_server s;
    const char *cfg = "kv {\n  persist: true\n  persist_interval_ms: 200\n}\n";
    fx_start_app(&s, "tests/data/components/kv", cfg, NULL);
    char depot[700];
    snprintf(depot, sizeof depot, "%s/kv", test_tmpdir());
    expect(s.port, "/set-text/kept/yes", 200, "ok");
    expect(s.port, "/set-text/long/yes?ttl=600000", 200, "ok");
    expect(s.port, "/set-text/short/gone?ttl=300", 200, "ok");
    expect(s.port, "/incr/hits?by=7", 200, "7");
    CHECK_EQ(th_server_stop(&s), 0);
    char snap[800];
    snprintf(snap, sizeof snap, "%s/data/kv.snapshot", depot);
    CHECK(access(snap, F_OK) == 0);
    usleep(400 * 1000); /* "short" has expired by the wall clock, whatever the restart takes */

    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    expect(s.port, "/text/kept", 200, "yes");
    expect(s.port, "/text/hits", 200, "7");
    expect(s.port, "/exists/long", 200, "true");
    expect(s.port, "/exists/short", 200, "false");
    expect(s.port, "/incr/hits", 200, "8");
    /* killed without a chance to save: the periodic snapshot (every 200 ms) has it */
    usleep(2000 * 1000);
    th_server_signal(&s, SIGKILL);
    th_server_wait(&s, 10000);
    th_server_stop(&s);
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    expect(s.port, "/text/hits", 200, "8");
    expect(s.port, "/exists/long", 200, "true");
    CHECK_EQ(th_server_stop(&s), 0);

    /* a damaged snapshot: trail does not start, and the file is left as it was */
    CHECK_EQ(th_write_file(snap, "trailkv1 cut", 12), 0);
    char *err = NULL;
    const char *args[] = {"run", "--data-dir", depot, "--address", "127.0.0.1:0", NULL};
    CHECK_EQ(th_run(args, 30000, NULL, &err), 1);
    CHECK_CONTAINS(err, "kv.snapshot: not a whole key-value snapshot");
    CHECK_CONTAINS(err, "move it away to start with an empty store");
    free(err);
    size_t len = 0;
    char *still = th_read_file(snap, &len);
    CHECK(still && len == 12);
    free(still);
}
