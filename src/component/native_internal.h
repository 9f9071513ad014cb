/* component/native_internal.h: what the files of compiled components share (native_build.c
 * loads a module's shared object; native_host.c runs its instances) and the helpers of the JS
 * path they reuse (module.c's manifest checks, instance.c's response checks). */
#ifndef TRAIL_COMPONENT_NATIVE_INTERNAL_H
#define TRAIL_COMPONENT_NATIVE_INTERNAL_H

#include "component/host.h"
#include "component/native.h"
#include "wasm/runtime/wrt.h"

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

#endif
