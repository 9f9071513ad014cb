/* wasm/js/jsg.h: JavaScript isolates: QuickJS-NG compiled to WebAssembly (npm quickjs-wasi),
 * translated to C by wasm2c and run on trail's own runtime (wasm/runtime/wrt.h).
 *
 * An isolate is one instance of the engine: its own linear memory (guard-page protected and
 * capped), its own QuickJS runtime and context, its host functions and its limits. Values cross
 * the boundary two ways:
 *   - jsg_ref: a JS value kept alive for the host (a handle inside the isolate). Refs are
 *     owned by whoever received them and released with jsg_ref_free(); 0 means "no value".
 *   - jsg_val: a host copy of plain data (undefined, null, booleans, numbers, bigints, strings,
 *     Uint8Array bytes, arrays, plain objects), converted with jsg_from_val()/jsg_to_val().
 *
 * Errors: functions return 0 or
 *   TR_EJS           the JS code threw; err->msg holds "Name: message" and, after a newline,
 *                    the JS stack. The isolate stays usable.
 *   TR_EINTERRUPTED  the call ran past its deadline (jsg_set_timeout); the isolate stays usable.
 *   TR_ENOMEM        the isolate ran out of its memory limit; the isolate stays usable, but the
 *                    caller should consider recreating it.
 *   TR_ETRAP         the engine trapped (a bug in the engine or hostile input); the isolate is
 *                    dead: every later call returns TR_ETRAP, jsg_isolate_free() is all that
 *                    remains to do.
 *   TR_EINVAL        a host-side misuse or a value that cannot be converted.
 *
 * Thread: an isolate is used only by the thread that created it (trail's workers each own
 * theirs); different isolates run on different threads concurrently. A thread that runs
 * isolates should be created with wrt_thread_attr_init() (WRT_THREAD_STACK_SIZE). */
#ifndef TRAIL_WASM_JS_JSG_H
#define TRAIL_WASM_JS_JSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct jsg_isolate jsg_isolate;
typedef uint32_t jsg_ref;

/* QuickJS's own stack limit (bytes of the engine's 1 MiB shadow stack). Deep recursion throws
 * RangeError at this depth, well before the shadow stack or the native stack (see wrt.h) runs
 * out. The engine's native frames need up to ~16 bytes of native stack per byte of it, so the
 * default is also at most 1/32 of the creating thread's stack: 512 KiB on a thread of
 * WRT_THREAD_STACK_SIZE, 256 KiB on an 8 MiB main thread. See docs/engine.md. */
#define JSG_MAX_STACK_SIZE ((uint32_t)512 << 10)
#define JSG_STACK_RATIO    32
#define JSG_MIN_STACK_SIZE ((uint32_t)64 << 10)

typedef struct jsg_options {
    size_t memory_limit; /* bytes of linear memory the isolate may use; 0: 64 MiB */
    uint64_t timeout_ns; /* deadline of each top-level call; 0: none */
    bool cpu_time;       /* timeout_ns counts the thread's CPU time, not wall-clock time */
    uint32_t stack_size; /* QuickJS stack limit; 0: the default above (larger is clamped) */
} jsg_options;

#define JSG_DEFAULT_MEMORY_LIMIT ((size_t)64 << 20)
/* Smallest memory_limit accepted: the engine's static data, shadow stack and a small heap. */
#define JSG_MIN_MEMORY_LIMIT ((size_t)4 << 20)

/* Creates an isolate. opt may be NULL for the defaults. */
int jsg_isolate_new(const jsg_options *opt, jsg_isolate **out, tr_error *err);

/* Releases the isolate and everything it holds (its refs become invalid). NULL is a no-op. */
void jsg_isolate_free(jsg_isolate *iso);

/* True once the isolate has trapped; it can only be freed. */
bool jsg_isolate_dead(const jsg_isolate *iso);

/* True for the results after which an isolate must not run guest code again: a trap, the CPU
 * budget's interrupt, running out of memory. Whoever gets one discards the isolate (and never
 * turns it into a JS exception, which would run guest code). */
