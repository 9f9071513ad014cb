/* wasm/js/jsg.c: JS isolates over the engine's qjs_* exports (see jsg.h): an isolate's life
 * (create, free, its limits), the guarded runs every operation goes through, errors from JS
 * exceptions, the host imports the engine calls (host functions, the interrupt check, promise
 * rejections, module names), and evaluation (scripts, modules, bytecode). The other parts of
 * the binding, and the design they share, are listed in jsg_internal.h.
 *
 * Freeing an isolate does not run QuickJS's own teardown: the whole linear memory is unmapped,
 * which releases every JS object at once (and cannot be disturbed by leaked guest refs). */
#include "wasm/js/jsg_internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine_info.h"

static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    wasm_rt_init();
    Z_quickjs_init_module();
}

const char *jsg_engine_version(void)
{
    return TRAIL_ENGINE_VERSION;
}

const char *jsg_engine_sha256(void)
{
    return TRAIL_ENGINE_SHA256;
}

/* ---- guarded runs ---- */

/* One guarded run: the body and its arguments, and what it returned. */
typedef struct frame {
    jsg_isolate *iso;
    jsg__body *body;
    void *arg;
    tr_error *err;
    int rc;
} frame;

static void frame_run(void *p)
{
    frame *f = p;
    f->rc = f->body(f->iso, f->arg, f->err);
}

int jsg__enter(jsg_isolate *iso, jsg__body *body, void *arg, tr_error *err)
{
    if (iso->dead) return TR_ETRAP;
    if (iso->depth == 0) {
        iso->interrupted = false;
        iso->deadline_ns = 0; /* fixed at the first interrupt check: no clock read per call */
    }
    frame f = {iso, body, arg, err, 0};
    iso->depth++;
    wasm_rt_trap_t trap = wrt_call(iso->mem, frame_run, &f);
    iso->depth--;
    if (trap != WASM_RT_TRAP_NONE) {
        iso->dead = true;
        iso->trap = trap;
        return TR_ETRAP;
    }
    return f.rc; /* never TR_ETRAP: bodies return the errors of what they call, none a trap */
}

int jsg__dead_error(jsg_isolate *iso, tr_error *err)
{
    return tr_error_set(err, TR_ETRAP, "the engine trapped (%s); the isolate is discarded",
                        wrt_trap_name(iso->trap));
}

int jsg__finish(jsg_isolate *iso, int rc, tr_error *err)
{
    if (rc == TR_ETRAP) return jsg__dead_error(iso, err);
    /* host work for it (a SQL statement) ran past the deadline: the call is over, whatever its
     * JS made of that */
    if (rc == 0 && iso->interrupted && iso->depth == 0)
        rc = tr_error_set(err, TR_EINTERRUPTED, INTERRUPTED_MSG);
    if ((rc == TR_EINTERRUPTED || rc == TR_ENOMEM) && iso->depth == 0) iso->limit_rc = rc;
    return rc;
}

int jsg__guarded(jsg_isolate *iso, jsg__body *body, void *arg, tr_error *err)
{
    return jsg__finish(iso, jsg__enter(iso, body, arg, err), err);
}

int jsg_take_limit_error(jsg_isolate *iso)
{
    int rc = iso->limit_rc;
    iso->limit_rc = 0;
    return rc;
}

/* ---- errors ---- */

int jsg__oom(tr_error *err)
{
    return tr_error_set(err, TR_ENOMEM, "out of memory in the JavaScript isolate");
}

/* Reads the string value of handle h (ToString for non-strings) into buf. Returns 0, or -1 when
 * the conversion threw (the exception is pending). */
int jsg__read_string(jsg_isolate *iso, uint32_t h, tr_buf *buf)
{
    uint32_t lenp = jsg__out_slot(iso, 0);
    uint32_t c = Q(qjs_get_string_len)(I, h, lenp);
    if (c == 0) return -1;
    uint32_t len = jsg__load_u32(iso, lenp);
    const char *p = wrt_mem_ptr(iso->mem, c, len);
    tr_buf_reset(buf);
    if (p != NULL) tr_buf_append(buf, p, len);
    if (buf->data == NULL) tr_buf_reserve(buf, 0);
    Q(qjs_free_cstring)(I, c);
    return 0;
}

