/* cron/tz.c: time zones from the system's TZif files (RFC 8536), version 2+ data, with the POSIX
 * TZ rule of the footer for instants past the last transition. Only the offset at an instant is
 * needed (job schedules), so abbreviations and leap seconds are ignored. */
#include "cron/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


typedef struct tz_rule_date {
    char kind; /* 'M' month.week.day, 'J' Julian 1-365 without Feb 29, 'D' zero-based day 0-365 */
    int month, week, wday, day;
    int32_t time; /* seconds after local midnight, may be negative or past 24h */
} tz_rule_date;

typedef struct tz_rule {
    bool valid;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    tz_rule_date start, end;
} tz_rule;

struct cron_tz {
    char *name;
    int64_t *times; /* transition instants, ascending */
    int32_t *offs;  /* offset in effect from times[i] on */
    size_t count;
    int32_t first_off; /* before the first transition */
    tz_rule rule;
};

static cron_tz utc_zone = {"UTC", NULL, NULL, 0, 0, {false, false, 0, 0, {0}, {0}}};

const cron_tz *cron_tz_utc(void)
{
    return &utc_zone;
}

const char *cron_tz_name(const cron_tz *tz)
{
    return tz->name;
}

void cron_tz_free(cron_tz *tz)
{
    if (tz == NULL || tz == &utc_zone) return;
    tr_free(tz->name);
    tr_free(tz->times);
    tr_free(tz->offs);
    tr_free(tz);
}

/* ---- POSIX TZ rule strings ---- */

static bool parse_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (e == NULL) return false;
        *p = e + 1;
        return true;
    }
    int n = 0;
    while (isalpha((unsigned char)s[n])) n++;
    if (n < 3) return false;
    *p = s + n;
    return true;
}

/* [+-]hh[:mm[:ss]] as seconds; POSIX offsets are west-positive, the caller negates. */
static bool parse_hms(const char **p, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s)) return false;
    int32_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':') break;
            s++;
        }
        if (!isdigit((unsigned char)*s)) return false;
        while (isdigit((unsigned char)*s) && v[i] < 1000) v[i] = v[i] * 10 + (*s++ - '0');
    }
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    *p = s;
    return true;
}

static bool parse_rule_date(const char **p, tz_rule_date *d)
{
    const char *s = *p;
    memset(d, 0, sizeof *d);
    if (*s == 'M') {
        d->kind = 'M';
        if (sscanf(s + 1, "%d.%d.%d", &d->month, &d->week, &d->wday) != 3) return false;
        if (d->month < 1 || d->month > 12 || d->week < 1 || d->week > 5 || d->wday < 0 ||
            d->wday > 6)
            return false;
        s++;
        while (isdigit((unsigned char)*s) || *s == '.') s++;
    } else {
        d->kind = *s == 'J' ? 'J' : 'D';
        if (*s == 'J') s++;
        if (!isdigit((unsigned char)*s)) return false;
        while (isdigit((unsigned char)*s)) d->day = d->day * 10 + (*s++ - '0');
    }
    d->time = 7200;
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, &d->time)) return false;
    }
    *p = s;
    return true;
}

static tz_rule parse_rule(const char *s)
{
    tz_rule r = {0};
    int32_t off;
    if (!parse_name(&s) || !parse_hms(&s, &off)) return r;
    r.std_off = -off;
    r.dst_off = r.std_off;
    if (*s == '\0') {
        r.valid = true;
        return r;
    }
    if (!parse_name(&s)) return r;
    r.has_dst = true;
    r.dst_off = r.std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, &off)) return r;
        r.dst_off = -off;
    }
    if (*s == '\0') {
        /* No rules: POSIX leaves them implementation-defined; use the US rules. */
        r.start = (tz_rule_date){'M', 3, 2, 0, 0, 7200};
        r.end = (tz_rule_date){'M', 11, 1, 0, 0, 7200};
        r.valid = true;
        return r;
    }
    if (*s++ != ',' || !parse_rule_date(&s, &r.start) || *s++ != ',' ||
        !parse_rule_date(&s, &r.end) || *s != '\0')
        return r;
    r.valid = true;
    return r;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Seconds from the epoch to 00:00 UTC on January 1 of year y. */
static int64_t year_start(int64_t y)
{
    struct tm tm = {.tm_year = (int)(y - 1900), .tm_mday = 1};
    return (int64_t)timegm(&tm);
}

