/* tests/hostile/hostile.c: the hostile battery's helpers (see hostile.h). */
#include "hostile/hostile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e/fixtures.h"
#include "test.h"

double hz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char depot_path[700];
static const char *component = "hostile_limits";

void hz_set_component(const char *name)
{
    component = name;
}

void hz_set_depot(const char *path)
{
    snprintf(depot_path, sizeof depot_path, "%s", path);
}

const char *hz_depot(void)
{
    if (depot_path[0] == '\0') snprintf(depot_path, sizeof depot_path, "%s/traildepot", test_tmpdir());
    return depot_path;
}

void hz_start(th_server *s, const char *extra_cfg, const char *const *extra)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/wasm/hostile.wasm", hz_depot());
    fx_build_component(component, path);
    char cfg[2048];
    if (extra_cfg && strncmp(extra_cfg, "runtime {", 9) == 0)
        snprintf(cfg, sizeof cfg, "%s", extra_cfg);
    else
        snprintf(cfg, sizeof cfg,
                 "runtime {\n  memory_limit_mb: %d\n  deadline_ms: %d\n  cpu_budget_ms: %d\n}\n%s",
                 HZ_MEMORY_MB, HZ_DEADLINE_MS, HZ_CPU_BUDGET_MS, extra_cfg ? extra_cfg : "");
    /* The battery's origins listen on loopback, which fetch() reaches only when allowed. */
    if (extra_cfg == NULL || strstr(extra_cfg, "fetch {") == NULL) {
        size_t n = strlen(cfg);
        snprintf(cfg + n, sizeof cfg - n, "fetch {\n  allowed_private_hosts: \"127.0.0.1\"\n}\n");
    }
    snprintf(path, sizeof path, "%s/config.textproto", hz_depot());
    CHECK_EQ(th_write_file(path, cfg, strlen(cfg)), 0);
    const char *args[40] = {"--runtime-threads", "2", "--quiet"};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 39; i++) args[n++] = extra[i];
    args[n] = NULL;
    setenv("TRAIL_TEST_HOOKS", "1", 1);
    /* ASan keeps freed memory in a quarantine (256 MiB by default), which would make the
     * server's RSS track what it freed; a small one keeps RSS close to live memory. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    CHECK_EQ(th_server_start(s, hz_depot(), args), 0);
}

int hz_call(int port, const char *method, const char *path, const char *body, size_t body_len,
            th_resp *r, double *ms)
{
    char head[9000];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                     method, path, body_len);
    CHECK(n > 0 && (size_t)n < sizeof head);
    double t0 = hz_now_ms();
    th_conn c;
    memset(r, 0, sizeof *r);
    if (th_conn_open(&c, port) < 0) return -1;
    int rc = th_conn_send(&c, head, (size_t)n);
    if (rc == 0 && body_len) rc = th_conn_send(&c, body, body_len);
    if (rc == 0) rc = th_conn_read(&c, r, false, 30000);
    th_conn_close(&c);
    if (ms) *ms = hz_now_ms() - t0;
    return rc < 0 ? rc : r->status;
}

long hz_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *s = th_read_file(path, NULL);
    if (s == NULL) return 0;
    const char *p = strstr(s, "VmRSS:");
    long kib = p ? strtol(p + 6, NULL, 10) : 0;
    free(s);
    return kib;
}

/* ---- healthy load ---- */

#define HZ_LOAD_THREADS 2

struct hz_load {
    const th_server *s;
    pthread_t threads[HZ_LOAD_THREADS], sampler;
    atomic_bool stop;
    pthread_mutex_t mu;
    double *lat;
    size_t nlat, cap;
    long failed;
    long peak_rss;
};

