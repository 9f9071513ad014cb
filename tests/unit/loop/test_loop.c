/* Tests for loop/loop.c: timers in deadline order, stop/restart, fd events, the cross-thread
 * message queue. */
#include "test.h"
#include "loop/loop.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

static int order[16];
static int norder;

typedef struct tagged_timer {
    loop_timer t;
    int tag;
} tagged_timer;

static void on_fire(loop *l, loop_timer *t)
{
    tagged_timer *tt = (tagged_timer *)t;
    order[norder++] = tt->tag;
    if (norder == 3) loop_stop(l);
}

TEST(loop_timers_fire_in_deadline_order)
{
    /* Deadlines count from the loop's clock, read at loop_new() and at each wake-up; a stopwatch
     * started before it bounds them from below whatever the machine is doing meanwhile. */
    uint64_t t0 = tr_now_ns();
    loop *l;
    CHECK_EQ(loop_new(&l), 0);
    tagged_timer a = {.tag = 1}, b = {.tag = 2}, c = {.tag = 3}, d = {.tag = 4};
    loop_timer_init(&a.t, on_fire);
    loop_timer_init(&b.t, on_fire);
    loop_timer_init(&c.t, on_fire);
    loop_timer_init(&d.t, on_fire);
    loop_timer_start(l, &c.t, 30);
    loop_timer_start(l, &a.t, 10);
    loop_timer_start(l, &b.t, 20);
    loop_timer_start(l, &d.t, 15);
    CHECK(loop_timer_active(&d.t));
    loop_timer_stop(l, &d.t);
    CHECK(!loop_timer_active(&d.t));
    loop_timer_stop(l, &d.t); /* stopping twice is harmless */
    /* Moving a timer later re-sorts it. */
    loop_timer_start(l, &a.t, 25);
    norder = 0;
    CHECK_EQ(loop_run(l), 0);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[0], 2);
    CHECK_EQ(order[1], 1);
    CHECK_EQ(order[2], 3);
    CHECK(tr_now_ns() - t0 >= 30000000ull);
    loop_free(l);
}

static int pipe_reads;

static void on_readable(loop *l, loop_io *io, uint32_t events)
{
    CHECK(events & EPOLLIN);
    char buf[16];
    ssize_t n = read(io->fd, buf, sizeof buf);
    CHECK_EQ(n, 5);
    pipe_reads++;
    loop_io_del(l, io);
    loop_stop(l);
}

TEST(loop_fd_events)
{
    loop *l;
    CHECK_EQ(loop_new(&l), 0);
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    loop_io io;
    CHECK_EQ(loop_io_add(l, &io, fds[0], EPOLLIN, on_readable), 0);
    CHECK_EQ(write(fds[1], "hello", 5), 5);
    CHECK_EQ(loop_run(l), 0);
    CHECK_EQ(pipe_reads, 1);
    close(fds[0]);
    close(fds[1]);
    loop_free(l);
}

static int msgs[1000];
static int nmsgs;

static void on_msg(loop *l, void *arg)
{
    msgs[nmsgs++] = (int)(intptr_t)arg;
    if (nmsgs == 1000) loop_stop(l);
}

static void *poster(void *arg)
{
    loop *l = arg;
    for (int i = 0; i < 1000; i++)
        loop_post(l, on_msg, (void *)(intptr_t)i);
    return NULL;
}

TEST(loop_post_from_another_thread_keeps_order)
{
    loop *l;
    CHECK_EQ(loop_new(&l), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, poster, l), 0);
    CHECK_EQ(loop_run(l), 0);
    pthread_join(th, NULL);
    CHECK_EQ(nmsgs, 1000);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(msgs[i], i);
    loop_free(l);
}

static int ticks;

static void on_nothing(loop *l, void *arg)
{
    (void)l;
    (void)arg;
}

static void on_tick(loop *l, void *ud)
{
    (void)ud;
    ticks++;
    if (ticks == 3)
        loop_stop(l);
    else
        loop_post(l, on_nothing, NULL); /* wakes the next iteration */
}

TEST(loop_tick_hooks_run_each_iteration)
{
    loop *l;
    CHECK_EQ(loop_new(&l), 0);
    loop_on_tick(l, on_tick, NULL);
    CHECK_EQ(loop_run(l), 0);
    /* Two iterations woken by posts, and the stop requested by the third tick. */
    CHECK_EQ(ticks, 4);
    loop_free(l);
}

static int rearms;

static void on_rearm(loop *l, loop_timer *t)
{
    rearms++;
    loop_timer_start(l, t, 0); /* "as soon as possible", forever */
}

/* A timer that re-arms itself for 0 ms from its own callback must not keep the loop in its
 * timer phase: I/O that is ready still gets dispatched (a guest's setTimeout(f, 0) chain). */
TEST_TIMEOUT(loop_zero_ms_rearm_does_not_starve_io, 20)
{
    loop *l;
    CHECK_EQ(loop_new(&l), 0);
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    loop_io io;
    CHECK_EQ(loop_io_add(l, &io, fds[0], EPOLLIN, on_readable), 0);
    loop_timer t;
    loop_timer_init(&t, on_rearm);
    loop_timer_start(l, &t, 0);
    CHECK_EQ(write(fds[1], "hello", 5), 5);
    pipe_reads = 0;
    CHECK_EQ(loop_run(l), 0); /* on_readable stops it */
    CHECK_EQ(pipe_reads, 1);
    CHECK(rearms >= 1);
    loop_timer_stop(l, &t);
    close(fds[0]);
    close(fds[1]);
    loop_free(l);
}
