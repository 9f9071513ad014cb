/* records/write.c: the Record API's writing endpoints: create (one JSON object, an array of them
 * in one transaction, or an HTML form), update and delete, and the guests' record hooks around
 * them: before hooks inside the write's transaction, after hooks once it committed.
 *
 * DESIGN: the access rule sits in the write's own statement (INSERT ... SELECT ... WHERE (rule)
 * RETURNING pk; UPDATE/DELETE ... WHERE pk IN (SELECT ... WHERE (rule)) RETURNING pk, as
 * records/handlers.c's DESIGN shows), so nothing can change between the check and the write;
 * no row back means the rule refused or the record is missing. Bodies are parsed by SQLite's
 * JSON functions on the same connection (json_each). */
#include "records/records_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

/* ---- writing ---- */

/* One record of a request body: a value per API column (present[i] says whether it was sent). */
typedef struct rec_fields {
    rec_value *vals;
    bool *present;
    size_t npresent;
} rec_fields;

static const char *json_type_want(rec_type t)
{
    switch (t) {
    case REC_T_INTEGER:
        return "an integer";
    case REC_T_REAL:
        return "a number";
    case REC_T_TEXT:
        return "a string";
    case REC_T_BLOB:
        return "a UUID or URL-safe base64 string";
    case REC_T_ANY:
        return "a value";
    }
    return "a value";
}

/* Converts one JSON member (type as json_each names it) for column col. */
static bool field_value(rec_ctx *c, const rec_column *col, const char *type, sqlite3_stmt *st,
                        rec_value *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(type, "null") == 0) {
        out->type = SQLITE_NULL;
        return true;
    }
    bool is_bool = strcmp(type, "true") == 0 || strcmp(type, "false") == 0;
    if (is_bool) {
        if (col->type == REC_T_TEXT || col->type == REC_T_BLOB) return false;
        *out = (rec_value){.type = SQLITE_INTEGER, .i = type[0] == 't'};
        return true;
    }
    if (strcmp(type, "integer") == 0) {
        int64_t v = sqlite3_column_int64(st, 2);
        if (col->type == REC_T_INTEGER || col->type == REC_T_ANY)
            *out = (rec_value){.type = SQLITE_INTEGER, .i = v};
        else if (col->type == REC_T_REAL)
            *out = (rec_value){.type = SQLITE_FLOAT, .d = (double)v};
        else
            return false;
        return true;
    }
    if (strcmp(type, "real") == 0) {
        if (col->type != REC_T_REAL && col->type != REC_T_ANY) return false;
        *out = (rec_value){.type = SQLITE_FLOAT, .d = sqlite3_column_double(st, 2)};
        return true;
    }
    const char *text;
    size_t n;
    if (strcmp(type, "text") == 0) {
        text = (const char *)sqlite3_column_text(st, 2);
        n = (size_t)sqlite3_column_bytes(st, 2);
        if (col->type == REC_T_BLOB)
            return rec__value_from_text(col, tr_arena_strndup(c->a, text, n), n, c->a, out);
        if (col->type != REC_T_TEXT && col->type != REC_T_ANY) return false;
    } else {
        /* an object or array: stored as its JSON text in a TEXT or untyped column */
        if (col->type != REC_T_TEXT && col->type != REC_T_ANY) return false;
        text = (const char *)sqlite3_column_text(st, 3);
        n = (size_t)sqlite3_column_bytes(st, 3);
    }
    *out =
        (rec_value){.type = SQLITE_TEXT, .p = tr_arena_strndup(c->a, text ? text : "", n), .n = n};
    return true;
}

