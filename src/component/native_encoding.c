/* component/native_encoding.c: the byte encodings compiled components exchange with the host
 * (docs/guest-abi.md): little-endian integers, length-prefixed strings, a request as the guest
 * receives it (with its caller), SQL parameters and result values.
 *
 * DESIGN: readers never trust the bytes: a read past the end or a count of items that cannot fit
 * in the bytes left marks the reader bad and yields zeros, so a malformed encoding is found once,
 * at the end, and never allocated for. */
#include "component/native_internal.h"

#include <string.h>

#include "auth/auth.h"

void comp__put_u32(tr_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    tr_buf_append(b, x, 4);
}

void comp__put_u64(tr_buf *b, uint64_t v)
{
    comp__put_u32(b, (uint32_t)v);
    comp__put_u32(b, (uint32_t)(v >> 32));
}

void comp__put_str(tr_buf *b, const char *s, size_t n)
{
    comp__put_u32(b, (uint32_t)n);
    tr_buf_append(b, s, n);
}

uint32_t comp__get_u32(comp_reader *r)
{
    if (r->len - r->pos < 4) {
        r->bad = true;
        r->pos = r->len;
        return 0;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(comp_reader *r)
{
    uint64_t lo = comp__get_u32(r);
    return lo | (uint64_t)comp__get_u32(r) << 32;
}

/* A str: (ptr, len) into r's bytes. */
const char *comp__get_str(comp_reader *r, size_t *len)
{
    uint32_t n = comp__get_u32(r);
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        r->pos = r->len;
        *len = 0;
        return "";
    }
    const char *s = (const char *)r->p + r->pos;
    r->pos += n;
    *len = n;
    return s;
}

/* A count of items each taking at least min_bytes: more than the bytes left is malformed (and
 * never allocated for). */
uint32_t comp__get_count(comp_reader *r, size_t min_bytes)
{
    uint32_t n = comp__get_u32(r);
    if (!r->bad && (uint64_t)n * min_bytes > r->len - r->pos) {
        r->bad = true;
        r->pos = r->len;
        return 0;
    }
    return r->bad ? 0 : n;
}

void comp__encode_request(const http_request *req, const auth_caller *caller, tr_buf *b)
{
    comp__put_str(b, req->method.ptr, req->method.len);
    comp__put_str(b, req->target.ptr, req->target.len);
    comp__put_str(b, req->path.ptr, req->path.len);
    comp__put_str(b, req->query.ptr, req->query.len);
    comp__put_u32(b, (uint32_t)req->nparams);
    for (size_t i = 0; i < req->nparams; i++) {
        comp__put_str(b, req->params[i].name.ptr, req->params[i].name.len);
        /* percent-decoded, as JS handlers get them */
        const char *s = req->params[i].value.ptr;
        size_t n = req->params[i].value.len, at = b->len;
        comp__put_u32(b, 0);
        size_t out = 0;
        for (size_t k = 0; k < n; k++) {
            int hi = -1, lo = -1;
            if (s[k] == '%' && k + 2 < n) {
                char c1 = s[k + 1], c2 = s[k + 2];
                hi = c1 >= '0' && c1 <= '9' ? c1 - '0'
                     : (c1 | 32) >= 'a' && (c1 | 32) <= 'f' ? (c1 | 32) - 'a' + 10
                                                           : -1;
                lo = c2 >= '0' && c2 <= '9' ? c2 - '0'
                     : (c2 | 32) >= 'a' && (c2 | 32) <= 'f' ? (c2 | 32) - 'a' + 10
                                                           : -1;
            }
            if (hi >= 0 && lo >= 0) {
                tr_buf_append_char(b, (char)(hi << 4 | lo));
                k += 2;
            } else {
                tr_buf_append_char(b, s[k]);
            }
            out++;
        }
        unsigned char *lp = (unsigned char *)b->data + at;
        lp[0] = (unsigned char)out;
        lp[1] = (unsigned char)(out >> 8);
        lp[2] = (unsigned char)(out >> 16);
        lp[3] = (unsigned char)(out >> 24);
    }
    comp__put_u32(b, (uint32_t)req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        comp__put_u32(b, (uint32_t)h->name.len);
        for (size_t k = 0; k < h->name.len; k++) {
            char c = h->name.ptr[k];
            tr_buf_append_char(b, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
        }
        comp__put_str(b, h->value.ptr, h->value.len);
    }
    comp__put_str(b, req->body.len ? req->body.ptr : "", req->body.len);
    /* The caller last, behind a tag byte, so that an anonymous request costs one byte and a
     * guest built for ABI 1 (which stops after the body) still reads the rest. */
    if (caller->signed_in) {
        const auth_claims *c = &caller->claims;
        tr_buf_append_char(b, 1);
        comp__put_str(b, c->sub, strlen(c->sub));
        comp__put_str(b, c->email, strlen(c->email));
        comp__put_str(b, c->csrf_token, strlen(c->csrf_token));
    } else if (caller->error != NULL) {
        tr_buf_append_char(b, 2);
        comp__put_u32(b, (uint32_t)caller->error_status);
        comp__put_str(b, caller->error, strlen(caller->error));
    } else {
        tr_buf_append_char(b, 0);
    }
}

/* Rows (guest_sql_run_vals' shape) or a count into the guest's encoding. */
void comp__put_val(tr_buf *b, const jsg_val *v)
{
    switch (v->type) {
    case JSG_BIGINT:
        tr_buf_append_char(b, 1);
        comp__put_u64(b, (uint64_t)v->u.big);
        break;
    case JSG_NUMBER: {
        uint64_t bits;
        memcpy(&bits, &v->u.num, 8);
        tr_buf_append_char(b, 2);
        comp__put_u64(b, bits);
        break;
    }
    case JSG_STRING:
        tr_buf_append_char(b, 3);
        comp__put_str(b, v->u.str.ptr, v->u.str.len);
        break;
    case JSG_BYTES:
        tr_buf_append_char(b, 4);
        comp__put_str(b, v->u.str.ptr, v->u.str.len);
        break;
    default:
        tr_buf_append_char(b, 0);
        break;
    }
}

/* SQLite's most parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER's default). */
#define NATIVE_MAX_SQL_PARAMS 32766

/* Decodes SQL parameters into an array value in a; false when malformed. */
bool comp__get_params(comp_reader *r, tr_arena *a, jsg_val *out)
{
    if (r->len == 0) {
        *out = jsg_array(NULL, 0);
        return true;
    }
    uint32_t n = comp__get_count(r, 1);
    if (n > NATIVE_MAX_SQL_PARAMS) return false; /* SQLite binds no more; never allocated for */
    jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * sizeof *items);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        if (r->pos >= r->len) {
            r->bad = true;
            break;
        }
        unsigned char tag = r->p[r->pos++];
        size_t len;
        const char *s;
        switch (tag) {
        case 0:
            items[i] = jsg_null();
            break;
        case 1:
            items[i] = jsg_bigint((int64_t)get_u64(r));
            break;
        case 2: {
            uint64_t bits = get_u64(r);
            double d;
            memcpy(&d, &bits, 8);
            items[i] = jsg_number(d);
            break;
        }
        case 3:
            s = comp__get_str(r, &len);
            items[i] = jsg_string(s, len);
            break;
        case 4:
            s = comp__get_str(r, &len);
            items[i] = jsg_bytes(s, len);
            break;
        default:
            r->bad = true;
        }
    }
    *out = jsg_array(items, n);
    return !r->bad && r->pos == r->len;
}
