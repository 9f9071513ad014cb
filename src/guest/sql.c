/* guest/sql.c: query() and execute() on the worker's SQLite connection.
 *
 * DESIGN: statements are prepared once per connection and kept in a small LRU cache keyed by
 * their SQL text, reset (not finalized) after each run: a handler that runs the same query on
 * every request pays for parsing once. Values cross as jsg_val built in an arena: parameters
 * are bound straight from it (SQLITE_STATIC), rows are built in it and converted to JS in one go.
 * NULL ↔ null, INTEGER ↔ number (bigint beyond ±2^53), REAL ↔ number, TEXT ↔ string,
 * BLOB ↔ Uint8Array. Transactions and the statements that wait for one to end are in guest/tx.c;
 * both run through guest_sql_run(). */
#include "guest/guest_internal.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "db/db.h"

guest_sql *guest_sql_new(db_conn *db)
{
    guest_sql *s = tr_calloc(1, sizeof *s);
    s->db = db;
    s->tx_timeout_ms = GUEST_TX_TIMEOUT_MS;
    return s;
}

void guest_sql_free(guest_sql *s)
{
    if (s == NULL) return;
    guest__tx_deinit(s);
    for (size_t i = 0; i < s->ncache; i++) {
        sqlite3_finalize(s->cache[i].stmt);
        tr_free(s->cache[i].sql);
    }
    tr_free(s);
}

static bool only_space_or_comments(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';') {
            p++;
        } else if (p + 1 < end && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n') p++;
        } else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/')) p++;
            p += 2;
        } else {
            return false;
        }
    }
    return true;
}

/* The prepared statement for sql, from the cache or freshly prepared into it. */
static int prepare(guest_sql *s, const char *sql, size_t len, sqlite3_stmt **out, tr_error *err)
{
    s->clock++;
    for (size_t i = 0; i < s->ncache; i++) {
        guest__cached_stmt *c = &s->cache[i];
        if (c->len == len && memcmp(c->sql, sql, len) == 0) {
            c->last_used = s->clock;
            *out = c->stmt;
            return 0;
        }
    }
    sqlite3 *h = db_handle(s->db);
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    if (len > (size_t)INT32_MAX) return tr_error_set(err, TR_ELIMIT, "SQL text is too long");
    int rc = sqlite3_prepare_v3(h, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(h));
    if (stmt == NULL) return tr_error_set(err, TR_ESQL, "the SQL text holds no statement");
    if (tail && !only_space_or_comments(tail, sql + len)) {
        sqlite3_finalize(stmt);
        return tr_error_set(err, TR_ESQL,
                            "one SQL statement per call: more text follows the first statement");
    }
    size_t slot = s->ncache;
    if (slot == GUEST_MAX_SQL_CACHE) {
        slot = 0;
        for (size_t i = 1; i < s->ncache; i++)
            if (s->cache[i].last_used < s->cache[slot].last_used) slot = i;
        sqlite3_finalize(s->cache[slot].stmt);
        tr_free(s->cache[slot].sql);
    } else {
        s->ncache++;
    }
    s->cache[slot] = (guest__cached_stmt){tr_strndup(sql, len), len, stmt, s->clock};
    *out = stmt;
    return 0;
}

