/* cluster/node.c: the dqlite node a trail process embeds in cluster mode.
 *
 * DESIGN: libdqlite runs the node on a thread of its own (a libuv loop: Raft, the replicated
 * SQLite databases, and the server end of the wire protocol on the node's address). This file
 * gives it an identity and a place: the node's id and address are kept in DATA_DIR/cluster/node-id
 * and Raft's log and snapshots in DATA_DIR/cluster/. The first node of a cluster has id 1, which
 * dqlite bootstraps into a one-member cluster on its first start; a node started with --join gets a
 * random id and, unless the cluster already has it as a voter, asks the leader (found through any
 * member it was given) to ADD it and then ASSIGN it the voter role. Each step is idempotent, so a
 * node that died half-way joins on its next start; the membership changes are retried until the
 * deadline because Raft refuses a change while another is in progress (nodes joining together).
 *
 * trail's SQL functions are registered for every SQLite connection before the node starts, so the
 * node's connections, which run on trail's SQLite, have them (docs/scaling.md, "Two SQLites"). */
#include "cluster/cluster.h"

#include <dqlite.h>
#include <errno.h>
#include <sqlite3.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db.h"

struct cluster_node {
    dqlite_node *node;
    uint64_t id;
    cluster_reporter *reporter; /* this node's log index, once a second (status.c) */
};

uint64_t cluster_node_id(const cluster_node *n)
{
    return n->id;
}

int cluster_id_read(const char *data_dir, uint64_t *id, char **address, tr_error *err)
{
    char *path = tr_asprintf("%s/%s", data_dir, CLUSTER_ID_FILE);
    tr_buf text = TR_BUF_INIT;
    tr_error e = {0};
    int rc = tr_read_file(path, 4096, &text, &e);
    if (rc < 0) {
        if (rc == -ENOENT)
            tr_error_set(err, rc, "%s does not exist: no cluster node was started in %s", path,
                         data_dir);
        else
            tr_error_set(err, rc, "%s", e.msg);
        goto out;
    }
    char addr[300];
    unsigned long long v;
    char tail;
    if (sscanf(text.data, "%llu %299s %c", &v, addr, &tail) != 2 || v == 0) {
        rc = tr_error_set(err, TR_EPARSE, "%s: expected \"ID ADDRESS\"", path);
        goto out;
    }
    *id = v;
    *address = tr_strdup(addr);
out:
    tr_buf_free(&text);
    tr_free(path);
    return rc;
}

/* The node's identity: read from the id file, or chosen and written on the first start. */
static int identity(const cluster_opts *o, bool joining, uint64_t *id, tr_error *err)
{
    char *addr = NULL;
    tr_error e = {0};
    int rc = cluster_id_read(o->data_dir, id, &addr, &e);
    if (rc == 0) {
        bool same = strcmp(addr, o->address) == 0;
        if (!same)
            rc = tr_error_set(err, TR_ECONFIG,
                              "the cluster node in %s/%s has address %s, not %s (the other "
                              "members know it by that address)",
                              o->data_dir, CLUSTER_DIR, addr, o->address);
        tr_free(addr);
        return rc;
    }
    if (rc != -ENOENT) return tr_error_set(err, rc, "%s", e.msg);
    /* Id 1 bootstraps a cluster; a joining node must not have it. */
    uint64_t v = 1;
    while (joining && v <= 1)
        v = dqlite_generate_node_id(o->address);
    char *path = tr_asprintf("%s/%s", o->data_dir, CLUSTER_ID_FILE);
    char line[400];
    int len = snprintf(line, sizeof line, "%" PRIu64 " %s\n", v, o->address);
    rc = tr_write_file_atomic(path, line, (size_t)len, err);
    tr_free(path);
    if (rc == 0) *id = v;
    return rc;
}

