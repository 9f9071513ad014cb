/* server/reload.c: hot reload for `trail run`: watching DATA_DIR/wasm, loading what changed, and
 * switching every worker to it without dropping a request.
 *
 * DESIGN: one reloader thread owns the current component set and router. inotify events under
 * wasm/ (and wasm/dist, wasm/NAME/dist) start a short quiet period (a build may write a file in
 * several steps); when it ends, or on SIGHUP, the directory is rescanned. A file whose bytes are
 * unchanged keeps its loaded module (and so every worker keeps that isolate and its module
 * state); a changed or new file is loaded and validated once. A file that fails to load leaves
 * its previous version serving, and its failure is logged once per content. A new router is
 * built (built-ins + every component's routes); a conflict keeps everything as it was. Then each
 * worker gets a message to switch: requests parsed after it see the new code, parked ones finish
 * on the old isolates. The last worker to switch frees the old router and set. Jobs are
 * rescheduled from the new manifests. */
#include "server/server_internal.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/sha256.h"
#include "component/component.h"

#define QUIET_MS 25 /* the directory must stay unchanged this long before files are read */
#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY | IN_ONLYDIR)

enum { MSG_RELOAD = 1, MSG_STOP = 2 };

typedef struct loaded {
    char *path;
    char sha[65]; /* of the file's bytes */
} loaded;

struct server_reloader {
    server_reload_opts o;
    pthread_t thread;
    int inotify_fd, event_fd;
    bool running;
    comp_set *set;        /* what the workers serve */
    http_router *router;
    loaded *files;        /* parallel to set's modules */
    size_t nfiles;
    char **failed;        /* "path\nsha" of content that failed to load, logged once each */
    size_t nfailed;
};

typedef struct switch_state {
    _Atomic int pending; /* workers still to switch */
    http_router *router;
    comp_set *set;
    http_router *old_router; /* freed by the last worker to switch */
    comp_set *old_set;
} switch_state;

typedef struct switch_msg {
    wk_worker *w;
    switch_state *st;
} switch_msg;

static void on_switch(loop *l, void *arg)
{
    (void)l;
    switch_msg *m = arg;
    switch_state *st = m->st;
    tr_error err = {0};
    if (wk_switch(m->w, st->router, st->set, &err) < 0)
        tr_log_error("reload: a worker cannot switch to the new components: %s", err.msg);
    tr_free(m);
    if (atomic_fetch_sub(&st->pending, 1) == 1) {
        /* Every worker has moved on: nothing reads the old router or set any more. */
        http_router_free(st->old_router);
        comp_set_free(st->old_set);
        tr_free(st);
    }
}

static void add_watches(server_reloader *r)
{
    const char *dir = r->o.wasm_dir;
    inotify_add_watch(r->inotify_fd, dir, WATCH_MASK);
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0) continue;
        char *sub = tr_asprintf("%s/%s", dir, e->d_name);
        char *dist = tr_asprintf("%s/%s/dist", dir, e->d_name);
        /* wasm/dist itself, or wasm/NAME (to see its dist/ appear) and wasm/NAME/dist */
        inotify_add_watch(r->inotify_fd, sub, WATCH_MASK);
        if (strcmp(e->d_name, "dist") != 0) inotify_add_watch(r->inotify_fd, dist, WATCH_MASK);
        tr_free(sub);
        tr_free(dist);
    }
    closedir(d);
}

static bool failed_before(server_reloader *r, const char *path, const char *sha)
{
    char *key = tr_asprintf("%s\n%s", path, sha);
    for (size_t i = 0; i < r->nfailed; i++) {
        if (strcmp(r->failed[i], key) == 0) {
            tr_free(key);
            return true;
        }
    }
    r->failed = tr_realloc(r->failed, (r->nfailed + 1) * sizeof *r->failed);
    r->failed[r->nfailed++] = key;
    return false;
}

static const loaded *find_loaded(const server_reloader *r, const char *path, size_t *idx)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (strcmp(r->files[i].path, path) == 0) {
            *idx = i;
            return &r->files[i];
        }
    }
    return NULL;
}

