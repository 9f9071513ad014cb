/* cluster/status.c: what `trail cluster status` knows of each member's lag: every node reports,
 * once a second, the last Raft log index it holds on disk, into a small replicated database.
 *
 * DESIGN: dqlite 1.11 tells a client nothing about a member's progress (its protocol has no
 * applied or persisted index; queries run on the leader only; DUMP copies a member's database
 * whole, see docs/scaling.md). What each trail process can read without asking libdqlite is its
 * own Raft log in DATA_DIR/cluster/: libraft names closed segments FIRST-LAST, and an open
 * segment ("open-N") is a format word and then batches (two checksum words, an entry count, 16
 * bytes per entry of term, type and length, then the entries' data, each padded to 8 bytes); a
 * preallocated, unused rest is zeros. The last index is the end of the last closed segment (or,
 * with none, the newest snapshot's index) plus the entries of the open segments. Checksums are
 * not verified: a batch still being written may be counted or not; a header that does not fit in
 * the file ends the count.
 *
 * A thread per node (the reporter) wakes at every whole second of the wall clock, reads that
 * index, and writes (id, slot = second % 2, address, index, second, wall time) through the leader
 * into the database CLUSTER_STATUS_DB. All members read their index at the same second, so the
 * status compares the leader's and a member's reports of one second: lag is how many entries the
 * leader had on disk that the member had not. A member that is down stops reporting; its last
 * report ages. The price is one small Raft write per node per second (in a database of its own,
 * so it never holds the application database's write lock). */
#include "cluster/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libraft's on-disk format version of segments. */
#define RAFT_DISK_FORMAT 1
/* Entries of one batch that a segment can hold at most (libraft's 8 MiB segments, 32 bytes an
 * entry at least); more is a damaged header. */
#define RAFT_MAX_BATCH ((64u << 20) / 32)

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += (size_t)n;
    }
    return true;
}

/* The entries in the open segment at path, read from *off on (*off is 0 the first time and is
 * left after the last whole batch). Errors: -errno, TR_EPARSE for another format. */
static int count_open_segment(const char *path, uint64_t *off, uint64_t *entries, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        /* a segment finished or removed between the listing and now */
        if (rc == -ENOENT) return 0;
        return tr_error_set(err, rc, "%s: %s", path, tr_strerror(rc));
    }
    int rc = 0;
    unsigned char word[16];
    if (*off == 0) {
        if (!pread_all(fd, word, 8, 0)) goto out; /* empty: nothing written yet */
        uint64_t format = get_u64(word);
        if (format == 0) goto out; /* prepared, not used yet */
        if (format != RAFT_DISK_FORMAT) {
            rc = tr_error_set(err, TR_EPARSE, "%s: Raft segment format %" PRIu64 ", not %d", path,
                              format, RAFT_DISK_FORMAT);
            goto out;
        }
        *off = 8;
    }
    unsigned char *hdr = NULL;
    size_t hdr_cap = 0;
    for (;;) {
        if (!pread_all(fd, word, 16, *off)) break;
        uint64_t n = get_u64(word + 8);
        if (n == 0 || n > RAFT_MAX_BATCH) break;
        size_t hlen = (size_t)n * 16;
        if (hlen > hdr_cap) {
            hdr = tr_realloc(hdr, hlen);
            hdr_cap = hlen;
        }
        if (!pread_all(fd, hdr, hlen, *off + 16)) break;
        uint64_t data = 0;
        for (uint64_t i = 0; i < n; i++)
            data += ((uint64_t)get_u32(hdr + i * 16 + 12) + 7) & ~(uint64_t)7;
        uint64_t next = *off + 16 + hlen + data;
        /* the batch's last data byte must be in the file, or the batch is not whole yet */
        unsigned char last;
        if (data > 0 && !pread_all(fd, &last, 1, next - 1)) break;
        *off = next;
        *entries += n;
    }
    tr_free(hdr);
out:
    close(fd);
    return rc;
}

/* An open segment's counter, position and entries, kept between reads so that a read parses only
 * what was appended since. */
typedef struct open_seg {
    uint64_t counter, off, entries;
} open_seg;

