/* cluster/cluster.h: cluster mode: trail's client of dqlite's wire protocol, and the dqlite node a
 * trail process embeds.
 *
 * DESIGN: dqlite (libdqlite 1.11) is SQLite replicated with Raft. Each node runs its own thread
 * with a libuv loop; clients, this process's included, reach it over TCP with dqlite's wire
 * protocol (version 1): an 8-byte handshake, then messages of a one-word header (body length in
 * 8-byte words, type, revision) and a body of little-endian words, NUL-terminated texts padded to
 * a word, and tuples of values. Every write goes to the leader, which commits it through Raft
 * before it answers; a follower answers "not leader" (DQ_CODE_NOT_LEADER), and the client asks
 * any node who the leader is (LEADER).
 *
 * Three parts: the protocol's encoding and decoding (proto.c: pure functions over bytes, the
 * decoders bounded by their input, fuzzed by tests/fuzz/fuzz_dqlite.c), a blocking client over one
 * TCP connection (client.c: every call has a deadline), and the node (node.c). A server's answer is
 * untrusted input: a body longer than the client's bound is refused before anything is allocated
 * for it, and every decoder checks each field against what is left of the body.
 *
 * The SQLite that dqlite runs is trail's own (docs/scaling.md, "Two SQLites"), so its connections
 * carry trail's SQL functions, registered with sqlite3_auto_extension() before the node starts. */
#ifndef TRAIL_CLUSTER_CLUSTER_H
#define TRAIL_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- the wire protocol (proto.c) ---- */

#define DQ_PROTOCOL_VERSION 1

/* Request types. */
enum {
    DQ_REQ_LEADER = 0,
    DQ_REQ_CLIENT = 1,
    DQ_REQ_OPEN = 3,
    DQ_REQ_PREPARE = 4,
    DQ_REQ_EXEC = 5,
    DQ_REQ_QUERY = 6,
    DQ_REQ_FINALIZE = 7,
    DQ_REQ_EXEC_SQL = 8,
    DQ_REQ_QUERY_SQL = 9,
    DQ_REQ_INTERRUPT = 10,
    DQ_REQ_ADD = 12,
    DQ_REQ_ASSIGN = 13,
    DQ_REQ_REMOVE = 14,
    DQ_REQ_CLUSTER = 16,
    DQ_REQ_TRANSFER = 17,
};

/* Response types. */
enum {
    DQ_RESP_FAILURE = 0,
    DQ_RESP_SERVER = 1,
    DQ_RESP_WELCOME = 2,
    DQ_RESP_SERVERS = 3,
    DQ_RESP_DB = 4,
    DQ_RESP_STMT = 5,
    DQ_RESP_RESULT = 6,
    DQ_RESP_ROWS = 7,
    DQ_RESP_EMPTY = 8,
};

/* Failure codes a server sends that the client acts on (SQLite's extended I/O codes). */
#define DQ_CODE_NOT_LEADER      10250 /* SQLITE_IOERR | 40 << 8: ask the leader */
#define DQ_CODE_LEADERSHIP_LOST 10506 /* SQLITE_IOERR | 41 << 8: the write's outcome is unknown */
#define DQ_CODE_BUSY            5     /* SQLITE_BUSY (low byte): another connection holds the lock */

/* Node roles (ASSIGN, CLUSTER). */
enum { DQ_ROLE_VOTER = 0, DQ_ROLE_STANDBY = 1, DQ_ROLE_SPARE = 2 };
/* "voter", "standby", "spare" or "unknown". */
const char *dq_role_name(uint64_t role);

/* Value types of a parameter or a row value. A row may also carry dqlite's date and boolean
 * types (for columns declared DATETIME, DATE, TIMESTAMP or BOOLEAN); the decoder gives those as
 * the SQLite value they hold: DQ_INTEGER for unix times and booleans, DQ_TEXT for ISO-8601 dates.
 */
enum { DQ_INTEGER = 1, DQ_FLOAT = 2, DQ_TEXT = 3, DQ_BLOB = 4, DQ_NULL = 5 };

typedef struct dq_value {
    int type;      /* DQ_* */
    int64_t i;     /* DQ_INTEGER */
    double f;      /* DQ_FLOAT */
    const char *p; /* DQ_TEXT (NUL-terminated) and DQ_BLOB bytes; borrowed */
    size_t n;      /* their length in bytes (without the NUL) */
} dq_value;

/* Longest body a message may have: a header's length field counts 8-byte words in 32 bits. */
#define DQ_MAX_BODY ((uint64_t)UINT32_MAX * 8)
/* Parameters a request may bind: the tuple header counts them in one byte. */
#define DQ_MAX_PARAMS 255

