/* records/schema.c: building the Record APIs from the configuration and the database's schema.
 *
 * DESIGN: everything a request may name (columns to filter, order or expand on, fields of a
 * record) is looked up in what is read here, so that the statements built per request contain
 * only identifiers that came from the database itself. The access rules are compiled here once,
 * in statements of the same shape as the requests' (with _ROW_, _REQ_, _REQ_FIELDS_ and _USER_
 * in scope as each operation has them), so a rule that names an unknown column or holds more
 * than one expression stops the start instead of failing every request. */
#include "records/records_internal.h"

#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "db/db.h"

char *rec__quote(const char *name)
{
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_char(&b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"') tr_buf_append_char(&b, '"');
        tr_buf_append_char(&b, *p);
    }
    tr_buf_append_char(&b, '"');
    return tr_buf_take(&b, NULL);
}

/* SQLite's affinity rules (datatype3.html 3.1) applied to a declared type. */
static rec_type type_of(const char *decl)
{
    if (decl == NULL || decl[0] == '\0') return REC_T_ANY;
    if (strcasestr(decl, "INT")) return REC_T_INTEGER;
    if (strcasestr(decl, "CHAR") || strcasestr(decl, "CLOB") || strcasestr(decl, "TEXT"))
        return REC_T_TEXT;
    if (strcasestr(decl, "BLOB")) return REC_T_BLOB;
    if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB"))
        return REC_T_REAL;
    if (strcasecmp(decl, "ANY") == 0) return REC_T_ANY;
    /* NUMERIC affinity (BOOLEAN, DATE, DECIMAL): an integer when the value is one. */
    return REC_T_INTEGER;
}

static void column_clear(rec_column *c)
{
    tr_free(c->name);
    tr_free(c->quoted);
    tr_free(c->fk_table);
    tr_free(c->fk_column);
    memset(c, 0, sizeof *c);
}

static void columns_free(rec_column *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        column_clear(&cols[i]);
    tr_free(cols);
}

/* Reads table's columns (and foreign keys) into *out. *is_view tells a view from a table;
 * TR_ENOTFOUND when neither exists. */
static int read_columns(sqlite3 *db, const char *table, rec_column **out, size_t *nout,
                        bool *is_view, tr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    rec_column *cols = NULL;
    size_t n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT type FROM main.sqlite_schema WHERE name = ?1 AND type IN "
                           "('table', 'view')",
                           -1, &st, NULL) != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return tr_error_set(err, TR_ENOTFOUND, "no table or view named '%s'", table);
    }
    *is_view = strcmp((const char *)sqlite3_column_text(st, 0), "view") == 0;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db,
                           "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden "
                           "FROM pragma_table_xinfo(?1, 'main')",
                           -1, &st, NULL) != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int tcol = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tcol++;
        if (sqlite3_column_int(st, 5) == 1) continue; /* a virtual table's hidden column */
        cols = tr_realloc(cols, (n + 1) * sizeof *cols);
        rec_column *c = &cols[n++];
        memset(c, 0, sizeof *c);
        c->name = tr_strdup((const char *)sqlite3_column_text(st, 0));
        c->quoted = rec__quote(c->name);
        c->type = type_of((const char *)sqlite3_column_text(st, 1));
        c->notnull = sqlite3_column_int(st, 2) != 0;
        c->has_default = sqlite3_column_int(st, 3) != 0 || sqlite3_column_int(st, 5) >= 2;
        c->pk = sqlite3_column_int(st, 4) != 0;
        c->hidden = c->name[0] == '_';
        c->tcol = tcol;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) goto sqlfail;
    if (!*is_view) {
        if (sqlite3_prepare_v2(db,
                               "SELECT \"from\", \"table\", \"to\" FROM "
                               "pragma_foreign_key_list(?1, 'main')",
                               -1, &st, NULL) != SQLITE_OK)
            goto sqlfail;
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *from = (const char *)sqlite3_column_text(st, 0);
            for (size_t i = 0; i < n; i++)
                if (from && strcmp(cols[i].name, from) == 0 && cols[i].fk_table == NULL) {
                    cols[i].fk_table = tr_strdup((const char *)sqlite3_column_text(st, 1));
                    const char *to = (const char *)sqlite3_column_text(st, 2);
                    cols[i].fk_column = to ? tr_strdup(to) : NULL;
                }
        }
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE) goto sqlfail;
    }
    *out = cols;
    *nout = n;
    return 0;
sqlfail:
    rc = tr_error_set(err, TR_ESQL, "reading the schema of '%s': %s", table, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    columns_free(cols, n);
    return rc;
}

static int find_col(const rec_api *api, const char *name)
{
    for (size_t i = 0; i < api->ncols; i++)
        if (strcmp(api->cols[i].name, name) == 0) return (int)i;
    return -1;
}