static inline bool jsg_rc_is_fatal(int rc)
{
    return rc == TR_ETRAP || rc == TR_EINTERRUPTED || rc == TR_ENOMEM;
}

/* Sets the deadline applied to each following top-level call (0: none). A call's clock starts
 * at QuickJS's first interrupt check (every few thousand operations), so short calls never read
 * it; time spent in host functions before that check is not counted. */
void jsg_set_timeout(jsg_isolate *iso, uint64_t timeout_ns);

/* TR_EINTERRUPTED or TR_ENOMEM when a top-level call (not one nested in a host function) ended
 * with it since the last time this was asked, else 0; asking clears it. For a host that runs
 * guest code from many places (timers, I/O completions) and decides in one place whether to
 * replace the isolate. */
int jsg_take_limit_error(jsg_isolate *iso);

/* For host work on the isolate's behalf that may run long outside the engine (a SQL statement
 * its JS started): jsg_overdue() is true once the current top-level call has run past its
 * deadline or jsg_interrupt() was called. The call then ends with TR_EINTERRUPTED, as if its JS
 * had run too long, whatever the JS does with the host's error. Work outside any call (run from
 * the host's loop) calls jsg_overdue_start() first and gets a deadline of its own, as a call
 * would. A check may read the clock: for every few thousand steps of work, not every step. */
void jsg_overdue_start(jsg_isolate *iso);
bool jsg_overdue(jsg_isolate *iso);

/* Bytes of linear memory the isolate currently has. */
size_t jsg_memory_size(const jsg_isolate *iso);

/* Bytes of linear memory the isolate may have (jsg_options.memory_limit). */
size_t jsg_memory_limit(const jsg_isolate *iso);

/* ---- evaluation ---- */

/* Evaluates a script; *out (may be NULL) receives the completion value. */
int jsg_eval(jsg_isolate *iso, const char *code, size_t len, const char *filename, jsg_ref *out,
             tr_error *err);

/* Evaluates an ES module named `name`, runs pending jobs until its evaluation settles, and gives
 * its namespace object (its exports) in *ns (may be NULL). Imports of other modules are not
 * supported yet (they fail with a clear error). */
int jsg_eval_module(jsg_isolate *iso, const char *code, size_t len, const char *name, jsg_ref *ns,
                    tr_error *err);

/* Compiles code (a script, or an ES module named `name` when module is true) to QuickJS bytecode
 * without running it, into out (replacing its contents). Bytecode is for this engine build only
 * (jsg_engine_sha256()) and must come from jsg_compile(): QuickJS does not validate it (a bad
 * one can only corrupt the isolate that loads it, never the host). */
int jsg_compile(jsg_isolate *iso, const char *code, size_t len, const char *name, bool module,
                tr_buf *out, tr_error *err);

/* Runs bytecode from jsg_compile(), in this or any other isolate: *out (may be NULL) receives a
 * script's completion value or, as with jsg_eval_module(), a module's namespace. */
int jsg_eval_bytecode(jsg_isolate *iso, const void *bytecode, size_t len, jsg_ref *out,
                      tr_error *err);

/* Asks the isolate to stop the JS it is running (or, when it runs none, the next it runs) as if
 * its deadline had passed: that call returns TR_EINTERRUPTED. Thread: any thread; the only jsg
 * function that may be called from outside the isolate's own thread. */
void jsg_interrupt(jsg_isolate *iso);

/* Calls fn with this_ (0: undefined) and argc arguments; *out (may be NULL) receives the result. */
int jsg_call(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_ref *argv,
             jsg_ref *out, tr_error *err);

/* Runs pending promise jobs until none is left. */
int jsg_run_jobs(jsg_isolate *iso, tr_error *err);

/* ---- refs ---- */

/* The global object; borrowed, valid for the isolate's lifetime (do not free). */
jsg_ref jsg_global(jsg_isolate *iso);

/* A second ref to the same value. */
int jsg_ref_dup(jsg_isolate *iso, jsg_ref ref, jsg_ref *out);
void jsg_ref_free(jsg_isolate *iso, jsg_ref ref);