/* Building a request in b: dq_msg_begin() appends the header (its length left 0), the dq_put_*
 * functions append fields, dq_msg_end() writes the body's length into the header that begins at
 * offset start of b. */
void dq_msg_begin(tr_buf *b, int type, size_t *start);
void dq_put_u64(tr_buf *b, uint64_t v);
void dq_put_u32_pair(tr_buf *b, uint32_t a, uint32_t c);
/* s as a NUL-terminated text padded with zeros to a word. */
void dq_put_text(tr_buf *b, const char *s);
/* The tuple of n parameters. Errors: TR_ELIMIT when n > DQ_MAX_PARAMS; TR_EINVAL for a text that
 * holds a NUL byte (the protocol ends texts at the first NUL) or an unknown type. b may then hold
 * part of the tuple: the caller discards the message. */
int dq_put_params(tr_buf *b, const dq_value *v, size_t n, tr_error *err);
void dq_msg_end(tr_buf *b, size_t start);

/* A response's header: its body's length in bytes and its type. Errors: TR_ELIMIT when the body
 * is longer than max_body (nothing has been allocated for it yet). */
int dq_header_parse(const uint8_t hdr[8], uint64_t max_body, size_t *body_len, int *type,
                    tr_error *err);

/* Reading the fields of a body, each checked against what is left; TR_EPARSE when one does not
 * fit. Texts are borrowed from the body. */
typedef struct dq_cursor {
    const uint8_t *p;
    size_t n; /* bytes left */
} dq_cursor;
int dq_get_u64(dq_cursor *c, uint64_t *out);
int dq_get_u32(dq_cursor *c, uint32_t *out);
int dq_get_text(dq_cursor *c, const char **s, size_t *len);

/* A FAILURE body: its code and message (borrowed from the body). */
int dq_parse_failure(const uint8_t *body, size_t len, uint64_t *code, const char **msg);

/* A member of the cluster (SERVER, SERVERS). */
typedef struct dq_node_info {
    uint64_t id;
    char *address; /* owned */
    uint64_t role; /* DQ_ROLE_*; SERVER answers carry none (0) */
} dq_node_info;

/* A SERVERS body (CLUSTER's answer in format 1: id, address, role): *out is an owned array of *n
 * members; free it with dq_nodes_free(). A count larger than the body can hold is TR_EPARSE
 * before anything is allocated. */
int dq_parse_servers(const uint8_t *body, size_t len, dq_node_info **out, size_t *n, tr_error *err);
void dq_nodes_free(dq_node_info *nodes, size_t n);

/* The rows of a query, gathered from one or more ROWS bodies. */
typedef struct dq_rows {
    unsigned ncols;
    char **names; /* ncols owned column names */
    size_t nrows;
    dq_value *vals;  /* nrows * ncols; texts and blobs point into bodies */
    size_t vals_cap; /* in values */
    char **bodies;   /* the bodies the values point into, owned */
    size_t nbodies, bodies_cap;
    uint64_t bytes; /* of all bodies */
} dq_rows;

#define DQ_ROWS_INIT                       \
    {                                      \
        0, NULL, 0, NULL, 0, NULL, 0, 0, 0 \
    }

/* Decodes a ROWS body into rows, taking ownership of body (a tr_malloc'd block of len bytes,
 * freed with the rows, or at once on an error). *more is set when the server sends another batch
 * of the same result. Every batch starts with the column count and names, which must match the
 * first's. Errors: TR_EPARSE (err says what), TR_ELIMIT when the rows gathered would exceed
 * max_values values. */
int dq_rows_add_body(dq_rows *rows, char *body, size_t len, size_t max_values, bool *more,
                     tr_error *err);
void dq_rows_free(dq_rows *rows);

/* ---- the client (client.c): one TCP connection to one node ---- */

typedef struct dq_client dq_client;

/* What a write did (RESULT). */
typedef struct dq_result {
    uint64_t last_insert_id;
    uint64_t rows_affected;
} dq_result;

/* Bounds of a client: each call's deadline and the largest answer it accepts. */
typedef struct dq_client_opts {
    uint32_t timeout_ms;      /* per call: connect, or send a request and read its answer */
    uint64_t max_body_bytes;  /* one response message, and all the batches of one result */
    size_t max_result_values; /* the values of one query's rows */
} dq_client_opts;

#define DQ_CLIENT_OPTS_DEFAULT    \
    {                             \
        5000, 64u << 20, 1u << 22 \
    }

/* Connects to address ("HOST:PORT", a numeric IPv4 or IPv6 host in brackets, or a name) and
 * sends the handshake. opts may be NULL (the defaults). Errors: -errno, TR_ETIMEDOUT, TR_EINVAL
 * for a malformed address; err names the address. */
