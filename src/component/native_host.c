/* component/native_host.c: running compiled components (docs/guest-abi.md, "Compiled
 * components"): their instances on a worker, the requests and job runs in a guest's hands, the
 * delivery of host call results, and loading a module's manifest. The `trail` imports and the
 * host calls' handles are in native_imports.c, the byte encodings in native_encoding.c.
 *
 * DESIGN: a comp_native_inst (wasm2c's `struct Z_trail_instance_t`, the pointer every `trail`
 * import receives) owns one wasm2c instance of the module. Every export call is one wrt_call()
 * with the CPU budget armed: the generated code's back edges count down fuel and call
 * comp_native_tick(), which traps the call once the thread's CPU time passes the deadline. The
 * host never calls the guest from inside an import: `respond` and `job_done` only record the
 * answer, sent once the export returned; results of host calls (SQL, timers, files) are
 * delivered by `trail_complete`, called from the worker's loop (a 0 ms timer: the "pump"), so
 * other requests of the worker run between them. A trap, the CPU budget or an allocation failure
 * that leaves the instance unusable drops the wasm2c instance: whatever waits on it is answered
 * (500 or 503) and the next request makes a fresh one.
 *
 * Thread: owning worker only; a scratch instance (comp__native_load) on the loading thread. */
#include "component/native_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

/* ---- the CPU budget ---- */

/* The export call running on this thread: its budget, and the thread CPU time at which it ends.
 * The clock is read lazily (CLOCK_THREAD_CPUTIME_ID is a system call, not a vDSO read): at the
 * first tick or the first host call that needs the deadline, so a short call reads it never, as
 * the JS engine's budget starts at its first poll. The budget thus counts from there; the
 * COMP_NATIVE_FUEL back edges before (about a millisecond) are not counted. */
static __thread uint64_t tick_budget_ns, tick_deadline_ns;
static __thread bool tick_tripped;

/* The running call's deadline on the thread's CPU clock (armed now if it was not). */
uint64_t comp__native_call_deadline(void)
{
    if (tick_deadline_ns == 0 && tick_budget_ns != 0)
        tick_deadline_ns = tr_thread_cpu_ns() + tick_budget_ns;
    return tick_deadline_ns;
}

void comp_native_tick(int64_t *fuel)
{
    *fuel = COMP_NATIVE_FUEL;
    if (tick_deadline_ns == 0) {
        comp__native_call_deadline();
    } else if (tr_thread_cpu_ns() > tick_deadline_ns) {
        tick_tripped = true;
        wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
    }
}

/* ---- calling the guest ---- */

enum { C_INSTANTIATE, C_INITIALIZE, C_INIT, C_ALLOC, C_HTTP, C_JOB, C_COMPLETE, C_HOOK };

typedef struct gcall {
    struct Z_trail_instance_t *ni;
    int what;
    uint32_t a, b, c, d, ret;
} gcall;

static void gcall_run(void *p)
{
    gcall *c = p;
    const comp_native *n = c->ni->nat;
    void *inst = c->ni->inst;
    switch (c->what) {
    case C_INSTANTIATE:
        n->instantiate(inst, c->ni, &c->ni->wasi);
        break;
    case C_INITIALIZE:
        n->initialize(inst);
        break;
    case C_INIT:
        n->init(inst);
        break;
    case C_ALLOC:
        c->ret = n->alloc(inst, c->a);
        break;
    case C_HTTP:
        n->http(inst, c->a, c->b, c->c, c->d);
        break;
    case C_JOB:
        n->job(inst, c->a, c->b);
        break;
    case C_COMPLETE:
        n->complete(inst, c->a);
        break;
    case C_HOOK:
        n->record_hook(inst, c->a, c->b, c->c);
        break;
    }
}

/* One export call with the budget armed. TR_EINTERRUPTED past the budget, TR_ETRAP for a trap;
 * after either the instance must be dropped. */
static int call_guest(struct Z_trail_instance_t *ni, gcall *c, tr_error *err)
{
    c->ni = ni;
    *(int64_t *)ni->inst = COMP_NATIVE_FUEL;
    tick_tripped = false;
    tick_budget_ns = ni->mod->limits.cpu_budget_ms * 1000000u;
    tick_deadline_ns = 0;
    wasm_rt_trap_t trap = wrt_call(ni->mem, gcall_run, c);
    tick_budget_ns = tick_deadline_ns = 0;
    if (trap == WASM_RT_TRAP_NONE) return 0;
    if (tick_tripped)
        return tr_error_set(err, TR_EINTERRUPTED,
                            "the handler exceeded its CPU time limit of %llu ms "
                            "(runtime.cpu_budget_ms)",
                            (unsigned long long)ni->mod->limits.cpu_budget_ms);
    return tr_error_set(err, TR_ETRAP, "%s", wrt_trap_name(trap));
}

