/* wasm/js/jsg_json.c: JSON.stringify for plain data, written by the host (jsg_json_fast), and
 * the engine's own JSON.stringify (jsg_to_json). See jsg_internal.h for the binding's parts.
 *
 * DESIGN: the engine's JSON.stringify has a high fixed cost (about 1.5 us for {"a":"b"} here:
 * the wrapper object, the cycle stack, the string builder). jsg_json_fast() writes the same
 * text in C for plain data, reading values the way JSON.stringify does (own enumerable string
 * keys in property order, [[Get]] of each), and gives up (0, the caller then uses
 * JSON.stringify) on anything else: a toJSON method anywhere, a class other than Object and
 * Array (Date, Map, typed arrays, boxed primitives, proxies), a bigint, a cycle, deep nesting,
 * or an exception. Giving up part way means getters already read run again in JSON.stringify;
 * plain data has none. */
#include "wasm/js/jsg_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
    const unsigned char *in_place = jsg__ascii_in_place(iso, v, &n);
    if (in_place != NULL) {
        if (quote)
            json_quote(o->buf, in_place, n);
        else
            tr_buf_append(o->buf, in_place, n);
        return 0;
    }
    uint32_t c = Q(JS_ToCStringLen2)(I, iso->ctx, jsg__out_slot(iso, 0), v, 0);
    if (c == 0) return JSON_GIVE_UP;
    uint32_t len = jsg__load_u32(iso, jsg__out_slot(iso, 0));
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
        if ((int32_t)Q(JS_GetLength)(I, iso->ctx, v, jsg__out_slot(iso, 0)) < 0)
            return JSON_GIVE_UP;
        int64_t n = (int64_t)jsg__load_u64(iso, jsg__out_slot(iso, 0));
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
        uint32_t tabp = jsg__out_slot(iso, 1), lenp = jsg__out_slot(iso, 2);
        if ((int32_t)Q(JS_GetOwnPropertyNames)(I, iso->ctx, tabp, lenp, v, GPN_STRING_ENUM) < 0)
            return JSON_GIVE_UP;
        uint32_t tab = jsg__load_u32(iso, tabp), n = jsg__load_u32(iso, lenp);
        bool first = true;
        put_char(o->buf, '{');
        for (uint32_t i = 0; rc == 0 && i < n; i++) {
            uint32_t atom = jsg__load_u32(iso, tab + 8 * i + 4);
            jsv pv = Q(JS_GetProperty)(I, iso->ctx, v, atom);
            if (pv == JSV_EXCEPTION) {
                rc = JSON_GIVE_UP;
                break;
            }
            if (!json_skipped(iso, pv)) {
                jsg_prop key;
                tr_error e = {0};
                rc = jsg__atom_name_now(iso, atom, o->arena, &key, &e) < 0 ? JSON_GIVE_UP : 0;
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

typedef struct json_args {
    jsg_ref value;
    jsg_ref out; /* the result */
} json_args;

/* The text in buf as a new string in *out (a handle). */
static int json_string(jsg_isolate *iso, const tr_buf *buf, jsg_ref *out, tr_error *err)
{
    if (buf->len >= UINT32_MAX) return tr_error_set(err, TR_ELIMIT, "string too large");
    bool heap;
    uint32_t s = jsg__put_bytes(iso, buf->data ? buf->data : "", buf->len, SCRATCH_DATA, &heap);
    jsv str = s ? Q(JS_NewStringLen)(I, iso->ctx, s, (uint32_t)buf->len) : JSV_EXCEPTION;
    jsg__drop_bytes(iso, s, heap);
    if (str == JSV_EXCEPTION) return jsg__take_exception(iso, err);
    *out = jsg__handle_new(iso, str);
    return *out == 0 ? jsg__oom(err) : 0;
}

static int body_json_fast(jsg_isolate *iso, void *arg, tr_error *err)
{
    json_args *a = arg;
    jsv v = jsg__handle_val(iso, a->value);
    if (json_skipped(iso, v)) return 0; /* JSON.stringify gives undefined: its business */
    if (iso->atom_to_json == 0) {
        bool temp;
        uint32_t t = jsg__atom_get(iso, "toJSON", 6, &temp);
        if (t == 0 || temp) return jsg__oom(err);
        iso->atom_to_json = Q(JS_DupAtom)(I, iso->ctx, t);
    }
    tr_buf buf = TR_BUF_INIT;
    tr_buf_reserve(&buf, 256);
    tr_arena arena;
    tr_arena_init(&arena, 512);
    json_out o = {.iso = iso, .buf = &buf, .arena = &arena, .to_json = iso->atom_to_json};
    int rc = json_value(&o, v);
    if (o.last_str != 0) jsv_free(iso, o.last_str);
    if (rc == JSON_TOO_BIG) {
        rc = jsg__oom(err);
    } else if (rc == JSON_GIVE_UP) {
        /* an exception on the way: JSON.stringify will meet it again, unless the deadline
         * passed, which must end the call */
        jsv e = Q(JS_GetException)(I, iso->ctx);
        jsv_free(iso, e);
        rc = iso->interrupted ? tr_error_set(err, TR_EINTERRUPTED, INTERRUPTED_MSG) : 0;
    } else {
        rc = json_string(iso, &buf, &a->out, err);
    }
    tr_buf_free(&buf);
    tr_arena_deinit(&arena);
    return rc;
}

int jsg_json_fast(jsg_isolate *iso, jsg_ref value, jsg_ref *out, tr_error *err)
{
    *out = 0;
    json_args a = {value, 0};
    int rc = jsg__guarded(iso, body_json_fast, &a, err);
    if (rc == 0) *out = a.out;
    return rc;
}

typedef struct text_args {
    jsg_ref ref;
    tr_buf *buf; /* the result */
} text_args;

static int body_to_json(jsg_isolate *iso, void *arg, tr_error *err)
{
    const text_args *a = arg;
    if (iso->json_stringify == 0) {
        static const char src[] = "JSON.stringify";
        bool cheap, fheap;
        uint32_t code = jsg__put_bytes(iso, src, sizeof src - 1, SCRATCH_DATA, &cheap);
        uint32_t fname = jsg__put_bytes(iso, "<trail>", 7, SCRATCH_NAME, &fheap);
        uint32_t h = code && fname ? Q(qjs_eval)(I, code, sizeof src - 1, fname, 0) : 0;
        int rc = jsg__check(iso, h, err);
        if (rc < 0) return rc;
        iso->json_stringify = h;
    }
    jsg__store_u32(iso, jsg__out_slot(iso, 4), jsg__or_undef(iso, a->ref));
    uint32_t s = Q(qjs_call)(I, iso->json_stringify, iso->undef, 1, jsg__out_slot(iso, 4));
    int rc = jsg__check(iso, s, err);
    if (rc < 0) return rc;
    if (Q(qjs_is_undefined)(I, s)) {
        tr_buf_reset(a->buf);
        tr_buf_append_str(a->buf, "undefined");
    } else if (jsg__read_string(iso, s, a->buf) < 0) {
        rc = jsg__take_exception(iso, err);
    }
    Q(qjs_free_value)(I, s);
    return rc;
}

int jsg_to_json(jsg_isolate *iso, jsg_ref ref, tr_buf *buf, tr_error *err)
{
    text_args a = {ref, buf};
    return jsg__guarded(iso, body_to_json, &a, err);
}