/* obj[key] (key is UTF-8 of key_len bytes; obj 0: the global object). */
int jsg_get(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref *out,
            tr_error *err);
/* obj[key] = value (value is borrowed; 0: undefined; obj 0: the global object). */
int jsg_set(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref value,
            tr_error *err);

typedef enum jsg_kind {
    JSG_K_UNDEFINED,
    JSG_K_NULL,
    JSG_K_BOOL,
    JSG_K_NUMBER,
    JSG_K_BIGINT,
    JSG_K_STRING,
    JSG_K_SYMBOL,
    JSG_K_FUNCTION,
    JSG_K_ARRAY,
    JSG_K_PROMISE,
    JSG_K_ERROR,
    JSG_K_OBJECT, /* any other object */
} jsg_kind;

jsg_kind jsg_ref_kind(jsg_isolate *iso, jsg_ref ref);

/* ---- host values ---- */

typedef enum jsg_type {
    JSG_UNDEFINED,
    JSG_NULL,
    JSG_BOOL,
    JSG_NUMBER,
    JSG_BIGINT,
    JSG_STRING, /* UTF-8; lone surrogates as WTF-8; may contain NUL */
    JSG_BYTES,  /* a Uint8Array */
    JSG_ARRAY,
    JSG_OBJECT, /* a plain object: own enumerable string keys, in order */
    /* Only for building values (jsg_from_val, jsg_call_val); never read back: */
    JSG_NAME,   /* a string (u.str) from a small set the host sends again and again (a method, a
                 * header name): the isolate keeps the most recent ones interned, so sending one
                 * again allocates nothing */
    JSG_REF,    /* the JS value of a ref (u.ref, borrowed): e.g. an object the host made once */
    JSG_SHARED, /* a frozen array of strings (u.arr; items JSG_STRING or JSG_NAME); the isolate
                 * keeps the most recent small ones and hands out the same array again for
                 * equal contents (a header's [name, value] pair) */
} jsg_type;

typedef struct jsg_val jsg_val;
typedef struct jsg_prop jsg_prop;

struct jsg_val {
    jsg_type type;
    union {
        bool b;
        double num;
        int64_t big;
        jsg_ref ref;
        struct {
            const char *ptr;
            size_t len;
        } str; /* JSG_STRING and JSG_BYTES */
        struct {
            jsg_val *items;
            size_t len;
        } arr;
        struct {
            jsg_prop *props;
            size_t len;
        } obj;
    } u;
};

struct jsg_prop {
    const char *key;
    size_t key_len;
    jsg_val val;
};

/* Constructors for building values in C. */
static inline jsg_val jsg_undefined(void)
{
    return (jsg_val){.type = JSG_UNDEFINED};
}
static inline jsg_val jsg_null(void)
{
    return (jsg_val){.type = JSG_NULL};
}
static inline jsg_val jsg_bool(bool b)
{
    return (jsg_val){.type = JSG_BOOL, .u.b = b};
}
static inline jsg_val jsg_number(double d)
{
    return (jsg_val){.type = JSG_NUMBER, .u.num = d};
}
static inline jsg_val jsg_bigint(int64_t v)
{
    return (jsg_val){.type = JSG_BIGINT, .u.big = v};
}
static inline jsg_val jsg_string(const char *s, size_t len)
{
    return (jsg_val){.type = JSG_STRING, .u.str = {s, len}};
}
static inline jsg_val jsg_name(const char *s, size_t len)
{
    return (jsg_val){.type = JSG_NAME, .u.str = {s, len}};
}
static inline jsg_val jsg_shared(jsg_val *items, size_t len)
{
    return (jsg_val){.type = JSG_SHARED, .u.arr = {items, len}};
}
static inline jsg_val jsg_ref_val(jsg_ref ref)
{
    return (jsg_val){.type = JSG_REF, .u.ref = ref};
}
static inline jsg_val jsg_bytes(const void *p, size_t len)
{
    return (jsg_val){.type = JSG_BYTES, .u.str = {(const char *)p, len}};
}
static inline jsg_val jsg_array(jsg_val *items, size_t len)
{
    return (jsg_val){.type = JSG_ARRAY, .u.arr = {items, len}};
}
static inline jsg_val jsg_object(jsg_prop *props, size_t len)
{
    return (jsg_val){.type = JSG_OBJECT, .u.obj = {props, len}};
}

