/* config/textproto.c: a schema-driven parser for the subset of protobuf text format that
 * config.textproto uses.
 *
 * DESIGN: a hand-written lexer (identifiers, numbers, quoted strings, punctuation, `#` comments)
 * feeds a recursive-descent parser that walks the schema tables from config_internal.h and stores
 * each value at its field's offset. Every error carries the line and column where the problem
 * starts and says what was expected, because a config error stops start-up and the message is all
 * the user gets.
 *
 * Supported: `name: value` scalars (integers in decimal or 0x hex, range-checked; bools true/false,
 * True/False, t/f, 1/0; strings in '...' or "..." with C escapes, \uXXXX, adjacent literals
 * joined), messages as `name { ... }`, `name: { ... }` or `name < ... >`, repeated strings as
 * repeated `name: "x"` lines or `name: ["x", "y"]`, enums by name (`conflict_resolution: REPLACE`),
 * repeated enums as flags (`acl_world: [READ, CREATE]` or one per line), repeated messages
 * (`record_apis { ... }` per element or `record_apis: [{ ... }, { ... }]`), and `,` or `;` after
 * any field. Omitted on purpose: floats, Any, extensions `[...]`, octal integers (a leading 0 is an
 * error instead of a silent base change). A non-repeated field set twice in one message is an
 * error, as in protobuf. A repeated field set in the text replaces the value it had before (the
 * default) instead of appending to it. */
#include "config/config_internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef enum tk_kind {
    TK_EOF,
    TK_IDENT,
    TK_NUMBER,
    TK_STRING, /* the raw literal, quotes included; decoded by parse_string() */
    TK_PUNCT,  /* one of { } < > : , ; [ ] */
} tk_kind;

typedef struct token {
    tk_kind kind;
    const char *p; /* into the text */
    size_t n;
    int line, col;
} token;

typedef struct parser {
    const char *name; /* file name for messages */
    const char *text;
    size_t len;
    size_t pos;
    int line;
    size_t line_start; /* offset of the current line's first byte */
    token ahead;       /* valid when have_ahead */
    bool have_ahead;
    tr_error *err;
} parser;

typedef struct text_pos {
    int line, col; /* 0 when unset */
} text_pos;

static int fail_at(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(parser *p, int line, int col, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tr_error_set(p->err, TR_ECONFIG, "%s:%d:%d: %s", p->name, line, col, msg);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A short printable rendering of bytes for messages: at most 40 bytes, others as \xHH. */
static void render(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

/* How a token is named in "got ..." parts of messages. */
static void describe(const token *t, char *out, size_t cap)
{
    char r[200];
    switch (t->kind) {
    case TK_EOF:
        snprintf(out, cap, "end of file");
        return;
    case TK_STRING:
        render(r, sizeof r, t->p, t->n);
        snprintf(out, cap, "string %s", r);
        return;
    case TK_PUNCT:
        snprintf(out, cap, "'%c'", t->p[0]);
        return;
    case TK_IDENT:
    case TK_NUMBER:
        render(r, sizeof r, t->p, t->n);
        snprintf(out, cap, "'%s'", r);
        return;
    }
    snprintf(out, cap, "?");
}

static void skip_space(parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c == '\n') {
            p->pos++;
            p->line++;
            p->line_start = p->pos;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->len && p->text[p->pos] != '\n')
                p->pos++;
        } else {
            return;
        }
    }
}

