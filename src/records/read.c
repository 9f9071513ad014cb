/* records/read.c: the Record API's reading endpoints: list (filters, order, cursors, counts and
 * expansion), read one record, and the API's JSON schema. Their statements have the form
 * records/handlers.c's DESIGN gives: SELECT ... FROM (SELECT ?1 AS id) AS _USER_, t AS _ROW_
 * WHERE (read rule) AND ..., where a request contributes only bound values. */
#include "records/records_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sha256.h"
#include "http/http.h"

/* ---- the query's parameters ---- */

static const rec_qparam *qget(const rec_qparam *ps, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ps[i].key, key) == 0) return &ps[i];
    return NULL;
}

/* A column the caller may read, filter and order on: not hidden (excluded ones are gone). */
static int readable_col(const rec_api *api, const char *name)
{
    for (size_t i = 0; i < api->ncols; i++)
        if (!api->cols[i].hidden && strcmp(api->cols[i].name, name) == 0) return (int)i;
    return -1;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9' || strlen(s) > 12) return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > max) return false;
    *out = v;
    return true;
}

/* ---- filters ---- */

enum { F_AND, F_OR, F_LEAF };
enum { OP_EQ, OP_NE, OP_LT, OP_LTE, OP_GT, OP_GTE, OP_LIKE, OP_IS };

typedef struct fnode {
    int kind;
    const char *idx; /* the element index of a group inside $and/$or */
    struct fnode *kids, *last, *next;
    int col, op;
    const char *val;
    size_t vlen;
} fnode;

typedef struct fstate {
    int nleaves;
} fstate;

static fnode *fnode_new(rec_ctx *c, int kind)
{
    fnode *f = tr_arena_alloc(c->a, sizeof *f);
    memset(f, 0, sizeof *f);
    f->kind = kind;
    return f;
}

static void fnode_add(fnode *parent, fnode *kid)
{
    if (parent->last)
        parent->last->next = kid;
    else
        parent->kids = kid;
    parent->last = kid;
}

static int op_of(const char *s)
{
    static const char *const ops[] = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$like", "$is"};
    for (size_t i = 0; i < TR_ARRAY_LEN(ops); i++)
        if (strcmp(s, ops[i]) == 0) return (int)i;
    return -1;
}

/* Inserts one filter parameter (its bracketed segments after "filter") under group g. */
static int filter_insert(rec_ctx *c, fnode *g, char **segs, int nsegs, const rec_qparam *p,
                         int depth, fstate *fs)
{
    if (nsegs == 0) {
        snprintf(c->err, sizeof c->err, "malformed filter '%s'", p->key);
        return -1;
    }
    bool is_and = strcmp(segs[0], "$and") == 0, is_or = strcmp(segs[0], "$or") == 0;
    if (is_and || is_or) {
        if (depth >= REC_MAX_FILTER_DEPTH) {
            snprintf(c->err, sizeof c->err, "filters nest deeper than %d levels",
                     REC_MAX_FILTER_DEPTH);
            return -1;
        }
        if (nsegs < 3 || strspn(segs[1], "0123456789") != strlen(segs[1]) || segs[1][0] == 0 ||
            strlen(segs[1]) > 4) {
            snprintf(c->err, sizeof c->err, "malformed filter '%s': %s needs [index][column]",
                     p->key, segs[0]);
            return -1;
        }
        int kind = is_and ? F_AND : F_OR;
        fnode *grp = NULL;
        for (fnode *k = g->kids; k; k = k->next)
            if (k->kind == kind && k->idx == NULL) grp = k;
        if (grp == NULL) {
            grp = fnode_new(c, kind);
            fnode_add(g, grp);
        }
        fnode *elem = NULL;
        for (fnode *k = grp->kids; k; k = k->next)
            if (strcmp(k->idx, segs[1]) == 0) elem = k;
        if (elem == NULL) {
            elem = fnode_new(c, F_AND);
            elem->idx = segs[1];
            fnode_add(grp, elem);
        }
        return filter_insert(c, elem, segs + 2, nsegs - 2, p, depth + 1, fs);
    }
    if (nsegs > 2) {
        snprintf(c->err, sizeof c->err, "malformed filter '%s'", p->key);
        return -1;
    }
    int col = readable_col(c->api, segs[0]);
    if (col < 0) {
        snprintf(c->err, sizeof c->err, "filter on unknown column '%.200s'", segs[0]);
        return -1;
    }
    int op = nsegs == 2 ? op_of(segs[1]) : OP_EQ;
    if (op < 0) {
        snprintf(c->err, sizeof c->err,
                 "unknown filter operator '%.100s' (expected $eq, $ne, $lt, $lte, $gt, $gte, "
                 "$like or $is)",
                 segs[1]);
        return -1;
    }
    if (++fs->nleaves > REC_MAX_FILTERS) {
        snprintf(c->err, sizeof c->err, "more than %d filter conditions", REC_MAX_FILTERS);
        return -1;
    }
    fnode *leaf = fnode_new(c, F_LEAF);
    leaf->col = col;
    leaf->op = op;
    leaf->val = p->val;
    leaf->vlen = p->vlen;
    fnode_add(g, leaf);
    return 0;
}

