/* http/http_internal.h: the connection and server structs shared by the files of src/http/.
 * Thread: owning worker only. */
#ifndef TRAIL_HTTP_HTTP_INTERNAL_H
#define TRAIL_HTTP_HTTP_INTERNAL_H

#include "http/http.h"

#include <llhttp.h>
#include <sys/types.h>

typedef struct http_conn http_conn;

/* Offsets into conn->in of one received header, valid while its message is being handled. */
typedef struct http_hdr_off {
    uint32_t name_off, name_len, value_off, value_len;
} http_hdr_off;

struct http_response {
    http_conn *conn;
    tr_buf headers; /* "Name: value\r\n" lines added by the handler; reused */
    bool done;
    bool streaming;        /* http_response_stream_begin(): the body comes in pieces */
    int stream_status;
    size_t stream_bytes;   /* body bytes streamed, for the access log */
    void (*cancel_fn)(void *ud); /* see http_response_on_cancel() */
    void *cancel_ud;
};

enum http_deadline_kind { DL_NONE, DL_IDLE, DL_HEADER, DL_BODY, DL_LINGER };

struct http_conn {
    loop_io io;
    loop_timer timer;
    http_server *srv;
    http_conn *prev, *next; /* srv->conns, or srv->free_conns (next only) */

    llhttp_t parser;
    tr_buf in;         /* received bytes; requests point into it while handled */
    size_t parsed;     /* in[0..parsed) was fed to llhttp */
    size_t msg_start;  /* first byte of the message being parsed (<= its real start) */
    uint32_t hdr_end;  /* end of the last url/header byte of the current message */
    bool in_message;   /* between message begin and message complete */
    bool headers_done; /* of the current message */
    uint8_t hdr_state; /* 1 in a field name, 2 in a value, else between headers */
    bool expect_continue;
    bool te_unsupported; /* Transfer-Encoding other than one "chunked" */
    bool has_cl, has_te, has_host;
    uint32_t url_off, url_len;
    uint32_t trailer_len; /* bytes of trailer fields seen (they are not kept) */
    http_hdr_off *hdrs;
    uint32_t nhdrs, hdrs_cap;
    tr_buf body;
    uint64_t body_counted; /* of srv->body_bytes: what body holds of the current request */
    int err_status; /* set by a callback that rejects the message */
    const char *err_msg;

    http_header *headers; /* materialized for the handler; hdrs_cap entries */
    http_request req;
    http_response res;
    tr_arena arena;
    uint64_t req_start_ns; /* for the access log */
    bool keep_alive;       /* of the request being handled */
    bool parked;           /* a handler has not completed its response yet */
    bool dispatching;      /* inside handler call */

    int file_fd;      /* a file body being sent after out (sendfile), or -1 */
    off_t file_off;
    uint64_t file_left;
    tr_buf out;       /* responses not yet written */
    size_t out_sent;  /* out[0..out_sent) already written */
    bool closing;     /* close once out is written */
    bool lingering;   /* write side shut; discarding input until EOF or the linger timer */
    bool peer_closed; /* read EOF: answer what was received, then close */
    bool broken;      /* epoll refused a change; close at the next chance */
    uint8_t dl_kind;
    uint64_t deadline_ns;
    uint64_t body_deadline_ns; /* headers done + body_total_timeout_ms */
};

/* One listening socket of a server (one per address it listens on). */
typedef struct http_listener {
    loop_io io;
    int fd; /* -1 once closed */
    struct http_server *s;
} http_listener;

struct http_server {
    loop *loop;
    http_listener listeners[HTTP_MAX_LISTENERS];
    int nlisteners;
    loop_timer accept_timer; /* re-enables accept after EMFILE */
    int spare_fd;            /* /dev/null, given up to accept and refuse when out of fds */
    http_server_opts o;
    http_conn *conns; /* live connections, doubly linked, most recently active first */
    http_conn *conns_tail; /* the least recently active */
    size_t nconns;
    http_conn *free_conns; /* closed connections kept for reuse (buffers stay allocated) */
    size_t nfree;
    bool draining;
    void (*drain_done)(void *arg);
    void *drain_arg;
    uint64_t body_bytes; /* request body bytes held by the connections (conn.c) */
    tr_buf log;    /* access log lines, written once per loop iteration */
    char date[64]; /* "Date: ...\r\n" */
    size_t date_len;
    int64_t date_sec;
    uint64_t date_next_ns; /* loop clock when the wall-clock second changes */
};

/* conn.c */
void http__conn_accept(http_server *s, int fd);
void http__conn_close(http_conn *c);
void http__conn_free(http_conn *c);
/* Called when a parked response completes outside the handler. */
void http__conn_resume(http_conn *c);
/* Called when a drain starts: closes c if idle, otherwise marks it to close after its request. */
void http__conn_drain(http_conn *c);
/* Closes the least recently active connection that is between requests (none received, none
 * being answered, nothing left to write), looking at no more than a few hundred; returns false
 * when there is none. */
bool http__conn_evict_idle(http_server *s);

/* Writes what a streamed response has in out; -1 when the peer is gone. */
int http__conn_stream_flush(http_conn *c);

/* Bookkeeping after a response was written: access log, resume the pipeline. */
void http__conn_response_done(http_conn *c, int status, size_t body_len);

/* response.c */
/* Writes the status line, standard headers, res->headers and (when body is not NULL) the body
 * into conn->out. Returns true when len bytes of body must follow (not HEAD, 204, 304, 1xx). */
bool http__response_write(http_response *res, int status, const char *content_type,
                          const void *body, size_t len);
/* Refreshes s->date (and when to do so next); http__response_write calls it when due. */
void http__date_update(http_server *s);

#endif
