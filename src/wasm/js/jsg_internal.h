/* wasm/js/jsg_internal.h: what the files of the engine binding share (private to src/wasm/js/).
 *
 * The binding is in parts, as SQLite's bytecode engine is (vdbe.c, vdbeapi.c, vdbemem.c behind
 * vdbeInt.h):
 *   jsg.c         the isolate's life: create and free, guarded runs, errors, host imports
 *                 (host functions, the interrupt check, rejections), eval and modules
 *   jsg_layout.c  the checks of the engine's memory layout (jsg_layout.h)
 *   jsg_value.c   refs, properties, host values to JS values and back (jsg_from_val/to_val)
 *   jsg_json.c    JSON.stringify for plain data in C (jsg_json_fast), jsg_to_json
 *   jsg_call.c    calls (jsg_call, the request path jsg_call_val/_result) and promises
 * The assumptions about the engine's private memory layout are in jsg_layout.h, a header of
 * their own so that they can be read (and changed with a new engine) in one place; this header
 * includes it.
 *
 * DESIGN: every public function runs its body through jsg__guarded() (or jsg__enter()), i.e.
 * wrt_call(): one guarded entry per operation, however many exports the body calls, so a trap
 * anywhere ends the operation with TR_ETRAP and marks the isolate dead. A body is a function
 * `int body(jsg_isolate *, void *arg, tr_error *)`; arg points at the operation's arguments
 * (a struct of them when there are several). Host imports (host_call, ...) run host code with
 * the "in guest" flag cleared; when a host function's own jsg calls trap (a nested wrt_call
 * frame), host_call re-raises the trap as soon as the callback returns, unwinding the outer call.
 *
 * Values cross as the engine's handles: guest pointers to heap-allocated JSValues (jsg_ref).
 * Small strings and out-parameters go through a per-isolate scratch area in guest memory
 * (allocated once), so the per-call path does no guest malloc beyond the handles themselves.
 * A scratch area is never live across a call that can run JS.
 *
 * Linear memory lives in a fixed reservation (wrt.c), so guest pointers turned into host
 * pointers stay valid after memory.grow; they are still bounds-checked with wrt_mem_ptr().
 *
 * Thread: as jsg.h: everything here runs on the isolate's own thread; the helpers marked
 * "inside a body" only under its guarded entry. */
#ifndef TRAIL_WASM_JS_JSG_INTERNAL_H
#define TRAIL_WASM_JS_JSG_INTERNAL_H

#include "wasm/js/jsg.h"

#include <stdatomic.h>
#include <string.h>

#include "quickjs.h"
#include "wasm/js/jsg_layout.h"
#include "wasm/runtime/wrt.h"
#include "wasm/wasi/wasi.h"

/* The engine's exports. Never JS_SetDumpFlags outside jsg__layout_check: the build takes the
 * interpreter's test of the step-dump flag out of the engine's code (tools/engine-fixup.sh,
 * docs/engine.md), so that flag would not be obeyed. */
#define Q(name) Z_quickjsZ_##name
/* the engine instance, for Q(...)(I, ...) in a function with an `iso` */
#define I (iso->inst)

#define MAX_HOST_FNS     256
#define MAX_HOST_FN_NAME 64
#define MAX_HOST_ARGS    256
#define MAX_DEPTH        64
/* Longest array jsg_to_val copies: a sparse JS array can claim 2^32-1 elements. */
#define MAX_ARRAY_LEN 1000000
/* how a call that ran past its deadline ends */
#define INTERRUPTED_MSG "InternalError: interrupted: the JavaScript ran past its deadline"
#define SCRATCH_OUT     256  /* out-parameters and small argv arrays */
#define SCRATCH_NAME    256  /* file names, property names */
#define SCRATCH_DATA    4096 /* small strings */
#define SCRATCH_ARGV    (SCRATCH_OUT + SCRATCH_NAME + SCRATCH_DATA)
/* jsg_call_val's arguments, one area per nesting level of a guarded run: QuickJS may use the
 * caller's argument array as the callee's argument storage, so it must stay untouched while JS
 * runs. */
#define ARGV_LEVELS  8
#define SCRATCH_SIZE (SCRATCH_ARGV + ARGV_LEVELS * JSG_MAX_CALL_VALS * 8)
/* Linear memory that is not JS heap: the 1 MiB shadow stack, static data, allocator slack. */
#define NON_HEAP_RESERVE ((size_t)2 << 20)

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

struct Z_env_instance_t {
    jsg_isolate *iso;
};