/* Reads the JSON object obj into f. 400 messages name the field. */
static int parse_record(rec_ctx *c, const char *obj, size_t len, rec_fields *f)
{
    const rec_api *api = c->api;
    f->vals = tr_arena_alloc(c->a, (api->ncols + 1) * sizeof *f->vals);
    f->present = tr_arena_alloc(c->a, api->ncols + 1);
    memset(f->present, 0, api->ncols + 1);
    f->npresent = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT key, type, atom, value FROM json_each(?1) WHERE "
                                "json_type(?1) = 'object'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rec__fail_sql(c, rc);
        return -1;
    }
    sqlite3_bind_text64(st, 1, obj, len, SQLITE_STATIC, SQLITE_UTF8);
    int out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);
        int i = -1;
        for (size_t k = 0; key && k < api->ncols; k++)
            if (strcmp(api->cols[k].name, key) == 0) i = (int)k;
        if (i < 0) {
            snprintf(c->err, sizeof c->err, "unknown field '%.200s'", key ? key : "");
            out = -1;
            break;
        }
        if (f->present[i]) {
            snprintf(c->err, sizeof c->err, "field '%s' given twice", api->cols[i].name);
            out = -1;
            break;
        }
        if (!field_value(c, &api->cols[i], type, st, &f->vals[i])) {
            snprintf(c->err, sizeof c->err, "field '%s': expected %s, got %s", api->cols[i].name,
                     json_type_want(api->cols[i].type), type);
            out = -1;
            break;
        }
        f->present[i] = true;
        f->npresent++;
    }
    if (out == 0 && rc != SQLITE_DONE) {
        snprintf(c->err, sizeof c->err, "the body is not valid JSON");
        out = -1;
    }
    if (out == 0 && f->npresent == 0) {
        snprintf(c->err, sizeof c->err, "no values provided (expected a JSON object of fields)");
        out = -1;
    }
    sqlite3_finalize(st);
    if (out < 0) rec__fail(c, 400, c->err);
    return out;
}

/* The _REQ_ subquery over f (absent fields are NULL) and, before it, ?N of _REQ_FIELDS_. */
static void req_from(rec_ctx *c, const rec_fields *f)
{
    const rec_api *api = c->api;
    tr_buf_append_str(&c->sql, "(SELECT ");
    for (size_t i = 0; i < api->ncols; i++) {
        if (i) tr_buf_append_str(&c->sql, ", ");
        if (f->present[i])
            rec__bind_place(c, &f->vals[i]);
        else
            tr_buf_append_str(&c->sql, "NULL");
        tr_buf_printf(&c->sql, " AS %s", api->cols[i].quoted);
    }
    tr_buf_append_str(&c->sql, ") AS _REQ_");
}

/* WITH _REQ_FIELDS_(_) AS (...) naming the fields sent, for rules that ask what was sent. */
static void req_fields_cte(rec_ctx *c, const rec_fields *f)
{
    tr_buf names = TR_BUF_INIT;
    tr_buf_append_char(&names, '[');
    bool any = false;
    for (size_t i = 0; i < c->api->ncols; i++) {
        if (!f->present[i]) continue;
        if (any) tr_buf_append_char(&names, ',');
        any = true;
        rec__json_str(&names, c->api->cols[i].name, strlen(c->api->cols[i].name));
    }
    tr_buf_append_char(&names, ']');
    rec_value v = {
        .type = SQLITE_TEXT, .p = tr_arena_strndup(c->a, names.data, names.len), .n = names.len};
    tr_buf_free(&names);
    tr_buf_append_str(&c->sql, "WITH _REQ_FIELDS_(_) AS (SELECT value FROM json_each(");
    rec__bind_place(c, &v);
    tr_buf_append_str(&c->sql, ")) ");
}

static void id_json(adb_stmt *st, tr_buf *out)
{
    if (adb_column_type(st, 0) == SQLITE_BLOB) {
        tr_buf_append_char(out, '"');
        rec__b64url_encode(adb_column_blob(st, 0), (size_t)adb_column_bytes(st, 0), out);
        tr_buf_append_char(out, '"');
    } else {
        tr_buf_printf(out, "\"%lld\"", (long long)adb_column_int64(st, 0));
    }
}