static int lex(parser *p, token *t)
{
    skip_space(p);
    t->line = p->line;
    t->col = (int)(p->pos - p->line_start) + 1;
    t->p = p->text + p->pos;
    if (p->pos >= p->len) {
        t->kind = TK_EOF;
        t->n = 0;
        return 0;
    }
    size_t start = p->pos;
    char c = p->text[p->pos];
    if (is_ident_start(c)) {
        while (p->pos < p->len && is_ident_char(p->text[p->pos]))
            p->pos++;
        t->kind = TK_IDENT;
    } else if (is_digit(c) || c == '-' || c == '+' || c == '.') {
        /* A run of number-ish bytes; parse_int() says what is wrong with it. */
        p->pos++;
        while (p->pos < p->len && (is_ident_char(p->text[p->pos]) || p->text[p->pos] == '.'))
            p->pos++;
        t->kind = TK_NUMBER;
    } else if (c == '"' || c == '\'') {
        p->pos++;
        for (;;) {
            if (p->pos >= p->len || p->text[p->pos] == '\n')
                return fail_at(p, t->line, t->col,
                               "unterminated string; expected a closing %c before the end of the "
                               "line",
                               c);
            char d = p->text[p->pos++];
            if (d == c) break;
            if (d == '\\' && p->pos < p->len && p->text[p->pos] != '\n') p->pos++;
        }
        t->kind = TK_STRING;
    } else if (strchr("{}<>:,;[]", c) != NULL && c != '\0') {
        p->pos++;
        t->kind = TK_PUNCT;
    } else {
        char r[16];
        render(r, sizeof r, &c, 1);
        return fail_at(p, t->line, t->col, "unexpected character '%s'; expected a field name", r);
    }
    t->n = p->pos - start;
    return 0;
}

static int peek(parser *p, token **out)
{
    if (!p->have_ahead) {
        int rc = lex(p, &p->ahead);
        if (rc < 0) return rc;
        p->have_ahead = true;
    }
    *out = &p->ahead;
    return 0;
}

static int next(parser *p, token *out)
{
    token *t;
    int rc = peek(p, &t);
    if (rc < 0) return rc;
    *out = *t;
    p->have_ahead = false;
    return 0;
}

static bool is_punct(const token *t, char c)
{
    return t->kind == TK_PUNCT && t->p[0] == c;
}

static bool tok_is(const token *t, const char *s)
{
    return t->n == strlen(s) && memcmp(t->p, s, t->n) == 0;
}

static const char *type_name(const cfg__field *f)
{
    switch (f->type) {
    case CFG__MESSAGE:
        return "a message";
    case CFG__INT:
    case CFG__UINT32:
    case CFG__UINT64:
        return "an integer";
    case CFG__BOOL:
        return "true or false";
    case CFG__STRING:
        return "a quoted string";
    case CFG__STRING_LIST:
        return "a quoted string or a list [\"...\", ...]";
    case CFG__ENUM:
        return "a name";
    case CFG__FLAGS:
        return "a name or a list [NAME, ...]";
    case CFG__MESSAGE_LIST:
        return "a message or a list [{ ... }, ...]";
    }
    return "?";
}

/* ---- values ---- */

