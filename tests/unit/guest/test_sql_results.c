/* Tests for the remembered results of guest/sql.c: an expensive read-only query answered again
 * from memory while the database is unchanged, and never once it changed (a write on the same
 * connection, another connection, DDL), nor for statements whose result could differ between
 * two runs over the same data (random(), the clock, temp tables, virtual tables), cheap ones,
 * or beyond the memory budget. Real isolate, real SQLite file. */
#include "test.h"
#include "db/db.h"
#include "guest/guest.h"
#include "unit/guest/sql_fixture.h"

#include <sqlite3.h>
#include <unistd.h>

/* A database with `big` (20,000 rows: enough work to be remembered). */
static void big_fx_init(sql_fx *f)
{
    sql_fx_init(f, "results.db",
                "CREATE TABLE big (id INTEGER PRIMARY KEY, grp INTEGER, v INTEGER);"
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
                "INSERT INTO big SELECT i, i % 10, i * 2 FROM n;");
}

/* JSON of the rows query(sql, params) resolves to (params: JS source of an array). */
static const char *q(sql_fx *f, const char *sql, const char *params)
{
    char *code = tr_asprintf("globalThis.out = 'pending';"
                             "__trailhost.query(%s, %s).then("
                             "  r => { globalThis.out = JSON.stringify(r); },"
                             "  e => { globalThis.out = 'error: ' + e.message; });",
                             sql, params);
    const char *out = sql_fx_run(f, code);
    tr_free(code);
    return out;
}

static guest_sql_stats stats(sql_fx *f)
{
    guest_sql_stats st;
    guest_sql_get_stats(f->env.sql, &st);
    return st;
}

static void exec(sql_fx *f, const char *sql)
{
    tr_error err = {0};
    if (db_exec(f->db, sql, &err) != 0) test_fail(__FILE__, __LINE__, "%s: %s", sql, err.msg);
}

#define SUM_SQL "'SELECT count(*), sum(v) FROM big'"

TEST(guest_sql_results_remembered_until_the_same_connection_writes)
{
    sql_fx f;
    big_fx_init(&f);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_EQ(stats(&f).kept, 1);
    CHECK_EQ(stats(&f).hits, 0);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_EQ(stats(&f).hits, 2);

    /* a write through the same connection (what execute() uses) */
    exec(&f, "INSERT INTO big VALUES (20001, 1, 5)");
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20001,400020005]]");
    CHECK_EQ(stats(&f).hits, 2);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20001,400020005]]");
    CHECK_EQ(stats(&f).hits, 3);

    exec(&f, "DELETE FROM big WHERE id > 10000");
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[10000,100010000]]");
    sql_fx_deinit(&f);
}