/* ---- the instance ---- */

static void wasi_output(void *user, int fd, const char *data, size_t len)
{
    (void)user;
    (void)fd;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
    if (len == 0) return;
    tr_buf line = TR_BUF_INIT;
    guest_log_escape(data, TR_MIN(len, GUEST_LOG_MAX_BYTES), &line);
    tr_log(fd == 2 ? TR_LOG_ERROR : TR_LOG_INFO, GUEST_LOG_PREFIX "%.*s", (int)line.len,
           line.data ? line.data : "");
    tr_buf_free(&line);
}

static void unwait(struct Z_trail_instance_t *ni, comp_native_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        ni->waits = w->next;
    if (w->next) w->next->prev = w->prev;
    ni->nwaits--;
    if (w->parked) loop_timer_stop(ni->env->loop, &w->deadline);
    tr_free(w->job_msg);
    tr_free(w);
}

/* Answers everything waiting on the instance with status/msg (job runs fail with msg) and
 * forgets it. */
static void fail_waits(struct Z_trail_instance_t *ni, int status, const char *msg)
{
    while (ni->waits) {
        comp_native_wait *w = ni->waits;
        if (w->res) {
            http_response_send_error(w->res, status, msg);
        } else {
            tr_error e;
            tr_error_set(&e, TR_EIO, "%s", msg);
            w->done(w->ud, TR_EIO, &e);
        }
        unwait(ni, w);
    }
}

static void drop_instance(struct Z_trail_instance_t *ni)
{
    guest_fetch_set_cancel(&ni->fetches, NULL); /* before the handles they complete */
    while (ni->handles) comp__native_handle_free(ni, ni->handles);
    if (ni->env) guest_sql_tx_forget(ni->env->sql, ni);
    if (ni->env) loop_timer_stop(ni->env->loop, &ni->pump);
    if (ni->inst) {
        ni->nat->free_instance(ni->inst);
        tr_free(ni->inst);
        ni->inst = NULL;
    }
    ni->mem = NULL;
}

static int create_instance(struct Z_trail_instance_t *ni, tr_error *err)
{
    const comp_native *n = ni->nat;
    ni->got_manifest = false; /* a recreated instance registers again (and is not asked) */
    ni->inst = tr_calloc(1, n->instance_size());
    ni->mem = n->memory(ni->inst);
    wasi_ctx_init(&ni->wasi, ni->mem);
    ni->wasi.output = wasi_output;
    ni->wasi.output_user = ni;
    gcall c = {.what = C_INSTANTIATE};
    int rc = call_guest(ni, &c, err);
    uint32_t cap = (uint32_t)TR_MIN(ni->mod->limits.memory_limit / WRT_PAGE_SIZE, 65536);
    if (rc == 0 && ni->mem->pages > cap)
        rc = tr_error_set(err, TR_ELIMIT,
                          "the module's initial memory of %llu MiB is more than "
                          "runtime.memory_limit_mb (%zu MiB)",
                          (unsigned long long)ni->mem->pages * WRT_PAGE_SIZE >> 20,
                          ni->mod->limits.memory_limit >> 20);
    if (rc == 0) wrt_memory_cap(ni->mem, cap);
    if (rc == 0 && n->initialize) {
        c = (gcall){.what = C_INITIALIZE};
        rc = call_guest(ni, &c, err);
    }
    if (rc == 0) {
        ni->in_init = true;
        c = (gcall){.what = C_INIT};
        rc = call_guest(ni, &c, err);
        ni->in_init = false;
    }
    if (rc == 0 && !ni->got_manifest)
        rc = tr_error_set(err, TR_EINVAL, "trail_init() did not call trail.manifest()");
    if (rc < 0) {
        if (rc == TR_ETRAP) {
            char m[1100];
            snprintf(m, sizeof m, "%s", err->msg);
            tr_error_set(err, TR_ETRAP, "the module trapped while starting: %s", m);
        }
        drop_instance(ni);
    }
    return rc;
}

static void pump(loop *l, loop_timer *t);

