/* db/vec.c: the vector SQL functions vec_f32(), vec_length(), vec_distance_cosine() and
 * vec_distance_l2(), registered on every connection.
 *
 * DESIGN: these follow sqlite-vec's semantics for float32 vectors so that queries written for it
 * (the reference's "Vector Search" example) run unchanged, without loading an extension:
 *   - a vector is a BLOB of little-endian f32 (what a Float32Array parameter arrives as; its
 *     length must be a non-zero multiple of 4) or JSON text '[1, 2.5, -3]';
 *   - vec_f32(v) returns the BLOB form with subtype 223, as sqlite-vec does;
 *   - distances read both vectors, which must have the same number of dimensions, and compute
 *     in f32 as sqlite-vec does (cosine: 1 - a·b / (|a| |b|); a zero vector gives NaN, which
 *     SQLite stores as NULL); the error messages are sqlite-vec's, typo included, so code that
 *     matches on them keeps working.
 * Only float32 is supported: sqlite-vec's int8 and bit vectors, vec0 tables and KNN indexes are
 * not (a linear scan with ORDER BY distance is what the example runs). BLOBs are read in place,
 * element by element with memcpy, since SQLite gives no alignment guarantee: a distance costs no
 * allocation. */
#include "db/db_internal.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sqlite-vec's subtype for float32 vectors. */
#define VEC_SUBTYPE_F32 223
/* JSON text longer than this is refused (a 16 MiB vector is far beyond any embedding). */
#define VEC_MAX_JSON (16u << 20)

typedef struct vec {
    const unsigned char *bytes; /* dims little-endian f32, possibly unaligned */
    float *owned;               /* what bytes points to when parsed from JSON; else NULL */
    size_t dims;
} vec;

/* Element i. memcpy because SQLite gives no alignment guarantee for BLOBs; compilers turn it
 * into a plain (unaligned) load. Little-endian hosts only, as the BLOB format is. */
static inline float vec_at(const vec *x, size_t i)
{
    float f;
    memcpy(&f, x->bytes + i * 4, sizeof f);
    return f;
}

static void vec_release(vec *x)
{
    sqlite3_free(x->owned);
    x->owned = NULL;
    x->bytes = NULL;
}

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses '[n, n, ...]' (JSON numbers; whitespace around them). text is NUL-terminated, as SQLite's
 * text values are, so strtod cannot read past it. Returns NULL on success or a static message. */
static const char *parse_json(const char *s, size_t n, vec *out)
{
    size_t i = 0;
    while (i < n && json_space(s[i]))
        i++;
    if (i == n || s[i] != '[') return "JSON array parsing error: Input does not start with '['";
    i++;
    while (i < n && json_space(s[i]))
        i++;
    if (i < n && s[i] == ']') return "zero-length vectors are not supported.";
    size_t cap = 16, len = 0;
    float *v = sqlite3_malloc64(cap * sizeof *v);
    if (v == NULL) return "out of memory";
    for (;;) {
        char *end = NULL;
        double d = i < n ? strtod(s + i, &end) : 0;
        if (i >= n || end == s + i || !isfinite(d) || fabs(d) > FLT_MAX) break;
        if (len == cap) {
            cap *= 2;
            float *grown = sqlite3_realloc64(v, cap * sizeof *v);
            if (grown == NULL) {
                sqlite3_free(v);
                return "out of memory";
            }
            v = grown;
        }
        v[len++] = (float)d;
        i = (size_t)(end - s);
        while (i < n && json_space(s[i]))
            i++;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == ']') {
            i++;
            while (i < n && json_space(s[i]))
                i++;
            if (i != n) break;
            *out = (vec){(const unsigned char *)v, v, len};
            return NULL;
        }
        break;
    }
    sqlite3_free(v);
    return "JSON parsing error";
}