TEST(guest_sql_results_forgotten_when_another_connection_commits)
{
    sql_fx f;
    big_fx_init(&f);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_EQ(stats(&f).hits, 1);

    sqlite3 *other = NULL;
    CHECK_EQ(sqlite3_open(f.path, &other), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(other, "UPDATE big SET v = v + 1 WHERE id = 7", NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020001]]");
    CHECK_EQ(stats(&f).hits, 1);
    /* a rolled-back write changes nothing: remembered rows stay good */
    CHECK_EQ(sqlite3_exec(other, "BEGIN; DELETE FROM big; ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020001]]");
    /* a new table replacing the old one under the same name */
    CHECK_EQ(sqlite3_exec(other,
                          "DROP TABLE big; CREATE TABLE big (id INTEGER PRIMARY KEY, grp, v);"
                          "INSERT INTO big VALUES (1, 1, 42)",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[1,42]]");
    sqlite3_close(other);
    sql_fx_deinit(&f);
}

TEST(guest_sql_results_keyed_by_parameters)
{
    sql_fx f;
    big_fx_init(&f);
    const char *sql = "'SELECT count(*), sum(v) FROM big WHERE grp = ?'";
    CHECK_STR_EQ(q(&f, sql, "[3]"), "[[2000,39992000]]");
    CHECK_STR_EQ(q(&f, sql, "[4]"), "[[2000,39996000]]");
    /* column affinity makes '3' equal 3; a key of its own all the same */
    CHECK_STR_EQ(q(&f, sql, "['3']"), "[[2000,39992000]]");
    CHECK_STR_EQ(q(&f, sql, "[3]"), "[[2000,39992000]]");
    CHECK_STR_EQ(q(&f, sql, "[4]"), "[[2000,39996000]]");
    CHECK_STR_EQ(q(&f, sql, "['3']"), "[[2000,39992000]]");
    CHECK_EQ(stats(&f).kept, 3);
    CHECK_EQ(stats(&f).hits, 3);
    /* at most GUEST_RESULTS_PER_STMT parameter sets per statement */
    for (int i = 0; i < 12; i++) {
        char p[16];
        snprintf(p, sizeof p, "[%d]", 100 + i);
        CHECK_STR_EQ(q(&f, sql, p), "[[0,null]]");
    }
    CHECK_EQ(stats(&f).results, GUEST_RESULTS_PER_STMT);
    sql_fx_deinit(&f);
}

TEST(guest_sql_results_never_for_what_may_differ_or_is_cheap)
{
    sql_fx f;
    big_fx_init(&f);
    /* a view over an ordinary table is fine */
    exec(&f, "CREATE VIEW evens AS SELECT * FROM big WHERE id % 2 = 0;");
    CHECK_STR_EQ(q(&f, "'SELECT count(*) FROM evens'", "[]"), "[[10000]]");
    CHECK_STR_EQ(q(&f, "'SELECT count(*) FROM evens'", "[]"), "[[10000]]");
    CHECK_EQ(stats(&f).hits, 1);
    guest_sql_set_result_budget(f.env.sql, 0); /* forget it */
    guest_sql_set_result_budget(f.env.sql, GUEST_RESULT_BUDGET_BYTES);
    uint64_t kept = stats(&f).kept;

    exec(&f, "CREATE VIRTUAL TABLE docs USING fts5(body);"
             "INSERT INTO docs SELECT 'row ' || id FROM big;");
    static const char *const never[] = {
        "'SELECT count(*), max(random()) FROM big'",               /* random() */
        "'SELECT count(*), sum(v), datetime(\\'now\\') FROM big'", /* the clock */
        "'SELECT count(*), sum(v), CURRENT_TIMESTAMP FROM big'",
        "'SELECT count(*) FROM docs WHERE docs MATCH \\'row\\''", /* a virtual table */
        "'SELECT count(*) FROM big, json_each(\\'[1]\\')'",       /* an eponymous one */
        "'SELECT v FROM big WHERE id = 5'",                       /* cheap: a lookup by key */
        "'SELECT count(*), sum(v), last_insert_rowid() FROM big'",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(never); i++) {
        char *first = tr_strdup(q(&f, never[i], "[]"));
        CHECK(strncmp(first, "error", 5) != 0);
        q(&f, never[i], "[]");
        if (stats(&f).kept != kept) test_fail(__FILE__, __LINE__, "remembered: %s", never[i]);
        tr_free(first);
    }
    /* A guest cannot make a name mean something else on the connection (a temp table shadowing
     * big): remembered results stay right */
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_EQ(stats(&f).kept, kept + 1);
    CHECK_STR_EQ(q(&f, "'CREATE TEMP TABLE big AS SELECT * FROM main.big WHERE id <= 3'", "[]"),
                 "error: not authorized: temporary tables, views, triggers and indexes (big) are "
                 "not available: they would stay on the worker's connection, shared by every "
                 "later request; use a WITH clause or an ordinary table");
    CHECK_STR_EQ(q(&f, SUM_SQL, "[]"), "[[20000,400020000]]");
    CHECK_EQ(stats(&f).kept, kept + 1);
    sql_fx_deinit(&f);
}

TEST(guest_sql_results_within_the_budget)
{
    sql_fx f;
    big_fx_init(&f);
    const char *wide = "'SELECT id, printf(\\'%060d\\', v) FROM big WHERE grp = ?'";
    q(&f, wide, "[0]");
    size_t one = stats(&f).bytes; /* what one such result holds */
    CHECK(one > 100000);
    /* a result over a quarter of the budget is never kept */
    guest_sql_set_result_budget(f.env.sql, 0);
    guest_sql_set_result_budget(f.env.sql, 4 * one - 4096);
    q(&f, wide, "[1]");
    CHECK_EQ(stats(&f).results, 0);
    /* room for four or five: ten different ones stay within the budget, the latest kept */
    guest_sql_set_result_budget(f.env.sql, 5 * one);
    for (int i = 0; i < 10; i++) {
        char p[16];
        snprintf(p, sizeof p, "[%d]", i);
        q(&f, wide, p);
        CHECK(stats(&f).bytes <= 5 * one);
    }
    CHECK(stats(&f).results >= 4 && stats(&f).results <= 5);
    uint64_t hits = stats(&f).hits;
    q(&f, wide, "[9]");
    CHECK_EQ(stats(&f).hits, hits + 1);
    /* 0: nothing kept, everything forgotten */
    guest_sql_set_result_budget(f.env.sql, 0);
    CHECK_EQ(stats(&f).results, 0);
    CHECK_EQ(stats(&f).bytes, 0);
    q(&f, SUM_SQL, "[]");
    q(&f, SUM_SQL, "[]");
    CHECK_EQ(stats(&f).results, 0);
    sql_fx_deinit(&f);
}

/* A pragma that would change what the same SQL means (case_sensitive_like changes what LIKE
 * matches) is refused, so remembered results stay right. */
TEST(guest_sql_results_stay_right_as_pragmas_are_refused)
{
    sql_fx f;
    big_fx_init(&f);
    exec(&f, "CREATE TABLE words (w TEXT); INSERT INTO words SELECT 'Word' FROM big;");
    const char *like = "'SELECT count(*) FROM words WHERE w LIKE \\'word\\''";
    CHECK_STR_EQ(q(&f, like, "[]"), "[[20000]]");
    CHECK_STR_EQ(q(&f, like, "[]"), "[[20000]]");
    CHECK_EQ(stats(&f).hits, 1);
    CHECK_STR_EQ(q(&f, "'PRAGMA case_sensitive_like = 1'", "[]"),
                 "error: not authorized: PRAGMA case_sensitive_like cannot be set from a handler "
                 "(to 1): the worker's connection and the database are trail's; reading settings "
                 "and introspecting the schema are allowed");
    CHECK_STR_EQ(q(&f, like, "[]"), "[[20000]]");
    CHECK_EQ(stats(&f).hits, 2);
    sql_fx_deinit(&f);
}

/* ATTACH would let a guest's SQL open or create a database file anywhere trail may write. */
TEST(guest_sql_attach_and_detach_refused)
{
    sql_fx f;
    big_fx_init(&f);
    char *sql = tr_asprintf("'ATTACH \\'%s/other.db\\' AS other'", test_tmpdir());
    static const char why[] = "error: not authorized: ATTACH, DETACH and VACUUM are not available: "
                              "they open files other than the database";
    CHECK_STR_EQ(q(&f, sql, "[]"), why);
    tr_free(sql);
    CHECK_STR_EQ(q(&f, "'DETACH main'", "[]"), why);
    CHECK_STR_EQ(q(&f, "'VACUUM'", "[]"), why);
    sql = tr_asprintf("'VACUUM INTO \\'%s/copy.db\\''", test_tmpdir());
    CHECK_STR_EQ(q(&f, sql, "[]"), why);
    tr_free(sql);
    char *other = tr_asprintf("%s/other.db", test_tmpdir());
    CHECK_EQ(access(other, F_OK), -1);
    tr_free(other);
    other = tr_asprintf("%s/copy.db", test_tmpdir());
    CHECK_EQ(access(other, F_OK), -1);
    tr_free(other);
    sql_fx_deinit(&f);
}

/* Statements too large to keep prepared (SQLite's estimate over GUEST_MAX_CACHED_STMT_BYTES: here
 * a generated IN list of 50,000 numbers) run once each and are finalized; 64 of them cached
 * took hundreds of MiB. Small ones are still cached. Eight large ones show it (none is kept); each
 * takes a while to prepare in the ASan build, hence the time allowed on a busy machine. */
TEST_TIMEOUT(guest_sql_large_statements_are_not_cached, 60)
{
    sql_fx f;
    big_fx_init(&f);
    const char *code =
        "globalThis.out = 'pending';"
        "const list = Array.from({length: 50000}, (_, i) => i).join(',');"
        "(async () => {"
        "  let found = 0;"
        "  for (let i = 0; i < 8; i++) {"
        "    const r = await __trailhost.query(`SELECT ${i} WHERE 4242 IN (${list})`, []);"
        "    found += r.length === 1 && r[0][0] === i ? 1 : 0;"
        "  }"
        "  const small = await __trailhost.query('SELECT count(*) FROM big WHERE id < ?', [5]);"
        "  globalThis.out = found + ' ' + small[0][0];"
        "})().catch((e) => { globalThis.out = 'error: ' + e.message; });";
    CHECK_STR_EQ(sql_fx_run(&f, code), "8 4");
    CHECK_EQ(stats(&f).statements, 1); /* only the small one */
    sql_fx_deinit(&f);
}