static int parse_int(parser *p, const cfg__field *f, const char *path, const token *t, int64_t *out)
{
    char got[256];
    describe(t, got, sizeof got);
    if (t->kind != TK_NUMBER)
        return fail_at(p, t->line, t->col, "expected an integer for %s (%lld..%lld), got %s", path,
                       (long long)f->min, (long long)f->max, got);
    const char *s = t->p, *end = t->p + t->n;
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    unsigned base = 10;
    if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (end - s > 1 && s[0] == '0') {
        return fail_at(p, t->line, t->col,
                       "expected a decimal integer for %s, got %s (leading zeros are not allowed)",
                       path, got);
    }
    if (s == end)
        return fail_at(p, t->line, t->col, "expected an integer for %s (%lld..%lld), got %s", path,
                       (long long)f->min, (long long)f->max, got);
    uint64_t v = 0;
    bool overflow = false;
    for (; s < end; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return fail_at(p, t->line, t->col,
                           "expected an integer for %s (%lld..%lld), got %s (sizes are plain byte "
                           "counts, durations plain milliseconds)",
                           path, (long long)f->min, (long long)f->max, got);
        if (v > (UINT64_MAX - d) / base)
            overflow = true;
        else
            v = v * base + d;
    }
    /* Beyond int64 is beyond every field's range. */
    if (overflow || v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return fail_at(p, t->line, t->col, "%s: %s is out of range; expected %lld..%lld", path, got,
                       (long long)f->min, (long long)f->max);
    int64_t iv = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (iv < f->min || iv > f->max)
        return fail_at(p, t->line, t->col, "%s: %s is out of range; expected %lld..%lld", path, got,
                       (long long)f->min, (long long)f->max);
    *out = iv;
    return 0;
}

static int parse_bool(parser *p, const char *path, const token *t, bool *out)
{
    if (t->kind == TK_IDENT || t->kind == TK_NUMBER) {
        if (tok_is(t, "true") || tok_is(t, "True") || tok_is(t, "t") || tok_is(t, "1")) {
            *out = true;
            return 0;
        }
        if (tok_is(t, "false") || tok_is(t, "False") || tok_is(t, "f") || tok_is(t, "0")) {
            *out = false;
            return 0;
        }
    }
    char got[256];
    describe(t, got, sizeof got);
    return fail_at(p, t->line, t->col, "expected true or false for %s, got %s", path, got);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void append_utf8(tr_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    tr_buf_append(b, u, n);
}

/* Decodes one string literal token (quotes included) onto b. */
static int decode_literal(parser *p, const token *t, tr_buf *b)
{
    const char *s = t->p + 1, *end = t->p + t->n - 1; /* inside the quotes */
    while (s < end) {
        char c = *s;
        int col = t->col + (int)(s - t->p);
        if (c != '\\') {
            tr_buf_append_char(b, c);
            s++;
            continue;
        }
        s++; /* the lexer guarantees a byte after a backslash inside the literal */
        char e = *s++;
        switch (e) {
        case 'a':
            tr_buf_append_char(b, '\a');
            continue;
        case 'b':
            tr_buf_append_char(b, '\b');
            continue;
        case 'f':
            tr_buf_append_char(b, '\f');
            continue;
        case 'n':
            tr_buf_append_char(b, '\n');
            continue;
        case 'r':
            tr_buf_append_char(b, '\r');
            continue;
        case 't':
            tr_buf_append_char(b, '\t');
            continue;
        case 'v':
            tr_buf_append_char(b, '\v');
            continue;
        case '\\':
        case '\'':
        case '"':
        case '?':
            tr_buf_append_char(b, e);
            continue;
        default:
            break;
        }
        if (e >= '0' && e <= '7') {
            unsigned v = (unsigned)(e - '0');
            for (int i = 0; i < 2 && s < end && *s >= '0' && *s <= '7'; i++)
                v = v * 8 + (unsigned)(*s++ - '0');
            if (v > 0xff) return fail_at(p, t->line, col, "octal escape above \\377 in string");
            tr_buf_append_char(b, (char)v);
            continue;
        }
        if (e == 'x' || e == 'X') {
            int h = s < end ? hex_val(*s) : -1;
            if (h < 0) return fail_at(p, t->line, col, "expected hex digits after \\x in string");
            unsigned v = (unsigned)h;
            s++;
            if (s < end && (h = hex_val(*s)) >= 0) {
                v = v * 16 + (unsigned)h;
                s++;
            }
            tr_buf_append_char(b, (char)v);
            continue;
        }
        if (e == 'u' || e == 'U') {
            int digits = e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int i = 0; i < digits; i++) {
                int h = s < end ? hex_val(*s) : -1;
                if (h < 0)
                    return fail_at(p, t->line, col, "expected %d hex digits after \\%c in string",
                                   digits, e);
                cp = cp * 16 + (uint32_t)h;
                s++;
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return fail_at(p, t->line, col, "\\%c escape is not a Unicode scalar value", e);
            append_utf8(b, cp);
            continue;
        }
        char r[16];
        render(r, sizeof r, &e, 1);
        return fail_at(p, t->line, col,
                       "invalid escape '\\%s' in string; expected one of \\n \\t \\r \\\\ \\\" \\' "
                       "\\xHH \\ooo \\uXXXX",
                       r);
    }
    return 0;
}

/* A string value: one literal, or several adjacent ones joined. Returns an owned C string. */
static int parse_string(parser *p, const cfg__field *f, const char *path, const token *first,
                        char **out)
{
    if (first->kind != TK_STRING) {
        char got[256];
        describe(first, got, sizeof got);
        return fail_at(p, first->line, first->col, "expected %s for %s, got %s", "a quoted string",
                       path, got);
    }
    tr_buf b = TR_BUF_INIT;
    tr_buf_reserve(&b, first->n);
    int rc = decode_literal(p, first, &b);
    while (rc == 0) {
        token *t;
        rc = peek(p, &t);
        if (rc < 0 || t->kind != TK_STRING) break;
        token lit;
        rc = next(p, &lit);
        if (rc == 0) rc = decode_literal(p, &lit, &b);
    }
    if (rc == 0 && memchr(b.data, '\0', b.len) != NULL)
        rc = fail_at(p, first->line, first->col, "string for %s contains a NUL byte", path);
    if (rc == 0 && f->check != NULL) {
        const char *want = f->check(b.data);
        if (want != NULL)
            rc = fail_at(p, first->line, first->col, "invalid value for %s: expected %s", path,
                         want);
    }
    if (rc < 0) {
        tr_buf_free(&b);
        return rc;
    }
    *out = tr_buf_take(&b, NULL);
    return 0;
}

static void list_append(void *base, const cfg__field *f, char *s)
{
    char ***items = (char ***)((char *)base + f->offset);
    size_t *n = (size_t *)((char *)base + f->len_offset);
    *items = tr_realloc(*items, (*n + 1) * sizeof **items);
    (*items)[(*n)++] = s;
}

static void list_clear(void *base, const cfg__field *f)
{
    char ***items = (char ***)((char *)base + f->offset);
    size_t *n = (size_t *)((char *)base + f->len_offset);
    for (size_t i = 0; i < *n; i++)
        tr_free((*items)[i]);
    tr_free(*items);
    *items = NULL;
    *n = 0;
}

static int parse_string_list(parser *p, const cfg__field *f, const char *path, void *base)
{
    token t;
    int rc = next(p, &t);
    if (rc < 0) return rc;
    if (!is_punct(&t, '[')) {
        char *s;
        rc = parse_string(p, f, path, &t, &s);
        if (rc < 0) return rc;
        list_append(base, f, s);
        return 0;
    }
    token open = t;
    for (bool first = true;; first = false) {
        rc = next(p, &t);
        if (rc < 0) return rc;
        if (is_punct(&t, ']')) return 0;
        if (!first) {
            if (!is_punct(&t, ',')) {
                char got[256];
                describe(&t, got, sizeof got);
                if (t.kind == TK_EOF)
                    return fail_at(p, t.line, t.col,
                                   "expected ']' to close the list for %s (opened at %d:%d), got "
                                   "end of file",
                                   path, open.line, open.col);
                return fail_at(p, t.line, t.col, "expected ',' or ']' in the list for %s, got %s",
                               path, got);
            }
            rc = next(p, &t);
            if (rc < 0) return rc;
        }
        if (t.kind == TK_EOF)
            return fail_at(p, t.line, t.col,
                           "expected ']' to close the list for %s (opened at %d:%d), got end of "
                           "file",
                           path, open.line, open.col);
        char *s;
        rc = parse_string(p, f, path, &t, &s);
        if (rc < 0) return rc;
        list_append(base, f, s);
    }
}

/* ---- enums ---- */

static int parse_enum(parser *p, const cfg__field *f, const char *path, const token *t,
                      int64_t *out)
{
    if (t->kind == TK_IDENT)
        for (size_t i = 0; i < f->nenums; i++)
            if (tok_is(t, f->enums[i].name)) {
                *out = f->enums[i].value;
                return 0;
            }
    char names[300] = "";
    size_t o = 0;
    for (size_t i = 0; i < f->nenums && o < sizeof names; i++)
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "",
                              f->enums[i].name);
    char got[256];
    describe(t, got, sizeof got);
    return fail_at(p, t->line, t->col, "expected one of %s for %s, got %s", names, path, got);
}

/* One name, or a list [A, B]; each name's value is OR-ed into the uint32_t at the field. */
static int parse_flags(parser *p, const cfg__field *f, const char *path, void *base)
{
    uint32_t *slot = (uint32_t *)((char *)base + f->offset);
    token t;
    int rc = next(p, &t);
    if (rc < 0) return rc;
    int64_t v;
    if (!is_punct(&t, '[')) {
        rc = parse_enum(p, f, path, &t, &v);
        if (rc == 0) *slot |= (uint32_t)v;
        return rc;
    }
    token open = t;
    for (bool first = true;; first = false) {
        rc = next(p, &t);
        if (rc < 0) return rc;
        if (is_punct(&t, ']')) return 0;
        if (!first) {
            if (!is_punct(&t, ',')) {
                char got[256];
                describe(&t, got, sizeof got);
                return fail_at(p, t.line, t.col, "expected ',' or ']' in the list for %s, got %s",
                               path, got);
            }
            rc = next(p, &t);
            if (rc < 0) return rc;
        }
        if (t.kind == TK_EOF)
            return fail_at(p, t.line, t.col,
                           "expected ']' to close the list for %s (opened at %d:%d), got end of "
                           "file",
                           path, open.line, open.col);
        rc = parse_enum(p, f, path, &t, &v);
        if (rc < 0) return rc;
        *slot |= (uint32_t)v;
    }
}

/* ---- messages ---- */

static const cfg__field *find_field(const cfg__schema *schema, const token *t)
{
    for (size_t i = 0; i < schema->nfields; i++)
        if (tok_is(t, schema->fields[i].name)) return &schema->fields[i];
    return NULL;
}

static int unknown_field(parser *p, const cfg__schema *schema, const token *t)
{
    char names[400] = "";
    size_t o = 0;
    for (size_t i = 0; i < schema->nfields && o < sizeof names; i++)
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "",
                              schema->fields[i].name);
    char got[256];
    render(got, sizeof got, t->p, t->n);
    if (schema->name[0] == '\0')
        return fail_at(p, t->line, t->col, "unknown section '%s'; expected one of: %s", got, names);
    return fail_at(p, t->line, t->col, "unknown field '%s' in %s; expected one of: %s", got,
                   schema->name, names);
}

