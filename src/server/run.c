/* server/run.c: `trail run`: the data directory, migrations, the workers, job launching, and
 * graceful shutdown.
 *
 * DESIGN: start-up is sequential on the main thread and fails with exit status 1 and a message:
 * options (cli/cmd_run.c parsed them), data directory, config file (flags override it), listeners,
 * database + migrations, router, workers. The listeners are created here, before any worker, one
 * per worker on each address of the host (localhost: 127.0.0.1 and ::1): binding the first one
 * resolves port 0, and the others bind the same port with SO_REUSEPORT, so the printed address is
 * exact and bind errors come before the listening line. The control socket (control.c) is bound
 * before any thread starts and answers once the workers run. The main thread then only waits for
 * SIGINT/SIGTERM (blocked in every thread, taken with sigwait) and tells each worker to drain. */
#include "server/server.h"
#include "server/server_internal.h"

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/base.h"
#include "cluster/appdb.h"
#include "cluster/cluster.h"
#include "component/component.h"
#include "config/config.h"
#include "db/db.h"
#include "guest/fs.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "kv/kv.h"
#include "records/records.h"
#include "worker/worker.h"

/* Splits "HOST:PORT" / "[V6]:PORT" into host and port. Returns 0 or -1. */
static int split_address(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    const char *h = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (rb == NULL || rb[1] != ':') return -1;
        h = addr + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) return -1;
        hl = (size_t)(colon - addr);
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) >= pcap || hl >= hcap) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    if (atol(p) > 65535) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, p);
    return 0;
}

/* reuseport: join a group of listeners on the same port (our workers). */
static int listen_on(const struct sockaddr *sa, socklen_t len, bool reuseport, int *out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, 4096) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* The addresses one server listens on, and its listeners: fds[worker][address]. */
typedef struct listeners {
    struct sockaddr_storage addr[HTTP_MAX_LISTENERS];
    socklen_t addr_len[HTTP_MAX_LISTENERS];
    int naddr;
    int fds[SERVER_MAX_WORKERS][HTTP_MAX_LISTENERS]; /* -1 once a worker owns it */
    int nworkers;
    int port;
    char shown[300]; /* the URL's host part: "127.0.0.1", "[::1]", "localhost" */
    char list[200];  /* the addresses for a name: "127.0.0.1, ::1"; empty otherwise */
    bool named;      /* the host is a name, not a numeric address */
} listeners;

static bool is_numeric_host(const char *host)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (res) freeaddrinfo(res);
    return g == 0;
}

static void add_addr(listeners *ls, const struct addrinfo *ai)
{
    for (int i = 0; i < ls->naddr; i++)
        if (ls->addr_len[i] == ai->ai_addrlen &&
            memcmp(&ls->addr[i], ai->ai_addr, ai->ai_addrlen) == 0)
            return;
    if (ls->naddr == HTTP_MAX_LISTENERS || ai->ai_addrlen > sizeof ls->addr[0]) return;
    memcpy(&ls->addr[ls->naddr], ai->ai_addr, ai->ai_addrlen);
    ls->addr_len[ls->naddr++] = (socklen_t)ai->ai_addrlen;
}

/* Where `host` listens: a numeric address (or "": every IPv4 address) is that address only;
 * "localhost" is 127.0.0.1 and ::1, whatever /etc/hosts says (RFC 6761: clients such as
 * browsers try both); another name is every address it resolves to. */
static int resolve(const char *host, const char *port, listeners *ls, tr_error *err)
{
    static const char *const loopbacks[] = {"127.0.0.1", "::1"};
    bool localhost = strcasecmp(host, "localhost") == 0;
    bool numeric = host[0] == '\0' || is_numeric_host(host);
    size_t nq = localhost ? 2 : 1;
    for (size_t q = 0; q < nq; q++) {
        const char *name = localhost ? loopbacks[q] : host[0] ? host : "0.0.0.0";
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int g = getaddrinfo(name, port, &hints, &res);
        if (g != 0)
            return tr_error_set(err, TR_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(g));
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) add_addr(ls, ai);
        freeaddrinfo(res);
    }
    if (ls->naddr == 0) return tr_error_set(err, TR_EINVAL, "'%s' names no IP address", host);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(ls->shown, sizeof ls->shown, "%s%s%s", v6 ? "[" : "", host[0] ? host : "0.0.0.0",
             v6 ? "]" : "");
    ls->named = !numeric;
    return 0;
}

