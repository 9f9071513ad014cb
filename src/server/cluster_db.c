/* server/cluster_db.c: cluster mode's migrations: the built-in ones and the data directory's
 * migrations/ applied once for the whole cluster, through its leader (docs/scaling.md, "The
 * application database in the cluster").
 *
 * DESIGN: every node runs this when it starts, after it joined. Each migration that the cluster's
 * _schema_history lacks is applied in one transaction on the leader together with its history
 * row, and the history is read again inside that transaction: dqlite has one writer (the leader)
 * and keeps a transaction per client connection, so of nodes starting at once exactly one
 * applies a migration and the others find it recorded, as two processes on one file do with
 * db_migrate(). A transaction that finds another's write lock (SQLITE_BUSY) is rolled back and
 * tried again. The node's own file is migrated too, by db_migrate() (run.c): it is the schema
 * mirror the guests' statements are checked against, so both must apply the same migrations. */
#include "server/server_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "db/db.h"
#include "auth/auth.h"
#include "guest/guest.h"
#include "jobs/jobs.h"
#include "records/records.h"

/* How long a migration may wait for another node's (or an election) before the start fails. */
#define CLUSTER_MIGRATE_WAIT_MS 60000

typedef struct cluster_migrate {
    dq_client *c;
    uint32_t db;
    uint64_t deadline_ns;
    unsigned applied;
    tr_buf names; /* the migrations this node has: each name followed by a NUL */
} cluster_migrate;

static int exec(cluster_migrate *m, const char *sql, const dq_value *params, size_t n,
                tr_error *err)
{
    dq_result res;
    return dq_exec_sql(m->c, m->db, sql, params, n, &res, err);
}

/* Whether the last failure was another connection's lock (worth trying again). */
static bool busy(const cluster_migrate *m, int rc)
{
    uint64_t code = dq_client_failure_code(m->c) & 0xff;
    return rc == TR_ESQL && (code == 5 /* SQLITE_BUSY */ || code == 6 /* SQLITE_LOCKED */);
}

/* The history's checksum of name: 1 with it in out when recorded, 0 when not. */
static int lookup(cluster_migrate *m, const char *name, char out[17], tr_error *err)
{
    dq_value p = {.type = DQ_TEXT, .p = name, .n = strlen(name)};
    dq_rows rows = DQ_ROWS_INIT;
    int rc = dq_query_sql(m->c, m->db, "SELECT checksum FROM " DB_HISTORY_TABLE " WHERE name = ?",
                          &p, 1, &rows, err);
    if (rc < 0) return rc;
    rc = 0;
    if (rows.nrows > 0 && rows.ncols == 1 && rows.vals[0].type == DQ_TEXT) {
        snprintf(out, 17, "%s", rows.vals[0].p);
        rc = 1;
    }
    dq_rows_free(&rows);
    return rc;
}

/* Realtime's triggers (records/cluster_feed.c) name the columns of the tables they log: a
 * migration that drops such a column would fail on them. So they are dropped before a migration,
 * in its transaction; this node's realtime start makes them anew for the new schema moments later
 * (changes committed in between are not announced: docs/scaling.md). Not made again from their
 * text: SQLite would accept a trigger naming a dropped column, and every write to its table would
 * then fail. */
static int realtime_triggers_drop(cluster_migrate *m, tr_error *err)
{
    dq_rows names = DQ_ROWS_INIT;
    int rc = dq_query_sql(m->c, m->db,
                          "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                          REC_FEED_TRIGGER_NAMES,
                          NULL, 0, &names, err);
    for (size_t i = 0; rc == 0 && names.ncols == 1 && i < names.nrows; i++) {
        const dq_value *v = &names.vals[i];
        if (v->type != DQ_TEXT || strchr(v->p, '"')) continue; /* trail's names need no quotes */
        char *sql = tr_asprintf("DROP TRIGGER IF EXISTS \"%s\"", v->p);
        rc = exec(m, sql, NULL, 0, err);
        tr_free(sql);
    }
    dq_rows_free(&names);
    return rc;
}

