/* Tests for guest/tx.c: transactions through __trailhost in real isolates on a real loop and a
 * real SQLite file: commit and rollback, plain statements that wait (pending, never blocking)
 * until the transaction ends, a second txBegin that waits its turn, the time limit, an isolate
 * that goes away with its transaction open, BEGIN IMMEDIATE waiting for another connection's
 * write lock, the errors for ids that are not open, and a waiting statement without end. */
#include "test.h"
#include "db/db.h"
#include "guest/guest.h"

#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

typedef struct fx {
    loop *l;
    db_conn *db;
    guest_env env;
    jsg_isolate *iso[2];
    guest *g[2];
    int wakes;
} fx;

static void on_wake(void *owner)
{
    ((fx *)owner)->wakes++;
}

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    tr_error err = {0};
    CHECK_EQ(loop_new(&f->l), 0);
    char *p = tr_asprintf("%s/tx.db", test_tmpdir());
    CHECK_EQ(db_open(p, &f->db, &err), 0);
    tr_free(p);
    CHECK_EQ(db_exec(f->db, "CREATE TABLE t (v)", &err), 0);
    guest_env_init(&f->env, f->l, f->db, NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(jsg_isolate_new(NULL, &f->iso[i], &err), 0);
        CHECK_EQ(guest_new(f->iso[i], &f->env, on_wake, f, &f->g[i], &err), 0);
    }
}

static void fx_drop(fx *f, int i)
{
    guest_free(f->g[i]);
    jsg_isolate_free(f->iso[i]);
    f->g[i] = NULL;
    f->iso[i] = NULL;
}

static void fx_deinit(fx *f)
{
    for (int i = 0; i < 2; i++)
        if (f->iso[i]) fx_drop(f, i);
    guest_env_deinit(&f->env);
    db_close(f->db);
    loop_free(f->l);
}

/* Runs code in isolate i, then its pending jobs. */
static void js(fx *f, int i, const char *code)
{
    tr_error err = {0};
    int rc = jsg_eval(f->iso[i], code, strlen(code), "test.js", NULL, &err);
    if (rc == 0) rc = jsg_run_jobs(f->iso[i], &err);
    if (rc != 0) test_fail(__FILE__, __LINE__, "js: %s", err.msg);
}

