/* loop/loop.c: epoll loop, binary timer heap and eventfd message queue for one worker.
 *
 * DESIGN: an iteration is: run due timers, compute the epoll timeout from the heap's top, wait,
 * dispatch events, run tick hooks. Events fetched by epoll_wait are kept in l->events while they
 * are dispatched, so loop_io_del() can blank the ones belonging to a watcher that a previous
 * callback in the same batch removed (its memory may already be freed). The queue is a mutex-
 * guarded singly linked FIFO; the eventfd is written only when the queue goes from empty to
 * non-empty, so a burst of posts costs one wake-up. */
#include "loop/loop.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct loop_msg {
    struct loop_msg *next;
    loop_msg_fn fn;
    void *arg;
} loop_msg;

struct loop {
    int epfd;
    int evfd;
    loop_io ev_io;
    bool stop;
    bool in_timers; /* inside run_timers() */
    uint64_t now_ns;

    loop_timer **heap; /* min-heap on deadline_ns */
    size_t heap_len, heap_cap;

    struct epoll_event events[MAX_EVENTS];
    int nevents, ev_pos; /* events being dispatched: [ev_pos, nevents) still pending */

    pthread_mutex_t mu; /* guards q_head, q_tail */
    loop_msg *q_head, *q_tail;

    struct {
        loop_tick_fn fn;
        void *ud;
    } ticks[LOOP_MAX_TICKS];
    size_t nticks;
};

/* ---- timers ---- */

static void heap_swap(loop *l, size_t a, size_t b)
{
    loop_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_idx = a;
    l->heap[b]->heap_idx = b;
}

static void heap_up(loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->deadline_ns <= l->heap[i]->deadline_ns) break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->heap_len && l->heap[a]->deadline_ns < l->heap[m]->deadline_ns) m = a;
        if (b < l->heap_len && l->heap[b]->deadline_ns < l->heap[m]->deadline_ns) m = b;
        if (m == i) break;
        heap_swap(l, i, m);
        i = m;
    }
}

void loop_timer_init(loop_timer *t, loop_timer_fn fn)
{
    t->deadline_ns = 0;
    t->heap_idx = SIZE_MAX;
    t->fn = fn;
}

void loop_timer_stop(loop *l, loop_timer *t)
{
    size_t i = t->heap_idx;
    if (i == SIZE_MAX) return;
    l->heap_len--;
    if (i != l->heap_len) {
        l->heap[i] = l->heap[l->heap_len];
        l->heap[i]->heap_idx = i;
        heap_down(l, i);
        heap_up(l, i);
    }
    t->heap_idx = SIZE_MAX;
}

void loop_timer_start_at(loop *l, loop_timer *t, uint64_t deadline_ns)
{
    /* A timer (re)started by a timer callback for "now" runs in the next iteration, after I/O:
     * otherwise a callback that re-arms itself with 0 ms (setTimeout(f, 0) in a guest) would
     * keep run_timers() going forever and starve every connection of the worker. */
    if (l->in_timers && deadline_ns <= l->now_ns) deadline_ns = l->now_ns + 1;
    if (t->heap_idx != SIZE_MAX) {
        uint64_t old = t->deadline_ns;
        t->deadline_ns = deadline_ns;
        if (deadline_ns < old)
            heap_up(l, t->heap_idx);
        else
            heap_down(l, t->heap_idx);
        return;
    }
    if (l->heap_len == l->heap_cap) {
        l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 64;
        l->heap = tr_realloc(l->heap, l->heap_cap * sizeof *l->heap);
    }
    t->deadline_ns = deadline_ns;
    t->heap_idx = l->heap_len;
    l->heap[l->heap_len++] = t;
    heap_up(l, t->heap_idx);
}

void loop_timer_start(loop *l, loop_timer *t, uint64_t after_ms)
{
    loop_timer_start_at(l, t, l->now_ns + after_ms * 1000000ull);
}

static void run_timers(loop *l)
{
    l->in_timers = true;
    while (l->heap_len > 0 && l->heap[0]->deadline_ns <= l->now_ns) {
        loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->fn(l, t);
    }
    l->in_timers = false;
}

/* ---- fds ---- */

