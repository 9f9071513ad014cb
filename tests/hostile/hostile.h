/* tests/hostile/hostile.h: the hostile battery's helpers: a real `trail run` serving the
 * hostile_limits component with small limits, a healthy load that runs on other connections
 * while a test attacks, and the server's resident memory sampled throughout.
 *
 * DESIGN: every case follows the same shape: start the server (hz_start), start the healthy
 * load (hz_load_start: keep-alive GET /ok on two connections, each request timed), attack,
 * stop the load (hz_load_stop: success count, p50/p99 latency, peak RSS of the server from
 * /proc/PID/status), then check that the offending requests got their documented status, that
 * every healthy request succeeded, that RSS stayed below the case's bound and that the server
 * still serves. The figures go to test_report(). */
#ifndef TRAIL_TESTS_HOSTILE_HOSTILE_H
#define TRAIL_TESTS_HOSTILE_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "e2e/harness.h"

/* The limits of the battery's config.textproto (small, so every case takes seconds). */
#define HZ_CPU_BUDGET_MS 200
#define HZ_MEMORY_MB     32
#define HZ_DEADLINE_MS   1000

/* The battery's memory limit with a CPU budget and deadline far beyond what filling it takes (about
 * 0.1 s of CPU in the ASan build), for the cases that check that the memory limit stops a guest: on
 * a loaded machine, page faults and a cold cache make that work slower, and with the battery's
 * 200 ms budget the CPU limit could stop it first. */
#define HZ_MEMORY_CASES_CFG                                                                        \
    "runtime {\n  memory_limit_mb: 32\n  cpu_budget_ms: 10000\n  deadline_ms: 30000\n}\n"

/* Host memory bound of the ASan server under attack (its idle RSS is ~25 MiB; two isolates may
 * hold HZ_MEMORY_MB each; a request or response body is copied a few times). The server runs
 * with a 16 MiB ASan quarantine so that RSS follows live memory. */
#define HZ_RSS_BOUND_MIB 192

/* Writes the depot (config.textproto with the limits above plus extra_cfg, or only extra_cfg
 * when it starts with "runtime {"; unless extra_cfg has a fetch section, fetch() may reach
 * 127.0.0.1, where the tests' origins listen; the component) under
 * the test's temporary directory and starts `trail run --runtime-threads 2` on it with the extra
 * arguments (NULL-terminated, may be NULL). TRAIL_TEST_HOOKS=1 is set for the server, and
 * quarantine_size_mb=16 added to ASAN_OPTIONS. Fails the
 * test if it cannot start. */
void hz_start(th_server *s, const char *extra_cfg, const char *const *extra);
const char *hz_depot(void);
/* Serves tests/data/components/NAME instead of hostile_limits (call before hz_start; the
 * component must have the /ok and /whoami routes of hostile_limits). */
void hz_set_component(const char *name);
/* Puts the depot somewhere else than <test_tmpdir()>/traildepot (call before hz_start). */
void hz_set_depot(const char *path);

/* One request on a fresh connection; the response in *r (free with th_resp_free). Returns the
 * status, or a negative th_conn_read result. Sets *ms to the time it took when ms is not NULL. */
int hz_call(int port, const char *method, const char *path, const char *body, size_t body_len,
            th_resp *r, double *ms);

typedef struct hz_stats {
    long ok, failed;
    double p50_ms, p99_ms, max_ms;
    long peak_rss_kib;
} hz_stats;

typedef struct hz_load hz_load;

/* Healthy traffic: two threads, each with its own keep-alive connection, GET /ok in a loop with
 * a 2 ms pause; and a thread sampling the server's RSS every 5 ms. */
hz_load *hz_load_start(const th_server *s);
void hz_load_stop(hz_load *l, hz_stats *out);

/* VmRSS of pid in KiB (0 if unreadable). */
long hz_rss_kib(pid_t pid);

/* The checks every case ends with: all healthy requests succeeded (and there were some), RSS
 * stayed below bound_mib, and GET /ok still answers 200. */
void hz_check_healthy(const th_server *s, const hz_stats *st, long bound_mib);

double hz_now_ms(void);

/* How many times needle occurs in hay (a server's log, say). */
int hz_count(const char *hay, const char *needle);



/* One attack: `repeats` offending requests (method, path, body) sent one after another, each
 * expected to get want_status with want_body in its body, while the healthy load runs. The
 * server must already be running. Reports "label: ..." with the figures. */
typedef struct hz_case {
    const char *label;
    const char *method, *path;
    const char *body;
    size_t body_len;
    int want_status;
    const char *want_body; /* a substring of the body; NULL: not checked */
    int repeats;
    long rss_bound_mib; /* 0: HZ_RSS_BOUND_MIB */
} hz_case;

void hz_attack(const th_server *s, const hz_case *c);

/* On one keep-alive connection (so one worker): GET /whoami, then `path` (expecting status),
 * then GET /whoami again, and checks that the isolate's id changed (it was discarded and
 * recreated) or, with same true, that it did not. */
void hz_check_recreated(const th_server *s, const char *path, int status, bool same);

/* GET path on an open keep-alive connection; returns the status (negative on failure). */
int hz_get(th_conn *c, const char *path, th_resp *r);
#endif
