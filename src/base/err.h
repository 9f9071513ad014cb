/* base/err.h: trail's error codes and the error value that carries a message.
 *
 * A function that can fail returns int: 0 on success, -errno for a system failure, or one of the
 * TR_E* codes below (all below -1000, so they never collide with errno values). */
#ifndef TRAIL_BASE_ERR_H
#define TRAIL_BASE_ERR_H

#include <stddef.h>

/* X(name, value, description) */
#define TR_ERRORS(X)                                                                               \
    X(TR_ELIMIT, -1001, "limit exceeded")                                                          \
    X(TR_EPARSE, -1002, "parse error")                                                             \
    X(TR_ETRAP, -1003, "WebAssembly trap")                                                         \
    X(TR_EJS, -1004, "JavaScript exception")                                                       \
    X(TR_EINTERRUPTED, -1005, "guest interrupted at its deadline")                                 \
    X(TR_ENOMEM, -1006, "guest out of memory")                                                     \
    X(TR_ECONFIG, -1007, "invalid configuration")                                                  \
    X(TR_ESQL, -1008, "SQL error")                                                                 \
    X(TR_ENOTFOUND, -1009, "not found")                                                            \
    X(TR_EINVAL, -1010, "invalid argument")                                                        \
    X(TR_ECONFLICT, -1011, "conflict")                                                             \
    X(TR_EIO, -1012, "I/O error")                                                                  \
    X(TR_EENGINE, -1013, "engine mismatch")                                                        \
    X(TR_ETIMEDOUT, -1014, "deadline passed")

enum tr_err_code {
#define TR_ERR_ENUM(name, value, desc) name = value,
    TR_ERRORS(TR_ERR_ENUM)
#undef TR_ERR_ENUM
};

/* A static description of rc: our codes, or strerror(-rc) for system errors. Never NULL. */
const char *tr_strerror(int rc);

/* An error with a message, for callers that need to know *what* went wrong (config line, SQL
 * message, JS exception and stack). Embed or stack-allocate; no cleanup needed. */
typedef struct tr_error {
    int code;       /* 0 when unset */
    char msg[1024]; /* NUL-terminated, truncated if longer */
} tr_error;

/* Records code and a printf-style message in err (which may be NULL) and returns code, so that
 * `return tr_error_set(err, TR_EPARSE, "line %d: ...", n);` reads naturally. */
int tr_error_set(tr_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err (may be NULL). */
void tr_error_clear(tr_error *err);

#endif