static int parse_body(parser *p, const cfg__schema *schema, void *base, const char *prefix,
                      const token *open);

static void message_list_clear(void *base, const cfg__field *f)
{
    char **items = (char **)((char *)base + f->offset);
    size_t *n = (size_t *)((char *)base + f->len_offset);
    for (size_t i = 0; i < *n; i++)
        cfg__free_fields(f->schema, *items + i * f->elem_size);
    tr_free(*items);
    *items = NULL;
    *n = 0;
}

/* One element `{ ... }` appended to the list at f; open is its '{' or '<'. */
static int parse_message_elem(parser *p, const cfg__field *f, void *base, const char *path,
                              const token *open)
{
    char **items = (char **)((char *)base + f->offset);
    size_t *n = (size_t *)((char *)base + f->len_offset);
    if (*n >= 4096)
        return fail_at(p, open->line, open->col, "too many elements in %s (at most 4096)", path);
    *items = tr_realloc(*items, (*n + 1) * f->elem_size);
    char *elem = *items + *n * f->elem_size;
    memset(elem, 0, f->elem_size);
    (*n)++; /* counted before parsing, so that a failure still frees what it holds */
    char *epath = tr_asprintf("%s[%zu]", path, *n - 1);
    int rc = parse_body(p, f->schema, elem, epath, open);
    tr_free(epath);
    return rc;
}