/* One attempt at applying a migration: 1 when another connection's lock stopped it (nothing
 * done), 0 when it is applied (now or before), negative on an error. */
static int attempt(cluster_migrate *m, const char *name, const char *label, const char *sql,
                   const char *sum, tr_error *err)
{
    char old[17];
    int rc = exec(m, "BEGIN IMMEDIATE", NULL, 0, err);
    if (rc < 0) return busy(m, rc) ? 1 : rc;
    int found = lookup(m, name, old, err);
    rc = found < 0 ? found : 0;
    if (found == 0 && sql[strspn(sql, " \t\r\n")] != '\0') {
        rc = realtime_triggers_drop(m, err);
        if (rc == 0) rc = exec(m, sql, NULL, 0, err);
        if (rc < 0 && !busy(m, rc))
            rc = tr_error_set(err, TR_ESQL, "migration %s failed on the cluster: %s", label,
                              err ? err->msg : "");
    }
    if (rc == 0 && found == 0) {
        dq_value row[3] = {{.type = DQ_TEXT, .p = name, .n = strlen(name)},
                           {.type = DQ_INTEGER, .i = tr_wall_ms()},
                           {.type = DQ_TEXT, .p = sum, .n = strlen(sum)}};
        rc = exec(m,
                  "INSERT INTO " DB_HISTORY_TABLE " (name, applied_at, checksum) VALUES (?, ?, ?)",
                  row, 3, err);
    }
    if (rc == 0) rc = exec(m, found ? "ROLLBACK" : "COMMIT", NULL, 0, err);
    if (rc < 0) {
        bool again = busy(m, rc);
        tr_error ignored = {0};
        exec(m, "ROLLBACK", NULL, 0, &ignored); /* fails harmlessly when nothing is open */
        return again ? 1 : rc;
    }
    if (found) {
        db_migration_warn_if_changed(label, old, sum);
    } else {
        m->applied++;
        tr_log_info("applied migration %s to the cluster", label);
    }
    return 0;
}

