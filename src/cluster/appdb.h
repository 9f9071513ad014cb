/* cluster/appdb.h: trail's own statements on the application database, on one node or in a
 * cluster: the Record APIs' and sign-in's statements run through these calls, which are SQLite's
 * (the same names with adb_ for sqlite3_, the same codes) on the worker's connection on one node,
 * and on the cluster's leader in cluster mode.
 *
 * DESIGN: on one node (adb_cluster_publish() never called, or with no address) every call is the
 * SQLite call it is named after, on the caller's connection: an adb_stmt is the sqlite3_stmt
 * itself, nothing is allocated and nothing is added to a statement's cost but a branch.
 *
 * In cluster mode the caller's connection is the node's schema mirror (docs/scaling.md): each
 * statement is prepared there first (so a statement that does not fit the schema fails as it does
 * on one node, and its parameter and column counts are known), its parameters are kept, and its
 * first adb_step() runs it on the leader through a connection the calling thread holds (opened on
 * first use, found again after a leader change; closed when the thread ends), gathering all its
 * rows; later steps walk them. That thread waits for the answer: a Raft round trip (1-2 ms on
 * loopback) per statement. adb_exec() of BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE runs on
 * the same held connection, so a transaction opened with it is one transaction on the leader,
 * and adb_get_autocommit() says whether one is open there.
 *
 * Failures come back as SQLite codes, with adb_errmsg()/adb_errcode()/adb_extended_errcode() of
 * the calling thread's last statement: the leader's own code and message for a statement that
 * failed there (SQLITE_CONSTRAINT_UNIQUE ...); SQLITE_BUSY when another connection's write holds
 * the leader's write lock for longer than the thread's busy wait (adb_set_busy_wait), or when
 * there is no leader within ADB_LEADER_WAIT_MS (nothing was sent either way); SQLITE_IOERR when
 * the connection broke after the statement was sent (its outcome is unknown: the message says
 * so, and nothing is sent again); SQLITE_ABORT for a statement of a transaction the leader lost
 * (a leader change rolled it back: the transaction is over, adb_get_autocommit() is true again).
 * Statements are bounded on the leader to ADB_STMT_LIMIT_MS (`_trail_statement_limit`).
 *
 * Thread: any; a thread's statements and transaction are its own (one held connection per
 * thread). */
#ifndef TRAIL_CLUSTER_APPDB_H
#define TRAIL_CLUSTER_APPDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* The cluster's application database (dqlite's namespace). */
#define ADB_CLUSTER_DB "main.db"
/* How long a statement waits for a leader (an election) before it fails with SQLITE_BUSY. */
#define ADB_LEADER_WAIT_MS 3000
/* A statement's wall time on the leader before it is interrupted there: below dqlite's 3 s
 * election timeout, as a guest's (a statement holds the leader's only thread, its Raft heartbeats
 * too: a longer one would cost the cluster its leader). */
#define ADB_STMT_LIMIT_MS 2000

typedef struct adb_stmt adb_stmt;

/* Cluster mode: the members' addresses (copied). n 0 returns to one-node mode and frees the calling
 * thread's connection (other threads' are freed when they end). Thread: the main thread, while no
 * other thread makes a call here. */
void adb_cluster_publish(const char *const *addresses, size_t n);
bool adb_cluster_mode(void);
/* The members' addresses adb_cluster_publish() copied (*n 0 on one node): read-only until the next
 * publish, for trail's other clients of the cluster (guests' helper threads). */
const char *const *adb_cluster_addresses(size_t *n);

/* The calling thread's wait, in cluster mode, for a write lock another connection holds on the
 * leader before a statement outside a transaction fails with SQLITE_BUSY (the default is
 * DB_BUSY_TIMEOUT_MS, as on one node; 0 fails at once). On one node: sqlite3_busy_timeout()'s
 * job, untouched. */
void adb_set_busy_wait(unsigned ms);

/* As sqlite3_prepare_v2(db, sql, -1, out, NULL). */
int adb_prepare(sqlite3 *db, const char *sql, adb_stmt **out);
int adb_bind_parameter_count(adb_stmt *s);
/* As the sqlite3_bind_* calls; texts and blobs are always copied (SQLITE_TRANSIENT). */
int adb_bind_int64(adb_stmt *s, int i, int64_t v);
int adb_bind_double(adb_stmt *s, int i, double v);
int adb_bind_text(adb_stmt *s, int i, const char *p, int n);
int adb_bind_blob(adb_stmt *s, int i, const void *p, int n);
int adb_bind_null(adb_stmt *s, int i);
/* SQLITE_ROW, SQLITE_DONE or an error code (as sqlite3_step). */
int adb_step(adb_stmt *s);
int adb_column_count(adb_stmt *s);
int adb_column_type(adb_stmt *s, int i);
int64_t adb_column_int64(adb_stmt *s, int i);
int adb_column_int(adb_stmt *s, int i);
double adb_column_double(adb_stmt *s, int i);
/* Valid until the next step, reset or finalize of s, as SQLite's. */
const unsigned char *adb_column_text(adb_stmt *s, int i);
const void *adb_column_blob(adb_stmt *s, int i);
int adb_column_bytes(adb_stmt *s, int i);
const char *adb_column_name(adb_stmt *s, int i);
int adb_reset(adb_stmt *s);
/* Cluster mode, after s was stepped: moves the rows the leader answered into out (DQ_ROWS_INIT or
 * freed), leaving s none; out stays empty on one node. */
struct dq_rows;
void adb_take_rows(adb_stmt *s, struct dq_rows *out);
int adb_finalize(adb_stmt *s);

/* As sqlite3_exec(db, sql, NULL, NULL, NULL): one or more statements without parameters. */
int adb_exec(sqlite3 *db, const char *sql);
int adb_get_autocommit(sqlite3 *db);
/* Of the calling thread's last statement (on one node: db's). */
const char *adb_errmsg(sqlite3 *db);
int adb_errcode(sqlite3 *db);
int adb_extended_errcode(sqlite3 *db);
int64_t adb_changes(sqlite3 *db);
int64_t adb_last_insert_rowid(sqlite3 *db);

#endif