/* obj[name] as a string into buf; an undefined property or a throwing getter leaves buf empty
 * (the exception, if any, is cleared). */
static void prop_string(jsg_isolate *iso, uint32_t obj, const char *name, tr_buf *buf)
{
    tr_buf_reset(buf);
    bool heap;
    uint32_t key = jsg__put_bytes(iso, name, strlen(name), SCRATCH_NAME, &heap);
    if (key == 0) return;
    uint32_t v = Q(qjs_get_prop_string)(I, obj, key);
    jsg__drop_bytes(iso, key, heap);
    if (v == 0) return;
    if (Q(qjs_is_exception)(I, v)) {
        Q(qjs_free_value)(I, v);
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
        return;
    }
    if (!Q(qjs_is_undefined)(I, v) && jsg__read_string(iso, v, buf) < 0) {
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
    }
    Q(qjs_free_value)(I, v);
}

/* Describes the JS value h (an Error or any thrown value) into err as TR_EJS, or TR_ENOMEM for
 * QuickJS's out-of-memory error. */
int jsg__describe(jsg_isolate *iso, uint32_t h, tr_error *err)
{
    tr_buf name = TR_BUF_INIT, msg = TR_BUF_INIT, stack = TR_BUF_INIT;
    int rc = TR_EJS;
    if (Q(qjs_is_error)(I, h)) {
        prop_string(iso, h, "name", &name);
        prop_string(iso, h, "message", &msg);
        prop_string(iso, h, "stack", &stack);
        if (strcmp(name.data ? name.data : "", "InternalError") == 0 && msg.data &&
            strcmp(msg.data, "out of memory") == 0)
            rc = TR_ENOMEM;
        size_t sl = stack.len;
        while (sl > 0 && (stack.data[sl - 1] == '\n' || stack.data[sl - 1] == ' '))
            sl--;
        tr_error_set(err, rc, "%s: %s%s%.*s", name.len ? name.data : "Error",
                     msg.data ? msg.data : "", sl ? "\n" : "", (int)sl, sl ? stack.data : "");
    } else if (Q(qjs_is_null)(I, h) && iso->mem->pages >= iso->mem->max_pages) {
        /* QuickJS throws null when it cannot even allocate its out-of-memory error. */
        rc = TR_ENOMEM;
        tr_error_set(err, rc, "InternalError: out of memory");
    } else if (jsg__read_string(iso, h, &msg) == 0) {
        tr_error_set(err, rc, "Uncaught %s", msg.data);
    } else {
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
        tr_error_set(err, rc, "Uncaught exception (not convertible to a string)");
    }
    tr_buf_free(&name);
    tr_buf_free(&msg);
    tr_buf_free(&stack);
    return rc;
}

/* Takes the pending exception and turns it into an error code and message. */
int jsg__take_exception(jsg_isolate *iso, tr_error *err)
{
    uint32_t e = Q(qjs_get_exception)(I);
    if (iso->interrupted) {
        if (e) Q(qjs_free_value)(I, e);
        return tr_error_set(err, TR_EINTERRUPTED, INTERRUPTED_MSG);
    }
    if (e == 0) return jsg__oom(err);
    int rc = jsg__describe(iso, e, err);
    Q(qjs_free_value)(I, e);
    return rc;
}

/* Checks a handle an export returned: 0 (no memory for the handle) or an exception. On failure
 * the handle is freed. */
int jsg__check(jsg_isolate *iso, uint32_t h, tr_error *err)
{
    if (h == 0) {
        /* The pending exception (if any) belongs to this failure. */
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
        return jsg__oom(err);
    }
    if (Q(qjs_is_exception)(I, h)) {
        Q(qjs_free_value)(I, h);
        return jsg__take_exception(iso, err);
    }
    return 0;
}

/* ---- host imports ---- */

