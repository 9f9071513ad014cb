/* jobs/cluster.c: cluster mode's job runs: each due run claimed in the cluster's _job_runs before
 * it runs, and every run's result written there, through the leader (see jobs.h).
 *
 * DESIGN: one thread per node owns a blocking dqlite client to the leader and works through a
 * queue of operations: claims (from the scheduler thread) and records (from the workers, when a
 * run ends). Neither the scheduler nor a worker ever waits on the network: a claim's answer comes
 * back through its callback, on this thread, which posts the run to a worker or tells the
 * scheduler that the slot is not this node's.
 *
 * A claim is an INSERT of the row (component, job, due_at, node) into the cluster's _job_runs,
 * whose UNIQUE index on (component, job, due_at) lets exactly one node's insert commit. due_at is
 * the schedule's slot (Unix seconds), not the claim's time, so nodes whose clocks differ a little
 * claim the same slot. An insert that fails on the index is the slot of another node, unless it
 * is this node's own: an earlier attempt whose answer was lost (the leader died after Raft
 * committed it) is found by reading the row back, and then the run is this node's. A claim that
 * cannot be made within JOB_CLAIM_WAIT_MS of the scheduler's request (no leader during an
 * election, the cluster unreachable, the queue held up by a record waiting for a leader) is not
 * made: the slot is skipped, with a warning, because a run that is not claimed could run on two
 * nodes. So every slot runs at most once in the cluster, and once when a leader is there.
 *
 * Records (the end of a claimed run, a manual run) are tried for up to JOB_RECORD_WAIT_MS (those
 * still queued when the node stops: JOB_FLUSH_WAIT_MS in all), then dropped with a warning: the run
 * has happened, only its record is lost (a claimed row then stays "running"). An update is
 * idempotent and tried again after any failure; the insert of a manual run is tried again only when
 * it surely did not happen (no connection, "not leader"). */
#include "jobs/jobs.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "guest/guest.h"

/* How long a claim may look for a leader before its slot is skipped. */
#define JOB_CLAIM_WAIT_MS 4000
/* How long a run's record may wait for a leader before it is dropped. */
#define JOB_RECORD_WAIT_MS 15000
/* How long the records still queued when the node stops may take, together. */
#define JOB_FLUSH_WAIT_MS 5000
/* Each request's deadline on the client: a leader that stopped answering is left after this. */
#define JOB_CLIENT_TIMEOUT_MS 3000
/* The most members the thread asks for the leader. */
#define JOB_MAX_ADDRS 16

const char JOB_CLUSTER_DDL[] =
    "CREATE TABLE IF NOT EXISTS _job_runs (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  job         TEXT NOT NULL,\n"
    "  component   TEXT NOT NULL,\n"
    "  trigger     TEXT NOT NULL,\n"
    "  started_at  INTEGER NOT NULL,\n"
    "  duration_ms INTEGER,\n"
    "  ok          INTEGER,\n"
    "  error       TEXT,\n"
    "  due_at      INTEGER,\n" /* the slot (Unix seconds) of a scheduled run; NULL: manual */
    "  node        TEXT\n"     /* the id of the node that ran it (decimal) */
    ") STRICT;\n"
    "CREATE INDEX IF NOT EXISTS _job_runs__job ON _job_runs (job, started_at);\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS _job_runs__slot ON _job_runs (component, job, due_at);\n";

enum { OP_CLAIM, OP_END, OP_MANUAL };

typedef struct job_op {
    struct job_op *next;
    int kind;              /* OP_* */
    char *component, *job; /* OP_CLAIM, OP_MANUAL */
    int64_t due_s;         /* OP_CLAIM */
    uint64_t queued_ns;    /* OP_CLAIM: when the scheduler asked (its deadline counts from it) */
    job_claim_fn fn;       /* OP_CLAIM */
    void *ud;
    int64_t row;         /* OP_END */
    int64_t started_ms;  /* OP_MANUAL */
    int64_t duration_ms; /* OP_END, OP_MANUAL */
    bool ok;
    char *error; /* NULL: none */
} job_op;

struct job_cluster {
    pthread_t thread;
    pthread_mutex_t mu; /* guards the fields up to `flush_deadline_ns` */
    pthread_cond_t cv;
    job_op *head, *tail;
    bool stop;                  /* end the thread once the queue is empty (records) */
    bool no_claims;             /* claims are answered "not this node's" without asking */
    bool claiming;              /* the thread is inside a claim's callback or request */
    uint64_t flush_deadline_ns; /* set with stop: the queued records' common deadline */
    /* The thread's own (no lock): */
    dq_client *c; /* NULL: not connected */
    uint32_t db;
    char *addrs[JOB_MAX_ADDRS];
    size_t naddrs;
    char node[24]; /* this node's id, decimal */
};

