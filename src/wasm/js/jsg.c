/* wasm/js/jsg.c: JS isolates over the engine's qjs_* exports (see jsg.h).
 *
 * DESIGN: every public function runs its body through run(), i.e. wrt_call(): one guarded entry
 * per operation, however many exports the body calls, so a trap anywhere ends the operation
 * with TR_ETRAP and marks the isolate dead. Host imports (host_call, ...) run host code with the
 * "in guest" flag cleared; when a host function's own jsg calls trap (a nested wrt_call frame),
 * host_call re-raises the trap as soon as the callback returns, unwinding the outer call too.
 *
 * Values cross as the engine's handles: guest pointers to heap-allocated JSValues (jsg_ref).
 * Small strings and out-parameters go through a per-isolate scratch area in guest memory
 * (allocated once), so the per-call path does no guest malloc beyond the handles themselves.
 * A scratch area is never live across a call that can run JS.
 *
 * Linear memory lives in a fixed reservation (wrt.c), so guest pointers turned into host
 * pointers stay valid after memory.grow; they are still bounds-checked with wrt_mem_ptr().
 *
 * Freeing an isolate does not run QuickJS's own teardown: the whole linear memory is unmapped,
 * which releases every JS object at once (and cannot be disturbed by leaked guest refs). */
#include "wasm/js/jsg.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "engine_info.h"
#include "quickjs.h"
#include "wasm/runtime/wrt.h"
#include "wasm/wasi/wasi.h"

#define Q(name) Z_quickjsZ_##name

/* QuickJS eval flags (JS_EVAL_*) */
#define EVAL_TYPE_GLOBAL 0
#define EVAL_TYPE_MODULE 1
/* JS_PROP_* */
#define PROP_CW  3
#define PROP_CWE 7

#define MAX_HOST_FNS     256
#define MAX_HOST_FN_NAME 64
#define MAX_HOST_ARGS    256
#define MAX_DEPTH        64
/* Longest array jsg_to_val copies: a sparse JS array can claim 2^32-1 elements. */
#define MAX_ARRAY_LEN 1000000
#define SCRATCH_OUT   256  /* out-parameters and small argv arrays */
#define SCRATCH_NAME  256  /* file names, property names */
#define SCRATCH_DATA  4096 /* small strings */
#define SCRATCH_SIZE  (SCRATCH_OUT + SCRATCH_NAME + SCRATCH_DATA)
/* Linear memory that is not JS heap: the 1 MiB shadow stack, static data, allocator slack. */
#define NON_HEAP_RESERVE ((size_t)2 << 20)

struct Z_env_instance_t {
    jsg_isolate *iso;
};

typedef struct host_fn {
    char name[MAX_HOST_FN_NAME];
    size_t name_len;
    jsg_host_fn fn;
    void *user;
} host_fn;

struct jsg_isolate {
    Z_quickjs_instance_t inst;
    struct Z_env_instance_t env;
    wasi_ctx wasi;
    wasm_rt_memory_t *mem; /* &inst.w2c_memory */
    bool instantiated;
    bool dead;
    wasm_rt_trap_t trap;
    int depth; /* nesting of run() */
    uint64_t timeout_ns;
    uint64_t deadline_ns; /* 0: not yet fixed in this top-level call (see host_interrupt) */
    bool cpu_time;        /* timeout counts the thread's CPU time */
    bool interrupted;
    int limit_rc; /* TR_EINTERRUPTED or TR_ENOMEM of a top-level call, for jsg_take_limit_error() */
    atomic_bool interrupt_req; /* jsg_interrupt(), from any thread */
    size_t memory_limit;
    uint32_t scratch;      /* guest offset of SCRATCH_SIZE bytes */
    jsg_ref global, undef; /* held for the isolate's lifetime */
    jsg_ref json_stringify;
    uint32_t u8_class_id;
    host_fn *fns;
    size_t nfns;
    /* rejected promises without a handler, reported when jobs run out */
    jsg_rejection_fn on_rejection;
    void *rejection_user;
    struct {
        uint32_t promise, reason; /* owned handles */
    } unhandled[JSG_MAX_UNHANDLED];
    size_t nunhandled;
};

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

/* ---- guarded execution ---- */

static int run(jsg_isolate *iso, void (*fn)(void *), void *arg)
{
    if (iso->dead) return TR_ETRAP;
    if (iso->depth == 0) {
        iso->interrupted = false;
        iso->deadline_ns = 0; /* fixed at the first interrupt check: no clock read per call */
    }
    iso->depth++;
    wasm_rt_trap_t trap = wrt_call(iso->mem, fn, arg);
    iso->depth--;
    if (trap != WASM_RT_TRAP_NONE) {
        iso->dead = true;
        iso->trap = trap;
        return TR_ETRAP;
    }
    return 0;
}

static int dead_error(jsg_isolate *iso, tr_error *err)
{
    return tr_error_set(err, TR_ETRAP, "the engine trapped (%s); the isolate is discarded",
                        wrt_trap_name(iso->trap));
}

/* The result of run() made into an error with a message. */
static int finish(jsg_isolate *iso, int run_rc, int rc, tr_error *err)
{
    if (run_rc == TR_ETRAP) return dead_error(iso, err);
    if ((rc == TR_EINTERRUPTED || rc == TR_ENOMEM) && iso->depth == 0) iso->limit_rc = rc;
    return rc;
}

int jsg_take_limit_error(jsg_isolate *iso)
{
    int rc = iso->limit_rc;
    iso->limit_rc = 0;
    return rc;
}

/* ---- guest memory helpers (called inside run()) ---- */

#define I (&iso->inst)

static uint32_t out_slot(jsg_isolate *iso, unsigned i)
{
    return iso->scratch + 4 * i;
}

static uint32_t load_u32(jsg_isolate *iso, uint32_t off)
{
    uint32_t v = 0;
    const void *p = wrt_mem_ptr(iso->mem, off, 4);
    if (p != NULL) memcpy(&v, p, 4);
    return v;
}

static void store_u32(jsg_isolate *iso, uint32_t off, uint32_t v)
{
    void *p = wrt_mem_ptr(iso->mem, off, 4);
    if (p != NULL) memcpy(p, &v, 4);
}

