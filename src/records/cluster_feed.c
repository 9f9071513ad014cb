/* records/cluster_feed.c: realtime subscriptions in cluster mode: every committed change of a
 * subscribable API's table, whichever node, guest or job made it, reaches the subscribers of
 * every node (see records.h, rec_feed_start).
 *
 * DESIGN: in cluster mode every write runs on the dqlite leader, where no worker's pre-update
 * hook sees it. So the writes log themselves: trail installs, in the cluster's database, AFTER
 * INSERT/UPDATE/DELETE triggers on each subscribable table that insert the changed row (the new
 * one, or the old one of a delete) as JSON into REC_FEED_LOG. A trigger runs inside the writing
 * transaction on the leader, so its log row is committed and replicated with the write, and
 * rolled back with it: nothing is missed and nothing doubled, and the log's AUTOINCREMENT seq is
 * the commit order (dqlite has one writer). Each node runs one feed thread that owns a client to
 * the leader and every REC_FEED_POLL_MS reads the rows after the last seq it saw, bounded in rows
 * and bytes per read, decodes each row and hands the events to the workers' hub, where the
 * subscription's read rule and filters apply exactly as for a local event.
 *
 * The row's JSON is an object keyed by column name (so triggers made by a node with another column
 * order still decode); a value is the column's JSON number, string or null, except BLOBs
 * (["b", HEX]) and REALs (["f", "%!.17g"]: JSON's own rendering keeps 15 digits only). A row
 * whose values exceed REC_FEED_MAX_ROW_BYTES is logged without its values (NULL): its API's
 * subscribers get an error event saying that events were lost, rather than a log entry that
 * costs the cluster several times the write.
 *
 * Old rows are pruned by any node's thread, every REC_FEED_PRUNE_MS, once older than
 * REC_FEED_KEEP_MS: the highest pruned seq is first written to REC_FEED_PRUNED, so a thread that
 * finds it above its own position knows it missed rows (it was cut off longer than the log keeps)
 * and ends its subscriptions with a loss event instead of skipping silently. A thread starts from
 * the log's end (no replay); after a lost connection (a leader change) it goes on from its
 * position. Guests cannot reach the log: its name begins with `_`, and it exists only in the
 * cluster's database, not in the schema mirror their statements are checked against. */
#include "records/records_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sha256.h"
#include "cluster/cluster.h"
#include "db/db.h"
#include "guest/guest.h"

#define REC_FEED_LOG           "_realtime_changes"
#define REC_FEED_PRUNED        "_realtime_pruned"
#define REC_FEED_POLL_MS       100
#define REC_FEED_BATCH_ROWS    256          /* log rows read at once */
#define REC_FEED_BATCH_BYTES   (4u << 20)   /* their JSON, at once (the first row always) */
#define REC_FEED_MAX_ROW_BYTES (256u << 10) /* a row's values, summed; over: logged without */
#define REC_FEED_MAX_JSON      (2u << 20)   /* a log row's JSON the thread accepts (hostile log) */
#define REC_FEED_KEEP_MS       60000
#define REC_FEED_PRUNE_MS      10000
#define REC_FEED_MAX_COLUMNS   400 /* a trigger's json_object() takes two arguments per column */
#define REC_FEED_SETUP_WAIT_MS 60000
#define REC_FEED_CALL_MS       2000 /* each call of the thread; a stop waits for a search this long */
#define REC_FEED_MAX_ADDRS     16

static const char feed_ddl[] =
    "CREATE TABLE IF NOT EXISTS " REC_FEED_LOG " (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "tbl TEXT NOT NULL, op INTEGER NOT NULL, at_ms INTEGER NOT NULL, row TEXT);\n"
    "CREATE TABLE IF NOT EXISTS " REC_FEED_PRUNED " (id INTEGER PRIMARY KEY, upto INTEGER NOT "
    "NULL);\n";

/* The rows after ?1: at most ?2 of them, and of their JSON (each counted up to ?3, over which it
 * comes as NULL) no more than ?4 bytes before the last one; each with the highest pruned seq, and
 * when there is none, one row of NULLs with it. */
