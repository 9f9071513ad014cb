/* cli/run.c: `trail run`: the data directory, migrations, the workers, and graceful shutdown.
 *
 * DESIGN: start-up is sequential on the main thread and fails with exit status 1 and a message:
 * flags, data directory, config file (flags override it), listeners, database + migrations,
 * router, workers. The listeners are created here, before any worker: binding the first one
 * resolves port 0, and the others bind the same port with SO_REUSEPORT, so the printed address
 * is exact and bind errors come before the listening line. The main thread then only waits for
 * SIGINT/SIGTERM (blocked in every thread, taken with sigwait) and tells each worker to drain. */
#include "cli/cli_internal.h"

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

#include "base/base.h"
#include "cli/reload.h"
#include "component/host.h"
#include "config/config.h"
#include "db/db.h"
#include "guest/fs.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "worker/worker.h"

#define MAX_WORKERS 256

typedef struct run_flags {
    const char *address;
    const char *data_dir;
    const char *public_dir;
    const char *root_fs;
    int threads; /* 0: not given */
    bool quiet;
} run_flags;

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: trail run [options]\n\n"
        "Serves HTTP, the database and the WASM components of a data directory.\n\n"
        "Options:\n"
        "  --address HOST:PORT       where to listen (default localhost:4000; port 0 picks a\n"
        "                            free port)\n"
        "  --data-dir DIR            the data directory (default ./traildepot; created with\n"
        "                            config.textproto, data/, migrations/, wasm/ if missing)\n"
        "  --public-dir DIR          serve static files from DIR\n"
        "  --runtime-root-fs DIR     the directory guest code may read (sandbox root)\n"
        "  --runtime-threads N       worker threads (default: config, else the number of CPUs)\n"
        "  --quiet                   no access log on stdout\n"
        "  -h, --help                this help\n\n"
        "Settings come from DIR/config.textproto; a flag overrides the file.\n"
        "SIGINT or SIGTERM stops the server gracefully.\n");
}

/* Accepts "--name value" and "--name=value". Returns the value, or NULL if argv[*i] is not name
 * (a missing value is reported and sets *bad). */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    size_t nl = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, nl) != 0) return NULL;
    if (a[nl] == '=') return a + nl + 1;
    if (a[nl] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "trail run: %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_flags(int argc, char **argv, run_flags *f)
{
    for (int i = 1; i < argc; i++) {
        bool bad = false;
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--address", &bad))) {
            f->address = v;
        } else if ((v = flag_value(argc, argv, &i, "--data-dir", &bad))) {
            f->data_dir = v;
        } else if ((v = flag_value(argc, argv, &i, "--public-dir", &bad))) {
            f->public_dir = v;
        } else if ((v = flag_value(argc, argv, &i, "--runtime-root-fs", &bad))) {
            f->root_fs = v;
        } else if ((v = flag_value(argc, argv, &i, "--runtime-threads", &bad))) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > MAX_WORKERS) {
                fprintf(stderr, "trail run: --runtime-threads must be 1..%d, got '%s'\n",
                        MAX_WORKERS, v);
                return -1;
            }
            f->threads = (int)n;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            f->quiet = true;
        } else if (!bad) {
            fprintf(stderr, "trail run: unknown option '%s' (see `trail run --help`)\n", argv[i]);
            return -1;
        }
        if (bad) return -1;
    }
    return 0;
}

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

/* Creates n listeners on address; fills fds and the bound port. Returns 0 or -errno/-1 with a
 * message printed. */
