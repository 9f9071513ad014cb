/* records/records_internal.h: what the files of src/records/ share. */
#ifndef TRAIL_RECORDS_RECORDS_INTERNAL_H
#define TRAIL_RECORDS_RECORDS_INTERNAL_H

#include "records/records.h"

#include <sqlite3.h>

#include "cluster/appdb.h"
#include "component/component.h"
#include "config/config.h"

#define REC_PATH_PREFIX      "/api/records/v1/"
#define REC_DEFAULT_LIMIT    50
#define REC_HARD_LIMIT       1024
#define REC_MAX_BULK         1024 /* records in one POST */
#define REC_MAX_FILTERS      64   /* conditions in one list request */
#define REC_MAX_FILTER_DEPTH 8    /* nesting of $and/$or */
#define REC_MAX_ORDER        8    /* columns in order= */
#define REC_MAX_EXPAND       8    /* columns in expand= */
#define REC_BATCH_PATH       "/api/transaction/v1/execute"
#define REC_MAX_BATCH        128 /* operations in one batch */

typedef enum rec_type {
    REC_T_ANY, /* no declared type (or a view's computed column): values kept as given */
    REC_T_INTEGER,
    REC_T_REAL,
    REC_T_TEXT,
    REC_T_BLOB,
} rec_type;

typedef struct rec_column {
    char *name;
    char *quoted; /* "name" with inner quotes doubled, for SQL text */
    rec_type type;
    bool notnull;
    bool has_default;
    bool pk;
    bool hidden;     /* name starts with '_': writable, never read */
    int tcol;        /* its index among the table's columns (the pre-update hook's) */
    char *fk_table;  /* the table a foreign key points to, or NULL */
    char *fk_column; /* its column (the foreign table's primary key when the key names none) */
} rec_column;

/* A foreign table an API may expand into. */
typedef struct rec_foreign {
    int col;          /* the API's foreign key column */
    char *quoted;     /* the foreign table, quoted */
    rec_column *cols; /* its readable columns */
    size_t ncols;
    char *quoted_key; /* the referenced column, quoted */
} rec_foreign;

enum { REC_OP_CREATE, REC_OP_READ, REC_OP_UPDATE, REC_OP_DELETE, REC_OP_SCHEMA, REC_NOPS };

typedef struct rec_api {
    char *name;
    char *table;  /* as configured */
    char *quoted; /* the table, quoted */
    bool is_view;
    rec_column *cols; /* the table's columns minus excluded_columns, in table order */
    size_t ncols;
    int pk; /* index into cols of the record id column; -1: none (a view without one) */
    uint32_t acl_world, acl_authenticated;
    char *rules[REC_NOPS]; /* SQL expressions; NULL: none */
    rec_foreign *expand;   /* the configured expansions */
    size_t nexpand;
    bool subscriptions;
    bool autofill; /* autofill_missing_user_id_columns */
    int conflict;  /* CFG_CONFLICT_* */
    uint64_t hard_limit;
    const rec_set *set;
} rec_api;

struct rec_set {
    rec_api *apis;
    size_t napis;
    rec_user_fn who;
    uint8_t cursor_key[32]; /* cursors name their API and are signed: rec_set_cursor_key() */
    struct rec_hub *hub;    /* realtime subscriptions; NULL when no API enables them */
    bool transactions;      /* server.enable_record_transactions: POST REC_BATCH_PATH */
};

/* ---- values ---- */
typedef struct rec_value {
    int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL */
    int64_t i;
    double d;
    const char *p; /* text or blob bytes (arena or request memory) */
    size_t n;
} rec_value;

/* Binds v to parameter idx of st (SQLITE_STATIC: v's bytes must outlive the step). */
int rec__bind(sqlite3_stmt *st, int idx, const rec_value *v);
/* The same for a statement on the application database (cluster/appdb.h): on one node exactly
 * rec__bind(); in cluster mode the value is copied into the statement. */
int rec__bind_adb(adb_stmt *st, int idx, const rec_value *v);

/* Converts a request's text (a filter value, a record id) to a value for column c: integers
 * strictly for INTEGER columns (true/false as 1/0), numbers for REAL, text for TEXT, a UUID
 * (8-4-4-4-12) or URL-safe base64 for BLOB. Returns false when the text does not fit. The
 * value may point into s, or into a, which must outlive it. */