/* Reads a float32 vector from a BLOB or JSON text. Returns NULL or an error message in buf. */
static const char *vec_read(sqlite3_value *val, vec *out, char *buf, size_t cap)
{
    switch (sqlite3_value_type(val)) {
    case SQLITE_BLOB: {
        const void *blob = sqlite3_value_blob(val); /* before _bytes(), as SQLite advises */
        int bytes = sqlite3_value_bytes(val);
        if (bytes == 0) return "zero-length vectors are not supported.";
        if (bytes % 4 != 0) {
            snprintf(buf, cap,
                     "invalid float32 vector BLOB length. Must be divisible by 4, found %d", bytes);
            return buf;
        }
        /* Borrowed: valid until the argument changes, i.e. for this call. */
        *out = (vec){blob, NULL, (size_t)bytes / 4};
        return NULL;
    }
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_value_text(val);
        int bytes = sqlite3_value_bytes(val);
        if (t == NULL || bytes == 0) return "zero-length vectors are not supported.";
        if ((unsigned)bytes > VEC_MAX_JSON) return "JSON parsing error: the text is too long";
        return parse_json(t, (size_t)bytes, out);
    }
    default: {
        static const char *names[] = {"", "INTEGER", "FLOAT", "TEXT", "BLOB", "NULL"};
        int type = sqlite3_value_type(val);
        snprintf(buf, cap, "Input must have type BLOB (compact format) or TEXT (JSON), found %s",
                 type >= 1 && type <= 5 ? names[type] : "?");
        return buf;
    }
    }
}

static void fn_vec_f32(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    char buf[200];
    vec x;
    const char *e = vec_read(argv[0], &x, buf, sizeof buf);
    if (e) {
        sqlite3_result_error(ctx, e, -1);
        return;
    }
    if (x.owned)
        sqlite3_result_blob64(ctx, x.owned, x.dims * 4, sqlite3_free);
    else
        sqlite3_result_blob64(ctx, x.bytes, x.dims * 4, SQLITE_TRANSIENT);
    sqlite3_result_subtype(ctx, VEC_SUBTYPE_F32);
}

static void fn_vec_length(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    char buf[200];
    vec x;
    const char *e = vec_read(argv[0], &x, buf, sizeof buf);
    if (e) {
        sqlite3_result_error(ctx, e, -1);
        return;
    }
    sqlite3_result_int64(ctx, (sqlite3_int64)x.dims);
    vec_release(&x);
}

/* Reads both arguments; on failure reports the error and returns false. */
static bool read_pair(sqlite3_context *ctx, sqlite3_value **argv, vec *a, vec *b)
{
    char buf[200], msg[300];
    const char *e = vec_read(argv[0], a, buf, sizeof buf);
    if (e) {
        snprintf(msg, sizeof msg, "Error reading 1st vector: %s", e);
        sqlite3_result_error(ctx, msg, -1);
        return false;
    }
    e = vec_read(argv[1], b, buf, sizeof buf);
    if (e) {
        snprintf(msg, sizeof msg, "Error reading 2nd vector: %s", e);
        sqlite3_result_error(ctx, msg, -1);
        vec_release(a);
        return false;
    }
    if (a->dims != b->dims) {
        snprintf(msg, sizeof msg,
                 "Vector dimension mistmatch. First vector has %zu dimensions, while the second "
                 "has %zu dimensions.",
                 a->dims, b->dims);
        sqlite3_result_error(ctx, msg, -1);
        vec_release(a);
        vec_release(b);
        return false;
    }
    return true;
}

static void fn_vec_distance_cosine(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    vec a, b;
    if (!read_pair(ctx, argv, &a, &b)) return;
    float dot = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.dims; i++) {
        float x = vec_at(&a, i), y = vec_at(&b, i);
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    float d = (float)(1.0 - dot / (sqrt(aa) * sqrt(bb)));
    sqlite3_result_double(ctx, d);
    vec_release(&a);
    vec_release(&b);
}

static void fn_vec_distance_l2(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    vec a, b;
    if (!read_pair(ctx, argv, &a, &b)) return;
    float sum = 0;
    for (size_t i = 0; i < a.dims; i++) {
        float diff = vec_at(&a, i) - vec_at(&b, i);
        sum += diff * diff;
    }
    sqlite3_result_double(ctx, sqrtf(sum));
    vec_release(&a);
    vec_release(&b);
}

int db__vec_register(sqlite3 *db)
{
    static const struct {
        const char *name;
        int argc;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"vec_f32", 1, fn_vec_f32},
        {"vec_length", 1, fn_vec_length},
        {"vec_distance_cosine", 2, fn_vec_distance_cosine},
        {"vec_distance_l2", 2, fn_vec_distance_l2},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
        int rc = sqlite3_create_function_v2(db, fns[i].name, fns[i].argc, flags, NULL, fns[i].fn,
                                            NULL, NULL, NULL);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}