static struct Z_trail_instance_t *inst_alloc(comp_module *m, guest_env *env)
{
    struct Z_trail_instance_t *ni = tr_calloc(1, sizeof *ni);
    ni->mod = comp_module_ref(m);
    ni->nat = m->native;
    ni->env = env;
    ni->next_id = 1;
    loop_timer_init(&ni->pump, pump);
    return ni;
}

int comp__native_inst_new(comp_module *m, guest_env *env, comp_native_inst **out, tr_error *err)
{
    struct Z_trail_instance_t *ni = inst_alloc(m, env);
    int rc = create_instance(ni, err);
    if (rc < 0) {
        comp_module_unref(ni->mod);
        tr_buf_free(&ni->manifest);
        tr_free(ni);
        return rc;
    }
    *out = ni;
    return 0;
}

void comp__native_inst_free(comp_native_inst *ni)
{
    if (ni == NULL) return;
    fail_waits(ni, 503, "the server is shutting down");
    drop_instance(ni);
    comp_module_unref(ni->mod);
    tr_buf_free(&ni->manifest);
    tr_free(ni);
}

size_t comp__native_parked(const comp_native_inst *ni)
{
    return ni->nwaits;
}

/* ---- failures and answers ---- */

/* After an export call: rc < 0 drops the instance, answering `w` (the request or run the call
 * was for; may be NULL) and everything else waiting on it. */
static void failed_call(struct Z_trail_instance_t *ni, comp_native_wait *w, int rc,
                        const tr_error *err)
{
    const char *name = ni->mod->name;
    int status = rc == TR_EINTERRUPTED || rc == TR_ELIMIT ? 503 : 500;
    char msg[1100];
    if (rc == TR_EINTERRUPTED)
        snprintf(msg, sizeof msg, "%s", err->msg);
    else if (rc == TR_ETRAP)
        snprintf(msg, sizeof msg, "the handler's instance crashed (WebAssembly trap)");
    else
        snprintf(msg, sizeof msg, "%s", err->msg);
    if (w && w->res)
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s%s%s; the instance is replaced", name,
                     (int)w->req->method.len, w->req->method.ptr,
                     (int)TR_MIN(w->req->path.len, 200), w->req->path.ptr, msg,
                     rc == TR_ETRAP ? ": " : "", rc == TR_ETRAP ? err->msg : "");
    else
        tr_log_error(GUEST_LOG_PREFIX "%s: %s%s%s; the instance is replaced", name, msg,
                     rc == TR_ETRAP ? ": " : "", rc == TR_ETRAP ? err->msg : "");
    if (w && w->res) {
        http_response_send_error(w->res, status, msg);
    } else if (w) {
        tr_error e = *err;
        if (rc == TR_ETRAP) tr_error_set(&e, TR_ETRAP, "the job's instance trapped: %s", err->msg);
        w->done(w->ud, rc, &e);
    }
    if (w) unwait(ni, w);
    fail_waits(ni, status,
               rc == TR_EINTERRUPTED ? "the instance was reset after a handler exceeded its CPU "
                                       "time limit"
               : rc == TR_ELIMIT ? msg
                                 : "the instance was reset after a WebAssembly trap");
    drop_instance(ni);
}

/* Sends every recorded answer. Answers are taken off the list first: sending may run the
 * connection's next request, which may call into this instance again. */
static void send_answers(struct Z_trail_instance_t *ni)
{
    for (;;) {
        comp_native_wait *w = ni->waits;
        while (w && !w->answered) w = w->next;
        if (w == NULL) return;
        if (w->prev)
            w->prev->next = w->next;
        else
            ni->waits = w->next;
        if (w->next) w->next->prev = w->prev;
        ni->nwaits--;
        if (w->parked) loop_timer_stop(ni->env->loop, &w->deadline);
        if (w->res) {
            comp__respond(ni->mod, w->req, w->res, &w->answer);
        } else if (w->job_ok) {
            w->done(w->ud, 0, NULL);
        } else {
            tr_error e;
            tr_error_set(&e, TR_EJS, "%s", w->job_msg ? w->job_msg : "the job failed");
            w->done(w->ud, TR_EJS, &e);
        }
        tr_free(w->job_msg);
        tr_free(w);
    }
}

comp_native_wait *comp__native_wait_find(struct Z_trail_instance_t *ni, uint32_t id)
{
    for (comp_native_wait *w = ni->waits; w; w = w->next)
        if (w->id == id) return w;
    return NULL;
}

static void on_deadline(loop *l, loop_timer *t);

