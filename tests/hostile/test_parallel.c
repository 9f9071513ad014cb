/* Parallel isolates: with --runtime-threads 2 each worker has its own isolate of a component,
 * so two CPU-bound requests on connections served by different workers run at the same time.
 * The machine's two cores are shared with other work, so the test does not time the pair; it
 * asserts that both give the right result and that their runs, as each handler saw them on the
 * clock, overlap: two workers that took turns (a lock around the engine, one thread serving
 * both) could not do that. The timing ratio is reported (bench/ measures throughput properly). */
#include "hostile/hostile.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "test.h"

/* About 0.4 s of CPU in the ASan build: long enough that both requests reach their workers before
 * either finishes, even when a busy machine is slow to start the second client thread. */
#define WORK "/work-span/10000000"

typedef struct runner {
    th_conn *c;
    int status;
    double ms;
    char result[32];          /* what the handler computed */
    long long start, end;     /* when it started and ended, ms since the epoch */
} runner;

static void *run_one(void *arg)
{
    runner *r = arg;
    th_resp resp;
    double t0 = hz_now_ms();
    r->status = hz_get(r->c, WORK, &resp);
    r->ms = hz_now_ms() - t0;
    if (r->status > 0) {
        if (sscanf(resp.body, "%31s %lld %lld", r->result, &r->start, &r->end) != 3)
            r->status = -1;
        th_resp_free(&resp);
    }
    return NULL;
}

TEST_TIMEOUT(hostile_parallel_isolates, 120)
{
    th_server s;
    hz_start(&s, "runtime {\n  cpu_budget_ms: 20000\n  deadline_ms: 30000\n}\n", NULL);
    /* find two keep-alive connections served by different workers (different isolates) */
    th_conn c[16];
    char ids[16][64];
    int a = -1, b = -1, n = 0;
    for (; n < 16 && b < 0; n++) {
        th_resp r;
        CHECK_EQ(th_conn_open(&c[n], s.port), 0);
        CHECK_EQ(hz_get(&c[n], "/whoami", &r), 200);
        snprintf(ids[n], sizeof ids[n], "%s", r.body);
        th_resp_free(&r);
        if (n == 0) a = 0;
        else if (strcmp(ids[n], ids[a]) != 0) b = n;
    }
    CHECK(b > 0);
    /* one at a time (the best of two), then both at once */
    double single = 1e9;
    char want[32] = "";
    for (int i = 0; i < 2; i++) {
        runner r = {.c = &c[i ? b : a]};
        run_one(&r);
        CHECK_EQ(r.status, 200);
        if (want[0]) CHECK_STR_EQ(r.result, want);
        snprintf(want, sizeof want, "%s", r.result);
        if (r.ms < single) single = r.ms;
    }
    runner ra = {.c = &c[a]}, rb = {.c = &c[b]};
    pthread_t ta, tb;
    double t0 = hz_now_ms();
    CHECK_EQ(pthread_create(&ta, NULL, run_one, &ra), 0);
    CHECK_EQ(pthread_create(&tb, NULL, run_one, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    double both = hz_now_ms() - t0;
    CHECK_EQ(ra.status, 200);
    CHECK_EQ(rb.status, 200);
    CHECK_STR_EQ(ra.result, want);
    CHECK_STR_EQ(rb.result, want);
    /* each run started before the other ended */
    CHECK(ra.start < rb.end);
    CHECK(rb.start < ra.end);
    test_report("parallel isolates (2 workers): one CPU-bound request %.0f ms, two at once on "
                "different workers %.0f ms (ratio %.2f; 1.0 is perfect overlap, 2.0 none); "
                "the runs overlapped by %lld ms",
                single, both, both / single,
                (ra.end < rb.end ? ra.end : rb.end) - (ra.start > rb.start ? ra.start : rb.start));
    for (int i = 0; i < n; i++) th_conn_close(&c[i]);
    CHECK_EQ(th_server_stop(&s), 0);
}
