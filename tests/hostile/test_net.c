/* The hostile battery, connections: 1,000 concurrent connections of which most are idle (some
 * mid-header), and slowloris-style clients that send their headers a byte at a time. Both run
 * against the real server while healthy requests go on other connections. */
#include "hostile/hostile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test.h"

#define NCONNS 1000

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    CHECK(rl.rlim_cur >= NCONNS + 200);
}

TEST_TIMEOUT(hostile_thousand_connections, 120)
{
    /* The server starts with a soft limit of 512 descriptors (too few for 1,000 connections)
     * and must raise it to the hard limit itself; the test needs more too. */
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK(rl.rlim_max >= NCONNS + 200);
    rl.rlim_cur = 512;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    th_server s;
    hz_start(&s, NULL, NULL);
    raise_nofile(4096);
    long rss_before = hz_rss_kib(s.pid);
    hz_load *l = hz_load_start(&s);
    th_conn *conns = calloc(NCONNS, sizeof *conns);
    double t0 = hz_now_ms();
    for (int i = 0; i < NCONNS; i++) {
        CHECK_EQ(th_conn_open(&conns[i], s.port), 0);
        if (i % 10 == 1) CHECK_EQ(th_conn_send_str(&conns[i], "GET /ok HTTP/1.1\r\nHost: x\r\n"), 0);
    }
    double open_ms = hz_now_ms() - t0;
    /* every 20th connection, idle until now, is served; the half-sent ones complete */
    int served = 0;
    t0 = hz_now_ms();
    for (int i = 0; i < NCONNS; i += 20) {
        th_resp r;
        CHECK_EQ(hz_get(&conns[i], "/ok", &r), 200);
        th_resp_free(&r);
        served++;
    }
    for (int i = 1; i < NCONNS; i += 50) {
        th_resp r;
        CHECK_EQ(th_conn_send_str(&conns[i], "\r\n"), 0);
        CHECK_EQ(th_conn_read(&conns[i], &r, false, 30000), 0);
        CHECK_EQ(r.status, 200);
        th_resp_free(&r);
        served++;
    }
    double serve_ms = hz_now_ms() - t0;
    long rss_open = hz_rss_kib(s.pid);
    for (int i = 0; i < NCONNS; i++) th_conn_close(&conns[i]);
    free(conns);
    hz_stats st;
    hz_load_stop(l, &st);
    test_report("%d connections (900 idle, 100 mid-header) opened in %.0f ms; %d of them served "
                "in %.0f ms; healthy meanwhile: %ld/%ld ok, p50 %.2f ms, p99 %.1f ms; server RSS "
                "%ld MiB before, %ld MiB with all open (%.1f KiB per connection), peak %ld MiB "
                "(bound %d)",
                NCONNS, open_ms, served, serve_ms, st.ok, st.ok + st.failed, st.p50_ms, st.p99_ms,
                rss_before >> 10, rss_open >> 10, (double)(rss_open - rss_before) / NCONNS,
                st.peak_rss_kib >> 10, HZ_RSS_BOUND_MIB);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

#define NSLOW 50

TEST_TIMEOUT(hostile_slowloris, 120)
{
    th_server s;
    hz_start(&s, "server {\n  header_timeout_ms: 1000\n}\n", NULL);
    hz_load *l = hz_load_start(&s);
    th_conn conns[NSLOW];
    bool open[NSLOW];
    double opened[NSLOW], answered_after[NSLOW] = {0}, closed_after[NSLOW] = {0};
    static const char drip[] = "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for (int i = 0; i < NSLOW; i++) {
        CHECK_EQ(th_conn_open(&conns[i], s.port), 0);
        open[i] = true;
        opened[i] = hz_now_ms();
    }
    /* one byte per connection every 50 ms; the server must cut them off at its header timeout */
    int nopen = NSLOW;
    double start = hz_now_ms();
    for (size_t k = 0; nopen > 0 && hz_now_ms() - start < 8000; k++) {
        for (int i = 0; i < NSLOW; i++) {
            if (!open[i]) continue;
            size_t extra = 0;
            bool gone = k >= sizeof drip - 1 || th_conn_send(&conns[i], drip + k, 1) < 0 ||
                        th_conn_wait_closed(&conns[i], 1, &extra) == 1;
            /* the server answers 408, then lingers before it closes */
            if (extra > 0 && answered_after[i] == 0) answered_after[i] = hz_now_ms() - opened[i];
            if (gone) {
                closed_after[i] = hz_now_ms() - opened[i];
                open[i] = false;
                nopen--;
                th_conn_close(&conns[i]);
            }
        }
        usleep(50000);
    }
    CHECK_EQ(nopen, 0);
    hz_stats st;
    hz_load_stop(l, &st);
    double lo = answered_after[0], hi = answered_after[0], closed = 0;
    for (int i = 0; i < NSLOW; i++) {
        CHECK(answered_after[i] > 0);
        if (answered_after[i] < lo) lo = answered_after[i];
        if (answered_after[i] > hi) hi = answered_after[i];
        if (closed_after[i] > closed) closed = closed_after[i];
    }
    /* answered at the 1 s header timeout, not before and not much after; closed after the
     * server's lingering close */
    CHECK(lo >= 900);
    CHECK(hi <= 2500);
    CHECK(closed <= 4000);
    test_report("slowloris: %d connections dripping headers a byte per 50 ms, all answered 408 "
                "after %.0f-%.0f ms (header_timeout_ms 1000) and closed by %.0f ms; healthy "
                "meanwhile: %ld/%ld ok, p50 %.2f ms, p99 %.1f ms; server peak RSS %ld MiB (bound "
                "%d)",
                NSLOW, lo, hi, closed, st.ok, st.ok + st.failed, st.p50_ms, st.p99_ms,
                st.peak_rss_kib >> 10, HZ_RSS_BOUND_MIB);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}
