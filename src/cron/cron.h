/* cron/cron.h: cron schedules and time zones.
 *
 * A schedule is a standard 5-field crontab line (minute hour day-of-month month day-of-week),
 * a 6-field line with seconds first, a 7-field line with seconds first and a year last
 * (CRON_YEAR_MIN-CRON_YEAR_MAX; the form of the reference system's SDK), or a shorthand
 * (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely). Fields take `*`, numbers, ranges `a-b`, steps `*\/n`
 * and `a-b/n`, lists `a,b`, month names JAN-DEC and weekday names SUN-SAT (7 is Sunday too).
 * When both day fields are restricted a day matches if either does (as in Vixie cron).
 *
 * Times are evaluated in a cron_tz: UTC, or a zone loaded from the system's TZif files
 * (/usr/share/zoneinfo), including the POSIX rule in the file's footer for dates past its last
 * transition. Thread: a parsed cron_expr and a loaded cron_tz are immutable and may be shared. */
#ifndef TRAIL_CRON_CRON_H
#define TRAIL_CRON_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

#define CRON_YEAR_MIN   1970
#define CRON_YEAR_MAX   2099
#define CRON_YEAR_WORDS 3 /* 64-bit words for the years' bits */

typedef struct cron_expr {
    uint64_t seconds; /* bit n: second n matches (0-59) */
    uint64_t minutes; /* 0-59 */
    uint32_t hours;   /* 0-23 */
    uint32_t mdays;   /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t wdays;    /* bits 0-6, Sunday = 0 */
    bool mday_any;    /* the day-of-month field was `*` */
    bool wday_any;    /* the day-of-week field was `*` */
    uint64_t years[CRON_YEAR_WORDS]; /* bit y - CRON_YEAR_MIN: year y matches */
} cron_expr;

/* Parses expr. Errors (TR_EPARSE) name the field and what is wrong, e.g.
 * "field 2 (hour): 24 is out of range 0-23". */
int cron_parse(const char *expr, cron_expr *out, tr_error *err);

typedef struct cron_tz cron_tz;

/* The UTC zone (static; cron_tz_free() ignores it). */
const cron_tz *cron_tz_utc(void);

/* Loads a zone by IANA name ("Europe/Berlin", "UTC") from /usr/share/zoneinfo, or from the
 * directory in $TZDIR when set. Names with ".." or a leading '/' are refused. */
int cron_tz_load(const char *name, cron_tz **out, tr_error *err);
void cron_tz_free(cron_tz *tz);
const char *cron_tz_name(const cron_tz *tz);

/* The zone's offset from UTC in seconds (east positive) at the instant t (Unix seconds). */
int32_t cron_tz_offset(const cron_tz *tz, int64_t t);

/* The first instant strictly after `after` (Unix seconds) that matches c in tz, or -1 if none
 * exists within the next 8 years (e.g. `0 0 30 2 *`). */
int64_t cron_next(const cron_expr *c, const cron_tz *tz, int64_t after);

#endif