static host_fn *find_fn(jsg_isolate *iso, const char *name, size_t len)
{
    for (size_t i = 0; i < iso->nfns; i++)
        if (iso->fns[i].name_len == len && memcmp(iso->fns[i].name, name, len) == 0)
            return &iso->fns[i];
    return NULL;
}

/* Throws an Error with message (p, n) inside the guest (guest context). */
static void throw_error(jsg_isolate *iso, const char *p, size_t n)
{
    uint32_t e = Q(qjs_new_error)(I);
    if (e == 0) return;
    bool heap;
    uint32_t s = jsg__put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (s != 0) {
        uint32_t sh = Q(qjs_new_string)(I, s, (uint32_t)n);
        jsg__drop_bytes(iso, s, heap);
        if (sh != 0) {
            bool kheap;
            uint32_t k = jsg__put_bytes(iso, "message", 7, SCRATCH_NAME, &kheap);
            if (k) Q(qjs_define_prop_string)(I, e, k, sh, PROP_CW);
            jsg__drop_bytes(iso, k, kheap);
            Q(qjs_free_value)(I, sh);
        }
    }
    uint32_t r = Q(qjs_throw)(I, e);
    if (r) Q(qjs_free_value)(I, r);
    Q(qjs_free_value)(I, e);
}

u32 Z_envZ_host_call(struct Z_env_instance_t *env, u32 name_ptr, u32 name_len, u32 this_ptr,
                     u32 argc, u32 argv_ptr)
{
    jsg_isolate *iso = env->iso;
    bool saved = wrt_host_enter();
    const char *name = wrt_mem_ptr(iso->mem, name_ptr, name_len);
    const unsigned char *argvp = wrt_mem_ptr(iso->mem, argv_ptr, (uint64_t)argc * 4);
    host_fn *f = name ? find_fn(iso, name, name_len) : NULL;
    tr_error e;
    tr_error_clear(&e);
    jsg_ref result = 0;
    int rc;
    if (f == NULL) {
        rc = tr_error_set(&e, TR_ENOTFOUND, "host function \"%.*s\" is not registered",
                          name ? (int)TR_MIN(name_len, 64u) : 0, name ? name : "");
    } else if (argc > MAX_HOST_ARGS || (argc > 0 && argvp == NULL)) {
        rc = tr_error_set(&e, TR_EINVAL, "%.*s: too many arguments", (int)name_len, name);
    } else {
        jsg_ref args[MAX_HOST_ARGS];
        for (u32 i = 0; i < argc; i++)
            memcpy(&args[i], argvp + 4 * i, 4);
        rc = f->fn(iso, f->user, this_ptr, argc, args, &result, &e);
    }
    wrt_host_leave(saved);
    if (iso->dead) wasm_rt_trap(iso->trap); /* a nested call trapped: unwind this one too */
    if (rc == 0) return result ? result : Q(qjs_get_undefined)(I);
    if (result) Q(qjs_free_value)(I, result);
    if (rc == TR_ENOMEM) {
        /* the isolate's memory ran out under the host function (a value it made): the engine's
         * own out-of-memory error, so that the call ends as any other running out does */
        (void)Q(JS_ThrowOutOfMemory)(I, iso->ctx); /* JS_EXCEPTION: nothing to free */
        return 0;
    }
    if (e.code == 0) tr_error_set(&e, rc, "%s", tr_strerror(rc));
    throw_error(iso, e.msg, strlen(e.msg));
    return 0;
}

/* QuickJS's interrupt check, and jsg_overdue(): true, with the call marked interrupted, once
 * jsg_interrupt() was called or the call's deadline has passed. */
static bool overdue(jsg_isolate *iso)
{
    if (atomic_load_explicit(&iso->interrupt_req, memory_order_relaxed) &&
        atomic_exchange(&iso->interrupt_req, false)) {
        iso->interrupted = true;
        return true;
    }
    if (iso->timeout_ns == 0) return false;
    /* QuickJS checks every few thousand operations, so a call that is short never reads the
     * clock; a long one starts its clock at its first jsg__check (a few microseconds in). */
    uint64_t now = iso->cpu_time ? tr_thread_cpu_ns() : tr_now_ns();
    if (iso->deadline_ns == 0) {
        iso->deadline_ns = now + iso->timeout_ns;
        return false;
    }
    if (now >= iso->deadline_ns) {
        iso->interrupted = true;
        return true;
    }
    return false;
}