/* After the field name: `{ ... }`, `: { ... }` or `: [{ ... }, ...]`; first is the token after
 * the name. */
static int parse_message_list(parser *p, const cfg__field *f, void *base, const char *path,
                              token *first)
{
    token t = *first;
    int rc = 0;
    char got[256];
    if (is_punct(&t, ':')) {
        rc = next(p, &t);
        if (rc < 0) return rc;
    }
    if (is_punct(&t, '{') || is_punct(&t, '<')) return parse_message_elem(p, f, base, path, &t);
    if (!is_punct(&t, '[')) {
        describe(&t, got, sizeof got);
        return fail_at(p, t.line, t.col, "expected '{' or '[' after %s (%s), got %s", path,
                       type_name(f), got);
    }
    token open = t;
    for (bool firstel = true;; firstel = false) {
        rc = next(p, &t);
        if (rc < 0) return rc;
        if (is_punct(&t, ']')) return 0;
        if (t.kind == TK_EOF)
            return fail_at(p, t.line, t.col,
                           "expected ']' to close the list for %s (opened at %d:%d), got end of "
                           "file",
                           path, open.line, open.col);
        if (!firstel) {
            if (!is_punct(&t, ',')) {
                describe(&t, got, sizeof got);
                return fail_at(p, t.line, t.col, "expected ',' or ']' in the list for %s, got %s",
                               path, got);
            }
            rc = next(p, &t);
            if (rc < 0) return rc;
        }
        if (t.kind == TK_EOF)
            return fail_at(p, t.line, t.col,
                           "expected ']' to close the list for %s (opened at %d:%d), got end of "
                           "file",
                           path, open.line, open.col);
        if (!is_punct(&t, '{') && !is_punct(&t, '<')) {
            describe(&t, got, sizeof got);
            return fail_at(p, t.line, t.col, "expected '{' for an element of %s, got %s", path,
                           got);
        }
        rc = parse_message_elem(p, f, base, path, &t);
        if (rc < 0) return rc;
    }
}

