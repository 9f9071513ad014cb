/* wasm/wasi/wasi.c: WASI preview1 host functions for the engine (see wasi.h). */
#include "wasm/wasi/wasi.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/base.h"
#include "wasm/runtime/wrt.h"

/* The prototypes wasm2c generates for these imports, spelled out so this file does not depend
 * on one module's generated header. */
uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(wasi_ctx *, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_close(wasi_ctx *, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(wasi_ctx *, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_seek(wasi_ctx *, uint32_t, uint64_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_write(wasi_ctx *, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_random_get(wasi_ctx *, uint32_t, uint32_t);

#define WASI_FILETYPE_CHARACTER_DEVICE 2
/* Cap on what one fd_write may hand to the output callback. */
#define WASI_MAX_IOVS 1024

void wasi_ctx_init(wasi_ctx *ctx, wasm_rt_memory_t *memory)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->memory = memory;
}

static void put_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v); /* wasm is little-endian, like every host trail runs on */
}

static void put_u64(void *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(wasi_ctx *ctx, uint32_t id, uint64_t precision,
                                                  uint32_t out)
{
    (void)precision;
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    clockid_t cid;
    switch (id) {
    case 0:
        cid = CLOCK_REALTIME;
        break;
    case 1:
        cid = CLOCK_MONOTONIC;
        break;
    case 2:
        cid = CLOCK_PROCESS_CPUTIME_ID;
        break;
    case 3:
        cid = CLOCK_THREAD_CPUTIME_ID;
        break;
    default:
        rc = WASI_EINVAL;
        goto out;
    }
    struct timespec ts;
    clock_gettime(cid, &ts);
    void *p = wrt_mem_ptr(ctx->memory, out, 8);
    if (p == NULL) {
        rc = WASI_EFAULT;
        goto out;
    }
    put_u64(p, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
out:
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_close(wasi_ctx *ctx, uint32_t fd)
{
    (void)ctx;
    (void)fd;
    return WASI_EBADF;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(wasi_ctx *ctx, uint32_t fd, uint32_t out)
{
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    if (fd > 2) {
        rc = WASI_EBADF;
        goto out;
    }
    /* struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting; } = 24 B */
    unsigned char *p = wrt_mem_ptr(ctx->memory, out, 24);
    if (p == NULL) {
        rc = WASI_EFAULT;
        goto out;
    }
    memset(p, 0, 24);
    p[0] = WASI_FILETYPE_CHARACTER_DEVICE;
    put_u64(p + 8, fd == 0 ? 2u /* fd_read */ : 64u /* fd_write */);
out:
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_seek(wasi_ctx *ctx, uint32_t fd, uint64_t offset,
                                           uint32_t whence, uint32_t out)
{
    (void)ctx;
    (void)offset;
    (void)whence;
    (void)out;
    return fd <= 2 ? WASI_ESPIPE : WASI_EBADF;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_write(wasi_ctx *ctx, uint32_t fd, uint32_t iovs,
                                            uint32_t iovs_len, uint32_t nwritten_out)
{
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    if (fd != 1 && fd != 2) {
        rc = WASI_EBADF;
        goto out;
    }
    if (iovs_len > WASI_MAX_IOVS) {
        rc = WASI_EINVAL;
        goto out;
    }
    const unsigned char *iov = wrt_mem_ptr(ctx->memory, iovs, (uint64_t)iovs_len * 8);
    void *nw = wrt_mem_ptr(ctx->memory, nwritten_out, 4);
    if (iov == NULL || nw == NULL) {
        rc = WASI_EFAULT;
        goto out;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < iovs_len; i++) {
        uint32_t buf, len;
        memcpy(&buf, iov + i * 8, 4);
        memcpy(&len, iov + i * 8 + 4, 4);
        const char *p = wrt_mem_ptr(ctx->memory, buf, len);
        if (p == NULL) {
            rc = WASI_EFAULT;
            goto out;
        }
        if (ctx->output != NULL && len > 0) ctx->output(ctx->output_user, (int)fd, p, len);
        total += len;
    }
    put_u32(nw, (uint32_t)total);
out:
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_wasi_snapshot_preview1Z_random_get(wasi_ctx *ctx, uint32_t buf, uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    unsigned char *p = wrt_mem_ptr(ctx->memory, buf, len);
    if (p == NULL) {
        rc = WASI_EFAULT;
        goto out;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(p + done, len - done, 0);
        if (n <= 0) {
            rc = WASI_EIO;
            goto out;
        }
        done += (size_t)n;
    }
out:
    wrt_host_leave(saved);
    return rc;
}