static int make_listeners(const char *address, int n, int *fds, int *port_out, char *host,
                          size_t hcap)
{
    char port[16];
    if (split_address(address, host, hcap, port, sizeof port) != 0) {
        fprintf(stderr, "trail run: invalid address '%s' (expected HOST:PORT)\n", address);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0) {
        fprintf(stderr, "trail run: cannot resolve '%s': %s\n", address, gai_strerror(g));
        return -1;
    }
    /* Prefer IPv4 for names like localhost that resolve to both. */
    struct addrinfo *pick = NULL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    if (pick == NULL) pick = res;
    struct sockaddr_storage ss;
    socklen_t sl = (socklen_t)pick->ai_addrlen;
    memcpy(&ss, pick->ai_addr, sl);
    freeaddrinfo(res);

    /* SO_REUSEPORT would let us share a port another trail (same user) already serves, so
     * first claim it with a plain listener: EADDRINUSE then means someone else has it. That
     * probe also resolves port 0; the workers' group binds the same port right after. */
    int probe = -1;
    int rc = listen_on((struct sockaddr *)&ss, sl, false, &probe);
    int made = 0;
    if (rc == 0) {
        struct sockaddr_storage bound;
        socklen_t bl = sizeof bound;
        getsockname(probe, (struct sockaddr *)&bound, &bl);
        uint16_t p = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port;
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = p;
        else
            ((struct sockaddr_in *)&ss)->sin_port = p;
        *port_out = ntohs(p);
        close(probe);
    }
    for (; rc == 0 && made < n; made++) {
        rc = listen_on((struct sockaddr *)&ss, sl, true, &fds[made]);
        if (rc < 0) break;
    }
    if (rc < 0) {
        fprintf(stderr, "trail run: cannot listen on %s: %s\n", address, tr_strerror(rc));
        for (int i = 0; i < made; i++)
            close(fds[i]);
        return rc;
    }
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
} job_launcher;

typedef struct job_msg {
    job_launcher *jl;
    comp_module *mod; /* ref held */
    size_t job;
    uint64_t token;
} job_msg;

static void on_job_done(void *ud, int rc, const tr_error *err)
{
    (void)rc;
    (void)err;
    job_msg *msg = ud;
    job_sched_finished(msg->jl->sched, msg->token);
    comp_module_unref(msg->mod);
    tr_free(msg);
}

static void run_job_msg(loop *l, void *arg)
{
    (void)l;
    job_msg *msg = arg;
    job_run_here(msg->mod, msg->job, "schedule", msg->jl->deadline_ms, on_job_done, msg);
}

static void launch_job(void *ud, comp_module *m, size_t job, uint64_t token)
{
    job_launcher *jl = ud;
    job_msg *msg = tr_calloc(1, sizeof *msg);
    msg->jl = jl;
    msg->mod = comp_module_ref(m);
    msg->job = job;
    msg->token = token;
    wk_worker *w = jl->workers[jl->next++ % jl->nworkers];
    wk_post(w, run_job_msg, msg);
}

static comp_limits comp_limits_from_cfg(const cfg *c)
{
    return (comp_limits){
        .memory_limit = (size_t)c->runtime.memory_limit_mb << 20,
        .cpu_budget_ms = c->runtime.cpu_budget_ms,
        .deadline_ms = c->runtime.deadline_ms,
    };
}

/* Loads the components of DATA_DIR/wasm, registers their routes, and opens the guests'
 * filesystem. Errors are printed; returns -1 then. */
static int load_components(const run_flags *f, const cfg *c, http_router *router, comp_set **comps,
                           guest_fs **fs)
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
        tr_log_info("component %s (version %s): %zu route%s, %zu job%s", m->name, m->version,
                    m->nroutes, m->nroutes == 1 ? "" : "s", m->njobs, m->njobs == 1 ? "" : "s");
    }
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

