/* wasm/js/jsg_call.c: calls into the isolate and promises: jsg_call with refs; the request path
 * (jsg_call_val, jsg_call_result and the promise readers), which builds its arguments, runs the
 * call and its jobs and reads the result in one guarded entry, recycling argument objects
 * between calls; deferreds, settled promises and promise state. See jsg_internal.h for the
 * binding's parts and the design they share. */
#include "wasm/js/jsg_internal.h"

#include <string.h>

/* ---- call ---- */

typedef struct call_args {
    jsg_ref fn, this_;
    size_t argc;
    const jsg_ref *argv;
    jsg_ref *out;
} call_args;

static int body_call(jsg_isolate *iso, void *arg, tr_error *err)
{
    const call_args *a = arg;
    uint32_t argv = 0;
    bool heap = false;
    if (a->argc > 0) {
        size_t bytes = a->argc * 4;
        if (bytes <= SCRATCH_OUT - 16) {
            argv = jsg__out_slot(iso, 4);
        } else {
            argv = Q(wasm_malloc)(I, (uint32_t)bytes);
            heap = true;
            if (argv == 0) return jsg__oom(err);
        }
        for (size_t i = 0; i < a->argc; i++)
            jsg__store_u32(iso, argv + 4 * (uint32_t)i, jsg__or_undef(iso, a->argv[i]));
    }
    uint32_t h = Q(qjs_call)(I, a->fn, jsg__or_undef(iso, a->this_), (uint32_t)a->argc, argv);
    if (heap) Q(wasm_free)(I, argv);
    int rc = jsg__check(iso, h, err);
    if (rc < 0) return rc;
    if (a->out)
        *a->out = h;
    else
        Q(qjs_free_value)(I, h);
    return 0;
}

int jsg_call(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_ref *argv,
             jsg_ref *out, tr_error *err)
{
    if (out) *out = 0;
    if (fn == 0 || argc > MAX_HOST_ARGS)
        return tr_error_set(err, TR_EINVAL, "jsg_call: no function or too many arguments");
    call_args a = {fn, this_, argc, argv, out};
    return jsg__guarded(iso, body_call, &a, err);
}

/* ---- calls with host values ---- */

/* The arguments and results of jsg_call_val, jsg_call_result, jsg_promise_val and
 * jsg_promise_result. */
typedef struct callv {
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
} callv;

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
        uint32_t a = jsg__atom_get(iso, "prototype", 9, &temp);
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
static int taken(jsg_isolate *iso, jsv v, callv *op)
{
    int32_t tag = jsv_tag(v);
    if (tag == TAG_STRING || tag == TAG_STRING_ROPE) return TAKEN;
    if (tag != TAG_OBJECT) return NOT_TAKEN;
    uint32_t cls_id = Q(JS_GetClassID)(I, v);
    if (cls_id == iso->u8_class_id) return TAKEN;
    jsv cls = jsg__handle_val(iso, op->accept);
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
static int read_instance(jsg_isolate *iso, jsv v, callv *op, tr_error *err)
{
    size_t n = 0;
    while (op->props[n] != NULL)
        n++;
    jsg_prop *props = tr_arena_alloc(op->arena, (n ? n : 1) * sizeof *props);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(op->props[i]);
        bool temp;
        uint32_t a = jsg__atom_get(iso, op->props[i], len, &temp);
        if (a == 0) return jsg__take_exception(iso, err);
        jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, a);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        if (pv == JSV_EXCEPTION) return jsg__take_exception(iso, err);
        props[i].key = op->props[i];
        props[i].key_len = len;
        int rc = jsg__read_val(iso, pv, op->arena, 1, &props[i].val, err);
        jsv_free(iso, pv);
        if (rc == JSG__SKIP)
            props[i].val = jsg_undefined();
        else if (rc < 0)
            return rc;
    }
    *op->out = jsg_object(props, n);
    return 0;
}