static void addr_text(const listeners *ls, int i, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    getnameinfo((const struct sockaddr *)&ls->addr[i], ls->addr_len[i], out, (socklen_t)cap,
                NULL, 0, NI_NUMERICHOST);
}

/* For a name: "127.0.0.1, ::1", the addresses it listens on. */
static void describe(listeners *ls)
{
    ls->list[0] = '\0';
    if (!ls->named) return;
    size_t off = 0;
    for (int i = 0; i < ls->naddr && off < sizeof ls->list; i++) {
        char buf[INET6_ADDRSTRLEN];
        addr_text(ls, i, buf, sizeof buf);
        off += (size_t)snprintf(ls->list + off, sizeof ls->list - off, "%s%s", i ? ", " : "", buf);
    }
}

static void set_port(struct sockaddr_storage *ss, uint16_t net_port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = net_port;
    else
        ((struct sockaddr_in *)ss)->sin_port = net_port;
}

static void close_listeners(listeners *ls)
{
    for (int w = 0; w < ls->nworkers; w++)
        for (int a = 0; a < ls->naddr; a++)
            if (ls->fds[w][a] >= 0) close(ls->fds[w][a]);
    ls->nworkers = 0;
}

/* Claims the port on every address with a plain listener (SO_REUSEPORT would let us share a
 * port another trail of the same user serves: EADDRINUSE here means someone else has it); the
 * first resolves port 0 and the others take the same number. Then binds the workers' group on
 * each address. Returns 0 or -errno, with ls->fds filled or closed and *failed the index of the
 * address that failed. */
static int bind_all(listeners *ls, int nworkers, const char *address, int *failed, tr_error *err)
{
    int probes[HTTP_MAX_LISTENERS];
    int nprobes = 0, rc = 0;
    for (int a = 0; a < ls->naddr && rc == 0; a++) {
        rc = listen_on((struct sockaddr *)&ls->addr[a], ls->addr_len[a], false, &probes[a]);
        *failed = a;
        if (rc < 0) break;
        nprobes++;
        if (a == 0) {
            struct sockaddr_storage bound;
            socklen_t bl = sizeof bound;
            getsockname(probes[0], (struct sockaddr *)&bound, &bl);
            uint16_t p = bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port;
            for (int i = 0; i < ls->naddr; i++) set_port(&ls->addr[i], p);
            ls->port = ntohs(p);
        }
    }
    for (int i = 0; i < nprobes; i++) close(probes[i]);
    for (int w = 0; w < nworkers && rc == 0; w++) {
        ls->nworkers = w + 1;
        for (int a = 0; a < ls->naddr; a++) ls->fds[w][a] = -1;
        for (int a = 0; a < ls->naddr && rc == 0; a++) {
            rc = listen_on((struct sockaddr *)&ls->addr[a], ls->addr_len[a], true, &ls->fds[w][a]);
            *failed = a;
        }
    }
    if (rc < 0) {
        close_listeners(ls);
        tr_error_set(err, rc, "cannot listen on %s: %s", address, tr_strerror(rc));
    }
    return rc;
}

/* Creates nworkers listeners on every address of `address` (see resolve()). Errors are
 * printed; returns 0 or -1. */
static int make_listeners(const char *address, int nworkers, listeners *ls)
{
    char host[256], port[16];
    tr_error err = {0};
    if (split_address(address, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "trail run: invalid address '%s' (expected HOST:PORT)\n", address);
        return -1;
    }
    if (resolve(host, port, ls, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        return -1;
    }
    int rc = -1, failed = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        rc = bind_all(ls, nworkers, address, &failed, &err);
        if (rc == -EADDRINUSE && strcmp(port, "0") == 0 && failed > 0) {
            /* Port 0 on several addresses: the number picked on the first is taken on
             * another; pick again. */
            for (int a = 0; a < ls->naddr; a++) set_port(&ls->addr[a], 0);
        } else if ((rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) && ls->named && ls->naddr > 1) {
            /* A name's address that this machine lacks (::1 without IPv6) is left out. */
            char buf[INET6_ADDRSTRLEN];
            addr_text(ls, failed, buf, sizeof buf);
            tr_log_warn("cannot listen on %s, an address of %s: %s; listening on the others", buf,
                        host, tr_strerror(rc));
            for (int a = failed; a + 1 < ls->naddr; a++) {
                ls->addr[a] = ls->addr[a + 1];
                ls->addr_len[a] = ls->addr_len[a + 1];
            }
            ls->naddr--;
            for (int a = 0; a < ls->naddr; a++) set_port(&ls->addr[a], htons((uint16_t)atoi(port)));
        } else {
            break;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        return -1;
    }
    describe(ls);
    return 0;
}

static int check_dir(const char *what, const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "trail run: %s '%s' is not a directory\n", what, dir);
        return -1;
    }
    return 0;
}

