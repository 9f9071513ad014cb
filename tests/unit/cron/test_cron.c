/* Tests for cron/cron.c and cron/tz.c: parsing (every error names its field), the reference's
 * schedules (minutely, hourly, daily at midnight, weekly on Sunday at midnight), steps, lists,
 * names, the day-of-month/day-of-week OR rule, 6-field seconds, 7-field years, and time zones
 * across DST. */
#include "test.h"
#include "cron/cron.h"

#include <time.h>

/* Unix seconds of a UTC date-time. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static int64_t next_utc(const char *expr, int64_t after)
{
    cron_expr c;
    tr_error err = {0};
    if (cron_parse(expr, &c, &err) < 0) test_fail(__FILE__, __LINE__, "%s: %s", expr, err.msg);
    return cron_next(&c, cron_tz_utc(), after);
}

TEST(cron_reference_schedules)
{
    int64_t t = utc(2026, 11, 25, 10, 17, 42); /* a Wednesday */
    CHECK_EQ(next_utc("* * * * *", t), utc(2026, 11, 25, 10, 18, 0));      /* minutely */
    CHECK_EQ(next_utc("0 * * * *", t), utc(2026, 11, 25, 11, 0, 0));       /* hourly */
    CHECK_EQ(next_utc("0 0 * * *", t), utc(2026, 11, 26, 0, 0, 0));        /* daily, midnight */
    CHECK_EQ(next_utc("0 0 * * 0", t), utc(2026, 11, 29, 0, 0, 0));        /* weekly, Sunday */
    CHECK_EQ(next_utc("@weekly", t), utc(2026, 11, 29, 0, 0, 0));
    CHECK_EQ(next_utc("@hourly", t), utc(2026, 11, 25, 11, 0, 0));
    CHECK_EQ(next_utc("@yearly", t), utc(2027, 1, 1, 0, 0, 0));
    CHECK_EQ(next_utc("@monthly", t), utc(2026, 12, 1, 0, 0, 0));
    /* strictly after: a time that matches exactly gives the following one */
    CHECK_EQ(next_utc("0 0 * * *", utc(2026, 11, 26, 0, 0, 0)), utc(2026, 11, 27, 0, 0, 0));
}

