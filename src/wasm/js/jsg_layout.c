/* wasm/js/jsg_layout.c: the check of the engine's value layout (jsg_layout.h) when an isolate
 * is created, and the probes that find what may differ between builds of the same engine (where
 * a string keeps its characters, whether JS_GetPrototype gives a reference). */
#include "wasm/js/jsg_internal.h"

#include <string.h>

static int mismatch(tr_error *err, const char *what)
{
    return tr_error_set(err, TR_EINVAL,
                        "the engine's layout differs from the one this build expects: %s", what);
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