/* Inserts one record; appends its id to ids. Returns 0, or -1 after answering. */
static int insert_one(rec_ctx *c, rec_fields *f, tr_buf *ids, tr_buf *idtext)
{
    const rec_api *api = c->api;
    /* autofill: a missing column that references _user(id) takes the caller's id */
    for (size_t i = 0; c->user.signed_in && i < api->ncols; i++) {
        const rec_column *col = &api->cols[i];
        if (!f->present[i] && col->fk_table && strcmp(col->fk_table, "_user") == 0 &&
            api->autofill) {
            f->vals[i] = (rec_value){.type = SQLITE_BLOB, .p = (const char *)c->user.id, .n = 16};
            f->present[i] = true;
            f->npresent++;
        }
    }
    tr_buf_reset(&c->sql);
    c->nbinds = 0;
    rec__user_bind(c);
    req_fields_cte(c, f);
    static const char *const verbs[] = {[CFG_CONFLICT_UNDEFINED] = "INSERT",
                                        [CFG_CONFLICT_ABORT] = "INSERT OR ABORT",
                                        [CFG_CONFLICT_IGNORE] = "INSERT OR IGNORE",
                                        [CFG_CONFLICT_REPLACE] = "INSERT OR REPLACE"};
    const char *verb =
        api->conflict >= 0 && api->conflict <= CFG_CONFLICT_REPLACE && verbs[api->conflict]
            ? verbs[api->conflict]
            : "INSERT";
    tr_buf_printf(&c->sql, "%s INTO %s (", verb, api->quoted);
    bool any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        if (!f->present[i]) continue;
        tr_buf_printf(&c->sql, "%s%s", any ? ", " : "", api->cols[i].quoted);
        any = true;
    }
    tr_buf_append_str(&c->sql, ") SELECT ");
    any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        if (!f->present[i]) continue;
        tr_buf_printf(&c->sql, "%s_REQ_.%s", any ? ", " : "", api->cols[i].quoted);
        any = true;
    }
    tr_buf_append_str(&c->sql, " FROM (SELECT ?1 AS id) AS _USER_, ");
    req_from(c, f);
    rec__where_rule(c, REC_OP_CREATE);
    tr_buf_printf(&c->sql, " RETURNING %s", api->cols[api->pk].quoted);
    adb_stmt *st = NULL;
    int rc = rec__prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = adb_step(st);
    if (rc == SQLITE_ROW) {
        if (ids->len > 1) tr_buf_append_char(ids, ',');
        size_t at = ids->len;
        id_json(st, ids);
        if (idtext) tr_buf_append(idtext, ids->data + at + 1, ids->len - at - 2); /* unquoted */
        rc = adb_step(st);
    } else if (rc == SQLITE_DONE) {
        adb_finalize(st);
        rec__fail(c, 403,
                  api->rules[REC_OP_CREATE] ? "forbidden by create_access_rule"
                                            : "the record was not created (conflict)");
        return -1;
    }
    if (rc != SQLITE_DONE) {
        rec__fail_sql(c, rc);
        adb_finalize(st);
        return -1;
    }
    adb_finalize(st);
    return 0;
}

enum { BODY_JSON, BODY_FORM, BODY_OTHER };

static int body_kind(const http_request *req)
{
    const http_header *ct = http_request_header(req, "content-type");
    if (ct == NULL) return BODY_JSON;
    if (ct->value.len >= 16 && strncasecmp(ct->value.ptr, "application/json", 16) == 0)
        return BODY_JSON;
    if (ct->value.len >= 33 &&
        strncasecmp(ct->value.ptr, "application/x-www-form-urlencoded", 33) == 0)
        return BODY_FORM;
    return BODY_OTHER;
}

/* A record from an HTML form (a=1&b=x): each value converted from text by its column's type;
 * an empty value is NULL. */
static int parse_form(rec_ctx *c, rec_fields *f)
{
    const rec_api *api = c->api;
    rec_qparam *ps;
    size_t np;
    if (rec__parse_query(c, c->req->body.ptr ? c->req->body.ptr : "", c->req->body.len, &ps, &np) <
        0) {
        rec__fail(c, 400, c->err);
        return -1;
    }
    f->vals = tr_arena_alloc(c->a, (api->ncols + 1) * sizeof *f->vals);
    f->present = tr_arena_alloc(c->a, api->ncols + 1);
    memset(f->present, 0, api->ncols + 1);
    f->npresent = 0;
    for (size_t k = 0; k < np; k++) {
        int i = -1;
        for (size_t j = 0; j < api->ncols; j++)
            if (strcmp(api->cols[j].name, ps[k].key) == 0) i = (int)j;
        if (i < 0) {
            snprintf(c->err, sizeof c->err, "unknown field '%.200s'", ps[k].key);
            break;
        }
        if (f->present[i]) {
            snprintf(c->err, sizeof c->err, "field '%s' given twice", api->cols[i].name);
            break;
        }
        if (ps[k].vlen == 0) {
            f->vals[i] = (rec_value){.type = SQLITE_NULL};
        } else if (!rec__value_from_text(&api->cols[i], ps[k].val, ps[k].vlen, c->a, &f->vals[i])) {
            snprintf(c->err, sizeof c->err, "field '%s': expected %s", api->cols[i].name,
                     json_type_want(api->cols[i].type));
            break;
        }
        f->present[i] = true;
        f->npresent++;
    }
    if (c->err[0] == '\0' && f->npresent == 0)
        snprintf(c->err, sizeof c->err, "no values provided");
    if (c->err[0] != '\0') {
        rec__fail(c, 400, c->err);
        return -1;
    }
    return 0;
}

