/* records/handlers.c: the Record API endpoints: list, read, create, update, delete, schema.
 *
 * DESIGN: each request builds one statement in its arena and runs it on the worker's connection,
 * synchronously (SQLite answers a lookup in microseconds; a write that finds another
 * connection's lock waits in the connection's busy handler, at most DB_BUSY_TIMEOUT_MS). The
 * statement's text is assembled from the schema's quoted identifiers, the API's rules and "?N"
 * placeholders; a request contributes only values, bound as parameters (?1 is always the
 * caller's user id, the _USER_.id of the rules). Where a rule applies it sits in the statement:
 *
 *   list/read  SELECT ... FROM (SELECT ?1 AS id) AS _USER_, t AS _ROW_ WHERE (rule) AND ...
 *   create     INSERT INTO t (...) SELECT ... FROM _USER_, (SELECT ?.. AS c, ...) AS _REQ_
 *              WHERE (rule) RETURNING pk          -- no row back: the rule refused
 *   update     UPDATE t SET ... WHERE pk IN (SELECT _ROW_.pk FROM _USER_, t AS _ROW_, _REQ_
 *              WHERE _ROW_.pk = ? AND (rule)) RETURNING pk
 *   delete     DELETE FROM t WHERE pk IN (SELECT ... WHERE _ROW_.pk = ? AND (rule)) RETURNING pk
 *
 * so nothing can change between the check and the write. Columns whose names start with '_'
 * may be written but are never read, filtered, ordered or expanded on; excluded columns do not
 * exist for the API at all. Request bodies are parsed by SQLite's JSON functions on the same
 * connection (json_each), never by hand. */
#include "records/records_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sha256.h"
#include "db/db.h"
#include "http/http.h"

typedef struct rctx {
    const rec_api *api;
    const http_request *req;
    http_response *res;
    sqlite3 *db;
    tr_arena *a;
    rec_user user;
    rec_value *binds; /* binds[i] is parameter ?i+1 */
    int nbinds, capbinds;
    tr_buf sql;
    char err[512]; /* a 400's message */
} rctx;

static void send_json(rctx *c, int status, tr_buf *body)
{
    http_response_send(c->res, status, "application/json", body->data, body->len);
}

static void fail(rctx *c, int status, const char *msg)
{
    http_response_send_error(c->res, status, msg);
}

/* Adds a parameter and appends its placeholder to the statement text; returns its number. */
static int bind_add(rctx *c, const rec_value *v)
{
    if (c->nbinds == c->capbinds) {
        int cap = c->capbinds ? c->capbinds * 2 : 16;
        rec_value *nb = tr_arena_alloc(c->a, (size_t)cap * sizeof *nb);
        if (c->nbinds) memcpy(nb, c->binds, (size_t)c->nbinds * sizeof *nb);
        c->binds = nb;
        c->capbinds = cap;
    }
    c->binds[c->nbinds++] = *v;
    return c->nbinds;
}

static void bind_place(rctx *c, const rec_value *v)
{
    tr_buf_printf(&c->sql, "?%d", bind_add(c, v));
}

static bool allowed(const rec_api *api, const rec_user *u, uint32_t perm)
{
    uint32_t acl = api->acl_world | (u->signed_in ? api->acl_authenticated : 0);
    return (acl & perm) != 0;
}

/* Prepares c->sql and binds every parameter it names. */
static int prepare(rctx *c, const char *sql, sqlite3_stmt **out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 0; i < n && i < c->nbinds; i++)
        rec__bind(st, i + 1, &c->binds[i]);
    *out = st;
    return SQLITE_OK;
}

/* Answers a failed statement: constraint failures are the client's (400, 409 for a duplicate
 * key), a lock held too long is 503, anything else is ours (500, logged). */
static void fail_sql(rctx *c, int rc)
{
    const char *msg = sqlite3_errmsg(c->db);
    int ext = sqlite3_extended_errcode(c->db);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        bool dup = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY;
        fail(c, dup ? 409 : 400, msg);
        return;
    }
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        fail(c, 503, "the database is busy; retry");
        return;
    }
    if ((rc & 0xff) == SQLITE_TOOBIG || (rc & 0xff) == SQLITE_RANGE) {
        fail(c, 400, msg);
        return;
    }
    tr_log_error("records %s: %s (%s)", c->api->name, msg, c->sql.data ? c->sql.data : "");
    fail(c, 500, "internal error");
}

