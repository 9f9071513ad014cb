/* records/batch.c: POST /api/transaction/v1/execute, several Record API writes in one request
 * (the reference client's `client.execute([api.createOp(...), ...], transaction)`).
 *
 *   {"operations": [{"Create": {"api_name": "todos", "value": {...}}},
 *                   {"Update": {"api_name": "todos", "record_id": "7", "value": {...}}},
 *                   {"Delete": {"api_name": "todos", "record_id": "8"}}],
 *    "transaction": true}
 *   -> 200 {"ids": ["9"]}       the created records' ids, in order
 *
 * Each operation is the endpoint's own write (rec__create, rec__update, rec__delete: the API's
 * ACL, its rules inside the statement, its hooks), with its record and id taken from the batch
 * and its answer recorded instead of sent. The first operation that fails ends the batch with
 * its status and message, naming the operation. With "transaction": true the batch is one
 * transaction (BEGIN IMMEDIATE ... COMMIT; each write's own transaction becomes a savepoint), so
 * a failure undoes every operation, and after hooks run once it committed; without it each
 * operation commits on its own and those before a failure stay. In cluster mode the transaction
 * and the operations' statements are the worker's on the cluster's leader (cluster/appdb.h);
 * the body is still parsed on the local connection. */
#include "records/records_internal.h"

#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "http/http.h"

enum { OP_CREATE, OP_UPDATE, OP_DELETE };

typedef struct batch_op {
    int kind;
    const rec_api *api;
    const char *value, *id;
    size_t value_len, id_len;
} batch_op;

static const uint32_t op_perm[] = {
    [OP_CREATE] = CFG_PERM_CREATE, [OP_UPDATE] = CFG_PERM_UPDATE, [OP_DELETE] = CFG_PERM_DELETE};

static const rec_api *api_named(const rec_set *s, const char *name)
{
    for (size_t i = 0; name && i < s->napis; i++)
        if (strcmp(s->apis[i].name, name) == 0) return &s->apis[i];
    return NULL;
}

static char *column_dup(tr_arena *a, sqlite3_stmt *st, int col, size_t *len)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return NULL;
    const char *t = (const char *)sqlite3_column_text(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return tr_arena_strndup(a, t ? t : "", *len);
}