static void op_free(job_op *op)
{
    tr_free(op->component);
    tr_free(op->job);
    tr_free(op->error);
    tr_free(op);
}

static void push(job_cluster *jc, job_op *op)
{
    pthread_mutex_lock(&jc->mu);
    if (jc->tail)
        jc->tail->next = op;
    else
        jc->head = op;
    jc->tail = op;
    pthread_cond_broadcast(&jc->cv); /* job_cluster_stop_claims() may wait on it too */
    pthread_mutex_unlock(&jc->mu);
}

static void disconnect(job_cluster *jc)
{
    dq_client_close(jc->c);
    jc->c = NULL;
}

static bool past(uint64_t deadline_ns)
{
    return tr_now_ns() >= deadline_ns;
}

static void pause_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* A client to the leader with the database open, found before deadline_ns. */
static int connect_leader(job_cluster *jc, uint64_t deadline_ns, tr_error *err)
{
    if (jc->c) return 0;
    uint64_t now = tr_now_ns();
    if (now >= deadline_ns) return tr_error_set(err, TR_ETIMEDOUT, "no leader found in time");
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.timeout_ms = JOB_CLIENT_TIMEOUT_MS;
    uint32_t wait_ms = (uint32_t)((deadline_ns - now) / 1000000u);
    static const dq_db_opts d = {GUEST_CLUSTER_DB, 0, false, 0};
    return dq_client_open_leader_db((const char *const *)jc->addrs, jc->naddrs, &o,
                                    wait_ms ? wait_ms : 1, &d, &jc->c, &jc->db, err);
}

/* The SQLite primary code of the last failure answer (0: none). */
static unsigned primary(const job_cluster *jc)
{
    return jc->c ? (unsigned)(dq_client_failure_code(jc->c) & 0xff) : 0;
}

/* After a failed request: whether nothing happened on the leader ("not leader", busy). The
 * connection is dropped unless the failure was an ordinary SQL error on a working leader. */
static bool surely_not_done(job_cluster *jc, int rc)
{
    if (rc != TR_ESQL) {
        disconnect(jc); /* broken or timed out: the outcome is unknown */
        return false;
    }
    uint64_t code = dq_client_failure_code(jc->c);
    if (code == DQ_CODE_NOT_LEADER) {
        disconnect(jc);
        return true;
    }
    if (code == DQ_CODE_LEADERSHIP_LOST) {
        disconnect(jc);
        return false;
    }
    unsigned p = (unsigned)(code & 0xff);
    return p == 5 /* SQLITE_BUSY */ || p == 6 /* SQLITE_LOCKED */;
}

/* The slot's row: 1 with its id in *row when this node holds it, 0 when another node does or
 * none does (*row 0 then, *other set when another node does), negative on an error. */
static int slot_owner(job_cluster *jc, const job_op *op, int64_t *row, bool *other, tr_error *err)
{
    dq_value p[3] = {{.type = DQ_TEXT, .p = op->component, .n = strlen(op->component)},
                     {.type = DQ_TEXT, .p = op->job, .n = strlen(op->job)},
                     {.type = DQ_INTEGER, .i = op->due_s}};
    dq_rows rows = DQ_ROWS_INIT;
    int rc = dq_query_sql(jc->c, jc->db,
                          "SELECT id, node FROM _job_runs WHERE component = ? AND job = ? AND "
                          "due_at = ?",
                          p, 3, &rows, err);
    if (rc < 0) return rc;
    *row = 0;
    *other = false;
    if (rows.nrows > 0 && rows.ncols == 2) {
        const dq_value *id = &rows.vals[0], *node = &rows.vals[1];
        bool mine = node->type == DQ_TEXT && strcmp(node->p, jc->node) == 0;
        if (mine && id->type == DQ_INTEGER) {
            *row = id->i;
            rc = 1;
        } else {
            *other = true;
        }
    }
    dq_rows_free(&rows);
    return rc;
}