u32 Z_envZ_host_interrupt(struct Z_env_instance_t *env)
{
    return overdue(env->iso);
}

void jsg_overdue_start(jsg_isolate *iso)
{
    if (iso->depth != 0) return;
    iso->interrupted = false;
    iso->deadline_ns = 0;
}

bool jsg_overdue(jsg_isolate *iso)
{
    return overdue(iso);
}

void Z_envZ_host_promise_rejection(struct Z_env_instance_t *env, u32 promise, u32 reason,
                                   u32 is_handled)
{
    jsg_isolate *iso = env->iso;
    /* Guest context: the exports below run under the caller's wrt_call frame. */
    const void *pv = promise ? wrt_mem_ptr(iso->mem, promise, 8) : NULL;
    if (is_handled) {
        /* A handler was attached after all: forget the earlier report of the same promise
         * (same object, so the same 8-byte JSValue). */
        for (size_t i = 0; pv != NULL && i < iso->nunhandled; i++) {
            const void *qv = wrt_mem_ptr(iso->mem, iso->unhandled[i].promise, 8);
            if (qv != NULL && memcmp(pv, qv, 8) == 0) {
                Q(qjs_free_value)(I, iso->unhandled[i].promise);
                Q(qjs_free_value)(I, iso->unhandled[i].reason);
                iso->nunhandled--;
                memmove(&iso->unhandled[i], &iso->unhandled[i + 1],
                        (iso->nunhandled - i) * sizeof iso->unhandled[0]); /* keep the order */
                break;
            }
        }
    } else if (iso->on_rejection != NULL && pv != NULL && reason != 0 &&
               iso->nunhandled < JSG_MAX_UNHANDLED) {
        iso->unhandled[iso->nunhandled].promise = promise;
        iso->unhandled[iso->nunhandled].reason = reason;
        iso->nunhandled++;
        return; /* kept */
    }
    if (promise) Q(qjs_free_value)(I, promise);
    if (reason) Q(qjs_free_value)(I, reason);
}

u32 Z_envZ_host_module_normalize(struct Z_env_instance_t *env, u32 base, u32 name)
{
    (void)base;
    jsg_isolate *iso = env->iso;
    /* Specifiers are used as written: the only module is the component itself. */
    const char *s = wrt_mem_ptr(iso->mem, name, 1);
    if (s == NULL) return 0;
    size_t max = iso->mem->size - name;
    size_t n = strnlen(s, max);
    if (n == max) return 0;
    u32 copy = Q(wasm_malloc)(I, (u32)n + 1);
    char *d = copy ? wrt_mem_ptr(iso->mem, copy, n + 1) : NULL;
    if (d == NULL) return 0;
    memcpy(d, s, n + 1);
    return copy;
}

u32 Z_envZ_host_module_load(struct Z_env_instance_t *env, u32 name, u32 out_len)
{
    (void)env;
    (void)name;
    (void)out_len;
    return 0; /* QuickJS reports "could not load module '<name>'" */
}

u32 Z_envZ_host_get_timezone_offset(struct Z_env_instance_t *env, u32 hi, u32 lo)
{
    (void)env;
    (void)hi;
    (void)lo;
    return 0; /* the sandbox runs in UTC */
}

/* ---- create / free ---- */

