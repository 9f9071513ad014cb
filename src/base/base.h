/* base/base.h: allocation, growable buffers, arenas, logging and time for all of trail.
 *
 * Host allocation failure ends the process (see STYLE "Errors"): callers never check NULL. That is
 * safe only because every size that comes from outside is checked against a limit first. */
#ifndef TRAIL_BASE_BASE_H
#define TRAIL_BASE_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

#define TR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type `type` whose member `member` ptr points at (a callback's loop_timer or
 * loop_io back to the struct that embeds it; h2o's H2O_STRUCT_FROM_MEMBER). */
#define TR_CONTAINER_OF(ptr, type, member)                                                         \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define TR_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define TR_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define TR_UNUSED(x)    ((void)(x))

/* ---- strings ---- */
/* True when (p, n) is s, ASCII letters compared without case (header and host names). */
static inline bool tr_mem_ieq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(p, s, n) == 0;
}
/* Percent-decodes (s, n) into out[0..cap) and returns the decoded length, or -1 when it needs
 * more than cap bytes. With refuse NULL a '%' that two hex digits do not follow is copied as it
 * is; otherwise (strict) it makes the result -1, as does an escape that decodes to NUL or to a
 * byte of refuse (e.g. "/" for a path segment). No NUL is appended; cap >= n always suffices. */
long tr_percent_decode(const char *s, size_t n, char *out, size_t cap, const char *refuse);

/* ---- libcurl ---- */
/* curl_global_init() once per process (any thread); call it before any other libcurl call. */
void tr_curl_global_init(void);

/* ---- allocation: abort on failure ---- */
void *tr_malloc(size_t n);
void *tr_calloc(size_t count, size_t size);
void *tr_realloc(void *p, size_t n);
char *tr_strdup(const char *s);
char *tr_strndup(const char *s, size_t n);
void tr_free(void *p);

/* printf into a fresh allocation; the caller frees it with tr_free(). */
char *tr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- tr_buf: a growable byte buffer, always NUL-terminated after len when data != NULL ---- */
typedef struct tr_buf {
    char *data;
    size_t len; /* <= cap */
    size_t cap; /* bytes allocated, excluding the NUL slot */
} tr_buf;

#define TR_BUF_INIT {NULL, 0, 0}

void tr_buf_reserve(tr_buf *b, size_t extra);
void tr_buf_append(tr_buf *b, const void *data, size_t n);
void tr_buf_append_str(tr_buf *b, const char *s);
void tr_buf_append_char(tr_buf *b, char c);
void tr_buf_printf(tr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tr_buf_vprintf(tr_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void tr_buf_consume(tr_buf *b, size_t n);
void tr_buf_reset(tr_buf *b); /* len = 0, keeps the allocation */
void tr_buf_free(tr_buf *b);  /* releases the allocation; b is empty and reusable */
/* Hands the allocation to the caller (free with tr_free); b becomes empty. */
char *tr_buf_take(tr_buf *b, size_t *len_out);

/* ---- tr_arena: bump allocation freed in one go ---- */
typedef struct tr_arena_chunk tr_arena_chunk;
typedef struct tr_arena {
    tr_arena_chunk *head;
    size_t chunk_size;
} tr_arena;

void tr_arena_init(tr_arena *a, size_t chunk_size);
void *tr_arena_alloc(tr_arena *a, size_t n); /* 16-byte aligned, uninitialised */
char *tr_arena_strndup(tr_arena *a, const char *s, size_t n);
void tr_arena_reset(tr_arena *a); /* frees all but the first chunk */
size_t tr_arena_size(const tr_arena *a); /* bytes it holds from the allocator */
void tr_arena_deinit(tr_arena *a);

/* ---- files ---- */
/* Reads the whole file at path into out (appending), refusing files over max_bytes. */
int tr_read_file(const char *path, size_t max_bytes, tr_buf *out, tr_error *err);
/* Writes (data, len) to path atomically: a temporary file in the same directory, fsync, rename. */
int tr_write_file_atomic(const char *path, const void *data, size_t len, tr_error *err);

/* ---- logging: errors and warnings to stderr, info to stderr, access log to stdout ---- */
typedef enum tr_log_level {
    TR_LOG_DEBUG,
    TR_LOG_INFO,
    TR_LOG_WARN,
    TR_LOG_ERROR,
} tr_log_level;

void tr_log_set_level(tr_log_level min);
void tr_log(tr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define tr_log_debug(...) tr_log(TR_LOG_DEBUG, __VA_ARGS__)
#define tr_log_info(...)  tr_log(TR_LOG_INFO, __VA_ARGS__)
#define tr_log_warn(...)  tr_log(TR_LOG_WARN, __VA_ARGS__)
#define tr_log_error(...) tr_log(TR_LOG_ERROR, __VA_ARGS__)

/* Ends the process after logging; for broken invariants that assert() cannot express. */
__attribute__((noreturn, format(printf, 1, 2))) void tr_fatal(const char *fmt, ...);

/* ---- time ---- */
uint64_t tr_now_ns(void);    /* CLOCK_MONOTONIC */
int64_t tr_wall_ms(void);    /* CLOCK_REALTIME, milliseconds since the epoch */
uint64_t tr_thread_cpu_ns(void); /* CPU time used by the calling thread */

#endif
