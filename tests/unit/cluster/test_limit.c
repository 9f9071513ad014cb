/* Tests for cluster/limit.c: `_trail_statement_limit(MS)` bounds the statements of the connection
 * that called it (wall time), only ever tightens, and leaves other connections alone. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"

#include <sqlite3.h>
#include <stdio.h>

#define RUNAWAY                                                                              \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) " \
    "SELECT count(*) FROM c"

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Steps sql to its end; the step's result code and how long it ran. */
static int run_ms(sqlite3 *db, const char *sql, double *ms)
{
    sqlite3_stmt *st;
    CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    uint64_t t0 = tr_now_ns();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    *ms = (double)(tr_now_ns() - t0) / 1e6;
    sqlite3_finalize(st);
    return rc;
}

TEST(cluster_limit_bounds_the_calling_connection)
{
    CHECK_EQ(cluster_limit_register_everywhere(), 0);
    sqlite3 *db, *other;
    CHECK_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_EQ(sqlite3_open(":memory:", &other), SQLITE_OK);
    CHECK_EQ(one_int(db, "SELECT _trail_statement_limit(200)"), 200);
    /* only tightens: a larger bound, 0 or a negative one changes nothing */
    CHECK_EQ(one_int(db, "SELECT _trail_statement_limit(100000)"), 200);
    CHECK_EQ(one_int(db, "SELECT _trail_statement_limit(0)"), 200);
    CHECK_EQ(one_int(db, "SELECT _trail_statement_limit(-5)"), 200);
    double ms;
    CHECK_EQ(run_ms(db, RUNAWAY, &ms), SQLITE_INTERRUPT);
    test_report("a runaway statement stopped after %.0f ms (limit 200 ms)", ms);
    CHECK(ms >= 200);
    CHECK(ms < 3000);
    /* every statement counts from its own start: a short one after it runs */
    CHECK_EQ(one_int(db, "SELECT count(*) FROM (SELECT 1 UNION SELECT 2)"), 2);
    CHECK_EQ(run_ms(db, RUNAWAY, &ms), SQLITE_INTERRUPT);
    CHECK(ms >= 200);
    /* another connection is not bounded: a statement of 400 ms or more there finishes */
    CHECK_EQ(one_int(db, "SELECT _trail_statement_limit(100)"), 100);
    uint64_t t0 = tr_now_ns();
    int64_t n = 1000;
    for (;;) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %lld) "
                 "SELECT count(*) FROM c",
                 (long long)n);
        double took;
        CHECK_EQ(run_ms(other, sql, &took), SQLITE_DONE);
        if (took >= 400) break;
        n *= 4;
        CHECK((double)(tr_now_ns() - t0) / 1e6 < 8000);
    }
    sqlite3_close(db);
    sqlite3_close(other);
    sqlite3_reset_auto_extension();
}
