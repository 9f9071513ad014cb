/* jobs/cron.h: cron schedules and time zones.
 *
 * A schedule is a standard 5-field crontab line (minute hour day-of-month month day-of-week),
 * a 6-field line with seconds first, a 7-field line with seconds first and a year last
 * (JOB_CRON_YEAR_MIN-JOB_CRON_YEAR_MAX; the form of the reference system's SDK), or a shorthand
 * (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely). Fields take `*`, numbers, ranges `a-b`, steps `*\/n`
 * and `a-b/n`, lists `a,b`, month names JAN-DEC and weekday names SUN-SAT (7 is Sunday too).
 * When both day fields are restricted a day matches if either does (as in Vixie cron).
 *
 * Times are evaluated in a job_tz: UTC, or a zone loaded from the system's TZif files
 * (/usr/share/zoneinfo), including the POSIX rule in the file's footer for dates past its last
 * transition. Thread: a parsed job_cron and a loaded job_tz are immutable and may be shared. */
#ifndef TRAIL_JOBS_CRON_H
#define TRAIL_JOBS_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

#define JOB_CRON_YEAR_MIN   1970
#define JOB_CRON_YEAR_MAX   2099
#define JOB_CRON_YEAR_WORDS 3 /* 64-bit words for the years' bits */

typedef struct job_cron {
    uint64_t seconds; /* bit n: second n matches (0-59) */
    uint64_t minutes; /* 0-59 */
    uint32_t hours;   /* 0-23 */
    uint32_t mdays;   /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t wdays;    /* bits 0-6, Sunday = 0 */
    bool mday_any;    /* the day-of-month field was `*` */
    bool wday_any;    /* the day-of-week field was `*` */
    uint64_t years[JOB_CRON_YEAR_WORDS]; /* bit y - JOB_CRON_YEAR_MIN: year y matches */
} job_cron;

/* Parses expr. Errors (TR_EPARSE) name the field and what is wrong, e.g.
 * "field 2 (hour): 24 is out of range 0-23". */
int job_cron_parse(const char *expr, job_cron *out, tr_error *err);

typedef struct job_tz job_tz;

/* The UTC zone (static; job_tz_free() ignores it). */
const job_tz *job_tz_utc(void);

/* Loads a zone by IANA name ("Europe/Berlin", "UTC") from /usr/share/zoneinfo, or from the
 * directory in $TZDIR when set. Names with ".." or a leading '/' are refused. */
int job_tz_load(const char *name, job_tz **out, tr_error *err);
void job_tz_free(job_tz *tz);
const char *job_tz_name(const job_tz *tz);

/* The zone's offset from UTC in seconds (east positive) at the instant t (Unix seconds). */
int32_t job_tz_offset(const job_tz *tz, int64_t t);

/* The first instant strictly after `after` (Unix seconds) that matches c in tz, or -1 if none
 * exists within the next 8 years (e.g. `0 0 30 2 *`). */
int64_t job_cron_next(const job_cron *c, const job_tz *tz, int64_t after);

#endif
