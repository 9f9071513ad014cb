/* wasm/wasi/wasi.h: the WASI preview1 functions the engine imports (clock_time_get, fd_close,
 * fd_fdstat_get, fd_seek, fd_write, random_get), per instance.
 *
 * DESIGN: the guest gets no file system and no file descriptors of its own: fd 1 and 2 are
 * character devices whose bytes go to the instance's output callback (or nowhere), every other
 * descriptor is EBADF. Clocks and randomness come from the host. Guest offsets are checked with
 * wrt_mem_ptr(); a bad one yields EFAULT, never a host fault.
 *
 * Thread: an instance's context is used only by the thread running that instance. */
#ifndef TRAIL_WASM_WASI_WASI_H
#define TRAIL_WASM_WASI_WASI_H

#include <stddef.h>
#include <stdint.h>

#include "wasm-rt.h"

/* Called with what the guest wrote to fd 1 or 2. */
typedef void (*wasi_output_fn)(void *user, int fd, const char *data, size_t len);

/* The import context wasm2c passes to every wasi_snapshot_preview1 function. Embed it in the
 * instance's owner; `memory` must point at the instance's linear memory before the guest runs. */
struct Z_wasi_snapshot_preview1_instance_t {
    wasm_rt_memory_t *memory;
    wasi_output_fn output; /* may be NULL: output is dropped */
    void *output_user;
};
typedef struct Z_wasi_snapshot_preview1_instance_t wasi_ctx;

void wasi_ctx_init(wasi_ctx *ctx, wasm_rt_memory_t *memory);

/* WASI errno values used here. */
enum {
    WASI_ESUCCESS = 0,
    WASI_EBADF = 8,
    WASI_EFAULT = 21,
    WASI_EINVAL = 28,
    WASI_EIO = 29,
    WASI_ESPIPE = 70,
};

#endif