int dq_client_open(const char *address, const dq_client_opts *opts, dq_client **out, tr_error *err);
/* Closes the connection (NULL is a no-op). */
void dq_client_close(dq_client *c);

/* Makes the call another thread is making on c, and every later one, fail at once (the socket is
 * shut down; the client is then unusable: close it). Thread: any, while c is not being closed. */
void dq_client_abort(dq_client *c);

/* Sets the deadline of each later call on c. */
void dq_client_set_timeout(dq_client *c, uint32_t timeout_ms);
/* Whether c, between two calls, is still connected as far as can be seen without a request: not
 * broken, and the node has neither closed nor reset the connection. A false answer means: close
 * c and open another before sending anything (nothing was sent on c since its last answer). */
bool dq_client_idle_ok(const dq_client *c);

/* The failure code of the last call that the server answered with a failure (0 when it did not):
 * e.g. DQ_CODE_NOT_LEADER. */
uint64_t dq_client_failure_code(const dq_client *c);
/* Whether the last failure answer was SQLITE_BUSY (any extended code, "database is locked"): the
 * leader holds one write transaction per database at a time and refuses a write that meets
 * another connection's at once. The statement did not run, so asking again is safe
 * (e2e_cluster_failover_under_write_load checks that no such write landed). */
bool dq_client_busy(const dq_client *c);

/* Every request below: 0 on success; a failure answer is TR_ESQL with the server's message in err
 * (and dq_client_failure_code()); a broken or slow connection is -errno or TR_ETIMEDOUT, after
 * which the client is unusable (close it); an answer that does not decode is TR_EPARSE, likewise.
 */

/* LEADER: the leader this node knows of (*id 0 and address "" when none). *address is owned. */
int dq_leader(dq_client *c, uint64_t *id, char **address, tr_error *err);
/* CLIENT: registers the client with the leader (WELCOME). */
int dq_register(dq_client *c, uint64_t client_id, tr_error *err);
/* CLUSTER (format 1): the members with their roles; free with dq_nodes_free(). */
int dq_cluster(dq_client *c, dq_node_info **nodes, size_t *n, tr_error *err);
/* ADD, ASSIGN, REMOVE: membership changes, answered by the leader once committed. */
int dq_add(dq_client *c, uint64_t id, const char *address, tr_error *err);
int dq_assign(dq_client *c, uint64_t id, uint64_t role, tr_error *err);
int dq_remove(dq_client *c, uint64_t id, tr_error *err);
/* TRANSFER: the leader hands leadership to voter id (answered once it has). */
int dq_transfer(dq_client *c, uint64_t id, tr_error *err);

/* OPEN: the database name (a file name in the cluster's namespace); *db is its id. */
int dq_open(dq_client *c, const char *name, uint32_t *db, tr_error *err);
/* PREPARE: one statement; *stmt its id, *nparams its parameter count (may be NULL). */
int dq_prepare(dq_client *c, uint32_t db, const char *sql, uint32_t *stmt, uint64_t *nparams,
               tr_error *err);
/* EXEC, QUERY, FINALIZE of a prepared statement. rows must be DQ_ROWS_INIT or freed; on an error
 * it holds nothing. */
int dq_exec(dq_client *c, uint32_t db, uint32_t stmt, const dq_value *params, size_t n,
            dq_result *res, tr_error *err);
int dq_query(dq_client *c, uint32_t db, uint32_t stmt, const dq_value *params, size_t n,
             dq_rows *rows, tr_error *err);
int dq_finalize(dq_client *c, uint32_t db, uint32_t stmt, tr_error *err);
/* EXEC_SQL: every statement of sql (the parameters bind to the first); QUERY_SQL: one statement
 * with rows. */
int dq_exec_sql(dq_client *c, uint32_t db, const char *sql, const dq_value *params, size_t n,
                dq_result *res, tr_error *err);
int dq_query_sql(dq_client *c, uint32_t db, const char *sql, const dq_value *params, size_t n,
                 dq_rows *rows, tr_error *err);

/* Finds the leader from any of the addresses (each asked LEADER in turn, then the leader it names)
 * and returns a client connected and registered to it. Tries until timeout_ms passes (an election
 * may be under way). Errors: TR_ETIMEDOUT with err naming the last reason. */
int dq_client_open_leader(const char *const *addresses, size_t n, const dq_client_opts *opts,
                          uint32_t timeout_ms, dq_client **out, tr_error *err);

/* What dq_client_open_leader_db() makes of the connection it found. */
typedef struct dq_db_opts {
    const char *name;       /* the database OPENed on it */
    uint32_t stmt_limit_ms; /* 0, or its statements bounded there (`_trail_statement_limit`) */
    bool foreign_keys;      /* `PRAGMA foreign_keys=ON` on it, as db_open() sets it on one node */
    uint32_t call_ms;       /* 0, or the deadline of each later call (dq_client_set_timeout) */
} dq_db_opts;

