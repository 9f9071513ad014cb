/* worker/worker.h: trail's worker threads. Each owns an event loop, an HTTP server on its own
 * SO_REUSEPORT listener, and its own SQLite connection; nothing mutable is shared between
 * workers. Other threads reach a worker only through wk_post() (the loop's eventfd queue).
 *
 * Threads are created with wrt_thread_attr_init() (WRT_THREAD_STACK_SIZE and its guard) because
 * guest code runs on them. */
#ifndef TRAIL_WORKER_WORKER_H
#define TRAIL_WORKER_WORKER_H

#include <stdbool.h>

#include "base/base.h"
#include "http/http.h"
#include "loop/loop.h"

struct db_conn;

typedef struct wk_params {
    int index;     /* 0..N-1, for logs */
    int listen_fd; /* listening socket; the worker takes ownership */
    int more_listen_fds[HTTP_MAX_LISTENERS - 1]; /* other addresses' (::1); owned likewise */
    int nmore_listen_fds;
    http_limits limits;
    const http_router *router;  /* shared, read-only; must outlive the worker */
    http_mount mount;           /* paths served before the router (the auth API); may be empty */
    const http_static *statics; /* may be NULL */
    bool access_log;
    const char *db_path;         /* opened by the worker with db_open_guarded(); NULL: none */
    uint32_t shutdown_timeout_ms;
    struct comp_set *components;   /* WASM components to instantiate; NULL for none; shared */
    const struct guest_fs *fs;     /* the guests' filesystem (--runtime-root-fs); NULL: none */
    const struct guest_fetch_opts *fetch; /* guests' fetch() settings; NULL: the defaults; shared */
    size_t result_cache_bytes; /* remembered query results (database.result_cache_mb); 0: none */
    struct kv_store *kv;       /* the key-value store every worker shares; NULL: none */
    uint64_t temp_max_bytes;   /* its temporary files (database.temp_max_mb); 0: the default */
    /* Called on the worker's thread once its connection is open (the Record APIs' realtime
     * hooks: rec_db_attach); may be NULL. db_hook_ud is shared and must outlive the worker. */
    void (*db_hook)(struct db_conn *db, void *ud);
    void *db_hook_ud;
} wk_params;

typedef struct wk_worker wk_worker;

/* Starts a worker thread and waits until it has set up (opened its database, started its server).
 * Errors: -errno or the db error, with err saying what failed; the thread is then gone and
 * the listening sockets closed. */
int wk_start(const wk_params *p, wk_worker **out, tr_error *err);

/* Thread: any. Asks the worker to stop gracefully: stop accepting, finish in-flight requests
 * (at most shutdown_timeout_ms, then connections are closed), close its database, end. */
void wk_shutdown(wk_worker *w);

/* Waits for the thread to end and frees w. Returns 0, or the error the loop ended with. */
int wk_join(wk_worker *w);

/* Thread: any. Runs fn(loop, arg) on the worker's thread (for jobs, reloads). */
void wk_post(wk_worker *w, loop_msg_fn fn, void *arg);

/* Thread: owning worker only (a wk_post() message). Switches the worker to router and the
 * components of set for requests parsed from now on (see comp_worker_switch()); on error nothing
 * changes. The caller keeps router and set alive until every worker has switched away. */
int wk_switch(wk_worker *w, const http_router *router, struct comp_set *set, tr_error *err);

#endif