/* ---- the query string ---- */

typedef struct qparam {
    char *key, *val; /* decoded, NUL-terminated (arena) */
    size_t klen, vlen;
} qparam;

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent- and '+'-decodes s into the arena. False for a bad escape or a NUL byte. */
static bool url_decode(tr_arena *a, const char *s, size_t n, char **out, size_t *out_len)
{
    char *d = tr_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n) return false;
            int h = hexv(s[i + 1]), l = hexv(s[i + 2]);
            if (h < 0 || l < 0) return false;
            ch = (char)(h << 4 | l);
            i += 2;
        }
        if (ch == '\0') return false;
        d[o++] = ch;
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return true;
}

#define MAX_QPARAMS 128

/* Splits the query into at most MAX_QPARAMS decoded pairs. */
static int parse_query(rctx *c, const char *q, size_t n, qparam **out, size_t *nout)
{
    qparam *ps = tr_arena_alloc(c->a, MAX_QPARAMS * sizeof *ps);
    size_t np = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            if (np == MAX_QPARAMS) {
                snprintf(c->err, sizeof c->err, "more than %d query parameters", MAX_QPARAMS);
                return -1;
            }
            size_t eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            qparam *p = &ps[np++];
            if (!url_decode(c->a, q + i, eq - i, &p->key, &p->klen) ||
                !url_decode(c->a, eq < j ? q + eq + 1 : "", eq < j ? j - eq - 1 : 0, &p->val,
                            &p->vlen)) {
                snprintf(c->err, sizeof c->err, "malformed query string");
                return -1;
            }
        }
        i = j + 1;
    }
    *out = ps;
    *nout = np;
    return 0;
}

static const qparam *qget(const qparam *ps, size_t n, const char *key)
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

static fnode *fnode_new(rctx *c, int kind)
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
static int filter_insert(rctx *c, fnode *g, char **segs, int nsegs, const qparam *p, int depth,
                         fstate *fs)
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
static int filter_segments(rctx *c, const qparam *p, char **segs, int *nsegs)
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

static int filter_emit(rctx *c, const fnode *f)
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
        bind_place(c, &v);
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

static void cursor_encode(const rec_api *api, sqlite3_stmt *st, int col, tr_buf *out)
{
    uint8_t msg[1 + 64 + CURSOR_MAC];
    size_t n = 0;
    if (sqlite3_column_type(st, col) == SQLITE_INTEGER) {
        uint64_t v = (uint64_t)sqlite3_column_int64(st, col);
        msg[n++] = 'i';
        for (int i = 7; i >= 0; i--)
            msg[n++] = (uint8_t)(v >> (i * 8));
    } else if (sqlite3_column_type(st, col) == SQLITE_BLOB && sqlite3_column_bytes(st, col) <= 64) {
        msg[n++] = 'b';
        memcpy(msg + n, sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col));
        n += (size_t)sqlite3_column_bytes(st, col);
    } else {
        return;
    }
    uint8_t mac[32];
    hmac(api->set, api->name, msg, n, mac);
    memcpy(msg + n, mac, CURSOR_MAC);
    rec__b64url_encode(msg, n + CURSOR_MAC, out);
}

/* Checks a cursor's signature (made by this API, in this process) and yields its id. */
static bool cursor_decode(rctx *c, const char *s, size_t len, rec_value *out)
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

static void user_bind(rctx *c)
{
    rec_value u = {.type = SQLITE_NULL};
    if (c->user.signed_in)
        u = (rec_value){.type = SQLITE_BLOB, .p = (const char *)c->user.id, .n = sizeof c->user.id};
    bind_add(c, &u); /* ?1 */
}