/* dq_client_open_leader(), then the database d->name opened on the client (*db its id) and the
 * connection set up as d says: the one way trail's threads reach the leader's database. On an
 * error nothing is left open; errors as the calls'. */
int dq_client_open_leader_db(const char *const *addresses, size_t n, const dq_client_opts *opts,
                             uint32_t timeout_ms, const dq_db_opts *d, dq_client **out,
                             uint32_t *db, tr_error *err);

/* ---- statements bounded on the node (limit.c) ---- */

/* Registers, for every SQLite connection opened from now on (the node's among them), the SQL
 * function `_trail_statement_limit(MS)`: once a client calls it on its connection, every statement
 * that connection runs is interrupted after MS of wall time (SQLite's "interrupted", failure code
 * DQ_CODE_INTERRUPTED). Only tightens: a larger MS later, or 0, changes nothing. Errors: TR_ESQL.
 * Thread: the main thread, before the node starts. */
int cluster_limit_register_everywhere(void);
#define DQ_CODE_INTERRUPTED 9 /* SQLITE_INTERRUPT */

/* ---- the node (node.c) ---- */

typedef struct cluster_node cluster_node;

typedef struct cluster_opts {
    const char *address;      /* "HOST:PORT" this node listens on and the others reach it at */
    const char *join;         /* comma-separated addresses of members, or NULL/"" for the first */
    const char *data_dir;     /* trail's data directory: the node's files go in DATA_DIR/cluster/ */
    uint32_t join_timeout_ms; /* how long joining may wait for a leader */
} cluster_opts;

/* The node's directory in the data directory, and its identity file in it ("ID ADDRESS\n"). */
#define CLUSTER_DIR     "cluster"
#define CLUSTER_ID_FILE "cluster/node-id"

/* Starts this process's dqlite node: the first start in a data directory chooses the node's id
 * (1, which bootstraps a new cluster, without join; a random one with it) and keeps it in
 * CLUSTER_ID_FILE, and later starts must give the same address. With join, a node that is not yet
 * a voter asks the leader to ADD and ASSIGN it. Errors: TR_ECONFIG (bad address, another address
 * than the one the node was created with), TR_EIO (dqlite's message), TR_ETIMEDOUT (no leader to
 * join); err says which. Thread: the main thread, once. */
int cluster_node_start(const cluster_opts *opts, cluster_node **out, tr_error *err);
/* Stops and frees the node (NULL is a no-op). */
void cluster_node_stop(cluster_node *n);
uint64_t cluster_node_id(const cluster_node *n);

/* ---- lag (status.c) ---- */

/* The cluster database each node's reporter writes its log index into (not the application's). */
#define CLUSTER_STATUS_DB "trail-status"

/* The last Raft log index held on disk in dir (a node's DATA_DIR/cluster): the end of its closed
 * segments (or its newest snapshot) plus the whole batches of its open segments. Errors: -errno
 * for an unreadable directory or segment, TR_EPARSE for a segment of another format. */
int cluster_log_last_index(const char *dir, uint64_t *out, tr_error *err);

/* A thread that writes, at every whole second of the wall clock, this node's last log index
 * through the leader into CLUSTER_STATUS_DB (table members: id, slot = second % 2, address,
 * log_index, tick = the second, at_ms = the wall time written). It finds the leader through
 * address and the comma-separated join list; a failed report is tried again the next second.
 * Thread: the reporter's own; start and stop from one thread. */
typedef struct cluster_reporter cluster_reporter;
int cluster_reporter_start(uint64_t id, const char *address, const char *join,
                           const char *data_dir, cluster_reporter **out, tr_error *err);
/* Stops the thread (waits for a report under way: each of its calls has a 2 s deadline) and
 * frees r (NULL is a no-op). */
void cluster_reporter_stop(cluster_reporter *r);

/* One member's report of one second. */
typedef struct cluster_report {
    uint64_t id;
    uint64_t log_index;
    int64_t tick;  /* the wall-clock second it was read at */
    int64_t at_ms; /* when it was written (the member's wall clock) */
} cluster_report;

/* The reports the leader holds (up to two per member: its last two seconds), ordered by id then
 * tick; *out is owned (tr_free). None yet is 0 reports. leader must be connected to the leader. */
int cluster_reports_read(dq_client *leader, cluster_report **out, size_t *n, tr_error *err);

/* Reads CLUSTER_ID_FILE of data_dir: the node's id and its address (owned). Errors: -ENOENT when
 * the directory has no node, TR_EPARSE for a damaged file (err names it). */
int cluster_id_read(const char *data_dir, uint64_t *id, char **address, tr_error *err);

#endif