typedef struct log_scan {
    open_seg seg[8];
    size_t nseg;
} log_scan;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int scan_last_index(const char *dir, log_scan *scan, uint64_t *out, tr_error *err)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = -errno;
        return tr_error_set(err, rc, "%s: %s", dir, tr_strerror(rc));
    }
    uint64_t closed_end = 0, snap = 0, opens[64];
    size_t nopen = 0;
    bool any_closed = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long a, b, c;
        int used = 0;
        if (sscanf(e->d_name, "%llu-%llu%n", &a, &b, &used) == 2 && e->d_name[used] == '\0' &&
            strlen(e->d_name) == 33) {
            any_closed = true;
            if (b > closed_end) closed_end = b;
        } else if (sscanf(e->d_name, "open-%llu%n", &a, &used) == 1 && e->d_name[used] == '\0') {
            if (nopen < TR_ARRAY_LEN(opens)) opens[nopen++] = a;
        } else if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu%n", &a, &b, &c, &used) == 3 &&
                   e->d_name[used] == '\0') {
            if (b > snap) snap = b;
        }
    }
    closedir(d);
    /* As libraft loads its log: open segments follow the closed ones; with none closed, they
     * follow the snapshot. */
    uint64_t last = any_closed ? closed_end : snap;
    qsort(opens, nopen, sizeof opens[0], cmp_u64);
    log_scan next = {0};
    for (size_t i = 0; i < nopen && next.nseg < TR_ARRAY_LEN(next.seg); i++) {
        open_seg s = {.counter = opens[i]};
        for (size_t k = 0; scan && k < scan->nseg; k++)
            if (scan->seg[k].counter == opens[i]) s = scan->seg[k];
        char *path = tr_asprintf("%s/open-%" PRIu64, dir, opens[i]);
        int rc = count_open_segment(path, &s.off, &s.entries, err);
        tr_free(path);
        if (rc < 0) return rc;
        last += s.entries;
        next.seg[next.nseg++] = s;
    }
    if (scan) *scan = next;
    *out = last > snap ? last : snap;
    return 0;
}

int cluster_log_last_index(const char *dir, uint64_t *out, tr_error *err)
{
    return scan_last_index(dir, NULL, out, err);
}

/* ---- the reporter ---- */

struct cluster_reporter {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;          /* guarded by mu */
    dq_client *calling; /* guarded by mu: the client of a call under way, aborted by a stop */
    uint64_t id;
    char *address;
    char *dir; /* DATA_DIR/cluster */
    char **members;
    size_t nmembers;
    dq_client *leader; /* the thread's own */
    uint32_t db;
    log_scan scan;
};

#define REPORT_SQL                                                                               \
    "INSERT INTO members (id, slot, address, log_index, tick, at_ms) VALUES (?, ?, ?, ?, ?, ?) " \
    "ON CONFLICT (id, slot) DO UPDATE SET address = excluded.address, log_index = "              \
    "excluded.log_index, tick = excluded.tick, at_ms = excluded.at_ms"
#define CREATE_SQL                                                                               \
    "CREATE TABLE IF NOT EXISTS members (id INTEGER NOT NULL, slot INTEGER NOT NULL, address "   \
    "TEXT NOT NULL, log_index INTEGER NOT NULL, tick INTEGER NOT NULL, at_ms INTEGER NOT NULL, " \
    "PRIMARY KEY (id, slot))"

static int exec_retrying_busy(cluster_reporter *r, const char *sql, const dq_value *v, size_t n,
                              tr_error *err)
{
    dq_result res;
    int rc = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop;
        r->calling = stop ? NULL : r->leader;
        pthread_mutex_unlock(&r->mu);
        if (stop) return tr_error_set(err, TR_ETIMEDOUT, "the node is stopping");
        rc = dq_exec_sql(r->leader, r->db, sql, v, n, &res, err);
        pthread_mutex_lock(&r->mu);
        r->calling = NULL;
        pthread_mutex_unlock(&r->mu);
        /* another member's report holds the write lock: nothing ran */
        if (rc != TR_ESQL || !dq_client_busy(r->leader)) return rc;
        nanosleep(&(struct timespec){0, (10 + (long)(r->id % 7) * 5) * 1000000}, NULL);
    }
    return rc;
}

static int report(cluster_reporter *r, int64_t tick, uint64_t index, tr_error *err)
{
    if (r->leader == NULL) {
        /* a stop waits for this search: short calls */
        dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
        o.timeout_ms = 1000;
        static const dq_db_opts d = {CLUSTER_STATUS_DB, 0, false, 0};
        int rc = dq_client_open_leader_db((const char *const *)r->members, r->nmembers, &o, 1000,
                                          &d, &r->leader, &r->db, err);
        if (rc < 0) return rc;
        rc = exec_retrying_busy(r, CREATE_SQL, NULL, 0, err);
        if (rc < 0) {
            dq_client_close(r->leader);
            r->leader = NULL;
            return rc;
        }
    }
    dq_value v[6] = {
        {.type = DQ_INTEGER, .i = (int64_t)r->id},
        {.type = DQ_INTEGER, .i = tick % 2},
        {.type = DQ_TEXT, .p = r->address, .n = strlen(r->address)},
        {.type = DQ_INTEGER, .i = (int64_t)index},
        {.type = DQ_INTEGER, .i = tick},
        {.type = DQ_INTEGER, .i = tr_wall_ms()},
    };
    int rc = exec_retrying_busy(r, REPORT_SQL, v, 6, err);
    if (rc < 0) {
        /* a new leader, or none: found again at the next second */
        dq_client_close(r->leader);
        r->leader = NULL;
    }
    return rc;
}