/* Splits "filter[a][b][c]" into its segments. */
static int filter_segments(rec_ctx *c, const rec_qparam *p, char **segs, int *nsegs)
{
    const char *s = p->key + strlen("filter");
    int n = 0;
    while (*s) {
        if (*s != '[' || n == 2 * REC_MAX_FILTER_DEPTH + 2) goto bad;
        const char *e = strchr(s + 1, ']');
        if (e == NULL || e == s + 1) goto bad;
        if (memchr(s + 1, '[', (size_t)(e - s - 1)) != NULL) goto bad;
        segs[n++] = tr_arena_strndup(c->a, s + 1, (size_t)(e - s - 1));
        s = e + 1;
    }
    *nsegs = n;
    return 0;
bad:
    snprintf(c->err, sizeof c->err, "malformed filter '%.200s'", p->key);
    return -1;
}

static const char *const op_sql[] = {"=", "<>", "<", "<=", ">", ">=", "LIKE"};

static int filter_emit(rec_ctx *c, const fnode *f)
{
    if (f->kind == F_LEAF) {
        const rec_column *col = &c->api->cols[f->col];
        tr_buf_printf(&c->sql, "_ROW_.%s", col->quoted);
        if (f->op == OP_IS) {
            if (strcasecmp(f->val, "NULL") == 0) {
                tr_buf_append_str(&c->sql, " IS NULL");
            } else if (strcasecmp(f->val, "!NULL") == 0) {
                tr_buf_append_str(&c->sql, " IS NOT NULL");
            } else {
                snprintf(c->err, sizeof c->err, "filter on '%s': $is takes NULL or !NULL",
                         col->name);
                return -1;
            }
            return 0;
        }
        rec_value v;
        if (f->op == OP_LIKE) {
            v = (rec_value){.type = SQLITE_TEXT, .p = f->val, .n = f->vlen};
        } else if (!rec__value_from_text(col, f->val, f->vlen, c->a, &v)) {
            static const char *const what[] = {"a value", "an integer", "a number", "text",
                                               "a UUID or URL-safe base64"};
            snprintf(c->err, sizeof c->err, "filter on '%s': expected %s, got '%.100s'", col->name,
                     what[col->type], f->val);
            return -1;
        }
        tr_buf_printf(&c->sql, " %s ", op_sql[f->op]);
        rec__bind_place(c, &v);
        return 0;
    }
    if (f->kids == NULL) {
        tr_buf_append_str(&c->sql, "1");
        return 0;
    }
    tr_buf_append_char(&c->sql, '(');
    for (const fnode *k = f->kids; k; k = k->next) {
        if (k != f->kids) tr_buf_append_str(&c->sql, f->kind == F_OR ? " OR " : " AND ");
        if (filter_emit(c, k) < 0) return -1;
    }
    tr_buf_append_char(&c->sql, ')');
    return 0;
}