/* arg: the QuickJS stack limit (uint32_t) */
static int body_create(jsg_isolate *iso, void *arg, tr_error *err)
{
    uint32_t stack_size = *(const uint32_t *)arg;
    Z_quickjs_instantiate(I, &iso->env, &iso->wasi);
    iso->instantiated = true;
    /* The engine's code addresses memory at instance + WRT_INSTANCE_SPAN: no guest code may run
     * unless it is there. */
    if (iso->mem->data != (uint8_t *)iso->inst + WRT_INSTANCE_SPAN)
        return tr_error_set(err, TR_ENOMEM, "the isolate's memory is not after its instance");
    wrt_memory_cap(iso->mem, (uint32_t)(iso->memory_limit / WRT_PAGE_SIZE));
    Q(_initialize)(I);
    if (Q(qjs_init)(I) != 0)
        return tr_error_set(err, TR_ENOMEM, "cannot create the QuickJS runtime");
    Q(qjs_set_memory_limit)(I, (uint32_t)(iso->memory_limit - NON_HEAP_RESERVE));
    Q(qjs_set_max_stack_size)(I, stack_size);
    Q(qjs_set_interrupt_handler)(I, 1);
    Q(qjs_set_promise_rejection_handler)(I, 1);
    Q(qjs_set_module_loader)(I, 1);
    iso->scratch = Q(wasm_malloc)(I, SCRATCH_SIZE);
    iso->global = Q(qjs_get_global)(I);
    iso->undef = Q(qjs_get_undefined)(I);
    if (iso->scratch == 0 || iso->global == 0 || iso->undef == 0) return jsg__oom(err);
    iso->ctx = Q(qjs_get_context_ptr)(I);
    return jsg__layout_check(iso, err);
}

/* The engine writes to stdout/stderr only for its own failures (an assertion before abort):
 * worth a warning in the host's log. */
static void engine_output(void *user, int fd, const char *data, size_t len)
{
    (void)user;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len > 0) tr_log_warn("JS engine (fd %d): %.*s", fd, (int)TR_MIN(len, 4096u), data);
}

int jsg_isolate_new(const jsg_options *opt, jsg_isolate **out, tr_error *err)
{
    static const jsg_options defaults = {0};
    if (opt == NULL) opt = &defaults;
    size_t limit = opt->memory_limit ? opt->memory_limit : JSG_DEFAULT_MEMORY_LIMIT;
    if (limit < JSG_MIN_MEMORY_LIMIT || limit > ((size_t)4 << 30) - WRT_PAGE_SIZE)
        return tr_error_set(err, TR_EINVAL, "memory limit %zu is outside [%zu, 4 GiB)", limit,
                            JSG_MIN_MEMORY_LIMIT);
    uint32_t stack = opt->stack_size;
    if (stack == 0) {
        size_t native = wrt_thread_stack_size();
        stack = JSG_MAX_STACK_SIZE;
        if (native != 0 && native / JSG_STACK_RATIO < stack)
            stack = (uint32_t)TR_MAX(native / JSG_STACK_RATIO, JSG_MIN_STACK_SIZE);
    }
    if (stack > JSG_MAX_STACK_SIZE) stack = JSG_MAX_STACK_SIZE;

    pthread_once(&g_engine_once, engine_init);
    wrt_thread_init();
    jsg_isolate *iso = tr_calloc(1, sizeof *iso);
    iso->inst = wrt_instance_new(sizeof *iso->inst);
    if (iso->inst == NULL) {
        tr_free(iso);
        return tr_error_set(err, TR_ENOMEM, "cannot reserve an isolate's memory: %s",
                            strerror(errno));
    }
    iso->env.iso = iso;
    iso->mem = &iso->inst->w2c_memory;
    wasi_ctx_init(&iso->wasi, iso->mem);
    iso->wasi.output = engine_output;
    iso->memory_limit = limit;
    iso->timeout_ns = opt->timeout_ns;
    iso->cpu_time = opt->cpu_time;

    int rc = jsg__enter(iso, body_create, &stack, err);
    if (rc < 0) {
        if (rc == TR_ETRAP) jsg__dead_error(iso, err);
        jsg_isolate_free(iso);
        return rc;
    }
    *out = iso;
    return 0;
}

void jsg_isolate_free(jsg_isolate *iso)
{
    if (iso == NULL) return;
    assert(iso->depth == 0);
    if (iso->instantiated) {
        Z_quickjs_free(I);
    } else {
        /* instantiate trapped part way: release what it got */
        wasm_rt_free_memory(iso->mem);
        if (iso->inst->w2c___indirect_function_table.data)
            wasm_rt_free_funcref_table(&iso->inst->w2c___indirect_function_table);
    }
    wrt_instance_free(iso->inst);
    tr_free(iso->fns);
    tr_free(iso->shared);
    tr_free(iso);
}

