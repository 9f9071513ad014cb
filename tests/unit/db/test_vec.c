/* Tests for db/vec.c: vec_f32(), vec_length(), vec_distance_cosine() and vec_distance_l2() on a
 * real connection from db_open(), with the values and error messages sqlite-vec documents for the
 * same calls, BLOB (Float32Array bytes) and JSON input, and the reference's Vector Search query. */
#include "test.h"
#include "db/db.h"

#include <math.h>
#include <sqlite3.h>

static db_conn *open_db(void)
{
    db_conn *c;
    tr_error err = {0};
    char *p = tr_asprintf("%s/vec.db", test_tmpdir());
    CHECK_EQ(db_open(p, &c, &err), 0);
    tr_free(p);
    return c;
}

/* Runs sql with one optional blob parameter; *d gets the first column as a double, *type its
 * type; returns the SQLite result code of the step, with the message in msg. */
static int eval(db_conn *c, const char *sql, const void *blob, int blob_len, double *d, int *type,
                char *msg, size_t cap)
{
    sqlite3 *h = db_handle(c);
    sqlite3_stmt *st = NULL;
    CHECK_EQ(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (blob) sqlite3_bind_blob(st, 1, blob, blob_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *type = sqlite3_column_type(st, 0);
        *d = sqlite3_column_double(st, 0);
    }
    snprintf(msg, cap, "%s", sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return rc;
}

static double num(db_conn *c, const char *sql)
{
    double d = 0;
    int type = 0;
    char msg[300];
    int rc = eval(c, sql, NULL, 0, &d, &type, msg, sizeof msg);
    if (rc != SQLITE_ROW) test_fail(__FILE__, __LINE__, "%s: %s", sql, msg);
    return d;
}

static void check_error(db_conn *c, const char *sql, const char *want)
{
    double d;
    int type;
    char msg[300];
    int rc = eval(c, sql, NULL, 0, &d, &type, msg, sizeof msg);
    CHECK_EQ(rc, SQLITE_ERROR);
    CHECK_STR_EQ(msg, want);
}

TEST(db_vec_f32_blob_and_json)
{
    db_conn *c = open_db();
    sqlite3 *h = db_handle(c);
    sqlite3_stmt *st = NULL;
    /* sqlite-vec's documented example: X'CDCCCC3DCDCC4C3E9A99993E00008040', subtype 223 */
    CHECK_EQ(sqlite3_prepare_v2(h,
                                "SELECT hex(vec_f32('[.1, .2, .3, 4]')), "
                                "vec_length(' [1, 2,3 ] '), hex(vec_f32(X'AABBCCDD'))",
                                -1, &st, NULL),
             SQLITE_OK);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "CDCCCC3DCDCC4C3E9A99993E00008040");
    CHECK_EQ(sqlite3_column_int(st, 1), 3);
    CHECK_STR_EQ((const char *)sqlite3_column_text(st, 2), "AABBCCDD");
    sqlite3_finalize(st);
    /* a Float32Array arrives as its little-endian bytes */
    float v[3] = {1.5f, -2.0f, 0.25f};
    CHECK_EQ(sqlite3_prepare_v2(h, "SELECT vec_f32(?)", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, v, sizeof v, SQLITE_STATIC);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    CHECK_EQ(sqlite3_column_bytes(st, 0), (int)sizeof v);
    CHECK(memcmp(sqlite3_column_blob(st, 0), v, sizeof v) == 0);
    sqlite3_finalize(st);
    db_close(c);
}

TEST(db_vec_errors_match_sqlite_vec)
{
    db_conn *c = open_db();
    check_error(c, "SELECT vec_f32(X'AA')",
                "invalid float32 vector BLOB length. Must be divisible by 4, found 1");
    check_error(c, "SELECT vec_f32(X'')", "zero-length vectors are not supported.");
    check_error(c, "SELECT vec_f32('[]')", "zero-length vectors are not supported.");
    check_error(c, "SELECT vec_f32('')", "zero-length vectors are not supported.");
    check_error(c, "SELECT vec_f32('invalid')",
                "JSON array parsing error: Input does not start with '['");
    check_error(c, "SELECT vec_f32('[1, \"a\"]')", "JSON parsing error");
    check_error(c, "SELECT vec_f32('[1, 2')", "JSON parsing error");
    check_error(c, "SELECT vec_f32('[1, 2] x')", "JSON parsing error");
    check_error(c, "SELECT vec_f32('[1e39]')", "JSON parsing error");
    check_error(c, "SELECT vec_f32(12)",
                "Input must have type BLOB (compact format) or TEXT (JSON), found INTEGER");
    check_error(c, "SELECT vec_f32(NULL)",
                "Input must have type BLOB (compact format) or TEXT (JSON), found NULL");
    check_error(c, "SELECT vec_distance_cosine('[1, 2]', '[1, 2, 3]')",
                "Vector dimension mistmatch. First vector has 2 dimensions, while the second has 3 "
                "dimensions.");
    check_error(
        c, "SELECT vec_distance_cosine('x', '[1]')",
        "Error reading 1st vector: JSON array parsing error: Input does not start with '['");
    check_error(c, "SELECT vec_distance_l2('[1]', X'00')",
                "Error reading 2nd vector: invalid float32 vector BLOB length. Must be divisible "
                "by 4, found 1");
    db_close(c);
}

TEST(db_vec_distances_match_sqlite_vec)
{
    db_conn *c = open_db();
    /* the values sqlite-vec's documentation gives for these calls */
    CHECK(num(c, "SELECT vec_distance_cosine('[1, 1]', '[2, 2]')") == 2.220446049250313e-16);
    CHECK(num(c, "SELECT vec_distance_cosine('[1, 1]', '[-2, -2]')") == 2.0);
    CHECK(fabs(num(c, "SELECT vec_distance_cosine('[1.1, 2.2, 3.3]', '[4.4, 5.5, 6.6]')") -
               0.02536807395517826) < 1e-7);
    CHECK(num(c, "SELECT vec_distance_cosine(X'AABBCCDD', X'00112233')") == 2.0);
    CHECK(fabs(num(c, "SELECT vec_distance_l2('[1, 1]', '[2, 2]')") - 1.4142135381698608) < 1e-7);
    CHECK(fabs(num(c, "SELECT vec_distance_l2('[1.1, 2.2, 3.3]', '[4.4, 5.5, 6.6]')") -
               5.7157673835754395) < 1e-6);
    /* orthogonal vectors; BLOB against JSON */
    CHECK(fabs(num(c, "SELECT vec_distance_cosine(vec_f32('[1, 0]'), '[0, 3]')") - 1.0) < 1e-7);
    /* a zero vector has no direction: NaN, which SQLite stores as NULL (as with sqlite-vec) */
    double d;
    int type;
    char msg[300];
    CHECK_EQ(eval(c, "SELECT vec_distance_cosine('[0, 0]', '[1, 2]')", NULL, 0, &d, &type, msg,
                  sizeof msg),
             SQLITE_ROW);
    CHECK_EQ(type, SQLITE_NULL);
    db_close(c);
}

/* The reference's Vector Search query over a coffees table, with a Float32Array-like parameter. */
TEST(db_vec_reference_search_query)
{
    db_conn *c = open_db();
    tr_error err = {0};
    CHECK_EQ(db_exec(c,
                     "CREATE TABLE coffees (name TEXT, description TEXT, flavor_notes TEXT, "
                     "embedding BLOB);"
                     "INSERT INTO coffees VALUES "
                     "('north', 'a', 'x', vec_f32('[0, 1, 0]')),"
                     "('east', 'b', 'y', vec_f32('[1, 0, 0]')),"
                     "('north-east', 'c', 'z', vec_f32('[1, 1, 0]'));",
                     &err),
             0);
    sqlite3 *h = db_handle(c);
    sqlite3_stmt *st = NULL;
    CHECK_EQ(sqlite3_prepare_v2(h,
                                "SELECT c.name, c.description, c.flavor_notes, "
                                "vec_distance_cosine(c.embedding, vec_f32(?)) as distance "
                                "FROM coffees c ORDER BY distance ASC LIMIT ?",
                                -1, &st, NULL),
             SQLITE_OK);
    float q[3] = {0.9f, 0.1f, 0.0f};
    sqlite3_bind_blob(st, 1, q, sizeof q, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, 2);
    const char *want[] = {"east", "north-east"};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
        CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), want[i]);
        CHECK_EQ(sqlite3_column_type(st, 3), SQLITE_FLOAT);
    }
    CHECK_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    db_close(c);
}