/* One claim: the row id when this node won the slot, 0 when it did not or could not claim it. */
static int64_t claim(job_cluster *jc, const job_op *op)
{
    /* From the request, not from now: a claim that waited behind a slow record is not made
     * long after its slot. */
    uint64_t deadline = op->queued_ns + (uint64_t)JOB_CLAIM_WAIT_MS * 1000000u;
    tr_error err = {0};
    for (;;) {
        if (connect_leader(jc, deadline, &err) < 0) break;
        dq_value p[5] = {{.type = DQ_TEXT, .p = op->job, .n = strlen(op->job)},
                         {.type = DQ_TEXT, .p = op->component, .n = strlen(op->component)},
                         {.type = DQ_INTEGER, .i = tr_wall_ms()},
                         {.type = DQ_INTEGER, .i = op->due_s},
                         {.type = DQ_TEXT, .p = jc->node, .n = strlen(jc->node)}};
        dq_result res;
        int rc = dq_exec_sql(jc->c, jc->db,
                             "INSERT INTO _job_runs (job, component, trigger, started_at, due_at, "
                             "node) VALUES (?, ?, 'schedule', ?, ?, ?)",
                             p, 5, &res, &err);
        if (rc == 0) return (int64_t)res.last_insert_id;
        if (rc == TR_ESQL && primary(jc) == 19 /* SQLITE_CONSTRAINT */) {
            /* Another node's, or ours from an attempt whose answer was lost. */
            int64_t row;
            bool other;
            rc = slot_owner(jc, op, &row, &other, &err);
            if (rc == 1) return row;
            if (rc == 0 && other) return 0;
        }
        (void)surely_not_done(jc, rc);
        if (past(deadline)) break;
        pause_ms(50);
    }
    tr_log_warn("job '%s' of %s: the run due at %" PRId64 " is skipped: it could not be claimed "
                "in the cluster within %d ms (%s)",
                op->job, op->component, op->due_s, JOB_CLAIM_WAIT_MS,
                err.msg[0] ? err.msg : "no leader");
    return 0;
}

/* A record's deadline: its own wait, or what is left of the flush when the node stops. */
static uint64_t record_deadline(uint64_t flush_deadline_ns)
{
    uint64_t own = tr_now_ns() + (uint64_t)JOB_RECORD_WAIT_MS * 1000000u;
    return flush_deadline_ns && flush_deadline_ns < own ? flush_deadline_ns : own;
}

static void record_end(job_cluster *jc, const job_op *op, uint64_t deadline)
{
    tr_error err = {0};
    for (;;) {
        if (connect_leader(jc, deadline, &err) < 0) break;
        dq_value p[4] = {{.type = DQ_INTEGER, .i = op->duration_ms},
                         {.type = DQ_INTEGER, .i = op->ok},
                         {.type = DQ_NULL},
                         {.type = DQ_INTEGER, .i = op->row}};
        if (op->error) p[2] = (dq_value){.type = DQ_TEXT, .p = op->error, .n = strlen(op->error)};
        dq_result res;
        int rc = dq_exec_sql(jc->c, jc->db,
                             "UPDATE _job_runs SET duration_ms = ?, ok = ?, error = ? WHERE id = ?",
                             p, 4, &res, &err);
        if (rc == 0) return;
        (void)surely_not_done(jc, rc); /* an update may be made twice: always try again */
        if (past(deadline)) break;
        pause_ms(100);
    }
    tr_log_warn("cannot record the end of a job run in the cluster (row %" PRId64 "): %s", op->row,
                err.msg);
}

static void record_manual(job_cluster *jc, const job_op *op, uint64_t deadline)
{
    tr_error err = {0};
    for (;;) {
        if (connect_leader(jc, deadline, &err) < 0) break;
        dq_value p[7] = {{.type = DQ_TEXT, .p = op->job, .n = strlen(op->job)},
                         {.type = DQ_TEXT, .p = op->component, .n = strlen(op->component)},
                         {.type = DQ_INTEGER, .i = op->started_ms},
                         {.type = DQ_INTEGER, .i = op->duration_ms},
                         {.type = DQ_INTEGER, .i = op->ok},
                         {.type = DQ_NULL},
                         {.type = DQ_TEXT, .p = jc->node, .n = strlen(jc->node)}};
        if (op->error) p[5] = (dq_value){.type = DQ_TEXT, .p = op->error, .n = strlen(op->error)};
        dq_result res;
        int rc = dq_exec_sql(jc->c, jc->db,
                             "INSERT INTO _job_runs (job, component, trigger, started_at, "
                             "duration_ms, ok, error, node) VALUES (?, ?, 'manual', ?, ?, ?, ?, ?)",
                             p, 7, &res, &err);
        if (rc == 0) return;
        /* Not again when it may have been committed: one record, not two. */
        if (!surely_not_done(jc, rc) || past(deadline)) break;
        pause_ms(100);
    }
    tr_log_warn("job '%s' of %s: the manual run may not be recorded in the cluster: %s", op->job,
                op->component, err.msg[0] ? err.msg : "no leader");
}

