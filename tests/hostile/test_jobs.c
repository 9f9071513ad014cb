/* The hostile battery, jobs: a component whose cron jobs run every second, one looping forever
 * and one allocating without bound, next to a healthy job and one that tries to forge, rewrite and
 * erase _job_runs; the component serving requests is another one. Each bad run is recorded as
 * failed naming its limit and replaces the jobs' isolate; the healthy job keeps finishing and
 * requests keep succeeding. */
#include "hostile/hostile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/fixtures.h"
#include "test.h"

TEST_TIMEOUT(hostile_runaway_jobs, 120)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/wasm/jobs.wasm", hz_depot());
    fx_build_component("hostile_jobs", path);
    th_server s;
    hz_start(&s, NULL, NULL);
    hz_load *l = hz_load_start(&s);
    usleep(3500000);
    hz_stats st;
    hz_load_stop(l, &st);
    char *log = th_server_stderr(&s);
    int spin = hz_count(log, "job 'spin' of jobs.wasm failed"),
        hog = hz_count(log, "job 'hog' of jobs.wasm failed"),
        fine = hz_count(log, "job 'fine' of jobs.wasm finished");
    CHECK(spin >= 2);
    CHECK(hog >= 2);
    CHECK(fine >= 2);
    CHECK_CONTAINS(log, "interrupted");
    CHECK_CONTAINS(log, "out of memory");
    /* trail's record of runs is not the guests': every forging statement refused */
    int forged = hz_count(log, "forge: wrote"), refused = hz_count(log, "forge: refused");
    CHECK_EQ(forged, 0);
    CHECK(refused >= 3);
    free(log);
    test_report("runaway jobs over 3.5 s: 'spin' failed %d times (CPU budget), 'hog' %d times "
                "(memory), 'fine' finished %d times, writes to _job_runs %d/%d refused; healthy "
                "requests meanwhile: %ld/%ld ok, p99 %.1f ms; server peak RSS %ld MiB (bound %d)",
                spin, hog, fine, refused, refused + forged, st.ok, st.ok + st.failed, st.p99_ms,
                st.peak_rss_kib >> 10, HZ_RSS_BOUND_MIB);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}