static const char poll_sql[] =
    "SELECT c.seq, c.tbl, c.op, c.row, p.upto FROM (SELECT (SELECT upto FROM " REC_FEED_PRUNED
    " WHERE id = 1) AS upto) AS p LEFT JOIN (SELECT seq, tbl, op, CASE WHEN len <= ?3 THEN row "
    "END AS row FROM (SELECT seq, tbl, op, row, len, sum(min(len, ?3)) OVER (ORDER BY seq) AS acc "
    "FROM (SELECT seq, tbl, op, row, coalesce(octet_length(row), 0) AS len FROM " REC_FEED_LOG
    " WHERE seq > ?1 ORDER BY seq LIMIT ?2)) WHERE acc - min(len, ?3) < ?4) AS c ON 1 "
    "ORDER BY c.seq";

/* Where a thread starts: after every logged or pruned row. */
static const char end_sql[] = "SELECT max(coalesce((SELECT max(seq) FROM " REC_FEED_LOG "), 0), "
                              "coalesce((SELECT upto FROM " REC_FEED_PRUNED " WHERE id = 1), 0))";

struct rec_feed {
    const rec_set *set;
    struct rec_hub *hub;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;          /* mu */
    dq_client *calling; /* mu: the client of a call under way, aborted by a stop */
    char *addrs[REC_FEED_MAX_ADDRS];
    size_t naddrs;
    /* the thread's own */
    dq_client *c; /* NULL: not connected */
    uint32_t db;
    int64_t last;  /* the last seq handed on (or skipped) */
    sqlite3 *json; /* a private in-memory connection that parses rows */
    sqlite3_stmt *each;
    uint64_t next_prune_ns;
    long keep_ms, prune_ms; /* REC_FEED_KEEP_MS, REC_FEED_PRUNE_MS */
    bool failing;           /* the last poll failed (said once) */
};

/* ---- the triggers (the main thread, at start) ---- */

/* SQL text literal of s into b. */
static void sql_literal(tr_buf *b, const char *s)
{
    tr_buf_append_char(b, '\'');
    for (; *s; s++) {
        if (*s == '\'') tr_buf_append_char(b, '\'');
        tr_buf_append_char(b, *s);
    }
    tr_buf_append_char(b, '\'');
}

/* The columns of table that some subscribable API of s serves, each once, in the order found. */
static size_t table_columns(const rec_set *s, const char *table, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t a = 0; a < s->napis; a++) {
        const rec_api *api = &s->apis[a];
        if (!api->subscriptions || api->is_view || strcmp(api->table, table) != 0) continue;
        for (size_t i = 0; i < api->ncols; i++) {
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++)
                seen = strcmp(out[k], api->cols[i].name) == 0;
            if (!seen && n < cap) out[n++] = api->cols[i].name;
        }
    }
    return n;
}

/* The body of the trigger for op (REC_EV_*) on table: "AFTER ... ON ... BEGIN ... END". */
static void trigger_body(const char *table, int op, const char *const *cols, size_t ncols,
                         tr_buf *b)
{
    static const char *const when[] = {"INSERT", "UPDATE", "DELETE"};
    const char *ref = op == REC_EV_DELETE ? "OLD" : "NEW";
    char *qt = rec__quote(table);
    tr_buf_printf(b,
                  "AFTER %s ON %s BEGIN INSERT INTO " REC_FEED_LOG " (tbl, op, at_ms, row) "
                  "VALUES (",
                  when[op], qt);
    sql_literal(b, table);
    tr_buf_printf(b, ", %d, CAST(unixepoch('subsec') * 1000 AS INTEGER), CASE WHEN 0", op);
    for (size_t i = 0; i < ncols; i++) {
        char *q = rec__quote(cols[i]);
        tr_buf_printf(b, " + coalesce(octet_length(%s.%s), 0)", ref, q);
        tr_free(q);
    }
    tr_buf_printf(b, " <= %u THEN json_object(", REC_FEED_MAX_ROW_BYTES);
    for (size_t i = 0; i < ncols; i++) {
        char *q = rec__quote(cols[i]);
        if (i) tr_buf_append_str(b, ", ");
        sql_literal(b, cols[i]);
        tr_buf_printf(b,
                      ", CASE typeof(%s.%s) WHEN 'blob' THEN json_array('b', hex(%s.%s)) "
                      "WHEN 'real' THEN json_array('f', printf('%%!.17g', %s.%s)) ELSE %s.%s END",
                      ref, q, ref, q, ref, q, ref, q);
        tr_free(q);
    }
    tr_buf_append_str(b, ") END); END");
    tr_free(qt);
}