/* ---- the guests' record hooks around a write ---- */

static const char *const hook_names[] = {"beforeCreate", "afterCreate",  "beforeUpdate",
                                         "afterUpdate",  "beforeDelete", "afterDelete"};

/* The context a hook gets (records.ts RecordHookContext) as JSON. */
static void hook_ctx(rec_ctx *c, int event, const rec_fields *f, const char *id, size_t idlen,
                     tr_buf *out)
{
    const rec_api *api = c->api;
    tr_buf_append_str(out, "{\"api\":");
    rec__json_str(out, api->name, strlen(api->name));
    tr_buf_printf(out, ",\"event\":\"%s\",\"record\":{", hook_names[event]);
    bool any = false;
    for (size_t i = 0; f && i < api->ncols; i++) {
        if (!f->present[i]) continue;
        if (any) tr_buf_append_char(out, ',');
        any = true;
        rec__json_str(out, api->cols[i].name, strlen(api->cols[i].name));
        tr_buf_append_char(out, ':');
        rec__json_value(out, &f->vals[i]);
    }
    tr_buf_append_str(out, "},\"id\":");
    if (id)
        rec__json_str(out, id, idlen);
    else
        tr_buf_append_str(out, "null");
    tr_buf_append_str(out, ",\"user\":");
    if (c->user.signed_in) {
        tr_buf_append_str(out, "{\"id\":\"");
        rec__b64url_encode(c->user.id, sizeof c->user.id, out);
        tr_buf_append_str(out, "\",\"email\":");
        rec__json_str(out, c->user.email, strlen(c->user.email));
        tr_buf_printf(out, ",\"admin\":%s}", c->user.admin ? "true" : "false");
    } else {
        tr_buf_append_str(out, "null");
    }
    tr_buf_append_char(out, '}');
}

/* Runs the before hooks of event in order, inside the write's transaction. Each may replace the
 * record (f, for create and update) or reject the write (an HttpError: its status and message).
 * Returns 0, or -1 after answering. */
static int run_before(rec_ctx *c, int event, rec_fields *f, const char *id, size_t idlen)
{
    rec_hook_ref hooks[REC_MAX_HOOKS];
    size_t n = rec__hooks_find(c->api, event, hooks, REC_MAX_HOOKS);
    for (size_t k = 0; k < n; k++) {
        tr_buf ctx = TR_BUF_INIT, ans = TR_BUF_INIT;
        hook_ctx(c, event, f, id, idlen, &ctx);
        tr_error err = {0};
        int rc = rec__hook_run(&hooks[k], ctx.data, ctx.len, &ans, &err);
        tr_buf_free(&ctx);
        if (rc == 0 && adb_get_autocommit(c->db)) {
            /* the hook ended the write's transaction (a COMMIT or ROLLBACK of its own) */
            rc = tr_error_set(&err, TR_EINVAL,
                              "a record hook must not end the write's "
                              "transaction");
        }
        if (rc < 0) {
            tr_log_error("records %s: %s hook of %s failed: %s", c->api->name, hook_names[event],
                         hooks[k].module, err.msg);
            snprintf(c->err, sizeof c->err, "the %s hook failed: %.400s", hook_names[event],
                     err.msg);
            rec__fail(c, rc == TR_EINTERRUPTED ? 503 : 500, c->err);
            tr_buf_free(&ans);
            return -1;
        }
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(c->db,
                                "SELECT json_extract(?1, '$.error.status'), "
                                "json_extract(?1, '$.error.message'), json_extract(?1, '$.record')",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text64(st, 1, ans.data ? ans.data : "", ans.len, SQLITE_STATIC,
                                SQLITE_UTF8);
            rc = sqlite3_step(st);
        }
        int out = 0;
        if (rc != SQLITE_ROW) {
            rec__fail(c, 500, "a record hook answered something that is not JSON");
            out = -1;
        } else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            int status = sqlite3_column_int(st, 0);
            if (status < 400 || status > 599) status = 400;
            const char *msg = (const char *)sqlite3_column_text(st, 1);
            snprintf(c->err, sizeof c->err, "%s", msg ? msg : "rejected by a record hook");
            rec__fail(c, status, c->err);
            out = -1;
        } else if (f != NULL && sqlite3_column_type(st, 2) == SQLITE_TEXT) {
            size_t len = (size_t)sqlite3_column_bytes(st, 2);
            char *rec = tr_arena_strndup(c->a, (const char *)sqlite3_column_text(st, 2), len);
            out = parse_record(c, rec, len, f);
        }
        sqlite3_finalize(st);
        tr_buf_free(&ans);
        if (out < 0) return -1;
    }
    return 0;
}