/* Builds the JS value for v (borrowed) in the isolate. */
int jsg_from_val(jsg_isolate *iso, const jsg_val *v, jsg_ref *out, tr_error *err);

/* Copies the JS value ref into *out, allocating strings and containers from arena (freed with
 * it). Uint8Array becomes JSG_BYTES; any other object becomes JSG_OBJECT with its own enumerable
 * string-keyed properties (so a Map or a Date becomes {}). Functions and symbols are skipped in
 * objects and become null in arrays (as JSON.stringify does); at the top level they are
 * TR_EINVAL, as is nesting deeper than 64 levels (or a cycle). */
int jsg_to_val(jsg_isolate *iso, jsg_ref ref, tr_arena *arena, jsg_val *out, tr_error *err);

/* Calls fn with this_ (0: undefined) and argc arguments built from host values (as
 * jsg_from_val() does), runs pending jobs (as jsg_run_jobs() does, with a deadline of their
 * own), and reads the result. A result that is not a promise, or a promise already fulfilled, is
 * copied into *out as jsg_to_val() does; a rejected one fails with its reason (TR_EJS, as
 * jsg_error_from() describes it); a pending one is handed over in *pending (owned; else 0) and
 * *out stays undefined. One guarded entry and no refs for the arguments or a settled result:
 * the fast way to run a request. argc is at most JSG_MAX_CALL_VALS. */
#define JSG_MAX_CALL_VALS 8
int jsg_call_val(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_val *argv,
                 tr_arena *arena, jsg_val *out, jsg_ref *pending, tr_error *err);

/* The outcome of a promise as a host value: while it is pending *settled is false; fulfilled,
 * its value is copied into *out (as jsg_to_val() does); rejected, its reason is the error
 * (TR_EJS). TR_EINVAL when promise is not a promise. */
int jsg_promise_val(jsg_isolate *iso, jsg_ref promise, tr_arena *arena, jsg_val *out, bool *settled,
                    tr_error *err);

/* What jsg_call_result() and jsg_promise_result() give. */
typedef struct jsg_result {
    jsg_val val;     /* an accepted value (or a fulfilled promise's), copied as jsg_to_val() does */
    jsg_ref pending; /* jsg_call_result(): a pending promise (owned), else 0 */
    jsg_ref other;   /* owned, else 0: a value not accepted, or (rejected) a rejection's reason */
    bool rejected;
} jsg_result;

/* The results jsg_call_result() takes. */
typedef struct jsg_accept {
    jsg_ref cls; /* a constructor: its instances (`v instanceof cls`) are taken */
    /* NULL-terminated: the properties an instance is read as, each with [[Get]] (by name, so
     * without listing its keys), copied as jsg_to_val() does (a function or symbol value is
     * undefined): r->val is a JSG_OBJECT of them, in this order */
    const char *const *props;
} jsg_accept;

/* As jsg_call_val(), for a caller that takes as they are only strings, Uint8Arrays and
 * instances of accept->cls: any other result, or the reason of a rejected promise, is handed
 * over as r->other (r->rejected tells which) for the caller to deal with in JS, and r->val
 * stays undefined. A synchronous throw is still an error (TR_EJS). The request path: the guest
 * returns its handler's promise itself and the host checks what it settles with, so no JS runs
 * on that promise's settling. */
int jsg_call_result(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_val *argv,
                    const jsg_accept *accept, tr_arena *arena, jsg_result *r, tr_error *err);

/* jsg_promise_val() with jsg_call_result()'s `accept`: *settled false while it is pending. */
int jsg_promise_result(jsg_isolate *iso, jsg_ref promise, const jsg_accept *accept, tr_arena *arena,
                       jsg_result *r, bool *settled, tr_error *err);

/* Convenience: the string value of ref (String(ref)) copied into buf (replacing its contents). */
int jsg_to_string(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err);