typedef struct setup {
    dq_client *c;
    uint32_t db;
    uint64_t deadline_ns;
} setup;

static bool setup_busy(const setup *st, int rc)
{
    uint64_t code = dq_client_failure_code(st->c) & 0xff;
    return rc == TR_ESQL && (code == 5 /* SQLITE_BUSY */ || code == 6 /* SQLITE_LOCKED */);
}

static int setup_exec(setup *st, const char *sql, const dq_value *p, size_t n, tr_error *err)
{
    dq_result res;
    return dq_exec_sql(st->c, st->db, sql, p, n, &res, err);
}

/* The three triggers table needs for s: their names (a hash of their text, so that a trigger
 * whose text is still wanted is kept as it is) and their bodies (free them). Errors: TR_ECONFIG
 * for a table with too many columns. */
static int table_triggers(const rec_set *s, const char *table, char names[3][40], tr_buf bodies[3],
                          tr_error *err)
{
    const char *cols[REC_FEED_MAX_COLUMNS + 1];
    size_t ncols = table_columns(s, table, cols, REC_FEED_MAX_COLUMNS + 1);
    if (ncols > REC_FEED_MAX_COLUMNS)
        return tr_error_set(err, TR_ECONFIG,
                            "table %s: realtime subscriptions in cluster mode log at most %d "
                            "columns of a table (exclude some from its Record APIs)",
                            table, REC_FEED_MAX_COLUMNS);
    for (int op = 0; op < 3; op++) {
        bodies[op] = (tr_buf)TR_BUF_INIT;
        trigger_body(table, op, cols, ncols, &bodies[op]);
        char hex[65];
        tr_sha256_hex(bodies[op].data, bodies[op].len, hex);
        snprintf(names[op], 40, "_trail_rt_%.24s", hex);
    }
    return 0;
}

#define TRIGGERS_OF_SQL                                                       \
    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? " \
    "AND " REC_FEED_TRIGGER_NAMES

/* One attempt at making table's triggers those of s: 1 when another connection's lock stopped
 * it (nothing done), 0 when done, negative on an error. */
static int triggers_attempt(setup *st, const rec_set *s, const char *table, tr_error *err)
{
    char names[3][40];
    tr_buf bodies[3];
    int rc = table_triggers(s, table, names, bodies, err);
    if (rc < 0) return rc;
    rc = setup_exec(st, "BEGIN IMMEDIATE", NULL, 0, err);
    dq_rows rows = DQ_ROWS_INIT;
    if (rc == 0) {
        dq_value p = {.type = DQ_TEXT, .p = table, .n = strlen(table)};
        rc = dq_query_sql(st->c, st->db, TRIGGERS_OF_SQL, &p, 1, &rows, err);
    }
    for (size_t i = 0; rc == 0 && rows.ncols == 1 && i < rows.nrows; i++) {
        const dq_value *v = &rows.vals[i];
        if (v->type != DQ_TEXT) continue;
        bool wanted = false;
        for (int op = 0; op < 3; op++)
            wanted = wanted || strcmp(v->p, names[op]) == 0;
        if (wanted) continue;
        char *q = rec__quote(v->p);
        char *sql = tr_asprintf("DROP TRIGGER IF EXISTS %s", q);
        rc = setup_exec(st, sql, NULL, 0, err);
        tr_free(sql);
        tr_free(q);
    }
    dq_rows_free(&rows);
    for (int op = 0; rc == 0 && op < 3; op++) {
        char *sql = tr_asprintf("CREATE TRIGGER IF NOT EXISTS %s %s", names[op], bodies[op].data);
        rc = setup_exec(st, sql, NULL, 0, err);
        tr_free(sql);
    }
    if (rc == 0) rc = setup_exec(st, "COMMIT", NULL, 0, err);
    for (int op = 0; op < 3; op++)
        tr_buf_free(&bodies[op]);
    if (rc < 0) {
        bool again = setup_busy(st, rc);
        tr_error ignored = {0};
        setup_exec(st, "ROLLBACK", NULL, 0, &ignored); /* fails harmlessly when nothing is open */
        if (again) return 1;
        if (rc == TR_ESQL)
            return tr_error_set(err, TR_ESQL, "realtime triggers of table %s: %s", table,
                                err ? err->msg : "");
        return rc;
    }
    return 0;
}