bool jsg_isolate_dead(const jsg_isolate *iso)
{
    return iso->dead;
}

void jsg_set_timeout(jsg_isolate *iso, uint64_t timeout_ns)
{
    iso->timeout_ns = timeout_ns;
}

size_t jsg_memory_size(const jsg_isolate *iso)
{
    return iso->mem->size;
}

size_t jsg_memory_limit(const jsg_isolate *iso)
{
    return iso->memory_limit;
}

jsg_ref jsg_global(jsg_isolate *iso)
{
    return iso->global;
}

/* ---- eval ---- */

typedef enum eval_mode { MODE_EVAL, MODE_COMPILE, MODE_BYTECODE } eval_mode;

typedef struct eval_args {
    const char *code; /* source, or bytecode without its kind byte */
    size_t len;
    const char *filename;
    int flags;
    jsg_ref *out;
    eval_mode mode;
    tr_buf *bytecode; /* MODE_COMPILE: the output */
} eval_args;

/* The first byte of jsg_compile()'s output: what the rest is. */
#define BYTECODE_SCRIPT 's'
#define BYTECODE_MODULE 'm'

int jsg__run_jobs(jsg_isolate *iso, tr_error *err)
{
    while (Q(qjs_is_job_pending)(I)) {
        if ((int32_t)Q(qjs_execute_pending_job)(I) < 0) return jsg__take_exception(iso, err);
    }
    return 0;
}

/* The kept unhandled rejections, described inside a guarded run; the handler is called
 * afterwards, outside guest context. */
typedef struct unhandled_reasons {
    tr_error reasons[JSG_MAX_UNHANDLED];
    size_t n;
} unhandled_reasons;

static int body_unhandled(jsg_isolate *iso, void *arg, tr_error *err)
{
    (void)err;
    unhandled_reasons *u = arg;
    while (iso->nunhandled > 0) {
        size_t i = --iso->nunhandled;
        jsg__describe(iso, iso->unhandled[i].reason, &u->reasons[u->n++]);
        Q(qjs_free_value)(I, iso->unhandled[i].promise);
        Q(qjs_free_value)(I, iso->unhandled[i].reason);
    }
    return 0;
}

void jsg__report_unhandled(jsg_isolate *iso)
{
    if (iso->nunhandled == 0 || iso->depth != 0 || iso->on_rejection == NULL) return;
    unhandled_reasons *u = tr_calloc(1, sizeof *u);
    if (jsg__enter(iso, body_unhandled, u, NULL) == 0)
        for (size_t i = u->n; i > 0; i--)
            iso->on_rejection(iso, iso->rejection_user, &u->reasons[i - 1]);
    tr_free(u);
}

void jsg_set_rejection_handler(jsg_isolate *iso, jsg_rejection_fn fn, void *user)
{
    iso->on_rejection = fn;
    iso->rejection_user = user;
}

/* A module's evaluation gives a promise of its namespace: run jobs until it settles and replace
 * *h by the namespace (or fail, freeing *h). */
static int settle_module(jsg_isolate *iso, uint32_t *h, tr_error *err)
{
    int rc = jsg__run_jobs(iso, err);
    if (rc < 0) {
        Q(qjs_free_value)(I, *h);
        return rc;
    }
    uint32_t state = Q(qjs_promise_state)(I, *h);
    uint32_t r = state != JSG_PENDING ? Q(qjs_promise_result)(I, *h) : 0;
    Q(qjs_free_value)(I, *h);
    *h = 0;
    if (state == JSG_PENDING)
        return tr_error_set(err, TR_EJS,
                            "the module's evaluation did not settle (top-level await on "
                            "something that never resolves)");
    if (r == 0) return jsg__oom(err);
    if (state == JSG_REJECTED) {
        rc = jsg__describe(iso, r, err);
        Q(qjs_free_value)(I, r);
        return rc;
    }
    *h = r;
    return 0;
}