static comp_native_wait *new_wait(struct Z_trail_instance_t *ni)
{
    comp_native_wait *w = tr_calloc(1, sizeof *w);
    w->ni = ni;
    loop_timer_init(&w->deadline, on_deadline);
    w->id = ni->next_id++;
    if (ni->next_id == 0 || ni->next_id > INT32_MAX) ni->next_id = 1;
    w->next = ni->waits;
    if (ni->waits) ni->waits->prev = w;
    ni->waits = w;
    ni->nwaits++;
    return w;
}

static void on_cancel(void *ud)
{
    comp_native_wait *w = ud;
    /* the response is gone; a later respond() finds nothing to answer */
    unwait(w->ni, w);
}

static void on_deadline(loop *l, loop_timer *t)
{
    (void)l;
    comp_native_wait *w = (comp_native_wait *)t;
    struct Z_trail_instance_t *ni = w->ni;
    w->parked = false;
    if (w->res) {
        char msg[160];
        snprintf(msg, sizeof msg, "the handler did not respond within %llu ms (runtime.deadline_ms)",
                 (unsigned long long)ni->mod->limits.deadline_ms);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", ni->mod->name, (int)w->req->method.len,
                     w->req->method.ptr, (int)TR_MIN(w->req->path.len, 200), w->req->path.ptr,
                     msg);
        http_response_send_error(w->res, 503, msg);
    } else {
        tr_error e;
        tr_error_set(&e, TR_ETIMEDOUT, "the job did not finish within its deadline");
        w->done(w->ud, TR_ETIMEDOUT, &e);
    }
    unwait(ni, w);
}

/* Counts a trail_complete call that started at the thread's CPU time cpu0 against the window
 * (as guest.c counts JS timers): a guest that keeps re-arming short waits with heavy callbacks
 * would otherwise hold its worker, each callback within the CPU budget. Past the share, the
 * instance is replaced and true returned. */
static bool callbacks_over_share(struct Z_trail_instance_t *ni, uint64_t cpu0)
{
    uint64_t cpu1 = tr_thread_cpu_ns(), now = loop_now_ns(ni->env->loop);
    uint64_t window = (uint64_t)GUEST_TIMER_CPU_WINDOW_MS * 1000000u;
    if (now - ni->cb_window_ns >= window) {
        ni->cb_window_ns = now;
        ni->cb_window_cpu_ns = cpu0;
        ni->cb_cpu_ns = 0;
    }
    ni->cb_cpu_ns += cpu1 - cpu0;
    uint64_t worker = cpu1 - ni->cb_window_cpu_ns;
    if (ni->cb_cpu_ns <= (uint64_t)GUEST_MIN_TIMER_CPU_MS * 1000000u ||
        ni->cb_cpu_ns * 100 <= worker * GUEST_MAX_TIMER_CPU_PCT)
        return false;
    tr_error err;
    tr_error_set(&err, TR_ELIMIT,
                 "the instance's callbacks used more than %d%% of its worker's CPU (over %d ms "
                 "within %d ms)",
                 GUEST_MAX_TIMER_CPU_PCT, GUEST_MIN_TIMER_CPU_MS, GUEST_TIMER_CPU_WINDOW_MS);
    ni->cb_cpu_ns = 0;
    failed_call(ni, NULL, TR_ELIMIT, &err);
    return true;
}

/* Delivers ready results: trail_complete(handle) for each, then the answers they led to. */
static void pump(loop *l, loop_timer *t)
{
    (void)l;
    struct Z_trail_instance_t *ni = (struct Z_trail_instance_t *)((char *)t -
                                                                   offsetof(struct Z_trail_instance_t, pump));
    if (ni->pumping || ni->inst == NULL) return;
    ni->pumping = true;
    /* the ids ready now; those that become ready meanwhile wait for the next round */
    size_t n = 0;
    for (comp_native_handle *h = ni->handles; h; h = h->next) n += h->notify;
    uint32_t *ids = tr_malloc((n ? n : 1) * sizeof *ids);
    n = 0;
    for (comp_native_handle *h = ni->handles; h; h = h->next)
        if (h->notify) ids[n++] = h->id;
    for (size_t i = 0; i < n && ni->inst; i++) {
        comp_native_handle *h = comp__native_handle_find(ni, ids[i]);
        if (h == NULL || !h->notify) continue;
        h->notify = false;
        gcall c = {.what = C_COMPLETE, .a = ids[i]};
        tr_error err = {0};
        uint64_t cpu0 = tr_thread_cpu_ns();
        int rc = call_guest(ni, &c, &err);
        if (rc < 0) {
            failed_call(ni, NULL, rc, &err);
            break;
        }
        if (callbacks_over_share(ni, cpu0)) break;
    }
    tr_free(ids);
    ni->pumping = false;
    send_answers(ni);
}

