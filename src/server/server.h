/* server/server.h: `trail run` as a server: start-up, the component set and its hot reload, job
 * launching, the control socket, and graceful shutdown. cli/ turns argv into server_opts and
 * calls server_run().
 *
 * The control socket DATA_DIR/trail.sock is how other trail commands on the same data directory
 * reach the running server (`trail jobs run NAME` runs the job there): a unix stream socket,
 * mode 0600, created by the server and removed when it stops; nothing listens on a network port.
 * A connection carries one request line and gets one answer, then the server closes it (protocol
 * in docs/architecture.md). The server answers only peers of its own user (SO_PEERCRED). */
#ifndef TRAIL_SERVER_SERVER_H
#define TRAIL_SERVER_SERVER_H

#include <stdbool.h>

#include "base/base.h"
#include "config/config.h"
#include "guest/guest.h"

/* At most this many worker threads. */
#define SERVER_MAX_WORKERS 256

/* The control socket's file name in the data directory. */
#define SERVER_CONTROL_SOCKET_NAME "trail.sock"

typedef struct server_opts {
    const char *address;    /* HOST:PORT; NULL: the config's server.address */
    const char *data_dir;   /* created with its defaults if missing */
    const char *public_dir; /* static files; may be NULL */
    const char *root_fs;    /* the directory guests may read; NULL: none */
    int threads;            /* workers, 1..SERVER_MAX_WORKERS; 0: the config's, else the CPUs */
    bool quiet;             /* no access log */
    const char *cluster_address; /* cluster mode: this node's HOST:PORT; NULL: the config's */
    const char *join;       /* comma-separated members to join through; NULL: the config's */
} server_opts;

/* Serves until SIGINT or SIGTERM (SIGHUP reloads the components); errors are printed on stderr
 * with the prefix "trail run: ". Returns the process exit status: 0 after a graceful stop, 1
 * when start-up or a worker failed. Thread: the main thread, before any other thread exists. */
int server_run(const server_opts *o);

/* The guests' fetch() policy of config c (borrowed: it points into c), for `trail run` and the
 * commands that run guest code like it (`trail jobs run` without a server). */
guest_fetch_opts server_fetch_opts(const cfg_fetch *c);

/* ---- the control socket's client ---- */

/* Sends request (one line, without its newline) to the server of data_dir and waits for the
 * answer: *ok tells whether it succeeded, text (appended) is what it says. TR_ENOTFOUND when no
 * server runs on data_dir (no socket, or nobody answers on it); other errors say what failed. */
int server_control_call(const char *data_dir, const char *request, bool *ok, tr_buf *text,
                        tr_error *err);

#endif
