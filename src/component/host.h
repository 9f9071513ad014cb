/* component/host.h: serving components: a loaded component (comp_module: its code and manifest,
 * immutable, shared by all workers) and its per-worker instance (comp_instance: an isolate that
 * handles the component's requests on one worker).
 *
 * DESIGN: a component is loaded and validated once, in a scratch isolate, on the thread that
 * loads it: the engine must match, the module must evaluate, its default export must be made by
 * defineConfig(), and its manifest must hold valid routes and cron schedules. Each worker then
 * creates its own instance from the module. A request is dispatched to the worker's instance;
 * when the handler's promise is still pending after the call and its jobs ran, the request is
 * parked and answered when a timer (or another request) settles it, or when its deadline passes.
 * An instance whose isolate traps or exhausts its memory is replaced by a fresh one; its parked
 * requests are answered 500.
 *
 * Thread: comp_module any (refcounted, immutable); comp_instance owning worker only. */
#ifndef TRAIL_COMPONENT_HOST_H
#define TRAIL_COMPONENT_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "guest/guest.h"
#include "http/http.h"
#include "jobs/cron.h"

typedef struct comp_limits {
    size_t memory_limit;     /* bytes of linear memory per isolate */
    uint64_t cpu_budget_ms;  /* longest synchronous run of guest code per call */
    uint64_t deadline_ms;    /* longest a request may wait for its handler's promise */
} comp_limits;

typedef struct comp_route {
    char *method; /* upper case, or "*" for any method */
    char *path;   /* as written, e.g. "/greet/:name" */
} comp_route;

typedef struct comp_job {
    char *name;
    char *schedule; /* the cron expression as written */
    job_cron cron;
} comp_job;

/* A hook on a Record API's writes (trailbase-wasm/records). */
typedef enum comp_hook_event {
    COMP_HOOK_BEFORE_CREATE,
    COMP_HOOK_AFTER_CREATE,
    COMP_HOOK_BEFORE_UPDATE,
    COMP_HOOK_AFTER_UPDATE,
    COMP_HOOK_BEFORE_DELETE,
    COMP_HOOK_AFTER_DELETE,
} comp_hook_event;

typedef struct comp_record_hook {
    char *api; /* the Record API's name */
    comp_hook_event event;
} comp_record_hook;

typedef struct comp_module {
    _Atomic int refs;
    char *name;        /* for logs: the file's path relative to the wasm directory */
    char *path;        /* the file it was loaded from */
    char version[13];  /* the first 12 hex digits of the file's SHA-256 */
    char sha256[65];   /* the file's SHA-256 (hex), computed once at load (hot reload reuses it) */
    char *js;          /* the bundled ES module */
    size_t js_len;
    comp_route *routes;
    size_t nroutes;
    comp_job *jobs;
    size_t njobs;
    comp_record_hook *hooks;
    size_t nhooks;
    comp_limits limits;
    struct comp_srcmap *srcmap; /* from the trailbase.map section; NULL when there is none */
} comp_module;

/* Loads and validates the component file at path (see DESIGN). name is what logs call it. */
int comp_module_load(const char *path, const char *name, const comp_limits *lim,
                     comp_module **out, tr_error *err);
/* The same, from bytes already read (borrowed). */
int comp_module_load_bytes(const char *bytes, size_t len, const char *path, const char *name,
                           const comp_limits *lim, comp_module **out, tr_error *err);
comp_module *comp_module_ref(comp_module *m);
/* Rewrites positions in the generated code ("component.js:460:13") in err->msg to the original
 * sources the component's source map names ("src/index.ts:5:9"). */
void comp_module_map_error(const comp_module *m, tr_error *err);
/* Makes every stack trace the isolate writes (error.stack, and so console.* of an error and
 * the stacks the host reads) name the original sources through m's source map, from now on;
 * nothing when m has none (component/stacks.c). Call once per isolate, before its code runs.
 * m must outlive the isolate. */
int comp_module_map_stacks(const comp_module *m, jsg_isolate *iso, tr_error *err);
void comp_module_unref(comp_module *m); /* NULL is a no-op */
/* The object made by defineConfig() that trail calls, from the module namespace ns: its default
 * export (`export default defineConfig(...)`) or, without one, its `incomingHandler` export (the
 * reference SDK's form, `export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } =
 * defineConfig(...)`). *out is an owned ref. Errors: TR_EINVAL naming both forms when the module
 * exports neither as an object. */