static int parse_field(parser *p, const cfg__field *f, void *base, const char *prefix)
{
    char *path = tr_asprintf("%s%s%s", prefix, prefix[0] ? "." : "", f->name);
    token t;
    int rc = next(p, &t);
    if (rc < 0) goto out;
    char got[256];
    if (f->type == CFG__MESSAGE_LIST) {
        rc = parse_message_list(p, f, base, path, &t);
        goto out;
    }
    if (f->type == CFG__MESSAGE) {
        if (is_punct(&t, ':')) {
            rc = next(p, &t);
            if (rc < 0) goto out;
        }
        if (!is_punct(&t, '{') && !is_punct(&t, '<')) {
            describe(&t, got, sizeof got);
            rc = fail_at(p, t.line, t.col, "expected '{' after %s (a message), got %s", path, got);
            goto out;
        }
        rc = parse_body(p, f->schema, (char *)base + f->offset, path, &t);
        goto out;
    }
    if (!is_punct(&t, ':')) {
        describe(&t, got, sizeof got);
        rc = fail_at(p, t.line, t.col, "expected ':' after %s (%s), got %s", path, type_name(f),
                     got);
        goto out;
    }
    void *slot = (char *)base + f->offset;
    if (f->type == CFG__STRING_LIST) {
        rc = parse_string_list(p, f, path, base);
        goto out;
    }
    if (f->type == CFG__FLAGS) {
        rc = parse_flags(p, f, path, base);
        goto out;
    }
    rc = next(p, &t);
    if (rc < 0) goto out;
    int64_t v;
    switch (f->type) {
    case CFG__INT:
        rc = parse_int(p, f, path, &t, &v);
        if (rc == 0) *(int *)slot = (int)v;
        break;
    case CFG__UINT32:
        rc = parse_int(p, f, path, &t, &v);
        if (rc == 0) *(uint32_t *)slot = (uint32_t)v;
        break;
    case CFG__UINT64:
        rc = parse_int(p, f, path, &t, &v);
        if (rc == 0) *(uint64_t *)slot = (uint64_t)v;
        break;
    case CFG__BOOL:
        rc = parse_bool(p, path, &t, (bool *)slot);
        break;
    case CFG__STRING: {
        char *s;
        rc = parse_string(p, f, path, &t, &s);
        if (rc == 0) {
            tr_free(*(char **)slot);
            *(char **)slot = s;
        }
        break;
    }
    case CFG__ENUM:
        rc = parse_enum(p, f, path, &t, &v);
        if (rc == 0) *(int *)slot = (int)v;
        break;
    case CFG__MESSAGE:
    case CFG__STRING_LIST:
    case CFG__FLAGS:
    case CFG__MESSAGE_LIST:
        assert(0 && "handled above");
        break;
    }
out:
    tr_free(path);
    return rc;
}