int rec__filter_sql(rec_ctx *c, const rec_qparam *ps, size_t np)
{
    fnode *root = fnode_new(c, F_AND);
    fstate fs = {0};
    for (size_t i = 0; i < np; i++) {
        if (strncmp(ps[i].key, "filter", 6) != 0) continue;
        char *segs[2 * REC_MAX_FILTER_DEPTH + 2];
        int nsegs;
        if (filter_segments(c, &ps[i], segs, &nsegs) < 0 ||
            filter_insert(c, root, segs, nsegs, &ps[i], 0, &fs) < 0)
            return -1;
    }
    return filter_emit(c, root);
}

/* ---- cursors: the last record's id, bound to the API and signed ---- */

#define CURSOR_MAC 16

static void hmac(const rec_set *s, const char *api, const uint8_t *msg, size_t n, uint8_t out[32])
{
    uint8_t k[64] = {0};
    memcpy(k, s->cursor_key, sizeof s->cursor_key);
    uint8_t ipad[64], opad[64];
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    tr_sha256 h;
    uint8_t inner[32];
    tr_sha256_init(&h);
    tr_sha256_update(&h, ipad, 64);
    tr_sha256_update(&h, api, strlen(api) + 1);
    tr_sha256_update(&h, msg, n);
    tr_sha256_final(&h, inner);
    tr_sha256_init(&h);
    tr_sha256_update(&h, opad, 64);
    tr_sha256_update(&h, inner, 32);
    tr_sha256_final(&h, out);
}

static void cursor_encode(const rec_api *api, adb_stmt *st, int col, tr_buf *out)
{
    uint8_t msg[1 + 64 + CURSOR_MAC];
    size_t n = 0;
    if (adb_column_type(st, col) == SQLITE_INTEGER) {
        uint64_t v = (uint64_t)adb_column_int64(st, col);
        msg[n++] = 'i';
        for (int i = 7; i >= 0; i--)
            msg[n++] = (uint8_t)(v >> (i * 8));
    } else if (adb_column_type(st, col) == SQLITE_BLOB && adb_column_bytes(st, col) <= 64) {
        msg[n++] = 'b';
        memcpy(msg + n, adb_column_blob(st, col), (size_t)adb_column_bytes(st, col));
        n += (size_t)adb_column_bytes(st, col);
    } else {
        return;
    }
    uint8_t mac[32];
    hmac(api->set, api->name, msg, n, mac);
    memcpy(msg + n, mac, CURSOR_MAC);
    rec__b64url_encode(msg, n + CURSOR_MAC, out);
}

/* Checks a cursor's signature (made by this API, in this process) and yields its id. */
static bool cursor_decode(rec_ctx *c, const char *s, size_t len, rec_value *out)
{
    if (len > 200) return false;
    uint8_t *msg = tr_arena_alloc(c->a, len);
    size_t n;
    if (!rec__b64url_decode(s, len, msg, &n) || n < 1 + CURSOR_MAC) return false;
    n -= CURSOR_MAC;
    uint8_t mac[32];
    hmac(c->api->set, c->api->name, msg, n, mac);
    uint8_t diff = 0;
    for (int i = 0; i < CURSOR_MAC; i++)
        diff |= (uint8_t)(mac[i] ^ msg[n + (size_t)i]);
    if (diff != 0) return false;
    if (msg[0] == 'i' && n == 9) {
        uint64_t v = 0;
        for (int i = 1; i <= 8; i++)
            v = v << 8 | msg[i];
        *out = (rec_value){.type = SQLITE_INTEGER, .i = (int64_t)v};
        return true;
    }
    if (msg[0] == 'b') {
        *out = (rec_value){.type = SQLITE_BLOB, .p = (const char *)msg + 1, .n = n - 1};
        return true;
    }
    return false;
}

/* ---- reading ---- */

/* Parses expand=a,b into wanted[] (one flag per configured expansion). */
static int parse_expand(rec_ctx *c, const rec_qparam *ps, size_t np, bool *wanted)
{
    const rec_qparam *e = qget(ps, np, "expand");
    if (e == NULL || e->vlen == 0) return 0;
    char *list = tr_arena_strndup(c->a, e->val, e->vlen);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (++n > REC_MAX_EXPAND) {
            snprintf(c->err, sizeof c->err, "more than %d columns to expand", REC_MAX_EXPAND);
            return -1;
        }
        bool found = false;
        for (size_t k = 0; k < c->api->nexpand; k++)
            if (strcmp(c->api->cols[c->api->expand[k].col].name, tok) == 0) {
                wanted[k] = true;
                found = true;
            }
        if (!found) {
            snprintf(c->err, sizeof c->err, "cannot expand '%.200s' (not in this API's expand)",
                     tok);
            return -1;
        }
    }
    return 0;
}