/* The transition's wall time in year y, as seconds from the epoch (wall clock as if UTC). */
static int64_t rule_wall(const tz_rule_date *d, int64_t y)
{
    int64_t day;
    if (d->kind == 'J') {
        day = d->day - 1;
        if (is_leap(y) && d->day >= 60) day++;
    } else if (d->kind == 'D') {
        day = d->day;
    } else {
        static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        struct tm tm = {.tm_year = (int)(y - 1900), .tm_mon = d->month - 1, .tm_mday = 1};
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        int first = (d->wday - tm.tm_wday + 7) % 7 + 1; /* first matching day of the month */
        int dim = mdays[d->month - 1] + (d->month == 2 && is_leap(y));
        int mday = first + (d->week - 1) * 7;
        while (mday > dim) mday -= 7;
        day = tm.tm_yday + mday - 1;
    }
    return year_start(y) + day * 86400 + d->time;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst) return r->std_off;
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int64_t y = tm.tm_year + 1900;
    int64_t start = rule_wall(&r->start, y) - r->std_off;
    int64_t end = rule_wall(&r->end, y) - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : (t >= start || t < end);
    return dst ? r->dst_off : r->std_off;
}

int32_t cron_tz_offset(const cron_tz *tz, int64_t t)
{
    if (tz->count == 0 || t < tz->times[0]) {
        if (tz->count == 0 && tz->rule.valid) return rule_offset(&tz->rule, t);
        return tz->first_off;
    }
    if (t >= tz->times[tz->count - 1] && tz->rule.valid) return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = tz->count; /* times[lo] <= t < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->offs[lo];
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int parse_tzif(const unsigned char *p, size_t len, cron_tz *tz)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return TR_EPARSE;
    uint32_t c[6];
    for (int i = 0; i < 6; i++) c[i] = be32(p + 20 + 4 * i);
    /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
    size_t v1 = (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
    if (p[4] < '2' || 44 + v1 + 44 > len) return TR_EPARSE; /* need version 2+ data */
    const unsigned char *h = p + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0) return TR_EPARSE;
    for (int i = 0; i < 6; i++) c[i] = be32(h + 20 + 4 * i);
    size_t timecnt = c[3], typecnt = c[4];
    size_t body = timecnt * 9 + typecnt * 6 + c[5] + (size_t)c[2] * 12 + c[1] + c[0];
    const unsigned char *d = h + 44;
    if (typecnt == 0 || (size_t)(d - p) + body > len) return TR_EPARSE;
    const unsigned char *idx = d + timecnt * 8, *types = idx + timecnt;
    tz->times = tr_calloc(timecnt ? timecnt : 1, sizeof *tz->times);
    tz->offs = tr_calloc(timecnt ? timecnt : 1, sizeof *tz->offs);
    tz->count = timecnt;
    for (size_t i = 0; i < timecnt; i++) {
        tz->times[i] = (int64_t)((uint64_t)be32(d + 8 * i) << 32 | be32(d + 8 * i + 4));
        if (idx[i] >= typecnt) return TR_EPARSE;
        tz->offs[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    tz->first_off = (int32_t)be32(types);
    const unsigned char *footer = d + body;
    if (footer < p + len && *footer == '\n') {
        const unsigned char *end = memchr(footer + 1, '\n', (size_t)(p + len - footer - 1));
        if (end) {
            char *rule = tr_strndup((const char *)footer + 1, (size_t)(end - footer - 1));
            tz->rule = parse_rule(rule);
            tr_free(rule);
        }
    }
    return 0;
}

int cron_tz_load(const char *name, cron_tz **out, tr_error *err)
{
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 || name[0] == '\0') {
        *out = &utc_zone;
        return 0;
    }
    if (name[0] == '/' || strstr(name, "..") != NULL || strlen(name) > 200)
        return tr_error_set(err, TR_EINVAL, "invalid time zone name '%s'", name);
    const char *dir = getenv("TZDIR");
    char *path = tr_asprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    tr_buf b = TR_BUF_INIT;
    int rc = tr_read_file(path, 1 << 20, &b, NULL);
    if (rc < 0) {
        rc = tr_error_set(err, TR_ENOTFOUND, "unknown time zone '%s' (no file %s)", name, path);
        goto out;
    }
    cron_tz *tz = tr_calloc(1, sizeof *tz);
    if (parse_tzif((const unsigned char *)b.data, b.len, tz) < 0) {
        cron_tz_free(tz);
        rc = tr_error_set(err, TR_EPARSE, "%s is not a TZif (version 2+) time zone file", path);
        goto out;
    }
    tz->name = tr_strdup(name);
    *out = tz;
out:
    tr_buf_free(&b);
    tr_free(path);
    return rc;
}