int cli_run(int argc, char **argv)
{
    if (cli__wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    run_flags f = {.data_dir = "./traildepot"};
    if (parse_flags(argc, argv, &f) < 0) return 2;

    int status = 1;
    tr_error err = {0};
    cfg c;
    cfg_init_defaults(&c);
    http_router *router = NULL;
    http_static *statics = NULL;
    int fds[MAX_WORKERS];
    int nfds = 0;
    wk_worker *workers[MAX_WORKERS];
    int nworkers = 0;
    char *db_path = NULL;
    comp_set *comps = NULL;
    guest_fs *guestfs = NULL;
    job_tz *tz = NULL;
    job_launcher launcher = {0};
    reloader *rl = NULL;
    char *wasm_dir = NULL;

    if (db_datadir_init(f.data_dir, &err) < 0) {
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
    if (threads > MAX_WORKERS) threads = MAX_WORKERS;
    if (f.public_dir && check_dir("--public-dir", f.public_dir) < 0) goto out;
    if (f.root_fs && check_dir("--runtime-root-fs", f.root_fs) < 0) goto out;

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

    char host[256];
    int port = 0;
    if (make_listeners(c.server.address, threads, fds, &port, host, sizeof host) < 0) goto out;
    nfds = threads;

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
        tr_free(mig);
        db_close(db);
        if (rc < 0) {
            fprintf(stderr, "trail run: %s\n", err.msg);
            goto out;
        }
    }

    router = http_router_new();
    if (http_builtin_register(router, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    if (f.public_dir && http_static_open(f.public_dir, &statics, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto out;
    }
    if (load_components(&f, &c, router, &comps, &guestfs) < 0) goto out;
    if (job_tz_load(c.jobs.time_zone, &tz, &err) < 0) {
        fprintf(stderr, "trail run: jobs.time_zone: %s\n", err.msg);
        goto out;
    }

    for (int i = 0; i < threads; i++) {
        wk_params p = {
            .index = i,
            .listen_fd = fds[i],
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
            .statics = statics,
            .access_log = !f.quiet && c.server.access_log,
            .db_path = db_path,
            .runtime_root_fs = f.root_fs,
            .shutdown_timeout_ms = c.server.shutdown_timeout_ms,
            .components = comps,
            .fs = guestfs,
            .fetch = &c.fetch,
            .result_cache_bytes = (size_t)c.database.result_cache_mb << 20,
        };
        fds[i] = -1; /* the worker owns it now, even on failure */
        if (wk_start(&p, &workers[nworkers], &err) < 0) {
            fprintf(stderr, "trail run: %s\n", err.msg);
            goto stop;
        }
        nworkers++;
    }

    launcher = (job_launcher){workers, nworkers, 0, c.jobs.deadline_ms, NULL};
    if (job_sched_start(tz, launch_job, &launcher, &launcher.sched, &err) < 0) {
        fprintf(stderr, "trail run: %s\n", err.msg);
        goto stop;
    }
    job_sched_set(launcher.sched, comps);

    /* From here the reloader owns comps and router: it replaces them when components change. */
    reloader_opts ro = {
        .limits = comp_limits_from_cfg(&c),
        .workers = workers,
        .nworkers = nworkers,
        .sched = launcher.sched,
    };
    wasm_dir = tr_asprintf("%s/wasm", f.data_dir);
    ro.wasm_dir = wasm_dir;
    if (reloader_start(&ro, comps, router, &rl, &err) == 0) {
        comps = NULL;
        router = NULL;
    } else {
        tr_log_warn("%s; components are loaded only at start", err.msg);
    }

    bool v6 = strchr(host, ':') != NULL;
    printf("trail: listening on http://%s%s%s:%d, data directory %s\n", v6 ? "[" : "",
           host[0] ? host : "0.0.0.0", v6 ? "]" : "", port, f.data_dir);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGINT || sig == SIGTERM) break;
        if (sig == SIGHUP && rl) {
            tr_log_info("trail: SIGHUP: reloading the components");
            reloader_trigger(rl);
        }
    }
    tr_log_info("trail: shutting down");
    status = 0;
stop:
    /* No reload and no job is handed to a worker once they start draining. */
    reloader_stop(rl);
    job_sched_stop(launcher.sched);
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
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0) close(fds[i]);
    http_static_free(statics);
    http_router_free(router);
    job_sched_free(launcher.sched); /* after the workers: their last runs report to it */
    reloader_free(rl);              /* the set and router the workers served last */
    tr_free(wasm_dir);
    comp_set_free(comps);
    guest_fs_close(guestfs);
    job_tz_free(tz);
    tr_free(db_path);
    cfg_deinit(&c);
    fflush(stdout);
    return status;
}