/* ---- scheduled jobs: the scheduler thread hands each due run to one worker, in turn ---- */

typedef struct job_launcher {
    wk_worker **workers;
    int nworkers;
    int next; /* round-robin; touched only by the scheduler thread */
    uint64_t deadline_ms;
    job_sched *sched;
    job_cluster *cluster; /* cluster mode: each due run is claimed there first */
} job_launcher;

typedef struct job_msg {
    job_launcher *jl;
    comp_module *mod; /* ref held */
    size_t job;
    uint64_t token;
    wk_worker *w;     /* that runs it */
    int64_t row;      /* cluster mode: the claimed row */
} job_msg;

static void job_msg_free(job_msg *msg)
{
    job_sched_finished(msg->jl->sched, msg->token);
    comp_module_unref(msg->mod);
    tr_free(msg);
}

static void on_job_done(void *ud, int rc, const tr_error *err)
{
    (void)rc;
    (void)err;
    job_msg_free(ud);
}

static void run_job_msg(loop *l, void *arg)
{
    (void)l;
    job_msg *msg = arg;
    job_run_opts o = {"schedule", msg->jl->deadline_ms, msg->jl->cluster, msg->row};
    job_run_here(msg->mod, msg->job, &o, on_job_done, msg);
}

/* Thread: the jobs' cluster thread. The slot is this node's (row > 0) or not. */
static void on_job_claimed(void *ud, int64_t row)
{
    job_msg *msg = ud;
    if (row <= 0) {
        job_msg_free(msg);
        return;
    }
    msg->row = row;
    wk_post(msg->w, run_job_msg, msg);
}

static void launch_job(void *ud, comp_module *m, size_t job, int64_t due_s, uint64_t token)
{
    job_launcher *jl = ud;
    job_msg *msg = tr_calloc(1, sizeof *msg);
    msg->jl = jl;
    msg->mod = comp_module_ref(m);
    msg->job = job;
    msg->token = token;
    msg->w = jl->workers[jl->next++ % jl->nworkers];
    if (jl->cluster)
        job_cluster_claim(jl->cluster, comp_module_name(m), comp_module_job(m, job)->name, due_s,
                          on_job_claimed, msg);
    else
        wk_post(msg->w, run_job_msg, msg);
}

static comp_limits comp_limits_from_cfg(const cfg *c)
{
    return (comp_limits){
        .memory_limit = (size_t)c->runtime.memory_limit_mb << 20,
        .cpu_budget_ms = c->runtime.cpu_budget_ms,
        .deadline_ms = c->runtime.deadline_ms,
    };
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A TypeScript project in dir (a package.json) without its build output serves nothing: say
 * so, with the command that builds it. */
static void warn_unbuilt_project(const char *dir)
{
    char *pkg = tr_asprintf("%s/package.json", dir);
    char *out = tr_asprintf("%s/dist/component.wasm", dir);
    char *mods = tr_asprintf("%s/node_modules", dir);
    if (exists(pkg) && !exists(out))
        tr_log_warn("%s holds a TypeScript project that was never built (no dist/component.wasm), "
                    "so it serves nothing: build it with `cd %s && %snpm run build` (trail "
                    "loads it once built)",
                    dir, dir, exists(mods) ? "" : "npm install && ");
    tr_free(mods);
    tr_free(out);
    tr_free(pkg);
}

/* The projects trail looks for (see comp_scan_dir()): wasm/ itself and each folder in it. */
static void warn_unbuilt_projects(const char *data_dir)
{
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    warn_unbuilt_project(wasm_dir);
    DIR *d = opendir(wasm_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0 ||
            strcmp(e->d_name, "dist") == 0)
            continue;
        char *sub = tr_asprintf("%s/%s", wasm_dir, e->d_name);
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) warn_unbuilt_project(sub);
        tr_free(sub);
    }
    if (d) closedir(d);
    tr_free(wasm_dir);
}