static void reload(server_reloader *r)
{
    comp_paths paths;
    tr_error err = {0};
    if (comp_scan_dir(r->o.wasm_dir, &paths, &err) < 0) {
        tr_log_error("reload: %s", err.msg);
        return;
    }
    comp_module **mods = tr_calloc(paths.len + 1, sizeof *mods);
    loaded *files = tr_calloc(paths.len + 1, sizeof *files);
    size_t n = 0;
    bool changed = false;
    for (size_t i = 0; i < paths.len; i++) {
        const char *path = paths.paths[i];
        const char *name = path + strlen(r->o.wasm_dir);
        while (*name == '/') name++;
        size_t idx = 0;
        const loaded *cur = find_loaded(r, path, &idx);
        tr_buf bytes = TR_BUF_INIT;
        char sha[65] = "";
        if (tr_read_file(path, COMP_MAX_FILE_BYTES, &bytes, &err) == 0)
            tr_sha256_hex(bytes.data, bytes.len, sha);
        if (cur != NULL && strcmp(cur->sha, sha) == 0) {
            mods[n] = comp_module_ref(comp_set_module(r->set, idx));
            files[n].path = tr_strdup(path);
            memcpy(files[n].sha, sha, sizeof sha);
            n++;
            tr_buf_free(&bytes);
            continue;
        }
        comp_module *m = NULL;
        int rc = sha[0] ? comp_module_load_bytes(bytes.data, bytes.len, path, name, &r->o.limits,
                                                 &m, &err)
                        : err.code;
        tr_buf_free(&bytes);
        if (rc < 0) {
            if (!failed_before(r, path, sha)) {
                if (cur != NULL)
                    tr_log_error("component %s: the new version does not load, version %s keeps "
                                 "serving: %s",
                                 name, comp_module_version(comp_set_module(r->set, idx)), err.msg);
                else
                    tr_log_error("component %s: cannot load: %s", name, err.msg);
            }
            if (cur != NULL) {
                mods[n] = comp_module_ref(comp_set_module(r->set, idx));
                files[n].path = tr_strdup(path);
                memcpy(files[n].sha, cur->sha, sizeof cur->sha);
                n++;
            }
            continue;
        }
        mods[n] = m;
        files[n].path = tr_strdup(path);
        memcpy(files[n].sha, sha, sizeof sha);
        n++;
        changed = true;
    }
    if (n != r->nfiles) changed = true; /* a component was removed (or added) */
    comp_paths_free(&paths);

    comp_set *set = NULL;
    http_router *router = NULL;
    if (changed) {
        set = comp_set_new(mods, n);
        router = http_router_new();
        if (http_builtin_register(router, &err) < 0 ||
            (r->o.routes_fn && r->o.routes_fn(router, r->o.routes_ud, &err) < 0) ||
            comp_set_register_routes(set, router, &err) < 0) {
            if (!failed_before(r, "(routes)", err.msg))
                tr_log_error("reload: %s; the previous components keep serving", err.msg);
            http_router_free(router);
            comp_set_free(set);
            changed = false;
        }
    }
    for (size_t i = 0; i < n; i++) comp_module_unref(mods[i]);
    tr_free(mods);
    if (!changed) {
        for (size_t i = 0; i < n; i++) tr_free(files[i].path);
        tr_free(files);
        return;
    }

    /* Log what changed, then switch every worker. */
    for (size_t i = 0; i < n; i++) {
        comp_module *m = comp_set_module(set, i);
        size_t idx;
        const loaded *cur = find_loaded(r, files[i].path, &idx);
        if (cur == NULL || strcmp(cur->sha, files[i].sha) != 0)
            tr_log_info("component %s: now serving version %s (%zu route%s, %zu job%s)",
                        comp_module_name(m), comp_module_version(m), comp_module_nroutes(m),
                        comp_module_nroutes(m) == 1 ? "" : "s", comp_module_njobs(m),
                        comp_module_njobs(m) == 1 ? "" : "s");
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        bool kept = false;
        for (size_t j = 0; j < n; j++) kept = kept || strcmp(r->files[i].path, files[j].path) == 0;
        if (!kept)
            tr_log_info("component %s: removed", comp_module_name(comp_set_module(r->set, i)));
    }
    switch_state *st = tr_calloc(1, sizeof *st);
    atomic_init(&st->pending, r->o.nworkers);
    st->router = router;
    st->set = set;
    st->old_router = r->router;
    st->old_set = r->set;
    for (int i = 0; i < r->o.nworkers; i++) {
        switch_msg *m = tr_calloc(1, sizeof *m);
        m->w = r->o.workers[i];
        m->st = st;
        wk_post(r->o.workers[i], on_switch, m);
    }
    if (r->o.nworkers == 0) {
        http_router_free(st->old_router);
        comp_set_free(st->old_set);
        tr_free(st);
    }
    for (size_t i = 0; i < r->nfiles; i++) tr_free(r->files[i].path);
    tr_free(r->files);
    r->files = files;
    r->nfiles = n;
    r->set = set;
    r->router = router;
    if (r->o.sched) job_sched_set(r->o.sched, set);
}