/* Splits the comma-separated list into an owned array of owned strings. */
static char **split_list(const char *list, size_t *n)
{
    char **out = NULL;
    *n = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t skip = strspn(p, " ");
        if (len > skip) {
            size_t end = len;
            while (end > skip && p[end - 1] == ' ')
                end--;
            out = tr_realloc(out, (*n + 1) * sizeof *out);
            out[(*n)++] = tr_strndup(p + skip, end - skip);
        }
        p += len;
        if (*p == ',') p++;
    }
    return out;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr_free(list[i]);
    tr_free(list);
}

/* SQLite's allocator, with every request rounded up to 8 bytes. libdqlite 1.11 grows a
 * transaction's frame array with sqlite3_realloc64(tx, sizeof *tx * n + 1) (the parentheses are
 * missing), so its first array is 1 byte and the first frame pointer is written 7 bytes past it.
 * SQLite rounds the size up itself only when it keeps memory statistics, which trail turns off
 * (db/db.c); glibc's smallest block hides the overflow, an allocator that gives exactly what was
 * asked (AddressSanitizer's: the node crashed on the first write) does not. Rounding here gives
 * libdqlite the 8 bytes it writes, for one addition per allocation. */
static sqlite3_mem_methods sqlite_mem;

static void *mem_malloc_rounded(int n)
{
    return sqlite_mem.xMalloc((n + 7) & ~7);
}

static int round_rc;

static void round_allocations_once(void)
{
    /* Must precede sqlite3_initialize(): SQLite refuses (SQLITE_MISUSE) afterwards. */
    sqlite3_mem_methods m;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &m) != SQLITE_OK) {
        round_rc = TR_ESQL;
        return;
    }
    sqlite_mem = m;
    m.xMalloc = mem_malloc_rounded;
    round_rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK ? 0 : TR_ESQL;
}

static int round_sqlite_allocations(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, round_allocations_once);
    return round_rc;
}

/* libdqlite sends a value of a column declared DATETIME, DATE or TIMESTAMP as a date, and of one
 * declared BOOLEAN as a boolean, after asserting that the value has the type it expects: a REAL
 * in a DATETIME column aborted the process, a NULL there became the text "". It asks SQLite for
 * the declared type through sqlite3_column_decltype(), which it binds, like the rest of the API,
 * to trail's SQLite (docs/scaling.md, "Two SQLites"). So trail defines that function here, over
 * SQLite's own (renamed by SQLITE_OPTS in the Makefile), and does not report those four declared
 * types: dqlite then sends every value as the SQLite value it is, which is what trail's client
 * decodes anyway. Nothing in trail asks for declared types; this file is linked wherever the node
 * can run, since it defines cluster_node_start(). */
const char *sqlite3_column_decltype_declared(sqlite3_stmt *st, int i);

const char *sqlite3_column_decltype(sqlite3_stmt *st, int i)
{
    const char *d = sqlite3_column_decltype_declared(st, i);
    if (d == NULL) return NULL;
    static const char *const hidden[] = {"DATETIME", "DATE", "TIMESTAMP", "BOOLEAN"};
    for (size_t k = 0; k < TR_ARRAY_LEN(hidden); k++)
        if (strcasecmp(d, hidden[k]) == 0) return NULL;
    return d;
}

/* One attempt at becoming a voter: 0 when this node is one (now or already). */
static int join_once(uint64_t id, const char *address, char **members, size_t nmembers,
                     uint32_t timeout_ms, tr_error *err)
{
    dq_client_opts copts = DQ_CLIENT_OPTS_DEFAULT;
    /* Promotion waits for the new node to catch up with the log. */
    copts.timeout_ms = timeout_ms;
    dq_client *c;
    int rc =
        dq_client_open_leader((const char *const *)members, nmembers, &copts, timeout_ms, &c, err);
    if (rc < 0) return rc;
    dq_node_info *nodes = NULL;
    size_t n = 0;
    rc = dq_cluster(c, &nodes, &n, err);
    if (rc < 0) goto out;
    const dq_node_info *me = NULL;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].id == id) me = &nodes[i];
    if (me == NULL) {
        rc = dq_add(c, id, address, err);
        if (rc < 0) goto out;
    }
    if (me == NULL || me->role != DQ_ROLE_VOTER) rc = dq_assign(c, id, DQ_ROLE_VOTER, err);