static void *reporter_main(void *arg)
{
    cluster_reporter *r = arg;
    int last_rc = 0;
    for (;;) {
        /* Sleep to the next whole second of the wall clock: every member reads its index then. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct timespec at = {now.tv_sec + 1, 0};
        pthread_mutex_lock(&r->mu);
        while (!r->stop) {
            if (pthread_cond_timedwait(&r->cv, &r->mu, &at) == ETIMEDOUT) break;
        }
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        tr_error err = {0};
        uint64_t index;
        int rc = scan_last_index(r->dir, &r->scan, &index, &err);
        if (rc == 0) rc = report(r, (int64_t)at.tv_sec, index, &err);
        /* Say it once when reporting stops working, and once when it works again. */
        if (rc < 0 && last_rc == 0)
            tr_log_warn("cluster: node %" PRIu64 " cannot report its log index: %s", r->id,
                        err.msg);
        last_rc = rc;
    }
    dq_client_close(r->leader);
    return NULL;
}

int cluster_reporter_start(uint64_t id, const char *address, const char *join, const char *data_dir,
                           cluster_reporter **out, tr_error *err)
{
    cluster_reporter *r = tr_calloc(1, sizeof *r);
    r->id = id;
    r->address = tr_strdup(address);
    r->dir = tr_asprintf("%s/%s", data_dir, CLUSTER_DIR);
    r->members = tr_calloc(1, sizeof *r->members);
    r->members[r->nmembers++] = tr_strdup(address);
    for (const char *p = join ? join : ""; *p;) {
        size_t len = strcspn(p, ",");
        size_t skip = strspn(p, " ");
        if (len > skip) {
            r->members = tr_realloc(r->members, (r->nmembers + 1) * sizeof *r->members);
            r->members[r->nmembers++] = tr_strndup(p + skip, len - skip);
        }
        p += len;
        if (*p == ',') p++;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL); /* CLOCK_REALTIME: the wait is to a wall-clock second */
    int rc = pthread_create(&r->thread, NULL, reporter_main, r);
    if (rc != 0) {
        tr_error_set(err, -rc, "cannot start the cluster reporter: %s", tr_strerror(-rc));
        cluster_reporter_stop(r);
        return -rc;
    }
    r->started = true;
    *out = r;
    return 0;
}

void cluster_reporter_stop(cluster_reporter *r)
{
    if (r == NULL) return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        if (r->calling != NULL) dq_client_abort(r->calling); /* its call fails at once */
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    for (size_t i = 0; i < r->nmembers; i++)
        tr_free(r->members[i]);
    tr_free(r->members);
    tr_free(r->dir);
    tr_free(r->address);
    tr_free(r);
}

/* ---- reading the reports ---- */

int cluster_reports_read(dq_client *leader, cluster_report **out, size_t *n, tr_error *err)
{
    *out = NULL;
    *n = 0;
    uint32_t db;
    int rc = dq_open(leader, CLUSTER_STATUS_DB, &db, err);
    if (rc < 0) return rc;
    dq_rows rows = DQ_ROWS_INIT;
    rc = dq_query_sql(leader, db,
                      "SELECT id, slot, log_index, tick, at_ms FROM members "
                      "WHERE typeof(id) = 'integer' ORDER BY id, tick",
                      NULL, 0, &rows, err);
    if (rc < 0) {
        /* No member has reported yet: the table does not exist. */
        if (rc == TR_ESQL && err && strstr(err->msg, "no such table")) return 0;
        return rc;
    }
    if (rows.ncols != 5) {
        dq_rows_free(&rows);
        return tr_error_set(err, TR_EPARSE, "the status table has %u columns, not 5", rows.ncols);
    }
    cluster_report *r = tr_calloc(rows.nrows ? rows.nrows : 1, sizeof *r);
    size_t k = 0;
    for (size_t i = 0; i < rows.nrows; i++) {
        const dq_value *v = &rows.vals[i * 5];
        bool ints = true;
        for (int c = 0; c < 5; c++)
            ints = ints && v[c].type == DQ_INTEGER;
        if (!ints) continue;
        r[k++] = (cluster_report){
            .id = (uint64_t)v[0].i, .log_index = (uint64_t)v[2].i, .tick = v[3].i, .at_ms = v[4].i};
    }
    dq_rows_free(&rows);
    *out = r;
    *n = k;
    return 0;
}
