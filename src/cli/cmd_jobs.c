/* cli/cmd_jobs.c: `trail jobs list` (name, schedule, next run, last result), `trail jobs history`
 * (the last runs) and `trail jobs run NAME` (one run now, recorded like a scheduled one).
 *
 * DESIGN: `jobs run` asks the server running on the data directory first, through its control
 * socket (server/server.h), so the job runs in that server: on a worker's isolate, with its state,
 * its log and its database connection. Only when no server runs does the job run here, in an
 * isolate of this process, and the command says so.
 *
 * A data directory of a cluster node (CLUSTER_ID_FILE) keeps its runs in the cluster's _job_runs:
 * `list` and `history` read them through the leader (found through the node's own address and
 * the configured cluster.join) and show the node that ran each, and a run made here is recorded
 * there with this node's id. */
#include "cli/cli_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "cluster/cluster.h"
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
                 "  history [NAME]\n"
                 "              the last runs (of one job): start, result, trigger and, in a\n"
                 "              cluster, the node that ran each\n"
                 "  run NAME    run a job once now (NAME or COMPONENT:NAME): in the server\n"
                 "              running on the data directory, or here when none runs\n\n"
                 "Options:\n"
                 "  --data-dir DIR   the data directory (default ./traildepot)\n"
                 "  --limit N        history: how many runs (default 20, at most 10000)\n");
}

/* The most cluster members the command asks for the leader. */
#define JOBS_MAX_ADDRS 16
/* How long the command looks for the cluster's leader. */
#define JOBS_LEADER_WAIT_MS 10000

typedef struct jobs_env {
    cfg c;
    db_conn *db;
    comp_set *set;
    cron_tz *tz;
    uint64_t node_id; /* cluster mode: this data directory's node; 0: single node */
    char *node_addr;  /* its address (owned) */
    dq_client *dq;    /* cluster mode: to the leader, opened on first use */
    uint32_t dq_db;
} jobs_env;

static void env_free(jobs_env *e)
{
    dq_client_close(e->dq);
    tr_free(e->node_addr);
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
    if (rc == 0) {
        rc = cluster_id_read(data_dir, &e->node_id, &e->node_addr, &err);
        if (rc == -ENOENT) rc = 0; /* a single node */
    }
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

/* One row of _job_runs; texts owned (NULL for SQL NULL). */
typedef struct run_row {
    char *job, *component, *trigger, *error, *node;
    int64_t started_ms;
    int64_t duration_ms; /* -1: NULL (running) */
    int ok;              /* -1: NULL (running) */
} run_row;

static void rows_free(run_row *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tr_free(r[i].job);
        tr_free(r[i].component);
        tr_free(r[i].trigger);
        tr_free(r[i].error);
        tr_free(r[i].node);
    }
    tr_free(r);
}

static char *dq_text_dup(const dq_value *v)
{
    return v->type == DQ_TEXT ? tr_strndup(v->p, v->n) : NULL;
}

static char *sql_text_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? tr_strdup((const char *)t) : NULL;
}

/* The last `limit` runs, newest first, of job (NULL: all) of component (NULL: any), from this
 * node's file or, in cluster mode, the cluster's table through the leader. Prints errors. */