/* The same log and triggers, by name, in the node's schema mirror. Guests' statements are checked
 * there: a `DROP ... IF EXISTS` of an object the mirror lacks compiles to nothing, so the
 * authorizer would never see it, and the leader, where the object exists, would drop it. With the
 * same names in the mirror such a statement is refused like any other schema change. The
 * mirror's triggers do nothing (SELECT 1): a guest's write is compiled there with the triggers of
 * its table, and the authorizer would refuse the real ones' insert into a `_` table. */
static int mirror_install(const rec_set *s, db_conn *mirror, tr_error *err)
{
    sqlite3 *db = db_handle(mirror);
    int rc = db_exec(mirror, "BEGIN IMMEDIATE", err);
    if (rc == 0) rc = db_exec(mirror, feed_ddl, err);
    for (size_t a = 0; rc == 0 && a < s->napis; a++) {
        const rec_api *api = &s->apis[a];
        if (!api->subscriptions || api->is_view) continue;
        char names[3][40];
        tr_buf bodies[3];
        rc = table_triggers(s, api->table, names, bodies, err);
        if (rc < 0) break;
        sqlite3_stmt *st = NULL;
        tr_buf drops = TR_BUF_INIT;
        if (sqlite3_prepare_v2(db, TRIGGERS_OF_SQL, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, api->table, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *name = (const char *)sqlite3_column_text(st, 0);
                bool wanted = false;
                for (int op = 0; op < 3 && name; op++)
                    wanted = wanted || strcmp(name, names[op]) == 0;
                if (name == NULL || wanted) continue;
                char *q = rec__quote(name);
                tr_buf_printf(&drops, "DROP TRIGGER IF EXISTS %s;\n", q);
                tr_free(q);
            }
        }
        sqlite3_finalize(st);
        if (drops.len) rc = db_exec(mirror, drops.data, err);
        tr_buf_free(&drops);
        for (int op = 0; op < 3; op++) {
            if (rc == 0) {
                static const char *const when[] = {"INSERT", "UPDATE", "DELETE"};
                char *qt = rec__quote(api->table);
                char *sql = tr_asprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER %s ON %s BEGIN "
                                        "SELECT 1; END",
                                        names[op], when[op], qt);
                tr_free(qt);
                rc = db_exec(mirror, sql, err);
                tr_free(sql);
            }
            tr_buf_free(&bodies[op]);
        }
    }
    if (rc == 0) return db_exec(mirror, "COMMIT", err);
    tr_error ignored = {0};
    db_exec(mirror, "ROLLBACK", &ignored);
    return rc;
}