/* Parses the body into ops (at most REC_MAX_BATCH); -1 with a 400's message in err. */
static int parse_ops(sqlite3 *db, const rec_set *s, const http_request *req, batch_op *ops,
                     size_t *nops, bool *tx, char *err, size_t errcap)
{
    static const char sql[] =
        "SELECT json_type(?1), json_type(?1, '$.operations'), "
        "json_array_length(?1, '$.operations'), json_type(?1, '$.transaction')";
    sqlite3_stmt *st = NULL;
    const char *body = req->body.ptr ? req->body.ptr : "";
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text64(st, 1, body, req->body.len, SQLITE_STATIC, SQLITE_UTF8);
        rc = sqlite3_step(st);
    }
    const char *type = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    const char *otype = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 1) : NULL;
    const char *ttype = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 3) : NULL;
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0;
    bool ok = type && strcmp(type, "object") == 0 && otype && strcmp(otype, "array") == 0 &&
              (ttype == NULL || strcmp(ttype, "true") == 0 || strcmp(ttype, "false") == 0);
    *tx = ttype && strcmp(ttype, "true") == 0;
    sqlite3_finalize(st);
    if (!ok) {
        snprintf(err, errcap, "expected {\"operations\": [...], \"transaction\": true|false}");
        return -1;
    }
    if (n > REC_MAX_BATCH) {
        snprintf(err, errcap, "more than %d operations in one batch", REC_MAX_BATCH);
        return -1;
    }
    static const char each[] =
        "SELECT o.key, json_type(o.value), "
        "CASE WHEN json_type(o.value, '$.Create') = 'object' THEN 0 "
        "     WHEN json_type(o.value, '$.Update') = 'object' THEN 1 "
        "     WHEN json_type(o.value, '$.Delete') = 'object' THEN 2 END AS kind, "
        "(SELECT count(*) FROM json_each(o.value)), "
        "json_extract(o.value, '$.' || ops.name || '.api_name'), "
        "json_type(o.value, '$.' || ops.name || '.record_id'), "
        "json_extract(o.value, '$.' || ops.name || '.record_id'), "
        "json_type(o.value, '$.' || ops.name || '.value'), "
        "json_extract(o.value, '$.' || ops.name || '.value') "
        "FROM json_each(?1, '$.operations') AS o "
        "LEFT JOIN (SELECT 'Create' AS name UNION ALL SELECT 'Update' UNION ALL "
        "           SELECT 'Delete') AS ops ON json_type(o.value, '$.' || ops.name) = 'object'";
    rc = sqlite3_prepare_v2(db, each, -1, &st, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_text64(st, 1, body, req->body.len, SQLITE_STATIC, SQLITE_UTF8);
    *nops = 0;
    int out = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long at = sqlite3_column_int64(st, 0);
        const char *otype1 = (const char *)sqlite3_column_text(st, 1);
        if (*nops == REC_MAX_BATCH || otype1 == NULL || strcmp(otype1, "object") != 0 ||
            sqlite3_column_type(st, 2) == SQLITE_NULL || sqlite3_column_int(st, 3) != 1) {
            snprintf(err, errcap,
                     "operation %lld: expected one of {\"Create\": ...}, "
                     "{\"Update\": ...} or {\"Delete\": ...}",
                     at);
            out = -1;
            break;
        }
        rc = SQLITE_OK;
        batch_op *op = &ops[(*nops)++];
        memset(op, 0, sizeof *op);
        op->kind = sqlite3_column_int(st, 2);
        static const char *const names[] = {"Create", "Update", "Delete"};
        const char *api = (const char *)sqlite3_column_text(st, 4);
        op->api = api_named(s, api);
        const char *idtype = (const char *)sqlite3_column_text(st, 5);
        const char *vtype = (const char *)sqlite3_column_text(st, 7);
        const char *bad = NULL;
        if (op->api == NULL)
            bad = "no such api_name";
        else if (op->kind != OP_CREATE && (idtype == NULL || (strcmp(idtype, "text") != 0 &&
                                                              strcmp(idtype, "integer") != 0)))
            bad = "record_id: expected a string or an integer";
        else if (op->kind != OP_DELETE && (vtype == NULL || strcmp(vtype, "object") != 0))
            bad = "value: expected a JSON object";
        if (bad) {
            snprintf(err, errcap, "operation %lld (%s): %s", at, names[op->kind], bad);
            out = -1;
            break;
        }
        if (op->kind != OP_CREATE) op->id = column_dup(req->arena, st, 6, &op->id_len);
        if (op->kind != OP_DELETE) op->value = column_dup(req->arena, st, 8, &op->value_len);
    }
    sqlite3_finalize(st);
    if (out == 0 && rc != SQLITE_DONE && rc != SQLITE_OK) {
        snprintf(err, errcap, "the body is not valid JSON");
        out = -1;
    }
    return out;
}

static bool answer(http_response *res, int status, const char *msg)
{
    http_response_send_error(res, status, msg);
    return true;
}

/* One run of a batch (rec_attempt_fn); ud: the rec_set. It parks only before any operation
 * ran: for the write lock of its transaction, or for the first operation's. */
