/* guest/cluster_local.c: what a guest's statement does on the worker's own thread in cluster mode:
 * its check on the node's schema mirror before it is sent to the leader (the allow-list, the
 * parameters, what cluster mode refuses), and a record hook's statement run at once through
 * cluster/appdb, inside the write's transaction held there (guest_sql_hook_sync). The helper
 * threads that carry every other statement are in guest/cluster.c. */
#include "guest/guest_internal.h"

#include <sqlite3.h>
#include <string.h>

#include "cluster/appdb.h"
#include "cluster/cluster.h"
#include "db/db.h"

/* ---- the check on the local connection ---- */

int guest__sql_check_remote(guest_sql *s, const char *sql, size_t sql_len, const jsg_val *params,
                            bool in_tx, tr_arena *a, const char **text, bool *writes,
                            tr_error *err)
{
    guest__cached_stmt *c = NULL;
    sqlite3_stmt *stmt = NULL;
    sqlite3 *h = db_handle(s->db);
    s->auth->guest = true;
    s->auth->why[0] = '\0';
    s->busy = false;
    int rc = guest__sql_prepare(s, sql, sql_len, &c, err);
    if (rc == 0) {
        stmt = c->stmt;
        rc = guest__sql_bind(stmt, params, err);
    }
    if (rc == 0) {
        /* A guest's transaction in the cluster is a connection held on the leader (its host
         * calls: tx.c); its statements may not end it behind the worker's back, nor may a plain
         * statement begin one on the worker's shared connection. The local connection itself
         * runs no guest transaction in cluster mode: one open there is trail's own. */
        bool in_host_tx = !sqlite3_get_autocommit(h);
        if ((in_host_tx || s->hook_sync) && guest__sql_ends_tx(stmt))
            rc = tr_error_set(err, TR_ESQL, GUEST_HOST_TX_MSG);
        else if (guest__sql_ends_tx(stmt))
            rc = tr_error_set(err, TR_ESQL,
                              in_tx ? "in cluster mode a transaction's statement cannot end it or "
                                      "open another (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, "
                                      "RELEASE): use its commit() or rollback()"
                                    : GUEST_CLUSTER_TX_MSG);
        else if (in_host_tx)
            rc = tr_error_set(err, TR_ESQL,
                              "not available in cluster mode: a transaction of trail's own is "
                              "open on the node's connection");
        else {
            *text = tr_arena_strndup(a, sqlite3_sql(stmt), strlen(sqlite3_sql(stmt)));
            *writes = !sqlite3_stmt_readonly(stmt);
        }
    }
    s->auth->guest = false;
    /* never stepped: reset for the next use, as after a run */
    guest__sql_release(s, c);
    return rc;
}

void guest_sql_hook_sync(guest_sql *s, bool on)
{
    s->hook_sync = on;
}

/* ---- a record hook's statements ---- */

int guest__sql_run_sync(guest_sql *s, const char *sql, const dq_value *params, size_t nparams,
                        bool rows, dq_rows *dr, dq_result *res, tr_error *err)
{
    sqlite3 *h = db_handle(s->db);
    adb_stmt *st = NULL;
    int rc = adb_prepare(h, sql, &st);
    for (size_t i = 0; rc == SQLITE_OK && i < nparams; i++) {
        const dq_value *v = &params[i];
        int k = (int)i + 1;
        rc = v->type == DQ_INTEGER ? adb_bind_int64(st, k, v->i)
             : v->type == DQ_FLOAT ? adb_bind_double(st, k, v->f)
             : v->type == DQ_TEXT  ? adb_bind_text(st, k, v->p, (int)v->n)
             : v->type == DQ_BLOB  ? adb_bind_blob(st, k, v->p, (int)v->n)
                                   : adb_bind_null(st, k);
    }
    if (rc == SQLITE_OK) rc = adb_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        if (rows) adb_take_rows(st, dr);
        res->rows_affected = (uint64_t)adb_changes(h);
        res->last_insert_id = (uint64_t)adb_last_insert_rowid(h);
        rc = 0;
    } else {
        rc = tr_error_set(err, TR_ESQL, "%s", adb_errmsg(h));
    }
    adb_finalize(st);
    return rc;
}
