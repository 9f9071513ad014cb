/* cron/cron.c: parsing cron expressions and finding their next fire time.
 *
 * DESIGN: cron_next() walks local wall-clock time as a proleptic-UTC timeline (timegm
 * arithmetic, no DST), jumping a whole month, day, hour or minute when that field cannot match,
 * then maps the matching wall time to an instant with the zone's offset. A wall time inside a
 * DST gap maps forward by the gap (02:30 on a spring-forward night fires at 03:30); a wall time
 * that occurs twice fires once, at its first occurrence. */
#include "cron/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct field_spec {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i; NULL when none */
} field_spec;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const field_spec specs[7] = {
    {"second", 0, 59, NULL},     {"minute", 0, 59, NULL},      {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL}, {"month", 1, 12, month_names}, {"day of week", 0, 7, wday_names},
    {"year", CRON_YEAR_MIN, CRON_YEAR_MAX, NULL},
};

/* Bit v of a field's set; the year field counts from CRON_YEAR_MIN, in several words. */
static void set_bit(int idx, uint64_t *bits, int v)
{
    if (idx == 6) {
        int b = v - CRON_YEAR_MIN;
        bits[b / 64] |= (uint64_t)1 << (b % 64);
    } else {
        *bits |= (uint64_t)1 << (specs[idx].max == 7 && v == 7 ? 0 : v);
    }
}

/* Reads a number or a name at *p; advances *p. */
static int read_value(const field_spec *f, const char **p, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalpha((unsigned char)s[3])) {
        int count = f->max - f->min + 1 - (f->names == wday_names ? 1 : 0);
        for (int i = 0; i < count; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->min + i;
                *p = s + 3;
                return 0;
            }
        }
    }
    return TR_EPARSE;
}

/* Parses one field (a comma list) of `len` bytes into a bit set (for the year field, an array of
 * CRON_YEAR_WORDS words). *any: it was a lone `*`/`?`. no: the field's position as the user
 * wrote it, from 1. */
static int parse_field(const char *s, size_t len, int idx, int no, uint64_t *bits, bool *any,
                       tr_error *err)
{
    const field_spec *f = &specs[idx];
    char text[128];
    if (len >= sizeof text)
        return tr_error_set(err, TR_EPARSE, "field %d (%s) is too long", no, f->name);
    memcpy(text, s, len);
    text[len] = '\0';
    memset(bits, 0, (idx == 6 ? CRON_YEAR_WORDS : 1) * sizeof *bits);
    *any = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
    const char *p = text;
    for (;;) {
        int lo, hi, step = 1;
        const char *item = p;
        if (*p == '*' || *p == '?') {
            lo = f->min;
            hi = f->max == 7 ? 6 : f->max;
            p++;
        } else {
            if (read_value(f, &p, &lo) < 0)
                return tr_error_set(err, TR_EPARSE, "field %d (%s): unexpected '%s'", no, f->name,
                                    item);
            hi = lo;
            if (*p == '-') {
                p++;
                if (read_value(f, &p, &hi) < 0)
                    return tr_error_set(err, TR_EPARSE, "field %d (%s): bad range end in '%s'",
                                        no, f->name, item);
            } else if (*p == '/') {
                hi = f->max == 7 ? 6 : f->max; /* "a/n": from a to the end, every n */
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p))
                return tr_error_set(err, TR_EPARSE, "field %d (%s): bad step in '%s'", no,
                                    f->name, item);
            long v = 0;
            while (isdigit((unsigned char)*p) && v < 1000) v = v * 10 + (*p++ - '0');
            if (v < 1 || v > f->max)
                return tr_error_set(err, TR_EPARSE, "field %d (%s): step %ld is out of range 1-%d",
                                    no, f->name, v, f->max);
            step = (int)v;
        }
        if (lo < f->min || lo > f->max)
            return tr_error_set(err, TR_EPARSE, "field %d (%s): %d is out of range %d-%d", no,
                                f->name, lo, f->min, f->max);
        if (hi < f->min || hi > f->max)
            return tr_error_set(err, TR_EPARSE, "field %d (%s): %d is out of range %d-%d", no,
                                f->name, hi, f->min, f->max);
        if (hi < lo)
            return tr_error_set(err, TR_EPARSE, "field %d (%s): range %d-%d is backwards", no,
                                f->name, lo, hi);
        for (int v = lo; v <= hi; v += step) set_bit(idx, bits, v);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != '\0')
            return tr_error_set(err, TR_EPARSE, "field %d (%s): unexpected '%s'", no, f->name, p);
        return 0;
    }
}