static void after_init(rec_ctx *c, rec_after *ah, int event)
{
    ah->api = c->api;
    ah->event = event;
    ah->n = rec__hooks_find(c->api, event, ah->hooks, REC_MAX_HOOKS);
    ah->ctxs = (tr_buf)TR_BUF_INIT;
}

static void after_add(rec_ctx *c, rec_after *ah, const rec_fields *f, const char *id, size_t idlen)
{
    if (ah->n == 0) return;
    hook_ctx(c, ah->event, f, id, idlen, &ah->ctxs);
    tr_buf_append_char(&ah->ctxs, '\0');
}

/* Runs them once the write has committed: a failure is logged, the write stands. */
static void after_now(rec_after *ah)
{
    for (size_t at = 0; ah->n && at < ah->ctxs.len;) {
        const char *ctx = ah->ctxs.data + at;
        size_t len = strlen(ctx);
        for (size_t k = 0; k < ah->n; k++) {
            tr_buf ans = TR_BUF_INIT;
            tr_error err = {0};
            if (rec__hook_run(&ah->hooks[k], ctx, len, &ans, &err) < 0)
                tr_log_error("records %s: %s hook of %s failed (the write stands): %s",
                             ah->api->name, hook_names[ah->event], ah->hooks[k].module, err.msg);
            tr_buf_free(&ans);
        }
        at += len + 1;
    }
    tr_buf_free(&ah->ctxs);
}

void rec__after_run(rec_ctx *c, rec_after *ah)
{
    rec_batch *b = c->batch;
    if (b == NULL || !b->tx || ah->n == 0) return after_now(ah);
    b->after = tr_realloc(b->after, (b->nafter + 1) * sizeof *b->after);
    b->after[b->nafter++] = *ah; /* its contexts move with it */
}

void rec__batch_after(rec_batch *b, bool run)
{
    for (size_t i = 0; i < b->nafter; i++) {
        if (run)
            after_now(&b->after[i]);
        else
            tr_buf_free(&b->after[i].ctxs);
    }
    tr_free(b->after);
    b->after = NULL;
    b->nafter = 0;
}

/* Whether the worker's connection is inside a transaction that is not this write's batch's. */
static bool conn_in_tx(const rec_ctx *c)
{
    return !(c->batch && c->batch->tx) && !adb_get_autocommit(c->db);
}

/* Opens a write's transaction: BEGIN IMMEDIATE, or a savepoint inside a batch's transaction. In
 * cluster mode it is the worker's transaction on the leader (cluster/appdb.h). */
static bool tx_begin(rec_ctx *c)
{
    const char *sql = c->batch && c->batch->tx ? "SAVEPOINT rec_write" : "BEGIN IMMEDIATE";
    return adb_exec(c->db, sql) == SQLITE_OK;
}

/* Answers a write whose transaction could not begin: another connection's lock parks it (or
 * answers 503); in cluster mode the cluster's failures (no leader ...) are answered at once. */
static void tx_begin_failed(rec_ctx *c)
{
    if (adb_cluster_mode()) return rec__fail_sql(c, adb_errcode(c->db));
    rec__busy(c, "the database is busy; retry");
}

/* Ends a write's transaction when there is one; 0, or the failed COMMIT's code. */
static int tx_end(rec_ctx *c, bool tx, bool commit)
{
    if (!tx || adb_get_autocommit(c->db)) return SQLITE_OK;
    bool nested = c->batch && c->batch->tx;
    if (commit && adb_exec(c->db, nested ? "RELEASE rec_write" : "COMMIT") == SQLITE_OK)
        return SQLITE_OK;
    int rc = commit ? adb_errcode(c->db) : SQLITE_OK;
    if (!adb_get_autocommit(c->db))
        adb_exec(c->db, nested ? "ROLLBACK TO rec_write; RELEASE rec_write" : "ROLLBACK");
    return rc;
}