/* The handle h an evaluation gave: checked, a module's settled, then kept in *a->out or freed. */
static int eval_result(jsg_isolate *iso, const eval_args *a, uint32_t h, tr_error *err)
{
    int rc = jsg__check(iso, h, err);
    if (rc == 0 && a->flags == EVAL_TYPE_MODULE) rc = settle_module(iso, &h, err);
    if (rc < 0) return rc;
    if (a->out)
        *a->out = h;
    else
        Q(qjs_free_value)(I, h);
    return 0;
}

static int body_bytecode(jsg_isolate *iso, const eval_args *a, tr_error *err)
{
    bool heap;
    uint32_t buf = jsg__put_bytes(iso, a->code, a->len, SCRATCH_DATA, &heap);
    if (buf == 0) return jsg__oom(err);
    uint32_t h = Q(qjs_eval_bytecode)(I, buf, (uint32_t)a->len);
    jsg__drop_bytes(iso, buf, heap);
    return eval_result(iso, a, h, err);
}

static int body_compile(jsg_isolate *iso, const eval_args *a, uint32_t code, uint32_t fname,
                        tr_error *err)
{
    uint32_t lenp = jsg__out_slot(iso, 0);
    uint32_t bc = Q(qjs_compile)(I, code, (uint32_t)a->len, fname, (uint32_t)a->flags, 0, lenp);
    if (bc == 0) return jsg__take_exception(iso, err);
    uint32_t n = jsg__load_u32(iso, lenp);
    const char *b = wrt_mem_ptr(iso->mem, bc, n);
    tr_buf_reset(a->bytecode);
    tr_buf_append_char(a->bytecode,
                       a->flags == EVAL_TYPE_MODULE ? BYTECODE_MODULE : BYTECODE_SCRIPT);
    if (b != NULL) tr_buf_append(a->bytecode, b, n);
    Q(wasm_free)(I, bc);
    return b != NULL ? 0 : tr_error_set(err, TR_EINVAL, "bad bytecode length");
}

static int body_eval(jsg_isolate *iso, void *arg, tr_error *err)
{
    const eval_args *a = arg;
    if (a->len >= UINT32_MAX - 1) return tr_error_set(err, TR_ELIMIT, "source too large");
    if (a->mode == MODE_BYTECODE) return body_bytecode(iso, a, err);
    bool cheap, fheap;
    uint32_t code = jsg__put_bytes(iso, a->code, a->len, SCRATCH_DATA, &cheap);
    const char *fn = a->filename ? a->filename : "<eval>";
    uint32_t fname =
        jsg__put_bytes(iso, fn, TR_MIN(strlen(fn), SCRATCH_NAME - 1), SCRATCH_NAME, &fheap);
    if (code == 0 || fname == 0) {
        jsg__drop_bytes(iso, code, cheap);
        jsg__drop_bytes(iso, fname, fheap);
        return jsg__oom(err);
    }
    if (a->mode == MODE_COMPILE) {
        int rc = body_compile(iso, a, code, fname, err);
        jsg__drop_bytes(iso, code, cheap);
        jsg__drop_bytes(iso, fname, fheap);
        return rc;
    }
    uint32_t h = Q(qjs_eval)(I, code, (uint32_t)a->len, fname, (uint32_t)a->flags);
    jsg__drop_bytes(iso, code, cheap);
    jsg__drop_bytes(iso, fname, fheap);
    return eval_result(iso, a, h, err);
}

int jsg_eval(jsg_isolate *iso, const char *code, size_t len, const char *filename, jsg_ref *out,
             tr_error *err)
{
    if (out) *out = 0;
    eval_args a = {code, len, filename, EVAL_TYPE_GLOBAL, out, MODE_EVAL, NULL};
    return jsg__guarded(iso, body_eval, &a, err);
}

int jsg_eval_module(jsg_isolate *iso, const char *code, size_t len, const char *name, jsg_ref *ns,
                    tr_error *err)
{
    if (ns) *ns = 0;
    eval_args a = {code, len, name, EVAL_TYPE_MODULE, ns, MODE_EVAL, NULL};
    int rc = jsg__enter(iso, body_eval, &a, err);
    jsg__report_unhandled(iso);
    return jsg__finish(iso, rc, err);
}

