/* Hostile cases for trail's dqlite client (cluster/client.c): what answers on a node's address is
 * untrusted. A fake node on loopback claims a 32 GiB answer, says nothing, drips an answer a byte
 * at a time, or streams rows without end; the client must refuse each within its bounds (the
 * body limit before allocating, the call's deadline as a whole, the values of a result), leave
 * the connection marked unusable, and report a figure. */
#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { FAKE_HUGE, FAKE_SILENT, FAKE_DRIP, FAKE_ENDLESS_ROWS, FAKE_EMPTY_BATCHES };

typedef struct fake_node {
    int listen_fd;
    int port;
    int mode;
    pthread_t thread;
    long sent_batches;
} fake_node;

static bool read_n(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_n(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

static void *fake_run(void *arg)
{
    fake_node *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    uint8_t hs[8], hdr[8];
    /* the handshake, then one request */
    if (!read_n(fd, hs, 8) || !read_n(fd, hdr, 8)) goto out;
    size_t body = ((size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16) * 8;
    char buf[4096];
    while (body > 0) {
        size_t n = body < sizeof buf ? body : sizeof buf;
        if (!read_n(fd, buf, n)) goto out;
        body -= n;
    }
    switch (f->mode) {
    case FAKE_HUGE: {
        uint8_t h[8] = {0xff, 0xff, 0xff, 0xff, DQ_RESP_ROWS};
        write_n(fd, h, 8);
        break;
    }
    case FAKE_SILENT:
        break;
    case FAKE_DRIP: {
        uint8_t h[8] = {8, 0, 0, 0, DQ_RESP_ROWS};
        for (int i = 0; i < 8 && write_n(fd, &h[i], 1); i++)
            nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
        for (int i = 0; i < 64 && write_n(fd, "", 1); i++)
            nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
        break;
    }
    case FAKE_ENDLESS_ROWS:
    case FAKE_EMPTY_BATCHES: {
        /* one column "a", one integer row (or none), "more" marker: forever, until the client
         * goes */
        tr_buf b = TR_BUF_INIT;
        size_t start;
        dq_msg_begin(&b, DQ_RESP_ROWS, &start);
        dq_put_u64(&b, 1);
        dq_put_text(&b, "a");
        if (f->mode == FAKE_ENDLESS_ROWS) {
            dq_put_u64(&b, DQ_INTEGER);
            dq_put_u64(&b, 42);
        }
        dq_put_u64(&b, 0xeeeeeeeeeeeeeeeeULL);
        dq_msg_end(&b, start);
        while (write_n(fd, b.data, b.len))
            f->sent_batches++;
        tr_buf_free(&b);
        break;
    }
    }
    /* Hold the connection until the client closes it. */
    while (read(fd, buf, sizeof buf) > 0) {
    }
out:
    close(fd);
    return NULL;
}

static void fake_start(fake_node *f, int mode)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(f->listen_fd, 4), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    CHECK_EQ(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(fake_node *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Connects to the fake node and runs one query; returns its result and the time it took. */
static int one_query(fake_node *f, const dq_client_opts *o, dq_client **cp, double *ms,
                     tr_error *err)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    CHECK_EQ(dq_client_open(addr, o, cp, err), 0);
    dq_rows rows;
    uint64_t t0 = tr_now_ns();
    int rc = dq_query_sql(*cp, 0, "SELECT 1", NULL, 0, &rows, err);
    *ms = (double)(tr_now_ns() - t0) / 1e6;
    CHECK_EQ(rows.nrows, 0); /* nothing is left to free on an error */
    return rc;
}

TEST_TIMEOUT(hostile_cluster_client_huge_answer, 20)
{
    fake_node f;
    fake_start(&f, FAKE_HUGE);
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    dq_client *c;
    tr_error err = {0};
    double ms;
    long rss0 = max_rss_kib();
    CHECK_EQ(one_query(&f, &o, &c, &ms, &err), TR_ELIMIT);
    CHECK_CONTAINS(err.msg, "over the limit");
    long grew = max_rss_kib() - rss0;
    /* refused from the header: nothing near 32 GiB (nor 64 MiB) was allocated */
    CHECK(grew < 16 * 1024);
    /* the conversation is out of step: later calls fail at once */
    dq_result res;
    CHECK_EQ(dq_exec_sql(c, 0, "SELECT 1", NULL, 0, &res, &err), TR_EIO);
    dq_client_close(c);
    fake_stop(&f);
    test_report("a 32 GiB answer refused from its header in %.1f ms, peak RSS +%ld KiB", ms, grew);
}

TEST_TIMEOUT(hostile_cluster_client_silent_and_dripping_node, 30)
{
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.timeout_ms = 500;
    double silent_ms, drip_ms;
    tr_error err = {0};
    dq_client *c;
    fake_node f;
    fake_start(&f, FAKE_SILENT);
    CHECK_EQ(one_query(&f, &o, &c, &silent_ms, &err), TR_ETIMEDOUT);
    dq_client_close(c);
    fake_stop(&f);
    /* A byte every 100 ms would take 7 s; the deadline bounds the whole call, not each read. */
    fake_start(&f, FAKE_DRIP);
    CHECK_EQ(one_query(&f, &o, &c, &drip_ms, &err), TR_ETIMEDOUT);
    dq_client_close(c);
    fake_stop(&f);
    CHECK(silent_ms >= 450 && silent_ms < 5000);
    CHECK(drip_ms >= 450 && drip_ms < 5000);
    test_report("deadline 500 ms: a silent node took %.0f ms, a dripping one %.0f ms", silent_ms,
                drip_ms);
}

TEST_TIMEOUT(hostile_cluster_client_endless_rows, 30)
{
    fake_node f;
    fake_start(&f, FAKE_ENDLESS_ROWS);
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.max_result_values = 10000;
    dq_client *c;
    tr_error err = {0};
    double ms;
    CHECK_EQ(one_query(&f, &o, &c, &ms, &err), TR_ELIMIT);
    CHECK_CONTAINS(err.msg, "more than 10000 values");
    dq_client_close(c);
    fake_stop(&f);
    CHECK(f.sent_batches >= 10000);
    test_report("endless rows stopped at 10,000 values after %.0f ms (%ld batches sent)", ms,
                f.sent_batches);
}

/* Batches without rows add no values; their bytes are bounded like one answer's. */
TEST_TIMEOUT(hostile_cluster_client_empty_batches, 30)
{
    fake_node f;
    fake_start(&f, FAKE_EMPTY_BATCHES);
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.max_body_bytes = 1 << 20;
    dq_client *c;
    tr_error err = {0};
    double ms;
    CHECK_EQ(one_query(&f, &o, &c, &ms, &err), TR_ELIMIT);
    CHECK_CONTAINS(err.msg, "over the size limit");
    dq_client_close(c);
    fake_stop(&f);
    test_report("empty batches stopped at 1 MiB after %.0f ms (%ld batches sent)", ms,
                f.sent_batches);
}
