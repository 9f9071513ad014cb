/* cli/reload.h: hot reload of the components of `trail run` (see reload.c). */
#ifndef TRAIL_CLI_RELOAD_H
#define TRAIL_CLI_RELOAD_H

#include "base/base.h"
#include "component/host.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "worker/worker.h"

typedef struct reloader_opts {
    const char *wasm_dir;
    comp_limits limits;
    wk_worker **workers; /* borrowed: every worker, started */
    int nworkers;
    job_sched *sched;    /* rescheduled after each switch; may be NULL */
    /* Registers the routes that are not components' (the Record APIs) on each new router;
     * may be NULL. routes_ud is borrowed and must outlive the reloader. */
    int (*routes_fn)(http_router *r, void *ud, tr_error *err);
    void *routes_ud;
} reloader_opts;

typedef struct reloader reloader;

/* Starts watching. Takes ownership of set and router (what the workers serve now); the paths of
 * set's modules must be under wasm_dir. */
int reloader_start(const reloader_opts *o, comp_set *set, http_router *router, reloader **out,
                   tr_error *err);
/* Thread: any. Reloads now (SIGHUP). */
void reloader_trigger(reloader *r);
/* Stops the thread. The workers may still use the current set and router: free them with
 * reloader_free() after the workers have stopped. */
void reloader_stop(reloader *r);
void reloader_free(reloader *r); /* NULL is a no-op */

#endif
