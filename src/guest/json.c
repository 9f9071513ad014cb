/* guest/json.c: JSON text (RFC 8259) into a jsg_val, for HttpRequest.json(): the host parses the
 * body's bytes and builds the value, where the engine would first copy them into a string and
 * then run its own JSON.parse over it, both interpreted (about twice the work for a small body).
 *
 * DESIGN: JSON.parse's exact result, or nothing. Text this parser does not take (any syntax
 * error, bytes that are not UTF-8, nesting deeper than GUEST_JSON_MAX_DEPTH, a value that
 * would take more than max_bytes on the host) makes it return false; the SDK then decodes the
 * bytes and calls JSON.parse, which gives its own result or its own error message. The rest
 * follows from how jsg builds objects: it defines each property in order, so a repeated key
 * keeps its first position with the last value, integer-like keys enumerate first, and
 * "__proto__" is an ordinary own property, all as JSON.parse does them. */
#include <stdlib.h>
#include <string.h>

#include "guest/guest_internal.h"

typedef struct parser {
    const unsigned char *p, *end;
    tr_arena *arena;
    size_t budget; /* bytes the parsed value may still take on the host */
    /* Values and properties of the containers being parsed, innermost last: a container's
     * items are copied into the arena when it closes. */
    jsg_val *vals;
    size_t nvals, capvals;
    jsg_prop *props;
    size_t nprops, capprops;
    /* the first ones (a small body allocates nothing but its strings' escapes) */
    jsg_val vals0[32];
    jsg_prop props0[16];
} parser;

/* Room for one more item on a stack that starts in the parser itself. */
static void *grow(void *items, size_t *cap, void *inline_items, size_t size)
{
    size_t n = *cap;
    *cap = n * 2;
    if (items != inline_items) return tr_realloc(items, *cap * size);
    void *heap = tr_malloc(*cap * size);
    memcpy(heap, items, n * size);
    return heap;
}

static bool value(parser *j, int depth, jsg_val *out);

/* Takes n bytes of the budget: false once it is spent. */
static bool charge(parser *j, size_t n)
{
    if (n > j->budget) return false;
    j->budget -= n;
    return true;
}

static void skip_ws(parser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static bool literal(parser *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return false;
    j->p += n;
    return true;
}

static size_t digits(parser *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return (size_t)(j->p - s);
}

static bool number(parser *j, jsg_val *out)
{
    const unsigned char *start = j->p;
    bool neg = j->p < j->end && *j->p == '-';
    if (neg) j->p++;
    if (j->p == j->end) return false;
    size_t nint;
    if (*j->p == '0') {
        j->p++;
        nint = 1;
    } else {
        nint = digits(j);
        if (nint == 0) return false;
    }
    bool plain = true;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (digits(j) == 0) return false;
        plain = false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (digits(j) == 0) return false;
        plain = false;
    }
    if (plain && nint <= 15) {
        /* exact in a double; -0 stays negative zero, as in JSON.parse */
        double v = 0;
        for (const unsigned char *d = start + neg; d < j->p; d++) v = v * 10 + (*d - '0');
        *out = jsg_number(neg ? -v : v);
        return true;
    }
    /* strtod rounds correctly, as JSON.parse does; trail keeps the C locale ('.' as the point) */
    size_t n = (size_t)(j->p - start);
    char small[64];
    char *s = n < sizeof small ? small : tr_arena_alloc(j->arena, n + 1);
    memcpy(s, start, n);
    s[n] = '\0';
    *out = jsg_number(strtod(s, NULL));
    return true;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

/* cp as UTF-8 at out (a lone surrogate as WTF-8, which jsg turns back into that code unit). */
static size_t put_utf8(unsigned char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The escapes of a string whose text runs from s to the closing quote at e, decoded into the
 * arena. Every escape is at least as long as its UTF-8, so e - s bytes suffice. */
static bool unescape(parser *j, const unsigned char *s, const unsigned char *e, jsg_val *out)
{
    if (!charge(j, (size_t)(e - s))) return false;
    unsigned char *buf = tr_arena_alloc(j->arena, (size_t)(e - s) + 1), *o = buf;
    while (s < e) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            if (e - s < 4) return false;
            int u = hex4(s);
            if (u < 0) return false;
            s += 4;
            uint32_t cp = (uint32_t)u;
            if (cp >= 0xD800 && cp <= 0xDBFF && e - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                int lo = hex4(s + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    s += 6;
                }
            }
            o += put_utf8(o, cp);
            break;
        }
        default:
            return false;
        }
    }
    *out = jsg_string((const char *)buf, (size_t)(o - buf));
    return true;
}