/* Runs fn until it is not stopped by another node's lock, or the setup's deadline passed. */
static int setup_retrying(setup *st, const char *what, int (*fn)(setup *, const void *, tr_error *),
                          const void *arg, tr_error *err)
{
    for (;;) {
        int rc = fn(st, arg, err);
        if (rc <= 0) return rc;
        if (tr_now_ns() > st->deadline_ns)
            return tr_error_set(err, TR_ETIMEDOUT,
                                "%s: the cluster's database stayed locked for %d s", what,
                                REC_FEED_SETUP_WAIT_MS / 1000);
        nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
}

static int ddl_attempt(setup *st, const void *arg, tr_error *err)
{
    (void)arg;
    int rc = setup_exec(st, feed_ddl, NULL, 0, err);
    return rc < 0 && setup_busy(st, rc) ? 1 : rc;
}

typedef struct table_arg {
    const rec_set *s;
    const char *table;
} table_arg;

static int table_attempt(setup *st, const void *arg, tr_error *err)
{
    const table_arg *t = arg;
    return triggers_attempt(st, t->s, t->table, err);
}

static int install(const rec_set *s, const char *const *addresses, size_t n, tr_error *err)
{
    setup st = {.deadline_ns = tr_now_ns() + (uint64_t)REC_FEED_SETUP_WAIT_MS * 1000000u};
    static const dq_db_opts d = {GUEST_CLUSTER_DB, 0, false, 0};
    int rc = dq_client_open_leader_db(addresses, n, NULL, REC_FEED_SETUP_WAIT_MS, &d, &st.c, &st.db,
                                      err);
    if (rc < 0) return rc;
    rc = setup_retrying(&st, REC_FEED_LOG, ddl_attempt, NULL, err);
    for (size_t a = 0; rc == 0 && a < s->napis; a++) {
        const rec_api *api = &s->apis[a];
        if (!api->subscriptions || api->is_view) continue;
        bool done = false; /* an earlier API on the same table made its triggers */
        for (size_t k = 0; k < a && !done; k++)
            done = s->apis[k].subscriptions && !s->apis[k].is_view &&
                   strcmp(s->apis[k].table, api->table) == 0;
        if (done) continue;
        table_arg t = {s, api->table};
        rc = setup_retrying(&st, api->table, table_attempt, &t, err);
    }
    dq_client_close(st.c);
    return rc;
}

/* ---- the thread ---- */

static void disconnect(rec_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->calling = NULL;
    pthread_mutex_unlock(&f->mu);
    dq_client_close(f->c);
    f->c = NULL;
}

/* Marks the call about to be made on f->c, so that a stop aborts it; false when stopping. */
static bool call_begin(rec_feed *f)
{
    pthread_mutex_lock(&f->mu);
    bool stop = f->stop;
    f->calling = stop ? NULL : f->c;
    pthread_mutex_unlock(&f->mu);
    return !stop;
}

static void call_end(rec_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->calling = NULL;
    pthread_mutex_unlock(&f->mu);
}

static int query(rec_feed *f, const char *sql, const dq_value *p, size_t n, dq_rows *rows,
                 tr_error *err)
{
    if (!call_begin(f)) return tr_error_set(err, TR_ETIMEDOUT, "the node is stopping");
    int rc = dq_query_sql(f->c, f->db, sql, p, n, rows, err);
    call_end(f);
    if (rc < 0) disconnect(f);
    return rc;
}

static int exec(rec_feed *f, const char *sql, const dq_value *p, size_t n, tr_error *err)
{
    if (!call_begin(f)) return tr_error_set(err, TR_ETIMEDOUT, "the node is stopping");
    dq_result res;
    int rc = dq_exec_sql(f->c, f->db, sql, p, n, &res, err);
    call_end(f);
    if (rc < 0 && !(rc == TR_ESQL && dq_client_busy(f->c))) disconnect(f);
    return rc;
}

static int connect_leader(rec_feed *f, tr_error *err)
{
    if (f->c) return 0;
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.timeout_ms = REC_FEED_CALL_MS;
    o.max_body_bytes = 16u << 20; /* a batch is at most about 6 MiB */
    o.max_result_values = REC_FEED_BATCH_ROWS * 6;
    static const dq_db_opts d = {GUEST_CLUSTER_DB, 0, false, 0};
    return dq_client_open_leader_db((const char *const *)f->addrs, f->naddrs, &o, REC_FEED_CALL_MS,
                                    &d, &f->c, &f->db, err);
}

/* The log's end: the seq after which new changes will come. */
static int log_end(rec_feed *f, int64_t *out, tr_error *err)
{
    dq_rows rows = DQ_ROWS_INIT;
    int rc = query(f, end_sql, NULL, 0, &rows, err);
    if (rc < 0) return rc;
    if (rows.nrows == 1 && rows.ncols == 1 && rows.vals[0].type == DQ_INTEGER)
        *out = rows.vals[0].i;
    else
        rc = tr_error_set(err, TR_EPARSE, "the change log's end is not an integer");
    dq_rows_free(&rows);
    return rc;
}

/* Decodes a hex text into out (n / 2 bytes); false for anything else. */
static bool hex_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[i + (size_t)k];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                             : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        out[i / 2] = (uint8_t)v;
    }
    return true;
}

/* One value of a row's JSON (json_each's type, atom, and a tagged value's tag and payload) as a
 * value whose bytes are in arena a; false for what no trigger writes. */