/* SELECT <api columns>, <expanded columns> FROM _USER_, t AS _ROW_ LEFT JOIN ... */
static void select_head(rec_ctx *c, const bool *wanted)
{
    const rec_api *api = c->api;
    tr_buf_append_str(&c->sql, "SELECT ");
    for (size_t i = 0; i < api->ncols; i++)
        tr_buf_printf(&c->sql, "%s_ROW_.%s", i ? ", " : "", api->cols[i].quoted);
    for (size_t k = 0; k < api->nexpand; k++) {
        if (!wanted[k]) continue;
        for (size_t j = 0; j < api->expand[k].ncols; j++)
            tr_buf_printf(&c->sql, ", F%zu.%s", k, api->expand[k].cols[j].quoted);
    }
    tr_buf_printf(&c->sql, " FROM (SELECT ?1 AS id) AS _USER_, %s AS _ROW_", api->quoted);
    for (size_t k = 0; k < api->nexpand; k++) {
        if (!wanted[k]) continue;
        const rec_foreign *f = &api->expand[k];
        tr_buf_printf(&c->sql, " LEFT JOIN %s AS F%zu ON _ROW_.%s = F%zu.%s", f->quoted, k,
                      api->cols[f->col].quoted, k, f->quoted_key);
    }
}

void rec__list(rec_ctx *c, const rec_qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    bool *wanted = tr_arena_alloc(c->a, api->nexpand + 1);
    memset(wanted, 0, api->nexpand + 1);
    if (parse_expand(c, ps, np, wanted) < 0) return rec__fail(c, 400, c->err);

    uint64_t limit = REC_DEFAULT_LIMIT, offset = 0;
    const rec_qparam *p;
    if ((p = qget(ps, np, "limit")) && !parse_uint(p->val, UINT32_MAX, &limit))
        return rec__fail(c, 400, "limit: expected a non-negative integer");
    if (limit > api->hard_limit) limit = api->hard_limit;
    if ((p = qget(ps, np, "offset")) && !parse_uint(p->val, INT32_MAX, &offset))
        return rec__fail(c, 400, "offset: expected a non-negative integer");
    bool count =
        (p = qget(ps, np, "count")) && (strcmp(p->val, "true") == 0 || strcmp(p->val, "1") == 0);

    /* order=[+-]col,... ; the default is the record id, newest first */
    tr_buf order = TR_BUF_INIT;
    bool pk_first_asc = false, pk_first = true;
    if ((p = qget(ps, np, "order")) && p->vlen > 0) {
        char *list = tr_arena_strndup(c->a, p->val, p->vlen);
        int n = 0;
        pk_first = false;
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            bool desc = tok[0] == '-';
            if (tok[0] == '-' || tok[0] == '+') tok++;
            int col = readable_col(api, tok);
            if (col < 0 || ++n > REC_MAX_ORDER) {
                tr_buf_free(&order);
                snprintf(c->err, sizeof c->err, "order: unknown column '%.200s'", tok);
                if (col >= 0)
                    snprintf(c->err, sizeof c->err, "order: more than %d columns", REC_MAX_ORDER);
                return rec__fail(c, 400, c->err);
            }
            if (n == 1 && col == api->pk) {
                pk_first = true;
                pk_first_asc = !desc;
            }
            tr_buf_printf(&order, "%s_ROW_.%s %s", n > 1 ? ", " : "", api->cols[col].quoted,
                          desc ? "DESC" : "ASC");
        }
    } else if (api->pk >= 0) {
        tr_buf_printf(&order, "_ROW_.%s DESC", api->cols[api->pk].quoted);
    }

    rec__user_bind(c);
    /* the WHERE: rule, filters; kept as text to reuse for the count */
    tr_buf sql_keep = c->sql;
    c->sql = (tr_buf)TR_BUF_INIT;
    rec__where_rule(c, REC_OP_READ);
    tr_buf_append_str(&c->sql, " AND ");
    if (rec__filter_sql(c, ps, np) < 0) {
        tr_buf_free(&order);
        tr_buf_free(&sql_keep);
        return rec__fail(c, 400, c->err);
    }
    tr_buf where = c->sql;
    c->sql = sql_keep;
    int nfilter_binds = c->nbinds;

    tr_buf curs = TR_BUF_INIT; /* the cursor's condition: the page, not the count */
    if ((p = qget(ps, np, "cursor")) && p->vlen > 0) {
        rec_value cur;
        const char *bad = NULL;
        if (api->pk < 0 || api->is_view || !pk_first)
            bad = "cursor: only tables ordered by their record id first support cursors; use "
                  "offset";
        else if (!cursor_decode(c, p->val, p->vlen, &cur))
            bad = "cursor: not a cursor of this API";
        if (bad) {
            tr_buf_free(&order);
            tr_buf_free(&where);
            return rec__fail(c, 400, bad);
        }
        tr_buf_printf(&curs, " AND _ROW_.%s %s ?%d", api->cols[api->pk].quoted,
                      pk_first_asc ? ">" : "<", rec__bind_add(c, &cur));
    }

    tr_buf body = TR_BUF_INIT;
    tr_buf_append_str(&body, "{");
    adb_stmt *st = NULL;
    int rc;
    if (count) {
        tr_buf_printf(&c->sql, "SELECT COUNT(*) FROM (SELECT ?1 AS id) AS _USER_, %s AS _ROW_",
                      api->quoted);
        /* the count has the rule and the filters, not the cursor: bind only those */
        size_t wlen = where.len;
        const char *wtext = where.data;
        tr_buf_append(&c->sql, wtext, wlen);
        int keep = c->nbinds;
        c->nbinds = nfilter_binds;
        rc = rec__prepare(c, c->sql.data, &st);
        c->nbinds = keep;
        if (rc == SQLITE_OK) rc = adb_step(st);
        if (rc != SQLITE_ROW) goto sqlfail;
        tr_buf_printf(&body, "\"total_count\":%lld,", (long long)adb_column_int64(st, 0));
        adb_finalize(st);
        st = NULL;
        tr_buf_reset(&c->sql);
    }
    select_head(c, wanted);
    tr_buf_append(&c->sql, where.data, where.len);
    if (curs.len) tr_buf_append(&c->sql, curs.data, curs.len);
    if (order.len) tr_buf_printf(&c->sql, " ORDER BY %s", order.data);
    rec_value lim = {.type = SQLITE_INTEGER, .i = (int64_t)limit};
    rec_value off = {.type = SQLITE_INTEGER, .i = (int64_t)offset};
    tr_buf_append_str(&c->sql, " LIMIT ");
    rec__bind_place(c, &lim);
    tr_buf_append_str(&c->sql, " OFFSET ");
    rec__bind_place(c, &off);
    rc = rec__prepare(c, c->sql.data, &st);
    if (rc != SQLITE_OK) goto sqlfail;
    tr_buf_append_str(&body, "\"records\":[");
    size_t nrows = 0;
    tr_buf cursor = TR_BUF_INIT;
    while ((rc = adb_step(st)) == SQLITE_ROW) {
        if (nrows++) tr_buf_append_char(&body, ',');
        rec__json_row(&body, api, st, 0, wanted);
        if (api->pk >= 0 && !api->is_view) {
            tr_buf_reset(&cursor);
            cursor_encode(api, st, api->pk, &cursor);
        }
    }
    if (rc != SQLITE_DONE) {
        tr_buf_free(&cursor);
        goto sqlfail;
    }
    tr_buf_append_char(&body, ']');
    if (cursor.len > 0 && pk_first) {
        tr_buf_append_str(&body, ",\"cursor\":");
        rec__json_str(&body, cursor.data, cursor.len);
    }
    tr_buf_free(&cursor);
    tr_buf_append_char(&body, '}');
    adb_finalize(st);
    rec__send_json(c, 200, &body);
    tr_buf_free(&body);
    tr_buf_free(&order);
    tr_buf_free(&where);
    tr_buf_free(&curs);
    return;
