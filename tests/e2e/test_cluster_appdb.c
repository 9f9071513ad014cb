/* tests/e2e/test_cluster_appdb.c: trail's own statements in cluster mode (cluster/appdb.c) against
 * three real nodes: prepared on a node's schema mirror, run on the leader over the thread's held
 * connection, with the leader's codes and messages, transactions on that connection, another
 * connection's lock waited out or refused, and a leader killed under an open transaction. */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <time.h>

#include "cluster/appdb.h"
#include "db/db.h"
#include "e2e/cluster_util.h"
#include "test.h"

static int64_t count_notes(sqlite3 *h, const char *body)
{
    adb_stmt *st = NULL;
    CHECK_EQ(adb_prepare(h, "SELECT count(*) FROM notes WHERE body = ?1", &st), SQLITE_OK);
    CHECK_EQ(adb_bind_text(st, 1, body, -1), SQLITE_OK);
    CHECK_EQ(adb_step(st), SQLITE_ROW);
    int64_t n = adb_column_int64(st, 0);
    CHECK_EQ(adb_step(st), SQLITE_DONE);
    adb_finalize(st);
    return n;
}

static int insert_note(sqlite3 *h, int64_t id, const char *body)
{
    adb_stmt *st = NULL;
    CHECK_EQ(adb_prepare(h, "INSERT INTO notes (id, body) VALUES (?1, ?2)", &st), SQLITE_OK);
    adb_bind_int64(st, 1, id);
    adb_bind_text(st, 2, body, -1);
    int rc = adb_step(st);
    adb_finalize(st);
    return rc;
}

/* Another thread's transaction holding the leader's write lock for hold_ms. */
typedef struct holder {
    sqlite3 *h;
    unsigned hold_ms;
    volatile int began;
} holder;

static void *hold_lock(void *arg)
{
    holder *w = arg;
    CHECK_EQ(adb_exec(w->h, "BEGIN IMMEDIATE"), SQLITE_OK);
    CHECK_EQ(insert_note(w->h, 900, "held"), SQLITE_DONE);
    w->began = 1;
    nanosleep(&(struct timespec){w->hold_ms / 1000, (long)(w->hold_ms % 1000) * 1000000L}, NULL);
    CHECK_EQ(adb_exec(w->h, "COMMIT"), SQLITE_OK);
    return NULL;
}