static bool decode_value(sqlite3_stmt *st, tr_arena *a, rec_value *out)
{
    const char *type = (const char *)sqlite3_column_text(st, 1);
    *out = (rec_value){.type = SQLITE_NULL};
    if (type == NULL) return false;
    if (strcmp(type, "null") == 0) return true;
    if (strcmp(type, "integer") == 0 || strcmp(type, "true") == 0 || strcmp(type, "false") == 0) {
        *out = (rec_value){.type = SQLITE_INTEGER, .i = sqlite3_column_int64(st, 2)};
        return true;
    }
    if (strcmp(type, "real") == 0) {
        *out = (rec_value){.type = SQLITE_FLOAT, .d = sqlite3_column_double(st, 2)};
        return true;
    }
    if (strcmp(type, "text") == 0) {
        const char *t = (const char *)sqlite3_column_text(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        *out = (rec_value){.type = SQLITE_TEXT, .p = tr_arena_strndup(a, t ? t : "", n), .n = n};
        return true;
    }
    if (strcmp(type, "array") != 0) return false;
    const char *tag = (const char *)sqlite3_column_text(st, 3);
    const char *pay = (const char *)sqlite3_column_text(st, 4);
    size_t n = (size_t)sqlite3_column_bytes(st, 4);
    if (tag == NULL || pay == NULL) return false;
    if (strcmp(tag, "b") == 0) {
        uint8_t *bytes = tr_arena_alloc(a, n / 2 + 1);
        if (!hex_decode(pay, n, bytes)) return false;
        *out = (rec_value){.type = SQLITE_BLOB, .p = (const char *)bytes, .n = n / 2};
        return true;
    }
    if (strcmp(tag, "f") == 0) {
        char *end = NULL;
        double d = strtod(pay, &end);
        if (end == pay || *end != '\0') return false;
        *out = (rec_value){.type = SQLITE_FLOAT, .d = d};
        return true;
    }
    return false;
}

/* The events of one log row into evs (room for one per API of the set): one per subscribable API
 * of its table, or one REC_EV_LOST per API when its row is missing (too large) or does not
 * decode. Returns how many. */
static size_t row_events(rec_feed *f, const char *table, int64_t op, const dq_value *row,
                         tr_arena *a, rec_event **evs)
{
    const rec_set *s = f->set;
    const rec_api **apis = tr_arena_alloc(a, (s->napis + 1) * sizeof *apis);
    rec_value **vals = tr_arena_alloc(a, (s->napis + 1) * sizeof *vals);
    size_t napis = 0;
    for (size_t i = 0; i < s->napis; i++) {
        const rec_api *api = &s->apis[i];
        if (!api->subscriptions || api->is_view || strcmp(api->table, table) != 0) continue;
        apis[napis] = api;
        vals[napis] = tr_arena_alloc(a, (api->ncols + 1) * sizeof(rec_value));
        for (size_t k = 0; k < api->ncols; k++)
            vals[napis][k] = (rec_value){.type = SQLITE_NULL};
        napis++;
    }
    if (napis == 0) return 0;
    bool ok = row->type == DQ_TEXT && op >= REC_EV_INSERT && op <= REC_EV_DELETE;
    if (ok) {
        sqlite3_bind_text(f->each, 1, row->p, (int)row->n, SQLITE_STATIC);
        int rc;
        while (ok && (rc = sqlite3_step(f->each)) == SQLITE_ROW) {
            const char *key = (const char *)sqlite3_column_text(f->each, 0);
            if (key == NULL) continue;
            rec_value v;
            bool decoded = false;
            for (size_t i = 0; ok && i < napis; i++) {
                for (size_t k = 0; ok && k < apis[i]->ncols; k++) {
                    if (strcmp(apis[i]->cols[k].name, key) != 0) continue;
                    if (!decoded) ok = decode_value(f->each, a, &v);
                    decoded = true;
                    vals[i][k] = v;
                }
            }
        }
        if (ok && rc != SQLITE_DONE) ok = false;
        sqlite3_reset(f->each);
        sqlite3_clear_bindings(f->each);
    }
    for (size_t i = 0; i < napis; i++)
        evs[i] = ok ? rec__event_new(apis[i], (int)op, vals[i])
                    : rec__event_new(apis[i], REC_EV_LOST, NULL);
    return napis;
}

/* One read of the log: the rows after f->last handed on. *full when the batch was full (read
 * again at once). */
static int poll_once(rec_feed *f, bool *full, tr_error *err)
{
    *full = false;
    if (rec__hub_subscribers(f->hub) == 0) {
        /* Nobody listens here: only the position moves. */
        return log_end(f, &f->last, err);
    }
    dq_value p[4] = {{.type = DQ_INTEGER, .i = f->last},
                     {.type = DQ_INTEGER, .i = REC_FEED_BATCH_ROWS},
                     {.type = DQ_INTEGER, .i = REC_FEED_MAX_JSON},
                     {.type = DQ_INTEGER, .i = REC_FEED_BATCH_BYTES}};
    dq_rows rows = DQ_ROWS_INIT;
    int rc = query(f, poll_sql, p, 4, &rows, err);
    if (rc < 0) return rc;
    if (rows.ncols != 5) {
        dq_rows_free(&rows);
        return tr_error_set(err, TR_EPARSE, "the change log answered %u columns, not 5",
                            rows.ncols);
    }
    *full = rows.nrows >= REC_FEED_BATCH_ROWS;
    size_t per_row = f->set->napis + 1, nev = 0;
    rec_event **evs = tr_calloc(rows.nrows * per_row + 1, sizeof *evs);
    tr_arena a;
    tr_arena_init(&a, 64u << 10);
    bool lost = false;
    for (size_t r = 0; r < rows.nrows; r++) {
        const dq_value *v = &rows.vals[r * 5];
        if (v[4].type == DQ_INTEGER && v[4].i > f->last) lost = true; /* pruned unread */
        if (v[0].type != DQ_INTEGER || v[0].i <= f->last) break;      /* none, or not in order */
        f->last = v[0].i;
        if (v[1].type != DQ_TEXT || v[2].type != DQ_INTEGER) continue;
        nev += row_events(f, v[1].p, v[2].i, &v[3], &a, evs + nev);
    }
    rec__hub_publish(f->hub, evs, nev);
    if (lost) {
        tr_log_warn("realtime: this node missed changes that the cluster's log no longer holds; "
                    "its subscriptions are ended");
        rec__hub_lost(f->hub);
    }
    tr_free(evs);
    tr_arena_deinit(&a);
    dq_rows_free(&rows);
    return 0;
}

/* Deletes the log's rows older than REC_FEED_KEEP_MS (by the leader's clock of their writing),
 * after recording the highest of them in REC_FEED_PRUNED. Idempotent: any node may do it. */
static int prune(rec_feed *f, tr_error *err)
{
    dq_value cut = {.type = DQ_INTEGER, .i = tr_wall_ms() - f->keep_ms};
    dq_rows rows = DQ_ROWS_INIT;
    int rc = query(f, "SELECT max(seq) FROM " REC_FEED_LOG " WHERE at_ms < ?", &cut, 1, &rows, err);
    if (rc < 0) return rc;
    int64_t upto =
        rows.nrows == 1 && rows.ncols == 1 && rows.vals[0].type == DQ_INTEGER ? rows.vals[0].i : 0;
    dq_rows_free(&rows);
    if (upto <= 0) return 0;
    dq_value p = {.type = DQ_INTEGER, .i = upto};
    rc = exec(f,
              "INSERT INTO " REC_FEED_PRUNED " (id, upto) VALUES (1, ?1) ON CONFLICT (id) DO "
              "UPDATE SET upto = max(upto, excluded.upto)",
              &p, 1, err);
    if (rc == 0) rc = exec(f, "DELETE FROM " REC_FEED_LOG " WHERE seq <= ?", &p, 1, err);
    return rc;
}

/* Waits ms, or less when stopped; false when stopping. */
static bool wait_ms(rec_feed *f, long ms)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += ms * 1000000;
    at.tv_sec += at.tv_nsec / 1000000000;
    at.tv_nsec %= 1000000000;
    pthread_mutex_lock(&f->mu);
    while (!f->stop)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &at) != 0) break;
    bool stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    return !stop;
}

