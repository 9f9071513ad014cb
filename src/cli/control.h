/* cli/control.h: the control socket of `trail run`, through which other trail commands on the
 * same data directory reach the running server (`trail jobs run NAME` runs the job there).
 *
 * DESIGN: a unix stream socket DATA_DIR/trail.sock, mode 0600, created by the server and removed
 * when it stops; nothing listens on a network port. A connection carries one request line and
 * gets one answer, then the server closes it (protocol in docs/architecture.md). The server
 * answers only peers of its own user (SO_PEERCRED), on a thread of its own; a job runs on a
 * worker like a scheduled run. */
#ifndef TRAIL_CLI_CONTROL_H
#define TRAIL_CLI_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "worker/worker.h"

/* The socket's file name in the data directory. */
#define CONTROL_SOCKET_NAME "trail.sock"

typedef struct control control;

/* Creates and binds DATA_DIR/trail.sock with mode 0600, replacing a stale one (a socket nobody
 * answers on). Call it before any thread starts: it sets the process's umask for the bind.
 * Errors: TR_ECONFLICT when a server already answers on it, or when the path is not a socket;
 * -errno when it cannot be created. err says which. */
int control_open(const char *data_dir, control **out, tr_error *err);

/* Starts answering on a thread of its own; jobs run on workers[], in turn (borrowed: they must
 * outlive control_stop()), each bounded by job_deadline_ms. */
int control_start(control *c, wk_worker **workers, int nworkers, uint64_t job_deadline_ms,
                  tr_error *err);

/* Stops answering, closes the open connections and removes the socket file (when it is still
 * the one this server created). Jobs in flight go on to their end on their worker. */
void control_stop(control *c);

/* Frees c once no worker can end one of its jobs any more (after wk_join()). NULL is a no-op. */
void control_free(control *c);

/* ---- the client ---- */

/* Sends request (one line, without its newline) to the server of data_dir and waits for the
 * answer: *ok tells whether it succeeded, text (appended) is what it says. TR_ENOTFOUND when no
 * server runs on data_dir (no socket, or nobody answers on it); other errors say what failed. */
int control_call(const char *data_dir, const char *request, bool *ok, tr_buf *text, tr_error *err);

#endif