/* Compiles sql to check that a rule fits its statement; the rule is spliced in by the caller. */
static int check_rule(sqlite3 *db, const rec_api *api, const char *op, const char *sql,
                      tr_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
    const char *msg = rc == SQLITE_OK ? NULL : sqlite3_errmsg(db);
    int out = 0;
    if (rc != SQLITE_OK)
        out = tr_error_set(err, TR_ECONFIG, "record_apis '%s': %s_access_rule: %s", api->name, op,
                           msg);
    else if (tail != NULL && strspn(tail, " \t\r\n;") != strlen(tail))
        out = tr_error_set(err, TR_ECONFIG,
                           "record_apis '%s': %s_access_rule must be one SQL expression", api->name,
                           op);
    sqlite3_finalize(st);
    return out;
}

/* The _REQ_ subquery of a create or update rule: each writable column as a NULL. */
static void req_subquery(const rec_api *api, tr_buf *b)
{
    tr_buf_append_str(b, "(SELECT ");
    for (size_t i = 0; i < api->ncols; i++)
        tr_buf_printf(b, "%sNULL AS %s", i ? ", " : "", api->cols[i].quoted);
    tr_buf_append_str(b, ") AS _REQ_");
}

static int check_rules(sqlite3 *db, const rec_api *api, tr_error *err)
{
    static const char *const names[REC_NOPS] = {"create", "read", "update", "delete", "schema"};
    for (int op = 0; op < REC_NOPS; op++) {
        if (api->rules[op] == NULL) continue;
        tr_buf b = TR_BUF_INIT;
        if (op == REC_OP_CREATE || op == REC_OP_UPDATE)
            tr_buf_append_str(&b, "WITH _REQ_FIELDS_(_) AS (SELECT value FROM json_each('[]')) ");
        tr_buf_append_str(&b, "SELECT 1 FROM (SELECT NULL AS id) AS _USER_");
        if (op == REC_OP_READ || op == REC_OP_UPDATE || op == REC_OP_DELETE)
            tr_buf_printf(&b, ", %s AS _ROW_", api->quoted);
        if (op == REC_OP_CREATE || op == REC_OP_UPDATE) {
            tr_buf_append_str(&b, ", ");
            req_subquery(api, &b);
        }
        tr_buf_printf(&b, " WHERE (%s)", api->rules[op]);
        int rc = check_rule(db, api, names[op], b.data, err);
        tr_buf_free(&b);
        if (rc < 0) return rc;
    }
    return 0;
}

static bool valid_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static int load_expand(sqlite3 *db, rec_api *api, const cfg_record_api *ca, tr_error *err)
{
    api->expand = tr_calloc(ca->expand_len ? ca->expand_len : 1, sizeof *api->expand);
    for (size_t k = 0; k < ca->expand_len; k++) {
        int i = find_col(api, ca->expand[k]);
        if (i < 0 || api->cols[i].fk_table == NULL || api->cols[i].hidden)
            return tr_error_set(err, TR_ECONFIG,
                                "record_apis '%s': expand: '%s' is not a foreign key column of "
                                "'%s'",
                                api->name, ca->expand[k], api->table);
        const rec_column *c = &api->cols[i];
        if (c->fk_table[0] == '_')
            return tr_error_set(err, TR_ECONFIG,
                                "record_apis '%s': expand: '%s' points to '%s'; tables whose "
                                "names start with '_' cannot be expanded",
                                api->name, c->name, c->fk_table);
        rec_foreign *f = &api->expand[api->nexpand++];
        f->col = i;
        f->quoted = rec__quote(c->fk_table);
        rec_column *fcols = NULL;
        size_t nf = 0;
        bool view = false;
        int rc = read_columns(db, c->fk_table, &fcols, &nf, &view, err);
        if (rc < 0) return rc;
        const char *key = c->fk_column;
        size_t o = 0;
        for (size_t j = 0; j < nf; j++) {
            if (key == NULL && fcols[j].pk) key = fcols[j].name;
        }
        f->quoted_key = key ? rec__quote(key) : tr_strdup("rowid");
        for (size_t j = 0; j < nf; j++) {
            if (fcols[j].hidden) {
                column_clear(&fcols[j]);
                continue;
            }
            fcols[o++] = fcols[j];
        }
        f->cols = fcols;
        f->ncols = o;
    }
    return 0;
}