static void *cluster_main(void *arg)
{
    job_cluster *jc = arg;
    pthread_mutex_lock(&jc->mu);
    for (;;) {
        job_op *op = jc->head;
        if (op == NULL) {
            if (jc->stop) break;
            pthread_cond_wait(&jc->cv, &jc->mu);
            continue;
        }
        jc->head = op->next;
        if (jc->head == NULL) jc->tail = NULL;
        bool no_claims = jc->no_claims;
        uint64_t flush_deadline = jc->flush_deadline_ns;
        if (op->kind == OP_CLAIM) jc->claiming = true;
        pthread_mutex_unlock(&jc->mu);
        if (op->kind == OP_CLAIM) {
            int64_t row = no_claims ? 0 : claim(jc, op);
            op->fn(op->ud, row);
        } else if (op->kind == OP_END) {
            record_end(jc, op, record_deadline(flush_deadline));
        } else {
            record_manual(jc, op, record_deadline(flush_deadline));
        }
        op_free(op);
        pthread_mutex_lock(&jc->mu);
        jc->claiming = false;
        pthread_cond_broadcast(&jc->cv);
    }
    pthread_mutex_unlock(&jc->mu);
    disconnect(jc);
    return NULL;
}

int job_cluster_start(const char *const *addresses, size_t n, uint64_t node_id, job_cluster **out,
                      tr_error *err)
{
    assert(n > 0);
    job_cluster *jc = tr_calloc(1, sizeof *jc);
    for (size_t i = 0; i < n && i < JOB_MAX_ADDRS; i++)
        jc->addrs[jc->naddrs++] = tr_strdup(addresses[i]);
    snprintf(jc->node, sizeof jc->node, "%" PRIu64, node_id);
    pthread_mutex_init(&jc->mu, NULL);
    pthread_cond_init(&jc->cv, NULL);
    int rc = pthread_create(&jc->thread, NULL, cluster_main, jc);
    if (rc != 0) {
        jc->stop = true;
        job_cluster_free(jc);
        return tr_error_set(err, -rc, "cannot start the jobs' cluster thread: %s", strerror(rc));
    }
    *out = jc;
    return 0;
}

const char *job_cluster_node(const job_cluster *jc)
{
    return jc->node;
}

void job_cluster_claim(job_cluster *jc, const char *component, const char *job, int64_t due_s,
                       job_claim_fn fn, void *ud)
{
    job_op *op = tr_calloc(1, sizeof *op);
    op->kind = OP_CLAIM;
    op->component = tr_strdup(component);
    op->job = tr_strdup(job);
    op->due_s = due_s;
    op->queued_ns = tr_now_ns();
    op->fn = fn;
    op->ud = ud;
    push(jc, op);
}

void job_cluster_record_end(job_cluster *jc, int64_t row, int64_t duration_ms, bool ok,
                            const char *error)
{
    job_op *op = tr_calloc(1, sizeof *op);
    op->kind = OP_END;
    op->row = row;
    op->duration_ms = duration_ms;
    op->ok = ok;
    op->error = error ? tr_strdup(error) : NULL;
    push(jc, op);
}

void job_cluster_record_manual(job_cluster *jc, const char *component, const char *job,
                               int64_t started_ms, int64_t duration_ms, bool ok, const char *error)
{
    job_op *op = tr_calloc(1, sizeof *op);
    op->kind = OP_MANUAL;
    op->component = tr_strdup(component);
    op->job = tr_strdup(job);
    op->started_ms = started_ms;
    op->duration_ms = duration_ms;
    op->ok = ok;
    op->error = error ? tr_strdup(error) : NULL;
    push(jc, op);
}

void job_cluster_stop_claims(job_cluster *jc)
{
    if (jc == NULL) return;
    pthread_mutex_lock(&jc->mu);
    jc->no_claims = true;
    /* Queued claims are taken out and answered here, without asking the cluster. */
    job_op *taken = NULL, **link = &jc->head;
    jc->tail = NULL;
    while (*link) {
        job_op *op = *link;
        if (op->kind == OP_CLAIM) {
            *link = op->next;
            op->next = taken;
            taken = op;
        } else {
            jc->tail = op;
            link = &op->next;
        }
    }
    while (jc->claiming)
        pthread_cond_wait(&jc->cv, &jc->mu);
    pthread_mutex_unlock(&jc->mu);
    while (taken) {
        job_op *op = taken;
        taken = op->next;
        op->fn(op->ud, 0);
        op_free(op);
    }
}

void job_cluster_free(job_cluster *jc)
{
    if (jc == NULL) return;
    pthread_mutex_lock(&jc->mu);
    bool started = !jc->stop;
    jc->stop = true;
    jc->no_claims = true;
    jc->flush_deadline_ns = tr_now_ns() + (uint64_t)JOB_FLUSH_WAIT_MS * 1000000u;
    pthread_cond_broadcast(&jc->cv);
    pthread_mutex_unlock(&jc->mu);
    if (started) pthread_join(jc->thread, NULL);
    assert(jc->head == NULL);
    for (size_t i = 0; i < jc->naddrs; i++)
        tr_free(jc->addrs[i]);
    pthread_cond_destroy(&jc->cv);
    pthread_mutex_destroy(&jc->mu);
    tr_free(jc);
}