out:
    dq_nodes_free(nodes, n);
    dq_client_close(c);
    return rc;
}

static int join(uint64_t id, const cluster_opts *o, tr_error *err)
{
    size_t n;
    char **members = split_list(o->join, &n);
    uint32_t timeout_ms = o->join_timeout_ms ? o->join_timeout_ms : 30000;
    uint64_t deadline = tr_now_ns() + (uint64_t)timeout_ms * 1000000u;
    tr_error last = {0};
    int rc;
    for (;;) {
        uint64_t now = tr_now_ns();
        uint32_t left = now >= deadline ? 0 : (uint32_t)((deadline - now) / 1000000u);
        rc = join_once(id, o->address, members, n, left ? left : 1, &last);
        if (rc == 0 || tr_now_ns() >= deadline) break;
        nanosleep(&(struct timespec){0, 200 * 1000000}, NULL);
    }
    if (rc < 0)
        rc = tr_error_set(err, TR_ETIMEDOUT, "cluster node %s could not join through %s: %s",
                          o->address, o->join, last.msg);
    free_list(members, n);
    return rc;
}

int cluster_node_start(const cluster_opts *o, cluster_node **out, tr_error *err)
{
    const char *colon = strrchr(o->address, ':');
    if (colon == NULL || colon == o->address || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return tr_error_set(err, TR_ECONFIG, "cluster address \"%s\" is not HOST:PORT", o->address);
    bool joining = o->join != NULL && o->join[0] != '\0';
    char *dir = tr_asprintf("%s/%s", o->data_dir, CLUSTER_DIR);
    int rc = 0;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        tr_error_set(err, rc, "cannot create %s: %s", dir, tr_strerror(rc));
        goto out;
    }
    uint64_t id;
    rc = identity(o, joining, &id, err);
    if (rc < 0) goto out;
    if (round_sqlite_allocations() < 0) {
        rc = tr_error_set(err, TR_ESQL,
                          "SQLite was set up before the cluster node could set "
                          "its allocator");
        goto out;
    }
    if (db_functions_register_everywhere() < 0 || cluster_limit_register_everywhere() < 0) {
        rc = tr_error_set(err, TR_ESQL, "cannot register trail's SQL functions for the cluster");
        goto out;
    }
    dqlite_node *node = NULL;
    int drc = dqlite_node_create(id, o->address, dir, &node);
    if (drc != 0) {
        rc = tr_error_set(err, TR_EIO, "dqlite node %s in %s: %s", o->address, dir,
                          node ? dqlite_node_errmsg(node) : "out of memory");
        if (node) dqlite_node_destroy(node);
        goto out;
    }
    drc = dqlite_node_set_bind_address(node, o->address);
    if (drc == 0) drc = dqlite_node_start(node);
    if (drc != 0) {
        rc = tr_error_set(err, TR_EIO, "dqlite node %s: %s", o->address, dqlite_node_errmsg(node));
        dqlite_node_destroy(node);
        goto out;
    }
    if (joining) {
        rc = join(id, o, err);
        if (rc < 0) {
            dqlite_node_stop(node);
            dqlite_node_destroy(node);
            goto out;
        }
    }
    cluster_node *n = tr_calloc(1, sizeof *n);
    n->node = node;
    n->id = id;
    rc = cluster_reporter_start(id, o->address, o->join, o->data_dir, &n->reporter, err);
    if (rc < 0) {
        tr_free(n);
        dqlite_node_stop(node);
        dqlite_node_destroy(node);
        goto out;
    }
    *out = n;
    tr_log_info("cluster: node %" PRIu64 " on %s (%s)", id, o->address,
                joining ? "joined" : "first member");
out:
    tr_free(dir);
    return rc;
}

void cluster_node_stop(cluster_node *n)
{
    if (n == NULL) return;
    cluster_reporter_stop(n->reporter);
    dqlite_node_stop(n->node);
    dqlite_node_destroy(n->node);
    tr_free(n);
}
