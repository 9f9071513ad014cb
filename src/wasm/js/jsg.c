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
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "engine_info.h"
#include "quickjs.h"
#include "wasm/runtime/wrt.h"
#include "wasm/wasi/wasi.h"

/* The engine's exports. Never JS_SetDumpFlags: the build takes the interpreter's test of the
 * step-dump flag out of the engine's code (tools/engine-fixup.sh, docs/engine.md), so that flag
 * would not be obeyed. */
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
/* how a call that ran past its deadline ends */
#define INTERRUPTED_MSG "InternalError: interrupted: the JavaScript ran past its deadline"
#define SCRATCH_OUT   256  /* out-parameters and small argv arrays */
#define SCRATCH_NAME  256  /* file names, property names */
#define SCRATCH_DATA  4096 /* small strings */
#define SCRATCH_ARGV  (SCRATCH_OUT + SCRATCH_NAME + SCRATCH_DATA)
/* jsg_call_val's arguments, one area per nesting level of run(): QuickJS may use the caller's
 * argument array as the callee's argument storage, so it must stay untouched while JS runs. */
#define ARGV_LEVELS  8
#define SCRATCH_SIZE (SCRATCH_ARGV + ARGV_LEVELS * JSG_MAX_CALL_VALS * 8)
/* Linear memory that is not JS heap: the 1 MiB shadow stack, static data, allocator slack. */
#define NON_HEAP_RESERVE ((size_t)2 << 20)

struct Z_env_instance_t {
    jsg_isolate *iso;
};

/* The engine's JSValue (NaN-boxed on wasm32) and the tags of quickjs-ng's JS_NAN_BOXING. */
typedef uint64_t jsv;
enum {
    TAG_BIG_INT = -9,
    TAG_SYMBOL = -8,
    TAG_STRING = -7,
    TAG_STRING_ROPE = -6,
    TAG_OBJECT = -1,
    TAG_INT = 0,
    TAG_BOOL = 1,
    TAG_NULL = 2,
    TAG_UNDEFINED = 3,
    TAG_EXCEPTION = 6,
    TAG_SHORT_BIG_INT = 7,
};
#define JSV(tag, x)    (((uint64_t)(uint32_t)(tag) << 32) | (uint32_t)(x))
#define JSV_UNDEFINED  JSV(TAG_UNDEFINED, 0)
#define JSV_EXCEPTION  JSV(TAG_EXCEPTION, 0)
#define FLOAT64_ADDEND ((uint64_t)(0x7ff80000u - (uint32_t)TAG_BIG_INT + 1u) << 32)
/* JS_GetOwnPropertyNames flags: JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY */
#define GPN_STRING_ENUM 17

/* Longest key list (length bytes and names) of an object jsg_call_val may recycle, and the
 * largest string or byte value directly in it (a big body is not kept alive for reuse). */
#define RECYCLE_SIG       128
#define RECYCLE_ATOMS     16
#define RECYCLE_MAX_VALUE 4096

/* Shared frozen string arrays (JSG_SHARED): slots, and the longest contents kept. */
#define SHARED_CACHE 64
#define SHARED_MAX   240
typedef struct shared_slot {
    jsv v; /* 0: empty */
    uint16_t len;
    char key[SHARED_MAX]; /* the items as (u16 length, bytes)... */
} shared_slot;

/* A cached atom and its name (property names the host builds and reads often). */
#define ATOM_CACHE   64
#define ATOM_KEY_MAX 23
typedef struct atom_slot {
    uint32_t atom; /* 0: empty */
    uint8_t len;
    char key[ATOM_KEY_MAX];
} atom_slot;

typedef struct host_fn {
    char name[MAX_HOST_FN_NAME];
    size_t name_len;
    jsg_host_fn fn;
    void *user;
} host_fn;