/* JSON.stringify(value) for plain data, written by the host: *out (owned) gets the same string
 * JSON.stringify would give, or 0 when the value is not plain data (a toJSON method, a class
 * other than Object and Array, a bigint, a cycle, nesting deeper than 48, undefined at the top,
 * an exception while reading): the caller then uses JSON.stringify itself. Getters run as in
 * JSON.stringify (and again there when this gives up part way). */
int jsg_json_fast(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err);

/* JSON.stringify(ref) into buf (replacing its contents); undefined gives "undefined". */
int jsg_to_json(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err);

/* ---- host functions ---- */

/* A host function. argv are borrowed for the duration of the call. On success, return 0 and set
 * *result to an owned ref (or leave it 0 for undefined). On failure return an error code and
 * fill err->msg: JS sees a thrown Error with that message. */
typedef int (*jsg_host_fn)(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                           const jsg_ref *argv, jsg_ref *result, tr_error *err);

/* Registers fn under `name` (unique per isolate, at most 64 bytes) and stores it as property
 * `name` of obj (0: the global object). */
int jsg_define_function(jsg_isolate *iso, jsg_ref obj, const char *name, jsg_host_fn fn, void *user,
                        tr_error *err);

/* ---- promises ---- */

typedef struct jsg_deferred {
    jsg_ref promise;         /* owned; hand it to JS (e.g. as a host function's result) */
    jsg_ref resolve, reject; /* released when the deferred is settled */
} jsg_deferred;

/* A new pending promise that the host settles later. */
int jsg_deferred_new(jsg_isolate *iso, jsg_deferred *out, tr_error *err);
/* Resolves with value (borrowed; 0: undefined), or rejects with an Error carrying message. Both
 * release d->resolve and d->reject (d->promise stays owned by the caller). Jobs run with
 * jsg_run_jobs(). */
int jsg_deferred_resolve(jsg_isolate *iso, jsg_deferred *d, jsg_ref value, tr_error *err);
int jsg_deferred_reject(jsg_isolate *iso, jsg_deferred *d, const char *message, size_t len,
                        tr_error *err);
/* Releases a deferred that will never be settled. */
void jsg_deferred_free(jsg_isolate *iso, jsg_deferred *d);

/* *out (owned): a promise already resolved with value (borrowed; 0: undefined), as
 * Promise.resolve(value) gives (a promise comes back as itself, a thenable is followed): what a
 * host function that finished at once returns. One guarded entry, where a deferred settled at
 * once takes three and hands out its resolving functions. */
int jsg_promise_resolved(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err);

typedef enum jsg_promise_state {
    JSG_PENDING = 0,
    JSG_FULFILLED = 1,
    JSG_REJECTED = 2,
} jsg_promise_state;

/* State of a promise; for a settled one, *result (may be NULL) gets its value or reason. */
int jsg_promise_state_get(jsg_isolate *iso, jsg_ref promise, jsg_promise_state *state,
                          jsg_ref *result, tr_error *err);

/* Called once for each promise that was rejected without a handler and still had none when
 * pending jobs ran out (at the end of jsg_run_jobs() or jsg_eval_module()). `reason` describes
 * the rejection as jsg_error_from() does. Runs on the isolate's thread; it may not call into
 * the isolate. At most JSG_MAX_UNHANDLED rejections are kept between reports; more are dropped. */
typedef void (*jsg_rejection_fn)(jsg_isolate *iso, void *user, const tr_error *reason);
#define JSG_MAX_UNHANDLED 16

/* Sets (or with NULL clears) the isolate's unhandled-rejection handler. */
void jsg_set_rejection_handler(jsg_isolate *iso, jsg_rejection_fn fn, void *user);

/* Fills err with message and stack of the JS value `exc` (an Error or anything thrown) and
 * returns TR_EJS. */
int jsg_error_from(jsg_isolate *iso, jsg_ref exc, tr_error *err);

/* ---- engine identity ---- */

/* "quickjs-wasi 3.6.2" */
const char *jsg_engine_version(void);
/* Hex SHA-256 of the engine module with its custom sections removed. */
const char *jsg_engine_sha256(void);

#endif