static bool attempt(const http_request *req, http_response *res, const void *ud, int what, int wait)
{
    (void)what;
    const rec_set *s = ud;
    const guest_env *env = rec__worker_env();
    if (env == NULL || env->db == NULL) return answer(res, 503, "no database");
    sqlite3 *db = db_handle(env->db);
    rec_user user = {0};
    if (s->who != NULL) {
        const char *why = NULL;
        int st = s->who(req, &user, &why);
        if (st != 0) return answer(res, st, why ? why : "unauthorized");
    }
    batch_op ops[REC_MAX_BATCH];
    size_t nops = 0;
    bool tx = false;
    char err[512];
    if (parse_ops(db, s, req, ops, &nops, &tx, err, sizeof err) < 0) return answer(res, 400, err);
    for (size_t i = 0; i < nops; i++)
        if (!rec__allowed(ops[i].api, &user, op_perm[ops[i].kind])) {
            snprintf(err, sizeof err, "operation %zu: forbidden", i);
            return answer(res, 403, err);
        }
    if (!adb_get_autocommit(db)) {
        if (wait == REC_WAIT_PARK) return false;
        return answer(res, 503, "the worker's database connection is in a transaction; retry");
    }
    if (tx) {
        /* in cluster mode the batch's transaction is the worker's on the leader (appdb.h) */
        if (wait != REC_WAIT_BLOCK) rec__nowait(true);
        int rc = adb_exec(db, "BEGIN IMMEDIATE");
        if (wait != REC_WAIT_BLOCK) rec__nowait(false);
        if (rc != SQLITE_OK && rec__cluster_down(rc, db)) {
            snprintf(err, sizeof err, "the cluster is unavailable: %.400s", adb_errmsg(db));
            return answer(res, 503, err);
        }
        if (rc != SQLITE_OK && (rc & 0xff) == SQLITE_BUSY && wait == REC_WAIT_PARK) return false;
        if (rc != SQLITE_OK) return answer(res, 503, "the database is busy; retry");
    }
    rec_batch b = {.tx = tx, .ids = TR_BUF_INIT};
    size_t failed = nops;
    int status = 200;
    for (size_t i = 0; i < nops && failed == nops; i++) {
        /* without a transaction, only the first operation may park: nothing ran before it */
        rec_ctx c = {.api = ops[i].api,
                     .req = req,
                     .res = res,
                     .db = db,
                     .a = req->arena,
                     .user = user,
                     .batch = &b,
                     .wait = !tx && i == 0 ? wait : REC_WAIT_BLOCK};
        b.value = ops[i].value;
        b.value_len = ops[i].value_len;
        b.id = ops[i].id;
        b.id_len = ops[i].id_len;
        b.status = 0;
        if (c.wait != REC_WAIT_BLOCK) rec__nowait(true);
        if (ops[i].kind == OP_CREATE)
            rec__create(&c);
        else if (ops[i].kind == OP_UPDATE)
            rec__update(&c);
        else
            rec__delete(&c);
        if (c.wait != REC_WAIT_BLOCK) rec__nowait(false);
        tr_buf_free(&c.sql);
        if (c.busy) {
            tr_buf_free(&b.ids);
            return false;
        }
        if (b.status != 200) {
            failed = i;
            status = b.status ? b.status : 500;
            snprintf(err, sizeof err, "operation %zu: %.450s", i, c.err[0] ? c.err : "failed");
        }
    }
    if (tx && !adb_get_autocommit(db)) {
        if (failed == nops && adb_exec(db, "COMMIT") != SQLITE_OK) {
            tr_log_error("records: a batch's COMMIT failed: %s", adb_errmsg(db));
            status = 503;
            snprintf(err, sizeof err, "the batch could not be committed; retry");
            failed = 0;
        }
        if (!adb_get_autocommit(db)) adb_exec(db, "ROLLBACK");
    }
    if (failed != nops) {
        rec__batch_after(&b, false);
        tr_buf_free(&b.ids);
        return answer(res, status, err);
    }
    tr_buf out = TR_BUF_INIT;
    tr_buf_printf(&out, "{\"ids\":[%.*s]}", (int)b.ids.len, b.ids.data ? b.ids.data : "");
    http_response_send(res, 200, "application/json", out.data, out.len);
    tr_buf_free(&out);
    tr_buf_free(&b.ids);
    rec__batch_after(&b, true);
    return true;
}

void rec__batch_handle(const http_request *req, http_response *res, void *ud)
{
    rec__run(req, res, attempt, ud, 0);
}