/* Parses expand=a,b into wanted[] (one flag per configured expansion). */
static int parse_expand(rctx *c, const qparam *ps, size_t np, bool *wanted)
{
    const qparam *e = qget(ps, np, "expand");
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
static void select_head(rctx *c, const bool *wanted)
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

static void where_rule(rctx *c, int op)
{
    const char *rule = c->api->rules[op];
    tr_buf_printf(&c->sql, " WHERE (%s)", rule ? rule : "1");
}

static void do_list(rctx *c, const qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    bool *wanted = tr_arena_alloc(c->a, api->nexpand + 1);
    memset(wanted, 0, api->nexpand + 1);
    if (parse_expand(c, ps, np, wanted) < 0) return fail(c, 400, c->err);

    /* the filter tree from every filter[...] parameter */
    fnode *root = fnode_new(c, F_AND);
    fstate fs = {0};
    for (size_t i = 0; i < np; i++) {
        if (strncmp(ps[i].key, "filter", 6) != 0) continue;
        char *segs[2 * REC_MAX_FILTER_DEPTH + 2];
        int nsegs;
        if (filter_segments(c, &ps[i], segs, &nsegs) < 0 ||
            filter_insert(c, root, segs, nsegs, &ps[i], 0, &fs) < 0)
            return fail(c, 400, c->err);
    }
    uint64_t limit = REC_DEFAULT_LIMIT, offset = 0;
    const qparam *p;
    if ((p = qget(ps, np, "limit")) && !parse_uint(p->val, UINT32_MAX, &limit))
        return fail(c, 400, "limit: expected a non-negative integer");
    if (limit > api->hard_limit) limit = api->hard_limit;
    if ((p = qget(ps, np, "offset")) && !parse_uint(p->val, INT32_MAX, &offset))
        return fail(c, 400, "offset: expected a non-negative integer");
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
                return fail(c, 400, c->err);
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

    user_bind(c);
    /* the WHERE: rule, filters; kept as text to reuse for the count */
    tr_buf sql_keep = c->sql;
    c->sql = (tr_buf)TR_BUF_INIT;
    where_rule(c, REC_OP_READ);
    tr_buf_append_str(&c->sql, " AND ");
    if (filter_emit(c, root) < 0) {
        tr_buf_free(&order);
        tr_buf_free(&sql_keep);
        return fail(c, 400, c->err);
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
            return fail(c, 400, bad);
        }
        tr_buf_printf(&curs, " AND _ROW_.%s %s ?%d", api->cols[api->pk].quoted,
                      pk_first_asc ? ">" : "<", bind_add(c, &cur));
    }

    tr_buf body = TR_BUF_INIT;
    tr_buf_append_str(&body, "{");
    sqlite3_stmt *st = NULL;
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
        rc = prepare(c, c->sql.data, &st);
        c->nbinds = keep;
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) goto sqlfail;
        tr_buf_printf(&body, "\"total_count\":%lld,", (long long)sqlite3_column_int64(st, 0));
        sqlite3_finalize(st);
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
    bind_place(c, &lim);
    tr_buf_append_str(&c->sql, " OFFSET ");
    bind_place(c, &off);
    rc = prepare(c, c->sql.data, &st);
    if (rc != SQLITE_OK) goto sqlfail;
    tr_buf_append_str(&body, "\"records\":[");
    size_t nrows = 0;
    tr_buf cursor = TR_BUF_INIT;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
    sqlite3_finalize(st);
    send_json(c, 200, &body);
    tr_buf_free(&body);
    tr_buf_free(&order);
    tr_buf_free(&where);
    tr_buf_free(&curs);
    return;
sqlfail:
    fail_sql(c, rc);
    sqlite3_finalize(st);
    tr_buf_free(&body);
    tr_buf_free(&order);
    tr_buf_free(&where);
    tr_buf_free(&curs);
}

/* The record id of the path, converted by the id column's type. */
static bool path_id(rctx *c, rec_value *out)
{
    const http_slice *raw = http_request_param(c->req, "id");
    char *s;
    size_t n;
    if (raw == NULL || c->api->pk < 0 || !url_decode(c->a, raw->ptr, raw->len, &s, &n))
        return false;
    const rec_column *pk = &c->api->cols[c->api->pk];
    if (!rec__value_from_text(pk, s, n, c->a, out)) return false;
    if (pk->type == REC_T_INTEGER && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0))
        return false;
    return true;
}