struct jsg_isolate {
    Z_quickjs_instance_t *inst; /* wrt_instance_new(): its memory follows it */
    struct Z_env_instance_t env;
    wasi_ctx wasi;
    wasm_rt_memory_t *mem; /* &inst->w2c_memory */
    bool instantiated;
    bool dead;
    wasm_rt_trap_t trap;
    int depth; /* nesting of guarded runs */
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
     * jsg__layout_check(); 0: unknown, so strings are always read through JS_ToCStringLen2) */
    uint32_t str8_off;
    /* jsg_call_result()'s class and its prototype (both held; 0: none yet), for its common
     * result: an object whose prototype is that one, recognised without an instanceof */
    jsv accept_cls, accept_proto;
    /* JS_GetPrototype gives a new reference (1) or a borrowed one (0); -1: unknown (found by
     * jsg__layout_check(); then every check is an instanceof) */
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

/* ---- guarded runs (jsg.c) ---- */

/* The work of one operation, run under its guarded entry: 0, or an error code with err filled. */
typedef int jsg__body(jsg_isolate *iso, void *arg, tr_error *err);

/* Runs body(iso, arg, err) under one guarded entry (wrt_call). TR_ETRAP when the isolate is or
 * became dead (a trap: it is marked dead; err is left alone), else what body returned. */
int jsg__enter(jsg_isolate *iso, jsg__body *body, void *arg, tr_error *err);

/* The result rc of jsg__enter() as the public functions give it: a trap described into err, and
 * a top-level call that ran past its deadline (or out of memory) recorded for
 * jsg_take_limit_error() and, if its body succeeded all the same, made TR_EINTERRUPTED. */
int jsg__finish(jsg_isolate *iso, int rc, tr_error *err);

/* jsg__enter() then jsg__finish(): how most public functions run their body. */
int jsg__guarded(jsg_isolate *iso, jsg__body *body, void *arg, tr_error *err);

/* Reports the unhandled rejections kept so far to the isolate's handler (outside any run). */
void jsg__report_unhandled(jsg_isolate *iso);

/* TR_ETRAP with the trap's name in err. */
int jsg__dead_error(jsg_isolate *iso, tr_error *err);

/* ---- errors and strings inside a body (jsg.c) ---- */

int jsg__oom(tr_error *err);
/* Takes the pending exception and turns it into an error code and message. */
int jsg__take_exception(jsg_isolate *iso, tr_error *err);
/* Checks a handle an export returned: 0 (no memory for the handle) or an exception. On failure
 * the handle is freed. */
int jsg__check(jsg_isolate *iso, uint32_t h, tr_error *err);
/* Describes the JS value h (an Error or any thrown value) into err as TR_EJS, or TR_ENOMEM for
 * QuickJS's out-of-memory error. */
int jsg__describe(jsg_isolate *iso, uint32_t h, tr_error *err);
/* Reads the string value of handle h (ToString for non-strings) into buf. Returns 0, or -1 when
 * the conversion threw (the exception is pending). */
int jsg__read_string(jsg_isolate *iso, uint32_t h, tr_buf *buf);
/* Runs pending jobs until none is left; the first that throws ends it (its exception the error). */
int jsg__run_jobs(jsg_isolate *iso, tr_error *err);

/* ---- the layout (jsg_layout.c) ---- */

/* jsg_layout.h's assumptions as values, for jsg__layout_verify() (jsg__layout_expected: the
 * ones this build uses; a test hands it others to see a mismatch caught). */
typedef struct jsg__layout {
    int32_t tag_int, tag_bool, tag_null, tag_undefined, tag_exception, tag_object;
    int32_t tag_string, tag_string_rope, tag_symbol, tag_big_int, tag_short_big_int;
    uint32_t refcount_off;                     /* JSV_REFCOUNT_OFF */
    uint32_t str_wide_bit;                     /* JSSTR_WIDE_BIT */
    uint32_t propenum_size, propenum_atom_off; /* PROPENUM_* */
    uint32_t gpn_string_enum, prop_cw, prop_cwe;
    uint32_t dump_step_flag, dump_step_byte, dump_step_mask; /* JS_DUMP_BYTECODE_STEP, JSRT_* */
} jsg__layout;
extern const jsg__layout jsg__layout_expected;

/* Checks each assumption of want against the engine by making values of every kind and looking
 * at them: 0, or TR_EINVAL with "the engine's layout differs from the one this build expects:
 * <the assumption>". Runs a little JS (a literal of one value per tag). Inside a body. */
int jsg__layout_verify(jsg_isolate *iso, const jsg__layout *want, tr_error *err);

/* Checks the layout against the engine (the full jsg__layout_verify() once per process, when the
 * first isolate is created; the value layout the conversions rely on at every one), fills the
 * isolate's class ids and finds str8_off and proto_ref. Inside a body, before any user code. */
int jsg__layout_check(jsg_isolate *iso, tr_error *err);

/* The characters of string v (borrowed) where the engine keeps them, when they are their own
 * UTF-8: a flat string of 8-bit characters, all ASCII. NULL otherwise (or when str8_off is
 * unknown): the caller copies them out with JS_ToCStringLen2. */
const unsigned char *jsg__ascii_in_place(jsg_isolate *iso, jsv v, uint32_t *len);