static int load_api(sqlite3 *db, const cfg_record_api *ca, rec_api *api, tr_error *err)
{
    if (!valid_name(ca->name))
        return tr_error_set(err, TR_ECONFIG,
                            "record_apis: name '%s' must be 1-64 letters, digits, '_' or '-'",
                            ca->name ? ca->name : "");
    api->name = tr_strdup(ca->name);
    const char *table = ca->table_name ? ca->table_name : ca->name;
    api->table = tr_strdup(table);
    api->quoted = rec__quote(table);
    if (table[0] == '_')
        return tr_error_set(err, TR_ECONFIG,
                            "record_apis '%s': table '%s' is trail's own (names starting with "
                            "'_' cannot be served; expose a view of the columns you need)",
                            api->name, table);
    int rc = read_columns(db, table, &api->cols, &api->ncols, &api->is_view, err);
    if (rc == TR_ENOTFOUND)
        return tr_error_set(err, TR_ECONFIG, "record_apis '%s': no table or view named '%s'",
                            api->name, table);
    if (rc < 0) return rc;
    for (size_t k = 0; k < ca->excluded_columns_len; k++) {
        int i = find_col(api, ca->excluded_columns[k]);
        if (i < 0)
            return tr_error_set(err, TR_ECONFIG,
                                "record_apis '%s': excluded_columns: no column '%s' in '%s'",
                                api->name, ca->excluded_columns[k], table);
        if (api->cols[i].pk)
            return tr_error_set(err, TR_ECONFIG,
                                "record_apis '%s': excluded_columns: '%s' is the primary key",
                                api->name, ca->excluded_columns[k]);
        column_clear(&api->cols[i]);
        memmove(&api->cols[i], &api->cols[i + 1], (api->ncols - (size_t)i - 1) * sizeof *api->cols);
        api->ncols--;
    }
    api->pk = -1;
    int npk = 0;
    for (size_t i = 0; i < api->ncols; i++)
        if (api->cols[i].pk) {
            api->pk = (int)i;
            npk++;
        }
    if (api->is_view) {
        api->pk = find_col(api, "id");
    } else if (npk != 1 || (api->cols[api->pk].type != REC_T_INTEGER &&
                            api->cols[api->pk].type != REC_T_BLOB)) {
        return tr_error_set(err, TR_ECONFIG,
                            "record_apis '%s': table '%s' needs a single INTEGER or UUID (BLOB) "
                            "primary key column",
                            api->name, table);
    }
    api->acl_world = ca->acl_world;
    api->acl_authenticated = ca->acl_authenticated;
    const uint32_t writes = CFG_PERM_CREATE | CFG_PERM_UPDATE | CFG_PERM_DELETE;
    if (api->is_view && ((api->acl_world | api->acl_authenticated) & writes))
        return tr_error_set(err, TR_ECONFIG,
                            "record_apis '%s': '%s' is a view; it can only be read (grant READ "
                            "and SCHEMA only)",
                            api->name, table);
    const char *rules[REC_NOPS] = {ca->create_access_rule, ca->read_access_rule,
                                   ca->update_access_rule, ca->delete_access_rule,
                                   ca->schema_access_rule};
    for (int op = 0; op < REC_NOPS; op++)
        if (rules[op] != NULL && rules[op][0] != '\0') api->rules[op] = tr_strdup(rules[op]);
    api->subscriptions = ca->enable_subscriptions;
    api->autofill = ca->autofill_missing_user_id_columns;
    api->conflict = ca->conflict_resolution;
    api->hard_limit = ca->listing_hard_limit ? ca->listing_hard_limit : REC_HARD_LIMIT;
    rc = load_expand(db, api, ca, err);
    if (rc < 0) return rc;
    return check_rules(db, api, err);
}

static void api_free(rec_api *api)
{
    tr_free(api->name);
    tr_free(api->table);
    tr_free(api->quoted);
    columns_free(api->cols, api->ncols);
    for (int op = 0; op < REC_NOPS; op++)
        tr_free(api->rules[op]);
    for (size_t k = 0; k < api->nexpand; k++) {
        tr_free(api->expand[k].quoted);
        tr_free(api->expand[k].quoted_key);
        columns_free(api->expand[k].cols, api->expand[k].ncols);
    }
    tr_free(api->expand);
}

void rec_set_cursor_key(rec_set *s, const uint8_t key[32])
{
    if (s) memcpy(s->cursor_key, key, sizeof s->cursor_key);
}

int rec_set_load(const cfg *c, db_conn *db, rec_user_fn who, rec_set **out, tr_error *err)
{
    rec_set *s = tr_calloc(1, sizeof *s);
    s->who = who;
    s->transactions = c->server.enable_record_transactions;
    s->apis = tr_calloc(c->record_apis_len ? c->record_apis_len : 1, sizeof *s->apis);
    if (getrandom(s->cursor_key, sizeof s->cursor_key, 0) != (ssize_t)sizeof s->cursor_key)
        tr_fatal("getrandom failed");
    sqlite3 *h = db_handle(db);
    for (size_t i = 0; i < c->record_apis_len; i++) {
        rec_api *api = &s->apis[s->napis++];
        api->set = s;
        int rc = load_api(h, &c->record_apis[i], api, err);
        for (size_t j = 0; rc == 0 && j + 1 < s->napis; j++)
            if (strcmp(s->apis[j].name, api->name) == 0)
                rc = tr_error_set(err, TR_ECONFIG, "record_apis: two APIs are named '%s'",
                                  api->name);
        if (rc < 0) {
            rec_set_free(s);
            return rc;
        }
    }
    s->hub = rec__hub_new(s);
    *out = s;
    return 0;
}

void rec_set_free(rec_set *s)
{
    if (s == NULL) return;
    rec__hub_free(s->hub);
    for (size_t i = 0; i < s->napis; i++)
        api_free(&s->apis[i]);
    tr_free(s->apis);
    tr_free(s);
}

size_t rec_set_count(const rec_set *s)
{
    return s ? s->napis : 0;
}
