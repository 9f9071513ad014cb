/* tests/e2e/cluster_util.c: see cluster_util.h. */
#include "e2e/cluster_util.h"

#include "test.h"
#include "base/base.h"
#include "cluster/cluster.h"
#include "e2e/fixtures.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int cu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

int cu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The node's `trail run` arguments into args (cap 32): its own, then extra. */
static void node_args(const cu_node *n, const char *const *extra, const char **args)
{
    size_t k = 0;
    const char *own[] = {"--cluster-address", n->addr, "-q", "--runtime-threads", "1"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        args[k++] = own[i];
    if (n->join[0]) {
        args[k++] = "--join";
        args[k++] = n->join;
    }
    for (size_t i = 0; extra && extra[i] && k < 31; i++)
        args[k++] = extra[i];
    args[k] = NULL;
}

/* Each node's extra arguments, kept for cu_node_restart() (tests run one at a time). */
static const char *const *node_extra[16];

static int node_slot(const cu_node *n)
{
    const char *p = strrchr(n->dir, 'n');
    int i = p ? atoi(p + 1) : 0;
    return i >= 0 && i < 16 ? i : 0;
}

void cu_node_restart(cu_node *n)
{
    const char *args[32];
    node_args(n, node_extra[node_slot(n)], args);
    if (th_server_start_within(&n->srv, n->dir, args, 90000) < 0)
        test_fail(__FILE__, __LINE__, "node %s did not start again", n->addr);
}

void cu_node_start(cu_node *n, int i, const char *join, const char *const *extra)
{
    snprintf(n->dir, sizeof n->dir, "%s/n%d", test_tmpdir(), i);
    snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", cu_free_port());
    snprintf(n->join, sizeof n->join, "%s", join ? join : "");
    node_extra[node_slot(n)] = extra;
    const char *args[32];
    node_args(n, extra, args);
    /* Joining waits for a leader and for Raft to take the new member; the ASan build on a busy
     * machine is slow at both. */
    if (th_server_start_within(&n->srv, n->dir, args, 90000) < 0)
        test_fail(__FILE__, __LINE__, "node %d did not start", i);
}

void cu_cluster_start(cu_node n[3], const char *const *extra)
{
    cu_node_start(&n[0], 1, NULL, extra);
    cu_node_start(&n[1], 2, n[0].addr, extra);
    char join[200];
    snprintf(join, sizeof join, "%s,%s", n[0].addr, n[1].addr);
    cu_node_start(&n[2], 3, join, extra);
    free(cu_wait_status(n[2].dir, 3, 60000));
}

char *cu_wait_status(const char *dir, int want_voters, int timeout_ms)
{
    const char *args[] = {"cluster", "status", "--data-dir", dir, NULL};
    uint64_t end = tr_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        char *out = NULL, *err = NULL;
        int st = th_run(args, 30000, &out, &err);
        int voters = 0;
        for (const char *p = out; p && (p = strstr(p, " voter")); p++)
            voters++;
        bool leader = out && strstr(out, "(leader)") != NULL;
        if ((st == 0 && voters == want_voters && leader) || tr_now_ns() > end) {
            if (st != 0 || voters != want_voters || !leader)
                test_fail(__FILE__, __LINE__, "status %d, %d voters, output \"%s\", stderr \"%s\"",
                          st, voters, out ? out : "", err ? err : "");
            free(err);
            return out;
        }
        free(out);
        free(err);
        nanosleep(&(struct timespec){0, 300 * 1000000}, NULL);
    }
}

int cu_leader(const cu_node *n, int count)
{
    const char *addrs[16];
    for (int i = 0; i < count && i < 16; i++)
        addrs[i] = n[i].addr;
    dq_client *c = NULL;
    tr_error err = {0};
    if (dq_client_open_leader(addrs, (size_t)count, NULL, 60000, &c, &err) < 0)
        test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
    uint64_t id;
    char *leader = NULL;
    CHECK_EQ(dq_leader(c, &id, &leader, &err), 0);
    int found = -1;
    for (int i = 0; i < count; i++)
        if (strcmp(n[i].addr, leader) == 0) found = i;
    tr_free(leader);
    dq_client_close(c);
    CHECK(found >= 0);
    return found;
}

#define NOTES_SQL                                                        \
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n" \
    "INSERT INTO notes (body) VALUES ('from the migration');\n"

void cu_app_dir_with(const char *dir, const char *component, const char *migration,
                     const char *sql)
{
    char path[900];
    snprintf(path, sizeof path, "%s/wasm/%s.wasm", dir, component);
    fx_build_component(component, path);
    snprintf(path, sizeof path, "mkdir -p '%s/migrations'", dir);
    CHECK_EQ(fx_sh(path), 0);
    snprintf(path, sizeof path, "%s/migrations/%s", dir, migration);
    CHECK_EQ(th_write_file(path, sql, strlen(sql)), 0);
}

void cu_make_leader(const cu_node n[3], int i)
{
    uint64_t want;
    char *addr = NULL;
    tr_error err = {0};
    CHECK_EQ(cluster_id_read(n[i].dir, &want, &addr, &err), 0);
    tr_free(addr);
    const char *all[] = {n[0].addr, n[1].addr, n[2].addr};
    uint64_t t0 = tr_now_ns();
    for (;;) {
        dq_client *c;
        if (dq_client_open_leader(all, 3, NULL, 30000, &c, &err) < 0)
            test_fail(__FILE__, __LINE__, "no leader: %s", err.msg);
        uint64_t id;
        CHECK_EQ(dq_leader(c, &id, &addr, &err), 0);
        tr_free(addr);
        if (id == want) {
            dq_client_close(c);
            return;
        }
        int rc = dq_transfer(c, want, &err);
        dq_client_close(c);
        if (tr_now_ns() - t0 > 90ull * 1000000000u)
            test_fail(__FILE__, __LINE__, "no transfer to node %d: %s", i + 1, err.msg);
        if (rc < 0) {
            struct timespec ts = {0, 300 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

void cu_app_dir(const char *dir)
{
    cu_app_dir_with(dir, "cluster_sql", "0001_notes.sql", NOTES_SQL);
}

th_resp cu_http(int port, const char *method, const char *path, const char *body)
{
    char raw[1024];
    snprintf(raw, sizeof raw,
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, strlen(body), body);
    th_resp r = {0};
    if (th_request(port, raw, &r) < 0)
        test_fail(__FILE__, __LINE__, "%s %s: no answer", method, path);
    return r;
}