static void *feed_main(void *arg)
{
    rec_feed *f = arg;
    for (;;) {
        tr_error err = {0};
        bool full = false;
        int rc = connect_leader(f, &err);
        if (rc == 0) rc = poll_once(f, &full, &err);
        if (rc == 0 && tr_now_ns() >= f->next_prune_ns) {
            /* another node's prune may hold the lock: the next one will do */
            tr_error ignored = {0};
            (void)prune(f, &ignored);
            f->next_prune_ns = tr_now_ns() + (uint64_t)f->prune_ms * 1000000u;
        }
        if (rc < 0 && !f->failing)
            tr_log_warn("realtime: cannot read the cluster's change log: %s", err.msg);
        if (rc == 0 && f->failing) tr_log_info("realtime: reading the cluster's change log again");
        f->failing = rc < 0;
        if (full && rc == 0) {
            pthread_mutex_lock(&f->mu);
            bool stop = f->stop;
            pthread_mutex_unlock(&f->mu);
            if (stop) break;
            continue;
        }
        if (!wait_ms(f, REC_FEED_POLL_MS)) break;
    }
    disconnect(f);
    return NULL;
}

int rec_feed_start(const rec_set *s, db_conn *mirror, const char *const *addresses, size_t n,
                   rec_feed **out, tr_error *err)
{
    *out = NULL;
    if (s == NULL || s->hub == NULL) return 0;
    int rc = install(s, addresses, n, err);
    if (rc == 0) rc = mirror_install(s, mirror, err);
    if (rc < 0) return rc;
    rec_feed *f = tr_calloc(1, sizeof *f);
    f->set = s;
    f->hub = s->hub;
    for (size_t i = 0; i < n && i < REC_FEED_MAX_ADDRS; i++)
        f->addrs[f->naddrs++] = tr_strdup(addresses[i]);
    f->keep_ms = REC_FEED_KEEP_MS;
    f->prune_ms = REC_FEED_PRUNE_MS;
#ifdef TRAIL_TEST_BUILD
    /* The tests' builds only: a log kept TRAIL_TEST_REALTIME_KEEP_MS, pruned twice as often, so
     * that a test can find it pruned past a stopped node in seconds. */
    const char *keep = getenv("TRAIL_TEST_REALTIME_KEEP_MS");
    if (keep && atol(keep) > 0) {
        f->keep_ms = atol(keep);
        f->prune_ms = f->keep_ms / 2 ? f->keep_ms / 2 : 1;
    }
#endif
    f->next_prune_ns = tr_now_ns() + (uint64_t)f->prune_ms * 1000000u;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (sqlite3_open_v2(":memory:", &f->json, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(f->json,
                           "SELECT key, type, atom, CASE WHEN type = 'array' THEN value ->> 0 END, "
                           "CASE WHEN type = 'array' THEN value ->> 1 END FROM json_each(?1)",
                           -1, &f->each, NULL) != SQLITE_OK) {
        rc = tr_error_set(err, TR_ESQL, "realtime: %s", sqlite3_errmsg(f->json));
        rec_feed_stop(f);
        return rc;
    }
    /* From the log's present end: the subscribers of this node hear of changes from now on. */
    tr_error e = {0};
    if (connect_leader(f, &e) < 0 || log_end(f, &f->last, &e) < 0) {
        rc = tr_error_set(err, e.code ? e.code : TR_EIO, "realtime: %s", e.msg);
        rec_feed_stop(f);
        return rc;
    }
    rec__hub_set_remote(f->hub);
    rc = pthread_create(&f->thread, NULL, feed_main, f);
    if (rc != 0) {
        rc = tr_error_set(err, -rc, "cannot start the realtime feed: %s", strerror(rc));
        rec_feed_stop(f);
        return rc;
    }
    f->started = true;
    *out = f;
    return 0;
}

void rec_feed_stop(rec_feed *f)
{
    if (f == NULL) return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        if (f->calling) dq_client_abort(f->calling); /* its call fails at once */
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    } else {
        disconnect(f);
    }
    sqlite3_finalize(f->each);
    sqlite3_close(f->json);
    for (size_t i = 0; i < f->naddrs; i++)
        tr_free(f->addrs[i]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    tr_free(f);
}