bool rec__value_from_text(const rec_column *c, const char *s, size_t n, tr_arena *a,
                          rec_value *out);

/* URL-safe base64 with padding (the reference's encoding of BLOBs and record ids). */
void rec__b64url_encode(const void *data, size_t n, tr_buf *out);
/* Decodes URL-safe base64 with or without padding; false for anything else. out must hold
 * n * 3 / 4 + 3 bytes. */
bool rec__b64url_decode(const char *s, size_t n, uint8_t *out, size_t *out_len);

/* Appends s as a JSON string literal. Invalid UTF-8 is replaced by U+FFFD. */
void rec__json_str(tr_buf *b, const char *s, size_t n);
/* Appends v as JSON, as rec__json_column() writes a column. */
void rec__json_value(tr_buf *b, const rec_value *v);
/* Appends column i of st as JSON: null, a number, a string, or a BLOB as URL-safe base64. */
void rec__json_column(tr_buf *b, adb_stmt *st, int i);
/* Appends the record in columns [first, first + ncols) of st as a JSON object of the API's
 * readable columns (cols: ncols entries in the same order); expansions follow when exp != NULL:
 * for each of the API's expand entries, wanted[k] says whether its columns were selected. */
void rec__json_row(tr_buf *b, const rec_api *api, adb_stmt *st, int first, const bool *wanted);

/* Quotes an identifier for SQL text ("a""b"). */
char *rec__quote(const char *name);

/* ---- the guests' record hooks (records/hooks.c) ---- */
enum {
    REC_HOOK_BEFORE_CREATE,
    REC_HOOK_AFTER_CREATE,
    REC_HOOK_BEFORE_UPDATE,
    REC_HOOK_AFTER_UPDATE,
    REC_HOOK_BEFORE_DELETE,
    REC_HOOK_AFTER_DELETE
};                       /* comp_hook_event */
#define REC_MAX_HOOKS 16 /* hooks run for one event of one write */

typedef struct rec_hook_ref {
    struct comp_instance *ci;
    size_t idx;         /* in its module's hooks */
    const char *module; /* for logs */
} rec_hook_ref;

/* The calling worker's hooks on event for api, at most cap. */
/* The calling worker's environment (its loop and database connection), through the thread's
 * comp_worker; NULL on a thread that is not a worker. */
const guest_env *rec__worker_env(void);

size_t rec__hooks_find(const rec_api *api, int event, rec_hook_ref *out, size_t cap);
/* Runs one hook on the context ctx (JSON); its JSON answer in out. Errors as
 * comp_instance_record_hook(). In cluster mode the hook's own statements run at once on the
 * worker's connection to the leader, inside the write's transaction (docs/scaling.md). */
int rec__hook_run(const rec_hook_ref *h, const char *ctx, size_t len, tr_buf *out, tr_error *err);

/* ---- realtime (records/realtime.c) ---- */
#define REC_SUB_MAX_PENDING (256u << 10) /* unsent bytes of one subscriber before it is closed */
#define REC_INBOX_MAX       65536        /* events waiting for one worker */
#define REC_PING_MS         30000        /* a comment to every subscriber when idle this long */

struct http_request;
struct http_response;
/* The hub of subscriptions of s (NULL when no API enables them). */
struct rec_hub *rec__hub_new(const rec_set *s);
void rec__hub_free(struct rec_hub *h);

/* What an event says of its row. The numbers are those the cluster's change log stores
 * (records/cluster_feed.c). */
enum { REC_EV_INSERT = 0, REC_EV_UPDATE = 1, REC_EV_DELETE = 2, REC_EV_LOST = 3 };
typedef struct rec_event rec_event;
/* A new event (one reference) of api: op REC_EV_*, vals its api->ncols column values (copied;
 * NULL for REC_EV_LOST, which ends the API's subscriptions with an error event saying that
 * events were lost). Thread: any. */
rec_event *rec__event_new(const rec_api *api, int op, const rec_value *vals);
/* Hands evs[0..n) to every worker with a subscriber to their API, in that order, as a commit on
 * the worker's connection does; takes ownership of the caller's references. Thread: any. */
