/* base/alloc.c: allocation that ends the process on failure, tr_buf and tr_arena. */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    tr_fatal("out of memory allocating %zu bytes", n);
}

void *tr_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) oom(n);
    return p;
}

void *tr_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL) oom(count * size);
    return p;
}

void *tr_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) oom(n);
    return q;
}

char *tr_strdup(const char *s)
{
    return tr_strndup(s, strlen(s));
}

char *tr_strndup(const char *s, size_t n)
{
    char *d = tr_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void tr_free(void *p)
{
    free(p);
}

char *tr_asprintf(const char *fmt, ...)
{
    tr_buf b = TR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    tr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.data == NULL) tr_buf_reserve(&b, 0);
    return b.data;
}

/* ---- tr_buf ---- */

void tr_buf_reserve(tr_buf *b, size_t extra)
{
    if (b->data != NULL && b->cap - b->len >= extra) return;
    size_t want = b->len + extra;
    if (want < b->len) tr_fatal("tr_buf size overflow");
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want) cap = cap * 2;
    b->data = tr_realloc(b->data, cap + 1);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void tr_buf_append(tr_buf *b, const void *data, size_t n)
{
    tr_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tr_buf_append_str(tr_buf *b, const char *s)
{
    tr_buf_append(b, s, strlen(s));
}

void tr_buf_append_char(tr_buf *b, char c)
{
    tr_buf_append(b, &c, 1);
}

void tr_buf_vprintf(tr_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    tr_buf_reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len + 1, fmt, ap);
    if (n < 0) tr_fatal("vsnprintf failed");
    if ((size_t)n > b->cap - b->len) {
        tr_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len + 1, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void tr_buf_printf(tr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tr_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void tr_buf_consume(tr_buf *b, size_t n)
{
    if (n == 0) return;
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    b->data[b->len] = '\0';
}

void tr_buf_reset(tr_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void tr_buf_free(tr_buf *b)
{
    tr_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *tr_buf_take(tr_buf *b, size_t *len_out)
{
    if (b->data == NULL) tr_buf_reserve(b, 0);
    char *d = b->data;
    if (len_out) *len_out = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

/* ---- tr_arena ---- */

struct tr_arena_chunk {
    tr_arena_chunk *next;
    size_t size; /* usable bytes in data */
    size_t used; /* <= size */
    _Alignas(16) unsigned char data[];
};

void tr_arena_init(tr_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
}

void *tr_arena_alloc(tr_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    tr_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        c = tr_malloc(sizeof *c + size);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *tr_arena_strndup(tr_arena *a, const char *s, size_t n)
{
    char *d = tr_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void tr_arena_reset(tr_arena *a)
{
    tr_arena_chunk *c = a->head;
    if (c == NULL) return;
    /* Keep the oldest chunk (the tail) so a steady request load does not malloc at all. */
    tr_arena_chunk *keep = c;
    while (keep->next) keep = keep->next;
    while (c != keep) {
        tr_arena_chunk *next = c->next;
        tr_free(c);
        c = next;
    }
    keep->used = 0;
    a->head = keep;
}

size_t tr_arena_size(const tr_arena *a)
{
    size_t n = 0;
    for (const tr_arena_chunk *c = a->head; c != NULL; c = c->next)
        n += sizeof *c + c->size;
    return n;
}

void tr_arena_deinit(tr_arena *a)
{
    tr_arena_chunk *c = a->head;
    while (c) {
        tr_arena_chunk *next = c->next;
        tr_free(c);
        c = next;
    }
    a->head = NULL;
}
