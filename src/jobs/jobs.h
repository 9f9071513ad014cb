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

/* Called on the scheduler thread when job `job` of m is due. It must make the run happen and
 * call job_sched_finished(s, token) when it ends (from any thread). m is borrowed: take a ref
 * to keep it. */
typedef void (*job_launch_fn)(void *ud, comp_module *m, size_t job, uint64_t token);

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

/* Creates the _job_runs table where missing. */
int job_store_init(struct db_conn *db, tr_error *err);

/* How a run ended, for whoever asked for it. */
typedef void (*job_run_done_fn)(void *ud, int rc, const tr_error *err);

/* Runs job `job` of m on the calling thread's component instance (comp_worker_current()),
 * records it in _job_runs through the instance's database connection, logs a failure, then
 * calls done (may be NULL). trigger is "schedule" or "manual". */
void job_run_here(comp_module *m, size_t job, const char *trigger, uint64_t deadline_ms,
                  job_run_done_fn done, void *ud);

/* Finds a job by name: "NAME" or "COMPONENT:NAME" when the name alone is ambiguous. */
int job_find(const comp_set *set, const char *name, comp_module **m, size_t *job,
             tr_error *err);

#endif