TEST(cron_fields_steps_lists_names)
{
    int64_t t = utc(2026, 1, 31, 23, 59, 59);
    CHECK_EQ(next_utc("*/15 * * * *", t), utc(2026, 2, 1, 0, 0, 0));
    CHECK_EQ(next_utc("5-10/2 3 * * *", utc(2026, 2, 1, 3, 6, 0)), utc(2026, 2, 1, 3, 7, 0));
    CHECK_EQ(next_utc("0 12 * JAN,mar *", utc(2026, 2, 1, 0, 0, 0)), utc(2026, 3, 1, 12, 0, 0));
    CHECK_EQ(next_utc("0 0 * * fri", utc(2026, 11, 25, 0, 0, 0)), utc(2026, 11, 27, 0, 0, 0));
    CHECK_EQ(next_utc("0 0 * * 7", utc(2026, 11, 25, 0, 0, 0)), utc(2026, 11, 29, 0, 0, 0));
    /* both day fields restricted: either matches (the 1st, or a Monday) */
    CHECK_EQ(next_utc("0 0 1 * mon", utc(2026, 11, 25, 0, 0, 0)), utc(2026, 11, 30, 0, 0, 0));
    CHECK_EQ(next_utc("0 0 1 * mon", utc(2026, 11, 30, 0, 0, 0)), utc(2026, 12, 1, 0, 0, 0));
    /* Feb 29 exists only in leap years */
    CHECK_EQ(next_utc("0 0 29 2 *", utc(2026, 3, 1, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
    /* never: February 30 */
    CHECK_EQ(next_utc("0 0 30 2 *", t), -1);
    /* 6 fields: seconds first */
    CHECK_EQ(next_utc("*/10 * * * * *", utc(2026, 1, 1, 0, 0, 5)), utc(2026, 1, 1, 0, 0, 10));
    CHECK_EQ(next_utc("30 0 0 * * *", utc(2026, 1, 1, 0, 0, 30)), utc(2026, 1, 2, 0, 0, 30));
    /* 7 fields (the reference SDK's form): seconds first, a year last */
    CHECK_EQ(next_utc("0 0 0 1 1 * 2030", utc(2026, 6, 1, 0, 0, 0)), utc(2030, 1, 1, 0, 0, 0));
    CHECK_EQ(next_utc("5 * * * * * *", utc(2026, 6, 1, 0, 0, 5)), utc(2026, 6, 1, 0, 1, 5));
    CHECK_EQ(next_utc("0 0 12 * * * 2027-2029/2", utc(2026, 6, 1, 0, 0, 0)),
             utc(2027, 1, 1, 12, 0, 0));
    CHECK_EQ(next_utc("0 0 12 31 12 * 2027,2029", utc(2027, 12, 31, 12, 0, 0)),
             utc(2029, 12, 31, 12, 0, 0));
    /* a year that has passed never comes */
    CHECK_EQ(next_utc("0 0 0 1 1 * 2020", utc(2026, 6, 1, 0, 0, 0)), -1);
}

TEST(cron_parse_errors_name_the_field)
{
    static const struct {
        const char *expr, *msg;
    } cases[] = {
        {"* * * *", "expected 5, 6 or 7 fields, got 4"},
        {"* * * * * * * *", "expected 5, 6 or 7 fields, got more"},
        {"0 0 0 1 1 * 1969", "field 7 (year): 1969 is out of range 1970-2099"},
        {"0 0 0 1 1 * 2100", "field 7 (year): 2100 is out of range 1970-2099"},
        {"0 0 0 1 1 * 2030x", "field 7 (year): unexpected 'x'"},
        {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
        {"* 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
        {"* * 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
        {"* * * 13 *", "field 4 (month): 13 is out of range 1-12"},
        {"* * * * 8", "field 5 (day of week): 8 is out of range 0-7"},
        {"* * * foo *", "field 4 (month): unexpected 'foo'"},
        {"*/0 * * * *", "field 1 (minute): step 0 is out of range"},
        {"5-2 * * * *", "field 1 (minute): range 5-2 is backwards"},
        {"1,,2 * * * *", "field 1 (minute): unexpected"},
        {"61 * * * * *", "field 1 (second): 61 is out of range 0-59"},
        {"@often", "unknown shorthand '@often'"},
        {"", "expected 5, 6 or 7 fields, got 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cron_expr c;
        tr_error err = {0};
        CHECK_EQ(cron_parse(cases[i].expr, &c, &err), TR_EPARSE);
        CHECK_CONTAINS(err.msg, cases[i].msg);
    }
}

TEST(cron_time_zone_daily_and_dst)
{
    cron_tz *berlin;
    tr_error err = {0};
    CHECK_EQ(cron_tz_load("Europe/Berlin", &berlin, &err), 0);
    CHECK_EQ(cron_tz_offset(berlin, utc(2026, 1, 15, 12, 0, 0)), 3600);
    CHECK_EQ(cron_tz_offset(berlin, utc(2026, 7, 15, 12, 0, 0)), 7200);
    /* far past the file's transitions: the footer's rule decides */
    CHECK_EQ(cron_tz_offset(berlin, utc(2090, 7, 15, 12, 0, 0)), 7200);
    CHECK_EQ(cron_tz_offset(berlin, utc(2090, 12, 15, 12, 0, 0)), 3600);
    cron_expr daily;
    CHECK_EQ(cron_parse("0 0 * * *", &daily, &err), 0);
    /* midnight in Berlin is 23:00 UTC in winter, 22:00 UTC in summer */
    CHECK_EQ(cron_next(&daily, berlin, utc(2026, 1, 15, 12, 0, 0)), utc(2026, 1, 15, 23, 0, 0));
    CHECK_EQ(cron_next(&daily, berlin, utc(2026, 7, 15, 12, 0, 0)), utc(2026, 7, 15, 22, 0, 0));
    /* 02:30 does not exist on 2026-03-29 in Berlin: it fires at 03:30 CEST (01:30 UTC) */
    cron_expr gap;
    CHECK_EQ(cron_parse("30 2 * * *", &gap, &err), 0);
    CHECK_EQ(cron_next(&gap, berlin, utc(2026, 3, 28, 12, 0, 0)), utc(2026, 3, 29, 1, 30, 0));
    /* 02:30 happens twice on 2026-10-25: it fires once, at the first (00:30 UTC) */
    int64_t first = cron_next(&gap, berlin, utc(2026, 10, 24, 12, 0, 0));
    CHECK_EQ(first, utc(2026, 10, 25, 0, 30, 0));
    CHECK_EQ(cron_next(&gap, berlin, first), utc(2026, 10, 26, 1, 30, 0));
    CHECK_STR_EQ(cron_tz_name(berlin), "Europe/Berlin");
    cron_tz_free(berlin);

    cron_tz *tz;
    CHECK_EQ(cron_tz_load("Mars/Olympus_Mons", &tz, &err), TR_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "unknown time zone 'Mars/Olympus_Mons'");
    CHECK_EQ(cron_tz_load("../etc/passwd", &tz, &err), TR_EINVAL);
    CHECK_EQ(cron_tz_load("UTC", &tz, &err), 0);
    CHECK(tz == cron_tz_utc());
}

TEST(cron_time_zone_southern_hemisphere)
{
    cron_tz *syd;
    tr_error err = {0};
    CHECK_EQ(cron_tz_load("Australia/Sydney", &syd, &err), 0);
    CHECK_EQ(cron_tz_offset(syd, utc(2026, 1, 15, 0, 0, 0)), 11 * 3600);
    CHECK_EQ(cron_tz_offset(syd, utc(2026, 7, 15, 0, 0, 0)), 10 * 3600);
    CHECK_EQ(cron_tz_offset(syd, utc(2095, 1, 15, 0, 0, 0)), 11 * 3600);
    CHECK_EQ(cron_tz_offset(syd, utc(2095, 7, 15, 0, 0, 0)), 10 * 3600);
    cron_tz_free(syd);
}