int cron_parse(const char *expr, cron_expr *out, tr_error *err)
{
    static const struct {
        const char *name, *expr;
    } shorthands[] = {
        {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},  {"@minutely", "* * * * *"},
    };
    while (isspace((unsigned char)*expr)) expr++;
    if (expr[0] == '@') {
        size_t n = strcspn(expr, " \t");
        for (size_t i = 0; i < TR_ARRAY_LEN(shorthands); i++)
            if (strlen(shorthands[i].name) == n && strncasecmp(expr, shorthands[i].name, n) == 0 &&
                expr[n + strspn(expr + n, " \t")] == '\0')
                return cron_parse(shorthands[i].expr, out, err);
        return tr_error_set(err, TR_EPARSE,
                            "unknown shorthand '%.*s' (expected @yearly, @monthly, @weekly, "
                            "@daily, @hourly or @minutely)",
                            (int)TR_MIN(n, 40), expr);
    }
    const char *start[7];
    size_t len[7];
    int n = 0;
    for (const char *p = expr; *p;) {
        while (isspace((unsigned char)*p)) p++;
        if (*p == '\0') break;
        if (n == 7) return tr_error_set(err, TR_EPARSE, "expected 5, 6 or 7 fields, got more");
        start[n] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n < 5)
        return tr_error_set(err, TR_EPARSE, "expected 5, 6 or 7 fields, got %d", n);
    memset(out, 0, sizeof *out);
    uint64_t bits[6];
    bool any[7];
    int first = n == 5 ? 1 : 0; /* a 5-field line has no seconds field: it fires at second 0 */
    bits[0] = 1;
    any[0] = false;
    /* without a year field (5 or 6 fields), every year */
    for (int y = CRON_YEAR_MIN; y <= CRON_YEAR_MAX; y++) set_bit(6, out->years, y);
    for (int i = 0; i < n; i++) {
        int idx = first + i;
        int rc = parse_field(start[i], len[i], idx, i + 1, idx == 6 ? out->years : &bits[idx],
                             &any[idx], err);
        if (rc < 0) return rc;
    }
    out->seconds = bits[0];
    out->minutes = bits[1];
    out->hours = (uint32_t)bits[2];
    out->mdays = (uint32_t)bits[3];
    out->months = (uint16_t)bits[4];
    out->wdays = (uint8_t)bits[5];
    out->mday_any = any[3];
    out->wday_any = any[5];
    return 0;
}

static bool day_matches(const cron_expr *c, const struct tm *tm)
{
    bool md = c->mdays >> tm->tm_mday & 1, wd = c->wdays >> tm->tm_wday & 1;
    if (c->mday_any && c->wday_any) return true;
    if (c->mday_any) return wd;
    if (c->wday_any) return md;
    return md || wd;
}

/* Maps a wall time in tz to an instant (see DESIGN). */
static int64_t wall_to_instant(const cron_tz *tz, int64_t wall)
{
    int32_t off1 = cron_tz_offset(tz, wall);
    int32_t off2 = cron_tz_offset(tz, wall - off1);
    if (off1 == off2) {
        /* A repeated wall time: prefer the earlier instant (the larger offset). */
        int32_t off0 = cron_tz_offset(tz, wall - off1 - 7200);
        if (off0 > off1 && cron_tz_offset(tz, wall - off0) == off0) return wall - off0;
        return wall - off1;
    }
    /* In a gap: neither offset maps back; keep the offset before the gap. */
    int32_t before = TR_MIN(off1, off2);
    return wall - before;
}

int64_t cron_next(const cron_expr *c, const cron_tz *tz, int64_t after)
{
    int64_t limit = after + (int64_t)8 * 366 * 86400;
    int64_t wall = after + cron_tz_offset(tz, after) + 1;
    for (int guard = 0; guard < 100000 && wall < limit + 86400; guard++) {
        time_t t = (time_t)wall;
        struct tm tm;
        gmtime_r(&t, &tm);
        int year = tm.tm_year + 1900;
        if (year > CRON_YEAR_MAX) return -1;
        int yb = year - CRON_YEAR_MIN;
        if (yb < 0 || !(c->years[yb / 64] >> (yb % 64) & 1)) {
            tm.tm_year++;
            tm.tm_mon = 0;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            wall = (int64_t)timegm(&tm);
            continue;
        }
        if (!(c->months >> (tm.tm_mon + 1) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            wall = (int64_t)timegm(&tm);
            continue;
        }
        if (!day_matches(c, &tm)) {
            wall += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
            continue;
        }
        if (!(c->hours >> tm.tm_hour & 1)) {
            wall += 3600 - (tm.tm_min * 60 + tm.tm_sec);
            continue;
        }
        if (!(c->minutes >> tm.tm_min & 1)) {
            wall += 60 - tm.tm_sec;
            continue;
        }
        if (!(c->seconds >> tm.tm_sec & 1)) {
            wall += 1;
            continue;
        }
        int64_t at = wall_to_instant(tz, wall);
        if (at > after) return at <= limit ? at : -1;
        wall += 1; /* the second occurrence of a repeated hour: look further */
    }
    return -1;
}
