/* records/value.c: values between a request's text, SQLite and JSON: record ids and filter values
 * converted by their column's type, base64 for BLOBs, and rows written as JSON objects. */
#include "records/records_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void rec__b64url_encode(const void *data, size_t n, tr_buf *out)
{
    const uint8_t *p = data;
    tr_buf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
        tr_buf_append(out, q, 4);
    }
    if (i + 1 == n) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], '=', '='};
        tr_buf_append(out, q, 4);
    } else if (i + 2 == n) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], '='};
        tr_buf_append(out, q, 4);
    }
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

bool rec__b64url_decode(const char *s, size_t n, uint8_t *out, size_t *out_len)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1) return false;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0) return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return false; /* not canonical */
    *out_len = o;
    return true;
}

/* 8-4-4-4-12 hex digits into 16 bytes. */
static bool parse_uuid(const char *s, size_t n, uint8_t out[16])
{
    if (n != 36) return false;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
            i++;
            continue;
        }
        int hi = -1, lo = -1;
        char a = s[i], b = s[i + 1];
        if (a >= '0' && a <= '9')
            hi = a - '0';
        else if (a >= 'a' && a <= 'f')
            hi = a - 'a' + 10;
        else if (a >= 'A' && a <= 'F')
            hi = a - 'A' + 10;
        if (b >= '0' && b <= '9')
            lo = b - '0';
        else if (b >= 'a' && b <= 'f')
            lo = b - 'a' + 10;
        else if (b >= 'A' && b <= 'F')
            lo = b - 'A' + 10;
        if (hi < 0 || lo < 0) return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9')) return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0') return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-' || buf[0] == '.')) return false;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool is_word(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

bool rec__value_from_text(const rec_column *c, const char *s, size_t n, tr_arena *a, rec_value *out)
{
    memset(out, 0, sizeof *out);
    switch (c->type) {
    case REC_T_INTEGER:
        out->type = SQLITE_INTEGER;
        if (is_word(s, n, "true")) {
            out->i = 1;
            return true;
        }
        if (is_word(s, n, "false")) {
            out->i = 0;
            return true;
        }
        return parse_i64(s, n, &out->i);
    case REC_T_REAL:
        out->type = SQLITE_FLOAT;
        return parse_f64(s, n, &out->d);
    case REC_T_TEXT:
        out->type = SQLITE_TEXT;
        out->p = s;
        out->n = n;
        return true;
    case REC_T_BLOB: {
        uint8_t *buf = tr_arena_alloc(a, n * 3 / 4 + 3 > 16 ? n * 3 / 4 + 3 : 16);
        out->type = SQLITE_BLOB;
        out->p = (const char *)buf;
        if (parse_uuid(s, n, buf)) {
            out->n = 16;
            return true;
        }
        return rec__b64url_decode(s, n, buf, &out->n);
    }
    case REC_T_ANY:
        if (parse_i64(s, n, &out->i)) {
            out->type = SQLITE_INTEGER;
            return true;
        }
        if (parse_f64(s, n, &out->d)) {
            out->type = SQLITE_FLOAT;
            return true;
        }
        out->type = SQLITE_TEXT;
        out->p = s;
        out->n = n;
        return true;
    }
    return false;
}

int rec__bind(sqlite3_stmt *st, int idx, const rec_value *v)
{
    switch (v->type) {
    case SQLITE_INTEGER:
        return sqlite3_bind_int64(st, idx, v->i);
    case SQLITE_FLOAT:
        return sqlite3_bind_double(st, idx, v->d);
    case SQLITE_TEXT:
        return sqlite3_bind_text64(st, idx, v->p ? v->p : "", v->n, SQLITE_STATIC, SQLITE_UTF8);
    case SQLITE_BLOB:
        return sqlite3_bind_blob64(st, idx, v->p ? v->p : "", v->n, SQLITE_STATIC);
    default:
        return sqlite3_bind_null(st, idx);
    }
}

