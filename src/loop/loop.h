/* loop/loop.h: one worker's event loop: epoll for sockets, a timer heap, and a message queue
 * (eventfd) through which other threads hand the worker work.
 *
 * DESIGN: callers embed loop_io and loop_timer in their own structs (no allocation per watcher or
 * per timer start). The loop caches the monotonic clock once per iteration (loop_now_ns), which is
 * what timers and timeouts use. Tick hooks run once per iteration after all events were handled,
 * before the loop sleeps again: that is where a worker flushes batched output such as its access
 * log. loop_post() is the only function any thread may call; everything else is
 * Thread: owning worker only. */
#ifndef TRAIL_LOOP_LOOP_H
#define TRAIL_LOOP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct loop loop;

/* ---- file descriptors ---- */
typedef struct loop_io loop_io;
/* events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP bits as reported by epoll. */
typedef void (*loop_io_fn)(loop *l, loop_io *io, uint32_t events);
struct loop_io {
    int fd;
    uint32_t events; /* currently registered interest */
    loop_io_fn fn;
};

/* Registers fd with interest `events` (EPOLLIN, EPOLLOUT, ...; level-triggered unless EPOLLET is
 * passed). io must stay valid until loop_io_del(). Returns 0 or -errno. */
int loop_io_add(loop *l, loop_io *io, int fd, uint32_t events, loop_io_fn fn);
/* Changes the interest set; a no-op when unchanged. Returns 0 or -errno. */
int loop_io_mod(loop *l, loop_io *io, uint32_t events);
/* Unregisters (does not close the fd). Events already fetched for io in this iteration are
 * dropped, so io may be freed right after this call. */
void loop_io_del(loop *l, loop_io *io);

/* ---- timers ---- */
typedef struct loop_timer loop_timer;
typedef void (*loop_timer_fn)(loop *l, loop_timer *t);
struct loop_timer {
    uint64_t deadline_ns; /* loop clock; valid while active */
    size_t heap_idx;      /* position in the heap; SIZE_MAX when not active */
    loop_timer_fn fn;
};

/* Prepares t (not active). */
void loop_timer_init(loop_timer *t, loop_timer_fn fn);
/* (Re)starts t to fire once at loop_now_ns() + after_ms. */
void loop_timer_start(loop *l, loop_timer *t, uint64_t after_ms);
/* (Re)starts t to fire once at an absolute loop-clock deadline. */
void loop_timer_start_at(loop *l, loop_timer *t, uint64_t deadline_ns);
/* Stops t if active; safe to call on an inactive timer. */
void loop_timer_stop(loop *l, loop_timer *t);
static inline bool loop_timer_active(const loop_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* ---- message queue ---- */
typedef void (*loop_msg_fn)(loop *l, void *arg);

/* Thread: any. Queues fn(l, arg) to run on l's thread in a later iteration, in posting order.
 * Returns 0 (it cannot fail short of OOM, which aborts). */
int loop_post(loop *l, loop_msg_fn fn, void *arg);

/* ---- tick hooks ---- */
typedef void (*loop_tick_fn)(loop *l, void *ud);
/* Adds a hook run at the end of every iteration. At most LOOP_MAX_TICKS hooks. */
void loop_on_tick(loop *l, loop_tick_fn fn, void *ud);
#define LOOP_MAX_TICKS 8

/* ---- the loop ---- */
/* Creates a loop (epoll instance + eventfd). Returns 0 or -errno. */
int loop_new(loop **out);
/* Frees the loop; messages still queued are dropped without running (their args leak unless the
 * owner drained them), so stop posting before freeing. NULL is a no-op. */
void loop_free(loop *l);

/* Runs until loop_stop() is called from the loop's thread. Returns 0 or -errno of epoll_wait. */
int loop_run(loop *l);
/* Makes loop_run() return after the current iteration. */
void loop_stop(loop *l);

/* The monotonic clock cached at the start of the current iteration. */
uint64_t loop_now_ns(const loop *l);

#endif