static bool string(parser *j, jsg_val *out)
{
    const unsigned char *s = ++j->p; /* past the opening quote */
    bool escaped = false;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            const unsigned char *e = j->p++;
            if (escaped) return unescape(j, s, e, out);
            /* no escapes: the text itself (it stays put while the value is built) */
            *out = jsg_string(e == s ? "" : (const char *)s, (size_t)(e - s));
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (j->end - j->p < 2) return false;
            escaped = true;
            j->p += 2; /* the escape's first character is checked when it is decoded */
            continue;
        }
        if (c < 0x80) {
            j->p++;
            continue;
        }
        size_t len = guest__utf8_seq(j->p, 0, (size_t)(j->end - j->p));
        if (len == 0) return false;
        j->p += len;
    }
    return false;
}

/* At a container's start (past its opening bracket): true, and the closing bracket taken, when
 * it is empty. */
static bool closes_at_once(parser *j, unsigned char close)
{
    skip_ws(j);
    if (j->p == j->end || *j->p != close) return false;
    j->p++;
    return true;
}

/* After an item: 1 at a comma (another item follows), 0 at the closing bracket (taken), -1 at
 * anything else. */
static int after_item(parser *j, unsigned char close)
{
    skip_ws(j);
    if (j->p == j->end) return -1;
    if (*j->p == ',') {
        j->p++;
        return 1;
    }
    if (*j->p != close) return -1;
    j->p++;
    return 0;
}

/* The n items at stack (of size bytes each), copied into the arena. */
static void *keep(parser *j, const void *stack, size_t n, size_t size)
{
    void *items = tr_arena_alloc(j->arena, n * size);
    if (n) memcpy(items, stack, n * size);
    return items;
}

static bool array(parser *j, int depth, jsg_val *out)
{
    j->p++;
    size_t base = j->nvals;
    for (int more = closes_at_once(j, ']') ? 0 : 1; more == 1;) {
        jsg_val v;
        if (!value(j, depth + 1, &v)) return false;
        if (j->nvals == j->capvals) j->vals = grow(j->vals, &j->capvals, j->vals0, sizeof *j->vals);
        j->vals[j->nvals++] = v;
        if ((more = after_item(j, ']')) < 0) return false;
    }
    size_t n = j->nvals - base;
    *out = (jsg_val){.type = JSG_ARRAY, .u.arr = {keep(j, j->vals + base, n, sizeof(jsg_val)), n}};
    j->nvals = base;
    return true;
}

static bool object(parser *j, int depth, jsg_val *out)
{
    j->p++;
    size_t base = j->nprops;
    for (int more = closes_at_once(j, '}') ? 0 : 1; more == 1;) {
        jsg_val key, v;
        skip_ws(j);
        if (j->p == j->end || *j->p != '"' || !string(j, &key)) return false;
        skip_ws(j);
        if (j->p == j->end || *j->p != ':') return false;
        j->p++;
        if (!value(j, depth + 1, &v)) return false;
        if (j->nprops == j->capprops)
            j->props = grow(j->props, &j->capprops, j->props0, sizeof *j->props);
        j->props[j->nprops++] = (jsg_prop){key.u.str.ptr, key.u.str.len, v};
        if ((more = after_item(j, '}')) < 0) return false;
    }
    size_t n = j->nprops - base;
    *out =
        (jsg_val){.type = JSG_OBJECT, .u.obj = {keep(j, j->props + base, n, sizeof(jsg_prop)), n}};
    j->nprops = base;
    return true;
}

static bool value(parser *j, int depth, jsg_val *out)
{
    skip_ws(j);
    if (j->p == j->end || !charge(j, sizeof(jsg_val) + sizeof(jsg_prop))) return false;
    switch (*j->p) {
    case '{':
        return depth < GUEST_JSON_MAX_DEPTH && object(j, depth, out);
    case '[':
        return depth < GUEST_JSON_MAX_DEPTH && array(j, depth, out);
    case '"':
        return string(j, out);
    case 't':
        *out = jsg_bool(true);
        return literal(j, "true", 4);
    case 'f':
        *out = jsg_bool(false);
        return literal(j, "false", 5);
    case 'n':
        *out = jsg_null();
        return literal(j, "null", 4);
    default:
        return number(j, out);
    }
}

bool guest__json_parse(const void *text, size_t len, size_t max_bytes, tr_arena *arena,
                       jsg_val *out)
{
    parser j;
    j.p = text;
    j.end = (const unsigned char *)text + len;
    j.arena = arena;
    j.budget = max_bytes;
    j.vals = j.vals0;
    j.nvals = 0;
    j.capvals = sizeof j.vals0 / sizeof *j.vals0;
    j.props = j.props0;
    j.nprops = 0;
    j.capprops = sizeof j.props0 / sizeof *j.props0;
    bool ok = len > 0 && value(&j, 0, out);
    if (ok) {
        skip_ws(&j);
        ok = j.p == j.end;
    }
    if (j.vals != j.vals0) tr_free(j.vals);
    if (j.props != j.props0) tr_free(j.props);
    return ok;
}