static int fetch_runs(jobs_env *e, const char *job, const char *component, int limit, run_row **out,
                      size_t *n)
{
    tr_buf sql = TR_BUF_INIT;
    tr_buf_printf(&sql,
                  "SELECT job, component, trigger, started_at, duration_ms, ok, error, %s "
                  "FROM _job_runs WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR "
                  "component = ?2) ORDER BY started_at DESC, id DESC LIMIT ?3",
                  e->node_id ? "node" : "NULL");
    run_row *rows = NULL;
    size_t count = 0;
    int rc = 0;
    tr_error err = {0};
    if (e->node_id == 0) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db_handle(e->db), sql.data, -1, &st, NULL) != SQLITE_OK) {
            rc = tr_error_set(&err, TR_ESQL, "%s", sqlite3_errmsg(db_handle(e->db)));
        } else {
            sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, component, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, limit);
            rows = tr_calloc((size_t)limit ? (size_t)limit : 1, sizeof *rows);
            while (count < (size_t)limit && sqlite3_step(st) == SQLITE_ROW) {
                run_row *r = &rows[count++];
                r->job = sql_text_dup(st, 0);
                r->component = sql_text_dup(st, 1);
                r->trigger = sql_text_dup(st, 2);
                r->started_ms = sqlite3_column_int64(st, 3);
                r->duration_ms =
                    sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
                r->ok = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5);
                r->error = sql_text_dup(st, 6);
                r->node = sql_text_dup(st, 7);
            }
        }
        sqlite3_finalize(st);
    } else {
        if (e->dq == NULL) {
            const char *addrs[JOBS_MAX_ADDRS];
            size_t naddrs = 0;
            addrs[naddrs++] = e->node_addr;
            for (size_t i = 0; i < e->c.cluster.join_len && naddrs < JOBS_MAX_ADDRS; i++)
                addrs[naddrs++] = e->c.cluster.join[i];
            rc = dq_client_open_leader(addrs, naddrs, NULL, JOBS_LEADER_WAIT_MS, &e->dq, &err);
            if (rc == 0) rc = dq_open(e->dq, GUEST_CLUSTER_DB, &e->dq_db, &err);
            if (rc < 0)
                tr_error_set(&err, rc, "cannot reach the cluster's leader through %s: %s",
                             e->node_addr, err.msg);
        }
        dq_value p[3] = {{.type = DQ_NULL}, {.type = DQ_NULL}, {.type = DQ_INTEGER, .i = limit}};
        if (job) p[0] = (dq_value){.type = DQ_TEXT, .p = job, .n = strlen(job)};
        if (component) p[1] = (dq_value){.type = DQ_TEXT, .p = component, .n = strlen(component)};
        dq_rows res = DQ_ROWS_INIT;
        if (rc == 0) rc = dq_query_sql(e->dq, e->dq_db, sql.data, p, 3, &res, &err);
        if (rc == 0 && res.ncols == 8) {
            rows = tr_calloc(res.nrows ? res.nrows : 1, sizeof *rows);
            for (size_t i = 0; i < res.nrows; i++) {
                const dq_value *v = &res.vals[i * 8];
                run_row *r = &rows[count++];
                r->job = dq_text_dup(&v[0]);
                r->component = dq_text_dup(&v[1]);
                r->trigger = dq_text_dup(&v[2]);
                r->started_ms = v[3].type == DQ_INTEGER ? v[3].i : 0;
                r->duration_ms = v[4].type == DQ_INTEGER ? v[4].i : -1;
                r->ok = v[5].type == DQ_INTEGER ? (int)v[5].i : -1;
                r->error = dq_text_dup(&v[6]);
                r->node = dq_text_dup(&v[7]);
            }
        }
        dq_rows_free(&res);
    }
    tr_buf_free(&sql);
    if (rc < 0) {
        /* No run recorded yet in a cluster whose table is still to be made reads as none. */
        if (strstr(err.msg, "no such table") == NULL) {
            fprintf(stderr, "trail jobs: reading _job_runs: %s\n", err.msg);
            rows_free(rows, count);
            return rc;
        }
        rows_free(rows, count);
        rows = NULL;
        count = 0;
    }
    *out = rows;
    *n = count;
    return 0;
}

/* "ok at TIME (N ms)", "FAILED at TIME: first line", "running since TIME", then " on node ID". */
static void describe(const jobs_env *e, const run_row *r, char *out, size_t cap)
{
    char when[64];
    fmt_time(r->started_ms / 1000, e->tz, when, sizeof when);
    int n;
    if (r->ok < 0)
        n = snprintf(out, cap, "running since %s", when);
    else if (r->ok)
        n = snprintf(out, cap, "ok at %s (%lld ms)", when, (long long)r->duration_ms);
    else
        n = snprintf(out, cap, "FAILED at %s: %.*s", when,
                     r->error ? (int)TR_MIN(strcspn(r->error, "\n"), 300) : 0,
                     r->error ? r->error : "");
    if (r->node && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " on node %s", r->node);
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
    int64_t now = tr_wall_ms() / 1000;
    for (size_t i = 0; i < comp_set_count(e->set); i++) {
        const comp_module *m = comp_set_module(e->set, i);
        for (size_t j = 0; j < comp_module_njobs(m); j++) {
            const comp_job *job = comp_module_job(m, j);
            char next[64], last[700] = "never run";
            fmt_time(cron_next(&job->cron, e->tz, now), e->tz, next, sizeof next);
            run_row *r;
            size_t n;
            if (fetch_runs(e, job->name, comp_module_name(m), 1, &r, &n) < 0) return 1;
            if (n > 0) describe(e, &r[0], last, sizeof last);
            rows_free(r, n);
            printf("%-24s %-24s %-16s %-21s %s\n", job->name, comp_module_name(m), job->schedule,
                   next, last);
        }
    }
    printf("(times in %s%s)\n", cron_tz_name(e->tz),
           e->node_id ? "; runs of the whole cluster" : "");
    return 0;
}

