/* wasm/js/jsg_layout.c: the checks of the engine's private memory layout (jsg_layout.h), and
 * the probes that find what may differ between builds of the same engine (where a string keeps
 * its characters, whether JS_GetPrototype gives a reference).
 *
 * DESIGN: jsg__layout_verify() makes a value of every kind the binding reads (mostly from one
 * small array literal) and compares what the engine wrote with jsg_layout.h. It costs a parse,
 * so isolates after the first skip it; the cheap checks of the value layout the conversions rely
 * on (class ids, reference counts, doubles) run at every isolate's creation, as before any
 * change of engine could reach a request. */
#include "wasm/js/jsg_internal.h"

#include <stdatomic.h>
#include <string.h>

const jsg__layout jsg__layout_expected = {
    .tag_int = TAG_INT,
    .tag_bool = TAG_BOOL,
    .tag_null = TAG_NULL,
    .tag_undefined = TAG_UNDEFINED,
    .tag_exception = TAG_EXCEPTION,
    .tag_object = TAG_OBJECT,
    .tag_string = TAG_STRING,
    .tag_string_rope = TAG_STRING_ROPE,
    .tag_symbol = TAG_SYMBOL,
    .tag_big_int = TAG_BIG_INT,
    .tag_short_big_int = TAG_SHORT_BIG_INT,
    .refcount_off = JSV_REFCOUNT_OFF,
    .str_wide_bit = JSSTR_WIDE_BIT,
    .propenum_size = PROPENUM_SIZE,
    .propenum_atom_off = PROPENUM_ATOM_OFF,
    .gpn_string_enum = GPN_STRING_ENUM,
    .prop_cw = PROP_CW,
    .prop_cwe = PROP_CWE,
    .dump_step_flag = JS_DUMP_BYTECODE_STEP,
    .dump_step_byte = JSRT_DUMP_STEP_BYTE,
    .dump_step_mask = JSRT_DUMP_STEP_MASK,
};

/* Set once a full jsg__layout_verify() of jsg__layout_expected passed in this process. */
static atomic_bool g_verified;

static int mismatch(tr_error *err, const char *what)
{
    return tr_error_set(err, TR_EINVAL,
                        "the engine's layout differs from the one this build expects: %s", what);
}

/* One value of each kind, in the order of tag_checks below. s + s is a rope: 2 KiB of a string
 * held twice (a short result, or a left side held once, would be copied or appended to). */
static const char kinds_src[] = "[true, null, undefined, 7, 'ab', (s => s + s)('x'.repeat(1024)),"
                                " Symbol('s'), 1n, 2n ** 100n, {}]";

static int verify_tags(jsg_isolate *iso, const jsg__layout *w, tr_error *err)
{
    const struct {
        int32_t tag;
        const char *what;
    } tag_checks[] = {
        {w->tag_bool, "the tag of a boolean"},
        {w->tag_null, "the tag of null"},
        {w->tag_undefined, "the tag of undefined"},
        {w->tag_int, "the tag of a small integer"},
        {w->tag_string, "the tag of a string"},
        {w->tag_string_rope, "the tag of a rope string"},
        {w->tag_symbol, "the tag of a symbol"},
        {w->tag_short_big_int, "the tag of a short bigint"},
        {w->tag_big_int, "the tag of a bigint"},
        {w->tag_object, "the tag of an object"},
    };
    bool cheap, fheap;
    uint32_t code = jsg__put_bytes(iso, kinds_src, sizeof kinds_src - 1, SCRATCH_DATA, &cheap);
    uint32_t fname = jsg__put_bytes(iso, "<layout>", 8, SCRATCH_NAME, &fheap);
    uint32_t h =
        code && fname ? Q(qjs_eval)(I, code, sizeof kinds_src - 1, fname, EVAL_TYPE_GLOBAL) : 0;
    jsg__drop_bytes(iso, code, cheap);
    jsg__drop_bytes(iso, fname, fheap);
    int rc = jsg__check(iso, h, err);
    if (rc < 0) return rc;
    jsv arr = jsg__handle_val(iso, h);
    for (size_t i = 0; rc == 0 && i < TR_ARRAY_LEN(tag_checks); i++) {
        jsv v = Q(JS_GetPropertyUint32)(I, iso->ctx, arr, (uint32_t)i);
        if (jsv_tag(v) != tag_checks[i].tag)
            rc = mismatch(err, tag_checks[i].what);
        else if (i == 0 && (uint32_t)v != 1)
            rc = mismatch(err, "the payload of true");
        else if (i == 3 && (uint32_t)v != 7)
            rc = mismatch(err, "the payload of an integer");
        jsv_free(iso, v);
    }
    Q(qjs_free_value)(I, h);
    if (rc < 0) return rc;
    jsv e = Q(JS_ThrowOutOfMemory)(I, iso->ctx);
    jsv_free(iso, Q(JS_GetException)(I, iso->ctx));
    return jsv_tag(e) == w->tag_exception ? 0 : mismatch(err, "the tag of the exception marker");
}

