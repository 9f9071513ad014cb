/* cli/cmd_jobs.c: `trail jobs list` (name, schedule, next run, last result) and `trail jobs run
 * NAME` (one run now, recorded like a scheduled one).
 *
 * DESIGN: `jobs run` asks the server running on the data directory first, through its control
 * socket (server/server.h), so the job runs in that server: on a worker's isolate, with its state,
 * its log and its database connection. Only when no server runs does the job run here, in an
 * isolate of this process, and the command says so. */
#include "cli/cli_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "server/server.h"
#include "component/component.h"
#include "config/config.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "kv/kv.h"
#include "loop/loop.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: trail jobs <command> [--data-dir DIR]\n\n"
                 "Commands:\n"
                 "  list        the jobs of the installed components: schedule, next run, last "
                 "result\n"
                 "  run NAME    run a job once now (NAME or COMPONENT:NAME): in the server\n"
                 "              running on the data directory, or here when none runs\n\n"
                 "Options:\n"
                 "  --data-dir DIR   the data directory (default ./traildepot)\n");
}

typedef struct jobs_env {
    cfg c;
    db_conn *db;
    comp_set *set;
    cron_tz *tz;
} jobs_env;

static void env_free(jobs_env *e)
{
    comp_set_free(e->set);
    db_close(e->db);
    cron_tz_free(e->tz);
    cfg_deinit(&e->c);
}

/* Config, database (migrated), time zone and components of data_dir. Prints errors. */
static int env_open(const char *data_dir, jobs_env *e)
{
    memset(e, 0, sizeof *e);
    tr_error err = {0};
    cfg_init_defaults(&e->c);
    char *cfg_path = tr_asprintf("%s/config.textproto", data_dir);
    char *db_path = tr_asprintf("%s/data/main.db", data_dir);
    char *mig = tr_asprintf("%s/migrations", data_dir);
    char *wasm = tr_asprintf("%s/wasm", data_dir);
    int rc = db_datadir_init(data_dir, cfg_default_text(), &err);
    if (rc == 0) {
        rc = cfg_load_file(cfg_path, &e->c, &err);
        if (rc == -ENOENT) rc = 0;
    }
    if (rc == 0) rc = cron_tz_load(e->c.jobs.time_zone, &e->tz, &err);
    if (rc == 0) rc = db_open(db_path, &e->db, &err);
    if (rc == 0) rc = db_migrate(e->db, mig, &err);
    if (rc == 0) rc = job_store_init(e->db, &err);
    comp_limits lim = {(size_t)e->c.runtime.memory_limit_mb << 20, e->c.runtime.cpu_budget_ms,
                       e->c.runtime.deadline_ms};
    if (rc == 0) rc = comp_set_load_dir(wasm, &lim, &e->set, &err);
    if (rc < 0) fprintf(stderr, "trail jobs: %s\n", err.msg);
    tr_free(cfg_path);
    tr_free(db_path);
    tr_free(mig);
    tr_free(wasm);
    if (rc < 0) env_free(e);
    return rc;
}

static void fmt_time(int64_t unix_s, const cron_tz *tz, char *out, size_t cap)
{
    if (unix_s < 0) {
        snprintf(out, cap, "never");
        return;
    }
    time_t t = (time_t)(unix_s + cron_tz_offset(tz, unix_s));
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static int cmd_list(jobs_env *e)
{
    size_t total = 0;
    for (size_t i = 0; i < comp_set_count(e->set); i++)
        total += comp_module_njobs(comp_set_module(e->set, i));
    if (total == 0) {
        printf("No jobs: no installed component defines jobHandlers.\n");
        return 0;
    }
    printf("%-24s %-24s %-16s %-21s %s\n", "NAME", "COMPONENT", "SCHEDULE", "NEXT RUN",
           "LAST RESULT");
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_handle(e->db),
                       "SELECT started_at, duration_ms, ok, error FROM _job_runs WHERE job = ? "
                       "AND component = ? ORDER BY started_at DESC, id DESC LIMIT 1",
                       -1, &st, NULL);
    int64_t now = tr_wall_ms() / 1000;
    for (size_t i = 0; i < comp_set_count(e->set); i++) {
        const comp_module *m = comp_set_module(e->set, i);
        for (size_t j = 0; j < comp_module_njobs(m); j++) {
            const comp_job *job = comp_module_job(m, j);
            char next[64], last[600] = "never run";
            fmt_time(cron_next(&job->cron, e->tz, now), e->tz, next, sizeof next);
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, job->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, comp_module_name(m), -1, SQLITE_STATIC);
            if (st && sqlite3_step(st) == SQLITE_ROW) {
                char when[64];
                fmt_time(sqlite3_column_int64(st, 0) / 1000, e->tz, when, sizeof when);
                if (sqlite3_column_type(st, 2) == SQLITE_NULL) {
                    snprintf(last, sizeof last, "running since %s", when);
                } else if (sqlite3_column_int(st, 2)) {
                    snprintf(last, sizeof last, "ok at %s (%lld ms)", when,
                             (long long)sqlite3_column_int64(st, 1));
                } else {
                    const char *er = (const char *)sqlite3_column_text(st, 3);
                    snprintf(last, sizeof last, "FAILED at %s: %.*s", when,
                             er ? (int)strcspn(er, "\n") : 0, er ? er : "");
                }
            }
            printf("%-24s %-24s %-16s %-21s %s\n", job->name, comp_module_name(m), job->schedule,
                   next, last);
        }
    }
    sqlite3_finalize(st);
    printf("(times in %s)\n", cron_tz_name(e->tz));
    return 0;
}