static int bind_params(sqlite3_stmt *stmt, const jsg_val *params, tr_error *err)
{
    int want = sqlite3_bind_parameter_count(stmt);
    size_t got = params ? params->u.arr.len : 0;
    if ((size_t)want != got)
        return tr_error_set(err, TR_ESQL, "the statement has %d parameter%s but %zu %s given",
                            want, want == 1 ? "" : "s", got, got == 1 ? "was" : "were");
    for (size_t i = 0; i < got; i++) {
        const jsg_val *v = &params->u.arr.items[i];
        int idx = (int)i + 1, rc;
        switch (v->type) {
        case JSG_UNDEFINED:
        case JSG_NULL:
            rc = sqlite3_bind_null(stmt, idx);
            break;
        case JSG_BOOL:
            rc = sqlite3_bind_int(stmt, idx, v->u.b);
            break;
        case JSG_NUMBER: {
            double d = v->u.num;
            /* Integral numbers bind as INTEGER so that they compare equal to integer columns. */
            if (d == floor(d) && fabs(d) < 9.2e18)
                rc = sqlite3_bind_int64(stmt, idx, (sqlite3_int64)d);
            else
                rc = sqlite3_bind_double(stmt, idx, d);
            break;
        }
        case JSG_BIGINT:
            rc = sqlite3_bind_int64(stmt, idx, v->u.big);
            break;
        case JSG_STRING:
            rc = sqlite3_bind_text64(stmt, idx, v->u.str.ptr, v->u.str.len, SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        case JSG_BYTES:
            rc = sqlite3_bind_blob64(stmt, idx, v->u.str.len ? v->u.str.ptr : "", v->u.str.len,
                                     SQLITE_STATIC);
            break;
        default:
            return tr_error_set(err, TR_EINVAL,
                                "SQL parameter %zu: unsupported type (use null, a number, a "
                                "bigint, a string or a Uint8Array)",
                                i + 1);
        }
        if (rc != SQLITE_OK)
            return tr_error_set(err, TR_ESQL, "SQL parameter %zu: %s", i + 1, sqlite3_errstr(rc));
    }
    return 0;
}

static jsg_val column_value(sqlite3_stmt *stmt, int col, tr_arena *a)
{
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER: {
        sqlite3_int64 v = sqlite3_column_int64(stmt, col);
        if (v >= -9007199254740991LL && v <= 9007199254740991LL) return jsg_number((double)v);
        return jsg_bigint(v);
    }
    case SQLITE_FLOAT:
        return jsg_number(sqlite3_column_double(stmt, col));
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        return jsg_string(tr_arena_strndup(a, t ? t : "", n), n);
    }
    case SQLITE_BLOB: {
        const void *b = sqlite3_column_blob(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        char *copy = tr_arena_alloc(a, n ? n : 1);
        if (n) memcpy(copy, b, n);
        return jsg_bytes(copy, n);
    }
    default:
        return jsg_null();
    }
}

int guest_sql_run(guest_sql *s, jsg_isolate *iso, bool rows, const char *sql, size_t sql_len,
                  jsg_ref params, jsg_ref *out, tr_error *err)
{
    tr_arena a;
    tr_arena_init(&a, 16384);
    jsg_val pv, *pvp = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc = 0;
    if (params != 0) {
        rc = jsg_to_val(iso, params, &a, &pv, err);
        if (rc < 0) goto out;
        if (pv.type != JSG_ARRAY && pv.type != JSG_UNDEFINED && pv.type != JSG_NULL) {
            rc = tr_error_set(err, TR_EINVAL, "SQL parameters must be an array");
            goto out;
        }
        if (pv.type == JSG_ARRAY) pvp = &pv;
    }
    rc = prepare(s, sql, sql_len, &stmt, err);
    if (rc < 0) goto out;
    rc = bind_params(stmt, pvp, err);
    if (rc < 0) goto out;

    size_t nrows = 0, cap = 0;
    jsg_val *list = NULL;
    int ncols = sqlite3_column_count(stmt);
    for (;;) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = tr_error_set(err, TR_ESQL, "%s", sqlite3_errmsg(db_handle(s->db)));
            goto out;
        }
        if (!rows) continue;
        if (nrows == cap) {
            cap = cap ? cap * 2 : 16;
            jsg_val *grown = tr_arena_alloc(&a, cap * sizeof *grown);
            if (nrows) memcpy(grown, list, nrows * sizeof *grown);
            list = grown;
        }
        jsg_val *cols = tr_arena_alloc(&a, (size_t)(ncols ? ncols : 1) * sizeof *cols);
        for (int c = 0; c < ncols; c++) cols[c] = column_value(stmt, c, &a);
        list[nrows++] = jsg_array(cols, (size_t)ncols);
    }
    if (s->tx == NULL && !sqlite3_get_autocommit(db_handle(s->db))) {
        /* A plain BEGIN or SAVEPOINT would leave the connection every request of this worker
         * shares inside one handler's transaction, taking their statements into it. */
        sqlite3_reset(stmt);
        sqlite3_exec(db_handle(s->db), "ROLLBACK", NULL, NULL, NULL);
        rc = tr_error_set(err, TR_ESQL,
                          "BEGIN and SAVEPOINT are not allowed in query() or execute(): the "
                          "connection is shared by every request of the worker; use transaction() "
                          "or beginTransaction() of trailbase-wasm/db");
        goto out;
    }
    if (rows) {
        jsg_val result = jsg_array(list, nrows);
        rc = jsg_from_val(iso, &result, out, err);
    } else {
        jsg_val n = jsg_number((double)sqlite3_changes64(db_handle(s->db)));
        rc = jsg_from_val(iso, &n, out, err);
    }
out:
    if (stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
    tr_arena_deinit(&a);
    return rc;
}
