/* jobs/runner.c: one job run on the calling worker: the call into the component, the record in
 * _job_runs (the worker's database, or the cluster's through jobs/cluster.c), and the log line. */
#include "jobs/jobs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"

typedef struct run_ctx {
    comp_module *mod; /* ref held */
    size_t job;
    db_conn *db;          /* NULL in cluster mode */
    job_cluster *cluster; /* cluster mode: where the run is recorded */
    const char *trigger;  /* static */
    sqlite3_int64 row;    /* 0: not recorded */
    int64_t started_ms;
    uint64_t started_ns;
    job_run_done_fn done;
    void *ud;
} run_ctx;

int job_store_init(db_conn *db, tr_error *err)
{
    static const char sql[] =
        "CREATE TABLE IF NOT EXISTS _job_runs (\n"
        "  id          INTEGER PRIMARY KEY,\n"
        "  job         TEXT NOT NULL,\n"
        "  component   TEXT NOT NULL,\n"
        "  trigger     TEXT NOT NULL,\n"    /* 'schedule' or 'manual' */
        "  started_at  INTEGER NOT NULL,\n" /* Unix milliseconds */
        "  duration_ms INTEGER,\n"          /* NULL while running */
        "  ok          INTEGER,\n"          /* NULL while running, then 1 or 0 */
        "  error       TEXT\n"              /* message and JS stack of a failed run */
        ") STRICT;\n"
        "CREATE INDEX IF NOT EXISTS _job_runs__job ON _job_runs (job, started_at);\n";
    char *msg = NULL;
    if (sqlite3_exec(db_handle(db), sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = tr_error_set(err, TR_ESQL, "cannot create _job_runs: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static sqlite3_int64 record_start(db_conn *db, const char *job, const char *component,
                                  const char *trigger, int64_t started_ms)
{
    if (db == NULL) return 0;
    sqlite3 *h = db_handle(db);
    sqlite3_stmt *st = NULL;
    sqlite3_int64 row = 0;
    if (sqlite3_prepare_v2(h,
                           "INSERT INTO _job_runs (job, component, trigger, started_at) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, component, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, trigger, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, started_ms);
        if (sqlite3_step(st) == SQLITE_DONE) row = sqlite3_last_insert_rowid(h);
    }
    if (row == 0) tr_log_warn("job '%s': cannot record the run: %s", job, sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return row;
}

static void record_end(db_conn *db, sqlite3_int64 row, int64_t duration_ms, bool ok,
                       const char *error)
{
    if (db == NULL || row == 0) return;
    sqlite3 *h = db_handle(db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h,
                           "UPDATE _job_runs SET duration_ms = ?, ok = ?, error = ? WHERE id = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, duration_ms);
        sqlite3_bind_int(st, 2, ok);
        if (error)
            sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 4, row);
        if (sqlite3_step(st) != SQLITE_DONE)
            tr_log_warn("cannot record the end of a job run: %s", sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
}

/* The end of a run, where it is recorded. */
static void record(const run_ctx *c, int64_t duration_ms, bool ok, const char *error)
{
    if (c->cluster == NULL) {
        record_end(c->db, c->row, duration_ms, ok, error);
    } else if (strcmp(c->trigger, "schedule") == 0) {
        if (c->row > 0) job_cluster_record_end(c->cluster, c->row, duration_ms, ok, error);
    } else {
        job_cluster_record_manual(c->cluster, comp_module_name(c->mod),
                                  comp_module_job(c->mod, c->job)->name, c->started_ms, duration_ms,
                                  ok, error);
    }
}

static void on_done(void *ud, int rc, const tr_error *err)
{
    run_ctx *c = ud;
    const comp_job *j = comp_module_job(c->mod, c->job);
    int64_t ms = (int64_t)((tr_now_ns() - c->started_ns) / 1000000u);
    if (rc == 0) {
        tr_log_info("job '%s' of %s finished in %lld ms", j->name, comp_module_name(c->mod),
                    (long long)ms);
        record(c, ms, true, NULL);
    } else {
        const char *why = err && err->msg[0] ? err->msg : tr_strerror(rc);
        tr_log_error("job '%s' of %s failed after %lld ms: %s", j->name, comp_module_name(c->mod),
                     (long long)ms, why);
        record(c, ms, false, why);
    }
    if (c->done) c->done(c->ud, rc, err);
    comp_module_unref(c->mod);
    tr_free(c);
}

void job_run_here(comp_module *m, size_t job, const job_run_opts *o, job_run_done_fn done, void *ud)
{
    const char *trigger = strcmp(o->trigger, "schedule") == 0 ? "schedule" : "manual";
    comp_worker *w = comp_worker_current();
    comp_instance *ci = w ? comp_worker_find(w, m) : NULL;
    if (ci == NULL) {
        tr_error e;
        tr_error_set(&e, TR_ENOTFOUND, "component %s is no longer loaded", comp_module_name(m));
        /* A claimed slot is not left "running" in the cluster. */
        if (o->cluster && o->claimed_row > 0)
            job_cluster_record_end(o->cluster, o->claimed_row, 0, false, e.msg);
        if (done) done(ud, TR_ENOTFOUND, &e);
        return;
    }
    run_ctx *c = tr_calloc(1, sizeof *c);
    c->mod = comp_module_ref(m);
    c->job = job;
    c->cluster = o->cluster;
    c->db = o->cluster ? NULL : comp_worker_env(w)->db;
    c->trigger = trigger;
    c->done = done;
    c->ud = ud;
    c->started_ms = tr_wall_ms();
    c->started_ns = tr_now_ns();
    if (o->cluster)
        c->row = o->claimed_row; /* claimed in the cluster before the run was handed here */
    else
        c->row = record_start(c->db, comp_module_job(m, job)->name, comp_module_name(m), trigger,
                              c->started_ms);
    if (o->cluster)
        tr_log_info("job '%s' of %s started (%s, node %s)", comp_module_job(m, job)->name,
                    comp_module_name(m), trigger, job_cluster_node(o->cluster));
    else
        tr_log_info("job '%s' of %s started (%s)", comp_module_job(m, job)->name,
                    comp_module_name(m), trigger);
    comp_instance_run_job(ci, job, o->deadline_ms, on_done, c);
}

int job_find(const comp_set *set, const char *name, comp_module **m, size_t *job, tr_error *err)
{
    const char *colon = strrchr(name, ':');
    size_t found = 0;
    for (size_t i = 0; i < comp_set_count(set); i++) {
        comp_module *mod = comp_set_module(set, i);
        if (colon && (strlen(comp_module_name(mod)) != (size_t)(colon - name) ||
                      strncmp(comp_module_name(mod), name, (size_t)(colon - name)) != 0))
            continue;
        const char *jn = colon ? colon + 1 : name;
        for (size_t j = 0; j < comp_module_njobs(mod); j++) {
            if (strcmp(comp_module_job(mod, j)->name, jn) != 0) continue;
            if (found++ == 0) {
                *m = mod;
                *job = j;
            }
        }
    }
    if (found == 1) return 0;
    if (found == 0)
        return tr_error_set(err, TR_ENOTFOUND, "no job named '%s' (see `trail jobs list`)", name);
    return tr_error_set(err, TR_ECONFLICT,
                        "%zu components have a job named '%s'; name one as COMPONENT:NAME", found,
                        name);
}
