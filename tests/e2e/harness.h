/* tests/e2e/harness.h: helpers for end-to-end tests that run the real `trail` binary.
 *
 * th_server_start() runs `$TRAIL_BIN run --address 127.0.0.1:0 --data-dir DIR [extra...]` with
 * stdout and stderr captured to files, waits for the one "listening on http://HOST:PORT" line and
 * parses the port. The child gets PR_SET_PDEATHSIG, so a test that dies never leaves a server
 * behind. th_conn is a raw HTTP/1.1 client over loopback that reads whole responses
 * (Content-Length, chunked, or until close), so keep-alive and pipelining can be tested byte for
 * byte.
 *
 * Every helper reports failures by return value; the tests CHECK them. Nothing here allocates
 * outside what the th_*_free() functions release. */
#ifndef TRAIL_TESTS_E2E_HARNESS_H
#define TRAIL_TESTS_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct th_server {
    pid_t pid;          /* 0 when not running */
    int port;           /* parsed from the listening line */
    char data_dir[512]; /* the --data-dir passed */
    char out_path[600]; /* captured stdout (listening line, access log) */
    char err_path[600]; /* captured stderr */
} th_server;

/* Starts the server. data_dir NULL means "<test_tmpdir()>/depot". extra is a NULL-terminated list
 * of additional arguments (may be NULL). Returns 0 once the listening line was seen, -1 if the
 * process exited or printed nothing within 20 s (its stderr is copied to our stderr). */
int th_server_start(th_server *s, const char *data_dir, const char *const *extra);
/* The same, waiting up to timeout_ms for the listening line (a compiled component is compiled to
 * native code before trail listens, the first time). */
int th_server_start_within(th_server *s, const char *data_dir, const char *const *extra,
                           int timeout_ms);

/* Sends SIGTERM and waits (up to 20 s, then SIGKILL). Returns the exit status, or 128+signal. */
int th_server_stop(th_server *s);

/* Sends a signal without waiting. */
void th_server_signal(th_server *s, int sig);

/* Waits for exit (up to timeout_ms); returns the status as th_server_stop, or -1 on timeout. */
int th_server_wait(th_server *s, int timeout_ms);

/* The captured output so far, NUL-terminated; free with free(). Never NULL. */
char *th_server_stdout(const th_server *s);
char *th_server_stderr(const th_server *s);

/* Reads a whole file into a NUL-terminated allocation (free with free()); NULL if unreadable. */
char *th_read_file(const char *path, size_t *len_out);
/* Writes len bytes to path (creating directories is the caller's job). Returns 0 or -1. */
int th_write_file(const char *path, const void *data, size_t len);

/* Runs $TRAIL_BIN with args (NULL-terminated, not including the program name), waits up to
 * timeout_ms, and returns its exit status (128+signal if killed, -1 on timeout). *out and *err
 * (either may be NULL) receive the captured output; free with free(). */
int th_run(const char *const *args, int timeout_ms, char **out, char **err);

/* ---- raw HTTP client ---- */
typedef struct th_conn {
    int fd;
    char *buf; /* received bytes not yet returned as a response */
    size_t len, cap;
} th_conn;

typedef struct th_resp {
    int status;
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated; body_len bytes */
    size_t body_len;
} th_resp;

/* Connects to 127.0.0.1:port. Returns 0 or -1. */
int th_conn_open(th_conn *c, int port);
void th_conn_close(th_conn *c);
/* Sends all bytes; returns 0, or -1 if the peer closed or reset. */
int th_conn_send(th_conn *c, const void *data, size_t len);
int th_conn_send_str(th_conn *c, const char *s);

/* Reads one response. head_only: the request was HEAD (no body whatever the headers say).
 * Returns 0, -1 when the connection closed (or reset) before a complete response, -2 on
 * timeout, -3 if the bytes are not an HTTP/1.1 response. */
int th_conn_read(th_conn *c, th_resp *r, bool head_only, int timeout_ms);

/* Waits until the server closes the connection: returns 1 on EOF or reset, 0 on timeout, and
 * discards anything received meanwhile into *extra (may be NULL) as a count of bytes. */
int th_conn_wait_closed(th_conn *c, int timeout_ms, size_t *extra);

/* A header's value (case-insensitive name), copied NUL-terminated into out; NULL if absent. */
const char *th_resp_header(const th_resp *r, const char *name, char *out, size_t cap);
void th_resp_free(th_resp *r);

/* One request on a fresh connection: connect, send raw, read the response, close. Returns as
 * th_conn_read (or -1 if connecting failed). */
int th_request(int port, const char *raw, th_resp *r);

#endif
