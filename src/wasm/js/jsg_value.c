/* wasm/js/jsg_value.c: values across the boundary: refs (dup, free, kind), properties, host
 * values built as JS values (jsg_from_val) and JS values copied out as host values (jsg_to_val),
 * with the atom, string and shared-array caches that keep the request path free of allocation.
 * See jsg_internal.h for the binding's parts and the design they share. */
#include "wasm/js/jsg_internal.h"

#include <string.h>

/* A new string of the UTF-8 (p, n); JSV_EXCEPTION when out of memory. */
jsv jsg__new_str(jsg_isolate *iso, const char *p, size_t n)
{
    bool heap;
    uint32_t g = jsg__put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (g == 0) return JSV_EXCEPTION;
    jsv v = Q(JS_NewStringLen)(I, iso->ctx, g, (uint32_t)n);
    jsg__drop_bytes(iso, g, heap);
    return v;
}

/* ---- refs ---- */

/* arg: a ref, replaced by a second ref to its value (0 when out of memory) */
static int body_dup(jsg_isolate *iso, void *arg, tr_error *err)
{
    (void)err;
    jsg_ref *ref = arg;
    *ref = Q(qjs_dup_value)(I, *ref);
    return 0;
}

int jsg_ref_dup(jsg_isolate *iso, jsg_ref ref, jsg_ref *out)
{
    *out = 0;
    int rc = jsg__enter(iso, body_dup, &ref, NULL);
    if (rc < 0) return rc;
    if (ref == 0) return TR_ENOMEM;
    *out = ref;
    return 0;
}

/* arg: the ref to release */
static int body_free(jsg_isolate *iso, void *arg, tr_error *err)
{
    (void)err;
    Q(qjs_free_value)(I, *(const jsg_ref *)arg);
    return 0;
}

