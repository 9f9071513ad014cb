/* jobs/jobs.h: running the components' scheduled jobs.
 *
 * DESIGN: one scheduler thread keeps, for every job of every loaded component, the next time its
 * cron schedule fires (in the configured time zone) and sleeps until the earliest. When a job is
 * due it hands the run to one worker (launch callback, round-robin by the caller), which runs it
 * on that worker's isolate of the component, so a job runs once, not on every worker. A job
 * whose previous run has not finished is skipped with a warning. Every run is recorded in the
 * database table _job_runs (start, duration, ok or the error with its JS stack) and a failure is
 * logged. Reloads replace the set of jobs; a job that keeps its component and name keeps its
 * running state.
 *
 * In cluster mode (cluster.c) every node schedules every job, and each due run is claimed in the
 * cluster's _job_runs before it runs: the node whose claim commits runs it, the others skip it;
 * the run's result is written to the claimed row, manual runs are recorded with their node. The
 * claims and records are made by a thread of their own, so no worker waits on the network.
 *
 * Thread: job_sched functions from any thread; job_run_here() on a worker (or a thread with a
 * loop, for `trail jobs run`). */
#ifndef TRAIL_JOBS_JOBS_H
#define TRAIL_JOBS_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "component/component.h"
#include "cron/cron.h"

struct db_conn;

typedef struct job_sched job_sched;

/* Called on the scheduler thread when job `job` of m is due at due_s (the schedule's slot, Unix
 * seconds, not the time of the call). It must make the run happen, or decide it does not, and
 * call job_sched_finished(s, token) when it ends (from any thread). m is borrowed: take a ref to
 * keep it. */
typedef void (*job_launch_fn)(void *ud, comp_module *m, size_t job, int64_t due_s, uint64_t token);

int job_sched_start(const cron_tz *tz, job_launch_fn launch, void *ud, job_sched **out,
                    tr_error *err);
/* Schedules the jobs of set (NULL: none) from now on, replacing the previous ones. */
void job_sched_set(job_sched *s, const comp_set *set);
void job_sched_finished(job_sched *s, uint64_t token);
/* Stops the thread: no job is launched any more; runs in progress may still call
 * job_sched_finished(). NULL is a no-op. */
void job_sched_stop(job_sched *s);
/* Stops (if needed) and frees s, once no run in progress can call job_sched_finished(). */
void job_sched_free(job_sched *s);

/* Creates the _job_runs table where missing (one node's: no node, no slot). */
int job_store_init(struct db_conn *db, tr_error *err);

/* ---- cluster mode (cluster.c) ---- */

typedef struct job_cluster job_cluster;

/* The cluster's _job_runs: one node's columns plus due_at (a scheduled run's slot) and node (the
 * id of the node that ran it), and the UNIQUE index on (component, job, due_at) that a claim
 * relies on. Run once through the leader when a node starts (server/cluster_db.c). */
extern const char JOB_CLUSTER_DDL[];

/* Starts the thread that claims and records runs in the cluster's database, through the leader
 * found through any of addresses (copied). node_id is this node's. Errors: -errno (no thread). */
int job_cluster_start(const char *const *addresses, size_t n, uint64_t node_id, job_cluster **out,
                      tr_error *err);
/* This node's id as recorded in _job_runs.node. */
const char *job_cluster_node(const job_cluster *jc);

/* How a claim ended: row > 0 is the claimed row (run it), 0 means do not run it (another node
 * has the slot, or it could not be claimed; the latter is logged). Called on jc's thread. */
typedef void (*job_claim_fn)(void *ud, int64_t row);
/* Claims the run of job of component due at due_s (Unix seconds) for this node; fn is called
 * exactly once, with the outcome. Thread: any; never blocks on the network. */
void job_cluster_claim(job_cluster *jc, const char *component, const char *job, int64_t due_s,
                       job_claim_fn fn, void *ud);
/* The end of the run of claimed row; error NULL when ok. Copies its arguments. Thread: any. */
void job_cluster_record_end(job_cluster *jc, int64_t row, int64_t duration_ms, bool ok,
                            const char *error);
/* A manual run, recorded once it ended. Copies its arguments. Thread: any. */
void job_cluster_record_manual(job_cluster *jc, const char *component, const char *job,
                               int64_t started_ms, int64_t duration_ms, bool ok, const char *error);
/* From now on every claim is answered 0 without asking; returns once no claim's callback runs
 * or is queued (so none is called after it). Records still go on. NULL is a no-op. */
void job_cluster_stop_claims(job_cluster *jc);
/* Writes the queued records (for at most 5 s in all), stops the thread and frees jc. NULL is a
 * no-op. */
void job_cluster_free(job_cluster *jc);

/* ---- one run ---- */

/* How a run ended, for whoever asked for it. */
typedef void (*job_run_done_fn)(void *ud, int rc, const tr_error *err);

typedef struct job_run_opts {
    const char *trigger;  /* "schedule" or "manual" */
    uint64_t deadline_ms; /* of the run */
    job_cluster *cluster; /* cluster mode: the run is recorded there; NULL: in the local file */
    int64_t claimed_row;  /* cluster mode, a scheduled run: the row its claim made */
} job_run_opts;

/* Runs job `job` of m on the calling thread's component instance (comp_worker_current()),
 * records it in _job_runs (through the instance's database connection, or in the cluster,
 * see job_run_opts), logs a failure, then calls done (may be NULL). o is copied. */
void job_run_here(comp_module *m, size_t job, const job_run_opts *o, job_run_done_fn done,
                  void *ud);

/* Finds a job by name: "NAME" or "COMPONENT:NAME" when the name alone is ambiguous. */
int job_find(const comp_set *set, const char *name, comp_module **m, size_t *job,
             tr_error *err);

#endif