/* Hands v (owned) over as op->other. */
static int hand_over(jsg_isolate *iso, jsv v, bool rejected, callv *op, tr_error *err)
{
    op->other = jsg__handle_new(iso, v);
    op->rejected = rejected;
    return op->other == 0 ? jsg__oom(err) : 0;
}

/* A value v (owned) a call gave or a promise fulfilled with: read into op->out, or with
 * op->accept handed over when it is not taken. */
static int fulfilled(jsg_isolate *iso, jsv v, callv *op, tr_error *err)
{
    int how = op->accept ? taken(iso, v, op) : TAKEN;
    if (how == NOT_TAKEN) return hand_over(iso, v, false, op, err);
    int rc = how == INSTANCE ? read_instance(iso, v, op, err)
                             : jsg__read_val(iso, v, op->arena, 0, op->out, err);
    jsv_free(iso, v);
    return rc;
}

/* The outcome of r (borrowed): a pending promise leaves op->settled false; a rejected one is
 * described into err (with op->accept: handed over); any other value (or a fulfilled
 * promise's) goes to fulfilled(). */
static int outcome(jsg_isolate *iso, jsv r, callv *op, tr_error *err)
{
    op->settled = true;
    if (jsv_tag(r) != TAG_OBJECT || !Q(JS_IsPromise)(I, r))
        return fulfilled(iso, Q(JS_DupValue)(I, iso->ctx, r), op, err);
    uint32_t state = Q(JS_PromiseState)(I, iso->ctx, r);
    if (state == JSG_PENDING) {
        op->settled = false;
        return 0;
    }
    jsv res = Q(JS_PromiseResult)(I, iso->ctx, r);
    if (state != JSG_REJECTED) return fulfilled(iso, res, op, err);
    if (op->accept) return hand_over(iso, res, true, op, err);
    uint32_t h = jsg__handle_new(iso, res);
    if (h == 0) return jsg__oom(err);
    int rc = jsg__describe(iso, h, err);
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
    return jsg__atom_get(iso, pr->key, pr->key_len, temp);
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
        int rc = jsg__build(iso, &pr->val, 1, &c, err);
        if (rc < 0) {
            jsv_free(iso, obj);
            return rc;
        }
        bool temp;
        uint32_t a = next_atom(iso, ka, pr, &temp);
        if (a == 0) {
            jsv_free(iso, c);
            jsv_free(iso, obj);
            return jsg__take_exception(iso, err);
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
    return jsg__build(iso, v, 0, out, err);
}

/* The atoms (held) of v's keys, in order, into atoms (*n of them); false when there are more
 * than RECYCLE_ATOMS or one cannot be made. */
static bool hold_atoms(jsg_isolate *iso, const jsg_val *v, uint32_t *atoms, size_t *n)
{
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const jsg_prop *pr = &v->u.obj.props[i];
        if (*n >= RECYCLE_ATOMS) return false;
        bool temp;
        uint32_t a = jsg__atom_get(iso, pr->key, pr->key_len, &temp);
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
    if (sig_len == 0 || jsv_tag(v) != TAG_OBJECT || jsv_refs(iso, v) != 1) {
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

static int body_call_val(jsg_isolate *iso, void *arg, tr_error *err)
{
    callv *op = arg;
    jsv args[JSG_MAX_CALL_VALS];
    char sigs[JSG_MAX_CALL_VALS][RECYCLE_SIG];
    size_t sig_len[JSG_MAX_CALL_VALS];
    size_t built = 0;
    int rc = 0;
    for (; built < op->argc; built++) {
        sig_len[built] = recycle_sig(&op->argv[built], sigs[built]);
        rc =
            build_arg(iso, built, &op->argv[built], sigs[built], sig_len[built], &args[built], err);
        if (rc < 0) break;
    }
    jsg__last_str_clear(iso);
    /* Guarded runs nest at most ARGV_LEVELS deep here in practice (a host function calling back
     * in); deeper, the arguments get a guest allocation of their own. */
    uint32_t argv = 0;
    bool heap = iso->depth > ARGV_LEVELS;
    if (rc == 0 && op->argc > 0) {
        argv =
            heap ? Q(wasm_malloc)(I, (uint32_t)(8 * op->argc))
                 : iso->scratch + SCRATCH_ARGV + (uint32_t)(iso->depth - 1) * JSG_MAX_CALL_VALS * 8;
        if (argv == 0) rc = jsg__oom(err);
    }
    for (size_t i = 0; rc == 0 && i < op->argc; i++)
        jsg__store_u64(iso, argv + 8 * (uint32_t)i, args[i]);
    jsv r = JSV_EXCEPTION;
    if (rc == 0) {
        jsv this_ = op->this_ ? jsg__handle_val(iso, op->this_) : JSV_UNDEFINED;
        r = Q(JS_Call)(I, iso->ctx, jsg__handle_val(iso, op->fn), this_, (uint32_t)op->argc, argv);
    }
    if (heap && argv) Q(wasm_free)(I, argv);
    if (rc < 0 || r == JSV_EXCEPTION) {
        if (rc == 0) rc = jsg__take_exception(iso, err);
        for (size_t i = 0; i < built; i++)
            jsv_free(iso, args[i]);
        return rc;
    }
    /* The jobs get a deadline of their own, as with a separate jsg_run_jobs(). */
    iso->deadline_ns = 0;
    rc = jsg__run_jobs(iso, err);
    /* after the jobs: they may have released what held an argument */
    for (size_t i = 0; i < built; i++)
        drop_arg(iso, i, args[i], &op->argv[i], sigs[i], rc == 0 ? sig_len[i] : 0);
    if (rc == 0) rc = outcome(iso, r, op, err);
    if (rc == 0 && !op->settled) {
        op->pending = jsg__handle_new(iso, r);
        return op->pending == 0 ? jsg__oom(err) : 0;
    }
    jsv_free(iso, r);
    return rc;
}

static int call_val(jsg_isolate *iso, callv *op, tr_error *err)
{
    *op->out = jsg_undefined();
    if (op->fn == 0 || op->argc > JSG_MAX_CALL_VALS)
        return tr_error_set(err, TR_EINVAL, "jsg_call_val: no function or too many arguments");
    int rc = jsg__enter(iso, body_call_val, op, err);
    jsg__report_unhandled(iso);
    return jsg__finish(iso, rc, err);
}

int jsg_call_val(jsg_isolate *iso, jsg_ref fn, jsg_ref this_, size_t argc, const jsg_val *argv,
                 tr_arena *arena, jsg_val *out, jsg_ref *pending, tr_error *err)
{
    callv op = {.fn = fn, .this_ = this_, .argc = argc, .argv = argv, .arena = arena, .out = out};
    int rc = call_val(iso, &op, err);
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

static int accept_done(const callv *op, jsg_result *r, int rc)
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
    callv op = {.fn = fn,
                .this_ = this_,
                .accept = accept->cls,
                .props = accept->props,
                .argc = argc,
                .argv = argv,
                .arena = arena,
                .out = &r->val};
    return accept_done(&op, r, call_val(iso, &op, err));
}

static int body_promise_val(jsg_isolate *iso, void *arg, tr_error *err)
{
    callv *op = arg;
    jsv v = jsg__handle_val(iso, op->promise);
    if (jsv_tag(v) != TAG_OBJECT || !Q(JS_IsPromise)(I, v))
        return tr_error_set(err, TR_EINVAL, "not a promise");
    return outcome(iso, v, op, err);
}

/* What jsg_promise_val() and jsg_promise_result() share: op's promise read into op->out. */
static int promise_val(jsg_isolate *iso, callv *op, bool *settled, tr_error *err)
{
    *op->out = jsg_undefined();
    *settled = false;
    int rc = jsg__guarded(iso, body_promise_val, op, err);
    if (rc == 0) *settled = op->settled;
    return rc;
}

int jsg_promise_val(jsg_isolate *iso, jsg_ref promise, tr_arena *arena, jsg_val *out, bool *settled,
                    tr_error *err)
{
    callv op = {.promise = promise, .arena = arena, .out = out};
    return promise_val(iso, &op, settled, err);
}

int jsg_promise_result(jsg_isolate *iso, jsg_ref promise, const jsg_accept *accept, tr_arena *arena,
                       jsg_result *r, bool *settled, tr_error *err)
{
    *settled = false;
    int rc = accept_check(accept, r, "jsg_promise_result", err);
    if (rc < 0) return rc;
    callv op = {.promise = promise,
                .accept = accept->cls,
                .props = accept->props,
                .arena = arena,
                .out = &r->val};
    return accept_done(&op, r, promise_val(iso, &op, settled, err));
}

/* arg: the thrown value (a ref; 0: undefined) */
static int body_error_from(jsg_isolate *iso, void *arg, tr_error *err)
{
    return jsg__describe(iso, jsg__or_undef(iso, *(const jsg_ref *)arg), err);
}

int jsg_error_from(jsg_isolate *iso, jsg_ref exc, tr_error *err)
{
    return jsg__guarded(iso, body_error_from, &exc, err);
}

/* ---- promises ---- */

/* arg: the jsg_deferred to fill */
static int body_deferred_new(jsg_isolate *iso, void *arg, tr_error *err)
{
    jsg_deferred *d = arg;
    uint32_t h = Q(qjs_new_promise)(I, jsg__out_slot(iso, 0), jsg__out_slot(iso, 1));
    uint32_t res = jsg__load_u32(iso, jsg__out_slot(iso, 0));
    uint32_t rej = jsg__load_u32(iso, jsg__out_slot(iso, 1));
    if (h == 0 || res == 0 || rej == 0) {
        if (h) Q(qjs_free_value)(I, h);
        if (res) Q(qjs_free_value)(I, res);
        if (rej) Q(qjs_free_value)(I, rej);
        return jsg__oom(err);
    }
    if (Q(qjs_is_exception)(I, h)) {
        Q(qjs_free_value)(I, h);
        Q(qjs_free_value)(I, res);
        Q(qjs_free_value)(I, rej);
        return jsg__take_exception(iso, err);
    }
    *d = (jsg_deferred){h, res, rej};
    return 0;
}

int jsg_deferred_new(jsg_isolate *iso, jsg_deferred *out, tr_error *err)
{
    *out = (jsg_deferred){0, 0, 0};
    return jsg__guarded(iso, body_deferred_new, out, err);
}

/* How a deferred is settled: resolved with value, rejected with an Error of msg, or dropped
 * (its resolving functions released, the promise left pending). */
typedef enum settle_how { SETTLE_RESOLVE, SETTLE_REJECT, SETTLE_DROP } settle_how;

typedef struct settle_args {
    jsg_deferred *d;
    settle_how how;
    jsg_ref value;
    const char *msg;
    size_t msg_len;
} settle_args;

/* What a deferred settles with: a->value, or (rejected) a new Error with message a->msg (owned
 * by the caller). 0 when out of memory. */
static uint32_t settle_value(jsg_isolate *iso, const settle_args *a)
{
    if (a->how == SETTLE_RESOLVE) return jsg__or_undef(iso, a->value);
    uint32_t e = Q(qjs_new_error)(I);
    if (e == 0) return 0;
    uint32_t s = jsg__new_string(iso, a->msg, a->msg_len);
    bool heap;
    uint32_t k = jsg__put_bytes(iso, "message", 7, SCRATCH_NAME, &heap);
    if (s && k) Q(qjs_define_prop_string)(I, e, k, s, PROP_CW);
    if (s) Q(qjs_free_value)(I, s);
    return e;
}

static int body_settle(jsg_isolate *iso, void *arg, tr_error *err)
{
    const settle_args *a = arg;
    jsg_deferred *d = a->d;
    int rc = 0;
    if (a->how != SETTLE_DROP) {
        uint32_t v = settle_value(iso, a);
        if (v == 0) return jsg__oom(err);
        jsg__store_u32(iso, jsg__out_slot(iso, 4), v);
        uint32_t fn = a->how == SETTLE_RESOLVE ? d->resolve : d->reject;
        uint32_t r = Q(qjs_call)(I, fn, iso->undef, 1, jsg__out_slot(iso, 4));
        if (a->how == SETTLE_REJECT) Q(qjs_free_value)(I, v);
        rc = jsg__check(iso, r, err);
        if (rc == 0) Q(qjs_free_value)(I, r);
    }
    Q(qjs_free_value)(I, d->resolve);
    Q(qjs_free_value)(I, d->reject);
    d->resolve = d->reject = 0;
    return rc;
}

int jsg_deferred_resolve(jsg_isolate *iso, jsg_deferred *d, jsg_ref value, tr_error *err)
{
    if (d->resolve == 0) return tr_error_set(err, TR_EINVAL, "promise already settled");
    settle_args a = {.d = d, .how = SETTLE_RESOLVE, .value = value};
    return jsg__guarded(iso, body_settle, &a, err);
}

int jsg_deferred_reject(jsg_isolate *iso, jsg_deferred *d, const char *message, size_t len,
                        tr_error *err)
{
    if (d->resolve == 0) return tr_error_set(err, TR_EINVAL, "promise already settled");
    settle_args a = {.d = d, .how = SETTLE_REJECT, .msg = message, .msg_len = len};
    return jsg__guarded(iso, body_settle, &a, err);
}

void jsg_deferred_free(jsg_isolate *iso, jsg_deferred *d)
{
    if (d->resolve != 0 && !iso->dead) {
        settle_args a = {.d = d, .how = SETTLE_DROP};
        jsg__enter(iso, body_settle, &a, NULL);
    }
    d->resolve = d->reject = 0;
}

typedef struct resolved_args {
    jsg_ref value;
    jsg_ref *out;
} resolved_args;

static int body_resolved(jsg_isolate *iso, void *arg, tr_error *err)
{
    const resolved_args *a = arg;
    /* JS_NewSettledPromise is Promise.resolve(value) (value borrowed): a thenable is followed
     * through a job, as a deferred's resolve would. */
    jsv v = a->value ? jsg__handle_val(iso, a->value) : JSV_UNDEFINED;
    jsv r = Q(JS_NewSettledPromise)(I, iso->ctx, 0, v);
    if (jsv_tag(r) == TAG_EXCEPTION) return jsg__take_exception(iso, err);
    uint32_t h = jsg__handle_new(iso, r);
    if (h == 0) return jsg__oom(err);
    *a->out = h;
    return 0;
}

int jsg_promise_resolved(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err)
{
    *out = 0;
    resolved_args a = {value, out};
    return jsg__guarded(iso, body_resolved, &a, err);
}

typedef struct state_args {
    jsg_ref promise;
    jsg_promise_state state;
    jsg_ref *result; /* may be NULL */
} state_args;

static int body_state(jsg_isolate *iso, void *arg, tr_error *err)
{
    state_args *a = arg;
    if (!Q(qjs_is_promise)(I, a->promise)) return tr_error_set(err, TR_EINVAL, "not a promise");
    a->state = (jsg_promise_state)Q(qjs_promise_state)(I, a->promise);
    if (a->state != JSG_PENDING && a->result != NULL) {
        uint32_t r = Q(qjs_promise_result)(I, a->promise);
        if (r == 0) return jsg__oom(err);
        *a->result = r;
    }
    return 0;
}

int jsg_promise_state_get(jsg_isolate *iso, jsg_ref promise, jsg_promise_state *state,
                          jsg_ref *result, tr_error *err)
{
    if (result) *result = 0;
    state_args a = {.promise = promise, .result = result};
    int rc = jsg__guarded(iso, body_state, &a, err);
    if (rc == 0) *state = a.state;
    return rc;
}
