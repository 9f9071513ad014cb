/* component/component.h: components, the user's code that trail serves. A component file is a
 * WebAssembly module (the engine) carrying the user's bundled JavaScript in custom sections
 * (docs/guest-abi.md); a loaded component (comp_module: its code and manifest, immutable, shared
 * by all workers) has a per-worker instance (comp_instance: an isolate that handles the
 * component's requests on one worker); a set of them (comp_set) is what a server serves.
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
 * Thread: the file functions (comp_wasm_*, comp_check, reading and downloading) any, pure over
 * the bytes they are given; comp_module any (refcounted, immutable); comp_instance and comp_worker
 * owning worker only. */
#ifndef TRAIL_COMPONENT_COMPONENT_H
#define TRAIL_COMPONENT_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "cron/cron.h"
#include "guest/guest.h"
#include "http/http.h"

/* ---- component files ---- */

#define COMP_SECTION_JS     "trailbase.js"
#define COMP_SECTION_ENGINE "trailbase.engine"
#define COMP_SECTION_MAP    "trailbase.map"

/* What comp_wasm_parse() finds in a module. Pointers borrow from the parsed bytes and stay valid
 * as long as they do. A missing section has NULL data and length 0. */
typedef struct comp_wasm_info {
    char engine_sha256[65]; /* hex SHA-256 of the module with every custom section removed */
    const char *js;         /* trailbase.js: the bundled ES module */
    size_t js_len;
    const char *engine; /* trailbase.engine: e.g. "quickjs-wasi 3.6.2" */
    size_t engine_len;
    const char *source_map; /* trailbase.map */
    size_t source_map_len;
    unsigned sections;        /* number of sections, custom ones included */
    bool exports_trail_http;  /* a compiled component's entry point (docs/guest-abi.md) */
} comp_wasm_info;

/* Walks the module's structure: magic, version, every section's id and size, custom-section
 * names. TR_EPARSE with the byte offset of the first problem when the bytes are not a
 * well-formed WebAssembly binary. */
int comp_wasm_parse(const unsigned char *bytes, size_t len, comp_wasm_info *out, tr_error *err);

/* The engine compiled into this trail: its name and version ("quickjs-wasi 3.6.2") and the hex
 * SHA-256 of its module without custom sections. */
const char *comp_engine_version(void);
const char *comp_engine_sha256(void);

/* Checks that info describes a trail component: for the engine this trail embeds (it has a
 * trailbase.js section and its engine hash matches), or compiled (no trailbase.js section, and
 * it exports trail_http). Errors say what the file is instead
 * (no JS section; built for another engine, naming both versions). */
int comp_check(const comp_wasm_info *info, tr_error *err);

/* GETs url (http or https only, redirects followed) into out. Fails on a connection error, an
 * HTTP status >= 400, more than max_bytes, or timeout_ms. */
int comp_download(const char *url, size_t max_bytes, long timeout_ms, tr_buf *out, tr_error *err);

/* The component files under a data directory's wasm/ folder: files ending in .wasm directly in
 * it, and a TypeScript project's build output in wasm/dist/ (project in wasm/ itself) or in
 * wasm/NAME/dist/ (project in a subfolder), never inside node_modules. Paths are "wasm_dir/..." in
 * name order; free with comp_paths_free(). */
typedef struct comp_paths {
    char **paths;
    size_t len;
} comp_paths;
int comp_scan_dir(const char *wasm_dir, comp_paths *out, tr_error *err);
void comp_paths_free(comp_paths *p);

/* Largest component file trail accepts. */
#define COMP_MAX_FILE_BYTES (256u << 20)

/* ---- loaded components and their instances ---- */

typedef struct comp_limits {
    size_t memory_limit;    /* bytes of linear memory per isolate */
    uint64_t cpu_budget_ms; /* longest synchronous run of guest code per call */
    uint64_t deadline_ms;   /* longest a request may wait for its handler's promise */
} comp_limits;

typedef struct comp_route {
    char *method; /* upper case, or "*" for any method */
    char *path;   /* as written, e.g. "/greet/:name" */
} comp_route;

