/* auth/fields.c: the flat documents the auth API reads (a JSON object of scalars, a form body,
 * a token's claims), JSON string output, base64url and the random parts of tokens.
 *
 * DESIGN: an auth request carries a handful of short strings, so the readers decode into one
 * fixed buffer of the caller's (auth_fields) and allocate nothing; anything nested, repeated or
 * oversized is a parse error, which the API answers 400. */
#include "auth/auth_internal.h"

#include <sodium.h>
#include <string.h>

const auth_field *auth__field(const auth_fields *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->f[i].key, key) == 0) return &f->f[i];
    return NULL;
}

const char *auth__field_str(const auth_fields *f, const char *key)
{
    const auth_field *v = auth__field(f, key);
    if (v == NULL || v->type != AUTH_V_STRING || strlen(v->val) != v->val_len) return NULL;
    return v->val;
}

static char *take(auth_fields *f, size_t n)
{
    if (n > sizeof f->buf - f->used) return NULL;
    char *p = f->buf + f->used;
    f->used += n;
    return p;
}

static void skip_ws(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
        (*i)++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, size_t len, size_t i, unsigned *out)
{
    if (i + 4 > len) return -1;
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0) return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* 0 when s[0..n) is UTF-8 (shortest forms, no surrogates, at most U+10FFFF), else -1. */
static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return -1;
        }
        if (n - i - 1 < k) return -1;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return -1;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp < 0xE000))
            return -1;
        i += k + 1;
    }
    return 0;
}

/* A JSON string at s[*i] == '"' decoded into f's buffer (NUL-terminated). */
static int json_string(const char *s, size_t len, size_t *i, auth_fields *f, const char **out,
                       size_t *out_len)
{
    size_t j = *i + 1;
    /* decoded text is never longer than the literal */
    size_t end = j;
    while (end < len && s[end] != '"')
        end += s[end] == '\\' ? 2 : 1;
    if (end >= len) return TR_EPARSE;
    char *d = take(f, end - j + 1);
    if (d == NULL) return TR_EPARSE;
    size_t n = 0;
    while (j < end) {
        unsigned char c = (unsigned char)s[j];
        if (c < 0x20) return TR_EPARSE;
        if (c != '\\') {
            d[n++] = (char)c;
            j++;
            continue;
        }
        char e = s[j + 1];
        j += 2;
        switch (e) {
        case '"':
            d[n++] = '"';
            break;
        case '\\':
            d[n++] = '\\';
            break;
        case '/':
            d[n++] = '/';
            break;
        case 'b':
            d[n++] = '\b';
            break;
        case 'f':
            d[n++] = '\f';
            break;
        case 'n':
            d[n++] = '\n';
            break;
        case 'r':
            d[n++] = '\r';
            break;
        case 't':
            d[n++] = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (hex4(s, end, j, &cp) < 0) return TR_EPARSE;
            j += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (j + 1 >= end || s[j] != '\\' || s[j + 1] != 'u' ||
                    hex4(s, end, j + 2, &lo) < 0 || lo < 0xDC00 || lo >= 0xE000)
                    return TR_EPARSE;
                j += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return TR_EPARSE;
            }
            /* \uXXXX is 6 bytes of input for at most 3 of output, a pair 12 for 4 */
            n += put_utf8(d + n, cp);
            break;
        }
        default:
            return TR_EPARSE;
        }
    }
    d[n] = '\0';
    if (utf8_valid(d, n) < 0) return TR_EPARSE;
    *i = end + 1;
    *out = d;
    *out_len = n;
    return 0;
}