/* Copies (p, n) into guest memory followed by a NUL: into the scratch area `area` when it fits
 * (area is SCRATCH_NAME or SCRATCH_DATA), else into a guest malloc (*heap = true). Returns the
 * guest offset, or 0 when the guest is out of memory. */
static uint32_t put_bytes(jsg_isolate *iso, const void *p, size_t n, int area, bool *heap)
{
    *heap = false;
    uint32_t off;
    if (area == SCRATCH_NAME && n < SCRATCH_NAME) {
        off = iso->scratch + SCRATCH_OUT;
    } else if (area == SCRATCH_DATA && n < SCRATCH_DATA) {
        off = iso->scratch + SCRATCH_OUT + SCRATCH_NAME;
    } else {
        if (n >= UINT32_MAX) return 0;
        off = Q(wasm_malloc)(I, (uint32_t)(n + 1));
        if (off == 0) return 0;
        *heap = true;
    }
    char *d = wrt_mem_ptr(iso->mem, off, n + 1);
    if (d == NULL) return 0;
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    return off;
}

static void drop_bytes(jsg_isolate *iso, uint32_t off, bool heap)
{
    if (heap) Q(wasm_free)(I, off);
}

static int oom(tr_error *err)
{
    return tr_error_set(err, TR_ENOMEM, "out of memory in the JavaScript isolate");
}

/* A handle for `ref`, or the undefined handle for 0. */
static uint32_t or_undef(jsg_isolate *iso, jsg_ref ref)
{
    return ref ? ref : iso->undef;
}

/* Reads the string value of handle h (ToString for non-strings) into buf. Returns 0, or -1 when
 * the conversion threw (the exception is pending). */
static int read_string(jsg_isolate *iso, uint32_t h, tr_buf *buf)
{
    uint32_t lenp = out_slot(iso, 0);
    uint32_t c = Q(qjs_get_string_len)(I, h, lenp);
    if (c == 0) return -1;
    uint32_t len = load_u32(iso, lenp);
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
    uint32_t key = put_bytes(iso, name, strlen(name), SCRATCH_NAME, &heap);
    if (key == 0) return;
    uint32_t v = Q(qjs_get_prop_string)(I, obj, key);
    drop_bytes(iso, key, heap);
    if (v == 0) return;
    if (Q(qjs_is_exception)(I, v)) {
        Q(qjs_free_value)(I, v);
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
        return;
    }
    if (!Q(qjs_is_undefined)(I, v) && read_string(iso, v, buf) < 0) {
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
    }
    Q(qjs_free_value)(I, v);
}

/* Describes the JS value h (an Error or any thrown value) into err as TR_EJS, or TR_ENOMEM for
 * QuickJS's out-of-memory error. */
