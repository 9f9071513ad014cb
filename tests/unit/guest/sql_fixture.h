/* tests/unit/guest/sql_fixture.h: a guest (isolate with __trailhost) over a fresh SQLite file,
 * for the tests of guest/sql.c. Statements settle at once there (no transaction is open), so
 * code run with sql_fx_run() has its results after one round of jobs. */
#ifndef TRAIL_TESTS_UNIT_GUEST_SQL_FIXTURE_H
#define TRAIL_TESTS_UNIT_GUEST_SQL_FIXTURE_H

#include "db/db.h"
#include "guest/guest.h"

typedef struct sql_fx {
    char *path; /* the database file */
    db_conn *db;
    guest_env env;
    jsg_isolate *iso;
    guest *g;
} sql_fx;

/* Creates test_tmpdir()/name with schema (SQL, may hold several statements) and a guest on it. */
void sql_fx_init(sql_fx *f, const char *name, const char *schema);
void sql_fx_deinit(sql_fx *f);

/* Evaluates code, runs the jobs, and returns String(globalThis.out) (a static buffer, valid
 * until the next call). A JS exception fails the test. */
const char *sql_fx_run(sql_fx *f, const char *code);

#endif