static int verify_refcount(jsg_isolate *iso, const jsg__layout *w, tr_error *err)
{
    jsv o = Q(JS_NewObject)(I, iso->ctx);
    if (o == JSV_EXCEPTION) return jsg__take_exception(iso, err);
    uint32_t at = (uint32_t)o - w->refcount_off;
    bool ok = jsg__load_u32(iso, at) == 1;
    jsv o2 = Q(JS_DupValue)(I, iso->ctx, o);
    ok = ok && jsg__load_u32(iso, at) == 2;
    jsv_free(iso, o2);
    ok = ok && jsg__load_u32(iso, at) == 1;
    jsv_free(iso, o);
    return ok ? 0 : mismatch(err, "where an object's reference count is");
}

static int verify_strings(jsg_isolate *iso, const jsg__layout *w, tr_error *err)
{
    static const char wide[] = "\xe2\x82\xac"
                               "1"; /* U+20AC: a 16-bit string of 2 */
    jsv a = jsg__new_str(iso, "abc", 3), b = jsg__new_str(iso, wide, sizeof wide - 1);
    bool ok = jsg__load_u32(iso, (uint32_t)a) == 3 &&
              jsg__load_u32(iso, (uint32_t)b) == (2u | w->str_wide_bit);
    jsv_free(iso, a);
    jsv_free(iso, b);
    if (a == JSV_EXCEPTION || b == JSV_EXCEPTION) return jsg__oom(err);
    return ok ? 0 : mismatch(err, "a string's length word");
}

/* An object with keys a (enumerable), b (not), c (enumerable) lists a and c. */
static int verify_property_enum(jsg_isolate *iso, const jsg__layout *w, tr_error *err)
{
    jsv o = Q(JS_NewObject)(I, iso->ctx);
    if (o == JSV_EXCEPTION) return jsg__take_exception(iso, err);
    static const char names[] = "abc";
    uint32_t atoms[3] = {0};
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        bool temp;
        atoms[i] = jsg__atom_get(iso, names + i, 1, &temp);
        if (atoms[i] == 0 || temp) {
            jsv_free(iso, o);
            return jsg__take_exception(iso, err);
        }
        uint32_t flags = i == 1 ? w->prop_cw : w->prop_cwe;
        ok = ok && (int32_t)Q(JS_DefinePropertyValue)(I, iso->ctx, o, atoms[i], JSV(TAG_INT, i),
                                                      flags) >= 0;
    }
    uint32_t tabp = jsg__out_slot(iso, 1), lenp = jsg__out_slot(iso, 2);
    if (ok &&
        (int32_t)Q(JS_GetOwnPropertyNames)(I, iso->ctx, tabp, lenp, o, w->gpn_string_enum) >= 0) {
        uint32_t tab = jsg__load_u32(iso, tabp), n = jsg__load_u32(iso, lenp);
        ok = n == 2 && jsg__load_u32(iso, tab + w->propenum_atom_off) == atoms[0] &&
             jsg__load_u32(iso, tab + w->propenum_size + w->propenum_atom_off) == atoms[2];
        Q(JS_FreePropertyEnum)(I, iso->ctx, tab, n);
    } else {
        ok = false;
        jsv_free(iso, Q(JS_GetException)(I, iso->ctx));
    }
    jsv_free(iso, o);
    return ok ? 0 : mismatch(err, "property flags or the list of an object's keys");
}

/* The byte tools/engine-fixup.sh reads the step-dump flag from. No JS runs while it is set. */
static int verify_dump_flag(jsg_isolate *iso, const jsg__layout *w, tr_error *err)
{
    uint32_t rt = Q(JS_GetRuntime)(I, iso->ctx);
    uint64_t old = Q(JS_GetDumpFlags)(I, rt);
    const uint8_t *b = wrt_mem_ptr(iso->mem, (uint64_t)rt + w->dump_step_byte, 1);
    if (b == NULL || (old & w->dump_step_flag) != 0)
        return mismatch(err, "the runtime's step-dump flag");
    Q(JS_SetDumpFlags)(I, rt, old | w->dump_step_flag);
    bool set = (*b & w->dump_step_mask) != 0;
    Q(JS_SetDumpFlags)(I, rt, old);
    bool clear = (*b & w->dump_step_mask) == 0;
    return set && clear ? 0 : mismatch(err, "the runtime's step-dump flag");
}

int jsg__layout_verify(jsg_isolate *iso, const jsg__layout *want, tr_error *err)
{
    int rc = verify_tags(iso, want, err);
    if (rc == 0) rc = verify_refcount(iso, want, err);
    if (rc == 0) rc = verify_strings(iso, want, err);
    if (rc == 0) rc = verify_property_enum(iso, want, err);
    if (rc == 0) rc = verify_dump_flag(iso, want, err);
    return rc;
}