/* Loads the components of DATA_DIR/wasm, registers their routes, and opens the guests'
 * filesystem. Errors are printed; returns -1 then. */
static int load_components(const server_opts *f, const cfg *c, http_router *router,
                           comp_set **comps, guest_fs **fs)
{
    tr_error err = {0};
    comp_limits lim = comp_limits_from_cfg(c);
    char *wasm_dir = tr_asprintf("%s/wasm", f->data_dir);
    int rc = comp_set_load_dir(wasm_dir, &lim, comps, &err);
    tr_free(wasm_dir);
    if (rc == 0) rc = comp_set_register_routes(*comps, router, &err);
    if (rc == 0 && f->root_fs) {
        char *deny = tr_asprintf("%s/data", f->data_dir);
        rc = guest_fs_open(f->root_fs, deny, fs, &err);
        tr_free(deny);
    }
    if (rc < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        return -1;
    }
    for (size_t i = 0; i < comp_set_count(*comps); i++) {
        const comp_module *m = comp_set_module(*comps, i);
        tr_log_info("component %s (version %s): %zu route%s, %zu job%s", comp_module_name(m),
                    comp_module_version(m), comp_module_nroutes(m),
                    comp_module_nroutes(m) == 1 ? "" : "s", comp_module_njobs(m),
                    comp_module_njobs(m) == 1 ? "" : "s");
    }
    warn_unbuilt_projects(f->data_dir);
    return 0;
}

/* Every connection, guest fetch() and database file is a descriptor, and the usual soft limit
 * (1024) is below what one worker's max_connections allows: raise it to the hard limit. Returns
 * the limit in force. */
static uint64_t raise_open_files_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur >= rl.rlim_max) return (uint64_t)rl.rlim_cur;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return (uint64_t)was;
    tr_log_debug("open files limit raised from %llu to %llu", (unsigned long long)was,
                 (unsigned long long)rl.rlim_cur);
    return (uint64_t)rl.rlim_cur;
}

/* Connections per worker such that all workers' together leave a reserve of descriptors for
 * the database files, guest fetches, components and the listeners: a tenth of the limit, at
 * least FD_RESERVE_MIN. Without it, idle sockets could take every descriptor, and then nothing
 * (not even the 503 that turns a connection away) would work. */
#define FD_RESERVE_MIN 256

static uint32_t connections_per_worker(uint32_t configured, uint64_t nofile, int threads)
{
    uint64_t reserve = nofile / 10 > FD_RESERVE_MIN ? nofile / 10 : FD_RESERVE_MIN;
    uint64_t room = nofile > reserve + (uint64_t)threads ? nofile - reserve : (uint64_t)threads;
    uint64_t per = room / (uint64_t)threads;
    if (per >= configured) return configured;
    tr_log_warn("server.max_connections lowered from %u to %llu per worker: %d workers and a "
                "reserve of %llu must fit in the open-files limit of %llu (ulimit -n)",
                configured, (unsigned long long)per, threads, (unsigned long long)reserve,
                (unsigned long long)nofile);
    return (uint32_t)per;
}

guest_fetch_opts server_fetch_opts(const cfg_fetch *c)
{
    return (guest_fetch_opts){
        .enabled = c->enabled,
        .allowed_hosts = c->allowed_hosts,
        .allowed_hosts_len = c->allowed_hosts_len,
        .allowed_private_hosts = c->allowed_private_hosts,
        .allowed_private_hosts_len = c->allowed_private_hosts_len,
        .timeout_ms = c->timeout_ms,
        .max_response_bytes = c->max_response_bytes,
    };
}

static volatile sig_atomic_t migrate_stop_sig;

static void on_migrate_signal(int sig)
{
    migrate_stop_sig = sig;
}

/* db_migrate() that SIGINT and SIGTERM can stop: they are blocked in this thread (for sigwait),
 * so for the migrations they are unblocked and caught by a handler that sets the flag db_stop_on()
 * watches; the migration running then fails and is rolled back. *sig is the signal that came
 * (0: none). No other thread exists yet, so the signal can only land here. */
