/* guest/cluster.c: a guest's query() and execute() in cluster mode, run on the leader of the
 * cluster's database through trail's dqlite client (docs/scaling.md, "The application database in
 * the cluster").
 *
 * DESIGN: guest/sql.c prepares the statement on the worker's local connection first (the schema
 * mirror), where trail's authorizer holds it to the guest's allow-list and the parameter count is
 * checked; only a statement it accepted reaches this file, which sends that statement's text and
 * the guest's parameters to the leader and turns the answer into the same JS values a local run
 * gives. Each worker's guest_sql owns one client (no locks), opened on first use. The round trip
 * blocks the worker for now, bounded by the client's deadline (TODO(#24): a client driven from the
 * worker's loop). Nothing is remembered between runs: the local data version says nothing of the
 * cluster's commits. */
#include "guest/guest_internal.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "cluster/cluster.h"

/* Cluster mode: the members' addresses (guest_sql_cluster_publish), read-only while workers run. */
static char **cluster_addrs;
static size_t cluster_naddrs;

bool guest__cluster_mode(void)
{
    return cluster_naddrs > 0;
}

void guest_sql_cluster_publish(const char *const *addresses, size_t n)
{
    for (size_t i = 0; i < cluster_naddrs; i++)
        tr_free(cluster_addrs[i]);
    tr_free(cluster_addrs);
    cluster_addrs = NULL;
    cluster_naddrs = 0;
    if (n == 0) return;
    cluster_addrs = tr_calloc(n, sizeof *cluster_addrs);
    for (size_t i = 0; i < n; i++)
        cluster_addrs[i] = tr_strdup(addresses[i]);
    cluster_naddrs = n;
}

/* How long finding the leader may take (an election may be under way: dqlite's takes seconds). */
#define GUEST_CLUSTER_LEADER_WAIT_MS 10000

void guest__sql_remote_close(guest_sql *s)
{
    dq_client_close(s->leader);
    s->leader = NULL;
}

/* The worker's client to the leader, with GUEST_CLUSTER_DB open on it. */
static int leader_client(guest_sql *s, tr_error *err)
{
    if (s->leader != NULL) return 0;
    dq_client *c = NULL;
    int rc = dq_client_open_leader((const char *const *)cluster_addrs, cluster_naddrs, NULL,
                                   GUEST_CLUSTER_LEADER_WAIT_MS, &c, err);
    if (rc < 0) return rc;
    rc = dq_open(c, GUEST_CLUSTER_DB, &s->leader_db, err);
    if (rc < 0) {
        dq_client_close(c);
        return rc;
    }
    s->leader = c;
    return 0;
}

/* The guest's parameters as dqlite values, typed as bind_params() binds them locally. Texts are
 * copied into a (the protocol's texts end with a NUL). */
static int remote_params(const jsg_val *params, tr_arena *a, dq_value **out, size_t *n,
                         tr_error *err)
{
    size_t got = params ? params->u.arr.len : 0;
    *out = NULL;
    *n = got;
    if (got == 0) return 0;
    if (got > DQ_MAX_PARAMS)
        return tr_error_set(err, TR_ELIMIT,
                            "the statement has %zu parameters; in cluster mode at most %d", got,
                            DQ_MAX_PARAMS);
    dq_value *v = tr_arena_alloc(a, got * sizeof *v);
    for (size_t i = 0; i < got; i++) {
        const jsg_val *p = &params->u.arr.items[i];
        v[i] = (dq_value){.type = DQ_NULL};
        switch (p->type) {
        case JSG_UNDEFINED:
        case JSG_NULL:
            break;
        case JSG_BOOL:
            v[i] = (dq_value){.type = DQ_INTEGER, .i = p->u.b};
            break;
        case JSG_NUMBER:
            if (p->u.num == floor(p->u.num) && fabs(p->u.num) < 9.2e18)
                v[i] = (dq_value){.type = DQ_INTEGER, .i = (int64_t)p->u.num};
            else
                v[i] = (dq_value){.type = DQ_FLOAT, .f = p->u.num};
            break;
        case JSG_BIGINT:
            v[i] = (dq_value){.type = DQ_INTEGER, .i = p->u.big};
            break;
        case JSG_STRING:
            v[i] = (dq_value){.type = DQ_TEXT,
                              .p = tr_arena_strndup(a, p->u.str.ptr, p->u.str.len),
                              .n = p->u.str.len};
            break;
        case JSG_BYTES:
            v[i] = (dq_value){
                .type = DQ_BLOB, .p = p->u.str.len ? p->u.str.ptr : "", .n = p->u.str.len};
            break;
        default:
            return tr_error_set(err, TR_EINVAL,
                                "SQL parameter %zu: unsupported type (use null, a number, a "
                                "bigint, a string or a Uint8Array)",
                                i + 1);
        }
    }
    *out = v;
    return 0;
}

