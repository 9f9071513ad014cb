/* wasm/js/jsg_layout.h: every assumption the binding makes about the engine's private memory
 * layout (QuickJS-NG as npm quickjs-wasi builds it for wasm32), in one place. Private to
 * src/wasm/js/; included through jsg_internal.h.
 *
 * DESIGN: the binding reads and writes the engine's values directly (a JSValue is a NaN-boxed
 * u64 on wasm32), looks at reference counts and reads short strings in place: much faster than
 * an export per value, and only correct for the layout written down here. Each assumption below
 * names the check that proves it against the engine actually linked: jsg__layout_check()
 * (jsg_layout.c) runs when an isolate is created, before any guest code, and fails the creation
 * with "the engine's layout differs from the one this build expects: <what>" on a mismatch; the
 * unit tests jsg_layout_* run the same checks and show that a wrong expectation is caught. A new
 * engine version therefore fails loudly at its first isolate instead of corrupting memory.
 *
 * Offsets the build script tools/engine-fixup.sh uses on the generated C (the step-dump flag at
 * byte JSRT_DUMP_STEP_BYTE of JSRuntime) are not read by C at run time, but the value is
 * mirrored here and checked too, so that the rewrite and the engine cannot drift apart
 * unnoticed. */
#ifndef TRAIL_WASM_JS_JSG_LAYOUT_H
#define TRAIL_WASM_JS_JSG_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- values ----
 * A JSValue: the tag in the high 32 bits, the payload (an int, a bool, a guest pointer to a
 * reference-counted cell) in the low 32; any other high word is a double, stored minus
 * JSV_FLOAT64_ADDEND (quickjs-ng's JS_NAN_BOXING). Checked: every tag below against a value of
 * that kind made by the engine; doubles round-trip. */
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
#define JSV(tag, x)        (((uint64_t)(uint32_t)(tag) << 32) | (uint32_t)(x))
#define JSV_UNDEFINED      JSV(TAG_UNDEFINED, 0)
#define JSV_EXCEPTION      JSV(TAG_EXCEPTION, 0)
#define JSV_FLOAT64_ADDEND ((uint64_t)(0x7ff80000u - (uint32_t)TAG_BIG_INT + 1u) << 32)

static inline int32_t jsv_tag(jsv v)
{
    return (int32_t)(uint32_t)(v >> 32);
}

/* Tags from TAG_BIG_INT up to TAG_OBJECT point at a reference-counted cell. */
static inline bool jsv_has_refcount(jsv v)
{
    return (uint32_t)jsv_tag(v) >= (uint32_t)TAG_BIG_INT;
}

/* Not one of the engine's own tags: a NaN-boxed double. */
static inline bool jsv_is_float(jsv v)
{
    return (uint32_t)(jsv_tag(v) - TAG_BIG_INT) > (uint32_t)(TAG_SHORT_BIG_INT - TAG_BIG_INT);
}

static inline double jsv_number(jsv v)
{
    if (jsv_tag(v) == TAG_INT) return (double)(int32_t)(uint32_t)v;
    uint64_t bits = v + JSV_FLOAT64_ADDEND;
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* ---- reference-counted cells ----
 * An object's (and a string's) reference count is the 32-bit word just before the address its
 * JSValue carries. Checked: a new object's count is 1, 2 after JS_DupValue, 1 after a free. */
#define JSV_REFCOUNT_OFF 4 /* bytes before the cell */

/* ---- strings ----
 * A flat string's JSValue points (past the count) at a 32-bit word: the length in characters
 * (31 bits) and, in the top bit, whether the characters are 16-bit. 8-bit characters follow at
 * an offset that depends on the engine's build, probed per isolate between STR8_OFF_MIN and
 * STR8_OFF_MAX (jsg_isolate.str8_off; not found: 0, and strings are always copied out by the
 * engine). Checked: the length words of an 8-bit and a 16-bit string; the probe finds the
 * characters. */
#define JSSTR_LEN_MASK 0x7fffffffu
#define JSSTR_WIDE_BIT 0x80000000u
#define STR8_OFF_MIN   8
#define STR8_OFF_MAX   32

/* ---- property enumeration ----
 * JS_GetOwnPropertyNames gives an array of JSPropertyEnum { bool is_enumerable; JSAtom atom; }:
 * 8 bytes each, the atom at byte 4. GPN_STRING_ENUM is JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY.
 * Checked: an object with one enumerable string key and one non-enumerable one lists exactly the
 * first, with the atom it was defined under. */
#define PROPENUM_SIZE     8
#define PROPENUM_ATOM_OFF 4
#define GPN_STRING_ENUM   17

/* JS_PROP_* flags: configurable | writable (PROP_CW), | enumerable (PROP_CWE). Checked with the
 * enumeration above (a PROP_CW key is not listed, a PROP_CWE one is). */
#define PROP_CW  3
#define PROP_CWE 7

/* JS_EVAL_TYPE_* of the engine's qjs_eval/qjs_compile. Checked by every module load (a module
 * evaluated as a script fails on its first `export`) and by the unit tests. */
#define EVAL_TYPE_GLOBAL 0
#define EVAL_TYPE_MODULE 1

/* JS_PromiseState's results are jsg_promise_state's values (JSG_PENDING, JSG_FULFILLED,
 * JSG_REJECTED). Checked: a new promise is pending, one made settled is fulfilled. */

/* ---- the runtime ----
 * JS_SetDumpFlags's JS_DUMP_BYTECODE_STEP is bit 7 of byte JSRT_DUMP_STEP_BYTE of JSRuntime:
 * tools/engine-fixup.sh takes the interpreter's test of that bit out of the generated code.
 * Checked: setting the flag (no JS runs meanwhile) sets that bit and nothing else there. */
#define JS_DUMP_BYTECODE_STEP 0x80u
#define JSRT_DUMP_STEP_BYTE   753
#define JSRT_DUMP_STEP_MASK   0x80u

#endif
