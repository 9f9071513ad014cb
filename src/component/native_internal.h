/* component/native_internal.h: what the files of compiled components share (native_build.c
 * loads a module's shared object; native_host.c runs its instances, native_imports.c answers
 * their `trail` imports, native_encoding.c reads and writes the bytes they exchange) and the
 * helpers of the JS path they reuse (module.c's manifest checks, instance.c's response checks).
 * Thread: an instance and everything hanging off it, its owning worker only. */
#ifndef TRAIL_COMPONENT_NATIVE_INTERNAL_H
#define TRAIL_COMPONENT_NATIVE_INTERNAL_H

#include "component/component_internal.h"
#include "guest/fetch.h"
#include "wasm/runtime/wrt.h"
#include "wasm/wasi/wasi.h"

struct auth_caller;

/* Called by the generated code when an instance's fuel ran out (see DESIGN). */
void comp_native_tick(int64_t *fuel);

/* The entry points of a loaded shared object (wasm2c's names for module "guest"). */
struct comp_native {
    void *dl;
    size_t (*instance_size)(void);
    void (*instantiate)(void *inst, void *trail, void *wasi);
    void (*init_module)(void);
    void (*free_instance)(void *inst);
    wasm_rt_memory_t *(*memory)(void *inst);
    void (*initialize)(void *inst); /* _initialize: NULL when the module has none */
    void (*init)(void *inst);
    uint32_t (*alloc)(void *inst, uint32_t size);
    void (*http)(void *inst, uint32_t req, uint32_t route, uint32_t ptr, uint32_t len);
    void (*job)(void *inst, uint32_t run, uint32_t job);  /* NULL: no jobs */
    void (*complete)(void *inst, uint32_t handle);        /* NULL: never waits */
    /* trail_record_hook: NULL when the module has no record hooks */
    void (*record_hook)(void *inst, uint32_t hook, uint32_t ptr, uint32_t len);
};

/* module.c: reads a manifest value ({"http": [[method, path]...], "jobs": [[name, cron]...]})
 * into m's routes and jobs, with the checks of a JS component's manifest. */
int comp__read_manifest(comp_module *m, const jsg_val *man, tr_error *err);

/* instance.c: sends v (a string, bytes, or an object {status, headers, body}) for req with the
 * checks of a JS handler's result; m names the component in logs. */
void comp__respond(const comp_module *m, const http_request *req, http_response *res,
                   const jsg_val *v);

/* native_host.c: loading a compiled module into m (its routes and jobs, from trail_init in a
 * scratch instance); the per-worker instance behind a comp_instance. */
int comp__native_load(comp_module *m, const unsigned char *bytes, size_t len, tr_error *err);

typedef struct Z_trail_instance_t comp_native_inst;
int comp__native_inst_new(comp_module *m, guest_env *env, comp_native_inst **out, tr_error *err);
void comp__native_inst_free(comp_native_inst *ni); /* answers what waits 503; NULL no-op */
void comp__native_dispatch(comp_native_inst *ni, size_t route, const http_request *req,
                           http_response *res);
void comp__native_run_job(comp_native_inst *ni, size_t job, uint64_t deadline_ms,
                          comp_job_done_fn done, void *ud);
size_t comp__native_parked(const comp_native_inst *ni);

/* ---- an instance's state (native_host.c) and its host calls (native_imports.c) ---- */

/* A request or a job run the guest has been given and not yet answered. */
typedef struct comp_native_wait {
    loop_timer deadline; /* first: the loop hands us &deadline */
    struct comp_native_wait *prev, *next;
    struct Z_trail_instance_t *ni;
    uint32_t id;
    http_response *res; /* a request: res and req; a job run: done and ud */
    const http_request *req;
    comp_job_done_fn done;
    void *ud;
    bool parked;   /* its deadline runs */
    bool answered; /* respond()/job_done() was called: the answer below waits to be sent */
    jsg_val answer; /* a request's response, in req's arena */
    bool job_ok;
    char *job_msg;
} comp_native_wait;

enum { COMP_NATIVE_PENDING, COMP_NATIVE_READY };

/* A host call's handle. */
typedef struct comp_native_handle {
    loop_timer timer; /* first: timers and SQL retries */
    struct comp_native_handle *next;
    struct Z_trail_instance_t *ni;
    uint32_t id;
    int state;
    bool ok;
    bool notify; /* ready, and trail_complete not called yet */
    tr_buf result;
    /* a statement (or a BEGIN: begin) waiting for the connection */
    bool begin;
    uint32_t tx; /* the statement's transaction; 0: none */
    bool rows;
    char *sql;
    size_t sql_len;
    tr_buf params;
    uint64_t since_ns;
    unsigned retry_ms;
    bool in_fetch; /* a transfer will complete it (guest/fetch.h) */
    bool released; /* the guest let go of it while in_fetch: freed when the transfer ends */
    bool in_hook;  /* made during a record hook's call (native_hooks.c) */
    guest_sql_job *job; /* cluster mode: its statement out on the leader */
} comp_native_handle;

struct Z_trail_instance_t {
    comp_module *mod;
    const comp_native *nat;
    guest_env *env; /* NULL for the scratch instance that reads the manifest */
    void *inst;     /* wasm2c's instance (fuel at offset 0); NULL once dropped */
    wasm_rt_memory_t *mem;
    wasi_ctx wasi;
    tr_buf manifest; /* what trail_init gave */
    bool got_manifest;
    bool in_init;
    comp_native_wait *waits;
    size_t nwaits;
    comp_native_handle *handles;
    size_t nhandles;
    uint32_t next_id;
    loop_timer pump;
    bool pumping; /* inside pump(): no re-entry */
    guest_fetch_set fetches; /* transfers in flight */
    /* a record hook's call (native_hooks.c): running, and what trail.hook_result() gave */
    bool in_hook, hook_answered;
    uint32_t hook_status;
    tr_buf hook_answer; /* empty between calls */
    /* the CPU share of trail_complete calls (GUEST_MAX_TIMER_CPU_PCT): the window's start (loop
     * clock and the thread's CPU time) and the CPU the calls used in it */
    uint64_t cb_window_ns, cb_window_cpu_ns, cb_cpu_ns;
};