static void record(hz_load *l, bool ok, double ms)
{
    pthread_mutex_lock(&l->mu);
    if (ok) {
        if (l->nlat == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
        }
        l->lat[l->nlat++] = ms;
    } else {
        l->failed++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void *load_main(void *arg)
{
    hz_load *l = arg;
    static const char req[] = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    th_conn c;
    bool open = false;
    while (!atomic_load(&l->stop)) {
        if (!open) {
            if (th_conn_open(&c, l->s->port) < 0) {
                record(l, false, 0);
                usleep(10000);
                continue;
            }
            open = true;
        }
        double t0 = hz_now_ms();
        th_resp r;
        int rc = th_conn_send(&c, req, sizeof req - 1);
        if (rc == 0) rc = th_conn_read(&c, &r, false, 15000);
        double ms = hz_now_ms() - t0;
        bool ok = rc == 0 && r.status == 200 && strncmp(r.body, "ok ", 3) == 0;
        if (rc == 0) {
            if (!ok) fprintf(stderr, "healthy request failed: %d %s\n", r.status, r.body);
            th_resp_free(&r);
        } else {
            fprintf(stderr, "healthy request failed: read %d after %.0f ms\n", rc, ms);
        }
        record(l, ok, ms);
        if (!ok) {
            th_conn_close(&c);
            open = false;
        }
        usleep(2000);
    }
    if (open) th_conn_close(&c);
    return NULL;
}

static void *sampler_main(void *arg)
{
    hz_load *l = arg;
    while (!atomic_load(&l->stop)) {
        long kib = hz_rss_kib(l->s->pid);
        if (kib > l->peak_rss) l->peak_rss = kib;
        usleep(5000);
    }
    return NULL;
}

hz_load *hz_load_start(const th_server *s)
{
    hz_load *l = calloc(1, sizeof *l);
    l->s = s;
    atomic_init(&l->stop, false);
    pthread_mutex_init(&l->mu, NULL);
    for (int i = 0; i < HZ_LOAD_THREADS; i++)
        CHECK_EQ(pthread_create(&l->threads[i], NULL, load_main, l), 0);
    CHECK_EQ(pthread_create(&l->sampler, NULL, sampler_main, l), 0);
    usleep(50000); /* let it reach steady state */
    return l;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void hz_load_stop(hz_load *l, hz_stats *out)
{
    atomic_store(&l->stop, true);
    for (int i = 0; i < HZ_LOAD_THREADS; i++) pthread_join(l->threads[i], NULL);
    pthread_join(l->sampler, NULL);
    /* one sample more, so there is one even if a busy machine never ran the sampler meanwhile */
    long kib = hz_rss_kib(l->s->pid);
    if (kib > l->peak_rss) l->peak_rss = kib;
    memset(out, 0, sizeof *out);
    out->ok = (long)l->nlat;
    out->failed = l->failed;
    out->peak_rss_kib = l->peak_rss;
    if (l->nlat) {
        qsort(l->lat, l->nlat, sizeof *l->lat, cmp_double);
        out->p50_ms = l->lat[l->nlat / 2];
        size_t i99 = (l->nlat * 99 + 99) / 100;
        out->p99_ms = l->lat[i99 >= l->nlat ? l->nlat - 1 : i99];
        out->max_ms = l->lat[l->nlat - 1];
    }
    pthread_mutex_destroy(&l->mu);
    free(l->lat);
    free(l);
}

void hz_check_healthy(const th_server *s, const hz_stats *st, long bound_mib)
{
    CHECK(st->ok >= 5);
    CHECK_EQ(st->failed, 0);
    CHECK(st->peak_rss_kib > 0);
    CHECK(st->peak_rss_kib < bound_mib * 1024);
    th_resp r;
    CHECK_EQ(hz_call(s->port, "GET", "/ok", NULL, 0, &r, NULL), 200);
    CHECK(strncmp(r.body, "ok ", 3) == 0);
    th_resp_free(&r);
}

void hz_attack(const th_server *s, const hz_case *c)
{
    long bound = c->rss_bound_mib ? c->rss_bound_mib : HZ_RSS_BOUND_MIB;
    hz_load *l = hz_load_start(s);
    double *ms = calloc((size_t)c->repeats, sizeof *ms);
    size_t body_bytes = 0;
    for (int i = 0; i < c->repeats; i++) {
        th_resp r;
        int st = hz_call(s->port, c->method, c->path, c->body, c->body_len, &r, &ms[i]);
        if (st != c->want_status)
            fprintf(stderr, "%s: %s %s answered %d: %.300s\n", c->label, c->method, c->path, st,
                    st > 0 ? r.body : "");
        CHECK_EQ(st, c->want_status);
        if (c->want_body) CHECK_CONTAINS(r.body, c->want_body);
        body_bytes = r.body_len;
        th_resp_free(&r);
    }
    hz_stats st;
    hz_load_stop(l, &st);
    qsort(ms, (size_t)c->repeats, sizeof *ms, cmp_double);
    test_report("%s: %d x %s %s -> %d (median %.0f ms, %zu body bytes); healthy meanwhile: "
                "%ld/%ld ok, p50 %.2f ms, p99 %.1f ms, max %.1f ms; server peak RSS %ld MiB "
                "(bound %ld)",
                c->label, c->repeats, c->method, c->path, c->want_status, ms[c->repeats / 2],
                body_bytes, st.ok, st.ok + st.failed, st.p50_ms, st.p99_ms, st.max_ms,
                st.peak_rss_kib >> 10, bound);
    free(ms);
    hz_check_healthy(s, &st, bound);
}

int hz_get(th_conn *c, const char *path, th_resp *r)
{
    char req[600];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    memset(r, 0, sizeof *r);
    int rc = th_conn_send_str(c, req);
    if (rc == 0) rc = th_conn_read(c, r, false, 30000);
    return rc < 0 ? rc : r->status;
}

void hz_check_recreated(const th_server *s, const char *path, int status, bool same)
{
    th_conn c;
    th_resp r;
    CHECK_EQ(th_conn_open(&c, s->port), 0);
    CHECK_EQ(hz_get(&c, "/whoami", &r), 200);
    char before[64];
    snprintf(before, sizeof before, "%s", r.body);
    th_resp_free(&r);
    CHECK_EQ(hz_get(&c, path, &r), status);
    th_resp_free(&r);
    CHECK_EQ(hz_get(&c, "/whoami", &r), 200);
    if (same)
        CHECK_STR_EQ(r.body, before);
    else
        CHECK(strcmp(r.body, before) != 0);
    th_resp_free(&r);
    th_conn_close(&c);
}

int hz_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}