/* A "not leader" answer (nothing ran) is asked again of the leader found anew, once; a broken
 * connection drops the client (the next statement finds the leader again) and fails this one: a
 * write's outcome is then unknown, and sending it again could apply it twice. */
int guest__sql_remote_run(guest_sql *s, jsg_isolate *iso, bool rows, sqlite3_stmt *stmt,
                          const jsg_val *params, tr_arena *a, jsg_ref *out, tr_error *err)
{
    dq_value *pv;
    size_t np;
    int rc = remote_params(params, a, &pv, &np, err);
    if (rc < 0) return rc;
    const char *sql = sqlite3_sql(stmt);
    dq_rows dr = DQ_ROWS_INIT;
    dq_result res = {0};
    for (int attempt = 0;; attempt++) {
        rc = leader_client(s, err);
        if (rc < 0) return rc;
        if (rows)
            rc = dq_query_sql(s->leader, s->leader_db, sql, pv, np, &dr, err);
        else
            rc = dq_exec_sql(s->leader, s->leader_db, sql, pv, np, &res, err);
        if (rc == 0) break;
        bool not_leader = rc == TR_ESQL && dq_client_failure_code(s->leader) == DQ_CODE_NOT_LEADER;
        /* TR_EINVAL: a parameter the protocol cannot carry, refused before anything was sent */
        if ((rc != TR_ESQL && rc != TR_EINVAL) || not_leader) {
            dq_client_close(s->leader);
            s->leader = NULL;
        }
        if (!(not_leader && attempt == 0)) return rc;
    }
    if (!rows) {
        jsg_val n = jsg_number((double)res.rows_affected);
        return jsg_from_val(iso, &n, out, err);
    }
    size_t limit = jsg_memory_limit(iso), held = 0;
    jsg_val *list = tr_arena_alloc(a, (dr.nrows ? dr.nrows : 1) * sizeof *list);
    for (size_t r = 0; r < dr.nrows && rc == 0; r++) {
        jsg_val *cols = tr_arena_alloc(a, (dr.ncols ? dr.ncols : 1) * sizeof *cols);
        held += sizeof *list + dr.ncols * sizeof *cols;
        for (unsigned c = 0; c < dr.ncols; c++) {
            const dq_value *v = &dr.vals[r * dr.ncols + c];
            switch (v->type) {
            case DQ_INTEGER:
                cols[c] = v->i >= -9007199254740991LL && v->i <= 9007199254740991LL
                              ? jsg_number((double)v->i)
                              : jsg_bigint(v->i);
                break;
            case DQ_FLOAT:
                cols[c] = jsg_number(v->f);
                break;
            case DQ_TEXT:
                cols[c] = jsg_string(tr_arena_strndup(a, v->p, v->n), v->n);
                held += v->n;
                break;
            case DQ_BLOB: {
                char *copy = tr_arena_alloc(a, v->n ? v->n : 1);
                if (v->n) memcpy(copy, v->p, v->n);
                cols[c] = jsg_bytes(copy, v->n);
                held += v->n;
                break;
            }
            default:
                cols[c] = jsg_null();
            }
        }
        list[r] = jsg_array(cols, dr.ncols);
        if (held > limit)
            rc = tr_error_set(err, TR_ELIMIT,
                              "the query's rows take more than the isolate's memory limit of "
                              "%zu MiB (runtime.memory_limit_mb): select fewer rows (LIMIT)",
                              limit >> 20);
    }
    if (rc == 0) {
        jsg_val result = jsg_array(list, dr.nrows);
        rc = jsg_from_val(iso, &result, out, err);
    }
    dq_rows_free(&dr);
    return rc;
}
