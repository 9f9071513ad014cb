/* Tests for wasm/js/jsg_layout.c: the engine linked into trail has the memory layout
 * jsg_layout.h describes, and each assumption there, changed, is caught by the check that runs
 * when an isolate is created (so a new engine fails loudly instead of corrupting memory). */
#include "test.h"

#include <stddef.h>

#include "wasm/js/jsg_internal.h"

static int body_verify(jsg_isolate *iso, void *arg, tr_error *err)
{
    return jsg__layout_verify(iso, arg, err);
}

static jsg_isolate *layout_iso(void)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    int rc = jsg_isolate_new(NULL, &iso, &err);
    if (rc != 0) fprintf(stderr, "jsg_isolate_new: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    return iso;
}

TEST(jsg_layout_matches_the_engine)
{
    jsg_isolate *iso = layout_iso();
    tr_error err;
    tr_error_clear(&err);
    int rc = jsg__guarded(iso, body_verify, (void *)&jsg__layout_expected, &err);
    if (rc != 0) fprintf(stderr, "jsg__layout_verify: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    /* The probes found what the fast paths need: strings read in place, JS_GetPrototype's
     * reference known. A new engine that moves these does not corrupt anything (the probes fall
     * back), but it is slower: this test says so. */
    CHECK(iso->str8_off >= STR8_OFF_MIN && iso->str8_off <= STR8_OFF_MAX);
    CHECK(iso->proto_ref == 0 || iso->proto_ref == 1);
    CHECK(iso->u8_class_id != 0 && iso->array_class_id != 0 && iso->object_class_id != 0);
    jsg_isolate_free(iso);
}

/* One assumption changed: the field and the value it gets, and what the error names. */
typedef struct layout_change {
    size_t off; /* of a 32-bit field of jsg__layout */
    uint32_t value;
    const char *names;
} layout_change;

#define CHANGE(field, v, what)                            \
    {                                                     \
        offsetof(jsg__layout, field), (uint32_t)(v), what \
    }

TEST(jsg_layout_mismatch_is_caught)
{
    static const layout_change changes[] = {
        CHANGE(tag_bool, TAG_INT, "the tag of a boolean"),
        CHANGE(tag_null, TAG_UNDEFINED, "the tag of null"),
        CHANGE(tag_undefined, TAG_NULL, "the tag of undefined"),
        CHANGE(tag_int, TAG_BOOL, "the tag of a small integer"),
        CHANGE(tag_string, TAG_STRING_ROPE, "the tag of a string"),
        CHANGE(tag_string_rope, TAG_STRING, "the tag of a rope string"),
        CHANGE(tag_symbol, TAG_STRING, "the tag of a symbol"),
        CHANGE(tag_short_big_int, TAG_BIG_INT, "the tag of a short bigint"),
        CHANGE(tag_big_int, TAG_SHORT_BIG_INT, "the tag of a bigint"),
        CHANGE(tag_object, -2, "the tag of an object"),
        CHANGE(tag_exception, 5, "the tag of the exception marker"),
        CHANGE(refcount_off, 8, "where an object's reference count is"),
        CHANGE(str_wide_bit, 1u << 30, "a string's length word"),
        CHANGE(propenum_size, 12, "the list of an object's keys"),
        CHANGE(propenum_atom_off, 0, "the list of an object's keys"),
        CHANGE(gpn_string_enum, 1, "the list of an object's keys"),
        CHANGE(prop_cw, PROP_CWE, "the list of an object's keys"),
        CHANGE(prop_cwe, PROP_CW, "the list of an object's keys"),
        CHANGE(dump_step_flag, 0x40, "the runtime's step-dump flag"),
        CHANGE(dump_step_byte, JSRT_DUMP_STEP_BYTE - 1, "the runtime's step-dump flag"),
        CHANGE(dump_step_mask, 0x40, "the runtime's step-dump flag"),
    };
    jsg_isolate *iso = layout_iso();
    for (size_t i = 0; i < TR_ARRAY_LEN(changes); i++) {
        jsg__layout want = jsg__layout_expected;
        memcpy((char *)&want + changes[i].off, &changes[i].value, 4);
        tr_error err;
        tr_error_clear(&err);
        int rc = jsg__guarded(iso, body_verify, &want, &err);
        if (rc != TR_EINVAL) fprintf(stderr, "change %zu (%s): rc %d\n", i, changes[i].names, rc);
        CHECK_EQ(rc, TR_EINVAL);
        CHECK_CONTAINS(err.msg, "the engine's layout differs from the one this build expects");
        CHECK_CONTAINS(err.msg, changes[i].names);
    }
    /* nothing the checks did is left behind: the isolate passes them and runs JS */
    tr_error err;
    tr_error_clear(&err);
    CHECK_EQ(jsg__guarded(iso, body_verify, (void *)&jsg__layout_expected, &err), 0);
    jsg_ref r = 0;
    CHECK_EQ(jsg_eval(iso, "'x'.repeat(3) + 1", 17, "<test>", &r, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
    CHECK_STR_EQ(b.data, "xxx1");
    tr_buf_free(&b);
    jsg_ref_free(iso, r);
    jsg_isolate_free(iso);
}