typedef struct comp_job {
    char *name;
    char *schedule; /* the cron expression as written */
    cron_expr cron;
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

/* A loaded component: immutable once loaded, shared by every worker, refcounted. Read it
 * through the functions below. */
typedef struct comp_module comp_module;

/* Loads and validates the component file at path (see DESIGN). name is what logs call it. */
int comp_module_load(const char *path, const char *name, const comp_limits *lim, comp_module **out,
                     tr_error *err);
/* The same, from bytes already read (borrowed). */
int comp_module_load_bytes(const char *bytes, size_t len, const char *path, const char *name,
                           const comp_limits *lim, comp_module **out, tr_error *err);
comp_module *comp_module_ref(comp_module *m);
const char *comp_module_name(const comp_module *m);    /* for logs: its path under wasm/ */
const char *comp_module_path(const comp_module *m);    /* the file it was loaded from */
const char *comp_module_version(const comp_module *m); /* 12 hex digits of the file's SHA-256 */
const char *comp_module_sha256(const comp_module *m);  /* the file's SHA-256 in hex (64 digits) */
size_t comp_module_nroutes(const comp_module *m);
const comp_route *comp_module_route(const comp_module *m, size_t i); /* i < nroutes */
size_t comp_module_njobs(const comp_module *m);
const comp_job *comp_module_job(const comp_module *m, size_t i); /* i < njobs */
size_t comp_module_nhooks(const comp_module *m);
const comp_record_hook *comp_module_hook(const comp_module *m, size_t i); /* i < nhooks */
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

/* Handles req with route `route` of the module (its index, as for comp_module_route());
 * completes res now or later (see DESIGN). */
void comp_instance_dispatch(comp_instance *ci, size_t route, const http_request *req,
                            http_response *res);

/* A job run ended: rc is 0 or the failure (TR_EJS with message and stack in err, TR_EINTERRUPTED,
 * TR_ENOMEM, TR_ETRAP, TR_ETIMEDOUT past the deadline, or TR_EINVAL for an unknown job). */
typedef void (*comp_job_done_fn)(void *ud, int rc, const tr_error *err);

/* Runs job `job` (its index, as for comp_module_job()) by calling the component's runJob(name);
 * done is called exactly once, possibly before this returns. deadline_ms bounds the run. */
void comp_instance_run_job(comp_instance *ci, size_t job, uint64_t deadline_ms,
                           comp_job_done_fn done, void *ud);

/* Runs record hook `hook` (its index, as for comp_module_hook()) with the context ctx_json (its
 * JSON text) by calling the component's runRecordHook(index, json), or a compiled component's
 * trail_record_hook (native_hooks.c), synchronously: the hook may use the database but must
 * settle before the call returns (a pending promise, or a host call left pending, is TR_EINVAL).
 * The JSON text it returns is written into out. Errors: TR_EJS (a throw other than an
 * HttpError, with its message), TR_EINTERRUPTED (CPU budget), TR_ENOMEM, TR_ETRAP (the isolate
 * is then replaced), TR_EINVAL. */
int comp_instance_record_hook(comp_instance *ci, size_t hook, const char *ctx_json, size_t len,
                              tr_buf *out, tr_error *err);

/* Requests and job runs waiting for their promise. */
size_t comp_instance_parked(const comp_instance *ci);

/* ---- the components of a data directory, and their routes ---- */

typedef struct comp_set comp_set;

/* Loads every component under wasm_dir (see comp_scan_dir()). The first that fails stops the
 * load: err names its file. An empty or missing directory gives an empty set. */
int comp_set_load_dir(const char *wasm_dir, const comp_limits *lim, comp_set **out, tr_error *err);
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

/* ---- compiled components ----
 * A WebAssembly module written for trail's ABI for compiled guests (docs/guest-abi.md,
 * "Compiled components"), translated to C by wasm2c, compiled by the system's C compiler into a
 * shared object, and run on trail's wasm2c runtime.
 *
 * DESIGN: compiling happens once per module (its SHA-256, trail's version and the ABI version
 * make the cache key), on the thread that loads the component: never a worker. The shared
 * object is loaded with dlopen(RTLD_LOCAL); it finds wasm2c's runtime (wasm_rt_*), the WASI
 * functions and the `trail` imports in trail's own executable, which exports exactly those
 * symbols (the Makefile's NATIVE_LDFLAGS). Every back edge of the generated C counts down the
 * instance's fuel; at zero it calls comp_native_tick(), which checks the CPU budget of the call
 * that is running and traps it when it is over.
 *
 * Thread: comp_native_set_cache_dir() before any thread starts; comp_native_compile() on any
 * thread; a comp_native is immutable and shared once made; comp_native_inst owning worker only. */

/* The version of the ABI this trail implements; part of the cache key. 2: a request ends with
 * its caller (docs/guest-abi.md). 3: the manifest may list record hooks (trail_record_hook). */
#define COMP_NATIVE_ABI 3
/* Largest module trail compiles. */
#define COMP_NATIVE_MAX_MODULE_BYTES (64u << 20)
/* Longest wasm2c or the C compiler may take for one module; then it is killed. */
#define COMP_NATIVE_COMPILE_TIMEOUT_MS 300000
/* Back edges between two looks at the CPU clock. */
#define COMP_NATIVE_FUEL (1 << 20)
/* Host calls of one instance that may be waiting at once. */
#define COMP_NATIVE_MAX_HANDLES 1024

/* Where compiled modules are kept: DIR/compiled/KEY.so. NULL (the default): a temporary
 * directory per compile, removed after loading. Call once, before threads start. */
void comp_native_set_cache_dir(const char *dir);

/* The first call sets the cache directory to DIR/cache for the data directory DIR of wasm_dir
 * (DIR/wasm), unless one was set; later calls do nothing. comp_set_load_dir() calls it: the
 * first load of a server's components happens before its threads start. */
void comp_native_cache_beside(const char *wasm_dir);

/* A loaded shared object and the entry points of its module. */
typedef struct comp_native comp_native;

/* Compiles (or finds in the cache) and loads the module in bytes. *compile_ms gets the time the
 * compile took (0 from the cache); may be NULL. Errors name what failed: no compiler or wasm2c
 * (and the Debian package to install), a limit, an import trail does not provide, the
 * compiler's first lines of output. */
int comp_native_compile(const unsigned char *bytes, size_t len, comp_native **out,
                        uint64_t *compile_ms, tr_error *err);
void comp_native_free(comp_native *n); /* NULL is a no-op */

/* Whether bytes (a parsed module without a trailbase.js section) look like a compiled guest:
 * they export trail_http. */
bool comp_native_is_guest(const unsigned char *bytes, size_t len);

#endif