static void do_read(rctx *c, const qparam *ps, size_t np)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!path_id(c, &id)) return fail(c, 400, "invalid record id");
    bool *wanted = tr_arena_alloc(c->a, api->nexpand + 1);
    memset(wanted, 0, api->nexpand + 1);
    if (parse_expand(c, ps, np, wanted) < 0) return fail(c, 400, c->err);
    user_bind(c);
    select_head(c, wanted);
    where_rule(c, REC_OP_READ);
    tr_buf_printf(&c->sql, " AND _ROW_.%s = ", api->cols[api->pk].quoted);
    bind_place(c, &id);
    tr_buf_append_str(&c->sql, " LIMIT 1");
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return fail(c, 404, "record not found");
    }
    if (rc != SQLITE_ROW) {
        fail_sql(c, rc);
        sqlite3_finalize(st);
        return;
    }
    tr_buf body = TR_BUF_INIT;
    rec__json_row(&body, api, st, 0, wanted);
    sqlite3_finalize(st);
    send_json(c, 200, &body);
    tr_buf_free(&body);
}

static void do_schema(rctx *c)
{
    const rec_api *api = c->api;
    if (api->rules[REC_OP_SCHEMA]) {
        user_bind(c);
        tr_buf_printf(&c->sql, "SELECT 1 FROM (SELECT ?1 AS id) AS _USER_");
        where_rule(c, REC_OP_SCHEMA);
        sqlite3_stmt *st = NULL;
        int rc = prepare(c, c->sql.data, &st);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) return fail(c, 403, "forbidden");
        if (rc != SQLITE_ROW) return fail_sql(c, rc);
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
    send_json(c, 200, &b);
    tr_buf_free(&b);
}

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
static bool field_value(rctx *c, const rec_column *col, const char *type, sqlite3_stmt *st,
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
static int parse_record(rctx *c, const char *obj, size_t len, rec_fields *f)
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
        fail_sql(c, rc);
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
    if (out < 0) fail(c, 400, c->err);
    return out;
}

/* The _REQ_ subquery over f (absent fields are NULL) and, before it, ?N of _REQ_FIELDS_. */
static void req_from(rctx *c, const rec_fields *f)
{
    const rec_api *api = c->api;
    tr_buf_append_str(&c->sql, "(SELECT ");
    for (size_t i = 0; i < api->ncols; i++) {
        if (i) tr_buf_append_str(&c->sql, ", ");
        if (f->present[i])
            bind_place(c, &f->vals[i]);
        else
            tr_buf_append_str(&c->sql, "NULL");
        tr_buf_printf(&c->sql, " AS %s", api->cols[i].quoted);
    }
    tr_buf_append_str(&c->sql, ") AS _REQ_");
}

/* WITH _REQ_FIELDS_(_) AS (...) naming the fields sent, for rules that ask what was sent. */
static void req_fields_cte(rctx *c, const rec_fields *f)
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
    bind_place(c, &v);
    tr_buf_append_str(&c->sql, ")) ");
}

static void id_json(sqlite3_stmt *st, tr_buf *out)
{
    if (sqlite3_column_type(st, 0) == SQLITE_BLOB) {
        tr_buf_append_char(out, '"');
        rec__b64url_encode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), out);
        tr_buf_append_char(out, '"');
    } else {
        tr_buf_printf(out, "\"%lld\"", (long long)sqlite3_column_int64(st, 0));
    }
}