static void *reloader_main(void *arg)
{
    server_reloader *r = arg;
    uint64_t quiet_until = 0; /* 0: nothing pending */
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        int timeout = -1;
        if (quiet_until) {
            uint64_t now = tr_now_ns();
            timeout = now >= quiet_until ? 0 : (int)((quiet_until - now) / 1000000u) + 1;
        }
        struct pollfd p[2] = {{.fd = r->inotify_fd, .events = POLLIN},
                              {.fd = r->event_fd, .events = POLLIN}};
        int n = poll(p, 2, timeout);
        if (n < 0 && errno != EINTR) break;
        if (p[1].revents & POLLIN) {
            uint64_t v = 0;
            if (read(r->event_fd, &v, sizeof v) == sizeof v && (v & MSG_STOP)) break;
            quiet_until = tr_now_ns(); /* SIGHUP: now */
        }
        if (p[0].revents & POLLIN) {
            ssize_t len = read(r->inotify_fd, buf, sizeof buf);
            bool complete = false, writing = false;
            for (char *q = buf; len > 0 && q < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)q;
                size_t nl = ev->len ? strlen(ev->name) : 0;
                bool wasm = nl > 5 && strcmp(ev->name + nl - 5, ".wasm") == 0;
                /* A .wasm renamed into place is complete (npm run build writes that way); a
                 * .wasm written in place may be one step of several. */
                if (wasm && (ev->mask & IN_MOVED_TO))
                    complete = true;
                else if (wasm || (ev->mask & IN_ISDIR))
                    writing = true; /* other files (a build's temporary one) do not matter */
                q += sizeof *ev + ev->len;
            }
            uint64_t now = tr_now_ns();
            if (writing)
                quiet_until = now + (uint64_t)QUIET_MS * 1000000u;
            else if (complete && (quiet_until == 0 || quiet_until > now))
                quiet_until = now;
        }
        if (quiet_until && tr_now_ns() >= quiet_until) {
            quiet_until = 0;
            add_watches(r); /* new project folders and dist/ folders */
            reload(r);
        }
    }
    return NULL;
}

int server__reloader_start(const server_reload_opts *o, comp_set *set, http_router *router,
                           server_reloader **out, tr_error *err)
{
    server_reloader *r = tr_calloc(1, sizeof *r);
    r->o = *o;
    r->set = set;
    r->router = router;
    r->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->inotify_fd < 0 || r->event_fd < 0) {
        int e = errno;
        if (r->inotify_fd >= 0) close(r->inotify_fd);
        if (r->event_fd >= 0) close(r->event_fd);
        tr_free(r);
        return tr_error_set(err, -e, "hot reload: %s", strerror(e));
    }
    /* The files being served now, so that an untouched file keeps its module: the hash of
     * what was loaded (computed at load; reading and hashing the files again would only cost
     * start-up time). */
    r->nfiles = comp_set_count(set);
    r->files = tr_calloc(r->nfiles + 1, sizeof *r->files);
    for (size_t i = 0; i < r->nfiles; i++) {
        comp_module *m = comp_set_module(set, i);
        r->files[i].path = tr_strdup(comp_module_path(m));
        memcpy(r->files[i].sha, comp_module_sha256(m), sizeof r->files[i].sha);
    }
    add_watches(r);
    int rc = pthread_create(&r->thread, NULL, reloader_main, r);
    if (rc != 0) {
        r->set = NULL;
        r->router = NULL;
        server__reloader_free(r);
        return tr_error_set(err, -rc, "hot reload: cannot start a thread: %s", strerror(rc));
    }
    r->running = true;
    *out = r;
    return 0;
}

static void post(server_reloader *r, uint64_t v)
{
    ssize_t w = write(r->event_fd, &v, sizeof v);
    (void)w;
}

void server__reloader_trigger(server_reloader *r)
{
    post(r, MSG_RELOAD);
}

void server__reloader_stop(server_reloader *r)
{
    if (r == NULL || !r->running) return;
    post(r, MSG_STOP);
    pthread_join(r->thread, NULL);
    r->running = false;
}

void server__reloader_free(server_reloader *r)
{
    if (r == NULL) return;
    server__reloader_stop(r);
    close(r->inotify_fd);
    close(r->event_fd);
    for (size_t i = 0; i < r->nfiles; i++) tr_free(r->files[i].path);
    tr_free(r->files);
    for (size_t i = 0; i < r->nfailed; i++) tr_free(r->failed[i]);
    tr_free(r->failed);
    comp_set_free(r->set);
    http_router_free(r->router);
    tr_free(r);
}