sqlfail:
    rec__fail_sql(c, rc);
    adb_finalize(st);
    tr_buf_free(&body);
    tr_buf_free(&order);
    tr_buf_free(&where);
    tr_buf_free(&curs);
}

void rec__read(rec_ctx *c, const rec_qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!rec__path_id(c, &id)) return rec__fail(c, 400, "invalid record id");
    bool *wanted = tr_arena_alloc(c->a, api->nexpand + 1);
    memset(wanted, 0, api->nexpand + 1);
    if (parse_expand(c, ps, np, wanted) < 0) return rec__fail(c, 400, c->err);
    rec__user_bind(c);
    select_head(c, wanted);
    rec__where_rule(c, REC_OP_READ);
    tr_buf_printf(&c->sql, " AND _ROW_.%s = ", api->cols[api->pk].quoted);
    rec__bind_place(c, &id);
    tr_buf_append_str(&c->sql, " LIMIT 1");
    adb_stmt *st = NULL;
    int rc = rec__prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = adb_step(st);
    if (rc == SQLITE_DONE) {
        adb_finalize(st);
        return rec__fail(c, 404, "record not found");
    }
    if (rc != SQLITE_ROW) {
        rec__fail_sql(c, rc);
        adb_finalize(st);
        return;
    }
    tr_buf body = TR_BUF_INIT;
    rec__json_row(&body, api, st, 0, wanted);
    adb_finalize(st);
    rec__send_json(c, 200, &body);
    tr_buf_free(&body);
}