/* Inserts one record; appends its id to ids. Returns 0, or -1 after answering. */
static int insert_one(rctx *c, rec_fields *f, tr_buf *ids, tr_buf *idtext)
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
    user_bind(c);
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
    where_rule(c, REC_OP_CREATE);
    tr_buf_printf(&c->sql, " RETURNING %s", api->cols[api->pk].quoted);
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (ids->len > 1) tr_buf_append_char(ids, ',');
        size_t at = ids->len;
        id_json(st, ids);
        if (idtext) tr_buf_append(idtext, ids->data + at + 1, ids->len - at - 2); /* unquoted */
        rc = sqlite3_step(st);
    } else if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        fail(c, 403,
             api->rules[REC_OP_CREATE] ? "forbidden by create_access_rule"
                                       : "the record was not created (conflict)");
        return -1;
    }
    if (rc != SQLITE_DONE) {
        fail_sql(c, rc);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
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
static int parse_form(rctx *c, rec_fields *f)
{
    const rec_api *api = c->api;
    qparam *ps;
    size_t np;
    if (parse_query(c, c->req->body.ptr ? c->req->body.ptr : "", c->req->body.len, &ps, &np) < 0) {
        fail(c, 400, c->err);
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
        fail(c, 400, c->err);
        return -1;
    }
    return 0;
}

/* ---- the guests' record hooks around a write ---- */

static const char *const hook_names[] = {"beforeCreate", "afterCreate",  "beforeUpdate",
                                         "afterUpdate",  "beforeDelete", "afterDelete"};

/* The context a hook gets (records.ts RecordHookContext) as JSON. */
static void hook_ctx(rctx *c, int event, const rec_fields *f, const char *id, size_t idlen,
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
static int run_before(rctx *c, int event, rec_fields *f, const char *id, size_t idlen)
{
    rec_hook_ref hooks[REC_MAX_HOOKS];
    size_t n = rec__hooks_find(c->api, event, hooks, REC_MAX_HOOKS);
    for (size_t k = 0; k < n; k++) {
        tr_buf ctx = TR_BUF_INIT, ans = TR_BUF_INIT;
        hook_ctx(c, event, f, id, idlen, &ctx);
        tr_error err = {0};
        int rc = rec__hook_run(&hooks[k], ctx.data, ctx.len, &ans, &err);
        tr_buf_free(&ctx);
        if (rc == 0 && sqlite3_get_autocommit(c->db)) {
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
            fail(c, rc == TR_EINTERRUPTED ? 503 : 500, c->err);
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
            fail(c, 500, "a record hook answered something that is not JSON");
            out = -1;
        } else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            int status = sqlite3_column_int(st, 0);
            if (status < 400 || status > 599) status = 400;
            const char *msg = (const char *)sqlite3_column_text(st, 1);
            snprintf(c->err, sizeof c->err, "%s", msg ? msg : "rejected by a record hook");
            fail(c, status, c->err);
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

/* The after hooks of a request: their contexts, collected before the commit, run after it. */
typedef struct after_hooks {
    rec_hook_ref hooks[REC_MAX_HOOKS];
    size_t n;
    int event;
    tr_buf ctxs; /* NUL-separated JSON contexts */
} after_hooks;

static void after_init(rctx *c, after_hooks *ah, int event)
{
    ah->event = event;
    ah->n = rec__hooks_find(c->api, event, ah->hooks, REC_MAX_HOOKS);
    ah->ctxs = (tr_buf)TR_BUF_INIT;
}

static void after_add(rctx *c, after_hooks *ah, const rec_fields *f, const char *id, size_t idlen)
{
    if (ah->n == 0) return;
    hook_ctx(c, ah->event, f, id, idlen, &ah->ctxs);
    tr_buf_append_char(&ah->ctxs, '\0');
}

/* Runs them once the write has committed: a failure is logged, the write stands. */
static void after_run(rctx *c, after_hooks *ah)
{
    for (size_t at = 0; ah->n && at < ah->ctxs.len;) {
        const char *ctx = ah->ctxs.data + at;
        size_t len = strlen(ctx);
        for (size_t k = 0; k < ah->n; k++) {
            tr_buf ans = TR_BUF_INIT;
            tr_error err = {0};
            if (rec__hook_run(&ah->hooks[k], ctx, len, &ans, &err) < 0)
                tr_log_error("records %s: %s hook of %s failed (the write stands): %s",
                             c->api->name, hook_names[ah->event], ah->hooks[k].module, err.msg);
            tr_buf_free(&ans);
        }
        at += len + 1;
    }
    tr_buf_free(&ah->ctxs);
}

/* A create's id as the context of an after hook has it: fields plus the new id. */
static int create_one(rctx *c, rec_fields *f, tr_buf *ids, after_hooks *ah, bool before)
{
    if (before && run_before(c, REC_HOOK_BEFORE_CREATE, f, NULL, 0) < 0) return -1;
    tr_buf id = TR_BUF_INIT;
    int rc = insert_one(c, f, ids, &id);
    if (rc == 0) after_add(c, ah, f, id.data ? id.data : "", id.len);
    tr_buf_free(&id);
    return rc;
}

static void do_create(rctx *c)
{
    int kind = body_kind(c->req);
    if (kind == BODY_OTHER)
        return fail(c, 415, "expected a JSON or form (application/x-www-form-urlencoded) body");
    if (!sqlite3_get_autocommit(c->db))
        return fail(c, 503, "the worker's database connection is in a transaction; retry");
    const http_slice *body = &c->req->body;
    bool is_array = false;
    if (kind == BODY_JSON) {
        /* one object, or an array of them */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->db,
                                    "SELECT json_type(?1), CASE json_type(?1) WHEN 'array' THEN "
                                    "json_array_length(?1) END",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK) return fail_sql(c, rc);
        sqlite3_bind_text64(st, 1, body->ptr ? body->ptr : "", body->len, SQLITE_STATIC,
                            SQLITE_UTF8);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return fail(c, 400, "the body is not valid JSON");
        }
        const char *type = (const char *)sqlite3_column_text(st, 0);
        is_array = type && strcmp(type, "array") == 0;
        bool is_object = type && strcmp(type, "object") == 0;
        int64_t n = is_array ? sqlite3_column_int64(st, 1) : 1;
        sqlite3_finalize(st);
        if (!is_array && !is_object)
            return fail(c, 400, "expected a JSON object or an array of them");
        if (n < 1) return fail(c, 400, "no values provided");
        if (n > REC_MAX_BULK) return fail(c, 413, "more than 1024 records in one request");
    }
    rec_hook_ref probe[1];
    bool before = rec__hooks_find(c->api, REC_HOOK_BEFORE_CREATE, probe, 1) > 0;
    after_hooks ah;
    after_init(c, &ah, REC_HOOK_AFTER_CREATE);
    /* several records are all or nothing; before hooks run inside the write's transaction */
    bool tx = is_array || before;
    if (tx && sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(c, 503, "the database is busy; retry");
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
                    fail(c, 400, c->err);
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
    if (rc == SQLITE_OK && tx && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sqlite3_errcode(c->db);
        fail_sql(c, rc);
    }
    if (rc != SQLITE_OK) {
        if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        if (!http_response_done(c->res)) fail_sql(c, rc);
        tr_buf_free(&ids);
        tr_buf_free(&ah.ctxs);
        return;
    }
    tr_buf_append_char(&ids, ']');
    tr_buf b = TR_BUF_INIT;
    tr_buf_printf(&b, "{\"ids\":%s}", ids.data);
    send_json(c, 200, &b);
    tr_buf_free(&b);
    tr_buf_free(&ids);
    after_run(c, &ah);
}

/* After an update or delete changed nothing: was the record missing, or did the rule refuse? */
static void fail_unchanged(rctx *c, const rec_value *id, int op)
{
    if (c->api->rules[op] == NULL) return fail(c, 404, "record not found");
    tr_buf_reset(&c->sql);
    c->nbinds = 0;
    tr_buf_printf(&c->sql, "SELECT 1 FROM %s WHERE %s = ?1", c->api->quoted,
                  c->api->cols[c->api->pk].quoted);
    bind_add(c, id);
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, c->sql.data, &st);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        fail(c, 403,
             op == REC_OP_UPDATE ? "forbidden by update_access_rule"
                                 : "forbidden by delete_access_rule");
    else
        fail(c, 404, "record not found");
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

/* Ends a write's transaction when there is one; 0, or the failed COMMIT's code. */
static int tx_end(rctx *c, bool tx, bool commit)
{
    if (!tx || sqlite3_get_autocommit(c->db)) return SQLITE_OK;
    if (commit && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return SQLITE_OK;
    int rc = commit ? sqlite3_errcode(c->db) : SQLITE_OK;
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void do_update(rctx *c)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!path_id(c, &id)) return fail(c, 400, "invalid record id");
    int kind = body_kind(c->req);
    if (kind == BODY_OTHER)
        return fail(c, 415, "expected a JSON or form (application/x-www-form-urlencoded) body");
    if (!sqlite3_get_autocommit(c->db))
        return fail(c, 503, "the worker's database connection is in a transaction; retry");
    rec_fields f;
    if (kind == BODY_FORM && parse_form(c, &f) < 0) return;
    if (kind == BODY_JSON &&
        parse_record(c, c->req->body.ptr ? c->req->body.ptr : "", c->req->body.len, &f) < 0)
        return;
    if (f.present[api->pk]) {
        if (!same_value(&f.vals[api->pk], &id))
            return fail(c, 400, "the record id cannot be changed");
        f.present[api->pk] = false;
        f.npresent--;
    }
    if (f.npresent == 0) return fail(c, 400, "no values provided");
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
        if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return fail(c, 503, "the database is busy; retry");
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
            return fail(c, 400, bad);
        }
    }
    const char *pk = api->cols[api->pk].quoted;
    user_bind(c);
    req_fields_cte(c, &f);
    tr_buf_printf(&c->sql, "UPDATE %s SET ", api->quoted);
    bool any = false;
    for (size_t i = 0; i < api->ncols; i++) {
        if (!f.present[i]) continue;
        tr_buf_printf(&c->sql, "%s%s = ", any ? ", " : "", api->cols[i].quoted);
        bind_place(c, &f.vals[i]);
        any = true;
    }
    tr_buf_printf(&c->sql,
                  " WHERE %s IN (SELECT _ROW_.%s FROM (SELECT ?1 AS id) AS _USER_, %s AS "
                  "_ROW_, ",
                  pk, pk, api->quoted);
    req_from(c, &f);
    where_rule(c, REC_OP_UPDATE);
    tr_buf_printf(&c->sql, " AND _ROW_.%s = ", pk);
    bind_place(c, &id);
    tr_buf_printf(&c->sql, ") RETURNING %s", pk);
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, c->sql.data, &st);
    bool changed = false;
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            changed = true;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fail_sql(c, rc);
        tx_end(c, before, false);
        return;
    }
    if (!changed) {
        tx_end(c, before, false);
        return fail_unchanged(c, &id, REC_OP_UPDATE);
    }
    if ((rc = tx_end(c, before, true)) != SQLITE_OK) return fail_sql(c, rc);
    after_hooks ah;
    after_init(c, &ah, REC_HOOK_AFTER_UPDATE);
    after_add(c, &ah, &f, idstr, idlen);
    http_response_send(c->res, 200, NULL, NULL, 0);
    after_run(c, &ah);
}