/* native_host.c, for native_hooks.c: the instance made again when it was dropped; the bytes of
 * b copied into a buffer from trail_alloc (*ptr); trail_record_hook(hook, ptr, len) with the
 * budget armed (TR_ETRAP, TR_EINTERRUPTED: the caller drops the instance with
 * comp__native_fail()); the instance dropped after rc, answering what waits on it; the instance's
 * recorded answers sent from the loop (never during the caller's call). */
int comp__native_ready(struct Z_trail_instance_t *ni, tr_error *err);
int comp__native_pass(struct Z_trail_instance_t *ni, const tr_buf *b, uint32_t *ptr,
                      tr_error *err);
int comp__native_call_hook(struct Z_trail_instance_t *ni, uint32_t hook, uint32_t ptr,
                           uint32_t len, tr_error *err);
void comp__native_fail(struct Z_trail_instance_t *ni, int rc, const tr_error *err);
void comp__native_answers_later(struct Z_trail_instance_t *ni);

/* native_hooks.c: runs record hook `hook` (comp_instance_record_hook() for a compiled
 * component). The instance holds nothing of a hook once this returns. */
int comp__native_record_hook(comp_native_inst *ni, size_t hook, const char *ctx, size_t len,
                             tr_buf *out, tr_error *err);

/* native_host.c: the running export call's deadline on the thread's CPU clock (armed now if it
 * was not); 0 when no call runs. */
uint64_t comp__native_call_deadline(void);

/* native_host.c: a request or job run by the id the guest was given; NULL when none waits. */
comp_native_wait *comp__native_wait_find(struct Z_trail_instance_t *ni, uint32_t id);

/* native_imports.c: host call handles. _find returns NULL for an unknown or released id;
 * _free frees h now (its timer stopped, its result and statement freed). */
comp_native_handle *comp__native_handle_find(struct Z_trail_instance_t *ni, uint32_t id);
void comp__native_handle_free(struct Z_trail_instance_t *ni, comp_native_handle *h);

/* ---- native_encoding.c: the encodings of docs/guest-abi.md ---- */

/* Bytes being read; r->bad once a read ran past len (reads then yield 0 and ""). */
typedef struct comp_reader {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
} comp_reader;

void comp__put_u32(tr_buf *b, uint32_t v);
void comp__put_u64(tr_buf *b, uint64_t v);
void comp__put_str(tr_buf *b, const char *s, size_t n); /* u32 length, then the bytes */
uint32_t comp__get_u32(comp_reader *r);
/* A str: (ptr, len) into r's bytes. */
const char *comp__get_str(comp_reader *r, size_t *len);
/* A count of items each taking at least min_bytes: more than the bytes left is malformed (and
 * never allocated for). */
uint32_t comp__get_count(comp_reader *r, size_t min_bytes);
/* A request as trail_http receives it (path parameters percent-decoded, header names in lower
 * case), then its caller (auth_request_caller()'s answer: a user, why the credentials sent did
 * not count, or nobody). */
void comp__encode_request(const http_request *req, const struct auth_caller *caller, tr_buf *b);
/* One value of a row (guest_sql_run_vals' shape): a tag byte, then the value. */
void comp__put_val(tr_buf *b, const jsg_val *v);
/* SQL parameters into an array value allocated in a; false when malformed. */
bool comp__get_params(comp_reader *r, tr_arena *a, jsg_val *out);

/* The `trail` imports (docs/guest-abi.md), with the names and prototypes wasm2c gives them;
 * exported from the executable to the shared objects. */
void Z_trailZ_log(comp_native_inst *ni, uint32_t level, uint32_t ptr, uint32_t len);
uint32_t Z_trailZ_manifest(comp_native_inst *ni, uint32_t ptr, uint32_t len);
uint32_t Z_trailZ_respond(comp_native_inst *ni, uint32_t req, uint32_t status, uint32_t head_ptr,
                          uint32_t head_len, uint32_t body_ptr, uint32_t body_len);
uint32_t Z_trailZ_job_done(comp_native_inst *ni, uint32_t run, uint32_t ok, uint32_t msg_ptr,
                           uint32_t msg_len);
uint32_t Z_trailZ_sql(comp_native_inst *ni, uint32_t tx, uint32_t kind, uint32_t sql_ptr,
                      uint32_t sql_len, uint32_t params_ptr, uint32_t params_len);
uint32_t Z_trailZ_tx_begin(comp_native_inst *ni);
uint32_t Z_trailZ_tx_end(comp_native_inst *ni, uint32_t tx, uint32_t commit);
uint32_t Z_trailZ_timer(comp_native_inst *ni, uint32_t ms);
uint32_t Z_trailZ_fetch(comp_native_inst *ni, uint32_t ptr, uint32_t len);
uint32_t Z_trailZ_read_file(comp_native_inst *ni, uint32_t ptr, uint32_t len);
uint32_t Z_trailZ_result_len(comp_native_inst *ni, uint32_t handle);
uint32_t Z_trailZ_result_take(comp_native_inst *ni, uint32_t handle, uint32_t ptr, uint32_t len);
void Z_trailZ_release(comp_native_inst *ni, uint32_t handle);
uint32_t Z_trailZ_hook_result(comp_native_inst *ni, uint32_t status, uint32_t ptr, uint32_t len);

#endif
