/* Tests for guest/sql.c: query()/execute() through __trailhost in a real isolate over a real
 * SQLite file: every SQL type both ways (bigint at and beyond 2^53, text with emoji and NUL,
 * blobs), parameters the host refuses, SQL errors carrying SQLite's message, one statement per
 * call, the statement cache (the same SQL reused, more distinct statements than it holds), and a
 * write waiting for another connection's lock. */
#include "test.h"
#include "db/db.h"
#include "guest/guest.h"
#include "unit/guest/sql_fixture.h"

#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

static void vals_fx_init(sql_fx *f)
{
    sql_fx_init(f, "sql.db", "CREATE TABLE vals (id INTEGER PRIMARY KEY, v ANY) STRICT");
}

TEST(guest_sql_values_round_trip)
{
    sql_fx f;
    vals_fx_init(&f);
    const char *got = sql_fx_run(
        &f,
        "globalThis.out = [];"
        "const h = __trailhost;"
        "const d = (v) => v === null ? 'null' : v instanceof Uint8Array ? `bytes[${v}]` :"
        "  `${typeof v}:${typeof v === 'string' ? JSON.stringify(v) : Object.is(v, -0) ? '-0' : "
        "v}`;"
        "const ins = [null, 0, -0, 2**53 - 1, -(2**53 - 1), 2**53, 2n**53n, -(2n**53n),"
        "  9223372036854775807n, -9223372036854775808n, 5n, 0.1, -1e-300, 1e19, NaN,"
        "  '', 'π 🌍', 'a\\0b', new Uint8Array([0, 255, 7]), new Uint8Array(0)];"
        "(async () => {"
        "  for (const v of ins) await h.execute('INSERT INTO vals (v) VALUES (?)', [v]);"
        "  const rows = await h.query('SELECT v, typeof(v) FROM vals ORDER BY id', []);"
        "  out.push(...rows.map(([v, t]) => d(v) + '/' + t));"
        "  out.push('changed ' + await h.execute('UPDATE vals SET v = v WHERE id <= ?', [3n]));"
        "  out.push('nul ' + (await h.query('SELECT length(CAST(? AS BLOB))', ['a\\0b']))[0][0]);"
        "})().catch(e => out.push('error ' + e.message));");
    CHECK_STR_EQ(got, "null/null,number:0/integer,number:0/integer,"
                      "number:9007199254740991/integer,number:-9007199254740991/integer,"
                      "bigint:9007199254740992/integer,bigint:9007199254740992/integer,"
                      "bigint:-9007199254740992/integer,bigint:9223372036854775807/integer,"
                      "bigint:-9223372036854775808/integer,number:5/integer,number:0.1/real,"
                      "number:-1e-300/real,number:10000000000000000000/real,null/null,"
                      "string:\"\"/text,string:\"π 🌍\"/text,string:\"a\\u0000b\"/text,"
                      "bytes[0,255,7]/blob,bytes[]/blob,changed 3,nul 3");
    sql_fx_deinit(&f);
}

TEST(guest_sql_errors_reject_with_sqlites_message)
{
    sql_fx f;
    vals_fx_init(&f);
    const char *got = sql_fx_run(
        &f,
        "globalThis.out = [];"
        "const h = __trailhost;"
        "const e = (p) => p.then(() => out.push('ok'), (x) => out.push(x.name + ': ' + x.message));"
        "(async () => {"
        "  await e(h.query('SELEC 1', []));"
        "  await e(h.query('SELECT * FROM missing', []));"
        "  await e(h.execute('INSERT INTO vals (id) VALUES (1), (1)', []));"
        "  await e(h.query('SELECT ?, ?', [1]));"
        "  await e(h.query('SELECT 1; SELECT 2', []));"
        "  await e(h.query('SELECT 1; -- trailing comment', []));"
        "  await e(h.query('SELECT ?', [{}]));"
        "  await e(h.query('SELECT ?', 'x'));"
        "  await e(h.query('', []));"
        "})();");
    CHECK_STR_EQ(got, "Error: near \"SELEC\": syntax error,"
                      "Error: no such table: missing,"
                      "Error: UNIQUE constraint failed: vals.id,"
                      "Error: the statement has 2 parameters but 1 was given,"
                      "Error: one SQL statement per call: more text follows the first statement,"
                      "ok,"
                      "Error: SQL parameter 1: unsupported type (use null, a number, a bigint, a "
                      "string or a Uint8Array),"
                      "Error: SQL parameters must be an array,"
                      "Error: the SQL text holds no statement");
    sql_fx_deinit(&f);
}