static void do_delete(rctx *c)
{
    const rec_api *api = c->api;
    rec_value id;
    if (!path_id(c, &id)) return fail(c, 400, "invalid record id");
    if (!sqlite3_get_autocommit(c->db))
        return fail(c, 503, "the worker's database connection is in a transaction; retry");
    rec_hook_ref probe[1];
    bool before = rec__hooks_find(api, REC_HOOK_BEFORE_DELETE, probe, 1) > 0;
    tr_buf idt = TR_BUF_INIT;
    id_text(&id, &idt);
    char *idstr = tr_arena_strndup(c->a, idt.data ? idt.data : "", idt.len);
    size_t idlen = idt.len;
    tr_buf_free(&idt);
    if (before) {
        if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return fail(c, 503, "the database is busy; retry");
        if (run_before(c, REC_HOOK_BEFORE_DELETE, NULL, idstr, idlen) < 0) {
            tx_end(c, true, false);
            return;
        }
    }
    const char *pk = api->cols[api->pk].quoted;
    user_bind(c);
    tr_buf_printf(&c->sql,
                  "DELETE FROM %s WHERE %s IN (SELECT _ROW_.%s FROM (SELECT ?1 AS id) AS _USER_, "
                  "%s AS _ROW_",
                  api->quoted, pk, pk, api->quoted);
    where_rule(c, REC_OP_DELETE);
    tr_buf_printf(&c->sql, " AND _ROW_.%s = ", pk);
    bind_place(c, &id);
    tr_buf_printf(&c->sql, ") RETURNING %s", pk);
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, c->sql.data, &st);
    bool changed = false;
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            changed = true;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fail_sql(c, rc);
        tx_end(c, before, false);
        return;
    }
    if (!changed) {
        tx_end(c, before, false);
        return fail_unchanged(c, &id, REC_OP_DELETE);
    }
    if ((rc = tx_end(c, before, true)) != SQLITE_OK) return fail_sql(c, rc);
    after_hooks ah;
    after_init(c, &ah, REC_HOOK_AFTER_DELETE);
    after_add(c, &ah, NULL, idstr, idlen);
    http_response_send(c->res, 200, NULL, NULL, 0);
    after_run(c, &ah);
}