int loop_io_add(loop *l, loop_io *io, int fd, uint32_t events, loop_io_fn fn)
{
    io->fd = fd;
    io->events = events;
    io->fn = fn;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return -errno;
    return 0;
}

int loop_io_mod(loop *l, loop_io *io, uint32_t events)
{
    if (io->events == events) return 0;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) return -errno;
    io->events = events;
    return 0;
}

void loop_io_del(loop *l, loop_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    for (int i = l->ev_pos; i < l->nevents; i++)
        if (l->events[i].data.ptr == io) l->events[i].data.ptr = NULL;
}

/* ---- queue ---- */

int loop_post(loop *l, loop_msg_fn fn, void *arg)
{
    loop_msg *m = tr_malloc(sizeof *m);
    m->next = NULL;
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_lock(&l->mu);
    bool was_empty = l->q_head == NULL;
    if (l->q_tail)
        l->q_tail->next = m;
    else
        l->q_head = m;
    l->q_tail = m;
    pthread_mutex_unlock(&l->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(l->evfd, &one, sizeof one);
        (void)w; /* EAGAIN means the counter is already non-zero: a wake-up is pending anyway */
    }
    return 0;
}

static void on_eventfd(loop *l, loop_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    uint64_t v;
    ssize_t r = read(l->evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&l->mu);
    loop_msg *m = l->q_head;
    l->q_head = l->q_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (m) {
        loop_msg *next = m->next;
        m->fn(l, m->arg);
        tr_free(m);
        m = next;
    }
}

/* ---- the loop ---- */

int loop_new(loop **out)
{
    loop *l = tr_calloc(1, sizeof *l);
    int rc;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        rc = -errno;
        goto fail;
    }
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->evfd < 0) {
        rc = -errno;
        goto fail_ep;
    }
    rc = loop_io_add(l, &l->ev_io, l->evfd, EPOLLIN, on_eventfd);
    if (rc < 0) goto fail_ev;
    pthread_mutex_init(&l->mu, NULL);
    l->now_ns = tr_now_ns();
    *out = l;
    return 0;
fail_ev:
    close(l->evfd);
fail_ep:
    close(l->epfd);
fail:
    tr_free(l);
    return rc;
}

void loop_free(loop *l)
{
    if (l == NULL) return;
    loop_msg *m = l->q_head;
    while (m) {
        loop_msg *next = m->next;
        tr_free(m);
        m = next;
    }
    pthread_mutex_destroy(&l->mu);
    close(l->evfd);
    close(l->epfd);
    tr_free(l->heap);
    tr_free(l);
}

void loop_on_tick(loop *l, loop_tick_fn fn, void *ud)
{
    if (l->nticks == LOOP_MAX_TICKS) tr_fatal("loop: more than %d tick hooks", LOOP_MAX_TICKS);
    l->ticks[l->nticks].fn = fn;
    l->ticks[l->nticks].ud = ud;
    l->nticks++;
}

int loop_run(loop *l)
{
    l->stop = false;
    while (!l->stop) {
        l->now_ns = tr_now_ns();
        run_timers(l);
        if (l->stop) break;
        /* Ticks may have produced work that timers or I/O wait on; run them before sleeping. */
        for (size_t i = 0; i < l->nticks; i++)
            l->ticks[i].fn(l, l->ticks[i].ud);
        if (l->stop) break;
        int timeout = -1;
        if (l->heap_len > 0) {
            uint64_t d = l->heap[0]->deadline_ns;
            uint64_t now = tr_now_ns();
            timeout = d <= now ? 0 : (int)TR_MIN((d - now + 999999) / 1000000, 3600000u);
        }
        int n = epoll_wait(l->epfd, l->events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        l->now_ns = tr_now_ns();
        l->nevents = n;
        for (l->ev_pos = 0; l->ev_pos < l->nevents;) {
            struct epoll_event *ev = &l->events[l->ev_pos++];
            loop_io *io = ev->data.ptr;
            if (io) io->fn(l, io, ev->events);
        }
        l->nevents = l->ev_pos = 0;
    }
    for (size_t i = 0; i < l->nticks; i++)
        l->ticks[i].fn(l, l->ticks[i].ud);
    return 0;
}

void loop_stop(loop *l)
{
    l->stop = true;
}

uint64_t loop_now_ns(const loop *l)
{
    return l->now_ns;
}