static int apply(void *ud, const char *name, const char *label, const char *sql, size_t len,
                 const char *sum, tr_error *err)
{
    (void)len; /* sql is NUL-terminated and holds no NUL (db_migrations_each) */
    cluster_migrate *m = ud;
    tr_buf_append(&m->names, name, strlen(name) + 1);
    for (;;) {
        int rc = attempt(m, name, label, sql, sum, err);
        if (rc <= 0) return rc;
        if (tr_now_ns() > m->deadline_ns)
            return tr_error_set(err, TR_ETIMEDOUT,
                                "migration %s: the cluster's database stayed locked for %d s",
                                label, CLUSTER_MIGRATE_WAIT_MS / 1000);
        nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
}

/* A migration the cluster applied that this node does not have would leave its schema mirror
 * unlike the cluster's schema, and guests' statements checked against the wrong schema: the
 * node does not start. */
static int check_history(cluster_migrate *m, const char *migrations_dir, tr_error *err)
{
    dq_rows rows = DQ_ROWS_INIT;
    int rc = dq_query_sql(m->c, m->db, "SELECT name FROM " DB_HISTORY_TABLE " ORDER BY name", NULL,
                          0, &rows, err);
    if (rc < 0) return rc;
    for (size_t i = 0; i < rows.nrows && rc == 0 && rows.ncols == 1; i++) {
        const dq_value *v = &rows.vals[i];
        if (v->type != DQ_TEXT) continue;
        bool known = false;
        for (size_t at = 0; at < m->names.len && !known; at += strlen(m->names.data + at) + 1)
            known = strcmp(m->names.data + at, v->p) == 0;
        if (!known)
            rc = tr_error_set(err, TR_ECONFIG,
                              "the cluster has applied migration %s, which %s lacks: every node "
                              "needs the same migrations (copy it there)",
                              v->p, migrations_dir);
    }
    dq_rows_free(&rows);
    return rc;
}

/* Runs sql (statements without parameters but params for the first) on the cluster, waiting out
 * another node's transaction until the start's deadline; what names it in the error. */
static int exec_waiting(cluster_migrate *m, const char *sql, const dq_value *params, size_t n,
                        const char *what, tr_error *err)
{
    for (;;) {
        int rc = exec(m, sql, params, n, err);
        if (rc == 0 || !busy(m, rc)) return rc;
        if (tr_now_ns() > m->deadline_ns)
            return tr_error_set(err, TR_ETIMEDOUT,
                                "%s: the cluster's database stayed locked for %d s", what,
                                CLUSTER_MIGRATE_WAIT_MS / 1000);
        nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
}

/* The cluster's _job_runs (jobs/cluster.c): not a migration of the application's, but made once
 * in the same way, waiting out another node's transaction. */
static int jobs_table(cluster_migrate *m, tr_error *err)
{
    return exec_waiting(m, JOB_CLUSTER_DDL, NULL, 0, "_job_runs", err);
}

int server__cluster_migrate(const char *const *addresses, size_t n, const char *migrations_dir,
                            tr_error *err)
{
    cluster_migrate m = {
        .deadline_ns = tr_now_ns() + (uint64_t)CLUSTER_MIGRATE_WAIT_MS * 1000000u,
        .names = TR_BUF_INIT,
    };
    static const dq_db_opts d = {GUEST_CLUSTER_DB, 0, false, 0};
    int rc = dq_client_open_leader_db(addresses, n, NULL, CLUSTER_MIGRATE_WAIT_MS, &d, &m.c, &m.db,
                                      err);
    if (rc < 0) return rc;
    rc = exec(&m, DB_HISTORY_DDL, NULL, 0, err);
    if (rc == 0) rc = db_migrations_each(migrations_dir, apply, &m, err);
    if (rc == 0) rc = check_history(&m, migrations_dir, err);
    if (rc == 0) rc = jobs_table(&m, err);
    tr_buf_free(&m.names);
    dq_client_close(m.c);
    return rc;
}

/* ---- users and sign-in: their tables and the one signing key ---- */

/* The cluster's signing key: made only here, never by a migration, so the nodes' schema mirrors
 * lack it and a guest's statement naming it fails there ("no such table") before anything reaches
 * the leader (tests/hostile/test_cluster_auth.c); trail's authorizer refuses `_` tables to guests
 * besides. One row, the first node's key. */
#define CLUSTER_KEY_TABLE "_cluster_signing_key"

static const char key_ddl[] = "CREATE TABLE IF NOT EXISTS " CLUSTER_KEY_TABLE " (\n"
                              "  id          INTEGER PRIMARY KEY CHECK (id = 1),\n"
                              "  private_key TEXT NOT NULL,\n" /* PKCS#8 PEM */
                              "  public_key  TEXT NOT NULL,\n" /* SPKI PEM */
                              "  created_ms  INTEGER NOT NULL\n"
                              ") STRICT";

/* Offers this node's key (kp, kq: its PEM texts) to the cluster, then reads the cluster's key
 * into *out. *offered: whether this node's became the cluster's. */
static int cluster_key(cluster_migrate *m, const tr_buf *kp, const tr_buf *kq, bool *offered,
                       auth_keys **out, tr_error *err)
{
    int rc = exec_waiting(m, key_ddl, NULL, 0, CLUSTER_KEY_TABLE, err);
    if (rc < 0) return rc;
    dq_value row[3] = {{.type = DQ_TEXT, .p = kp->data, .n = kp->len},
                       {.type = DQ_TEXT, .p = kq->data, .n = kq->len},
                       {.type = DQ_INTEGER, .i = tr_wall_ms()}};
    dq_result res = {0, 0};
    for (;;) {
        rc = dq_exec_sql(m->c, m->db,
                         "INSERT OR IGNORE INTO " CLUSTER_KEY_TABLE
                         " (id, private_key, public_key, created_ms) VALUES (1, ?, ?, ?)",
                         row, 3, &res, err);
        if (rc == 0 || !busy(m, rc)) break;
        if (tr_now_ns() > m->deadline_ns)
            return tr_error_set(err, TR_ETIMEDOUT,
                                CLUSTER_KEY_TABLE ": the cluster's database stayed locked for %d s",
                                CLUSTER_MIGRATE_WAIT_MS / 1000);
        nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
    if (rc < 0) return rc;
    *offered = res.rows_affected == 1;
    dq_rows rows = DQ_ROWS_INIT;
    rc = dq_query_sql(m->c, m->db,
                      "SELECT private_key, public_key FROM " CLUSTER_KEY_TABLE " WHERE id = 1",
                      NULL, 0, &rows, err);
    if (rc < 0) return rc;
    if (rows.nrows != 1 || rows.ncols != 2 || rows.vals[0].type != DQ_TEXT ||
        rows.vals[1].type != DQ_TEXT)
        rc = tr_error_set(err, TR_EPARSE, "the cluster's " CLUSTER_KEY_TABLE " has no key row");
    else
        rc = auth_keys_from_pem(rows.vals[0].p, rows.vals[0].n, rows.vals[1].p, rows.vals[1].n,
                                "the cluster's " CLUSTER_KEY_TABLE, out, err);
    if (rows.nrows > 0 && rows.vals[0].type == DQ_TEXT)
        sodium_memzero((void *)rows.vals[0].p, rows.vals[0].n);
    dq_rows_free(&rows);
    return rc;
}

int server__cluster_auth(const char *const *addresses, size_t n, const char *data_dir,
                         tr_error *err)
{
    cluster_migrate m = {
        .deadline_ns = tr_now_ns() + (uint64_t)CLUSTER_MIGRATE_WAIT_MS * 1000000u,
        .names = TR_BUF_INIT,
    };
    auth_keys *mine = NULL, *shared = NULL;
    int rc = auth_keys_load(data_dir, &mine, err);
    if (rc < 0) return rc;
    static const dq_db_opts d = {GUEST_CLUSTER_DB, 0, false, 0};
    rc = dq_client_open_leader_db(addresses, n, NULL, CLUSTER_MIGRATE_WAIT_MS, &d, &m.c, &m.db, err);
    /* the tables of sessions and one-time codes, as auth_store_init() makes them on one node */
    if (rc == 0) rc = exec_waiting(&m, AUTH_STORE_DDL, NULL, 0, "the auth tables", err);
    tr_buf kp = TR_BUF_INIT, kq = TR_BUF_INIT;
    bool offered = false;
    if (rc == 0) {
        auth_keys_pem(mine, &kp, &kq);
        rc = cluster_key(&m, &kp, &kq, &offered, &shared, err);
    }
    if (rc == 0 && offered) {
        tr_log_info("auth: this node's signing key (%s/" AUTH_KEY_DIR
                    ") is now the cluster's; every node signs and verifies with it",
                    data_dir);
    } else if (rc == 0 && !auth_keys_equal(mine, shared)) {
        /* the node's own file keeps a copy, so that the node verifies the cluster's tokens even
         * when started on its own later */
        rc = auth_keys_store(data_dir, shared, err);
        if (rc == 0)
            tr_log_warn("auth: this node's signing key differs from the cluster's: %s/" AUTH_KEY_DIR
                        " now holds the cluster's key (the node's own private key was kept as "
                        "private_key.pem.replaced); tokens this node signed before no longer "
                        "verify",
                        data_dir);
    }
    if (kp.data) sodium_memzero(kp.data, kp.len);
    tr_buf_free(&kp);
    tr_buf_free(&kq);
    auth_keys_free(shared);
    auth_keys_free(mine);
    dq_client_close(m.c);
    if (rc < 0 && err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        tr_error_set(err, rc, "the cluster's auth tables and signing key: %s", why);
    }
    return rc;
}

/* ---- the cluster's own mount ---- */

bool server__cluster_mount_accepts(const char *path, size_t len)
{
    return auth_path_is_mine(path, len);
}

void server__cluster_mount(const http_request *req, http_response *res, void *ud)
{
    auth_http_handle(req, res, ud);
}