/* ---- dispatch ---- */

enum { H_LIST, H_CREATE, H_READ, H_UPDATE, H_DELETE, H_SCHEMA, H_SUBSCRIBE };

static const uint32_t needs[] = {
    [H_LIST] = CFG_PERM_READ,      [H_CREATE] = CFG_PERM_CREATE, [H_READ] = CFG_PERM_READ,
    [H_UPDATE] = CFG_PERM_UPDATE,  [H_DELETE] = CFG_PERM_DELETE, [H_SCHEMA] = CFG_PERM_SCHEMA,
    [H_SUBSCRIBE] = CFG_PERM_READ,
};

static void handle(const http_request *req, http_response *res, const rec_api *api, int what)
{
    rctx c = {.api = api, .req = req, .res = res, .a = req->arena};
    if (api->set->who != NULL) {
        const char *why = NULL;
        int st = api->set->who(req, &c.user, &why);
        if (st != 0) return http_response_send_error(res, st, why ? why : "unauthorized");
    }
    if (!allowed(api, &c.user, needs[what])) return http_response_send_error(res, 403, "forbidden");
    if (what == H_SUBSCRIBE) return rec__subscribe(api, req, res, &c.user);
    const guest_env *env = rec__worker_env();
    db_conn *db = env ? env->db : NULL;
    if (db == NULL) return http_response_send_error(res, 503, "no database");
    c.db = db_handle(db);
    qparam *ps = NULL;
    size_t np = 0;
    if ((what == H_LIST || what == H_READ) &&
        parse_query(&c, req->query.ptr, req->query.len, &ps, &np) < 0)
        return http_response_send_error(res, 400, c.err);
    switch (what) {
    case H_LIST:
        do_list(&c, ps, np);
        break;
    case H_READ:
        do_read(&c, ps, np);
        break;
    case H_CREATE:
        do_create(&c);
        break;
    case H_UPDATE:
        do_update(&c);
        break;
    case H_DELETE:
        do_delete(&c);
        break;
    case H_SCHEMA:
        do_schema(&c);
        break;
    }
    tr_buf_free(&c.sql);
}