/* Whether JS_GetPrototype gives its caller a reference of its own (iso->proto_ref). */
static void probe_prototype(jsg_isolate *iso)
{
    iso->proto_ref = -1;
    jsv p = Q(JS_NewObject)(I, iso->ctx);
    jsv o = p == JSV_EXCEPTION ? JSV_EXCEPTION : Q(JS_NewObjectProto)(I, iso->ctx, p);
    if (o != JSV_EXCEPTION) {
        uint32_t before = jsv_refs(iso, p);
        jsv got = Q(JS_GetPrototype)(I, iso->ctx, o);
        uint32_t after = jsv_refs(iso, p);
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

/* Finds where the engine's JSString keeps 8-bit characters (iso->str8_off): the value points
 * (like an object's, past its reference count) at a word of length (31 bits) and the
 * wide-character flag (the top bit); the characters follow at an offset that depends on the
 * engine's build. Strings are read in place only when the probe finds exactly that; else
 * str8_off stays 0 and they are copied out by the engine. */
static int probe_strings(jsg_isolate *iso, tr_error *err)
{
    static const char narrow[] = "trail: where are the characters?";
    static const char wide[] = "\xe2\x82\xac"
                               "1"; /* U+20AC: a 16-bit string of 2 */
    size_t n = sizeof narrow - 1;
    jsv a = jsg__new_str(iso, narrow, n), b = jsg__new_str(iso, wide, sizeof wide - 1);
    if (a == JSV_EXCEPTION || b == JSV_EXCEPTION) {
        jsv_free(iso, a);
        jsv_free(iso, b);
        return jsg__oom(err);
    }
    uint32_t off = 0;
    if (jsv_tag(a) == TAG_STRING && jsv_tag(b) == TAG_STRING &&
        jsg__load_u32(iso, (uint32_t)a) == n &&
        jsg__load_u32(iso, (uint32_t)b) == (2u | JSSTR_WIDE_BIT)) {
        for (uint32_t o = STR8_OFF_MIN; o <= STR8_OFF_MAX && off == 0; o += 4) {
            const void *p = wrt_mem_ptr(iso->mem, (uint32_t)a + o, n);
            if (p != NULL && memcmp(p, narrow, n) == 0) off = o;
        }
    }
    iso->str8_off = off;
    jsv_free(iso, a);
    jsv_free(iso, b);
    return 0;
}

const unsigned char *jsg__ascii_in_place(jsg_isolate *iso, jsv v, uint32_t *len)
{
    if (iso->str8_off == 0 || jsv_tag(v) != TAG_STRING) return NULL;
    uint32_t w = jsg__load_u32(iso, (uint32_t)v);
    if (w & JSSTR_WIDE_BIT) return NULL; /* 16-bit characters */
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

int jsg__layout_check(jsg_isolate *iso, tr_error *err)
{
    if (!atomic_load(&g_verified)) {
        int rc = jsg__layout_verify(iso, &jsg__layout_expected, err);
        if (rc < 0) return rc;
        atomic_store(&g_verified, true);
    }
    /* Class ids the conversions test for, and the value layout they rely on. */
    jsv u8a = Q(JS_NewUint8ArrayCopy)(I, iso->ctx, iso->scratch, 0);
    jsv arr = Q(JS_NewArray)(I, iso->ctx);
    if (u8a == JSV_EXCEPTION || arr == JSV_EXCEPTION) {
        jsv_free(iso, u8a);
        jsv_free(iso, arr);
        return jsg__oom(err);
    }
    iso->u8_class_id = Q(JS_GetClassID)(I, u8a);
    iso->array_class_id = Q(JS_GetClassID)(I, arr);
    bool ok = jsv_tag(u8a) == TAG_OBJECT && jsv_tag(arr) == TAG_OBJECT && iso->u8_class_id != 0 &&
              iso->array_class_id != 0 && iso->u8_class_id != iso->array_class_id;
    jsv_free(iso, u8a);
    jsv_free(iso, arr);
    /* An object's reference count, which jsg_call_val looks at, is just before it. */
    jsv o = Q(JS_NewObject)(I, iso->ctx);
    if (o == JSV_EXCEPTION) return jsg__oom(err);
    ok = ok && jsv_refs(iso, o) == 1;
    iso->object_class_id = Q(JS_GetClassID)(I, o);
    ok = ok && iso->object_class_id != 0 && iso->object_class_id != iso->array_class_id;
    jsv o2 = Q(JS_DupValue)(I, iso->ctx, o);
    ok = ok && o2 == o && jsv_refs(iso, o) == 2;
    jsv_free(iso, o2);
    ok = ok && jsv_refs(iso, o) == 1;
    jsv_free(iso, o);
    jsv half = Q(JS_NewNumber)(I, iso->ctx, 0.5), big = Q(JS_NewNumber)(I, iso->ctx, -1e300);
    ok = ok && jsg__load_u64(iso, iso->undef) == JSV_UNDEFINED && jsv_is_float(half) &&
         jsv_number(half) == 0.5 && jsv_number(big) == -1e300 &&
         jsv_number(Q(JS_NewNumber)(I, iso->ctx, -7.0)) == -7.0;
    if (!ok) return mismatch(err, "class ids, reference counts or numbers");
    probe_prototype(iso);
    return probe_strings(iso, err);
}