/* The body a write takes its record from: the request's, or a batch operation's JSON. */
static int write_body(rec_ctx *c, http_slice *out)
{
    if (c->batch != NULL) {
        *out = (http_slice){c->batch->value, c->batch->value_len};
        return BODY_JSON;
    }
    *out = c->req->body;
    if (out->ptr == NULL) *out = (http_slice){"", 0};
    return body_kind(c->req);
}

/* A create's id as the context of an after hook has it: fields plus the new id. */
static int create_one(rec_ctx *c, rec_fields *f, tr_buf *ids, rec_after *ah, bool before)
{
    if (before && run_before(c, REC_HOOK_BEFORE_CREATE, f, NULL, 0) < 0) return -1;
    tr_buf id = TR_BUF_INIT;
    int rc = insert_one(c, f, ids, &id);
    if (rc == 0) after_add(c, ah, f, id.data ? id.data : "", id.len);
    tr_buf_free(&id);
    return rc;
}

void rec__create(rec_ctx *c)
{
    http_slice bodyv;
    int kind = write_body(c, &bodyv);
    const http_slice *body = &bodyv;
    if (kind == BODY_OTHER)
        return rec__fail(c, 415,
                         "expected a JSON or form (application/x-www-form-urlencoded) body");
    if (conn_in_tx(c))
        return rec__busy(c, "the worker's database connection is in a transaction; retry");
    bool is_array = false;
    if (kind == BODY_JSON) {
        /* one object, or an array of them */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->db,
                                    "SELECT json_type(?1), CASE json_type(?1) WHEN 'array' THEN "
                                    "json_array_length(?1) END",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK) return rec__fail_sql(c, rc);
        sqlite3_bind_text64(st, 1, body->ptr ? body->ptr : "", body->len, SQLITE_STATIC,
                            SQLITE_UTF8);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return rec__fail(c, 400, "the body is not valid JSON");
        }
        const char *type = (const char *)sqlite3_column_text(st, 0);
        is_array = type && strcmp(type, "array") == 0;
        bool is_object = type && strcmp(type, "object") == 0;
        int64_t n = is_array ? sqlite3_column_int64(st, 1) : 1;
        sqlite3_finalize(st);
        if (!is_array && !is_object)
            return rec__fail(c, 400, "expected a JSON object or an array of them");
        if (is_array && c->batch) return rec__fail(c, 400, "expected a JSON object");
        if (n < 1) return rec__fail(c, 400, "no values provided");
        if (n > REC_MAX_BULK) return rec__fail(c, 413, "more than 1024 records in one request");
    }
    rec_hook_ref probe[1];
    bool before = rec__hooks_find(c->api, REC_HOOK_BEFORE_CREATE, probe, 1) > 0;
    rec_after ah;
    after_init(c, &ah, REC_HOOK_AFTER_CREATE);
    /* several records are all or nothing; before hooks run inside the write's transaction */
    bool tx = is_array || before;
    if (tx && !tx_begin(c)) return tx_begin_failed(c);
    tr_buf ids = TR_BUF_INIT;
    tr_buf_append_char(&ids, '[');
    int rc = SQLITE_OK;
    if (!is_array) {
        rec_fields f;
        if ((kind == BODY_FORM ? parse_form(c, &f) : parse_record(c, body->ptr, body->len, &f)) <
                0 ||
            create_one(c, &f, &ids, &ah, before) < 0)
            rc = -1;
    } else {
        /* one pass over the array; each element's text is copied before it is parsed */
        sqlite3_stmt *it = NULL;
        rc = sqlite3_prepare_v2(c->db, "SELECT value, type, key FROM json_each(?1)", -1, &it, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text64(it, 1, body->ptr, body->len, SQLITE_STATIC, SQLITE_UTF8);
            while ((rc = sqlite3_step(it)) == SQLITE_ROW) {
                if (strcmp((const char *)sqlite3_column_text(it, 1), "object") != 0) {
                    snprintf(c->err, sizeof c->err, "element %lld is not a JSON object",
                             (long long)sqlite3_column_int64(it, 2));
                    rec__fail(c, 400, c->err);
                    break;
                }
                size_t len = (size_t)sqlite3_column_bytes(it, 0);
                char *obj = tr_arena_strndup(c->a, (const char *)sqlite3_column_text(it, 0), len);
                rec_fields f;
                if (parse_record(c, obj, len, &f) < 0 || create_one(c, &f, &ids, &ah, before) < 0)
                    break;
            }
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc == SQLITE_ROW ? -1 : rc;
        }
        sqlite3_finalize(it);
    }
    if (rc == SQLITE_OK && (rc = tx_end(c, tx, true)) != SQLITE_OK) rec__fail_sql(c, rc);
    if (rc != SQLITE_OK) {
        tx_end(c, tx, false);
        if (!rec__answered(c)) rec__fail_sql(c, rc);
        tr_buf_free(&ids);
        tr_buf_free(&ah.ctxs);
        return;
    }
    if (c->batch != NULL) {
        rec_batch *bt = c->batch;
        if (bt->ids.len) tr_buf_append_char(&bt->ids, ',');
        tr_buf_append(&bt->ids, ids.data + 1, ids.len - 1);
        rec__ok(c);
    } else {
        tr_buf_append_char(&ids, ']');
        tr_buf b = TR_BUF_INIT;
        tr_buf_printf(&b, "{\"ids\":%s}", ids.data);
        rec__send_json(c, 200, &b);
        tr_buf_free(&b);
    }
    tr_buf_free(&ids);
    rec__after_run(c, &ah);
}

