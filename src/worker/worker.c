/* worker/worker.c: a worker thread: loop + HTTP server + database connection.
 *
 * DESIGN: wk_start() creates the thread and blocks on a condition variable until the thread has
 * opened its database and started serving (or failed), so start-up errors surface in the caller
 * before trail prints its listening line. Shutdown is a message on the worker's queue: the server
 * drains, a timer bounds the drain by shutdown_timeout_ms, and the loop ends when either fires. */
#include "worker/worker.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "component/component.h"
#include "db/db.h"
#include "guest/guest.h"

#include "wasm/runtime/wrt.h"

struct wk_worker {
    wk_params p;
    pthread_t thread;
    loop *loop;
    http_server *server;
    db_conn *db;
    guest_env genv;     /* what the worker's isolates share: loop, database, filesystem */
    comp_worker *comps; /* the worker's component instances; NULL when none */
    loop_timer shutdown_timer;
    int run_rc;

    pthread_mutex_t mu; /* guards started, start_rc, start_err during start-up */
    pthread_cond_t cv;
    bool started;
    int start_rc;
    tr_error start_err;
};

static void close_listeners(const wk_params *p)
{
    if (p->listen_fd >= 0) close(p->listen_fd);
    for (int i = 0; i < p->nmore_listen_fds; i++) close(p->more_listen_fds[i]);
}

static void on_drained(void *arg)
{
    wk_worker *w = arg;
    loop_stop(w->loop);
}

static void on_shutdown_timeout(loop *l, loop_timer *t)
{
    wk_worker *w = TR_CONTAINER_OF(t, wk_worker, shutdown_timer);
    size_t n = http_server_conn_count(w->server);
    if (n) tr_log_warn("worker %d: shutdown timeout, closing %zu connection(s)", w->p.index, n);
    /* Answer requests parked in isolates (503) before their connections go away. */
    comp_worker_free(w->comps);
    w->comps = NULL;
    http_server_close_all(w->server);
    loop_stop(l);
}

static void on_shutdown_msg(loop *l, void *arg)
{
    wk_worker *w = arg;
    loop_timer_start(l, &w->shutdown_timer, w->p.shutdown_timeout_ms);
    http_server_drain(w->server, on_drained, w);
}

static void start_done(wk_worker *w, int rc)
{
    pthread_mutex_lock(&w->mu);
    w->started = true;
    w->start_rc = rc;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
    wk_worker *w = arg;
    int rc = loop_new(&w->loop);
    if (rc < 0) {
        tr_error_set(&w->start_err, rc, "worker %d: event loop: %s", w->p.index, tr_strerror(rc));
        goto out;
    }
    loop_timer_init(&w->shutdown_timer, on_shutdown_timeout);
    if (w->p.db_path) {
        rc = db_open_guarded(w->p.db_path,
                             w->p.temp_max_bytes ? w->p.temp_max_bytes : DB_TEMP_MAX_DEFAULT,
                             &w->db, &w->start_err);
        if (rc < 0) goto out_loop;
    }
    if (w->db && w->p.db_hook) w->p.db_hook(w->db, w->p.db_hook_ud);
    guest_env_init(&w->genv, w->loop, w->db, w->p.fs);
    w->genv.fetch_opts = w->p.fetch;
    w->genv.kv = w->p.kv;
    if (w->genv.sql) guest_sql_set_result_budget(w->genv.sql, w->p.result_cache_bytes);
    if (w->p.components) {
        rc = comp_worker_new(w->p.components, &w->genv, &w->comps, &w->start_err);
        if (rc < 0) goto out_env;
    }
    http_server_opts o = {
        .limits = w->p.limits,
        .router = w->p.router,
        .mount = w->p.mount,
        .statics = w->p.statics,
        .access_log = w->p.access_log,
    };
    rc = http_server_new(w->loop, w->p.listen_fd, &o, &w->server);
    for (int i = 0; i < w->p.nmore_listen_fds; i++) {
        if (rc < 0)
            close(w->p.more_listen_fds[i]);
        else if ((rc = http_server_add_listener(w->server, w->p.more_listen_fds[i])) < 0) {
            http_server_free(w->server);
            w->server = NULL;
        }
    }
    /* From here every listener belongs to the server, or is closed. */
    w->p.listen_fd = -1;
    w->p.nmore_listen_fds = 0;
    if (rc < 0) {
        tr_error_set(&w->start_err, rc, "worker %d: server: %s", w->p.index, tr_strerror(rc));
        goto out_comps;
    }
    start_done(w, 0);
    w->run_rc = loop_run(w->loop);

    /* One exit, in reverse, for a worker that ran and for one that failed to start. */
out_comps:
    comp_worker_free(w->comps);
    w->comps = NULL;
out_env:
    guest_env_deinit(&w->genv);
    http_server_free(w->server); /* NULL if it was never created */
    loop_timer_stop(w->loop, &w->shutdown_timer);
    db_close(w->db);
    w->db = NULL;
out_loop:
    if (rc < 0) { /* a worker that ran keeps its loop until wk_join(): others may still post */
        loop_free(w->loop);
        w->loop = NULL;
    }
out:
    if (rc < 0) {
        close_listeners(&w->p);
        start_done(w, rc);
    }
    auth_request_caller_forget(); /* the tokens this thread remembered */
    return NULL;
}

int wk_start(const wk_params *p, wk_worker **out, tr_error *err)
{
    wk_worker *w = tr_calloc(1, sizeof *w);
    w->p = *p;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    /* Guest code runs on workers: the engine's stack size and guard. */
    pthread_attr_t attr;
    int rc = wrt_thread_attr_init(&attr);
    if (rc < 0) {
        close_listeners(p);
        rc = tr_error_set(err, rc, "worker %d: thread attributes: %s", p->index, tr_strerror(rc));
        goto fail;
    }
    rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close_listeners(p);
        rc = tr_error_set(err, -rc, "worker %d: cannot start a thread: %s", p->index, strerror(rc));
        goto fail;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->started)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->start_rc < 0) {
        pthread_join(w->thread, NULL);
        rc = w->start_rc;
        if (err) *err = w->start_err;
        goto fail;
    }
    *out = w;
    return 0;
fail:
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    tr_free(w);
    return rc;
}

void wk_shutdown(wk_worker *w)
{
    loop_post(w->loop, on_shutdown_msg, w);
}

void wk_post(wk_worker *w, loop_msg_fn fn, void *arg)
{
    loop_post(w->loop, fn, arg);
}

int wk_join(wk_worker *w)
{
    pthread_join(w->thread, NULL);
    int rc = w->run_rc;
    loop_free(w->loop);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    tr_free(w);
    return rc;
}

int wk_switch(wk_worker *w, const http_router *router, comp_set *set, tr_error *err)
{
    int rc = comp_worker_switch(&w->comps, set, &w->genv, err);
    if (rc == 0) http_server_set_router(w->server, router);
    return rc;
}