struct jsg_isolate {
    Z_quickjs_instance_t *inst; /* wrt_instance_new(): its memory follows it */
    struct Z_env_instance_t env;
    wasi_ctx wasi;
    wasm_rt_memory_t *mem; /* &inst->w2c_memory */
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
    uint32_t u8_class_id, array_class_id, object_class_id;
    /* where a string of 8-bit characters keeps them, from the start of its JSString (found by
     * raw_init(); 0: unknown, so strings are always read through JS_ToCStringLen2) */
    uint32_t str8_off;
    /* jsg_call_result()'s class and its prototype (both held; 0: none yet), for its common
     * result: an object whose prototype is that one, recognised without an instanceof */
    jsv accept_cls, accept_proto;
    /* JS_GetPrototype gives a new reference (1) or a borrowed one (0); -1: unknown (found by
     * raw_init(); then every check is an instanceof) */
    int8_t proto_ref;
    uint32_t atom_to_json;       /* "toJSON", held (jsg_json_fast) */
    uint32_t ctx;                /* the JSContext (guest pointer) */
    atom_slot atoms[ATOM_CACHE]; /* by name: atoms held by the cache */
    atom_slot names[ATOM_CACHE]; /* by atom: names of atoms held by the cache */
    shared_slot *shared;         /* SHARED_CACHE slots, allocated on first use */
    /* the last string built in this conversion, for an equal one that follows (a request's
     * url and path are often the same bytes): held, released when the conversion ends */
    struct {
        const char *ptr;
        size_t len;
        jsv v; /* 0: none */
    } last_str;
    /* jsg_call_val: per argument position, an object argument nothing referenced after its
     * call, kept for the next call whose object has the same keys (see recycle_sig) */
    struct {
        jsv obj; /* 0: none */
        size_t sig_len;
        char sig[RECYCLE_SIG];
        /* the atoms of sig's keys in its order (held), so that a refill looks none up; 0 of
         * them when sig has more keys */
        uint32_t atoms[RECYCLE_ATOMS];
        size_t natoms;
    } recycled[JSG_MAX_CALL_VALS];
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
    /* host work for it (a SQL statement) ran past the deadline: the call is over, whatever its
     * JS made of that */
    if (rc == 0 && iso->interrupted && iso->depth == 0)
        rc = tr_error_set(err, TR_EINTERRUPTED, INTERRUPTED_MSG);
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

#define I (iso->inst)
_Static_assert(sizeof(Z_quickjs_instance_t) <= WRT_INSTANCE_SPAN,
               "the engine's instance must fit below its memory: raise WRT_INSTANCE_SPAN");

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

static int32_t jsv_tag(jsv v)
{
    return (int32_t)(uint32_t)(v >> 32);
}

static void jsv_free(jsg_isolate *iso, jsv v)
{
    if ((uint32_t)jsv_tag(v) >= (uint32_t)TAG_BIG_INT) Q(JS_FreeValue)(I, iso->ctx, v);
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
        return tr_error_set(err, TR_EINTERRUPTED, INTERRUPTED_MSG);
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
     * clock; a long one starts its clock at its first check (a few microseconds in). */
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

static uint64_t load_u64(jsg_isolate *iso, uint32_t off);
static bool jsv_is_float(jsv v);

/* The reference count of object v (the engine keeps it in the word before the object). */
static uint32_t obj_refs(jsg_isolate *iso, jsv v)
{
    return load_u32(iso, (uint32_t)v - 4);
}
static double jsv_number(jsv v);

/* Whether JS_GetPrototype gives its caller a reference of its own (iso->proto_ref). */
static void probe_prototype(jsg_isolate *iso)
{
    iso->proto_ref = -1;
    jsv p = Q(JS_NewObject)(I, iso->ctx);
    jsv o = p == JSV_EXCEPTION ? JSV_EXCEPTION : Q(JS_NewObjectProto)(I, iso->ctx, p);
    if (o != JSV_EXCEPTION) {
        uint32_t before = obj_refs(iso, p);
        jsv got = Q(JS_GetPrototype)(I, iso->ctx, o);
        uint32_t after = obj_refs(iso, p);
        if (got == p && after == before + 1) {
            iso->proto_ref = 1;
            jsv_free(iso, got);
        } else if (got == p && after == before) {
            iso->proto_ref = 0;
        }
    }
    jsv_free(iso, o);
    jsv_free(iso, p);
}

/* A new string of the UTF-8 (p, n); JSV_EXCEPTION when out of memory. */
static jsv new_str(jsg_isolate *iso, const char *p, size_t n)
{
    bool heap;
    uint32_t g = put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (g == 0) return JSV_EXCEPTION;
    jsv v = Q(JS_NewStringLen)(I, iso->ctx, g, (uint32_t)n);
    drop_bytes(iso, g, heap);
    return v;
}

/* Finds where the engine's JSString keeps 8-bit characters (iso->str8_off): the value points
 * (like an object's, past its reference count) at a word of length (31 bits) and the
 * wide-character flag (the top bit); the characters follow at an offset that depends on the
 * engine's build. Strings are read in place only when the
 * probe finds exactly that; else str8_off stays 0 and they are copied out by the engine. */
static int probe_strings(jsg_isolate *iso, tr_error *err)
{
    static const char narrow[] = "trail: where are the characters?";
    static const char wide[] = "\xe2\x82\xac"
                               "1"; /* U+20AC: a 16-bit string of 2 */
    size_t n = sizeof narrow - 1;
    jsv a = new_str(iso, narrow, n), b = new_str(iso, wide, sizeof wide - 1);
    if (a == JSV_EXCEPTION || b == JSV_EXCEPTION) {
        jsv_free(iso, a);
        jsv_free(iso, b);
        return oom(err);
    }
    uint32_t off = 0;
    if (jsv_tag(a) == TAG_STRING && jsv_tag(b) == TAG_STRING && load_u32(iso, (uint32_t)a) == n &&
        load_u32(iso, (uint32_t)b) == (2u | 1u << 31)) {
        for (uint32_t o = 8; o <= 32 && off == 0; o += 4) {
            const void *p = wrt_mem_ptr(iso->mem, (uint32_t)a + o, n);
            if (p != NULL && memcmp(p, narrow, n) == 0) off = o;
        }
    }
    iso->str8_off = off;
    jsv_free(iso, a);
    jsv_free(iso, b);
    return 0;
}

/* The characters of string v (borrowed) where the engine keeps them, when they are their own
 * UTF-8: a flat string of 8-bit characters, all ASCII. NULL otherwise (or when str8_off is
 * unknown): the caller copies them out with JS_ToCStringLen2. */
static const unsigned char *ascii_in_place(jsg_isolate *iso, jsv v, uint32_t *len)
{
    if (iso->str8_off == 0 || jsv_tag(v) != TAG_STRING) return NULL;
    uint32_t w = load_u32(iso, (uint32_t)v);
    if (w >> 31) return NULL; /* 16-bit characters */
    const unsigned char *p = wrt_mem_ptr(iso->mem, (uint32_t)v + iso->str8_off, w);
    if (p == NULL) return NULL;
    uint64_t any = 0;
    uint32_t i = 0;
    for (; i + 8 <= w; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        any |= x;
    }
    for (; i < w; i++)
        any |= p[i];
    if (any & UINT64_C(0x8080808080808080)) return NULL;
    *len = w;
    return p;
}

/* Class ids the conversions test for, and a check of the value layout they rely on (the engine
 * is pinned, so a failure here means a build with a different engine). */
static int raw_init(jsg_isolate *iso, tr_error *err)
{
    jsv u8a = Q(JS_NewUint8ArrayCopy)(I, iso->ctx, iso->scratch, 0);
    jsv arr = Q(JS_NewArray)(I, iso->ctx);
    if (u8a == JSV_EXCEPTION || arr == JSV_EXCEPTION) {
        jsv_free(iso, u8a);
        jsv_free(iso, arr);
        return oom(err);
    }
    iso->u8_class_id = Q(JS_GetClassID)(I, u8a);
    iso->array_class_id = Q(JS_GetClassID)(I, arr);
    bool ok = jsv_tag(u8a) == TAG_OBJECT && jsv_tag(arr) == TAG_OBJECT && iso->u8_class_id != 0 &&
              iso->array_class_id != 0 && iso->u8_class_id != iso->array_class_id;
    jsv_free(iso, u8a);
    jsv_free(iso, arr);
    /* An object's reference count, which jsg_call_val looks at, is just before it. */
    jsv o = Q(JS_NewObject)(I, iso->ctx);
    if (o == JSV_EXCEPTION) return oom(err);
    ok = ok && obj_refs(iso, o) == 1;
    iso->object_class_id = Q(JS_GetClassID)(I, o);
    ok = ok && iso->object_class_id != 0 && iso->object_class_id != iso->array_class_id;
    jsv o2 = Q(JS_DupValue)(I, iso->ctx, o);
    ok = ok && o2 == o && obj_refs(iso, o) == 2;
    jsv_free(iso, o2);
    ok = ok && obj_refs(iso, o) == 1;
    jsv_free(iso, o);
    jsv half = Q(JS_NewNumber)(I, iso->ctx, 0.5), big = Q(JS_NewNumber)(I, iso->ctx, -1e300);
    ok = ok && load_u64(iso, iso->undef) == JSV_UNDEFINED && jsv_is_float(half) &&
         jsv_number(half) == 0.5 && jsv_number(big) == -1e300 &&
         jsv_number(Q(JS_NewNumber)(I, iso->ctx, -7.0)) == -7.0;
    if (!ok)
        return tr_error_set(err, TR_EINVAL,
                            "the engine's value layout is not the one this build expects");
    probe_prototype(iso);
    return probe_strings(iso, err);
}

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
    /* The engine's code addresses memory at instance + WRT_INSTANCE_SPAN: no guest code may run
     * unless it is there. */
    if (iso->mem->data != (uint8_t *)iso->inst + WRT_INSTANCE_SPAN) {
        op->rc = tr_error_set(op->err, TR_ENOMEM, "the isolate's memory is not after its instance");
        return;
    }
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
    iso->ctx = Q(qjs_get_context_ptr)(I);
    op->rc = raw_init(iso, op->err);
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
    op->out = Z_quickjsZ_qjs_dup_value(op->iso->inst, op->ref);
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
    Z_quickjsZ_qjs_free_value(op->iso->inst, op->ref);
}

void jsg_ref_free(jsg_isolate *iso, jsg_ref ref)
{
    if (ref == 0 || iso->dead) return;
    op_ref op = {iso, ref, 0, 0};
    run(iso, body_free, &op);
}

/* The engine's type predicates, tried in this order; an object matching none is JSG_K_OBJECT. */
static const struct {
    u32 (*is)(Z_quickjs_instance_t *, u32);
    jsg_kind kind;
} kind_tests[] = {
    {Q(qjs_is_undefined), JSG_K_UNDEFINED}, {Q(qjs_is_null), JSG_K_NULL},
    {Q(qjs_is_bool), JSG_K_BOOL},           {Q(qjs_is_number), JSG_K_NUMBER},
    {Q(qjs_is_big_int), JSG_K_BIGINT},      {Q(qjs_is_string), JSG_K_STRING},
    {Q(qjs_is_symbol), JSG_K_SYMBOL},       {Q(qjs_is_function), JSG_K_FUNCTION},
    {Q(qjs_is_array), JSG_K_ARRAY},         {Q(qjs_is_promise), JSG_K_PROMISE},
    {Q(qjs_is_error), JSG_K_ERROR},
};

static void body_kind(void *p)
{
    op_ref *op = p;
    jsg_isolate *iso = op->iso;
    op->kind = (int)JSG_K_OBJECT;
    for (size_t i = 0; i < TR_ARRAY_LEN(kind_tests); i++) {
        if (kind_tests[i].is(I, op->ref)) {
            op->kind = (int)kind_tests[i].kind;
            return;
        }
    }
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

/* ---- conversions ----
 *
 * DESIGN: conversions work on the engine's JSValues directly through its JS_* exports. On wasm32
 * a JSValue is a NaN-boxed u64 passed by value, so a value is built or read without a heap
 * handle each (the qjs_* exports allocate one per value): only what the host keeps becomes a
 * jsg_ref. Arrays are built in one step (JS_NewArrayFrom), property names go through a small
 * per-isolate atom cache, and keys read back through a cache of atom names. body_create checks
 * the value layout this relies on (raw_layout_ok). */

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

static void store_u64(jsg_isolate *iso, uint32_t off, uint64_t v)
{
    void *p = wrt_mem_ptr(iso->mem, off, 8);
    if (p != NULL) memcpy(p, &v, 8);
}

static uint64_t load_u64(jsg_isolate *iso, uint32_t off)
{
    uint64_t v = 0;
    const void *p = wrt_mem_ptr(iso->mem, off, 8);
    if (p != NULL) memcpy(&v, p, 8);
    return v;
}

/* The value a handle holds (borrowed). A handle outside the guest's memory traps, as the
 * engine's own exports do when they read one. */
static jsv handle_val(jsg_isolate *iso, uint32_t h)
{
    const void *p = wrt_mem_ptr(iso->mem, h, 8);
    if (p == NULL) wasm_rt_trap(WASM_RT_TRAP_OOB);
    jsv v;
    memcpy(&v, p, 8);
    return v;
}

/* A handle owning v; 0 (and v released) when the guest is out of memory. */
static uint32_t handle_new(jsg_isolate *iso, jsv v)
{
    uint32_t h = Q(wasm_malloc)(I, 8);
    if (h == 0) {
        jsv_free(iso, v);
        return 0;
    }
    store_u64(iso, h, v);
    return h;
}

static double jsv_number(jsv v)
{
    if (jsv_tag(v) == TAG_INT) return (double)(int32_t)(uint32_t)v;
    uint64_t bits = v + FLOAT64_ADDEND;
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* Not one of the engine's own tags: a NaN-boxed double. */
static bool jsv_is_float(jsv v)
{
    return (uint32_t)(jsv_tag(v) - TAG_BIG_INT) > (uint32_t)(TAG_SHORT_BIG_INT - TAG_BIG_INT);
}

/* A slot index for the caches below (which compare keys on a hit): eight bytes a step, as
 * headers go through it on every request. */
static uint32_t key_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9u;
        h ^= h >> 29;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xbf58476d1ce4e5b9u;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ h >> 32);
}

/* The atom of property name (p, n). *temp: the caller releases it (JS_FreeAtom); else it
 * belongs to the cache. 0 on failure (an exception is pending). */
static uint32_t atom_get(jsg_isolate *iso, const char *p, size_t n, bool *temp)
{
    *temp = n > ATOM_KEY_MAX;
    atom_slot *s = NULL;
    if (!*temp) {
        s = &iso->atoms[key_hash(p, n) % ATOM_CACHE];
        if (s->atom != 0 && s->len == n && memcmp(s->key, p, n) == 0) return s->atom;
    }
    bool heap;
    uint32_t k = put_bytes(iso, p, n, SCRATCH_NAME, &heap);
    if (k == 0) return 0;
    uint32_t a = Q(JS_NewAtomLen)(I, iso->ctx, k, (uint32_t)n);
    drop_bytes(iso, k, heap);
    if (a == 0 || s == NULL) return a;
    if (s->atom != 0) Q(JS_FreeAtom)(I, iso->ctx, s->atom);
    s->atom = a;
    s->len = (uint8_t)n;
    memcpy(s->key, p, n);
    return a;
}

/* The name of atom a, copied into the arena. */
static int atom_name(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out, tr_error *err)
{
    atom_slot *s = &iso->names[(a * 2654435761u) >> 26];
    if (s->atom != a) {
        uint32_t c = Q(JS_AtomToCStringLen)(I, iso->ctx, out_slot(iso, 0), a);
        if (c == 0) return take_exception(iso, err);
        uint32_t len = load_u32(iso, out_slot(iso, 0));
        const char *p = wrt_mem_ptr(iso->mem, c, len);
        char *copy = p ? tr_arena_strndup(arena, p, len) : NULL;
        if (copy != NULL && len <= ATOM_KEY_MAX) {
            if (s->atom != 0) Q(JS_FreeAtom)(I, iso->ctx, s->atom);
            s->atom = Q(JS_DupAtom)(I, iso->ctx, a);
            s->len = (uint8_t)len;
            memcpy(s->key, p, len);
        }
        Q(JS_FreeCString)(I, iso->ctx, c);
        if (copy == NULL) return oom(err);
        out->key = copy;
        out->key_len = len;
        return 0;
    }
    out->key = tr_arena_strndup(arena, s->key, s->len);
    out->key_len = s->len;
    return 0;
}

/* atom_name() for a name used at once (before the next call into the isolate): a cached one is
 * not copied. */
static int atom_name_now(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out,
                         tr_error *err)
{
    const atom_slot *s = &iso->names[(a * 2654435761u) >> 26];
    if (s->atom != a) return atom_name(iso, a, arena, out, err);
    out->key = s->key;
    out->key_len = s->len;
    return 0;
}

static int build(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err);

/* values (owned, n of them) into guest memory for an export that takes a JSValue array. */
static uint32_t put_values(jsg_isolate *iso, const jsv *values, size_t n, bool *heap)
{
    return put_bytes(iso, values, n * sizeof *values, SCRATCH_DATA, heap);
}

static int build_array(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
{
    size_t n = v->u.arr.len;
    if (n > MAX_ARRAY_LEN) return tr_error_set(err, TR_ELIMIT, "array too long to convert");
    jsv small[16];
    jsv *items = n <= 16 ? small : tr_malloc(n * sizeof *items);
    int rc = 0;
    size_t built = 0;
    for (; built < n; built++) {
        rc = build(iso, &v->u.arr.items[built], depth + 1, &items[built], err);
        if (rc < 0) break;
    }
    uint32_t g = 0;
    bool heap = false;
    if (rc == 0) {
        g = put_values(iso, items, n, &heap);
        if (g == 0) rc = oom(err);
    }
    if (rc < 0) {
        for (size_t i = 0; i < built; i++)
            jsv_free(iso, items[i]);
    } else {
        /* JS_NewArrayFrom owns the values from here on, also when it fails. */
        jsv a = Q(JS_NewArrayFrom)(I, iso->ctx, (uint32_t)n, g);
        drop_bytes(iso, g, heap);
        if (a == JSV_EXCEPTION)
            rc = take_exception(iso, err);
        else
            *out = a;
    }
    if (items != small) tr_free(items);
    return rc;
}

/* A property's value built at depth and its key's atom (*temp: the atom is the caller's to
 * free). On failure obj is released too and the error code returned. */
static int build_prop(jsg_isolate *iso, const jsg_prop *pr, int depth, jsv obj, jsv *val,
                      uint32_t *atom, bool *temp, tr_error *err)
{
    int rc = build(iso, &pr->val, depth, val, err);
    if (rc < 0) {
        jsv_free(iso, obj);
        return rc;
    }
    *atom = atom_get(iso, pr->key, pr->key_len, temp);
    if (*atom == 0) {
        jsv_free(iso, *val);
        jsv_free(iso, obj);
        return take_exception(iso, err);
    }
    return 0;
}

static int build_object(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
{
    jsv obj = Q(JS_NewObject)(I, iso->ctx);
    if (obj == JSV_EXCEPTION) return take_exception(iso, err);
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const jsg_prop *pr = &v->u.obj.props[i];
        jsv c;
        bool temp;
        uint32_t a;
        int rc = build_prop(iso, pr, depth + 1, obj, &c, &a, &temp, err);
        if (rc < 0) return rc;
        /* define, not set: no setters run and "__proto__" is an ordinary key. The value is
         * owned by the call. */
        int32_t r = (int32_t)Q(JS_DefinePropertyValue)(I, iso->ctx, obj, a, c, PROP_CWE);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        if (r < 0) {
            jsv_free(iso, obj);
            return take_exception(iso, err);
        }
    }
    *out = obj;
    return 0;
}

/* A frozen array of the strings in v, shared with earlier conversions of equal contents. */
static int build_shared(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
{
    char key[SHARED_MAX];
    size_t klen = 0;
    bool cacheable = true;
    for (size_t i = 0; i < v->u.arr.len; i++) {
        const jsg_val *it = &v->u.arr.items[i];
        if (it->type != JSG_STRING && it->type != JSG_NAME)
            return tr_error_set(err, TR_EINVAL, "a shared array holds strings only");
        if (!cacheable || klen + 2 + it->u.str.len > SHARED_MAX) {
            cacheable = false;
            continue;
        }
        key[klen++] = (char)(it->u.str.len & 0xff);
        key[klen++] = (char)(it->u.str.len >> 8);
        memcpy(key + klen, it->u.str.ptr, it->u.str.len);
        klen += it->u.str.len;
    }
    shared_slot *slot = NULL;
    if (cacheable) {
        if (iso->shared == NULL) iso->shared = tr_calloc(SHARED_CACHE, sizeof *iso->shared);
        slot = &iso->shared[key_hash(key, klen) % SHARED_CACHE];
        if (slot->v != 0 && slot->len == klen && memcmp(slot->key, key, klen) == 0) {
            *out = Q(JS_DupValue)(I, iso->ctx, slot->v);
            return 0;
        }
    }
    jsv a;
    int rc = build_array(iso, v, depth, &a, err);
    if (rc < 0) return rc;
    if ((int32_t)Q(JS_FreezeObject)(I, iso->ctx, a) < 0) {
        jsv_free(iso, a);
        return take_exception(iso, err);
    }
    if (slot != NULL) {
        if (slot->v != 0) jsv_free(iso, slot->v);
        slot->v = Q(JS_DupValue)(I, iso->ctx, a);
        slot->len = (uint16_t)klen;
        memcpy(slot->key, key, klen);
    }
    *out = a;
    return 0;
}

/* Forgets last_str (at the end of a conversion: the host's bytes may change afterwards). */
static void last_str_clear(jsg_isolate *iso)
{
    if (iso->last_str.v != 0) jsv_free(iso, iso->last_str.v);
    iso->last_str.v = 0;
    iso->last_str.ptr = NULL;
}

static int build(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
{
    *out = JSV_UNDEFINED;
    if (depth > MAX_DEPTH)
        return tr_error_set(err, TR_EINVAL, "value nested deeper than %d levels", MAX_DEPTH);
    jsv r;
    switch (v->type) {
    case JSG_UNDEFINED:
        return 0;
    case JSG_NULL:
        *out = JSV(TAG_NULL, 0);
        return 0;
    case JSG_BOOL:
        *out = JSV(TAG_BOOL, v->u.b ? 1 : 0);
        return 0;
    case JSG_NUMBER:
        r = Q(JS_NewNumber)(I, iso->ctx, v->u.num);
        break;
    case JSG_BIGINT:
        r = Q(JS_NewBigInt64)(I, iso->ctx, (uint64_t)v->u.big);
        break;
    case JSG_STRING:
        if (iso->last_str.v != 0 && iso->last_str.ptr == v->u.str.ptr &&
            iso->last_str.len == v->u.str.len) {
            *out = Q(JS_DupValue)(I, iso->ctx, iso->last_str.v);
            return 0;
        }
        /* fall through */
    case JSG_BYTES: {
        if (v->u.str.len >= UINT32_MAX) return tr_error_set(err, TR_ELIMIT, "string too large");
        bool heap;
        uint32_t s = put_bytes(iso, v->u.str.ptr, v->u.str.len, SCRATCH_DATA, &heap);
        if (s == 0) return oom(err);
        r = v->type == JSG_STRING ? Q(JS_NewStringLen)(I, iso->ctx, s, (uint32_t)v->u.str.len)
                                  : Q(JS_NewUint8ArrayCopy)(I, iso->ctx, s, (uint32_t)v->u.str.len);
        drop_bytes(iso, s, heap);
        if (v->type == JSG_STRING && r != JSV_EXCEPTION) {
            last_str_clear(iso);
            iso->last_str.ptr = v->u.str.ptr;
            iso->last_str.len = v->u.str.len;
            iso->last_str.v = Q(JS_DupValue)(I, iso->ctx, r);
        }
        break;
    }
    case JSG_SHARED:
        return build_shared(iso, v, depth, out, err);
    case JSG_NAME: {
        bool temp;
        uint32_t a = atom_get(iso, v->u.str.ptr, v->u.str.len, &temp);
        if (a == 0) return take_exception(iso, err);
        /* an atom is a string: this only takes a reference to it */
        r = Q(JS_AtomToString)(I, iso->ctx, a);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        break;
    }
    case JSG_REF:
        if (v->u.ref == 0) return 0;
        *out = Q(JS_DupValue)(I, iso->ctx, handle_val(iso, v->u.ref));
        return 0;
    case JSG_ARRAY:
        return build_array(iso, v, depth, out, err);
    case JSG_OBJECT:
        return build_object(iso, v, depth, out, err);
    default:
        return tr_error_set(err, TR_EINVAL, "unknown value type %d", (int)v->type);
    }
    if (r == JSV_EXCEPTION) return take_exception(iso, err);
    *out = r;
    return 0;
}

static void body_from_val(void *p)
{
    op_conv *op = p;
    jsg_isolate *iso = op->iso;
    jsv v;
    op->rc = build(iso, op->in, 0, &v, op->err);
    last_str_clear(iso);
    if (op->rc < 0) return;
    op->ref = handle_new(iso, v);
    if (op->ref == 0) op->rc = oom(op->err);
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

#define SKIP 1 /* read: a function or symbol inside a container */

static int read_val(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err);

static int read_str(jsg_isolate *iso, jsv v, tr_arena *a, jsg_val *out, tr_error *err)
{
    uint32_t n;
    const unsigned char *in_place = ascii_in_place(iso, v, &n);
    if (in_place != NULL) {
        *out = jsg_string(tr_arena_strndup(a, (const char *)in_place, n), n);
        return 0;
    }
    uint32_t c = Q(JS_ToCStringLen2)(I, iso->ctx, out_slot(iso, 0), v, 0);
    if (c == 0) return take_exception(iso, err);
    uint32_t len = load_u32(iso, out_slot(iso, 0));
    const char *p = wrt_mem_ptr(iso->mem, c, len);
    char *copy = p ? tr_arena_strndup(a, p, len) : NULL;
    Q(JS_FreeCString)(I, iso->ctx, c);
    if (copy == NULL) return oom(err);
    *out = jsg_string(copy, len);
    return 0;
}

static int read_bytes(jsg_isolate *iso, jsv v, tr_arena *a, jsg_val *out)
{
    uint32_t data = Q(JS_GetUint8Array)(I, iso->ctx, out_slot(iso, 0), v);
    uint32_t len = data ? load_u32(iso, out_slot(iso, 0)) : 0;
    if (data == 0) {
        /* A detached buffer has no data: an empty array. */
        jsv e = Q(JS_GetException)(I, iso->ctx);
        jsv_free(iso, e);
    }
    const char *p = len ? wrt_mem_ptr(iso->mem, data, len) : NULL;
    if (p == NULL) len = 0;
    char *copy = tr_arena_alloc(a, len ? len : 1);
    if (len) memcpy(copy, p, len);
    *out = jsg_bytes(copy, len);
    return 0;
}

static int read_array(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err)
{
    if ((int32_t)Q(JS_GetLength)(I, iso->ctx, v, out_slot(iso, 0)) < 0)
        return take_exception(iso, err);
    int64_t len = (int64_t)load_u64(iso, out_slot(iso, 0));
    if (len < 0 || len > MAX_ARRAY_LEN)
        return tr_error_set(err, TR_ELIMIT, "array too long to convert");
    size_t n = (size_t)len;
    jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        jsv e = Q(JS_GetPropertyUint32)(I, iso->ctx, v, (uint32_t)i);
        if (e == JSV_EXCEPTION) return take_exception(iso, err);
        int rc = read_val(iso, e, a, depth + 1, &items[i], err);
        jsv_free(iso, e);
        if (rc == SKIP)
            items[i] = jsg_null(); /* as JSON.stringify does */
        else if (rc < 0)
            return rc;
    }
    *out = jsg_array(items, n);
    return 0;
}

/* Any other object: its own enumerable string-keyed properties. */
static int read_object(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err)
{
    uint32_t tabp = out_slot(iso, 1), lenp = out_slot(iso, 2);
    if ((int32_t)Q(JS_GetOwnPropertyNames)(I, iso->ctx, tabp, lenp, v, GPN_STRING_ENUM) < 0)
        return take_exception(iso, err);
    uint32_t tab = load_u32(iso, tabp), n = load_u32(iso, lenp);
    jsg_prop *props = tr_arena_alloc(a, (n ? n : 1) * sizeof *props);
    size_t m = 0;
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t atom = load_u32(iso, tab + 8 * i + 4); /* JSPropertyEnum {bool; JSAtom} */
        jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, atom);
        if (pv == JSV_EXCEPTION) {
            rc = take_exception(iso, err);
            break;
        }
        rc = read_val(iso, pv, a, depth + 1, &props[m].val, err);
        jsv_free(iso, pv);
        if (rc == SKIP) {
            rc = 0;
            continue;
        }
        if (rc < 0) break;
        rc = atom_name(iso, atom, a, &props[m], err);
        if (rc < 0) break;
        m++;
    }
    Q(JS_FreePropertyEnum)(I, iso->ctx, tab, n);
    if (rc < 0) return rc;
    *out = jsg_object(props, m);
    return 0;
}

static int read_val(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err)
{
    if (depth > MAX_DEPTH)
        return tr_error_set(err, TR_EINVAL, "value nested deeper than %d levels (or cyclic)",
                            MAX_DEPTH);
    switch (jsv_tag(v)) {
    case TAG_INT:
        *out = jsg_number((double)(int32_t)(uint32_t)v);
        return 0;
    case TAG_BOOL:
        *out = jsg_bool((uint32_t)v != 0);
        return 0;
    case TAG_NULL:
        *out = jsg_null();
        return 0;
    case TAG_UNDEFINED:
        *out = jsg_undefined();
        return 0;
    case TAG_BIG_INT:
    case TAG_SHORT_BIG_INT:
        if ((int32_t)Q(JS_ToBigInt64)(I, iso->ctx, out_slot(iso, 0), v) < 0)
            return take_exception(iso, err);
        *out = jsg_bigint((int64_t)load_u64(iso, out_slot(iso, 0)));
        return 0;
    case TAG_STRING:
    case TAG_STRING_ROPE:
        return read_str(iso, v, a, out, err);
    case TAG_SYMBOL:
        if (depth == 0)
            return tr_error_set(err, TR_EINVAL, "a symbol cannot be converted to a host value");
        return SKIP;
    case TAG_OBJECT: {
        uint32_t cls = Q(JS_GetClassID)(I, v);
        if (cls == iso->u8_class_id) return read_bytes(iso, v, a, out);
        if (cls == iso->array_class_id) return read_array(iso, v, a, depth, out, err);
        if (Q(JS_IsFunction)(I, iso->ctx, v)) {
            if (depth == 0)
                return tr_error_set(err, TR_EINVAL,
                                    "a function cannot be converted to a host value");
            return SKIP;
        }
        return read_object(iso, v, a, depth, out, err);
    }
    default:
        if (jsv_is_float(v)) {
            *out = jsg_number(jsv_number(v));
            return 0;
        }
        return tr_error_set(err, TR_EINVAL, "value of an unsupported type");
    }
}

static void body_to_val(void *p)
{
    op_conv *op = p;
    jsg_isolate *iso = op->iso;
    jsv v = op->ref ? handle_val(iso, op->ref) : JSV_UNDEFINED;
    op->rc = read_val(iso, v, op->arena, 0, op->out, op->err);
}

int jsg_to_val(jsg_isolate *iso, jsg_ref ref, tr_arena *arena, jsg_val *out, tr_error *err)
{
    *out = jsg_undefined();
    op_conv op = {.iso = iso, .ref = ref, .arena = arena, .out = out, .err = err};
    int rc = run(iso, body_to_val, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
}

/* ---- JSON.stringify for plain data ----
 *
 * DESIGN: the engine's JSON.stringify has a high fixed cost (about 1.5 us for {"a":"b"} here:
 * the wrapper object, the cycle stack, the string builder). jsg_json_fast() writes the same
 * text in C for plain data, reading values the way JSON.stringify does (own enumerable string
 * keys in property order, [[Get]] of each), and gives up (0, the caller then uses
 * JSON.stringify) on anything else: a toJSON method anywhere, a class other than Object and
 * Array (Date, Map, typed arrays, boxed primitives, proxies), a bigint, a cycle, deep nesting,
 * or an exception. Giving up part way means getters already read run again in JSON.stringify;
 * plain data has none. */

#define JSON_MAX_DEPTH 48
#define JSON_GIVE_UP   1
#define JSON_TOO_BIG   2 /* the text could not be a string in the isolate */
/* Strings this long (quoted) are remembered for writing again by copying (json_text). */
#define JSON_REPEAT_MIN 256

typedef struct json_out {
    jsg_isolate *iso;
    tr_buf *buf;
    tr_arena *arena;  /* key names */
    uint32_t to_json; /* the atom "toJSON" */
    int depth;
    uint32_t stack[JSON_MAX_DEPTH]; /* the objects being written, for cycles */
    jsv last_str;                   /* the last string written (quoted), and where its text is */
    size_t last_off, last_len;
} json_out;

/* tr_buf_append_char() without a call when there is room (the JSON writer's most common
 * step). */
static inline void put_char(tr_buf *b, char c)
{
    if (b->data != NULL && b->len < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
    } else {
        tr_buf_append_char(b, c);
    }
}

#define BYTES_01 0x0101010101010101ull
#define BYTES_80 0x8080808080808080ull

/* True when none of the 8 bytes of x needs json_quote()'s attention: no control character,
 * quote, backslash or 0xED (the lead byte of a WTF-8 surrogate). The usual bit tricks: a byte
 * is below 0x20 when subtracting 0x20 borrows into its high bit, equal to c when x ^ c has a
 * zero byte there. */
static inline bool json_plain8(uint64_t x)
{
    uint64_t low = (x - BYTES_01 * 0x20) & ~x;
    uint64_t q = x ^ (BYTES_01 * '"'), bs = x ^ (BYTES_01 * '\\'), ed = x ^ (BYTES_01 * 0xED);
    q = (q - BYTES_01) & ~q;
    bs = (bs - BYTES_01) & ~bs;
    ed = (ed - BYTES_01) & ~ed;
    return ((low | q | bs | ed) & BYTES_80) == 0;
}

/* (p, n) of UTF-8 (lone surrogates as 3-byte WTF-8) as a JSON string literal. Plain text goes
 * eight bytes a step and is copied in runs. */
static void json_quote(tr_buf *b, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_char(b, '"');
    size_t run = 0, i = 0; /* run: start of bytes not yet copied */
    while (i < n) {
        uint64_t x;
        while (i + 8 <= n && (memcpy(&x, p + i, 8), json_plain8(x)))
            i += 8;
        if (i >= n) break;
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[7];
        size_t skip = 1;
        if (c < 0x20 || c == '"' || c == '\\') {
            switch (c) {
            case '"':
                esc = "\\\"";
                break;
            case '\\':
                esc = "\\\\";
                break;
            case '\b':
                esc = "\\b";
                break;
            case '\f':
                esc = "\\f";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            case '\t':
                esc = "\\t";
                break;
            default:
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = '\0';
                esc = u;
            }
        } else if (c == 0xED && i + 2 < n && p[i + 1] >= 0xA0) {
            /* a lone surrogate D800-DFFF: JSON.stringify writes it as an escape */
            unsigned cp = 0xD000u | ((unsigned)(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
            u[0] = '\\';
            u[1] = 'u';
            u[2] = hex[(cp >> 12) & 15];
            u[3] = hex[(cp >> 8) & 15];
            u[4] = hex[(cp >> 4) & 15];
            u[5] = hex[cp & 15];
            u[6] = '\0';
            esc = u;
            skip = 3;
        }
        if (esc == NULL) {
            i++;
            continue;
        }
        tr_buf_append(b, p + run, i - run);
        tr_buf_append_str(b, esc);
        i += skip;
        run = i;
    }
    tr_buf_append(b, p + run, n - run);
    put_char(b, '"');
}

/* The string value v (a string, or a number to format) appended as is or quoted. */
static int json_text_new(json_out *o, jsv v, bool quote);

static int json_text(json_out *o, jsv v, bool quote)
{
    /* The same long string as the last one (one string object referenced again and again): a
     * copy of its text. It is held until replaced, so its address cannot be reused by another
     * string (a getter's result, freed once written) meanwhile. */
    if (quote && v == o->last_str) {
        tr_buf_reserve(o->buf, o->last_len);
        memcpy(o->buf->data + o->buf->len, o->buf->data + o->last_off, o->last_len);
        o->buf->len += o->last_len;
        o->buf->data[o->buf->len] = '\0';
        return 0;
    }
    size_t start = o->buf->len;
    int rc = json_text_new(o, v, quote);
    if (rc == 0 && quote && o->buf->len - start >= JSON_REPEAT_MIN) {
        jsg_isolate *iso = o->iso;
        if (o->last_str != 0) jsv_free(iso, o->last_str);
        o->last_str = Q(JS_DupValue)(I, iso->ctx, v);
        o->last_off = start;
        o->last_len = o->buf->len - start;
    }
    return rc;
}

static int json_text_new(json_out *o, jsv v, bool quote)
{
    jsg_isolate *iso = o->iso;
    uint32_t n;
    const unsigned char *in_place = ascii_in_place(iso, v, &n);
    if (in_place != NULL) {
        if (quote)
            json_quote(o->buf, in_place, n);
        else
            tr_buf_append(o->buf, in_place, n);
        return 0;
    }
    uint32_t c = Q(JS_ToCStringLen2)(I, iso->ctx, out_slot(iso, 0), v, 0);
    if (c == 0) return JSON_GIVE_UP;
    uint32_t len = load_u32(iso, out_slot(iso, 0));
    const unsigned char *p = wrt_mem_ptr(iso->mem, c, len);
    if (p != NULL) {
        if (quote)
            json_quote(o->buf, p, len);
        else
            tr_buf_append(o->buf, p, len);
    }
    Q(JS_FreeCString)(I, iso->ctx, c);
    return p != NULL ? 0 : JSON_GIVE_UP;
}

/* Whether v is undefined, a function or a symbol: left out of objects, null in arrays. */
static bool json_skipped(jsg_isolate *iso, jsv v)
{
    int32_t tag = jsv_tag(v);
    return tag == TAG_UNDEFINED || tag == TAG_SYMBOL ||
           (tag == TAG_OBJECT && Q(JS_IsFunction)(I, iso->ctx, v));
}

static int json_value(json_out *o, jsv v);

static int json_object(json_out *o, jsv v)
{
    jsg_isolate *iso = o->iso;
    uint32_t cls = Q(JS_GetClassID)(I, v);
    bool array = cls == iso->array_class_id;
    if (!array && cls != iso->object_class_id) return JSON_GIVE_UP;
    if (o->depth >= JSON_MAX_DEPTH) return JSON_GIVE_UP;
    for (int i = 0; i < o->depth; i++)
        if (o->stack[i] == (uint32_t)v) return JSON_GIVE_UP; /* JSON.stringify throws */
    jsv tj = Q(JS_GetProperty)(I, iso->ctx, v, o->to_json);
    if (tj != JSV_UNDEFINED) {
        jsv_free(iso, tj);
        return JSON_GIVE_UP;
    }
    o->stack[o->depth++] = (uint32_t)v;
    int rc = 0;
    if (array) {
        if ((int32_t)Q(JS_GetLength)(I, iso->ctx, v, out_slot(iso, 0)) < 0) return JSON_GIVE_UP;
        int64_t n = (int64_t)load_u64(iso, out_slot(iso, 0));
        if (n < 0 || n > MAX_ARRAY_LEN) return JSON_GIVE_UP;
        put_char(o->buf, '[');
        for (int64_t i = 0; rc == 0 && i < n; i++) {
            if (i > 0) put_char(o->buf, ',');
            jsv e = Q(JS_GetPropertyUint32)(I, iso->ctx, v, (uint32_t)i);
            if (e == JSV_EXCEPTION) return JSON_GIVE_UP;
            if (json_skipped(iso, e))
                tr_buf_append_str(o->buf, "null");
            else
                rc = json_value(o, e);
            jsv_free(iso, e);
        }
        put_char(o->buf, ']');
    } else {
        uint32_t tabp = out_slot(iso, 1), lenp = out_slot(iso, 2);
        if ((int32_t)Q(JS_GetOwnPropertyNames)(I, iso->ctx, tabp, lenp, v, GPN_STRING_ENUM) < 0)
            return JSON_GIVE_UP;
        uint32_t tab = load_u32(iso, tabp), n = load_u32(iso, lenp);
        bool first = true;
        put_char(o->buf, '{');
        for (uint32_t i = 0; rc == 0 && i < n; i++) {
            uint32_t atom = load_u32(iso, tab + 8 * i + 4);
            jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, atom);
            if (pv == JSV_EXCEPTION) {
                rc = JSON_GIVE_UP;
                break;
            }
            if (!json_skipped(iso, pv)) {
                jsg_prop key;
                tr_error e = {0};
                rc = atom_name_now(iso, atom, o->arena, &key, &e) < 0 ? JSON_GIVE_UP : 0;
                if (rc == 0) {
                    if (!first) put_char(o->buf, ',');
                    first = false;
                    json_quote(o->buf, (const unsigned char *)key.key, key.key_len);
                    put_char(o->buf, ':');
                    rc = json_value(o, pv);
                }
            }
            jsv_free(iso, pv);
        }
        Q(JS_FreePropertyEnum)(I, iso->ctx, tab, n);
        put_char(o->buf, '}');
    }
    o->depth--;
    return rc;
}

/* An integer in decimal (snprintf of a double costs thousands of instructions). */
static void json_int(tr_buf *b, int64_t x)
{
    char tmp[24];
    size_t n = sizeof tmp;
    uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    do {
        tmp[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (x < 0) tmp[--n] = '-';
    tr_buf_append(b, tmp + n, sizeof tmp - n);
}

static int json_value(json_out *o, jsv v)
{
    char num[32];
    /* Text that could never be a string in the isolate (many references to one long string):
     * its out-of-memory error at once, instead of the host holding it all or JSON.stringify
     * running into the limit a character at a time. The engine keeps a string in at least 2/3
     * of its UTF-8 bytes (3-byte characters as 2-byte code units). */
    if (o->buf->len / 3 * 2 > o->iso->memory_limit) return JSON_TOO_BIG;
    switch (jsv_tag(v)) {
    case TAG_INT:
        json_int(o->buf, (int32_t)(uint32_t)v);
        return 0;
    case TAG_BOOL:
        tr_buf_append_str(o->buf, (uint32_t)v ? "true" : "false");
        return 0;
    case TAG_NULL:
        tr_buf_append_str(o->buf, "null");
        return 0;
    case TAG_STRING:
    case TAG_STRING_ROPE:
        return json_text(o, v, true);
    case TAG_OBJECT:
        return json_object(o, v);
    default:
        if (!jsv_is_float(v)) return JSON_GIVE_UP; /* bigint: JSON.stringify throws */
        double d = jsv_number(v);
        if (!isfinite(d)) {
            tr_buf_append_str(o->buf, "null");
        } else if (d == 0) {
            put_char(o->buf, '0'); /* -0 too */
        } else if (d == trunc(d) && fabs(d) < 9e18) {
            json_int(o->buf, (int64_t)d); /* what Number#toString writes */
        } else if (d == trunc(d) && fabs(d) < 1e21) {
            snprintf(num, sizeof num, "%.0f", d);
            tr_buf_append_str(o->buf, num);
        } else {
            return json_text(o, v, false);
        }
        return 0;
    }
}

typedef struct op_json {
    jsg_isolate *iso;
    jsg_ref value;
    jsg_ref out;
    tr_error *err;
    int rc;
} op_json;

static void body_json_fast(void *p)
{
    op_json *op = p;
    jsg_isolate *iso = op->iso;
    jsv v = handle_val(iso, op->value);
    if (json_skipped(iso, v)) return; /* JSON.stringify gives undefined: its business */
    if (iso->atom_to_json == 0) {
        bool temp;
        uint32_t a = atom_get(iso, "toJSON", 6, &temp);
        if (a == 0 || temp) {
            op->rc = oom(op->err);
            return;
        }
        iso->atom_to_json = Q(JS_DupAtom)(I, iso->ctx, a);
    }
    tr_buf buf = TR_BUF_INIT;
    tr_buf_reserve(&buf, 256);
    tr_arena arena;
    tr_arena_init(&arena, 512);
    json_out o = {.iso = iso, .buf = &buf, .arena = &arena, .to_json = iso->atom_to_json};
    int rc = json_value(&o, v);
    if (o.last_str != 0) jsv_free(iso, o.last_str);
    if (rc == JSON_TOO_BIG) {
        op->rc = oom(op->err);
    } else if (rc == JSON_GIVE_UP) {
        /* an exception on the way: JSON.stringify will meet it again, unless the deadline
         * passed, which must end the call */
        jsv e = Q(JS_GetException)(I, iso->ctx);
        jsv_free(iso, e);
        if (iso->interrupted)
            op->rc = tr_error_set(op->err, TR_EINTERRUPTED, INTERRUPTED_MSG);
    } else if (buf.len >= UINT32_MAX) {
        op->rc = tr_error_set(op->err, TR_ELIMIT, "string too large");
    } else {
        bool heap;
        uint32_t s = put_bytes(iso, buf.data ? buf.data : "", buf.len, SCRATCH_DATA, &heap);
        jsv str = s ? Q(JS_NewStringLen)(I, iso->ctx, s, (uint32_t)buf.len) : JSV_EXCEPTION;
        drop_bytes(iso, s, heap);
        if (str == JSV_EXCEPTION) {
            op->rc = take_exception(iso, op->err);
        } else {
            op->out = handle_new(iso, str);
            if (op->out == 0) op->rc = oom(op->err);
        }
    }
    tr_buf_free(&buf);
    tr_arena_deinit(&arena);
}

int jsg_json_fast(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err)
{
    *out = 0;
    op_json op = {.iso = iso, .value = value, .err = err};
    int rc = run(iso, body_json_fast, &op);
    rc = finish(iso, rc, rc ? rc : op.rc, err);
    if (rc == 0) *out = op.out;
    return rc;
}

/* ---- calls with host values ---- */

typedef struct op_callv {
    jsg_isolate *iso;
    jsg_ref fn, this_, promise;
    jsg_ref accept; /* jsg_call_result, jsg_promise_result: 0 for jsg_call_val, jsg_promise_val */
    size_t argc;
    const jsg_val *argv;
    tr_arena *arena;
    jsg_val *out;
    jsg_ref pending;          /* jsg_call_val: a pending promise (owned) */
    bool settled;             /* jsg_promise_val */
    const char *const *props; /* with accept: what read_instance() reads */
    jsg_ref other; /* with accept: a value not accepted or a rejection's reason (owned) */
    bool rejected;
    tr_error *err;
    int rc;
} op_callv;

/* With op->accept: how v (borrowed) is taken: NOT_TAKEN, or read as jsg_to_val() does
 * (TAKEN: a string, a Uint8Array), or as an instance of op->accept (INSTANCE). An instanceof
 * that throws (a proxy's trap) counts as no: the caller's JS then sees the same value. */
enum { NOT_TAKEN, TAKEN, INSTANCE };

/* Whether ordinary object v's prototype is cls.prototype (read once per class: a class's
 * `prototype` cannot change). No user code runs: v is no proxy. False also when it cannot
 * tell; the caller then asks instanceof. */
static bool direct_instance(jsg_isolate *iso, jsv v, jsv cls)
{
    if (iso->proto_ref < 0) return false;
    if (iso->accept_cls != cls) {
        bool temp;
        uint32_t a = atom_get(iso, "prototype", 9, &temp);
        jsv proto = a ? Q(JS_GetProperty)(I, iso->ctx, cls, a) : JSV_EXCEPTION;
        if (a && temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        if (proto == JSV_EXCEPTION || jsv_tag(proto) != TAG_OBJECT) {
            jsv e = Q(JS_GetException)(I, iso->ctx);
            jsv_free(iso, e);
            jsv_free(iso, proto);
            return false;
        }
        if (iso->accept_cls != 0) jsv_free(iso, iso->accept_cls);
        if (iso->accept_proto != 0) jsv_free(iso, iso->accept_proto);
        iso->accept_cls = Q(JS_DupValue)(I, iso->ctx, cls);
        iso->accept_proto = proto;
    }
    jsv p = Q(JS_GetPrototype)(I, iso->ctx, v);
    if (p == JSV_EXCEPTION) {
        jsv e = Q(JS_GetException)(I, iso->ctx);
        jsv_free(iso, e);
        return false;
    }
    bool same = p == iso->accept_proto;
    if (iso->proto_ref == 1) jsv_free(iso, p);
    return same;
}
static int taken(jsg_isolate *iso, jsv v, op_callv *op)
{
    int32_t tag = jsv_tag(v);
    if (tag == TAG_STRING || tag == TAG_STRING_ROPE) return TAKEN;
    if (tag != TAG_OBJECT) return NOT_TAKEN;
    uint32_t cls_id = Q(JS_GetClassID)(I, v);
    if (cls_id == iso->u8_class_id) return TAKEN;
    jsv cls = handle_val(iso, op->accept);
    if (cls_id == iso->object_class_id && direct_instance(iso, v, cls)) return INSTANCE;
    int32_t r = (int32_t)Q(JS_IsInstanceOf)(I, iso->ctx, v, cls);
    if (r < 0) {
        jsv e = Q(JS_GetException)(I, iso->ctx);
        jsv_free(iso, e);
    }
    return r > 0 ? INSTANCE : NOT_TAKEN;
}

/* An instance of op->accept as a JSG_OBJECT of the properties op->props names, each read with
 * [[Get]] (so by name, without listing the object's keys) and copied as jsg_to_val() does; a
 * function or symbol value is undefined. */
static int read_instance(jsg_isolate *iso, jsv v, op_callv *op)
{
    size_t n = 0;
    while (op->props[n] != NULL)
        n++;
    jsg_prop *props = tr_arena_alloc(op->arena, (n ? n : 1) * sizeof *props);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(op->props[i]);
        bool temp;
        uint32_t a = atom_get(iso, op->props[i], len, &temp);
        if (a == 0) return take_exception(iso, op->err);
        jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, a);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        if (pv == JSV_EXCEPTION) return take_exception(iso, op->err);
        props[i].key = op->props[i];
        props[i].key_len = len;
        int rc = read_val(iso, pv, op->arena, 1, &props[i].val, op->err);
        jsv_free(iso, pv);
        if (rc == SKIP)
            props[i].val = jsg_undefined();
        else if (rc < 0)
            return rc;
    }
    *op->out = jsg_object(props, n);
    return 0;
}

/* Hands v (owned) over as op->other. */
static int hand_over(jsg_isolate *iso, jsv v, bool rejected, op_callv *op)
{
    op->other = handle_new(iso, v);
    op->rejected = rejected;
    return op->other == 0 ? oom(op->err) : 0;
}

/* A value v (owned) a call gave or a promise fulfilled with: read into op->out, or with
 * op->accept handed over when it is not taken. */
static int fulfilled(jsg_isolate *iso, jsv v, op_callv *op)
{
    int how = op->accept ? taken(iso, v, op) : TAKEN;
    if (how == NOT_TAKEN) return hand_over(iso, v, false, op);
    int rc = how == INSTANCE ? read_instance(iso, v, op)
                             : read_val(iso, v, op->arena, 0, op->out, op->err);
    jsv_free(iso, v);
    return rc;
}

/* The outcome of r (borrowed): a pending promise leaves op->settled false; a rejected one is
 * described into op->err (with op->accept: handed over); any other value (or a fulfilled
 * promise's) goes to fulfilled(). */
static int outcome(jsg_isolate *iso, jsv r, op_callv *op)
{
    op->settled = true;
    if (jsv_tag(r) != TAG_OBJECT || !Q(JS_IsPromise)(I, r))
        return fulfilled(iso, Q(JS_DupValue)(I, iso->ctx, r), op);
    uint32_t state = Q(JS_PromiseState)(I, iso->ctx, r);
    if (state == JSG_PENDING) {
        op->settled = false;
        return 0;
    }
    jsv res = Q(JS_PromiseResult)(I, iso->ctx, r);
    if (state != JSG_REJECTED) return fulfilled(iso, res, op);
    if (op->accept) return hand_over(iso, res, true, op);
    uint32_t h = handle_new(iso, res);
    if (h == 0) return oom(op->err);
    int rc = describe(iso, h, op->err);
    Q(qjs_free_value)(I, h);
    return rc;
}

/* The key list of an object argument that may be recycled into sig (RECYCLE_SIG bytes), or 0
 * when it may not be: too many keys, or a large string or byte value of its own. */
static size_t recycle_sig(const jsg_val *v, char *sig)
{
    if (v->type != JSG_OBJECT) return 0;
    size_t n = 0;
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const jsg_prop *pr = &v->u.obj.props[i];
        if (pr->key_len > 255 || n + 1 + pr->key_len > RECYCLE_SIG) return 0;
        if ((pr->val.type == JSG_STRING || pr->val.type == JSG_BYTES) &&
            pr->val.u.str.len > RECYCLE_MAX_VALUE)
            return 0;
        sig[n++] = (char)pr->key_len;
        memcpy(sig + n, pr->key, pr->key_len);
        n += pr->key_len;
    }
    return n;
}

/* A refill's walk through the atoms of a recycled argument's keys (in order). */
typedef struct key_atoms {
    const uint32_t *a;
    size_t n, pos;
} key_atoms;

/* The atom of pr's key: the next one of ka, or (ka out of step or short) looked up. */
static uint32_t next_atom(jsg_isolate *iso, key_atoms *ka, const jsg_prop *pr, bool *temp)
{
    if (ka->pos < ka->n) {
        *temp = false;
        return ka->a[ka->pos++];
    }
    ka->n = 0;
    return atom_get(iso, pr->key, pr->key_len, temp);
}

/* Fills obj (owned; an object built earlier for the same keys) with v's values. The
 * properties exist, so this only replaces values: no new shape, no growing. 1: done, 0: obj
 * refused (user code froze it or made a property read-only; obj is released), or an error
 * code (obj is released). */
static int refill(jsg_isolate *iso, const jsg_val *v, jsv obj, key_atoms *ka, tr_error *err)
{
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const jsg_prop *pr = &v->u.obj.props[i];
        jsv c;
        int rc = build(iso, &pr->val, 1, &c, err);
        if (rc < 0) {
            jsv_free(iso, obj);
            return rc;
        }
        bool temp;
        uint32_t a = next_atom(iso, ka, pr, &temp);
        if (a == 0) {
            jsv_free(iso, c);
            jsv_free(iso, obj);
            return take_exception(iso, err);
        }
        /* set, not define: the fast path for an own writable data property (the object is
         * the SDK's private copy of the request; only code that digs it out could have made a
         * property an accessor, and it then gets what it asked for) */
        int32_t r = (int32_t)Q(JS_SetProperty)(I, iso->ctx, obj, a, c);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        if (r != 1) {
            /* refused (frozen, read-only): build a new one instead */
            jsv e = Q(JS_GetException)(I, iso->ctx);
            jsv_free(iso, e);
            jsv_free(iso, obj);
            return 0;
        }
    }
    return 1;
}

/* Argument i (an object with key list sig) when the isolate holds one built for the same keys,
 * refilled with v's values; else built afresh. */
static int build_arg(jsg_isolate *iso, size_t i, const jsg_val *v, const char *sig, size_t sig_len,
                     jsv *out, tr_error *err)
{
    if (sig_len > 0 && iso->recycled[i].obj != 0 && iso->recycled[i].sig_len == sig_len &&
        memcmp(iso->recycled[i].sig, sig, sig_len) == 0) {
        jsv obj = iso->recycled[i].obj;
        iso->recycled[i].obj = 0;
        key_atoms ka = {iso->recycled[i].atoms, iso->recycled[i].natoms, 0};
        int rc = refill(iso, v, obj, &ka, err);
        if (rc < 0) return rc;
        if (rc == 1) {
            *out = obj;
            return 0;
        }
    }
    return build(iso, v, 0, out, err);
}

/* The atoms (held) of v's keys, in order, into atoms (*n of them); false when there are more
 * than RECYCLE_ATOMS or one cannot be made. */
static bool hold_atoms(jsg_isolate *iso, const jsg_val *v, uint32_t *atoms, size_t *n)
{
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const jsg_prop *pr = &v->u.obj.props[i];
        if (*n >= RECYCLE_ATOMS) return false;
        bool temp;
        uint32_t a = atom_get(iso, pr->key, pr->key_len, &temp);
        if (a == 0) {
            jsv e = Q(JS_GetException)(I, iso->ctx);
            jsv_free(iso, e);
            return false;
        }
        atoms[(*n)++] = temp ? a : Q(JS_DupAtom)(I, iso->ctx, a);
    }
    return true;
}

/* Releases argument i (v, of host value arg) after its call, or keeps it for the next call when
 * nothing else holds it (its reference count is ours alone: no handler, promise or global kept
 * it), with the atoms of its keys. */
static void drop_arg(jsg_isolate *iso, size_t i, jsv v, const jsg_val *arg, const char *sig,
                     size_t sig_len)
{
    if (sig_len == 0 || jsv_tag(v) != TAG_OBJECT || obj_refs(iso, v) != 1) {
        jsv_free(iso, v);
        return;
    }
    if (iso->recycled[i].obj != 0) jsv_free(iso, iso->recycled[i].obj);
    iso->recycled[i].obj = v;
    if (iso->recycled[i].sig_len == sig_len && memcmp(iso->recycled[i].sig, sig, sig_len) == 0)
        return; /* the same keys: the same atoms */
    for (size_t k = 0; k < iso->recycled[i].natoms; k++)
        Q(JS_FreeAtom)(I, iso->ctx, iso->recycled[i].atoms[k]);
    iso->recycled[i].natoms = 0;
    iso->recycled[i].sig_len = sig_len;
    memcpy(iso->recycled[i].sig, sig, sig_len);
    size_t n = 0;
    if (!hold_atoms(iso, arg, iso->recycled[i].atoms, &n)) {
        for (size_t k = 0; k < n; k++)
            Q(JS_FreeAtom)(I, iso->ctx, iso->recycled[i].atoms[k]);
        n = 0;
    }
    iso->recycled[i].natoms = n;
}

static void body_call_val(void *p)
{
    op_callv *op = p;
    jsg_isolate *iso = op->iso;
    jsv args[JSG_MAX_CALL_VALS];
    char sigs[JSG_MAX_CALL_VALS][RECYCLE_SIG];
    size_t sig_len[JSG_MAX_CALL_VALS];
    size_t built = 0;
    op->rc = 0;
    for (; built < op->argc; built++) {
        sig_len[built] = recycle_sig(&op->argv[built], sigs[built]);
        op->rc = build_arg(iso, built, &op->argv[built], sigs[built], sig_len[built], &args[built],
                           op->err);
        if (op->rc < 0) break;
    }
    last_str_clear(iso);
    /* run() nests at most ARGV_LEVELS deep here in practice (a host function calling back in);
     * deeper, the arguments get a guest allocation of their own. */
    uint32_t argv = 0;
    bool heap = iso->depth > ARGV_LEVELS;
    if (op->rc == 0 && op->argc > 0) {
        argv =
            heap ? Q(wasm_malloc)(I, (uint32_t)(8 * op->argc))
                 : iso->scratch + SCRATCH_ARGV + (uint32_t)(iso->depth - 1) * JSG_MAX_CALL_VALS * 8;
        if (argv == 0) op->rc = oom(op->err);
    }
    for (size_t i = 0; op->rc == 0 && i < op->argc; i++)
        store_u64(iso, argv + 8 * (uint32_t)i, args[i]);
    jsv r = JSV_EXCEPTION;
    if (op->rc == 0) {
        jsv this_ = op->this_ ? handle_val(iso, op->this_) : JSV_UNDEFINED;
        r = Q(JS_Call)(I, iso->ctx, handle_val(iso, op->fn), this_, (uint32_t)op->argc, argv);
    }
    if (heap && argv) Q(wasm_free)(I, argv);
    if (op->rc < 0 || r == JSV_EXCEPTION) {
        if (op->rc == 0) op->rc = take_exception(iso, op->err);
        for (size_t i = 0; i < built; i++)
            jsv_free(iso, args[i]);
        return;
    }
    /* The jobs get a deadline of their own, as with a separate jsg_run_jobs(). */
    iso->deadline_ns = 0;
    op->rc = run_jobs_inner(iso, op->err);
    /* after the jobs: they may have released what held an argument */
    for (size_t i = 0; i < built; i++)
        drop_arg(iso, i, args[i], &op->argv[i], sigs[i], op->rc == 0 ? sig_len[i] : 0);
    if (op->rc == 0) op->rc = outcome(iso, r, op);
    if (op->rc == 0 && !op->settled) {
        op->pending = handle_new(iso, r);
        if (op->pending == 0) op->rc = oom(op->err);
        return;
    }
    jsv_free(iso, r);
}

static int call_val(op_callv *op)
{
    jsg_isolate *iso = op->iso;
    *op->out = jsg_undefined();
    if (op->fn == 0 || op->argc > JSG_MAX_CALL_VALS)
        return tr_error_set(op->err, TR_EINVAL, "jsg_call_val: no function or too many arguments");
    int rc = run(iso, body_call_val, op);
    report_unhandled(iso);
    return finish(iso, rc, rc ? rc : op->rc, op->err);
}

int jsg_call_val(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_val *argv,
                 tr_arena *arena, jsg_val *out, jsg_ref *pending, tr_error *err)
{
    op_callv op = {.iso = iso,
                   .fn = fn,
                   .this_ = this_,
                   .argc = argc,
                   .argv = argv,
                   .arena = arena,
                   .out = out,
                   .err = err};
    int rc = call_val(&op);
    *pending = rc == 0 ? op.pending : 0;
    return rc;
}

/* What jsg_call_result() and jsg_promise_result() share: op reads what accept describes into
 * r (cleared here); rc is the call's outcome, copied into r when 0. */
static int accept_check(const jsg_accept *accept, jsg_result *r, const char *what, tr_error *err)
{
    *r = (jsg_result){.val = jsg_undefined()};
    if (accept->cls == 0 || accept->props == NULL)
        return tr_error_set(err, TR_EINVAL, "%s: no class", what);
    return 0;
}

static int accept_done(const op_callv *op, jsg_result *r, int rc)
{
    if (rc == 0) {
        r->pending = op->pending;
        r->other = op->other;
        r->rejected = op->rejected;
    }
    return rc;
}

int jsg_call_result(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_val *argv,
                    const jsg_accept *accept, tr_arena *arena, jsg_result *r, tr_error *err)
{
    int rc = accept_check(accept, r, "jsg_call_result", err);
    if (rc < 0) return rc;
    op_callv op = {.iso = iso,
                   .fn = fn,
                   .this_ = this_,
                   .accept = accept->cls,
                   .props = accept->props,
                   .argc = argc,
                   .argv = argv,
                   .arena = arena,
                   .out = &r->val,
                   .err = err};
    return accept_done(&op, r, call_val(&op));
}

static void body_promise_val(void *p)
{
    op_callv *op = p;
    jsg_isolate *iso = op->iso;
    jsv v = handle_val(iso, op->promise);
    if (jsv_tag(v) != TAG_OBJECT || !Q(JS_IsPromise)(I, v)) {
        op->rc = tr_error_set(op->err, TR_EINVAL, "not a promise");
        return;
    }
    op->rc = outcome(iso, v, op);
}

/* What jsg_promise_val() and jsg_promise_result() share: op's promise read into op->out. */
static int promise_val(op_callv *op, bool *settled)
{
    *op->out = jsg_undefined();
    *settled = false;
    int rc = run(op->iso, body_promise_val, op);
    rc = finish(op->iso, rc, rc ? rc : op->rc, op->err);
    if (rc == 0) *settled = op->settled;
    return rc;
}

int jsg_promise_val(jsg_isolate *iso, jsg_ref promise, tr_arena *arena, jsg_val *out, bool *settled,
                    tr_error *err)
{
    op_callv op = {.iso = iso, .promise = promise, .arena = arena, .out = out, .err = err};
    return promise_val(&op, settled);
}

int jsg_promise_result(jsg_isolate *iso, jsg_ref promise, const jsg_accept *accept, tr_arena *arena,
                       jsg_result *r, bool *settled, tr_error *err)
{
    *settled = false;
    int rc = accept_check(accept, r, "jsg_promise_result", err);
    if (rc < 0) return rc;
    op_callv op = {.iso = iso,
                   .promise = promise,
                   .accept = accept->cls,
                   .props = accept->props,
                   .arena = arena,
                   .out = &r->val,
                   .err = err};
    return accept_done(&op, r, promise_val(&op, settled));
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

typedef struct op_resolved {
    jsg_isolate *iso;
    jsg_ref value;
    jsg_ref *out;
    tr_error *err;
    int rc;
} op_resolved;

static void body_resolved(void *p)
{
    op_resolved *op = p;
    jsg_isolate *iso = op->iso;
    /* JS_NewSettledPromise is Promise.resolve(value) (value borrowed): a thenable is followed
     * through a job, as a deferred's resolve would. */
    jsv v = op->value ? handle_val(iso, op->value) : JSV_UNDEFINED;
    jsv r = Q(JS_NewSettledPromise)(I, iso->ctx, 0, v);
    if (jsv_tag(r) == TAG_EXCEPTION) {
        op->rc = take_exception(iso, op->err);
        return;
    }
    uint32_t h = handle_new(iso, r);
    if (h == 0) {
        op->rc = oom(op->err);
        return;
    }
    *op->out = h;
    op->rc = 0;
}

int jsg_promise_resolved(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err)
{
    *out = 0;
    op_resolved op = {iso, value, out, err, 0};
    int rc = run(iso, body_resolved, &op);
    return finish(iso, rc, rc ? rc : op.rc, err);
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