static int migrate_stoppable(db_conn *db, const char *dir, int *sig, tr_error *err)
{
    struct sigaction sa = {.sa_handler = on_migrate_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    migrate_stop_sig = 0;
    db_stop_on(db, &migrate_stop_sig);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    int rc = db_migrate(db, dir, err);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    db_stop_on(db, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    *sig = migrate_stop_sig;
    return rc;
}

/* The auth API's way to the database connection of the worker whose thread serves a request. */
static db_conn *db_of_worker(void)
{
    comp_worker *w = comp_worker_current();
    return w ? comp_worker_env(w)->db : NULL;
}

/* The members a guest's statement may ask for the leader: this node and those it joined through. */
#define SERVER_MAX_CLUSTER_ADDRS 16

/* The members this node asks for the cluster's leader: itself and those it joined through, into
 * addrs (SERVER_MAX_CLUSTER_ADDRS); some point into *list (free it). Returns how many. */
static size_t cluster_addresses(const server_opts *f, const cfg *c, const char **addrs, char **list)
{
    size_t naddrs = 0;
    addrs[naddrs++] = f->cluster_address ? f->cluster_address : c->cluster.address;
    *list = tr_strdup(f->join ? f->join : "");
    for (char *save = NULL, *a = strtok_r(*list, ",", &save);
         a != NULL && naddrs < SERVER_MAX_CLUSTER_ADDRS; a = strtok_r(NULL, ",", &save))
        addrs[naddrs++] = a;
    for (size_t i = 0;
         f->join == NULL && i < c->cluster.join_len && naddrs < SERVER_MAX_CLUSTER_ADDRS; i++)
        addrs[naddrs++] = c->cluster.join[i];
    return naddrs;
}

/* Cluster mode: the dqlite node, when --cluster-address or cluster.address names one, and the
 * thread that claims and records the jobs' runs in the cluster (*jobs). */
static int start_cluster_node(const server_opts *f, const cfg *c, cluster_node **out,
                              job_cluster **jobs)
{
    const char *address = f->cluster_address ? f->cluster_address : c->cluster.address;
    if (address == NULL || address[0] == '\0') {
        if (f->join && f->join[0])
            fprintf(stderr, "trail run: --join needs --cluster-address (this node's address)\n");
        return f->join && f->join[0] ? -1 : 0;
    }
    tr_buf join = TR_BUF_INIT;
    if (f->join) {
        tr_buf_append_str(&join, f->join);
    } else {
        for (size_t i = 0; i < c->cluster.join_len; i++) {
            if (i) tr_buf_append_char(&join, ',');
            tr_buf_append_str(&join, c->cluster.join[i]);
        }
    }
    cluster_opts co = {
        .address = address,
        .join = join.data,
        .data_dir = f->data_dir,
        .join_timeout_ms = 60000,
    };
    tr_error err = {0};
    int rc = cluster_node_start(&co, out, &err);
    tr_buf_free(&join);
    if (rc < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        return rc;
    }
    printf("trail: cluster node %llu on %s\n", (unsigned long long)cluster_node_id(*out), address);
    /* Guests' statements find the leader through this node and the members it joined through. */
    const char *addrs[SERVER_MAX_CLUSTER_ADDRS];
    char *list = NULL;
    size_t naddrs = cluster_addresses(f, c, addrs, &list);
    adb_cluster_publish(addrs, naddrs);
    /* The cluster's schema: applied once for all nodes, through the leader. */
    char *mig = tr_asprintf("%s/" DB_MIGRATIONS_DIR, f->data_dir);
    rc = server__cluster_migrate(addrs, naddrs, mig, &err);
    /* Users and sign-in: their tables, and one signing key for every node. */
    if (rc == 0) rc = server__cluster_auth(addrs, naddrs, f->data_dir, &err);
    if (rc == 0) rc = job_cluster_start(addrs, naddrs, cluster_node_id(*out), jobs, &err);
    tr_free(mig);
    tr_free(list);
    if (rc < 0) fprintf(stderr, "trail run: %s\n", err.msg);
    return rc;
}

int server_run(const server_opts *o)
{
    server_opts f = *o;
    if (!f.data_dir) f.data_dir = "./traildepot";
    int status = 1;
    tr_error err = {0};
    cfg c;
    cfg_init_defaults(&c);
    http_router *router = NULL;
    http_static *statics = NULL;
    listeners *ls = tr_calloc(1, sizeof *ls);
    wk_worker *workers[SERVER_MAX_WORKERS];
    int nworkers = 0;
    char *db_path = NULL;
    comp_set *comps = NULL;
    rec_set *recs = NULL;
    kv_store *kv = NULL;
    kv_persist *kv_saver = NULL;
    char *kv_path = NULL;
    guest_fs *guestfs = NULL;
    cron_tz *tz = NULL;
    job_launcher launcher = {0};
    server_reloader *rl = NULL;
    server_control *ctl = NULL;
    char *wasm_dir = NULL;
    auth_keys *keys = NULL;
    auth_ctx *auth = NULL;
    cluster_node *node = NULL;
    job_cluster *jobs_cluster = NULL;
    rec_feed *feed = NULL;

    if (db_datadir_init(f.data_dir, cfg_default_text(), &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    char *cfg_path = tr_asprintf("%s/config.textproto", f.data_dir);
    int rc = cfg_load_file(cfg_path, &c, &err);
    tr_free(cfg_path);
    if (rc < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    if (f.address) cfg_set_string(&c.server.address, f.address);
    if (f.threads) c.server.runtime_threads = f.threads;
    int threads = c.server.runtime_threads;
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0) threads = 1;
    if (threads > SERVER_MAX_WORKERS) threads = SERVER_MAX_WORKERS;
    if (f.public_dir && check_dir("--public-dir", f.public_dir) < 0) goto out;
    if (f.root_fs && check_dir("--runtime-root-fs", f.root_fs) < 0) goto out;
    /* Before any thread starts: it sets the umask while it binds. */
    if (server__control_open(f.data_dir, &ctl, &err) < 0)
        tr_log_warn("%s; `trail jobs run` will not reach this server", err.msg);

    /* Signals: blocked here so every thread created later inherits the mask; taken by sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    uint32_t max_conns =
        connections_per_worker(c.server.max_connections, raise_open_files_limit(), threads);

    if (make_listeners(c.server.address, threads, ls) < 0) goto out;
    if (start_cluster_node(&f, &c, &node, &jobs_cluster) < 0) goto out;

    db_path = tr_asprintf("%s/data/main.db", f.data_dir);
    {
        db_conn *db = NULL;
        char *mig = tr_asprintf("%s/migrations", f.data_dir);
        rc = db_open(db_path, &db, &err);
        if (rc == 0) {
            int sig = 0;
            rc = migrate_stoppable(db, mig, &sig, &err);
            if (sig != 0) {
                const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
                if (rc < 0) {
                    fprintf(stderr, "trail run: %s\n", err.msg);
                    fprintf(stderr,
                            "trail run: stopped by %s during the migrations; a migration that "
                            "was running was rolled back\n",
                            name);
                } else {
                    fprintf(stderr, "trail run: stopped by %s (the migrations had completed)\n",
                            name);
                }
                tr_free(mig);
                db_close(db);
                goto out;
            }
        }
        if (rc == 0) rc = job_store_init(db, &err);
        if (rc == 0) rc = auth_store_init(db, &err);
        if (rc == 0) rc = rec_set_load(&c, db, rec_user_from_auth, &recs, &err);
        if (rc == 0 && node) {
            /* Realtime: the cluster's writes reach this node's subscribers through its change
             * log. */
            const char *addrs[SERVER_MAX_CLUSTER_ADDRS];
            char *list = NULL;
            size_t naddrs = cluster_addresses(&f, &c, addrs, &list);
            rc = rec_feed_start(recs, db, addrs, naddrs, &feed, &err);
            tr_free(list);
        }
        tr_free(mig);
        db_close(db);
        if (rc < 0) {
            fprintf(stderr, "trail run: %s\n", err.msg);
            goto out;
        }
    }

    /* Users: the signing key (made on first start), the auth API and guests' req.user(). */
    if (auth_keys_load(f.data_dir, &keys, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    /* list cursors signed with a secret of the signing key: one a cluster's nodes share */
    uint8_t cursor_key[32];
    auth_keys_derive(keys, "trail record list cursors v1", cursor_key);
    rec_set_cursor_key(recs, cursor_key);
    auth_opts ao = {
        .auth_token_ttl_sec = c.auth.auth_token_ttl_sec,
        .refresh_token_ttl_sec = c.auth.refresh_token_ttl_sec,
        .require_email_verification = c.auth.require_email_verification,
        .login_attempts_per_account = c.auth.login_attempts_per_account,
        .login_attempts_per_address = c.auth.login_attempts_per_address,
        .password_min_length = c.auth.password_min_length,
        .site_url = c.server.site_url,
        .smtp_host = c.email.smtp_host,
        .smtp_port = c.email.smtp_port,
        .smtp_username = c.email.smtp_username,
        .smtp_password = c.email.smtp_password,
        .smtp_encryption = c.email.smtp_encryption,
        .sender_address = c.email.sender_address,
        .sender_name = c.email.sender_name,
        .subject = {[AUTH_MAIL_VERIFY] = c.email.verification_subject,
                    [AUTH_MAIL_RESET] = c.email.password_reset_subject,
                    [AUTH_MAIL_CHANGE_EMAIL] = c.email.change_email_subject},
        .body = {[AUTH_MAIL_VERIFY] = c.email.verification_body,
                 [AUTH_MAIL_RESET] = c.email.password_reset_body,
                 [AUTH_MAIL_CHANGE_EMAIL] = c.email.change_email_body},
    };
    auth = auth_ctx_new(&ao, keys, db_of_worker);
    auth_ctx_publish(auth);

    router = http_router_new();
    if (http_builtin_register(router, &err) < 0 || rec_register_routes(recs, router, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    if (f.public_dir && http_static_open(f.public_dir, &statics, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    if (load_components(&f, &c, router, &comps, &guestfs) < 0) goto out;
    if (cron_tz_load(c.jobs.time_zone, &tz, &err) < 0) {
        fprintf(stderr, "trail run: jobs.time_zone: %s\n", err.msg);
        goto out;
    }

    kv = kv_store_new((size_t)c.kv.max_mb << 20);
    if (c.kv.persist) {
        kv_path = tr_asprintf("%s/data/kv.snapshot", f.data_dir);
        size_t loaded = 0;
        if (kv_store_load(kv, kv_path, &loaded, &err) < 0) {
            fprintf(stderr, "trail run: %s (move it away to start with an empty store)\n", err.msg);
            goto out;
        }
        if (loaded) tr_log_info("kv: %zu entries loaded from %s", loaded, kv_path);
        kv_saver = kv_persist_start(kv, kv_path, c.kv.persist_interval_ms);
    }
    guest_fetch_opts fetch = server_fetch_opts(&c.fetch);
    for (int i = 0; i < threads; i++) {
        wk_params p = {
            .index = i,
            .listen_fd = ls->fds[i][0],
            .nmore_listen_fds = ls->naddr - 1,
            .limits =
                {
                    .max_body_bytes = c.server.max_body_bytes,
                    .max_buffered_body_bytes = c.server.max_buffered_body_bytes,
                    .max_header_bytes = c.server.max_header_bytes,
                    .max_headers = c.server.max_headers,
                    .max_target_bytes = c.server.max_target_bytes,
                    .idle_timeout_ms = c.server.idle_timeout_ms,
                    .header_timeout_ms = c.server.header_timeout_ms,
                    .body_timeout_ms = c.server.body_timeout_ms,
                    .body_total_timeout_ms = c.server.body_total_timeout_ms,
                    .max_connections = max_conns,
                },
            .router = router,
            .mount = node ? (http_mount){server__cluster_mount_accepts, server__cluster_mount, auth}
                          : (http_mount){auth_path_is_mine, auth_http_handle, auth},
            .statics = statics,
            .access_log = !f.quiet && c.server.access_log,
            .db_path = db_path,
            .shutdown_timeout_ms = c.server.shutdown_timeout_ms,
            .components = comps,
            .fs = guestfs,
            .fetch = &fetch,
            .result_cache_bytes = (size_t)c.database.result_cache_mb << 20,
            .kv = kv,
            .temp_max_bytes = (uint64_t)c.database.temp_max_mb << 20,
            .db_hook = rec_db_attach,
            .db_hook_ud = recs,
        };
        for (int a = 0; a < ls->naddr; a++) {
            if (a > 0) p.more_listen_fds[a - 1] = ls->fds[i][a];
            ls->fds[i][a] = -1; /* the worker owns it now, even on failure */
        }
        if (wk_start(&p, &workers[nworkers], &err) < 0) {
            fprintf(stderr, "trail run: %s\n", err.msg);
            goto stop;
        }
        nworkers++;
    }

    launcher = (job_launcher){workers, nworkers, 0, c.jobs.deadline_ms, NULL, jobs_cluster};
    if (job_sched_start(tz, launch_job, &launcher, &launcher.sched, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto stop;
    }
    job_sched_set(launcher.sched, comps);
    if (ctl && server__control_start(ctl, workers, nworkers, c.jobs.deadline_ms, jobs_cluster,
                                     &err) < 0) {
        tr_log_warn("control socket: %s; `trail jobs run` will not reach this server", err.msg);
        server__control_free(ctl);
        ctl = NULL;
    }

    /* From here the reloader owns comps and router: it replaces them when components change. */
    server_reload_opts ro = {
        .limits = comp_limits_from_cfg(&c),
        .workers = workers,
        .nworkers = nworkers,
        .sched = launcher.sched,
        .routes_fn = rec_routes_cb,
        .routes_ud = recs,
    };
    wasm_dir = tr_asprintf("%s/wasm", f.data_dir);
    ro.wasm_dir = wasm_dir;
    if (server__reloader_start(&ro, comps, router, &rl, &err) == 0) {
        comps = NULL;
        router = NULL;
    } else {
        tr_log_warn("%s; components are loaded only at start", err.msg);
    }

    printf("trail: listening on http://%s:%d%s%s%s, data directory %s\n", ls->shown, ls->port,
           ls->list[0] ? " (" : "", ls->list, ls->list[0] ? ")" : "", f.data_dir);
    if (f.root_fs)
        printf("trail: %d worker%s; guests may read %s (--runtime-root-fs)\n", nworkers,
               nworkers == 1 ? "" : "s", f.root_fs);
    else
        printf("trail: %d worker%s; guests read no files (no --runtime-root-fs)\n", nworkers,
               nworkers == 1 ? "" : "s");
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGINT || sig == SIGTERM) break;
        if (sig == SIGHUP && rl) {
            tr_log_info("trail: SIGHUP: reloading the components");
            server__reloader_trigger(rl);
        }
    }
    tr_log_info("trail: shutting down");
    status = 0;
stop:
    /* No reload and no job is handed to a worker once they start draining. */
    server__reloader_stop(rl);
    job_sched_stop(launcher.sched);
    job_cluster_stop_claims(jobs_cluster); /* no claimed run is posted to a worker any more */
    server__control_stop(ctl);
    rec_feed_stop(feed); /* it posts to the workers' loops */
    feed = NULL;
    for (int i = 0; i < nworkers; i++)
        wk_shutdown(workers[i]);
    for (int i = 0; i < nworkers; i++) {
        int jrc = wk_join(workers[i]);
        if (jrc < 0) {
            tr_log_error("worker %d: event loop failed: %s", i, tr_strerror(jrc));
            status = 1;
        }
    }
out:
    rec_feed_stop(feed);
    close_listeners(ls);
    tr_free(ls);
    http_static_free(statics);
    http_router_free(router);
    job_sched_free(launcher.sched); /* after the workers: their last runs report to it */
    server__control_free(ctl);              /* likewise */
    job_cluster_free(jobs_cluster); /* after the workers: it records their last runs' ends */
    server__reloader_free(rl);              /* the set and router the workers served last */
    tr_free(wasm_dir);
    comp_set_free(comps);
    rec_set_free(recs); /* after the workers and the routers that point into it */
    /* after the workers, whose isolates use it: the last snapshot has every write */
    if (kv_persist_stop(kv_saver, &err) < 0) {
        tr_log_error("kv: the last snapshot failed: %s", err.msg);
        status = 1;
    }
    kv_store_free(kv);
    tr_free(kv_path);
    guest_fs_close(guestfs);
    cron_tz_free(tz);
    tr_free(db_path);
    adb_cluster_publish(NULL, 0);
    cluster_node_stop(node);
    auth_ctx_publish(NULL); /* the workers are gone */
    auth_ctx_free(auth);
    auth_keys_free(keys);
    cfg_deinit(&c);
    fflush(stdout);
    return status;
}