/* ---- requests and jobs ---- */

/* Copies bytes into a buffer the guest allocated; 0 and a guest pointer, or an error. */
static int pass_bytes(struct Z_trail_instance_t *ni, const tr_buf *b, uint32_t *ptr,
                      tr_error *err)
{
    if (b->len > ni->mod->limits.memory_limit)
        return tr_error_set(err, TR_ENOMEM,
                            "the request takes more than the instance's memory limit of %zu MiB "
                            "(runtime.memory_limit_mb)",
                            ni->mod->limits.memory_limit >> 20);
    gcall c = {.what = C_ALLOC, .a = (uint32_t)b->len};
    int rc = call_guest(ni, &c, err);
    if (rc < 0) return rc;
    char *dst = c.ret ? wrt_mem_ptr(ni->mem, c.ret, b->len) : NULL;
    if (dst == NULL)
        return tr_error_set(err, TR_ENOMEM,
                            c.ret ? "trail_alloc() returned memory outside the instance"
                                  : "the instance is out of memory (runtime.memory_limit_mb = "
                                    "%zu MiB): trail_alloc() returned 0",
                            ni->mod->limits.memory_limit >> 20);
    if (b->len) memcpy(dst, b->data, b->len);
    *ptr = c.ret;
    return 0;
}

void comp__native_dispatch(comp_native_inst *ni, size_t route, const http_request *req,
                           http_response *res)
{
    tr_error err = {0};
    if (ni->inst == NULL && create_instance(ni, &err) < 0) {
        tr_log_error(GUEST_LOG_PREFIX "%s: cannot recreate the instance: %s", ni->mod->name,
                     err.msg);
        http_response_send_error(res, 503, "the component is not available");
        return;
    }
    /* the caller, as a JS handler's req.user() gets it (docs/auth.md) */
    auth_caller caller;
    auth_request_caller(auth_ctx_published(), req, &caller);
    tr_buf b = TR_BUF_INIT;
    comp__encode_request(req, &caller, &b);
    comp_native_wait *w = new_wait(ni);
    w->res = res;
    w->req = req;
    uint32_t ptr = 0, len = (uint32_t)b.len;
    int rc = pass_bytes(ni, &b, &ptr, &err);
    tr_buf_free(&b);
    if (rc == 0) {
        gcall c = {.what = C_HTTP, .a = w->id, .b = (uint32_t)route, .c = ptr, .d = len};
        rc = call_guest(ni, &c, &err);
    }
    if (rc == TR_ENOMEM) {
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", ni->mod->name, (int)req->method.len,
                     req->method.ptr, (int)TR_MIN(req->path.len, 200), req->path.ptr, err.msg);
        http_response_send_error(res, 500, err.msg);
        unwait(ni, w);
        return;
    }
    if (rc < 0) {
        failed_call(ni, w, rc, &err);
        return;
    }
    if (!w->answered) {
        w->parked = true;
        loop_timer_start(ni->env->loop, &w->deadline, ni->mod->limits.deadline_ms);
        http_response_on_cancel(res, on_cancel, w);
    }
    send_answers(ni);
}

void comp__native_run_job(comp_native_inst *ni, size_t job, uint64_t deadline_ms,
                          comp_job_done_fn done, void *ud)
{
    tr_error err = {0};
    if (ni->nat->job == NULL) {
        tr_error_set(&err, TR_EINVAL, "the module does not export trail_job");
        done(ud, TR_EINVAL, &err);
        return;
    }
    if (ni->inst == NULL && create_instance(ni, &err) < 0) {
        done(ud, err.code ? err.code : TR_EINVAL, &err);
        return;
    }
    comp_native_wait *w = new_wait(ni);
    w->done = done;
    w->ud = ud;
    gcall c = {.what = C_JOB, .a = w->id, .b = (uint32_t)job};
    int rc = call_guest(ni, &c, &err);
    if (rc < 0) {
        failed_call(ni, w, rc, &err);
        return;
    }
    if (!w->answered) {
        w->parked = true;
        loop_timer_start(ni->env->loop, &w->deadline, deadline_ms);
    }
    send_answers(ni);
}

/* ---- loading ---- */

/* The manifest's encoding (docs/guest-abi.md) into the value comp__read_manifest() reads: routes,
 * jobs, and record hooks when the module lists them (ABI 3; a module of an older ABI ends after
 * its jobs). */