void jsg_ref_free(jsg_isolate *iso, jsg_ref ref)
{
    if (ref == 0 || iso->dead) return;
    jsg__enter(iso, body_free, &ref, NULL);
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

typedef struct kind_args {
    jsg_ref ref; /* a handle, never 0 */
    jsg_kind kind;
} kind_args;

static int body_kind(jsg_isolate *iso, void *arg, tr_error *err)
{
    (void)err;
    kind_args *a = arg;
    a->kind = JSG_K_OBJECT;
    for (size_t i = 0; i < TR_ARRAY_LEN(kind_tests); i++) {
        if (kind_tests[i].is(I, a->ref)) {
            a->kind = kind_tests[i].kind;
            break;
        }
    }
    return 0;
}

jsg_kind jsg_ref_kind(jsg_isolate *iso, jsg_ref ref)
{
    kind_args a = {jsg__or_undef(iso, ref), JSG_K_UNDEFINED};
    if (jsg__enter(iso, body_kind, &a, NULL) < 0) return JSG_K_UNDEFINED;
    return a.kind;
}

/* ---- properties ---- */

typedef struct prop_args {
    jsg_ref obj;
    const char *key;
    size_t key_len;
    jsg_ref value; /* set: the value; get: the result */
    bool set;
} prop_args;

uint32_t jsg__new_string(jsg_isolate *iso, const char *p, size_t n)
{
    bool heap;
    uint32_t s = jsg__put_bytes(iso, p, n, SCRATCH_DATA, &heap);
    if (s == 0) return 0;
    uint32_t h = Q(qjs_new_string)(I, s, (uint32_t)n);
    jsg__drop_bytes(iso, s, heap);
    return h;
}

static int body_prop(jsg_isolate *iso, void *arg, tr_error *err)
{
    prop_args *a = arg;
    uint32_t obj = a->obj ? a->obj : iso->global;
    uint32_t key = jsg__new_string(iso, a->key, a->key_len);
    if (key == 0) return jsg__oom(err);
    if (a->set) {
        int32_t r = (int32_t)Q(qjs_set_prop_value)(I, obj, key, jsg__or_undef(iso, a->value));
        Q(qjs_free_value)(I, key);
        return r < 0 ? jsg__take_exception(iso, err) : 0;
    }
    uint32_t h = Q(qjs_get_prop_value)(I, obj, key);
    Q(qjs_free_value)(I, key);
    int rc = jsg__check(iso, h, err);
    if (rc == 0) a->value = h;
    return rc;
}

int jsg_get(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref *out,
            tr_error *err)
{
    *out = 0;
    prop_args a = {obj, key, key_len, 0, false};
    int rc = jsg__guarded(iso, body_prop, &a, err);
    if (rc == 0) *out = a.value;
    return rc;
}

int jsg_set(jsg_isolate *iso, jsg_ref obj, const char *key, size_t key_len, jsg_ref value,
            tr_error *err)
{
    prop_args a = {obj, key, key_len, value, true};
    return jsg__guarded(iso, body_prop, &a, err);
}

/* ---- conversions ----
 *
 * DESIGN: conversions work on the engine's JSValues directly through its JS_* exports. On wasm32
 * a JSValue is a NaN-boxed u64 passed by value, so a value is built or read without a heap
 * handle each (the qjs_* exports allocate one per value): only what the host keeps becomes a
 * jsg_ref. Arrays are built in one step (JS_NewArrayFrom), property names go through a small
 * per-isolate atom cache, and keys read back through a cache of atom names. jsg_layout.h holds
 * the value layout this relies on; jsg__layout_check() checks it. */

/* A slot index for the caches below (which compare keys on a hit): eight bytes a step, as
 * headers go through it on every request. */
uint32_t jsg__key_hash(const char *p, size_t n)
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
uint32_t jsg__atom_get(jsg_isolate *iso, const char *p, size_t n, bool *temp)
{
    *temp = n > ATOM_KEY_MAX;
    atom_slot *s = NULL;
    if (!*temp) {
        s = &iso->atoms[jsg__key_hash(p, n) % ATOM_CACHE];
        if (s->atom != 0 && s->len == n && memcmp(s->key, p, n) == 0) return s->atom;
    }
    bool heap;
    uint32_t k = jsg__put_bytes(iso, p, n, SCRATCH_NAME, &heap);
    if (k == 0) return 0;
    uint32_t a = Q(JS_NewAtomLen)(I, iso->ctx, k, (uint32_t)n);
    jsg__drop_bytes(iso, k, heap);
    if (a == 0 || s == NULL) return a;
    if (s->atom != 0) Q(JS_FreeAtom)(I, iso->ctx, s->atom);
    s->atom = a;
    s->len = (uint8_t)n;
    memcpy(s->key, p, n);
    return a;
}

/* The name of atom a, copied into the arena. */
int jsg__atom_name(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out, tr_error *err)
{
    atom_slot *s = &iso->names[(a * 2654435761u) >> 26];
    if (s->atom != a) {
        uint32_t c = Q(JS_AtomToCStringLen)(I, iso->ctx, jsg__out_slot(iso, 0), a);
        if (c == 0) return jsg__take_exception(iso, err);
        uint32_t len = jsg__load_u32(iso, jsg__out_slot(iso, 0));
        const char *p = wrt_mem_ptr(iso->mem, c, len);
        char *copy = p ? tr_arena_strndup(arena, p, len) : NULL;
        if (copy != NULL && len <= ATOM_KEY_MAX) {
            if (s->atom != 0) Q(JS_FreeAtom)(I, iso->ctx, s->atom);
            s->atom = Q(JS_DupAtom)(I, iso->ctx, a);
            s->len = (uint8_t)len;
            memcpy(s->key, p, len);
        }
        Q(JS_FreeCString)(I, iso->ctx, c);
        if (copy == NULL) return jsg__oom(err);
        out->key = copy;
        out->key_len = len;
        return 0;
    }
    out->key = tr_arena_strndup(arena, s->key, s->len);
    out->key_len = s->len;
    return 0;
}

/* jsg__atom_name() for a name used at once (before the next call into the isolate): a cached one is
 * not copied. */
int jsg__atom_name_now(jsg_isolate *iso, uint32_t a, tr_arena *arena, jsg_prop *out, tr_error *err)
{
    const atom_slot *s = &iso->names[(a * 2654435761u) >> 26];
    if (s->atom != a) return jsg__atom_name(iso, a, arena, out, err);
    out->key = s->key;
    out->key_len = s->len;
    return 0;
}

/* values (owned, n of them) into guest memory for an export that takes a JSValue array. */
static uint32_t put_values(jsg_isolate *iso, const jsv *values, size_t n, bool *heap)
{
    return jsg__put_bytes(iso, values, n * sizeof *values, SCRATCH_DATA, heap);
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
        rc = jsg__build(iso, &v->u.arr.items[built], depth + 1, &items[built], err);
        if (rc < 0) break;
    }
    uint32_t g = 0;
    bool heap = false;
    if (rc == 0) {
        g = put_values(iso, items, n, &heap);
        if (g == 0) rc = jsg__oom(err);
    }
    if (rc < 0) {
        for (size_t i = 0; i < built; i++)
            jsv_free(iso, items[i]);
    } else {
        /* JS_NewArrayFrom owns the values from here on, also when it fails. */
        jsv a = Q(JS_NewArrayFrom)(I, iso->ctx, (uint32_t)n, g);
        jsg__drop_bytes(iso, g, heap);
        if (a == JSV_EXCEPTION)
            rc = jsg__take_exception(iso, err);
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
    int rc = jsg__build(iso, &pr->val, depth, val, err);
    if (rc < 0) {
        jsv_free(iso, obj);
        return rc;
    }
    *atom = jsg__atom_get(iso, pr->key, pr->key_len, temp);
    if (*atom == 0) {
        jsv_free(iso, *val);
        jsv_free(iso, obj);
        return jsg__take_exception(iso, err);
    }
    return 0;
}

static int build_object(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
{
    jsv obj = Q(JS_NewObject)(I, iso->ctx);
    if (obj == JSV_EXCEPTION) return jsg__take_exception(iso, err);
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
            return jsg__take_exception(iso, err);
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
        slot = &iso->shared[jsg__key_hash(key, klen) % SHARED_CACHE];
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
        return jsg__take_exception(iso, err);
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
void jsg__last_str_clear(jsg_isolate *iso)
{
    if (iso->last_str.v != 0) jsv_free(iso, iso->last_str.v);
    iso->last_str.v = 0;
    iso->last_str.ptr = NULL;
}

int jsg__build(jsg_isolate *iso, const jsg_val *v, int depth, jsv *out, tr_error *err)
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
        uint32_t s = jsg__put_bytes(iso, v->u.str.ptr, v->u.str.len, SCRATCH_DATA, &heap);
        if (s == 0) return jsg__oom(err);
        r = v->type == JSG_STRING ? Q(JS_NewStringLen)(I, iso->ctx, s, (uint32_t)v->u.str.len)
                                  : Q(JS_NewUint8ArrayCopy)(I, iso->ctx, s, (uint32_t)v->u.str.len);
        jsg__drop_bytes(iso, s, heap);
        if (v->type == JSG_STRING && r != JSV_EXCEPTION) {
            jsg__last_str_clear(iso);
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
        uint32_t a = jsg__atom_get(iso, v->u.str.ptr, v->u.str.len, &temp);
        if (a == 0) return jsg__take_exception(iso, err);
        /* an atom is a string: this only takes a reference to it */
        r = Q(JS_AtomToString)(I, iso->ctx, a);
        if (temp) Q(JS_FreeAtom)(I, iso->ctx, a);
        break;
    }
    case JSG_REF:
        if (v->u.ref == 0) return 0;
        *out = Q(JS_DupValue)(I, iso->ctx, jsg__handle_val(iso, v->u.ref));
        return 0;
    case JSG_ARRAY:
        return build_array(iso, v, depth, out, err);
    case JSG_OBJECT:
        return build_object(iso, v, depth, out, err);
    default:
        return tr_error_set(err, TR_EINVAL, "unknown value type %d", (int)v->type);
    }
    if (r == JSV_EXCEPTION) return jsg__take_exception(iso, err);
    *out = r;
    return 0;
}

typedef struct from_val_args {
    const jsg_val *in;
    jsg_ref ref; /* the result */
} from_val_args;

static int body_from_val(jsg_isolate *iso, void *arg, tr_error *err)
{
    from_val_args *a = arg;
    jsv v;
    int rc = jsg__build(iso, a->in, 0, &v, err);
    jsg__last_str_clear(iso);
    if (rc < 0) return rc;
    a->ref = jsg__handle_new(iso, v);
    return a->ref == 0 ? jsg__oom(err) : 0;
}

int jsg_from_val(jsg_isolate *iso, const jsg_val *v, jsg_ref *out, tr_error *err)
{
    *out = 0;
    from_val_args a = {v, 0};
    int rc = jsg__guarded(iso, body_from_val, &a, err);
    if (rc == 0) *out = a.ref;
    return rc;
}

static int read_str(jsg_isolate *iso, jsv v, tr_arena *a, jsg_val *out, tr_error *err)
{
    uint32_t n;
    const unsigned char *in_place = jsg__ascii_in_place(iso, v, &n);
    if (in_place != NULL) {
        *out = jsg_string(tr_arena_strndup(a, (const char *)in_place, n), n);
        return 0;
    }
    uint32_t c = Q(JS_ToCStringLen2)(I, iso->ctx, jsg__out_slot(iso, 0), v, 0);
    if (c == 0) return jsg__take_exception(iso, err);
    uint32_t len = jsg__load_u32(iso, jsg__out_slot(iso, 0));
    const char *p = wrt_mem_ptr(iso->mem, c, len);
    char *copy = p ? tr_arena_strndup(a, p, len) : NULL;
    Q(JS_FreeCString)(I, iso->ctx, c);
    if (copy == NULL) return jsg__oom(err);
    *out = jsg_string(copy, len);
    return 0;
}

static int read_bytes(jsg_isolate *iso, jsv v, tr_arena *a, jsg_val *out)
{
    uint32_t data = Q(JS_GetUint8Array)(I, iso->ctx, jsg__out_slot(iso, 0), v);
    uint32_t len = data ? jsg__load_u32(iso, jsg__out_slot(iso, 0)) : 0;
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
    if ((int32_t)Q(JS_GetLength)(I, iso->ctx, v, jsg__out_slot(iso, 0)) < 0)
        return jsg__take_exception(iso, err);
    int64_t len = (int64_t)jsg__load_u64(iso, jsg__out_slot(iso, 0));
    if (len < 0 || len > MAX_ARRAY_LEN)
        return tr_error_set(err, TR_ELIMIT, "array too long to convert");
    size_t n = (size_t)len;
    jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        jsv e = Q(JS_GetPropertyUint32)(I, iso->ctx, v, (uint32_t)i);
        if (e == JSV_EXCEPTION) return jsg__take_exception(iso, err);
        int rc = jsg__read_val(iso, e, a, depth + 1, &items[i], err);
        jsv_free(iso, e);
        if (rc == JSG__SKIP)
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
    uint32_t tabp = jsg__out_slot(iso, 1), lenp = jsg__out_slot(iso, 2);
    if ((int32_t)Q(JS_GetOwnPropertyNames)(I, iso->ctx, tabp, lenp, v, GPN_STRING_ENUM) < 0)
        return jsg__take_exception(iso, err);
    uint32_t tab = jsg__load_u32(iso, tabp), n = jsg__load_u32(iso, lenp);
    jsg_prop *props = tr_arena_alloc(a, (n ? n : 1) * sizeof *props);
    size_t m = 0;
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t atom = jsg__load_u32(iso, tab + 8 * i + 4); /* JSPropertyEnum {bool; JSAtom} */
        jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, atom);
        if (pv == JSV_EXCEPTION) {
            rc = jsg__take_exception(iso, err);
            break;
        }
        rc = jsg__read_val(iso, pv, a, depth + 1, &props[m].val, err);
        jsv_free(iso, pv);
        if (rc == JSG__SKIP) {
            rc = 0;
            continue;
        }
        if (rc < 0) break;
        rc = jsg__atom_name(iso, atom, a, &props[m], err);
        if (rc < 0) break;
        m++;
    }
    Q(JS_FreePropertyEnum)(I, iso->ctx, tab, n);
    if (rc < 0) return rc;
    *out = jsg_object(props, m);
    return 0;
}

