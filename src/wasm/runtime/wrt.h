/* wasm/runtime/wrt.h: trail's own implementation of the wasm2c runtime (wasm-rt.h of wabt 1.0.32)
 * plus the entry point every host->guest call goes through.
 *
 * DESIGN: nothing here is process-wide mutable state except the signal handler (installed once)
 * and the function-type registry (written only while a module is initialised, under a mutex).
 * Traps unwind through a thread-local chain of wrt_call() frames, so many threads run many
 * instances at once and a trap stays on the thread that raised it.
 *
 * Linear memories are reserved as WRT_MEM_RESERVE bytes of PROT_NONE (8 GiB + one guard page):
 * a u32 address plus a u32 offset cannot reach past it, so the generated code needs no bounds
 * checks. Pages are made accessible with mprotect() as the memory grows; growth beyond
 * memory->max_pages fails with (u32)-1 (the embedder lowers max_pages to its per-instance cap).
 *
 * A SIGSEGV/SIGBUS handler (installed once by wrt_init(); each thread gets an alternate signal
 * stack in wrt_thread_init()) turns a fault into a trap only when the thread is running guest code
 * (inside wrt_call() and not inside a host import) and the address is in the guard region of a
 * memory being run by one of the thread's wrt_call() frames (-> WASM_RT_TRAP_OOB) or next to the
 * thread's stack limit (-> WASM_RT_TRAP_EXHAUSTION). Any other fault is a host bug: the previous
 * handler (the default, or ASan's) is restored and the fault re-raised.
 *
 * Thread: every function may be called from any thread; an instance is used by one thread at a
 * time. */
#ifndef TRAIL_WASM_RUNTIME_WRT_H
#define TRAIL_WASM_RUNTIME_WRT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasm-rt.h"

/* Bytes of address space reserved per linear memory: 4 GiB of address + 4 GiB of offset + guard. */
#define WRT_MEM_RESERVE ((uint64_t)8 << 30)
#define WRT_MEM_GUARD   ((uint64_t)64 << 10)
#define WRT_PAGE_SIZE   65536u

/* An instance and its linear memory in one reservation: the instance struct in the last
 * WRT_INSTANCE_SPAN bytes of a page, memory 0 right after it. The engine's generated code then
 * finds memory at instance + WRT_INSTANCE_SPAN, with no load and a short displacement
 * (tools/engine-fixup.sh). A guest address is never negative, so the instance below its memory
 * is out of the guest's reach. */
#define WRT_INSTANCE_SPAN 64u

/* Reserves an instance of `size` bytes (<= WRT_INSTANCE_SPAN) with room for its memory after
 * it, zeroed. The next wasm_rt_allocate_memory() on this thread for a memory inside it places
 * the memory there. NULL (errno set) on failure. */
void *wrt_instance_new(size_t size);

/* Releases what wrt_instance_new() reserved; free the instance's memories first. NULL is a
 * no-op. */
void wrt_instance_free(void *inst);

/* Native stack size for threads that run guest code (trail's workers). The engine's frames are
 * native C frames (wasm2c), so deep JS recursion uses this stack; JSG_MAX_STACK_SIZE (jsg.h) is
 * chosen so that QuickJS raises RangeError well before either this stack or the engine's 1 MiB
 * shadow stack runs out. See docs/engine.md. */
#define WRT_THREAD_STACK_SIZE ((size_t)16 << 20)
/* Guard below that stack: larger than any single engine frame, so an overflow lands in it. */
#define WRT_THREAD_GUARD_SIZE ((size_t)256 << 10)

/* Installs the fault handler; idempotent and thread-safe. wasm_rt_init() calls it. */
void wrt_init(void);

/* Gives the calling thread its alternate signal stack and records its stack bounds. Idempotent;
 * wrt_call() calls it on first use, so calling it explicitly is optional. */
void wrt_thread_init(void);

/* Releases what wrt_thread_init() allocated. Runs by itself when the thread exits; call it
 * earlier only when the thread will run no more guest code. */
void wrt_thread_deinit(void);

/* Size in bytes of the calling thread's stack (0 when unknown). */
size_t wrt_thread_stack_size(void);

/* Sets stack size and guard size for a thread that will run guest code. */
int wrt_thread_attr_init(pthread_attr_t *attr);

/* Runs fn(arg) as guest code. mem is the linear memory fn will access (may be NULL when none).
 * Returns WASM_RT_TRAP_NONE (0), or the trap that ended fn early; after a trap the instance's
 * state is unusable and must be freed. Calls may nest (guest -> host import -> wrt_call). */
wasm_rt_trap_t wrt_call(wasm_rt_memory_t *mem, void (*fn)(void *), void *arg);

/* Host imports bracket their bodies with these, so that a fault in host code stays fatal even
 * when guest code is below it on the stack. */
bool wrt_host_enter(void);
void wrt_host_leave(bool saved);

/* True while the calling thread is inside wrt_call() (guest code or a host import it called). */
bool wrt_in_call(void);

/* A pointer to len bytes at guest offset off in mem, or NULL when any byte is out of bounds. */
static inline void *wrt_mem_ptr(const wasm_rt_memory_t *mem, uint64_t off, uint64_t len)
{
    if (off > mem->size || len > mem->size - off) return NULL;
    return mem->data + off;
}

/* Lowers mem's maximum to max_pages (never raises it). */
void wrt_memory_cap(wasm_rt_memory_t *mem, uint32_t max_pages);

/* A static name for a trap code, e.g. "out of bounds memory access". */
const char *wrt_trap_name(wasm_rt_trap_t trap);

#endif
