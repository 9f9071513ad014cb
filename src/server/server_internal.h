/* server/server_internal.h: the parts of server/: hot reload (reload.c) and the control socket
 * (control.c), used by run.c. */
#ifndef TRAIL_SERVER_SERVER_INTERNAL_H
#define TRAIL_SERVER_SERVER_INTERNAL_H

#include <stdint.h>

#include "server/server.h"

#include "base/base.h"
#include "component/component.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "worker/worker.h"

/* ---- hot reload (reload.c) ---- */

typedef struct server_reload_opts {
    const char *wasm_dir;
    comp_limits limits;
    wk_worker **workers; /* borrowed: every worker, started */
    int nworkers;
    job_sched *sched;    /* rescheduled after each switch; may be NULL */
    /* Registers the routes that are not components' (the Record APIs) on each new router;
     * may be NULL. routes_ud is borrowed and must outlive the reloader. */
    int (*routes_fn)(http_router *r, void *ud, tr_error *err);
    void *routes_ud;
} server_reload_opts;

typedef struct server_reloader server_reloader;

/* Starts watching. Takes ownership of set and router (what the workers serve now); the paths of
 * set's modules must be under wasm_dir. */
int server__reloader_start(const server_reload_opts *o, comp_set *set, http_router *router,
                           server_reloader **out, tr_error *err);
/* Thread: any. Reloads now (SIGHUP). */
void server__reloader_trigger(server_reloader *r);
/* Stops the thread. The workers may still use the current set and router: free them with
 * server__reloader_free() after the workers have stopped. */
void server__reloader_stop(server_reloader *r);
void server__reloader_free(server_reloader *r); /* NULL is a no-op */

/* ---- the control socket's server side (control.c) ---- */

typedef struct server_control server_control;

/* Creates and binds DATA_DIR/trail.sock with mode 0600, replacing a stale one (a socket nobody
 * answers on). Call it before any thread starts: it sets the process's umask for the bind.
 * Errors: TR_ECONFLICT when a server already answers on it, or when the path is not a socket;
 * -errno when it cannot be created. err says which. */
int server__control_open(const char *data_dir, server_control **out, tr_error *err);

/* Starts answering on a thread of its own; jobs run on workers[], in turn (borrowed: they must
 * outlive server__control_stop()), each bounded by job_deadline_ms. jobs_cluster (cluster mode;
 * else NULL, borrowed until server__control_free()) is where the runs are recorded. */
int server__control_start(server_control *c, wk_worker **workers, int nworkers,
                          uint64_t job_deadline_ms, job_cluster *jobs_cluster, tr_error *err);

/* Stops answering, closes the open connections and removes the socket file (when it is still
 * the one this server created). Jobs in flight go on to their end on their worker. */
void server__control_stop(server_control *c);

/* Frees c once no worker can end one of its jobs any more (after wk_join()). NULL is a no-op. */
void server__control_free(server_control *c);

/* ---- cluster mode's migrations (cluster_db.c) ---- */

/* Applies the built-in migrations and those of migrations_dir to the cluster's database
 * (GUEST_CLUSTER_DB), through the leader found through any of addresses: each at most once for
 * the whole cluster, in its own transaction with its history row. Errors: the client's (no
 * leader: TR_ETIMEDOUT), TR_ESQL "migration LABEL failed on the cluster: ..." (rolled back, those
 * before it stay applied), TR_ETIMEDOUT when the database stayed locked, TR_ECONFIG when the
 * cluster has applied a migration that migrations_dir lacks. Thread: the main thread,
 * before the workers start. */
int server__cluster_migrate(const char *const *addresses, size_t n, const char *migrations_dir,
                            tr_error *err);

/* Cluster mode's mount: users and sign-in (auth_http_handle, ud the auth_ctx), served through
 * cluster/appdb on the cluster's leader. */
bool server__cluster_mount_accepts(const char *path, size_t len);
void server__cluster_mount(const struct http_request *req, struct http_response *res, void *ud);

/* Users and sign-in in the cluster: creates the auth tables (_session, _auth_code) in the
 * cluster's database and makes the cluster's signing key this node's. The key lives in the
 * cluster's _cluster_signing_key, made here (not by a migration, so no node's schema mirror has
 * it): the first node to get here stores its own key (DATA_DIR/secrets/keys, made when missing)
 * with INSERT OR IGNORE; every node then reads the cluster's and, when it differs from its own,
 * writes it over its key files (the old private key kept as private_key.pem.replaced) and logs
 * it, so that the server's auth_keys_load() reads the cluster's key. Waits out other nodes'
 * transactions up to the start's deadline. Errors: the client's, TR_EPARSE for a damaged key row,
 * -errno writing the files. Thread: the main thread, before the workers start. */
int server__cluster_auth(const char *const *addresses, size_t n, const char *data_dir,
                         tr_error *err);

#endif