static int describe(jsg_isolate *iso, uint32_t h, tr_error *err)
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
    } else if (read_string(iso, h, &msg) == 0) {
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
static int take_exception(jsg_isolate *iso, tr_error *err)
{
    uint32_t e = Q(qjs_get_exception)(I);
    if (iso->interrupted) {
        if (e) Q(qjs_free_value)(I, e);
        return tr_error_set(err, TR_EINTERRUPTED,
                            "InternalError: interrupted: the JavaScript ran past its deadline");
    }
    if (e == 0) return oom(err);
    int rc = describe(iso, e, err);
    Q(qjs_free_value)(I, e);
    return rc;
}

/* Checks a handle an export returned: 0 (no memory for the handle) or an exception. On failure
 * the handle is freed. */
static int check(jsg_isolate *iso, uint32_t h, tr_error *err)
{
    if (h == 0) {
        /* The pending exception (if any) belongs to this failure. */
        uint32_t e = Q(qjs_get_exception)(I);
        if (e) Q(qjs_free_value)(I, e);
        return oom(err);
    }
    if (Q(qjs_is_exception)(I, h)) {
        Q(qjs_free_value)(I, h);
        return take_exception(iso, err);
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
    uint32_t s = put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (s != 0) {
        uint32_t sh = Q(qjs_new_string)(I, s, (uint32_t)n);
        drop_bytes(iso, s, heap);
        if (sh != 0) {
            bool kheap;
            uint32_t k = put_bytes(iso, "message", 7, SCRATCH_NAME, &kheap);
            if (k) Q(qjs_define_prop_string)(I, e, k, sh, PROP_CW);
            drop_bytes(iso, k, kheap);
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
    if (e.code == 0) tr_error_set(&e, rc, "%s", tr_strerror(rc));
    throw_error(iso, e.msg, strlen(e.msg));
    return 0;
}

u32 Z_envZ_host_interrupt(struct Z_env_instance_t *env)
{
    jsg_isolate *iso = env->iso;
    if (atomic_load_explicit(&iso->interrupt_req, memory_order_relaxed) &&
        atomic_exchange(&iso->interrupt_req, false)) {
        iso->interrupted = true;
        return 1;
    }
    if (iso->timeout_ns == 0) return 0;
    /* QuickJS checks every few thousand operations, so a call that is short never reads the
     * clock; a long one starts its clock at its first check (a few microseconds in). */
    uint64_t now = iso->cpu_time ? tr_thread_cpu_ns() : tr_now_ns();
    if (iso->deadline_ns == 0) {
        iso->deadline_ns = now + iso->timeout_ns;
        return 0;
    }
    if (now >= iso->deadline_ns) {
        iso->interrupted = true;
        return 1;
    }
    return 0;
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

typedef struct op_create {
    jsg_isolate *iso;
    uint32_t stack_size;
    tr_error *err;
    int rc;
} op_create;

static void body_create(void *p)
{
    op_create *op = p;
    jsg_isolate *iso = op->iso;
    Z_quickjs_instantiate(I, &iso->env, &iso->wasi);
    iso->instantiated = true;
    wrt_memory_cap(iso->mem, (uint32_t)(iso->memory_limit / WRT_PAGE_SIZE));
    Q(_initialize)(I);
    if (Q(qjs_init)(I) != 0) {
        op->rc = tr_error_set(op->err, TR_ENOMEM, "cannot create the QuickJS runtime");
        return;
    }
    Q(qjs_set_memory_limit)(I, (uint32_t)(iso->memory_limit - NON_HEAP_RESERVE));
    Q(qjs_set_max_stack_size)(I, op->stack_size);
    Q(qjs_set_interrupt_handler)(I, 1);
    Q(qjs_set_promise_rejection_handler)(I, 1);
    Q(qjs_set_module_loader)(I, 1);
    iso->scratch = Q(wasm_malloc)(I, SCRATCH_SIZE);
    iso->global = Q(qjs_get_global)(I);
    iso->undef = Q(qjs_get_undefined)(I);
    if (iso->scratch == 0 || iso->global == 0 || iso->undef == 0) {
        op->rc = oom(op->err);
        return;
    }
    op->rc = 0;
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
    iso->env.iso = iso;
    iso->mem = &iso->inst.w2c_memory;
    wasi_ctx_init(&iso->wasi, iso->mem);
    iso->wasi.output = engine_output;
    iso->memory_limit = limit;
    iso->timeout_ns = opt->timeout_ns;
    iso->cpu_time = opt->cpu_time;

    op_create op = {iso, stack, err, 0};
    int rc = run(iso, body_create, &op);
    if (rc == 0) rc = op.rc;
    if (rc < 0) {
        if (rc == TR_ETRAP) dead_error(iso, err);
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
        if (iso->inst.w2c___indirect_function_table.data)
            wasm_rt_free_funcref_table(&iso->inst.w2c___indirect_function_table);
    }
    tr_free(iso->fns);
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

jsg_ref jsg_global(jsg_isolate *iso)
{
    return iso->global;
}

/* ---- eval ---- */

typedef enum eval_mode { MODE_EVAL, MODE_COMPILE, MODE_BYTECODE } eval_mode;

typedef struct op_eval {
    jsg_isolate *iso;
    const char *code; /* source, or bytecode without its kind byte */
    size_t len;
    const char *filename;
    int flags;
    jsg_ref *out;
    tr_error *err;
    int rc;
    eval_mode mode;
    tr_buf *bytecode; /* MODE_COMPILE: the output */
} op_eval;

/* The first byte of jsg_compile()'s output: what the rest is. */
#define BYTECODE_SCRIPT 's'
#define BYTECODE_MODULE 'm'

static int run_jobs_inner(jsg_isolate *iso, tr_error *err)
{
    while (Q(qjs_is_job_pending)(I)) {
        if ((int32_t)Q(qjs_execute_pending_job)(I) < 0) return take_exception(iso, err);
    }
    return 0;
}

/* Describes the kept unhandled rejections into reasons[] (inside run()); the handler is called
 * afterwards, outside guest context. */
typedef struct op_unhandled {
    jsg_isolate *iso;
    tr_error reasons[JSG_MAX_UNHANDLED];
    size_t n;
} op_unhandled;

static void body_unhandled(void *p)
{
    op_unhandled *op = p;
    jsg_isolate *iso = op->iso;
    while (iso->nunhandled > 0) {
        size_t i = --iso->nunhandled;
        describe(iso, iso->unhandled[i].reason, &op->reasons[op->n++]);
        Q(qjs_free_value)(I, iso->unhandled[i].promise);
        Q(qjs_free_value)(I, iso->unhandled[i].reason);
    }
}

static void report_unhandled(jsg_isolate *iso)
{
    if (iso->nunhandled == 0 || iso->depth != 0 || iso->on_rejection == NULL) return;
    op_unhandled *op = tr_calloc(1, sizeof *op);
    op->iso = iso;
    if (run(iso, body_unhandled, op) == 0)
        for (size_t i = op->n; i > 0; i--)
            iso->on_rejection(iso, iso->rejection_user, &op->reasons[i - 1]);
    tr_free(op);
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
    int rc = run_jobs_inner(iso, err);
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
    if (r == 0) return oom(err);
    if (state == JSG_REJECTED) {
        rc = describe(iso, r, err);
        Q(qjs_free_value)(I, r);
        return rc;
    }
    *h = r;
    return 0;
}

static void body_bytecode(op_eval *op)
{
    jsg_isolate *iso = op->iso;
    bool heap;
    uint32_t buf = put_bytes(iso, op->code, op->len, SCRATCH_DATA, &heap);
    if (buf == 0) {
        op->rc = oom(op->err);
        return;
    }
    uint32_t h = Q(qjs_eval_bytecode)(I, buf, (uint32_t)op->len);
    drop_bytes(iso, buf, heap);
    op->rc = check(iso, h, op->err);
    if (op->rc == 0 && op->flags == EVAL_TYPE_MODULE) op->rc = settle_module(iso, &h, op->err);
    if (op->rc < 0) return;
    if (op->out)
        *op->out = h;
    else
        Q(qjs_free_value)(I, h);
}

static void body_eval(void *p)
{
    op_eval *op = p;
    jsg_isolate *iso = op->iso;
    if (op->len >= UINT32_MAX - 1) {
        op->rc = tr_error_set(op->err, TR_ELIMIT, "source too large");
        return;
    }
    if (op->mode == MODE_BYTECODE) {
        body_bytecode(op);
        return;
    }
    bool cheap, fheap;
    uint32_t code = put_bytes(iso, op->code, op->len, SCRATCH_DATA, &cheap);
    const char *fn = op->filename ? op->filename : "<eval>";
    uint32_t fname = put_bytes(iso, fn, TR_MIN(strlen(fn), SCRATCH_NAME - 1), SCRATCH_NAME, &fheap);
    if (code == 0 || fname == 0) {
        drop_bytes(iso, code, cheap);
        drop_bytes(iso, fname, fheap);
        op->rc = oom(op->err);
        return;
    }
    if (op->mode == MODE_COMPILE) {
        uint32_t lenp = out_slot(iso, 0);
        uint32_t bc =
            Q(qjs_compile)(I, code, (uint32_t)op->len, fname, (uint32_t)op->flags, 0, lenp);
        drop_bytes(iso, code, cheap);
        drop_bytes(iso, fname, fheap);
        if (bc == 0) {
            op->rc = take_exception(iso, op->err);
            return;
        }
        uint32_t n = load_u32(iso, lenp);
        const char *b = wrt_mem_ptr(iso->mem, bc, n);
        tr_buf_reset(op->bytecode);
        tr_buf_append_char(op->bytecode,
                           op->flags == EVAL_TYPE_MODULE ? BYTECODE_MODULE : BYTECODE_SCRIPT);
        if (b != NULL) tr_buf_append(op->bytecode, b, n);
        Q(wasm_free)(I, bc);
        op->rc = b != NULL ? 0 : tr_error_set(op->err, TR_EINVAL, "bad bytecode length");
        return;
    }
    uint32_t h = Q(qjs_eval)(I, code, (uint32_t)op->len, fname, (uint32_t)op->flags);
    drop_bytes(iso, code, cheap);
    drop_bytes(iso, fname, fheap);
    op->rc = check(iso, h, op->err);
    if (op->rc == 0 && op->flags == EVAL_TYPE_MODULE) op->rc = settle_module(iso, &h, op->err);
    if (op->rc < 0) return;
    if (op->out)
        *op->out = h;
    else
        Q(qjs_free_value)(I, h);
}

int jsg_eval(jsg_isolate *iso, const char *code, size_t len, const char *filename, jsg_ref *out,
             tr_error *err)
{
    if (out) *out = 0;
    op_eval op = {iso, code, len, filename, EVAL_TYPE_GLOBAL, out, err, 0, MODE_EVAL, NULL};
    int rc = run(iso, body_eval, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

int jsg_eval_module(jsg_isolate *iso, const char *code, size_t len, const char *name, jsg_ref *ns,
                    tr_error *err)
{
    if (ns) *ns = 0;
    op_eval op = {iso, code, len, name, EVAL_TYPE_MODULE, ns, err, 0, MODE_EVAL, NULL};
    int rc = run(iso, body_eval, &op);
    report_unhandled(iso);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

int jsg_compile(jsg_isolate *iso, const char *code, size_t len, const char *name, bool module,
                tr_buf *out, tr_error *err)
{
    op_eval op = {iso,  code, len, name,         module ? EVAL_TYPE_MODULE : EVAL_TYPE_GLOBAL,
                  NULL, err,  0,   MODE_COMPILE, out};
    int rc = run(iso, body_eval, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

int jsg_eval_bytecode(jsg_isolate *iso, const void *bytecode, size_t len, jsg_ref *out,
                      tr_error *err)
{
    if (out) *out = 0;
    const char *b = bytecode;
    if (len < 2 || (b[0] != BYTECODE_SCRIPT && b[0] != BYTECODE_MODULE))
        return tr_error_set(err, TR_EINVAL, "not bytecode made by jsg_compile");
    int flags = b[0] == BYTECODE_MODULE ? EVAL_TYPE_MODULE : EVAL_TYPE_GLOBAL;
    op_eval op = {iso, b + 1, len - 1, NULL, flags, out, err, 0, MODE_BYTECODE, NULL};
    int rc = run(iso, body_eval, &op);
    if (flags == EVAL_TYPE_MODULE) report_unhandled(iso);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

void jsg_interrupt(jsg_isolate *iso)
{
    atomic_store(&iso->interrupt_req, true);
}

typedef struct op_simple {
    jsg_isolate *iso;
    tr_error *err;
    int rc;
} op_simple;

static void body_jobs(void *p)
{
    op_simple *op = p;
    op->rc = run_jobs_inner(op->iso, op->err);
}

int jsg_run_jobs(jsg_isolate *iso, tr_error *err)
{
    op_simple op = {iso, err, 0};
    int rc = run(iso, body_jobs, &op);
    report_unhandled(iso);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

/* ---- call ---- */

typedef struct op_call {
    jsg_isolate *iso;
    jsg_ref fn, this_;
    size_t argc;
    const jsg_ref *argv;
    jsg_ref *out;
    tr_error *err;
    int rc;
} op_call;

static void body_call(void *p)
{
    op_call *op = p;
    jsg_isolate *iso = op->iso;
    uint32_t argv = 0;
    bool heap = false;
    if (op->argc > 0) {
        size_t bytes = op->argc * 4;
        if (bytes <= SCRATCH_OUT - 16) {
            argv = out_slot(iso, 4);
        } else {
            argv = Q(wasm_malloc)(I, (uint32_t)bytes);
            heap = true;
            if (argv == 0) {
                op->rc = oom(op->err);
                return;
            }
        }
        for (size_t i = 0; i < op->argc; i++)
            store_u32(iso, argv + 4 * (uint32_t)i, or_undef(iso, op->argv[i]));
    }
    uint32_t h = Q(qjs_call)(I, op->fn, or_undef(iso, op->this_), (uint32_t)op->argc, argv);
    if (heap) Q(wasm_free)(I, argv);
    op->rc = check(iso, h, op->err);
    if (op->rc < 0) return;
    if (op->out)
        *op->out = h;
    else
        Q(qjs_free_value)(I, h);
}

int jsg_call(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_ref *argv,
             jsg_ref *out, tr_error *err)
{
    if (out) *out = 0;
    if (fn == 0 || argc > MAX_HOST_ARGS)
        return tr_error_set(err, TR_EINVAL, "jsg_call: no function or too many arguments");
    op_call op = {iso, fn, this_, argc, argv, out, err, 0};
    int rc = run(iso, body_call, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

/* ---- refs ---- */

typedef struct op_ref {
    jsg_isolate *iso;
    jsg_ref ref;
    jsg_ref out;
    int kind;
} op_ref;

static void body_dup(void *p)
{
    op_ref *op = p;
    op->out = Z_quickjsZ_qjs_dup_value(&op->iso->inst, op->ref);
}

int jsg_ref_dup(jsg_isolate *iso, jsg_ref ref, jsg_ref *out)
{
    *out = 0;
    op_ref op = {iso, ref, 0, 0};
    int rc = run(iso, body_dup, &op);
    if (rc < 0) return rc;
    if (op.out == 0) return TR_ENOMEM;
    *out = op.out;
    return 0;
}

static void body_free(void *p)
{
    op_ref *op = p;
    Z_quickjsZ_qjs_free_value(&op->iso->inst, op->ref);
}

void jsg_ref_free(jsg_isolate *iso, jsg_ref ref)
{
    if (ref == 0 || iso->dead) return;
    op_ref op = {iso, ref, 0, 0};
    run(iso, body_free, &op);
}

static void body_kind(void *p)
{
    op_ref *op = p;
    jsg_isolate *iso = op->iso;
    uint32_t h = op->ref;
    jsg_kind k;
    if (Q(qjs_is_undefined)(I, h))
        k = JSG_K_UNDEFINED;
    else if (Q(qjs_is_null)(I, h))
        k = JSG_K_NULL;
    else if (Q(qjs_is_bool)(I, h))
        k = JSG_K_BOOL;
    else if (Q(qjs_is_number)(I, h))
        k = JSG_K_NUMBER;
    else if (Q(qjs_is_big_int)(I, h))
        k = JSG_K_BIGINT;
    else if (Q(qjs_is_string)(I, h))
        k = JSG_K_STRING;
    else if (Q(qjs_is_symbol)(I, h))
        k = JSG_K_SYMBOL;
    else if (Q(qjs_is_function)(I, h))
        k = JSG_K_FUNCTION;
    else if (Q(qjs_is_array)(I, h))
        k = JSG_K_ARRAY;
    else if (Q(qjs_is_promise)(I, h))
        k = JSG_K_PROMISE;
    else if (Q(qjs_is_error)(I, h))
        k = JSG_K_ERROR;
    else
        k = JSG_K_OBJECT;
    op->kind = (int)k;
}

jsg_kind jsg_ref_kind(jsg_isolate *iso, jsg_ref ref)
{
    op_ref op = {iso, or_undef(iso, ref), 0, JSG_K_UNDEFINED};
    if (run(iso, body_kind, &op) < 0) return JSG_K_UNDEFINED;
    return (jsg_kind)op.kind;
}

/* ---- properties ---- */

typedef struct op_prop {
    jsg_isolate *iso;
    jsg_ref obj;
    const char *key;
    size_t key_len;
    jsg_ref value; /* set: the value; get: the result */
    bool set;
    tr_error *err;
    int rc;
} op_prop;

/* A string handle for (p, n). 0 on OOM. */
static uint32_t new_string(jsg_isolate *iso, const char *p, size_t n)
{
    bool heap;
    uint32_t s = put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (s == 0) return 0;
    uint32_t h = Q(qjs_new_string)(I, s, (uint32_t)n);
    drop_bytes(iso, s, heap);
    return h;
}

static void body_prop(void *p)
{
    op_prop *op = p;
    jsg_isolate *iso = op->iso;
    uint32_t obj = op->obj ? op->obj : iso->global;
    uint32_t key = new_string(iso, op->key, op->key_len);
    if (key == 0) {
        op->rc = oom(op->err);
        return;
    }
    if (op->set) {
        int32_t r = (int32_t)Q(qjs_set_prop_value)(I, obj, key, or_undef(iso, op->value));
        Q(qjs_free_value)(I, key);
        op->rc = r < 0 ? take_exception(iso, op->err) : 0;
        return;
    }
    uint32_t h = Q(qjs_get_prop_value)(I, obj, key);
    Q(qjs_free_value)(I, key);
    op->rc = check(iso, h, op->err);
    if (op->rc == 0) op->value = h;
}

int jsg_get(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref *out,
            tr_error *err)
{
    *out = 0;
    op_prop op = {iso, obj, key, key_len, 0, false, err, 0};
    int rc = run(iso, body_prop, &op);
    rc = finish(iso, rc, rc ? rc : op.rc, err);
    if (rc == 0) *out = op.value;
    return rc;
}

int jsg_set(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref value,
            tr_error *err)
{
    op_prop op = {iso, obj, key, key_len, value, true, err, 0};
    int rc = run(iso, body_prop, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

/* ---- conversions ---- */

typedef struct op_conv {
    jsg_isolate *iso;
    const jsg_val *in;
    jsg_ref ref;
    tr_arena *arena;
    jsg_val *out;
    tr_buf *buf;
    tr_error *err;
    int rc;
} op_conv;

static int from_val(jsg_isolate *iso, const jsg_val *v, int depth, uint32_t *out, tr_error *err)
{
    uint32_t h = 0;
    *out = 0;
    if (depth > MAX_DEPTH)
        return tr_error_set(err, TR_EINVAL, "value nested deeper than %d levels", MAX_DEPTH);
    switch (v->type) {
    case JSG_UNDEFINED:
        h = Q(qjs_get_undefined)(I);
        break;
    case JSG_NULL:
        h = Q(qjs_get_null)(I);
        break;
    case JSG_BOOL:
        h = v->u.b ? Q(qjs_get_true)(I) : Q(qjs_get_false)(I);
        break;
    case JSG_NUMBER:
        h = Q(qjs_new_number)(I, v->u.num);
        break;
    case JSG_BIGINT: {
        uint64_t u = (uint64_t)v->u.big;
        h = Q(qjs_new_big_int64)(I, (uint32_t)u, (uint32_t)(u >> 32));
        break;
    }
    case JSG_STRING:
    case JSG_BYTES: {
        if (v->u.str.len >= UINT32_MAX) return tr_error_set(err, TR_ELIMIT, "string too large");
        bool heap;
        uint32_t s = put_bytes(iso, v->u.str.ptr, v->u.str.len, SCRATCH_DATA, &heap);
        if (s == 0) return oom(err);
        h = v->type == JSG_STRING ? Q(qjs_new_string)(I, s, (uint32_t)v->u.str.len)
                                  : Q(qjs_new_uint8_array)(I, s, (uint32_t)v->u.str.len);
        drop_bytes(iso, s, heap);
        break;
    }
    case JSG_ARRAY: {
        h = Q(qjs_new_array)(I);
        int rc = check(iso, h, err);
        if (rc < 0) return rc;
        for (size_t i = 0; i < v->u.arr.len; i++) {
            uint32_t c;
            rc = from_val(iso, &v->u.arr.items[i], depth + 1, &c, err);
            if (rc < 0) {
                Q(qjs_free_value)(I, h);
                return rc;
            }
            int32_t r = (int32_t)Q(qjs_set_prop_uint32)(I, h, (uint32_t)i, c);
            Q(qjs_free_value)(I, c);
            if (r < 0) {
                Q(qjs_free_value)(I, h);
                return take_exception(iso, err);
            }
        }
        *out = h;
        return 0;
    }
    case JSG_OBJECT: {
        h = Q(qjs_new_object)(I);
        int rc = check(iso, h, err);
        if (rc < 0) return rc;
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const jsg_prop *pr = &v->u.obj.props[i];
            uint32_t c;
            rc = from_val(iso, &pr->val, depth + 1, &c, err);
            if (rc < 0) {
                Q(qjs_free_value)(I, h);
                return rc;
            }
            /* define, not set: no setters run and "__proto__" is an ordinary key. A key without
             * NUL goes as a C string; one with NUL needs a string value. */
            int32_t r;
            if (memchr(pr->key, 0, pr->key_len) == NULL) {
                bool heap;
                uint32_t k = put_bytes(iso, pr->key, pr->key_len, SCRATCH_NAME, &heap);
                r = k ? (int32_t)Q(qjs_define_prop_string)(I, h, k, c, PROP_CWE) : -2;
                drop_bytes(iso, k, heap);
            } else {
                uint32_t k = new_string(iso, pr->key, pr->key_len);
                r = k ? (int32_t)Q(qjs_define_prop_value)(I, h, k, c, PROP_CWE) : -2;
                if (k) Q(qjs_free_value)(I, k);
            }
            Q(qjs_free_value)(I, c);
            if (r < 0) {
                Q(qjs_free_value)(I, h);
                return r == -2 ? oom(err) : take_exception(iso, err);
            }
        }
        *out = h;
        return 0;
    }
    default:
        return tr_error_set(err, TR_EINVAL, "unknown value type %d", (int)v->type);
    }
    int rc = check(iso, h, err);
    if (rc < 0) return rc;
    *out = h;
    return 0;
}

static void body_from_val(void *p)
{
    op_conv *op = p;
    op->rc = from_val(op->iso, op->in, 0, &op->ref, op->err);
}

int jsg_from_val(jsg_isolate *iso, const jsg_val *v, jsg_ref *out, tr_error *err)
{
    *out = 0;
    op_conv op = {.iso = iso, .in = v, .err = err};
    int rc = run(iso, body_from_val, &op);
    rc = finish(iso, rc, rc ? rc : op.rc, err);
    if (rc == 0) *out = op.ref;
    return rc;
}

static uint32_t u8_class_id(jsg_isolate *iso)
{
    if (iso->u8_class_id == 0) {
        uint32_t h = Q(qjs_new_uint8_array)(I, iso->scratch, 0);
        if (h != 0) {
            iso->u8_class_id = Q(qjs_get_class_id)(I, h);
            Q(qjs_free_value)(I, h);
        }
    }
    return iso->u8_class_id;
}

#define SKIP 1 /* to_val: a function or symbol inside a container */

static int to_val(jsg_isolate *iso, uint32_t h, tr_arena *a, int depth, jsg_val *out, tr_error *err)
{
    if (depth > MAX_DEPTH)
        return tr_error_set(err, TR_EINVAL, "value nested deeper than %d levels (or cyclic)",
                            MAX_DEPTH);
    if (Q(qjs_is_undefined)(I, h)) {
        *out = jsg_undefined();
        return 0;
    }
    if (Q(qjs_is_null)(I, h)) {
        *out = jsg_null();
        return 0;
    }
    if (Q(qjs_is_bool)(I, h)) {
        *out = jsg_bool(Q(qjs_get_bool)(I, h) != 0);
        return 0;
    }
    if (Q(qjs_is_number)(I, h)) {
        *out = jsg_number(Q(qjs_get_float64)(I, h));
        return 0;
    }
    if (Q(qjs_is_big_int)(I, h)) {
        if ((int32_t)Q(qjs_get_big_int64)(I, h, out_slot(iso, 0), out_slot(iso, 1)) < 0)
            return take_exception(iso, err);
        uint64_t u =
            load_u32(iso, out_slot(iso, 0)) | ((uint64_t)load_u32(iso, out_slot(iso, 1)) << 32);
        *out = jsg_bigint((int64_t)u);
        return 0;
    }
    if (Q(qjs_is_string)(I, h)) {
        uint32_t c = Q(qjs_get_string_len)(I, h, out_slot(iso, 0));
        if (c == 0) return take_exception(iso, err);
        uint32_t len = load_u32(iso, out_slot(iso, 0));
        const char *p = wrt_mem_ptr(iso->mem, c, len);
        char *copy = p ? tr_arena_strndup(a, p, len) : NULL;
        Q(qjs_free_cstring)(I, c);
        if (copy == NULL) return oom(err);
        *out = jsg_string(copy, len);
        return 0;
    }
    if (Q(qjs_is_function)(I, h) || Q(qjs_is_symbol)(I, h)) {
        if (depth == 0)
            return tr_error_set(err, TR_EINVAL, "a %s cannot be converted to a host value",
                                Q(qjs_is_function)(I, h) ? "function" : "symbol");
        return SKIP;
    }
    if (!Q(qjs_is_object)(I, h))
        return tr_error_set(err, TR_EINVAL, "value of an unsupported type");
    if (Q(qjs_get_class_id)(I, h) == u8_class_id(iso)) {
        uint32_t ab = Q(qjs_get_typed_array_buffer)(I, h, out_slot(iso, 0), out_slot(iso, 1),
                                                    out_slot(iso, 2));
        int rc = check(iso, ab, err);
        if (rc < 0) return rc;
        uint32_t off = load_u32(iso, out_slot(iso, 0)), len = load_u32(iso, out_slot(iso, 1));
        uint32_t data = Q(qjs_get_array_buffer)(I, ab, out_slot(iso, 3));
        uint32_t ablen = load_u32(iso, out_slot(iso, 3));
        Q(qjs_free_value)(I, ab);
        /* A detached buffer has no data: an empty array. */
        const char *p = data && off <= ablen && len <= ablen - off
                            ? wrt_mem_ptr(iso->mem, (uint64_t)data + off, len)
                            : NULL;
        char *copy = tr_arena_alloc(a, len ? len : 1);
        if (p != NULL)
            memcpy(copy, p, len);
        else
            len = 0;
        *out = jsg_bytes(copy, len);
        return 0;
    }
    if (Q(qjs_is_array)(I, h)) {
        bool heap;
        uint32_t k = put_bytes(iso, "length", 6, SCRATCH_NAME, &heap);
        uint32_t lh = k ? Q(qjs_get_prop_string)(I, h, k) : 0;
        int rc = check(iso, lh, err);
        if (rc < 0) return rc;
        double dlen = Q(qjs_get_float64)(I, lh);
        Q(qjs_free_value)(I, lh);
        if (!(dlen >= 0 && dlen <= MAX_ARRAY_LEN))
            return tr_error_set(err, TR_ELIMIT, "array too long to convert");
        size_t n = (size_t)dlen;
        jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * sizeof *items);
        for (size_t i = 0; i < n; i++) {
            uint32_t e = Q(qjs_get_prop_uint32)(I, h, (uint32_t)i);
            rc = check(iso, e, err);
            if (rc < 0) return rc;
            rc = to_val(iso, e, a, depth + 1, &items[i], err);
            Q(qjs_free_value)(I, e);
            if (rc == SKIP)
                items[i] = jsg_null(); /* as JSON.stringify does */
            else if (rc < 0)
                return rc;
        }
        *out = jsg_array(items, n);
        return 0;
    }
    /* Any other object: its own enumerable string-keyed properties. */
    uint32_t keys = Q(qjs_get_own_property_names)(I, h);
    int rc = check(iso, keys, err);
    if (rc < 0) return rc;
    bool heap;
    uint32_t k = put_bytes(iso, "length", 6, SCRATCH_NAME, &heap);
    uint32_t lh = k ? Q(qjs_get_prop_string)(I, keys, k) : 0;
    rc = check(iso, lh, err);
    if (rc < 0) {
        Q(qjs_free_value)(I, keys);
        return rc;
    }
    size_t n = (size_t)Q(qjs_get_float64)(I, lh);
    Q(qjs_free_value)(I, lh);
    jsg_prop *props = tr_arena_alloc(a, (n ? n : 1) * sizeof *props);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = Q(qjs_get_prop_uint32)(I, keys, (uint32_t)i);
        rc = check(iso, key, err);
        if (rc < 0) break;
        jsg_val kv;
        rc = to_val(iso, key, a, depth + 1, &kv, err);
        if (rc == 0 && kv.type != JSG_STRING) rc = tr_error_set(err, TR_EINVAL, "non-string key");
        uint32_t val = rc == 0 ? Q(qjs_get_prop_value)(I, h, key) : 0;
        Q(qjs_free_value)(I, key);
        if (rc < 0) break;
        rc = check(iso, val, err);
        if (rc < 0) break;
        rc = to_val(iso, val, a, depth + 1, &props[m].val, err);
        Q(qjs_free_value)(I, val);
        if (rc == SKIP) continue;
        if (rc < 0) break;
        props[m].key = kv.u.str.ptr;
        props[m].key_len = kv.u.str.len;
        m++;
    }
    Q(qjs_free_value)(I, keys);
    if (rc < 0) return rc;
    *out = jsg_object(props, m);
    return 0;
}

static void body_to_val(void *p)
{
    op_conv *op = p;
    op->rc = to_val(op->iso, or_undef(op->iso, op->ref), op->arena, 0, op->out, op->err);
}

int jsg_to_val(jsg_isolate *iso, jsg_ref ref, tr_arena *arena, jsg_val *out, tr_error *err)
{
    *out = jsg_undefined();
    op_conv op = {.iso = iso, .ref = ref, .arena = arena, .out = out, .err = err};
    int rc = run(iso, body_to_val, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

static void body_to_string(void *p)
{
    op_conv *op = p;
    jsg_isolate *iso = op->iso;
    op->rc =
        read_string(iso, or_undef(iso, op->ref), op->buf) < 0 ? take_exception(iso, op->err) : 0;
}

int jsg_to_string(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err)
{
    op_conv op = {.iso = iso, .ref = ref, .buf = buf, .err = err};
    int rc = run(iso, body_to_string, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

static void body_to_json(void *p)
{
    op_conv *op = p;
    jsg_isolate *iso = op->iso;
    if (iso->json_stringify == 0) {
        static const char src[] = "JSON.stringify";
        bool cheap, fheap;
        uint32_t code = put_bytes(iso, src, sizeof src - 1, SCRATCH_DATA, &cheap);
        uint32_t fname = put_bytes(iso, "<trail>", 7, SCRATCH_NAME, &fheap);
        uint32_t h = code && fname ? Q(qjs_eval)(I, code, sizeof src - 1, fname, 0) : 0;
        op->rc = check(iso, h, op->err);
        if (op->rc < 0) return;
        iso->json_stringify = h;
    }
    store_u32(iso, out_slot(iso, 4), or_undef(iso, op->ref));
    uint32_t s = Q(qjs_call)(I, iso->json_stringify, iso->undef, 1, out_slot(iso, 4));
    op->rc = check(iso, s, op->err);
    if (op->rc < 0) return;
    if (Q(qjs_is_undefined)(I, s)) {
        tr_buf_reset(op->buf);
        tr_buf_append_str(op->buf, "undefined");
    } else if (read_string(iso, s, op->buf) < 0) {
        op->rc = take_exception(iso, op->err);
    }
    Q(qjs_free_value)(I, s);
}

int jsg_to_json(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err)
{
    op_conv op = {.iso = iso, .ref = ref, .buf = buf, .err = err};
    int rc = run(iso, body_to_json, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

typedef struct op_err {
    jsg_isolate *iso;
    jsg_ref exc;
    tr_error *err;
    int rc;
} op_err;

static void body_error_from(void *p)
{
    op_err *op = p;
    op->rc = describe(op->iso, or_undef(op->iso, op->exc), op->err);
}

int jsg_error_from(jsg_isolate *iso, jsg_ref exc, tr_error *err)
{
    op_err op = {iso, exc, err, TR_EJS};
    int rc = run(iso, body_error_from, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

/* ---- host functions ---- */

typedef struct op_define {
    jsg_isolate *iso;
    jsg_ref obj;
    const char *name;
    size_t len;
    tr_error *err;
    int rc;
} op_define;

static void body_define(void *p)
{
    op_define *op = p;
    jsg_isolate *iso = op->iso;
    bool heap;
    uint32_t name = put_bytes(iso, op->name, op->len, SCRATCH_NAME, &heap);
    if (name == 0) {
        op->rc = oom(op->err);
        return;
    }
    uint32_t f = Q(qjs_new_host_function)(I, name, (uint32_t)op->len, 0);
    op->rc = check(iso, f, op->err);
    if (op->rc < 0) return;
    /* the name is still in the scratch area: qjs_new_host_function ran no JS */
    int32_t r =
        (int32_t)Q(qjs_define_prop_string)(I, op->obj ? op->obj : iso->global, name, f, PROP_CW);
    Q(qjs_free_value)(I, f);
    if (r < 0) op->rc = take_exception(iso, op->err);
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
    if (iso->dead) return dead_error(iso, err);
    iso->fns = tr_realloc(iso->fns, (iso->nfns + 1) * sizeof *iso->fns);
    host_fn *f = &iso->fns[iso->nfns];
    memcpy(f->name, name, len);
    f->name_len = len;
    f->fn = fn;
    f->user = user;
    iso->nfns++;
    op_define op = {iso, obj, name, len, err, 0};
    int rc = run(iso, body_define, &op);
    rc = finish(iso, rc, rc ? rc : op.rc, err);
    if (rc < 0) iso->nfns--;
    return rc;
}

/* ---- promises ---- */

typedef struct op_promise {
    jsg_isolate *iso;
    jsg_deferred *d;
    jsg_ref value;
    const char *msg;
    size_t msg_len;
    int mode; /* 0 new, 1 resolve, 2 reject, 3 free */
    jsg_promise_state state;
    jsg_ref *result;
    tr_error *err;
    int rc;
} op_promise;

static void body_deferred(void *p)
{
    op_promise *op = p;
    jsg_isolate *iso = op->iso;
    jsg_deferred *d = op->d;
    if (op->mode == 0) {
        uint32_t h = Q(qjs_new_promise)(I, out_slot(iso, 0), out_slot(iso, 1));
        uint32_t res = load_u32(iso, out_slot(iso, 0)), rej = load_u32(iso, out_slot(iso, 1));
        if (h == 0 || res == 0 || rej == 0) {
            if (h) Q(qjs_free_value)(I, h);
            if (res) Q(qjs_free_value)(I, res);
            if (rej) Q(qjs_free_value)(I, rej);
            op->rc = oom(op->err);
            return;
        }
        if (Q(qjs_is_exception)(I, h)) {
            Q(qjs_free_value)(I, h);
            Q(qjs_free_value)(I, res);
            Q(qjs_free_value)(I, rej);
            op->rc = take_exception(iso, op->err);
            return;
        }
        *d = (jsg_deferred){h, res, rej};
        op->rc = 0;
        return;
    }
    if (op->mode != 3) {
        uint32_t arg;
        if (op->mode == 1) {
            arg = or_undef(iso, op->value);
        } else {
            arg = Q(qjs_new_error)(I);
            if (arg == 0) {
                op->rc = oom(op->err);
                return;
            }
            uint32_t s = new_string(iso, op->msg, op->msg_len);
            bool heap;
            uint32_t k = put_bytes(iso, "message", 7, SCRATCH_NAME, &heap);
            if (s && k) Q(qjs_define_prop_string)(I, arg, k, s, PROP_CW);
            if (s) Q(qjs_free_value)(I, s);
        }
        store_u32(iso, out_slot(iso, 4), arg);
        uint32_t r =
            Q(qjs_call)(I, op->mode == 1 ? d->resolve : d->reject, iso->undef, 1, out_slot(iso, 4));
        if (op->mode == 2) Q(qjs_free_value)(I, arg);
        op->rc = check(iso, r, op->err);
        if (op->rc == 0) Q(qjs_free_value)(I, r);
    }
    Q(qjs_free_value)(I, d->resolve);
    Q(qjs_free_value)(I, d->reject);
    d->resolve = d->reject = 0;
}

int jsg_deferred_new(jsg_isolate *iso, jsg_deferred *out, tr_error *err)
{
    *out = (jsg_deferred){0, 0, 0};
    op_promise op = {.iso = iso, .d = out, .mode = 0, .err = err};
    int rc = run(iso, body_deferred, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

int jsg_deferred_resolve(jsg_isolate *iso, jsg_deferred *d, jsg_ref value, tr_error *err)
{
    if (d->resolve == 0) return tr_error_set(err, TR_EINVAL, "promise already settled");
    op_promise op = {.iso = iso, .d = d, .value = value, .mode = 1, .err = err};
    int rc = run(iso, body_deferred, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

int jsg_deferred_reject(jsg_isolate *iso, jsg_deferred *d, const char *message, size_t len,
                        tr_error *err)
{
    if (d->resolve == 0) return tr_error_set(err, TR_EINVAL, "promise already settled");
    op_promise op = {.iso = iso, .d = d, .msg = message, .msg_len = len, .mode = 2, .err = err};
    int rc = run(iso, body_deferred, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

void jsg_deferred_free(jsg_isolate *iso, jsg_deferred *d)
{
    if (d->resolve != 0 && !iso->dead) {
        op_promise op = {.iso = iso, .d = d, .mode = 3};
        run(iso, body_deferred, &op);
    }
    d->resolve = d->reject = 0;
}

static void body_state(void *p)
{
    op_promise *op = p;
    jsg_isolate *iso = op->iso;
    if (!Q(qjs_is_promise)(I, op->value)) {
        op->rc = tr_error_set(op->err, TR_EINVAL, "not a promise");
        return;
    }
    op->state = (jsg_promise_state)Q(qjs_promise_state)(I, op->value);
    if (op->state != JSG_PENDING && op->result != NULL) {
        uint32_t r = Q(qjs_promise_result)(I, op->value);
        if (r == 0) {
            op->rc = oom(op->err);
            return;
        }
        *op->result = r;
    }
    op->rc = 0;
}

int jsg_promise_state_get(jsg_isolate *iso, jsg_ref promise, jsg_promise_state *state,
                          jsg_ref *result, tr_error *err)
{
    if (result) *result = 0;
    op_promise op = {.iso = iso, .value = promise, .result = result, .err = err};
    int rc = run(iso, body_state, &op);
    rc = finish(iso, rc, rc ? rc : op.rc, err);
    if (rc == 0) *state = op.state;
    return rc;
}