typedef struct run_result {
    bool finished;
    int rc;
    char msg[1024];
    loop *l;
} run_result;

static void on_run_done(void *ud, int rc, const tr_error *err)
{
    run_result *r = ud;
    r->finished = true;
    r->rc = rc;
    if (err) snprintf(r->msg, sizeof r->msg, "%s", err->msg);
    if (r->l) loop_stop(r->l);
}

static int cmd_run(jobs_env *e, const char *name)
{
    tr_error err = {0};
    comp_module *m;
    size_t job;
    if (job_find(e->set, name, &m, &job, &err) < 0) {
        fprintf(stderr, "trail jobs: %s\n", err.msg);
        return 1;
    }
    loop *l = NULL;
    if (loop_new(&l) < 0) {
        fprintf(stderr, "trail jobs: cannot create an event loop\n");
        return 1;
    }
    guest_env genv;
    guest_env_init(&genv, l, e->db, NULL);
    guest_fetch_opts fetch = server_fetch_opts(&e->c.fetch);
    genv.fetch_opts = &fetch; /* the same fetch { ... } policy as `trail run` */
    /* a store of its own: a running server's store lives in that server's memory */
    genv.kv = kv_store_new((size_t)e->c.kv.max_mb << 20);
    comp_worker *w = NULL;
    int status = 1;
    if (comp_worker_new(e->set, &genv, &w, &err) < 0) {
        fprintf(stderr, "trail jobs: %s\n", err.msg);
        goto out;
    }
    run_result r = {.l = NULL};
    job_run_here(m, job, "manual", e->c.jobs.deadline_ms, on_run_done, &r);
    if (!r.finished) {
        r.l = l;
        loop_run(l);
    }
    if (r.rc == 0) {
        printf("job '%s' of %s: ok (ran in this process)\n", comp_module_job(m, job)->name,
               comp_module_name(m));
        status = 0;
    } else {
        fprintf(stderr, "trail jobs: job '%s' of %s failed: %s\n", comp_module_job(m, job)->name,
                comp_module_name(m), r.msg);
    }
out:
    comp_worker_free(w);
    kv_store_free(genv.kv);
    guest_env_deinit(&genv);
    loop_free(l);
    return status;
}

#define NO_SERVER (-1)

/* Runs the job in the server on data_dir: the exit status, or NO_SERVER when none runs. */
static int run_in_server(const char *data_dir, const char *name)
{
    if (strchr(name, '\n') != NULL) {
        fprintf(stderr, "trail jobs: a job name has no line breaks\n");
        return 2;
    }
    char *req = tr_asprintf("run-job %s", name);
    bool ok;
    tr_buf text = TR_BUF_INIT;
    tr_error err = {0};
    int rc = server_control_call(data_dir, req, &ok, &text, &err);
    tr_free(req);
    int status;
    if (rc == TR_ENOTFOUND) {
        status = NO_SERVER;
    } else if (rc < 0) {
        fprintf(stderr, "trail jobs: %s\n", err.msg);
        status = 1;
    } else if (ok) {
        printf("%s\n", text.data ? text.data : "");
        status = 0;
    } else {
        fprintf(stderr, "trail jobs: %s\n", text.data ? text.data : "");
        status = 1;
    }
    tr_buf_free(&text);
    return status;
}

int cli_jobs(int argc, char **argv)
{
    const char *data_dir = "traildepot";
    const char *rest[4];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (cli__opt(argc, argv, &i, "--data-dir", &data_dir)) continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "trail jobs: unknown option '%s' (see `trail jobs --help`)\n", argv[i]);
            return 2;
        } else if (nrest < 4) {
            rest[nrest++] = argv[i];
        }
    }
    static const char *const names[] = {"list", "run", NULL};
    if (nrest == 0) {
        fprintf(stderr, "trail jobs: missing command\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(rest[0], "list") != 0 && strcmp(rest[0], "run") != 0)
        return cli__unknown_command("trail jobs", rest[0], names);
    bool list = strcmp(rest[0], "list") == 0;
    if (list && nrest != 1) {
        fprintf(stderr, "trail jobs list: takes no arguments (see `trail jobs --help`)\n");
        return 2;
    }
    if (!list && nrest != 2) {
        fprintf(stderr, "trail jobs run: expected one job name (see `trail jobs --help`)\n");
        return 2;
    }
    if (!list) {
        int rc = run_in_server(data_dir, rest[1]);
        if (rc != NO_SERVER) return rc;
        fprintf(stderr, "trail jobs: no server is running on %s; running '%s' in this process\n",
                data_dir, rest[1]);
    }
    jobs_env e;
    if (env_open(data_dir, &e) < 0) return 1;
    int status = list ? cmd_list(&e) : cmd_run(&e, rest[1]);
    env_free(&e);
    return status;
}