int jsg_compile(jsg_isolate *iso, const char *code, size_t len, const char *name, bool module,
                tr_buf *out, tr_error *err)
{
    eval_args a = {code, len,          name, module ? EVAL_TYPE_MODULE : EVAL_TYPE_GLOBAL,
                   NULL, MODE_COMPILE, out};
    return jsg__guarded(iso, body_eval, &a, err);
}

int jsg_eval_bytecode(jsg_isolate *iso, const void *bytecode, size_t len, jsg_ref *out,
                      tr_error *err)
{
    if (out) *out = 0;
    const char *b = bytecode;
    if (len < 2 || (b[0] != BYTECODE_SCRIPT && b[0] != BYTECODE_MODULE))
        return tr_error_set(err, TR_EINVAL, "not bytecode made by jsg_compile");
    int flags = b[0] == BYTECODE_MODULE ? EVAL_TYPE_MODULE : EVAL_TYPE_GLOBAL;
    eval_args a = {b + 1, len - 1, NULL, flags, out, MODE_BYTECODE, NULL};
    int rc = jsg__enter(iso, body_eval, &a, err);
    if (flags == EVAL_TYPE_MODULE) jsg__report_unhandled(iso);
    return jsg__finish(iso, rc, err);
}

void jsg_interrupt(jsg_isolate *iso)
{
    atomic_store(&iso->interrupt_req, true);
}

static int body_jobs(jsg_isolate *iso, void *arg, tr_error *err)
{
    (void)arg;
    return jsg__run_jobs(iso, err);
}

int jsg_run_jobs(jsg_isolate *iso, tr_error *err)
{
    int rc = jsg__enter(iso, body_jobs, NULL, err);
    jsg__report_unhandled(iso);
    return jsg__finish(iso, rc, err);
}

/* ---- host functions ---- */

/* arg: the object (0: the global object) that gets the newest of iso->fns */
static int body_define(jsg_isolate *iso, void *arg, tr_error *err)
{
    jsg_ref obj = *(const jsg_ref *)arg;
    const host_fn *hf = &iso->fns[iso->nfns - 1];
    bool heap;
    uint32_t name = jsg__put_bytes(iso, hf->name, hf->name_len, SCRATCH_NAME, &heap);
    if (name == 0) return jsg__oom(err);
    uint32_t f = Q(qjs_new_host_function)(I, name, (uint32_t)hf->name_len, 0);
    int rc = jsg__check(iso, f, err);
    if (rc < 0) return rc;
    /* the name is still in the scratch area: qjs_new_host_function ran no JS */
    int32_t r = (int32_t)Q(qjs_define_prop_string)(I, obj ? obj : iso->global, name, f, PROP_CW);
    Q(qjs_free_value)(I, f);
    return r < 0 ? jsg__take_exception(iso, err) : 0;
}

int jsg_define_function(jsg_isolate *iso, jsg_ref obj, const char *name, jsg_host_fn fn, void *user,
                        tr_error *err)
{
    size_t len = strlen(name);
    if (len == 0 || len >= MAX_HOST_FN_NAME || fn == NULL)
        return tr_error_set(err, TR_EINVAL, "host function name must have 1 to %d bytes",
                            MAX_HOST_FN_NAME - 1);
    if (find_fn(iso, name, len) != NULL)
        return tr_error_set(err, TR_ECONFLICT, "host function \"%s\" is already defined", name);
    if (iso->nfns == MAX_HOST_FNS)
        return tr_error_set(err, TR_ELIMIT, "more than %d host functions", MAX_HOST_FNS);
    if (iso->dead) return jsg__dead_error(iso, err);
    iso->fns = tr_realloc(iso->fns, (iso->nfns + 1) * sizeof *iso->fns);
    host_fn *f = &iso->fns[iso->nfns];
    memcpy(f->name, name, len);
    f->name_len = len;
    f->fn = fn;
    f->user = user;
    iso->nfns++;
    int rc = jsg__guarded(iso, body_define, &obj, err);
    if (rc < 0) iso->nfns--;
    return rc;
}