int auth__json_fields(const char *s, size_t len, auth_fields *f)
{
    f->n = 0;
    f->used = 0;
    if (len > AUTH_MAX_BODY) return TR_EPARSE;
    size_t i = 0;
    skip_ws(s, len, &i);
    if (i >= len || s[i] != '{') return TR_EPARSE;
    i++;
    skip_ws(s, len, &i);
    if (i < len && s[i] == '}') {
        i++;
        goto done;
    }
    for (;;) {
        skip_ws(s, len, &i);
        if (i >= len || s[i] != '"' || f->n == AUTH_MAX_FIELDS) return TR_EPARSE;
        auth_field *fd = &f->f[f->n];
        size_t klen;
        if (json_string(s, len, &i, f, &fd->key, &klen) < 0) return TR_EPARSE;
        if (strlen(fd->key) != klen || auth__field(f, fd->key) != NULL) return TR_EPARSE;
        skip_ws(s, len, &i);
        if (i >= len || s[i] != ':') return TR_EPARSE;
        i++;
        skip_ws(s, len, &i);
        if (i >= len) return TR_EPARSE;
        if (s[i] == '"') {
            fd->type = AUTH_V_STRING;
            if (json_string(s, len, &i, f, &fd->val, &fd->val_len) < 0) return TR_EPARSE;
        } else {
            size_t st = i;
            while (i < len &&
                   (s[i] == '-' || s[i] == '+' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
                    (s[i] >= 'a' && s[i] <= 'z') || s[i] == 'E'))
                i++;
            size_t n = i - st;
            if (n == 0) return TR_EPARSE; /* an object, an array, or garbage */
            char *d = take(f, n + 1);
            if (d == NULL) return TR_EPARSE;
            memcpy(d, s + st, n);
            d[n] = '\0';
            if (strcmp(d, "true") == 0 || strcmp(d, "false") == 0)
                fd->type = AUTH_V_BOOL;
            else if (strcmp(d, "null") == 0)
                fd->type = AUTH_V_NULL;
            else if (d[0] == '-' || (d[0] >= '0' && d[0] <= '9'))
                fd->type = AUTH_V_NUMBER;
            else
                return TR_EPARSE;
            fd->val = d;
            fd->val_len = n;
        }
        f->n++;
        skip_ws(s, len, &i);
        if (i < len && s[i] == ',') {
            i++;
            continue;
        }
        if (i < len && s[i] == '}') {
            i++;
            break;
        }
        return TR_EPARSE;
    }
done:
    skip_ws(s, len, &i);
    return i == len ? 0 : TR_EPARSE;
}

/* Percent- and '+'-decodes s[0..n) into f's buffer. */
static const char *form_decode(const char *s, size_t n, auth_fields *f, size_t *out_len)
{
    char *d = take(f, n + 1);
    if (d == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[k++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            d[k++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    *out_len = k;
    if (utf8_valid(d, k) < 0) return NULL;
    return d;
}

int auth__form_fields(const char *s, size_t len, auth_fields *f)
{
    f->n = 0;
    f->used = 0;
    if (len > AUTH_MAX_BODY) return TR_EPARSE;
    size_t i = 0;
    while (i < len) {
        size_t st = i;
        while (i < len && s[i] != '&')
            i++;
        size_t pl = i - st;
        if (i < len) i++;
        if (pl == 0) continue;
        const char *p = s + st;
        const char *eq = memchr(p, '=', pl);
        size_t kl = eq ? (size_t)(eq - p) : pl;
        if (f->n == AUTH_MAX_FIELDS) return TR_EPARSE;
        auth_field *fd = &f->f[f->n];
        size_t klen;
        fd->key = form_decode(p, kl, f, &klen);
        if (fd->key == NULL || strlen(fd->key) != klen || auth__field(f, fd->key) != NULL)
            return TR_EPARSE;
        fd->val = form_decode(eq ? eq + 1 : p + pl, eq ? pl - kl - 1 : 0, f, &fd->val_len);
        if (fd->val == NULL) return TR_EPARSE;
        fd->type = AUTH_V_STRING;
        f->n++;
    }
    return 0;
}

void auth__json_str(tr_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    tr_buf_append_char(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            tr_buf_append_char(b, '\\');
            tr_buf_append_char(b, (char)c);
        } else if (c < 0x20 || c == 0x7F || c == '<' || c == '>' || c == '&') {
            /* also <, > and &: the text may end up inside a page */
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tr_buf_append(b, u, 6);
        } else {
            tr_buf_append_char(b, (char)c);
        }
    }
    tr_buf_append_char(b, '"');
}

void auth__b64url_encode(const void *data, size_t len, tr_buf *out)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    tr_buf_reserve(out, n);
    sodium_bin2base64(out->data + out->len, n, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len += n - 1; /* without the NUL */
}

int auth__b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    const char *end = NULL;
    if (sodium_base642bin(out, cap, s, len, NULL, out_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return end == s + len ? 0 : -1;
}

void auth__random_alnum(char *out, size_t n)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++)
        out[i] = alnum[randombytes_uniform(sizeof alnum - 1)];
    out[n] = '\0';
}

void auth__secret_digest(const char *s, size_t len, char out[65])
{
    uint8_t d[32];
    crypto_hash_sha256(d, (const unsigned char *)s, len);
    sodium_bin2hex(out, 65, d, sizeof d);
}