/* After an update or delete changed nothing: was the record missing, or did the rule refuse? */
static void fail_unchanged(rec_ctx *c, const rec_value *id, int op)
{
    if (c->api->rules[op] == NULL) return rec__fail(c, 404, "record not found");
    tr_buf_reset(&c->sql);
    c->nbinds = 0;
    tr_buf_printf(&c->sql, "SELECT 1 FROM %s WHERE %s = ?1", c->api->quoted,
                  c->api->cols[c->api->pk].quoted);
    rec__bind_add(c, id);
    adb_stmt *st = NULL;
    int rc = rec__prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = adb_step(st);
    adb_finalize(st);
    if (rc == SQLITE_ROW)
        rec__fail(c, 403,
                  op == REC_OP_UPDATE ? "forbidden by update_access_rule"
                                      : "forbidden by delete_access_rule");
    else
        rec__fail(c, 404, "record not found");
}

static bool same_value(const rec_value *a, const rec_value *b)
{
    if (a->type != b->type) return false;
    if (a->type == SQLITE_INTEGER) return a->i == b->i;
    if (a->type == SQLITE_TEXT || a->type == SQLITE_BLOB)
        return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
    return false;
}

/* A record id as text, as the hooks' contexts carry it. */
static void id_text(const rec_value *id, tr_buf *out)
{
    if (id->type == SQLITE_INTEGER)
        tr_buf_printf(out, "%lld", (long long)id->i);
    else if (id->type == SQLITE_BLOB)
        rec__b64url_encode(id->p, id->n, out);
    else if (id->type == SQLITE_TEXT)
        tr_buf_append(out, id->p, id->n);
}

/* Ends the UPDATE or DELETE statement in c->sql with the clause that makes the row's rule part
 * of the write (WHERE pk IN (the row id, if the rule holds for it)), runs it inside the transaction
 * of the before hooks (`tx`) and answers: 200 and the after hooks, 404/403 when nothing changed, or
 * the error. f: an update's fields (the rule's _REQ_), NULL for a delete. */
static void guarded_finish(rec_ctx *c, int op, const rec_fields *f, const rec_value *id, bool tx,
                           const char *idstr, size_t idlen)
{
    const rec_api *api = c->api;
    const char *pk = api->cols[api->pk].quoted;
    tr_buf_printf(&c->sql,
                  " WHERE %s IN (SELECT _ROW_.%s FROM (SELECT ?1 AS id) AS _USER_, %s AS _ROW_", pk,
                  pk, api->quoted);
    if (f != NULL) {
        tr_buf_append_str(&c->sql, ", ");
        req_from(c, f);
    }
    rec__where_rule(c, op);
    tr_buf_printf(&c->sql, " AND _ROW_.%s = ", pk);
    rec__bind_place(c, id);
    tr_buf_printf(&c->sql, ") RETURNING %s", pk);
    adb_stmt *st = NULL;
    int rc = rec__prepare(c, c->sql.data, &st);
    bool changed = false;
    if (rc == SQLITE_OK) {
        while ((rc = adb_step(st)) == SQLITE_ROW)
            changed = true;
    }
    adb_finalize(st);
    if (rc != SQLITE_DONE) {
        rec__fail_sql(c, rc);
        tx_end(c, tx, false);
        return;
    }
    if (!changed) {
        tx_end(c, tx, false);
        return fail_unchanged(c, id, op);
    }
    if ((rc = tx_end(c, tx, true)) != SQLITE_OK) return rec__fail_sql(c, rc);
    rec_after ah;
    after_init(c, &ah, op == REC_OP_UPDATE ? REC_HOOK_AFTER_UPDATE : REC_HOOK_AFTER_DELETE);
    after_add(c, &ah, f, idstr, idlen);
    rec__ok(c);
    rec__after_run(c, &ah);
}

