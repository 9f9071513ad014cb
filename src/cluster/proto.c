/* cluster/proto.c: dqlite's wire protocol (version 1): encoding requests, decoding responses.
 *
 * DESIGN: pure functions over bytes, no I/O, so that the decoders can be fuzzed alone
 * (tests/fuzz/fuzz_dqlite.c). Everything is little-endian and word (8-byte) aligned. A response
 * comes from the network and is decoded as hostile: each field is checked against the bytes left,
 * counts are compared with what the body could hold before anything is allocated for them, and a
 * text must end in a NUL inside the body. Row values point into the body they came in (texts
 * already end in a NUL there), so a result is its bodies plus an array of values. */
#include "cluster/cluster.h"

#include <assert.h>
#include <string.h>

const char *dq_role_name(uint64_t role)
{
    switch (role) {
    case DQ_ROLE_VOTER:
        return "voter";
    case DQ_ROLE_STANDBY:
        return "standby";
    case DQ_ROLE_SPARE:
        return "spare";
    default:
        return "unknown";
    }
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void pad_to_word(tr_buf *b)
{
    static const char zeros[8];
    size_t rem = b->len % 8;
    if (rem) tr_buf_append(b, zeros, 8 - rem);
}

void dq_msg_begin(tr_buf *b, int type, size_t *start)
{
    /* Requests are built from offset 0 or after whole messages, so the body stays word-aligned
     * relative to its header. */
    assert(b->len % 8 == 0);
    *start = b->len;
    uint8_t hdr[8] = {0, 0, 0, 0, (uint8_t)type, 0, 0, 0};
    tr_buf_append(b, hdr, sizeof hdr);
}

void dq_put_u64(tr_buf *b, uint64_t v)
{
    uint8_t w[8];
    put_le64(w, v);
    tr_buf_append(b, w, sizeof w);
}

void dq_put_u32_pair(tr_buf *b, uint32_t a, uint32_t c)
{
    dq_put_u64(b, (uint64_t)a | (uint64_t)c << 32);
}

void dq_put_text(tr_buf *b, const char *s)
{
    tr_buf_append(b, s, strlen(s) + 1);
    pad_to_word(b);
}

int dq_put_params(tr_buf *b, const dq_value *v, size_t n, tr_error *err)
{
    if (n > DQ_MAX_PARAMS)
        return tr_error_set(err, TR_ELIMIT, "%zu parameters; dqlite binds at most %d", n,
                            DQ_MAX_PARAMS);
    /* The header: the count, then one type byte per value, padded to a word. */
    tr_buf_append_char(b, (char)n);
    for (size_t i = 0; i < n; i++)
        tr_buf_append_char(b, (char)v[i].type);
    pad_to_word(b);
    for (size_t i = 0; i < n; i++) {
        switch (v[i].type) {
        case DQ_INTEGER:
            dq_put_u64(b, (uint64_t)v[i].i);
            break;
        case DQ_FLOAT: {
            uint64_t bits;
            memcpy(&bits, &v[i].f, sizeof bits);
            dq_put_u64(b, bits);
            break;
        }
        case DQ_TEXT:
            if (memchr(v[i].p, '\0', v[i].n) != NULL)
                return tr_error_set(err, TR_EINVAL,
                                    "parameter %zu: a text with a NUL byte cannot be sent to "
                                    "dqlite (bind it as a blob)",
                                    i + 1);
            tr_buf_append(b, v[i].p, v[i].n);
            tr_buf_append_char(b, '\0');
            pad_to_word(b);
            break;
        case DQ_BLOB:
            dq_put_u64(b, v[i].n);
            tr_buf_append(b, v[i].p, v[i].n);
            pad_to_word(b);
            break;
        case DQ_NULL:
            dq_put_u64(b, 0);
            break;
        default:
            return tr_error_set(err, TR_EINVAL, "parameter %zu: unknown type %d", i + 1, v[i].type);
        }
    }
    return 0;
}

void dq_msg_end(tr_buf *b, size_t start)
{
    assert(b->len >= start + 8 && (b->len - start) % 8 == 0);
    uint64_t words = (b->len - start - 8) / 8;
    assert(words <= UINT32_MAX);
    uint8_t *h = (uint8_t *)b->data + start;
    for (int i = 0; i < 4; i++)
        h[i] = (uint8_t)(words >> (8 * i));
}

int dq_header_parse(const uint8_t hdr[8], uint64_t max_body, size_t *body_len, int *type,
                    tr_error *err)
{
    uint64_t words =
        (uint64_t)hdr[0] | (uint64_t)hdr[1] << 8 | (uint64_t)hdr[2] << 16 | (uint64_t)hdr[3] << 24;
    if (words * 8 > max_body)
        return tr_error_set(err, TR_ELIMIT, "dqlite answer of %llu bytes is over the limit of %llu",
                            (unsigned long long)(words * 8), (unsigned long long)max_body);
    *body_len = (size_t)(words * 8);
    *type = hdr[4];
    return 0;
}

int dq_get_u64(dq_cursor *c, uint64_t *out)
{
    if (c->n < 8) return TR_EPARSE;
    *out = get_le64(c->p);
    c->p += 8;
    c->n -= 8;
    return 0;
}

int dq_get_u32(dq_cursor *c, uint32_t *out)
{
    if (c->n < 4) return TR_EPARSE;
    *out = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 |
           (uint32_t)c->p[3] << 24;
    c->p += 4;
    c->n -= 4;
    return 0;
}

int dq_get_text(dq_cursor *c, const char **s, size_t *len)
{
    const uint8_t *nul = memchr(c->p, '\0', c->n);
    if (nul == NULL) return TR_EPARSE;
    size_t n = (size_t)(nul - c->p);
    size_t padded = (n + 1 + 7) / 8 * 8;
    if (padded > c->n) return TR_EPARSE;
    *s = (const char *)c->p;
    if (len) *len = n;
    c->p += padded;
    c->n -= padded;
    return 0;
}

int dq_parse_failure(const uint8_t *body, size_t len, uint64_t *code, const char **msg)
{
    dq_cursor c = {body, len};
    if (dq_get_u64(&c, code) < 0) return TR_EPARSE;
    /* A message is optional for the decoder's purpose: a code alone still says what failed. */
    if (dq_get_text(&c, msg, NULL) < 0) *msg = "";
    return 0;
}

void dq_nodes_free(dq_node_info *nodes, size_t n)
{
    if (nodes == NULL) return;
    for (size_t i = 0; i < n; i++)
        tr_free(nodes[i].address);
    tr_free(nodes);
}

int dq_parse_servers(const uint8_t *body, size_t len, dq_node_info **out, size_t *n, tr_error *err)
{
    dq_cursor c = {body, len};
    uint64_t count;
    if (dq_get_u64(&c, &count) < 0)
        return tr_error_set(err, TR_EPARSE, "dqlite cluster answer: no member count");
    /* A member takes three words at least (id, a text, the role). */
    if (count > c.n / 24)
        return tr_error_set(err, TR_EPARSE, "dqlite cluster answer: %llu members in %zu bytes",
                            (unsigned long long)count, c.n);
    dq_node_info *nodes = tr_calloc(count ? count : 1, sizeof *nodes);
    for (size_t i = 0; i < count; i++) {
        const char *addr;
        size_t alen;
        if (dq_get_u64(&c, &nodes[i].id) < 0 || dq_get_text(&c, &addr, &alen) < 0 ||
            dq_get_u64(&c, &nodes[i].role) < 0) {
            dq_nodes_free(nodes, i);
            return tr_error_set(err, TR_EPARSE, "dqlite cluster answer: member %zu is cut short",
                                i + 1);
        }
        nodes[i].address = tr_strndup(addr, alen);
    }
    *out = nodes;
    *n = (size_t)count;
    return 0;
}

void dq_rows_free(dq_rows *rows)
{
    for (unsigned i = 0; i < rows->ncols && rows->names; i++)
        tr_free(rows->names[i]);
    tr_free(rows->names);
    tr_free(rows->vals);
    for (size_t i = 0; i < rows->nbodies; i++)
        tr_free(rows->bodies[i]);
    tr_free(rows->bodies);
    *rows = (dq_rows)DQ_ROWS_INIT;
}

/* dqlite's value types beyond SQLite's, in rows of columns declared as dates or booleans. */
enum { DQ_WIRE_UNIXTIME = 9, DQ_WIRE_ISO8601 = 10, DQ_WIRE_BOOLEAN = 11 };

static int decode_value(dq_cursor *c, int type, dq_value *v)
{
    uint64_t w;
    memset(v, 0, sizeof *v);
    switch (type) {
    case DQ_INTEGER:
    case DQ_WIRE_UNIXTIME:
    case DQ_WIRE_BOOLEAN:
        if (dq_get_u64(c, &w) < 0) return TR_EPARSE;
        v->type = DQ_INTEGER;
        v->i = (int64_t)w;
        return 0;
    case DQ_FLOAT:
        if (dq_get_u64(c, &w) < 0) return TR_EPARSE;
        v->type = DQ_FLOAT;
        memcpy(&v->f, &w, sizeof v->f);
        return 0;
    case DQ_TEXT:
    case DQ_WIRE_ISO8601:
        v->type = DQ_TEXT;
        return dq_get_text(c, &v->p, &v->n);
    case DQ_BLOB: {
        if (dq_get_u64(c, &w) < 0) return TR_EPARSE;
        if (w > c->n) return TR_EPARSE;
        size_t padded = ((size_t)w + 7) / 8 * 8;
        if (padded > c->n) return TR_EPARSE;
        v->type = DQ_BLOB;
        v->p = (const char *)c->p;
        v->n = (size_t)w;
        c->p += padded;
        c->n -= padded;
        return 0;
    }
    case DQ_NULL:
        if (dq_get_u64(c, &w) < 0) return TR_EPARSE;
        v->type = DQ_NULL;
        return 0;
    default:
        return TR_EPARSE;
    }
}

#define ROWS_DONE 0xffffffffffffffffULL
#define ROWS_PART 0xeeeeeeeeeeeeeeeeULL

static int parse_rows(dq_rows *rows, const uint8_t *body, size_t len, size_t max_values, bool *more,
                      tr_error *err)
{
    dq_cursor c = {body, len};
    uint64_t ncols;
    if (dq_get_u64(&c, &ncols) < 0)
        return tr_error_set(err, TR_EPARSE, "dqlite rows: no column count");
    /* A column's name takes a word at least. */
    if (ncols == 0 || ncols > c.n / 8 || ncols > UINT32_MAX)
        return tr_error_set(err, TR_EPARSE, "dqlite rows: %llu columns in %zu bytes",
                            (unsigned long long)ncols, c.n);
    bool first = rows->names == NULL;
    if (!first && ncols != rows->ncols)
        return tr_error_set(err, TR_EPARSE, "dqlite rows: a batch of %llu columns after %u",
                            (unsigned long long)ncols, rows->ncols);
    if (first) {
        rows->names = tr_calloc((size_t)ncols, sizeof *rows->names);
        rows->ncols = (unsigned)ncols;
    }
    for (unsigned i = 0; i < ncols; i++) {
        const char *name;
        size_t nlen;
        if (dq_get_text(&c, &name, &nlen) < 0)
            return tr_error_set(err, TR_EPARSE, "dqlite rows: column %u's name is cut short",
                                i + 1);
        if (first) rows->names[i] = tr_strndup(name, nlen);
    }
    /* Rows until the end marker. A row's header has a 4-bit type per value, padded to a word;
     * the markers are words of types 0xe and 0xf, which no row can start with. */
    size_t hdr_len = ((size_t)ncols + 1) / 2;
    hdr_len = (hdr_len + 7) / 8 * 8;
    for (;;) {
        if (c.n >= 8) {
            uint64_t w = get_le64(c.p);
            if (w == ROWS_DONE || w == ROWS_PART) {
                *more = w == ROWS_PART;
                c.p += 8;
                c.n -= 8;
                return 0;
            }
        }
        if (c.n < hdr_len)
            return tr_error_set(err, TR_EPARSE, "dqlite rows: no end marker after row %zu",
                                rows->nrows);
        const uint8_t *types = c.p;
        c.p += hdr_len;
        c.n -= hdr_len;
        if (rows->nrows * rows->ncols + ncols > max_values)
            return tr_error_set(err, TR_ELIMIT, "dqlite rows: more than %zu values", max_values);
        if (rows->nrows * rows->ncols + ncols > rows->vals_cap) {
            size_t cap = rows->vals_cap ? rows->vals_cap * 2 : 64;
            while (cap < rows->nrows * rows->ncols + ncols)
                cap *= 2;
            rows->vals = tr_realloc(rows->vals, cap * sizeof *rows->vals);
            rows->vals_cap = cap;
        }
        dq_value *row = rows->vals + rows->nrows * rows->ncols;
        for (unsigned i = 0; i < ncols; i++) {
            int type = (types[i / 2] >> (i % 2 ? 4 : 0)) & 0x0f;
            if (decode_value(&c, type, &row[i]) < 0)
                return tr_error_set(err, TR_EPARSE,
                                    "dqlite rows: row %zu, column %u: bad value "
                                    "of type %d",
                                    rows->nrows + 1, i + 1, type);
        }
        rows->nrows++;
    }
}

int dq_rows_add_body(dq_rows *rows, char *body, size_t len, size_t max_values, bool *more,
                     tr_error *err)
{
    /* The body is kept before it is decoded: a failure frees it with the rest. */
    if (rows->nbodies == rows->bodies_cap) {
        rows->bodies_cap = rows->bodies_cap ? rows->bodies_cap * 2 : 4;
        rows->bodies = tr_realloc(rows->bodies, rows->bodies_cap * sizeof *rows->bodies);
    }
    rows->bodies[rows->nbodies++] = body;
    rows->bytes += len;
    size_t nrows_before = rows->nrows;
    *more = false;
    int rc = parse_rows(rows, (const uint8_t *)body, len, max_values, more, err);
    if (rc < 0) rows->nrows = nrows_before;
    return rc;
}