void rec__hub_publish(struct rec_hub *h, rec_event **evs, size_t n);
/* Ends every subscription of every worker with an error event saying that events were lost. */
void rec__hub_lost(struct rec_hub *h);
/* Cluster mode: the workers' hooks capture nothing from now on (the node's file is a schema
 * mirror); events come from rec__hub_publish(). */
void rec__hub_set_remote(struct rec_hub *h);
bool rec__hub_remote(const struct rec_hub *h); /* h may be NULL */
/* Subscribers on every worker now. */
long rec__hub_subscribers(struct rec_hub *h);

/* ---- a Record API request (records/handlers.c; the endpoints in read.c and write.c) ---- */
/* One Record API request on its worker: the statement being built and its parameters.
 * Thread: the request's worker only. */
typedef struct rec_ctx {
    const rec_api *api;
    const struct http_request *req;
    struct http_response *res;
    sqlite3 *db; /* the worker's connection (in cluster mode the schema mirror) */
    tr_arena *a;
    rec_user user;
    rec_value *binds; /* binds[i] is parameter ?i+1 */
    int nbinds, capbinds;
    tr_buf sql;
    char err[512];           /* a 400's message */
    struct rec_batch *batch; /* inside a batch: the write answers into it (below) */
    int wait;                /* REC_WAIT_*: what a write does when the database is busy */
    bool busy;               /* REC_WAIT_PARK: it was, and nothing was done; run it again later */
} rec_ctx;

/* A write that finds another connection's write lock, or the worker's connection inside a
 * guest's transaction: */
enum {
    REC_WAIT_BLOCK, /* waits in the connection's busy handler (at most DB_BUSY_TIMEOUT_MS) */
    REC_WAIT_PARK,  /* stops at once, sets busy; the request is run again from the loop */
    REC_WAIT_LAST,  /* the last run of a parked request: 503 at once */
};
/* One run of a request (ud, what: its handler's); true once answered, false when it parked
 * (only with REC_WAIT_PARK). */
typedef bool (*rec_attempt_fn)(const struct http_request *req, struct http_response *res,
                               const void *ud, int what, int wait);
/* Runs fn for the request; when it parks, runs it again from the worker's loop after 2, 4, ...
 * 50 ms until it answers, and one last time with REC_WAIT_LAST after DB_BUSY_TIMEOUT_MS. The
 * worker serves its other requests meanwhile. */
void rec__run(const struct http_request *req, struct http_response *res, rec_attempt_fn fn,
              const void *ud, int what);
/* The database is busy for the write c: parks it (REC_WAIT_PARK) or answers 503 with msg. */
void rec__busy(rec_ctx *c, const char *msg);
/* Makes statements on the worker's connection (in cluster mode: the worker's on the leader,
 * adb_set_busy_wait) fail at once for another connection's lock (on) while a write runs with
 * REC_WAIT_PARK or REC_WAIT_LAST, or wait again (off). */
void rec__nowait(bool on);

/* The after hooks of one write: their contexts, collected before the commit, run after it. */
typedef struct rec_after {
    const rec_api *api;
    rec_hook_ref hooks[REC_MAX_HOOKS];
    size_t n;
    int event;
    tr_buf ctxs; /* NUL-separated JSON contexts */
} rec_after;

/* One operation of POST /api/transaction/v1/execute (records/batch.c) as rec__create, rec__update
 * and rec__delete see it: the record and id come from here instead of the request, and the
 * answer goes here instead of the response. */
typedef struct rec_batch {
    bool tx;           /* in the batch's transaction: writes nest as savepoints and their
                          after hooks wait in `after` for its commit */
    const char *value; /* the operation's record (a JSON object's text); NULL for a delete */
    size_t value_len;
    const char *id; /* its record id (text); NULL for a create */
    size_t id_len;
    int status;       /* 0 until the operation answered: 200, or the failure's status */
    tr_buf ids;       /* the created records' ids, as JSON strings separated by ',' */
    rec_after *after; /* after hooks waiting for the commit */
    size_t nafter;
} rec_batch;