/* ---- values (jsg_value.c) ---- */

/* The atom of property name (p, n). *temp: the caller releases it (JS_FreeAtom); else it
 * belongs to the cache. 0 on failure (an exception is pending). */
uint32_t jsg__atom_get(jsg_isolate *iso, const char *p, size_t n, bool *temp);
/* The name of atom a, copied into the arena. */
int jsg__atom_name(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out, tr_error *err);
/* jsg__atom_name() for a name used at once (before the next call into the isolate): a cached
 * one is not copied. */
int jsg__atom_name_now(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out, tr_error *err);
/* The JS value of host value v at nesting depth into *out (owned). */
int jsg__build(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err);
/* Forgets last_str (at the end of a conversion: the host's bytes may change afterwards). */
void jsg__last_str_clear(jsg_isolate *iso);
/* v (borrowed) copied into *out from arena; JSG__SKIP for a function or symbol at depth > 0. */
#define JSG__SKIP 1
int jsg__read_val(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err);
/* A new string of the UTF-8 (p, n); JSV_EXCEPTION when out of memory. */
jsv jsg__new_str(jsg_isolate *iso, const char *p, size_t n);
/* A string handle for (p, n). 0 on OOM. */
uint32_t jsg__new_string(jsg_isolate *iso, const char *p, size_t n);
/* A slot index for the caches (which compare keys on a hit). */
uint32_t jsg__key_hash(const char *p, size_t n);

/* ---- guest memory (inside a body) ---- */

_Static_assert(sizeof(Z_quickjs_instance_t) <= WRT_INSTANCE_SPAN,
               "the engine's instance must fit below its memory: raise WRT_INSTANCE_SPAN");

static inline uint32_t jsg__out_slot(jsg_isolate *iso, unsigned i)
{
    return iso->scratch + 4 * i;
}

static inline uint32_t jsg__load_u32(jsg_isolate *iso, uint32_t off)
{
    uint32_t v = 0;
    const void *p = wrt_mem_ptr(iso->mem, off, 4);
    if (p != NULL) memcpy(&v, p, 4);
    return v;
}

static inline void jsg__store_u32(jsg_isolate *iso, uint32_t off, uint32_t v)
{
    void *p = wrt_mem_ptr(iso->mem, off, 4);
    if (p != NULL) memcpy(p, &v, 4);
}

static inline uint64_t jsg__load_u64(jsg_isolate *iso, uint32_t off)
{
    uint64_t v = 0;
    const void *p = wrt_mem_ptr(iso->mem, off, 8);
    if (p != NULL) memcpy(&v, p, 8);
    return v;
}

static inline void jsg__store_u64(jsg_isolate *iso, uint32_t off, uint64_t v)
{
    void *p = wrt_mem_ptr(iso->mem, off, 8);
    if (p != NULL) memcpy(p, &v, 8);
}

/* Copies (p, n) into guest memory followed by a NUL: into the scratch area `area` when it fits
 * (area is SCRATCH_NAME or SCRATCH_DATA), else into a guest malloc (*heap = true). Returns the
 * guest offset, or 0 when the guest is out of memory. */
static inline uint32_t jsg__put_bytes(jsg_isolate *iso, const void *p, size_t n, int area,
                                      bool *heap)
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

static inline void jsg__drop_bytes(jsg_isolate *iso, uint32_t off, bool heap)
{
    if (heap) Q(wasm_free)(I, off);
}

/* A handle for `ref`, or the undefined handle for 0. */
static inline uint32_t jsg__or_undef(jsg_isolate *iso, jsg_ref ref)
{
    return ref ? ref : iso->undef;
}

/* ---- engine values (inside a body) ---- */

static inline void jsv_free(jsg_isolate *iso, jsv v)
{
    if (jsv_has_refcount(v)) Q(JS_FreeValue)(I, iso->ctx, v);
}

/* The reference count of object v. */
static inline uint32_t jsv_refs(jsg_isolate *iso, jsv v)
{
    return jsg__load_u32(iso, (uint32_t)v - JSV_REFCOUNT_OFF);
}

/* The value a handle holds (borrowed). A handle outside the guest's memory traps, as the
 * engine's own exports do when they read one. */
static inline jsv jsg__handle_val(jsg_isolate *iso, uint32_t h)
{
    const void *p = wrt_mem_ptr(iso->mem, h, 8);
    if (p == NULL) wasm_rt_trap(WASM_RT_TRAP_OOB);
    jsv v;
    memcpy(&v, p, 8);
    return v;
}

/* A handle owning v; 0 (and v released) when the guest is out of memory. */
static inline uint32_t jsg__handle_new(jsg_isolate *iso, jsv v)
{
    uint32_t h = Q(wasm_malloc)(I, 8);
    if (h == 0) {
        jsv_free(iso, v);
        return 0;
    }
    jsg__store_u64(iso, h, v);
    return h;
}

#endif
