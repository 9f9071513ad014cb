/* Tests for wasm/wasi/wasi.c: the WASI functions with hostile offsets, output capture, clocks and
 * randomness, called directly on a linear memory; and the clocks seen from JS. */
#include "test.h"

#include <time.h>

#include "wasm/js/jsg.h"
#include "wasm/runtime/wrt.h"
#include "wasm/wasi/wasi.h"

uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(wasi_ctx *, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(wasi_ctx *, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_seek(wasi_ctx *, uint32_t, uint64_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_write(wasi_ctx *, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_close(wasi_ctx *, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_random_get(wasi_ctx *, uint32_t, uint32_t);

typedef struct captured {
    char buf[256];
    size_t len;
    int fd;
} captured;

static void capture(void *user, int fd, const char *data, size_t len)
{
    captured *c = user;
    c->fd = fd;
    if (c->len + len < sizeof c->buf) {
        memcpy(c->buf + c->len, data, len);
        c->len += len;
    }
}

static void put32(wasm_rt_memory_t *m, uint32_t off, uint32_t v)
{
    memcpy(m->data + off, &v, 4);
}

TEST(wasi_functions_check_guest_offsets)
{
    wasm_rt_init();
    wasm_rt_memory_t mem;
    wasm_rt_allocate_memory(&mem, 1, 1);
    wasi_ctx ctx;
    wasi_ctx_init(&ctx, &mem);
    captured cap = {.len = 0};
    ctx.output = capture;
    ctx.output_user = &cap;

    /* fd_write gathers the iovecs */
    memcpy(mem.data + 100, "hello ", 6);
    memcpy(mem.data + 200, "world", 5);
    put32(&mem, 16, 100);
    put32(&mem, 20, 6);
    put32(&mem, 24, 200);
    put32(&mem, 28, 5);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 2, 16, 2, 8), WASI_ESUCCESS);
    CHECK_MEM_EQ(cap.buf, cap.len, "hello world");
    CHECK_EQ(cap.fd, 2);
    uint32_t nw;
    memcpy(&nw, mem.data + 8, 4);
    CHECK_EQ(nw, 11);

    /* hostile offsets: EFAULT, never a host fault */
    put32(&mem, 24, 65534); /* 5 bytes from here run past the end */
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 1, 16, 2, 8), WASI_EFAULT);
    put32(&mem, 24, 0xfffffff0u);
    put32(&mem, 28, 0x20);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 1, 16, 2, 8), WASI_EFAULT);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 1, 65532, 1, 8), WASI_EFAULT);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 1, 16, 0x40000000u, 8), WASI_EINVAL);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_write(&ctx, 7, 16, 1, 8), WASI_EBADF);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(&ctx, 0, 0, 65530), WASI_EFAULT);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(&ctx, 9, 0, 0), WASI_EINVAL);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_random_get(&ctx, 65000, 1000), WASI_EFAULT);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(&ctx, 1, 65530), WASI_EFAULT);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(&ctx, 5, 0), WASI_EBADF);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_seek(&ctx, 1, 0, 0, 0), WASI_ESPIPE);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_fd_close(&ctx, 1), WASI_EBADF);

    /* the clock is the host's */
    CHECK_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(&ctx, 0, 0, 40), WASI_ESUCCESS);
    uint64_t ns;
    memcpy(&ns, mem.data + 40, 8);
    int64_t diff = (int64_t)(ns / 1000000) - tr_wall_ms();
    CHECK(diff > -5000 && diff < 5000);

    /* random bytes fill the buffer */
    memset(mem.data + 1000, 0, 64);
    CHECK_EQ(Z_wasi_snapshot_preview1Z_random_get(&ctx, 1000, 64), WASI_ESUCCESS);
    int zeros = 0;
    for (int i = 0; i < 64; i++)
        zeros += mem.data[1000 + i] == 0;
    CHECK(zeros < 16);
    wasm_rt_free_memory(&mem);
}

TEST(wasi_clocks_seen_from_js)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    jsg_ref r = 0;
    static const char code[] =
        "const t0 = performance.now(); let x = 0;"
        "for (let i = 0; i < 100000; i++) x += i;"
        "[Date.now(), performance.now() >= t0, Math.random() !== Math.random(),"
        " new Date(0).toISOString()]";
    CHECK_EQ(jsg_eval(iso, code, sizeof code - 1, "clock.js", &r, &err), 0);
    tr_arena a;
    tr_arena_init(&a, 1024);
    jsg_val v;
    CHECK_EQ(jsg_to_val(iso, r, &a, &v, &err), 0);
    CHECK_EQ(v.type, JSG_ARRAY);
    double diff = v.u.arr.items[0].u.num - (double)tr_wall_ms();
    CHECK(diff > -5000 && diff < 5000);
    CHECK(v.u.arr.items[1].u.b);
    CHECK(v.u.arr.items[2].u.b);
    CHECK_MEM_EQ(v.u.arr.items[3].u.str.ptr, v.u.arr.items[3].u.str.len,
                 "1970-01-01T00:00:00.000Z");
    tr_arena_deinit(&a);
    jsg_ref_free(iso, r);
    jsg_isolate_free(iso);
}