/* Whether the API's ACL gives u the permission perm (CFG_PERM_*). */
bool rec__allowed(const rec_api *api, const rec_user *u, uint32_t perm);
/* Whether the request has been answered (in a batch: whether the operation has) or parked. */
bool rec__answered(const rec_ctx *c);
/* Answers a write that succeeded without a body (200). */
void rec__ok(rec_ctx *c);
/* Runs the after hooks of ah now, or, in a batch's transaction, hands them to the batch. */
void rec__after_run(rec_ctx *c, rec_after *ah);
/* Runs (run true) or drops the after hooks the batch kept, and frees them. */
void rec__batch_after(rec_batch *b, bool run);
/* POST /api/transaction/v1/execute (records/batch.c); ud: the rec_set. */
void rec__batch_handle(const struct http_request *req, struct http_response *res, void *ud);

/* One pair of a query string or an HTML form body. */
typedef struct rec_qparam {
    char *key, *val; /* decoded, NUL-terminated (arena) */
    size_t klen, vlen;
} rec_qparam;

/* Answers with body as application/json. */
void rec__send_json(rec_ctx *c, int status, tr_buf *body);
/* Answers with {"error": msg}. */
void rec__fail(rec_ctx *c, int status, const char *msg);
/* Adds v as the next parameter (its bytes must outlive the statement's steps); returns its number,
 * the N of ?N. */
int rec__bind_add(rec_ctx *c, const rec_value *v);
/* Adds v as the next parameter and appends its placeholder ?N to c->sql. */
void rec__bind_place(rec_ctx *c, const rec_value *v);
/* Prepares sql on the application database (cluster/appdb.h: the worker's connection on one
 * node, the cluster's leader in cluster mode) and binds the parameters it names from c's; an
 * SQLite result code. */
int rec__prepare(rec_ctx *c, const char *sql, adb_stmt **out);
/* Answers a statement that failed with SQLite code rc: a constraint is the client's (400, 409 for
 * a duplicate key), a lock held too long 503, anything else 500 (logged). In cluster mode also
 * 503: no leader within ADB_LEADER_WAIT_MS, a connection to the leader that broke (the message
 * says whether the write's outcome is unknown), a transaction a leader change rolled back, and a
 * statement stopped by its limit on the leader (ADB_STMT_LIMIT_MS). */
void rec__fail_sql(rec_ctx *c, int rc);
/* Cluster mode: whether rc, the failure of the last statement on db, means there was no leader
 * to run it within ADB_LEADER_WAIT_MS (waiting again would block the worker again). */
bool rec__cluster_down(int rc, sqlite3 *db);
/* Splits a query string (or a form body) into at most 128 decoded pairs in c's arena; -1 with
 * c->err set when it is malformed or has more. */
int rec__parse_query(rec_ctx *c, const char *q, size_t n, rec_qparam **out, size_t *nout);
/* Binds the caller's id (NULL when signed out) as ?1, the _USER_.id of the rules; first. */
void rec__user_bind(rec_ctx *c);
/* Appends " WHERE (rule)" for operation op (REC_OP_*), "(1)" when it has none. */
void rec__where_rule(rec_ctx *c, int op);
/* The record id of the path, converted by the id column's type; false when it does not fit. */
bool rec__path_id(rec_ctx *c, rec_value *out);

/* The endpoints, after the ACL check; each answers through c->res. ps/np: the query's pairs. */
void rec__list(rec_ctx *c, const rec_qparam *ps, size_t np); /* read.c */
void rec__read(rec_ctx *c, const rec_qparam *ps, size_t np);
void rec__schema(rec_ctx *c);
/* GET .../subscribe/:id (realtime.c), after the ACL check; ps/np: its filter[...] pairs. */
void rec__subscribe(rec_ctx *c, const rec_qparam *ps, size_t np);
/* Appends the conditions of the filter[...] pairs among ps to c->sql ("1" when there are none),
 * binding their values; -1 with c->err set when one is malformed (read.c). */
int rec__filter_sql(rec_ctx *c, const rec_qparam *ps, size_t np);
void rec__create(rec_ctx *c); /* write.c */
void rec__update(rec_ctx *c);
void rec__delete(rec_ctx *c);

#endif