TEST(guest_sql_statement_cache_reuse_and_eviction)
{
    sql_fx f;
    vals_fx_init(&f);
    /* 200 distinct statements (more than the cache's 64), each run twice, interleaved with a
     * statement that stays hot: every result is still right */
    const char *got = sql_fx_run(&f, "globalThis.out = [];"
                                     "const h = __trailhost;"
                                     "(async () => {"
                                     "  let sum = 0;"
                                     "  for (let round = 0; round < 2; round++)"
                                     "    for (let i = 0; i < 200; i++) {"
                                     "      sum += (await h.query(`SELECT ${i} + ?`, [1]))[0][0];"
                                     "      sum += (await h.query('SELECT ?', [i]))[0][0];"
                                     "    }"
                                     "  out.push(sum);"
                                     "})().catch(e => out.push('error ' + e.message));");
    /* 2 * (sum(i + 1) + sum(i)) for i < 200 = 2 * (20100 + 19900) */
    CHECK_STR_EQ(got, "80000");
    sql_fx_deinit(&f);
}

static void *release_after_300ms(void *arg)
{
    usleep(300 * 1000);
    tr_error err = {0};
    CHECK_EQ(db_exec(arg, "COMMIT", &err), 0);
    return NULL;
}

/* A write that meets another connection's write lock waits for it (the busy timeout) instead of
 * failing at once. */
TEST(guest_sql_write_waits_for_a_busy_database)
{
    sql_fx f;
    vals_fx_init(&f);
    db_conn *other;
    tr_error err = {0};
    char *p = tr_asprintf("%s/sql.db", test_tmpdir());
    CHECK_EQ(db_open(p, &other, &err), 0);
    tr_free(p);
    CHECK_EQ(db_exec(other, "BEGIN IMMEDIATE; INSERT INTO vals (v) VALUES ('other')", &err), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, release_after_300ms, other), 0);
    uint64_t t0 = tr_now_ns();
    const char *got =
        sql_fx_run(&f, "globalThis.out = [];"
                       "__trailhost.execute(\"INSERT INTO vals (v) VALUES ('mine')\", [])"
                       ".then(n => out.push(n), e => out.push(e.message));");
    uint64_t waited_ms = (tr_now_ns() - t0) / 1000000;
    pthread_join(th, NULL);
    CHECK_STR_EQ(got, "1");
    CHECK(waited_ms >= 250);
    int64_t n = 0;
    CHECK_EQ(db_query_int(f.db, "SELECT count(*) FROM vals", &n, &err), 0);
    CHECK_EQ(n, 2);
    db_close(other);
    sql_fx_deinit(&f);
}

/* A plain BEGIN or SAVEPOINT is refused and undone: the connection is every request's. */
TEST(guest_sql_plain_begin_is_refused)
{
    sql_fx f;
    vals_fx_init(&f);
    const char *got =
        sql_fx_run(&f, "globalThis.out = [];"
                       "const h = __trailhost;"
                       "const e = (p) => p.then((v) => out.push('ok ' + v), (x) => "
                       "out.push(x.message.slice(0, 40)));"
                       "(async () => {"
                       "  await e(h.execute('BEGIN', []));"
                       "  await e(h.execute(\"INSERT INTO vals (v) VALUES ('kept')\", []));"
                       "  await e(h.execute('SAVEPOINT sp', []));"
                       "  await e(h.execute('COMMIT', []));"
                       "})();");
    CHECK_STR_EQ(got, "BEGIN and SAVEPOINT are not allowed in q,ok 1,"
                      "BEGIN and SAVEPOINT are not allowed in q,"
                      "cannot commit - no transaction is active");
    CHECK(sqlite3_get_autocommit(db_handle(f.db)));
    int64_t n = 0;
    tr_error err = {0};
    CHECK_EQ(db_query_int(f.db, "SELECT count(*) FROM vals", &n, &err), 0);
    CHECK_EQ(n, 1); /* committed by itself, not held in a transaction */
    sql_fx_deinit(&f);
}