int rec__bind_adb(adb_stmt *st, int idx, const rec_value *v)
{
    /* one node: the statement is SQLite's, bound without a copy */
    if (!adb_cluster_mode()) return rec__bind((sqlite3_stmt *)(void *)st, idx, v);
    switch (v->type) {
    case SQLITE_INTEGER:
        return adb_bind_int64(st, idx, v->i);
    case SQLITE_FLOAT:
        return adb_bind_double(st, idx, v->d);
    case SQLITE_TEXT:
        if (v->n > INT32_MAX) return SQLITE_TOOBIG;
        return adb_bind_text(st, idx, v->p ? v->p : "", (int)v->n);
    case SQLITE_BLOB:
        if (v->n > INT32_MAX) return SQLITE_TOOBIG;
        return adb_bind_blob(st, idx, v->p ? v->p : "", (int)v->n);
    default:
        return adb_bind_null(st, idx);
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void rec__json_str(tr_buf *b, const char *s, size_t n)
{
    tr_buf_reserve(b, n + 2);
    tr_buf_append_char(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (l > 0) {
            run += l;
            i += l;
            continue;
        }
        tr_buf_append(b, p + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tr_buf_append(b, e, 2);
        } else if (c == '\n') {
            tr_buf_append_str(b, "\\n");
        } else if (c == '\r') {
            tr_buf_append_str(b, "\\r");
        } else if (c == '\t') {
            tr_buf_append_str(b, "\\t");
        } else if (c < 0x20) {
            tr_buf_printf(b, "\\u%04x", c);
        } else {
            tr_buf_append_str(b, "\xef\xbf\xbd");
        }
        i++;
    }
    tr_buf_append(b, p + n - run, run);
    tr_buf_append_char(b, '"');
}

void rec__json_column(tr_buf *b, adb_stmt *st, int i)
{
    switch (adb_column_type(st, i)) {
    case SQLITE_INTEGER:
        tr_buf_printf(b, "%lld", (long long)adb_column_int64(st, i));
        return;
    case SQLITE_FLOAT: {
        double d = adb_column_double(st, i);
        if (!isfinite(d)) {
            tr_buf_append_str(b, "null");
            return;
        }
        char tmp[40];
        if (d == floor(d) && fabs(d) < 1e16) {
            /* a REAL stays a float in JSON: 3 -> 3.0 */
            snprintf(tmp, sizeof tmp, "%.1f", d);
        } else {
            /* the shortest form that reads back the same, as JSON writers print doubles */
            snprintf(tmp, sizeof tmp, "%.17g", d);
            for (int prec = 1; prec < 17; prec++) {
                char t2[40];
                snprintf(t2, sizeof t2, "%.*g", prec, d);
                if (strtod(t2, NULL) == d) {
                    memcpy(tmp, t2, sizeof t2);
                    break;
                }
            }
        }
        tr_buf_append_str(b, tmp);
        return;
    }
    case SQLITE_TEXT:
        rec__json_str(b, (const char *)adb_column_text(st, i), (size_t)adb_column_bytes(st, i));
        return;
    case SQLITE_BLOB: {
        tr_buf_append_char(b, '"');
        rec__b64url_encode(adb_column_blob(st, i), (size_t)adb_column_bytes(st, i), b);
        tr_buf_append_char(b, '"');
        return;
    }
    default:
        tr_buf_append_str(b, "null");
    }
}

void rec__json_row(tr_buf *b, const rec_api *api, adb_stmt *st, int first, const bool *wanted)
{
    tr_buf_append_char(b, '{');
    int col = first;
    bool any = false;
    for (size_t i = 0; i < api->ncols; i++, col++) {
        const rec_column *c = &api->cols[i];
        if (c->hidden) continue;
        if (any) tr_buf_append_char(b, ',');
        any = true;
        rec__json_str(b, c->name, strlen(c->name));
        tr_buf_append_char(b, ':');
        int k = -1;
        for (size_t e = 0; e < api->nexpand; e++)
            if (api->expand[e].col == (int)i) k = (int)e;
        if (k < 0 || adb_column_type(st, col) == SQLITE_NULL) {
            rec__json_column(b, st, col);
            continue;
        }
        /* an expandable foreign key: {"id": key} or, expanded, {"id": key, "data": {...}} */
        tr_buf_append_str(b, "{\"id\":");
        rec__json_column(b, st, col);
        if (wanted != NULL && wanted[k]) {
            /* the foreign columns follow the API's columns, in expand order */
            int fcol = first + (int)api->ncols;
            for (int e = 0; e < k; e++)
                if (wanted[e]) fcol += (int)api->expand[e].ncols;
            const rec_foreign *f = &api->expand[k];
            tr_buf_append_str(b, ",\"data\":{");
            for (size_t j = 0; j < f->ncols; j++) {
                if (j) tr_buf_append_char(b, ',');
                rec__json_str(b, f->cols[j].name, strlen(f->cols[j].name));
                tr_buf_append_char(b, ':');
                rec__json_column(b, st, fcol + (int)j);
            }
            tr_buf_append_char(b, '}');
        }
        tr_buf_append_char(b, '}');
    }
    tr_buf_append_char(b, '}');
}

void rec__json_value(tr_buf *b, const rec_value *v)
{
    switch (v->type) {
    case SQLITE_INTEGER:
        tr_buf_printf(b, "%lld", (long long)v->i);
        return;
    case SQLITE_FLOAT: {
        char tmp[40];
        if (v->d == (double)(long long)v->d && v->d < 1e16 && v->d > -1e16)
            snprintf(tmp, sizeof tmp, "%.1f", v->d);
        else
            snprintf(tmp, sizeof tmp, "%.17g", v->d);
        tr_buf_append_str(b, tmp);
        return;
    }
    case SQLITE_TEXT:
        rec__json_str(b, v->p, v->n);
        return;
    case SQLITE_BLOB:
        tr_buf_append_char(b, '"');
        rec__b64url_encode(v->p, v->n, b);
        tr_buf_append_char(b, '"');
        return;
    default:
        tr_buf_append_str(b, "null");
    }
}