#define HANDLER(fn, what)                                                 \
    static void fn(const http_request *req, http_response *res, void *ud) \
    {                                                                     \
        handle(req, res, ud, what);                                       \
    }
HANDLER(on_list, H_LIST)
HANDLER(on_create, H_CREATE)
HANDLER(on_read, H_READ)
HANDLER(on_update, H_UPDATE)
HANDLER(on_delete, H_DELETE)
HANDLER(on_schema, H_SCHEMA)
HANDLER(on_subscribe, H_SUBSCRIBE)

int rec_register_routes(const rec_set *s, http_router *r, tr_error *err)
{
    for (size_t i = 0; s && i < s->napis; i++) {
        rec_api *api = &s->apis[i];
        struct {
            const char *method, *suffix;
            http_handler_fn fn;
        } routes[] = {
            {"GET", "", on_list},
            {"POST", "", on_create},
            {"GET", "/schema", on_schema},
            {"GET", "/:id", on_read},
            {"PATCH", "/:id", on_update},
            {"DELETE", "/:id", on_delete},
            {"GET", "/subscribe/:id", on_subscribe},
        };
        for (size_t k = 0; k < TR_ARRAY_LEN(routes); k++) {
            char *pat = tr_asprintf(REC_PATH_PREFIX "%s%s", api->name, routes[k].suffix);
            int rc = http_router_add(r, routes[k].method, pat, routes[k].fn, api, err);
            tr_free(pat);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

int rec_routes_cb(http_router *r, void *ud, tr_error *err)
{
    return rec_register_routes(ud, r, err);
}