/* JSON.stringify(globalThis.out) of isolate i. */
static char *out(fx *f, int i)
{
    static char text[4096];
    tr_error err = {0};
    jsg_ref r = 0;
    static const char code[] = "JSON.stringify(globalThis.out)";
    CHECK_EQ(jsg_eval(f->iso[i], code, sizeof code - 1, "out.js", &r, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(f->iso[i], r, &b, &err), 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data);
    tr_buf_free(&b);
    jsg_ref_free(f->iso[i], r);
    return text;
}

static void on_stop(loop *l, loop_timer *t)
{
    (void)t;
    loop_stop(l);
}

/* Runs the loop for ms milliseconds. */
static void run_for(fx *f, uint64_t ms)
{
    loop_timer t;
    loop_timer_init(&t, on_stop);
    loop_timer_start(f->l, &t, ms);
    CHECK_EQ(loop_run(f->l), 0);
    loop_timer_stop(f->l, &t);
}

/* Runs the loop until out(f, i) is want, for up to 10 s (a busy machine may be slow to run the
 * thread that releases a lock); returns out(f, i). */
static const char *run_until(fx *f, int i, const char *want)
{
    for (int n = 0; n < 200 && strcmp(out(f, i), want) != 0; n++) run_for(f, 50);
    return out(f, i);
}

static int64_t count_rows(fx *f)
{
    int64_t n = -1;
    tr_error err = {0};
    CHECK_EQ(db_query_int(f->db, "SELECT count(*) FROM t", &n, &err), 0);
    return n;
}

#define PRELUDE "globalThis.out = []; var h = __trailhost; "
#define CATCH   ".catch(e => out.push('error: ' + e.message));"

TEST(guest_tx_commit_and_a_waiting_query)
{
    fx f;
    fx_init(&f);
    js(&f, 0,
       PRELUDE "(async () => {"
               "  const tx = await h.txBegin();"
               "  await h.txExecute(tx, 'INSERT INTO t VALUES (?)', [1]);"
               "  h.query('SELECT count(*) FROM t', []).then(r => out.push('plain ' + r[0][0]));"
               "  out.push('in tx ' + (await h.txQuery(tx, 'SELECT count(*) FROM t', []))[0][0]);"
               "  await h.txCommit(tx);"
               "  out.push('committed');"
               "})()" CATCH);
    /* the plain query waited for the commit and runs from the loop, not inside txCommit */
    CHECK_STR_EQ(out(&f, 0), "[\"in tx 1\",\"committed\"]");
    int wakes = f.wakes;
    run_for(&f, 30);
    CHECK_STR_EQ(out(&f, 0), "[\"in tx 1\",\"committed\",\"plain 1\"]");
    CHECK(f.wakes > wakes);
    CHECK_EQ(count_rows(&f), 1);
    fx_deinit(&f);
}

TEST(guest_tx_rollback_and_ended_ids)
{
    fx f;
    fx_init(&f);
    js(&f, 0,
       PRELUDE
       "(async () => {"
       "  const tx = await h.txBegin();"
       "  await h.txExecute(tx, 'INSERT INTO t VALUES (1), (2)', []);"
       "  await h.txExecute(tx, 'INSERT INTO nope VALUES (1)', [])"
       "    .catch(e => out.push('sql: ' + e.message));"
       "  out.push((await h.txQuery(tx, 'SELECT count(*) FROM t', []))[0][0]);"
       "  await h.txRollback(tx);"
       "  await h.txCommit(tx).catch(e => out.push('again: ' + e.message));"
       "  await h.txQuery(12345, 'SELECT 1', []).catch(e => out.push('unknown: ' + e.message));"
       "  await h.txQuery('x', 'SELECT 1', []).catch(e => out.push('bad: ' + e.message));"
       "  out.push('rows ' + (await h.query('SELECT count(*) FROM t', []))[0][0]);"
       "})()" CATCH);
    CHECK_STR_EQ(out(&f, 0), "[\"sql: no such table: nope\",2,"
                             "\"again: transaction 1 is not open (it has ended)\","
                             "\"unknown: transaction 12345 is not open (it has ended)\","
                             "\"bad: the transaction id must be a positive integer\","
                             "\"rows 0\"]");
    CHECK_EQ(count_rows(&f), 0);
    fx_deinit(&f);
}

TEST(guest_tx_a_second_begin_and_other_isolates_wait)
{
    fx f;
    fx_init(&f);
    js(&f, 0, PRELUDE "h.txBegin().then(id => { globalThis.tx = id; out.push('A began'); });");
    CHECK_STR_EQ(out(&f, 0), "[\"A began\"]");
    /* B's transaction and B's plain statement wait for A's to end */
    js(&f, 1,
       PRELUDE
       "h.txBegin().then(async tx => {"
       "  out.push('B began, sees ' + (await h.txQuery(tx, 'SELECT count(*) FROM t', []))[0][0]);"
       "  await h.txExecute(tx, 'INSERT INTO t VALUES (2)', []);"
       "  await h.txCommit(tx);"
       "  out.push('B committed');"
       "})" CATCH "h.execute('INSERT INTO t VALUES (3)', []).then(n => out.push('B plain ' + n));");
    run_for(&f, 30);
    CHECK_STR_EQ(out(&f, 1), "[]");
    js(&f, 0,
       "h.txExecute(tx, 'INSERT INTO t VALUES (1)', [])"
       ".then(() => h.txCommit(tx)).then(() => out.push('A committed'))" CATCH);
    CHECK_STR_EQ(out(&f, 0), "[\"A began\",\"A committed\"]");
    run_for(&f, 30);
    CHECK_STR_EQ(out(&f, 1), "[\"B began, sees 1\",\"B committed\",\"B plain 1\"]");
    CHECK_EQ(count_rows(&f), 3);
    fx_deinit(&f);
}

TEST(guest_tx_times_out_and_rolls_back)
{
    fx f;
    fx_init(&f);
    guest_sql_set_tx_timeout(f.env.sql, 100);
    js(&f, 0,
       PRELUDE "(async () => {"
               "  const tx = await h.txBegin();"
               "  await h.txExecute(tx, 'INSERT INTO t VALUES (1)', []);"
               /* a plain query inside the transaction waits for its end: here, the time limit */
               "  out.push('plain ' + (await h.query('SELECT count(*) FROM t', []))[0][0]);"
               "  await h.txCommit(tx);"
               "})()" CATCH);
    CHECK_STR_EQ(out(&f, 0), "[]");
    run_for(&f, 400);
    CHECK_STR_EQ(out(&f, 0), "[\"plain 0\",\"error: transaction timed out\"]");
    CHECK_EQ(count_rows(&f), 0);
    fx_deinit(&f);
}

TEST(guest_tx_isolate_freed_with_its_transaction_open)
{
    fx f;
    fx_init(&f);
    js(&f, 0,
       PRELUDE "h.txBegin().then(tx => h.txExecute(tx, 'INSERT INTO t VALUES (1)', []))"
               ".then(() => out.push('A inserted'));");
    CHECK_STR_EQ(out(&f, 0), "[\"A inserted\"]");
    js(&f, 1,
       PRELUDE "h.query('SELECT count(*) FROM t', []).then(r => out.push(r[0][0]));"
               "h.query('SELECT 1', []).then(r => out.push(r[0][0]));");
    /* A also has a statement waiting behind its own transaction: dropped with it */
    js(&f, 0, "h.query('SELECT 2', []).then(r => out.push(r[0][0]));");
    fx_drop(&f, 0);
    run_for(&f, 30);
    CHECK_STR_EQ(out(&f, 1), "[0,1]");
    CHECK_EQ(count_rows(&f), 0);
    fx_deinit(&f);
}

static void *release_lock(void *arg);

/* Another connection to the fixture's database takes its write lock; a thread (*th) commits it
 * 300 ms later. */
static db_conn *hold_write_lock(pthread_t *th)
{
    db_conn *other;
    tr_error err = {0};
    char *p = tr_asprintf("%s/tx.db", test_tmpdir());
    CHECK_EQ(db_open(p, &other, &err), 0);
    tr_free(p);
    CHECK_EQ(db_exec(other, "BEGIN IMMEDIATE", &err), 0);
    CHECK_EQ(pthread_create(th, NULL, release_lock, other), 0);
    return other;
}

static void *release_lock(void *arg)
{
    db_conn *other = arg;
    usleep(300 * 1000);
    tr_error err = {0};
    CHECK_EQ(db_exec(other, "INSERT INTO t VALUES (0); COMMIT", &err), 0);
    return NULL;
}

TEST(guest_tx_begin_parks_for_a_busy_database)
{
    fx f;
    fx_init(&f);
    pthread_t th;
    db_conn *other = hold_write_lock(&th);
    uint64_t t0 = tr_now_ns();
    js(&f, 0,
       PRELUDE "h.txBegin().then(async tx => {"
               "  out.push((await h.txQuery(tx, 'SELECT count(*) FROM t', []))[0][0]);"
               "  await h.txCommit(tx);"
               "})" CATCH);
    /* the thread was not held: the begin is parked, its promise pending */
    uint64_t call_ms = (tr_now_ns() - t0) / 1000000;
    CHECK(call_ms < 200);
    CHECK_STR_EQ(out(&f, 0), "[]");
    /* retried from the loop once the other connection committed, it saw that commit */
    CHECK_STR_EQ(run_until(&f, 0, "[1]"), "[1]");
    pthread_join(th, NULL);
    CHECK(f.wakes >= 1);
    db_close(other);
    fx_deinit(&f);
}

/* A plain write that meets another connection's write lock parks the same way; a read does not
 * wait for it (WAL), and neither do the worker's other statements. */
TEST(guest_tx_plain_write_parks_for_a_busy_database)
{
    fx f;
    fx_init(&f);
    pthread_t th;
    db_conn *other = hold_write_lock(&th);
    uint64_t t0 = tr_now_ns();
    js(&f, 0,
       PRELUDE "h.execute('INSERT INTO t VALUES (7)', []).then(n => out.push('wrote ' + n))" CATCH
               "h.query('SELECT count(*) FROM t', [])"
               ".then(r => out.push('read ' + r[0][0]))" CATCH);
    uint64_t call_ms = (tr_now_ns() - t0) / 1000000;
    CHECK(call_ms < 200);
    CHECK_STR_EQ(out(&f, 0), "[\"read 0\"]");
    CHECK_STR_EQ(run_until(&f, 0, "[\"read 0\",\"wrote 1\"]"), "[\"read 0\",\"wrote 1\"]");
    pthread_join(th, NULL);
    CHECK_EQ(count_rows(&f), 2);
    db_close(other);
    fx_deinit(&f);
}

/* A parked statement whose isolate goes away is dropped with it: nothing runs it later. */
TEST(guest_tx_parked_statement_dropped_with_its_isolate)
{
    fx f;
    fx_init(&f);
    pthread_t th;
    db_conn *other = hold_write_lock(&th);
    js(&f, 0, PRELUDE "h.execute('INSERT INTO t VALUES (7)', []).then(n => out.push(n))" CATCH);
    js(&f, 1, PRELUDE "h.execute('INSERT INTO t VALUES (8)', []).then(n => out.push(n))" CATCH);
    fx_drop(&f, 0);
    CHECK_STR_EQ(run_until(&f, 1, "[1]"), "[1]");
    pthread_join(th, NULL);
    run_for(&f, 100);
    CHECK_EQ(count_rows(&f), 2); /* the other connection's row and isolate 1's */
    db_close(other);
    fx_deinit(&f);
}

/* COMMIT that fails (a deferred foreign key) rejects and rolls back; a COMMIT statement inside
 * the transaction ends it, and its next call says so. */
TEST(guest_tx_failed_commit_and_a_statement_that_ends_it)
{
    fx f;
    fx_init(&f);
    tr_error err = {0};
    CHECK_EQ(db_exec(f.db,
                     "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                     "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY "
                     "DEFERRED)",
                     &err),
             0);
    js(&f, 0,
       PRELUDE "(async () => {"
               "  let tx = await h.txBegin();"
               "  await h.txExecute(tx, 'INSERT INTO t VALUES (1)', []);"
               "  await h.txExecute(tx, 'INSERT INTO child VALUES (42)', []);"
               "  await h.txCommit(tx).catch(e => out.push('commit: ' + e.message));"
               "  await h.txRollback(tx).catch(e => out.push('after: ' + e.message));"
               "  tx = await h.txBegin();"
               "  await h.txExecute(tx, 'INSERT INTO t VALUES (2)', []);"
               "  await h.txExecute(tx, 'COMMIT', []);"
               "  await h.txQuery(tx, 'SELECT 1', []).catch(e => out.push('ended: ' + e.message));"
               "  out.push('rows ' + (await h.query('SELECT group_concat(v) FROM t', []))[0][0]);"
               "})()" CATCH);
    CHECK_STR_EQ(out(&f, 0), "[\"commit: FOREIGN KEY constraint failed\","
                             "\"after: transaction 1 is not open (it has ended)\","
                             "\"ended: the transaction has ended: SQLite rolled it back after an "
                             "error, or a statement in it ended it\",\"rows 2\"]");
    fx_deinit(&f);
}

/* A statement that waited for a transaction runs from the loop, outside any call of its
 * isolate: it gets a budget of its own (the isolate's timeout), and one without end is stopped
 * there with a rejection saying so; the isolate and the connection go on working. */
TEST(guest_tx_waiting_statement_without_end_is_stopped)
{
    fx f;
    fx_init(&f);
    jsg_set_timeout(f.iso[0], 200u * 1000 * 1000); /* 200 ms */
    js(&f, 0,
       PRELUDE "(async () => {"
               "  const tx = await h.txBegin();"
               "  h.query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
               "SELECT count(*) FROM c', [])"
               "    .then(r => out.push('rows ' + r.length), e => out.push('error: ' + e.message));"
               "  await h.txCommit(tx);"
               "  out.push('committed');"
               "})()" CATCH);
    CHECK_STR_EQ(out(&f, 0), "[\"committed\"]");
    run_for(&f, 1500); /* without the budget the statement would hold the loop for ever */
    CHECK_STR_EQ(out(&f, 0),
                 "[\"committed\",\"error: interrupted: the SQL statement ran past its deadline\"]");
    js(&f, 0, PRELUDE "h.query('SELECT 41 + 1', []).then(r => out.push(r[0][0]))" CATCH);
    run_for(&f, 10);
    CHECK_STR_EQ(out(&f, 0), "[42]");
    fx_deinit(&f);
}
