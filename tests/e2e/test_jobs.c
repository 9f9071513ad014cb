/* Scheduled jobs against the real server: the reference's schedules fire when they should (the
 * scheduler's clock is started just before a Sunday midnight), every run is recorded in
 * _job_runs, a throwing job is recorded as failed with its JS stack, a run still going when the
 * next is due is skipped, and `trail jobs list` / `trail jobs run` work. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

static const char *depot(void)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/traildepot", test_tmpdir());
    return p;
}

/* SELECT count(*) ... as an integer. */
static long long count(const char *sql)
{
    char path[800];
    snprintf(path, sizeof path, "%s/data/main.db", depot());
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static char *text(const char *sql)
{
    char path[800];
    snprintf(path, sizeof path, "%s/data/main.db", depot());
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *out = strdup(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)
                           ? (const char *)sqlite3_column_text(st, 0)
                           : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* How often needle occurs in hay. */
static int occurrences(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        k++;
    return k;
}

TEST_TIMEOUT(e2e_jobs_reference_schedules_fire_at_sunday_midnight, 120)
{
    char out[800];
    snprintf(out, sizeof out, "%s/wasm/jobs.wasm", depot());
    fx_build_component("jobs_reference", out);
    /* Saturday 2026-11-28 23:59:58 UTC: two seconds later it is Sunday midnight, when the
     * minutely, hourly, daily (at midnight) and weekly (Sunday at midnight) schedules all fire. */
    setenv("TRAIL_SCHEDULER_START", "1795910398", 1);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    sleep(4);
    CHECK_EQ(th_server_stop(&s), 0);
    static const char *const fired[] = {"every-minute", "every-hour", "every-day", "every-week"};
    for (size_t i = 0; i < 4; i++) {
        char sql[300];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM _job_runs WHERE job = '%s' AND ok = 1 AND trigger = "
                 "'schedule'",
                 fired[i]);
        CHECK_EQ(count(sql), 1);
    }
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'mondays'"), 0);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "[WASM] ran every-week");
    CHECK(strstr(log, "ran mondays") == NULL);
    free(log);
}

TEST_TIMEOUT(e2e_jobs_failures_overlaps_and_cli, 120)
{
    char out[800];
    snprintf(out, sizeof out, "%s/wasm/jobs.wasm", depot());
    fx_build_component("jobs_behaviour", out);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    sleep(4);
    CHECK_EQ(th_server_stop(&s), 0);

    /* every second: a healthy job runs each time */
    CHECK(count("SELECT count(*) FROM _job_runs WHERE job = 'tick' AND ok = 1") >= 2);
    /* a throwing job is recorded as failed, with its message and JS stack */
    CHECK(count("SELECT count(*) FROM _job_runs WHERE job = 'boom' AND ok = 0") >= 2);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'boom' AND ok = 1"), 0);
    char *err = text("SELECT error FROM _job_runs WHERE job = 'boom' LIMIT 1");
    CHECK_CONTAINS(err, "Error: job exploded");
    CHECK_CONTAINS(err, "at explode");
    free(err);
    /* a 2.5 s job due every second: the runs due while it is going are skipped */
    long long slow = count("SELECT count(*) FROM _job_runs WHERE job = 'slow'");
    CHECK(slow >= 1 && slow <= 2);
    char *log = th_server_stderr(&s);
    CHECK_CONTAINS(log, "job 'slow' of jobs.wasm is still running; skipping");
    CHECK_CONTAINS(log, "job 'boom' of jobs.wasm failed after");
    free(log);

    /* trail jobs list: name, schedule, next run, last result */
    char *o, *e;
    const char *list[] = {"jobs", "list", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(list, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "tick");
    CHECK_CONTAINS(o, "* * * * * *");
    CHECK_CONTAINS(o, "ok at ");
    CHECK_CONTAINS(o, "FAILED at ");
    CHECK_CONTAINS(o, "job exploded");
    free(o);
    free(e);

    /* trail jobs history: the last runs, newest first; one node's runs name no node */
    const char *hist[] = {"jobs", "history", "tick", "--limit", "2", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(hist, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "TRIGGER");
    CHECK_EQ(occurrences(o, "ok at "), 2);
    CHECK_CONTAINS(o, "schedule");
    CHECK(strstr(o, "on node") == NULL);
    free(o);
    free(e);
    const char *hist_bad[] = {"jobs", "history", "--limit", "0", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(hist_bad, 60000, &o, &e), 2);
    CHECK_CONTAINS(e, "--limit takes a number from 1 to 10000");
    free(o);
    free(e);

    /* trail jobs run NAME: once, now, recorded as manual */
    const char *run_tick[] = {"jobs", "run", "tick", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(run_tick, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "job 'tick' of jobs.wasm: ok");
    free(o);
    free(e);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'tick' AND trigger = 'manual' AND "
                   "ok = 1"),
             1);
    const char *run_slow[] = {"jobs", "run", "slow", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(run_slow, 60000, &o, &e), 0); /* waits for its timer */
    free(o);
    free(e);
    const char *run_boom[] = {"jobs", "run", "jobs.wasm:boom", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(run_boom, 60000, &o, &e), 1);
    CHECK_CONTAINS(e, "job exploded");
    free(o);
    free(e);
    const char *run_none[] = {"jobs", "run", "nope", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(run_none, 60000, &o, &e), 1);
    CHECK_CONTAINS(e, "no job named 'nope'");
    free(o);
    free(e);
}

TEST_TIMEOUT(e2e_jobs_daily_fires_at_midnight_in_the_configured_zone, 120)
{
    char out[800], cfg[800];
    snprintf(out, sizeof out, "%s/wasm/jobs.wasm", depot());
    fx_build_component("jobs_reference", out);
    snprintf(cfg, sizeof cfg, "%s/config.textproto", depot());
    const char *text = "jobs { time_zone: \"Europe/Berlin\" }\n";
    CHECK_EQ(th_write_file(cfg, text, strlen(text)), 0);
    /* 2026-11-25 22:59:58 UTC is 23:59:58 in Berlin (CET): two seconds to its midnight, while
     * in UTC it is nowhere near midnight. Wednesday, so the weekly job must not fire. */
    setenv("TRAIL_SCHEDULER_START", "1795647598", 1);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot(), NULL), 0);
    sleep(4);
    CHECK_EQ(th_server_stop(&s), 0);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'every-day' AND ok = 1"), 1);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'every-hour' AND ok = 1"), 1);
    CHECK_EQ(count("SELECT count(*) FROM _job_runs WHERE job = 'every-week'"), 0);
    /* and `trail jobs list` shows times in that zone */
    char *o, *e;
    const char *list[] = {"jobs", "list", "--data-dir", depot(), NULL};
    CHECK_EQ(th_run(list, 60000, &o, &e), 0);
    CHECK_CONTAINS(o, "(times in Europe/Berlin)");
    free(o);
    free(e);
}