int comp_module_entry(jsg_isolate *iso, jsg_ref ns, jsg_ref *out, tr_error *err);

typedef struct comp_instance comp_instance;

/* Creates the worker's instance of m. env (the worker's loop, database, filesystem) must
 * outlive it. */
int comp_instance_new(comp_module *m, guest_env *env, comp_instance **out, tr_error *err);
/* Answers the instance's parked requests 503 and frees it. NULL is a no-op. */
void comp_instance_free(comp_instance *ci);

/* Handles req with route `route` of the module (its index in m->routes); completes res now or
 * later (see DESIGN). */
void comp_instance_dispatch(comp_instance *ci, size_t route, const http_request *req,
                            http_response *res);

/* A job run ended: rc is 0 or the failure (TR_EJS with message and stack in err, TR_EINTERRUPTED,
 * TR_ENOMEM, TR_ETRAP, TR_ETIMEDOUT past the deadline, or TR_EINVAL for an unknown job). */
typedef void (*comp_job_done_fn)(void *ud, int rc, const tr_error *err);

/* Runs job `job` (its index in m->jobs) by calling the component's runJob(name); done is called
 * exactly once, possibly before this returns. deadline_ms bounds the run. */
void comp_instance_run_job(comp_instance *ci, size_t job, uint64_t deadline_ms,
                           comp_job_done_fn done, void *ud);

/* Runs record hook `hook` (its index in m->hooks) with the context ctx_json (its JSON text) by
 * calling the component's runRecordHook(index, json), synchronously: the hook may use the
 * database but must settle before the call returns (a pending promise is TR_EINVAL). The JSON
 * text it returns is written into out. Errors: TR_EJS (a throw other than an HttpError, with
 * its message), TR_EINTERRUPTED (CPU budget), TR_ENOMEM, TR_ETRAP (the isolate is then
 * replaced), TR_EINVAL. */
int comp_instance_record_hook(comp_instance *ci, size_t hook, const char *ctx_json, size_t len,
                              tr_buf *out, tr_error *err);

/* Requests and job runs waiting for their promise. */
size_t comp_instance_parked(const comp_instance *ci);

/* The isolate serving requests (for tests and stats); NULL between a trap and the next request. */
jsg_isolate *comp_instance_isolate(comp_instance *ci);

/* ---- the components of a data directory, and their routes ---- */

typedef struct comp_set comp_set;

/* Loads every component under wasm_dir (see comp_scan_dir()). The first that fails stops the
 * load: err names its file. An empty or missing directory gives an empty set. */
int comp_set_load_dir(const char *wasm_dir, const comp_limits *lim, comp_set **out,
                      tr_error *err);
void comp_set_free(comp_set *s); /* NULL is a no-op */
/* A set of the given modules (a ref is taken on each). */
comp_set *comp_set_new(comp_module *const *mods, size_t n);
size_t comp_set_count(const comp_set *s);
comp_module *comp_set_module(const comp_set *s, size_t i);

/* Registers the set's routes in r. A route that conflicts with another component's or with a
 * built-in route is TR_ECONFLICT, and err names both routes and both owners. A catch-all route
 * ("*") is registered for each method its path has no route of its own for. */
int comp_set_register_routes(comp_set *s, http_router *r, tr_error *err);

/* A worker's instances of every component of the set. The route handlers find them through a
 * thread-local pointer set by comp_worker_new() on the worker's thread. */
typedef struct comp_worker comp_worker;
int comp_worker_new(comp_set *s, guest_env *env, comp_worker **out, tr_error *err);
void comp_worker_free(comp_worker *w); /* NULL is a no-op */
comp_instance *comp_worker_instance(comp_worker *w, size_t module);
/* Switches the calling worker from *w to instances of set: the instances of modules both sets
 * hold are kept (their isolates and module state survive), new ones are created, and dropped
 * ones retire: they finish their parked requests and are freed after. On error (an instance
 * cannot be created) *w is unchanged. */
int comp_worker_switch(comp_worker **w, comp_set *set, guest_env *env, tr_error *err);

/* The instance of module m in w, or NULL when w's set does not hold m (any more). */
comp_instance *comp_worker_find(comp_worker *w, const comp_module *m);
/* The calling worker thread's instances (set by comp_worker_new()); NULL if none. */
comp_worker *comp_worker_current(void);
guest_env *comp_worker_env(comp_worker *w);
/* The set w serves now; borrowed until the worker switches to another (comp_worker_switch()). */
comp_set *comp_worker_set(comp_worker *w);

#endif