static int cmd_history(jobs_env *e, const char *name, int limit)
{
    const char *job = NULL, *component = NULL;
    char *comp_part = NULL;
    if (name) {
        const char *colon = strrchr(name, ':');
        job = colon ? colon + 1 : name;
        if (colon) component = comp_part = tr_strndup(name, (size_t)(colon - name));
    }
    run_row *r;
    size_t n;
    int rc = fetch_runs(e, job, component, limit, &r, &n);
    tr_free(comp_part);
    if (rc < 0) return 1;
    if (n == 0) {
        printf("No runs recorded%s%s.\n", name ? " of " : "", name ? name : "");
        rows_free(r, n);
        return 0;
    }
    printf("%-24s %-24s %-9s %s\n", "NAME", "COMPONENT", "TRIGGER", "RESULT");
    for (size_t i = 0; i < n; i++) {
        char res[700];
        describe(e, &r[i], res, sizeof res);
        printf("%-24s %-24s %-9s %s\n", r[i].job ? r[i].job : "",
               r[i].component ? r[i].component : "", r[i].trigger ? r[i].trigger : "", res);
    }
    printf("(times in %s%s)\n", cron_tz_name(e->tz),
           e->node_id ? "; runs of the whole cluster" : "");
    rows_free(r, n);
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
    job_cluster *jc = NULL;
    int status = 1;
    if (comp_worker_new(e->set, &genv, &w, &err) < 0) {
        fprintf(stderr, "trail jobs: %s\n", err.msg);
        goto out;
    }
    run_result r = {.l = NULL};
    job_run_opts o = {"manual", e->c.jobs.deadline_ms, NULL, 0};
    if (e->node_id) {
        /* A node's run is recorded in the cluster, with this node's id. */
        const char *addrs[JOBS_MAX_ADDRS];
        size_t naddrs = 0;
        addrs[naddrs++] = e->node_addr;
        for (size_t i = 0; i < e->c.cluster.join_len && naddrs < JOBS_MAX_ADDRS; i++)
            addrs[naddrs++] = e->c.cluster.join[i];
        if (job_cluster_start(addrs, naddrs, e->node_id, &jc, &err) < 0) {
            fprintf(stderr, "trail jobs: %s\n", err.msg);
            goto out;
        }
        o.cluster = jc;
    }
    job_run_here(m, job, &o, on_run_done, &r);
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
    job_cluster_free(jc); /* writes the run's record first */
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
    const char *limit_s = NULL;
    const char *rest[4];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (cli__opt(argc, argv, &i, "--data-dir", &data_dir)) continue;
        if (cli__opt(argc, argv, &i, "--limit", &limit_s)) continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "trail jobs: unknown option '%s' (see `trail jobs --help`)\n", argv[i]);
            return 2;
        } else if (nrest < 4) {
            rest[nrest++] = argv[i];
        }
    }
    static const char *const names[] = {"list", "history", "run", NULL};
    if (nrest == 0) {
        fprintf(stderr, "trail jobs: missing command\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(rest[0], "list") != 0 && strcmp(rest[0], "run") != 0 &&
        strcmp(rest[0], "history") != 0)
        return cli__unknown_command("trail jobs", rest[0], names);
    if (strcmp(rest[0], "history") == 0) {
        long limit = 20;
        if (limit_s) {
            char *end;
            errno = 0;
            limit = strtol(limit_s, &end, 10);
            if (errno || end == limit_s || *end || limit < 1 || limit > 10000) {
                fprintf(stderr,
                        "trail jobs history: --limit takes a number from 1 to 10000, "
                        "not '%s'\n",
                        limit_s);
                return 2;
            }
        }
        if (nrest > 2) {
            fprintf(stderr, "trail jobs history: takes at most one job name (see `trail jobs "
                            "--help`)\n");
            return 2;
        }
        jobs_env e;
        if (env_open(data_dir, &e) < 0) return 1;
        int status = cmd_history(&e, nrest == 2 ? rest[1] : NULL, (int)limit);
        env_free(&e);
        return status;
    }
    if (limit_s) {
        fprintf(stderr, "trail jobs %s: --limit is an option of `trail jobs history`\n", rest[0]);
        return 2;
    }
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