void rec__update(rec_ctx *c)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!rec__path_id(c, &id)) return rec__fail(c, 400, "invalid record id");
    http_slice body;
    int kind = write_body(c, &body);
    if (kind == BODY_OTHER)
        return rec__fail(c, 415,
                         "expected a JSON or form (application/x-www-form-urlencoded) body");
    if (conn_in_tx(c))
        return rec__busy(c, "the worker's database connection is in a transaction; retry");
    rec_fields f;
    if (kind == BODY_FORM && parse_form(c, &f) < 0) return;
    if (kind == BODY_JSON && parse_record(c, body.ptr, body.len, &f) < 0) return;
    if (f.present[api->pk]) {
        if (!same_value(&f.vals[api->pk], &id))
            return rec__fail(c, 400, "the record id cannot be changed");
        f.present[api->pk] = false;
        f.npresent--;
    }
    if (f.npresent == 0) return rec__fail(c, 400, "no values provided");
    rec_hook_ref probe[1];
    bool before = rec__hooks_find(api, REC_HOOK_BEFORE_UPDATE, probe, 1) > 0;
    tr_buf idt = TR_BUF_INIT;
    id_text(&id, &idt);
    char *idstr = tr_arena_strndup(c->a, idt.data ? idt.data : "", idt.len);
    size_t idlen = idt.len;
    tr_buf_free(&idt);
    if (before) {
        /* the hooks run inside the write's transaction: a rejection or failure undoes their
         * own writes too */
        if (!tx_begin(c)) return tx_begin_failed(c);
        const char *bad = NULL;
        if (run_before(c, REC_HOOK_BEFORE_UPDATE, &f, idstr, idlen) < 0) {
            tx_end(c, true, false);
            return;
        }
        if (f.present[api->pk] && !same_value(&f.vals[api->pk], &id))
            bad = "the record id cannot be changed";
        else if (f.present[api->pk]) {
            f.present[api->pk] = false;
            f.npresent--;
        }
        if (!bad && f.npresent == 0) bad = "no values provided";
        if (bad) {
            tx_end(c, true, false);
            return rec__fail(c, 400, bad);
        }
    }
    rec__user_bind(c);
    req_fields_cte(c, &f);
    tr_buf_printf(&c->sql, "UPDATE %s SET ", api->quoted);
    bool any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        if (!f.present[i]) continue;
        tr_buf_printf(&c->sql, "%s%s = ", any ? ", " : "", api->cols[i].quoted);
        rec__bind_place(c, &f.vals[i]);
        any = true;
    }
    guarded_finish(c, REC_OP_UPDATE, &f, &id, before, idstr, idlen);
}

void rec__delete(rec_ctx *c)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!rec__path_id(c, &id)) return rec__fail(c, 400, "invalid record id");
    if (conn_in_tx(c))
        return rec__busy(c, "the worker's database connection is in a transaction; retry");
    rec_hook_ref probe[1];
    bool before = rec__hooks_find(api, REC_HOOK_BEFORE_DELETE, probe, 1) > 0;
    tr_buf idt = TR_BUF_INIT;
    id_text(&id, &idt);
    char *idstr = tr_arena_strndup(c->a, idt.data ? idt.data : "", idt.len);
    size_t idlen = idt.len;
    tr_buf_free(&idt);
    if (before) {
        if (!tx_begin(c)) return tx_begin_failed(c);
        if (run_before(c, REC_HOOK_BEFORE_DELETE, NULL, idstr, idlen) < 0) {
            tx_end(c, true, false);
            return;
        }
    }
    rec__user_bind(c);
    tr_buf_printf(&c->sql, "DELETE FROM %s", api->quoted);
    guarded_finish(c, REC_OP_DELETE, NULL, &id, before, idstr, idlen);
}