void rec__schema(rec_ctx *c)
{
    const rec_api *api = c->api;
    if (api->rules[REC_OP_SCHEMA]) {
        rec__user_bind(c);
        tr_buf_printf(&c->sql, "SELECT 1 FROM (SELECT ?1 AS id) AS _USER_");
        rec__where_rule(c, REC_OP_SCHEMA);
        adb_stmt *st = NULL;
        int rc = rec__prepare(c, c->sql.data, &st);
        if (rc == SQLITE_OK) rc = adb_step(st);
        adb_finalize(st);
        if (rc == SQLITE_DONE) return rec__fail(c, 403, "forbidden");
        if (rc != SQLITE_ROW) return rec__fail_sql(c, rc);
    }
    static const char *const types[] = {NULL, "integer", "number", "string", "string"};
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_str(&b, "{\"title\":");
    rec__json_str(&b, api->name, strlen(api->name));
    tr_buf_append_str(&b, ",\"type\":\"object\",\"properties\":{");
    bool any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        const rec_column *col = &api->cols[i];
        if (col->hidden) continue;
        if (any) tr_buf_append_char(&b, ',');
        any = true;
        rec__json_str(&b, col->name, strlen(col->name));
        tr_buf_append_char(&b, ':');
        const char *t = types[col->type];
        bool expandable = false;
        for (size_t k = 0; k < api->nexpand; k++)
            if (api->expand[k].col == (int)i) expandable = true;
        if (expandable)
            tr_buf_append_str(&b, "{\"type\":\"object\",\"properties\":{\"id\":{},\"data\":"
                                  "{\"type\":\"object\"}},\"required\":[\"id\"]}");
        else if (t == NULL)
            tr_buf_append_str(&b, "{}");
        else if (col->notnull)
            tr_buf_printf(&b, "{\"type\":\"%s\"}", t);
        else
            tr_buf_printf(&b, "{\"type\":[\"%s\",\"null\"]}", t);
    }
    tr_buf_append_str(&b, "},\"required\":[");
    any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        const rec_column *col = &api->cols[i];
        if (col->hidden || !col->notnull || col->has_default ||
            (col->pk && col->type == REC_T_INTEGER))
            continue;
        if (any) tr_buf_append_char(&b, ',');
        any = true;
        rec__json_str(&b, col->name, strlen(col->name));
    }
    tr_buf_append_str(&b, "]}");
    rec__send_json(c, 200, &b);
    tr_buf_free(&b);
}