int jsg__read_val(jsg_isolate *iso, jsv v, tr_arena *a, int depth, jsg_val *out, tr_error *err)
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
        if ((int32_t)Q(JS_ToBigInt64)(I, iso->ctx, jsg__out_slot(iso, 0), v) < 0)
            return jsg__take_exception(iso, err);
        *out = jsg_bigint((int64_t)jsg__load_u64(iso, jsg__out_slot(iso, 0)));
        return 0;
    case TAG_STRING:
    case TAG_STRING_ROPE:
        return read_str(iso, v, a, out, err);
    case TAG_SYMBOL:
        if (depth == 0)
            return tr_error_set(err, TR_EINVAL, "a symbol cannot be converted to a host value");
        return JSG__SKIP;
    case TAG_OBJECT: {
        uint32_t cls = Q(JS_GetClassID)(I, v);
        if (cls == iso->u8_class_id) return read_bytes(iso, v, a, out);
        if (cls == iso->array_class_id) return read_array(iso, v, a, depth, out, err);
        if (Q(JS_IsFunction)(I, iso->ctx, v)) {
            if (depth == 0)
                return tr_error_set(err, TR_EINVAL,
                                    "a function cannot be converted to a host value");
            return JSG__SKIP;
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

typedef struct to_val_args {
    jsg_ref ref;
    tr_arena *arena;
    jsg_val *out;
} to_val_args;

static int body_to_val(jsg_isolate *iso, void *arg, tr_error *err)
{
    const to_val_args *a = arg;
    jsv v = a->ref ? jsg__handle_val(iso, a->ref) : JSV_UNDEFINED;
    return jsg__read_val(iso, v, a->arena, 0, a->out, err);
}

int jsg_to_val(jsg_isolate *iso, jsg_ref ref, tr_arena *arena, jsg_val *out, tr_error *err)
{
    *out = jsg_undefined();
    to_val_args a = {ref, arena, out};
    return jsg__guarded(iso, body_to_val, &a, err);
}

typedef struct text_args {
    jsg_ref ref;
    tr_buf *buf; /* the result */
} text_args;

static int body_to_string(jsg_isolate *iso, void *arg, tr_error *err)
{
    const text_args *a = arg;
    return jsg__read_string(iso, jsg__or_undef(iso, a->ref), a->buf) < 0
               ? jsg__take_exception(iso, err)
               : 0;
}

int jsg_to_string(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err)
{
    text_args a = {ref, buf};
    return jsg__guarded(iso, body_to_string, &a, err);
}
