/* base/err.c: error descriptions and tr_error. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tr_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "success";
#define TR_ERR_CASE(name, value, desc)                                                             \
    case name:                                                                                     \
        return desc;
        TR_ERRORS(TR_ERR_CASE)
#undef TR_ERR_CASE
    default:
        break;
    }
    if (rc < 0 && rc > -1000) return strerror(-rc);
    return "unknown error";
}

int tr_error_set(tr_error *err, int code, const char *fmt, ...)
{
    if (err == NULL) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void tr_error_clear(tr_error *err)
{
    if (err == NULL) return;
    err->code = 0;
    err->msg[0] = '\0';
}