static bool decode_manifest(const tr_buf *b, tr_arena *a, jsg_val *out)
{
    comp_reader r = {(const unsigned char *)b->data, b->len, 0, false};
    jsg_prop *props = tr_arena_alloc(a, 3 * sizeof *props);
    static const char *const keys[3] = {"http", "jobs", "recordHooks"};
    int nkeys = 2;
    for (int k = 0; k < nkeys; k++) {
        uint32_t n = comp__get_count(&r, 8);
        jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *items);
        for (uint32_t i = 0; i < n && !r.bad; i++) {
            size_t l1, l2;
            const char *s1 = comp__get_str(&r, &l1);
            const char *s2 = comp__get_str(&r, &l2);
            items[n + 2 * i] = jsg_string(s1, l1);
            items[n + 2 * i + 1] = jsg_string(s2, l2);
            items[i] = jsg_array(&items[n + 2 * i], 2);
        }
        props[k] = (jsg_prop){keys[k], strlen(keys[k]), jsg_array(items, n)};
        if (k == 1 && !r.bad && r.pos < r.len) nkeys = 3;
    }
    *out = jsg_object(props, (size_t)nkeys);
    return !r.bad && r.pos == r.len;
}

/* Route paths and names may not hold NUL bytes (they become C strings). */
static bool manifest_has_nul(const jsg_val *man)
{
    for (size_t k = 0; k < man->u.obj.len; k++) {
        const jsg_val *list = &man->u.obj.props[k].val;
        for (size_t i = 0; i < list->u.arr.len; i++)
            for (size_t j = 0; j < 2; j++) {
                const jsg_val *s = &list->u.arr.items[i].u.arr.items[j];
                if (memchr(s->u.str.ptr, '\0', s->u.str.len)) return true;
            }
    }
    return false;
}

int comp__native_load(comp_module *m, const unsigned char *bytes, size_t len, tr_error *err)
{
    uint64_t ms = 0;
    int rc = comp_native_compile(bytes, len, &m->native, &ms, err);
    if (rc < 0) return rc;
    if (ms > 0) tr_log_info("component %s: compiled to native code in %llu ms", m->name,
                            (unsigned long long)ms);
    m->compile_ms = ms;
    struct Z_trail_instance_t *ni = inst_alloc(m, NULL);
    rc = create_instance(ni, err);
    tr_arena a;
    tr_arena_init(&a, 4096);
    jsg_val man;
    if (rc == 0 && (!decode_manifest(&ni->manifest, &a, &man) || manifest_has_nul(&man)))
        rc = tr_error_set(err, TR_EINVAL,
                          "the manifest trail_init() gave is malformed (docs/guest-abi.md)");
    if (rc == 0) rc = comp__read_manifest(m, &man, err);
    if (rc == 0 && m->nhooks > 0 && m->native->record_hook == NULL)
        rc = tr_error_set(err, TR_EINVAL,
                          "the manifest lists record hooks but the module does not export "
                          "trail_record_hook (docs/guest-abi.md)");
    tr_arena_deinit(&a);
    drop_instance(ni);
    tr_buf_free(&ni->manifest);
    /* the scratch instance's module ref: m is still being made, its refcount is the caller's */
    atomic_fetch_sub(&ni->mod->refs, 1);
    tr_free(ni);
    return rc;
}

/* ---- for record hooks (native_hooks.c) ---- */

int comp__native_ready(struct Z_trail_instance_t *ni, tr_error *err)
{
    return ni->inst == NULL ? create_instance(ni, err) : 0;
}

int comp__native_pass(struct Z_trail_instance_t *ni, const tr_buf *b, uint32_t *ptr,
                      tr_error *err)
{
    return pass_bytes(ni, b, ptr, err);
}

int comp__native_call_hook(struct Z_trail_instance_t *ni, uint32_t hook, uint32_t ptr,
                           uint32_t len, tr_error *err)
{
    gcall c = {.what = C_HOOK, .a = hook, .b = ptr, .c = len};
    return call_guest(ni, &c, err);
}

void comp__native_fail(struct Z_trail_instance_t *ni, int rc, const tr_error *err)
{
    failed_call(ni, NULL, rc, err);
}

void comp__native_answers_later(struct Z_trail_instance_t *ni)
{
    if (ni->env && ni->inst && !loop_timer_active(&ni->pump))
        loop_timer_start(ni->env->loop, &ni->pump, 0);
}