TEST_TIMEOUT(e2e_cluster_appdb_statements_on_the_leader, 600)
{
    char dir[600];
    for (int i = 1; i <= 3; i++) {
        snprintf(dir, sizeof dir, "%s/n%d", test_tmpdir(), i);
        cu_app_dir(dir);
    }
    cu_node n[3];
    cu_cluster_start(n, NULL);
    int li = cu_leader(n, 3);
    int f = (li + 1) % 3;

    /* this process's statements: prepared on a follower's schema mirror, run on the leader */
    const char *addrs[] = {n[f].addr, n[(li + 2) % 3].addr, n[li].addr};
    adb_cluster_publish(addrs, 3);
    CHECK(adb_cluster_mode());
    char path[700];
    snprintf(path, sizeof path, "%s/data/main.db", n[f].dir);
    db_conn *mirror = NULL;
    tr_error err = {0};
    CHECK_EQ(db_open(path, &mirror, &err), 0);
    sqlite3 *h = db_handle(mirror);

    /* the migration's row is the cluster's */
    CHECK_EQ(count_notes(h, "from the migration"), 1);

    /* a write: its changes and rowid */
    CHECK_EQ(insert_note(h, 10, "ten"), SQLITE_DONE);
    CHECK_EQ(adb_changes(h), 1);
    CHECK_EQ(adb_last_insert_rowid(h), 10);
    CHECK_EQ(count_notes(h, "ten"), 1);

    /* a write that returns rows (run inside BEGIN IMMEDIATE ... COMMIT on the leader) */
    adb_stmt *st = NULL;
    CHECK_EQ(adb_prepare(h, "INSERT INTO notes (body) VALUES (?1) RETURNING id, body", &st),
             SQLITE_OK);
    CHECK_EQ(adb_bind_parameter_count(st), 1);
    CHECK_EQ(adb_column_count(st), 2);
    adb_bind_text(st, 1, "returned", -1);
    CHECK_EQ(adb_step(st), SQLITE_ROW);
    CHECK(adb_column_int64(st, 0) > 10);
    CHECK_STR_EQ((const char *)adb_column_text(st, 1), "returned");
    CHECK_STR_EQ(adb_column_name(st, 1), "body");
    CHECK_EQ(adb_step(st), SQLITE_DONE);
    adb_finalize(st);
    CHECK_EQ(count_notes(h, "returned"), 1);
    /* the leader took the next write: the one above was replicated, not left in its WAL */
    CHECK_EQ(insert_note(h, 100, "hundred"), SQLITE_DONE);

    /* the leader's codes and messages, with RETURNING and without */
    CHECK_EQ(insert_note(h, 10, "again"), SQLITE_CONSTRAINT);
    CHECK_EQ(adb_extended_errcode(h), SQLITE_CONSTRAINT_PRIMARYKEY);
    CHECK_CONTAINS(adb_errmsg(h), "UNIQUE constraint failed");
    CHECK_EQ(adb_prepare(h, "INSERT INTO notes (id, body) VALUES (10, 'x') RETURNING id", &st),
             SQLITE_OK);
    CHECK_EQ(adb_step(st), SQLITE_CONSTRAINT);
    CHECK_EQ(adb_extended_errcode(h), SQLITE_CONSTRAINT_PRIMARYKEY);
    CHECK_CONTAINS(adb_errmsg(h), "UNIQUE constraint failed");
    adb_finalize(st);
    CHECK_EQ(adb_get_autocommit(h), 1);

    /* a statement the mirror does not know fails there, as on one node */
    CHECK(adb_prepare(h, "SELECT * FROM nowhere", &st) != SQLITE_OK);
    CHECK_CONTAINS(adb_errmsg(h), "no such table");

    /* values of every type, and as text */
    CHECK_EQ(adb_prepare(h, "SELECT 42, 1.5, 'x', x'00ff', NULL", &st), SQLITE_OK);
    CHECK_EQ(adb_step(st), SQLITE_ROW);
    CHECK_EQ(adb_column_type(st, 0), SQLITE_INTEGER);
    CHECK_STR_EQ((const char *)adb_column_text(st, 0), "42");
    CHECK_EQ(adb_column_bytes(st, 0), 2);
    CHECK_EQ(adb_column_type(st, 1), SQLITE_FLOAT);
    CHECK(adb_column_double(st, 1) == 1.5);
    CHECK_STR_EQ((const char *)adb_column_text(st, 1), "1.5");
    CHECK_EQ(adb_column_type(st, 2), SQLITE_TEXT);
    CHECK_EQ(adb_column_type(st, 3), SQLITE_BLOB);
    CHECK_EQ(adb_column_bytes(st, 3), 2);
    CHECK_EQ(((const unsigned char *)adb_column_blob(st, 3))[1], 0xff);
    CHECK_EQ(adb_column_type(st, 4), SQLITE_NULL);
    CHECK(adb_column_text(st, 4) == NULL);
    CHECK_EQ(adb_step(st), SQLITE_DONE);
    /* reset runs it again */
    CHECK_EQ(adb_reset(st), SQLITE_OK);
    CHECK_EQ(adb_step(st), SQLITE_ROW);
    adb_finalize(st);

    /* a transaction on the held connection: rolled back, then committed */
    CHECK_EQ(adb_exec(h, "BEGIN IMMEDIATE"), SQLITE_OK);
    CHECK_EQ(adb_get_autocommit(h), 0);
    CHECK_EQ(insert_note(h, 20, "rolled back"), SQLITE_DONE);
    CHECK_EQ(count_notes(h, "rolled back"), 1); /* seen inside it */
    CHECK_EQ(adb_exec(h, "ROLLBACK"), SQLITE_OK);
    CHECK_EQ(adb_get_autocommit(h), 1);
    CHECK_EQ(count_notes(h, "rolled back"), 0);
    CHECK_EQ(adb_exec(h, "BEGIN IMMEDIATE"), SQLITE_OK);
    CHECK_EQ(adb_exec(h, "SAVEPOINT inner"), SQLITE_OK);
    CHECK_EQ(insert_note(h, 21, "committed"), SQLITE_DONE);
    CHECK_EQ(adb_exec(h, "ROLLBACK TO inner; RELEASE inner"), SQLITE_OK);
    CHECK_EQ(adb_get_autocommit(h), 0);
    CHECK_EQ(insert_note(h, 22, "committed"), SQLITE_DONE);
    CHECK_EQ(adb_exec(h, "COMMIT"), SQLITE_OK);
    CHECK_EQ(adb_get_autocommit(h), 1);
    CHECK_EQ(count_notes(h, "committed"), 1);

    /* another thread's write lock: refused at once without a busy wait, waited out with one */
    holder w = {h, 1500, 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, hold_lock, &w), 0);
    while (!w.began)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    adb_set_busy_wait(0);
    uint64_t t0 = tr_now_ns();
    CHECK_EQ(insert_note(h, 30, "busy"), SQLITE_BUSY);
    double refused_ms = (double)(tr_now_ns() - t0) / 1e6;
    adb_set_busy_wait(30000);
    t0 = tr_now_ns();
    CHECK_EQ(insert_note(h, 31, "waited"), SQLITE_DONE);
    double waited_ms = (double)(tr_now_ns() - t0) / 1e6;
    pthread_join(th, NULL);
    CHECK_EQ(count_notes(h, "held"), 1);
    CHECK_EQ(count_notes(h, "busy"), 0);
    CHECK(refused_ms < 1500);
    CHECK(waited_ms > 200);
    test_report("appdb busy: refused at once in %.0f ms; waited %.0f ms for a 1.5 s lock",
                refused_ms, waited_ms);

    /* the leader killed under an open transaction: it is over (rolled back), and the next
     * statement finds the new leader */
    CHECK_EQ(adb_exec(h, "BEGIN IMMEDIATE"), SQLITE_OK);
    CHECK_EQ(insert_note(h, 40, "lost"), SQLITE_DONE);
    th_server_signal(&n[li].srv, SIGKILL);
    CHECK_EQ(th_server_wait(&n[li].srv, 20000), 128 + SIGKILL);
    int rc = insert_note(h, 41, "lost");
    CHECK(rc == SQLITE_ABORT || rc == SQLITE_IOERR);
    CHECK_EQ(adb_get_autocommit(h), 1);
    CHECK(adb_exec(h, "COMMIT") != SQLITE_OK);
    adb_set_busy_wait(30000);
    uint64_t deadline = tr_now_ns() + 60000000000ull;
    t0 = tr_now_ns();
    while ((rc = insert_note(h, 42, "after")) != SQLITE_DONE && tr_now_ns() < deadline)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    CHECK_EQ(rc, SQLITE_DONE);
    test_report("appdb failover: writable again %.1f s after the leader was killed",
                (double)(tr_now_ns() - t0) / 1e9);
    CHECK_EQ(count_notes(h, "lost"), 0);
    CHECK_EQ(count_notes(h, "after"), 1);

    db_close(mirror);
    adb_cluster_publish(NULL, 0);
    for (int i = 0; i < 3; i++)
        if (i != li) CHECK_EQ(th_server_stop(&n[i].srv), 0);
}