/* Fields until the token that closes `open` ('}' or '>'), or until end of file at the top level
 * (open == NULL). */
static int parse_body(parser *p, const cfg__schema *schema, void *base, const char *prefix,
                      const token *open)
{
    char close = open == NULL ? '\0' : (open->p[0] == '<' ? '>' : '}');
    text_pos *seen = tr_calloc(schema->nfields ? schema->nfields : 1, sizeof *seen);
    int rc = 0;
    for (;;) {
        token t;
        rc = next(p, &t);
        if (rc < 0) break;
        if (t.kind == TK_EOF) {
            if (open != NULL)
                rc = fail_at(p, t.line, t.col,
                             "expected '%c' to close %s (opened at %d:%d), got end of file", close,
                             prefix, open->line, open->col);
            break;
        }
        if (close != '\0' && is_punct(&t, close)) break;
        if (t.kind != TK_IDENT) {
            char got[256];
            describe(&t, got, sizeof got);
            if (close != '\0')
                rc = fail_at(p, t.line, t.col, "expected a field name or '%c' in %s, got %s", close,
                             prefix, got);
            else
                rc = fail_at(p, t.line, t.col, "expected a field name, got %s", got);
            break;
        }
        const cfg__field *f = find_field(schema, &t);
        if (f == NULL) {
            rc = unknown_field(p, schema, &t);
            break;
        }
        text_pos *first = &seen[f - schema->fields];
        bool repeated = f->type == CFG__STRING_LIST || f->type == CFG__FLAGS ||
                        f->type == CFG__MESSAGE_LIST;
        if (first->line != 0 && !repeated) {
            rc = fail_at(p, t.line, t.col, "duplicate field %s%s%s (first set at %d:%d)", prefix,
                         prefix[0] ? "." : "", f->name, first->line, first->col);
            break;
        }
        if (first->line == 0 && f->type == CFG__STRING_LIST) list_clear(base, f);
        if (first->line == 0 && f->type == CFG__FLAGS) *(uint32_t *)((char *)base + f->offset) = 0;
        if (first->line == 0 && f->type == CFG__MESSAGE_LIST) message_list_clear(base, f);
        if (first->line == 0) *first = (text_pos){t.line, t.col};
        rc = parse_field(p, f, base, prefix);
        if (rc < 0) break;
        token *sep;
        rc = peek(p, &sep);
        if (rc < 0) break;
        if (is_punct(sep, ',') || is_punct(sep, ';')) p->have_ahead = false;
    }
    tr_free(seen);
    return rc;
}

int cfg__parse_text(const cfg__schema *schema, void *base, const char *name, const char *text,
                    size_t len, tr_error *err)
{
    parser p = {.name = name, .text = text, .len = len, .line = 1, .err = err};
    return parse_body(&p, schema, base, "", NULL);
}

void cfg__free_fields(const cfg__schema *schema, void *base)
{
    for (size_t i = 0; i < schema->nfields; i++) {
        const cfg__field *f = &schema->fields[i];
        void *slot = (char *)base + f->offset;
        switch (f->type) {
        case CFG__STRING:
            tr_free(*(char **)slot);
            *(char **)slot = NULL;
            break;
        case CFG__STRING_LIST:
            list_clear(base, f);
            break;
        case CFG__MESSAGE:
            cfg__free_fields(f->schema, slot);
            break;
        case CFG__MESSAGE_LIST:
            message_list_clear(base, f);
            break;
        case CFG__INT:
        case CFG__UINT32:
        case CFG__UINT64:
        case CFG__BOOL:
        case CFG__ENUM:
        case CFG__FLAGS:
            break;
        }
    }
}
