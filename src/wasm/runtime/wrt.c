/* wasm/runtime/wrt.c: every function wasm-rt.h declares, implemented per thread: traps, the
 * fault handler, guard-page linear memories, tables, function types and exceptions.
 *
 * DESIGN: a trap is a siglongjmp to the innermost wrt_call() frame of the calling thread. Frames
 * form a thread-local linked list on the C stack; wasm_rt_trap() pops the innermost one (restoring
 * the "in guest" flag it saved) before jumping, so nested calls unwind one level at a time.
 * sigsetjmp(..., 0) keeps the fast path free of the sigprocmask system call; the handler is
 * installed with SA_NODEFER so that jumping out of it leaves SIGSEGV unblocked.
 * The handler reads only thread-local data and the fields of memories named by the thread's
 * own frames, so it is async-signal-safe with respect to other threads.
 * Omissions: WASM_RT_USE_STACK_DEPTH_COUNT is not supported (the Makefile sets it to 0: stack
 * exhaustion is detected by the guard page instead). */
#include "wasm/runtime/wrt.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/base.h"

#if WASM_RT_USE_STACK_DEPTH_COUNT
#error \
    "trail's runtime detects stack exhaustion with guard pages: build with WASM_RT_USE_STACK_DEPTH_COUNT=0"
#endif
#if !WASM_RT_MEMCHECK_SIGNAL_HANDLER
#error "trail's runtime relies on guard pages: build with WASM_RT_MEMCHECK_SIGNAL_HANDLER=1"
#endif

#define ALTSTACK_SIZE ((size_t)64 << 10)
/* A fault this far below the lowest stack address still counts as stack exhaustion: covers the
 * kernel's stack guard gap of the main thread and the guard of worker threads. */
#define STACK_FAULT_SLACK ((uintptr_t)1 << 20)
#define EXC_MAX           256

typedef struct wrt_frame {
    sigjmp_buf jb;
    struct wrt_frame *prev;
    wasm_rt_memory_t *mem; /* may be NULL */
    int saved_in_guest;
} wrt_frame;

typedef struct wrt_thread {
    wrt_frame *top;
    volatile sig_atomic_t in_guest;
    bool inited;
    uintptr_t stack_lo; /* lowest usable address of this thread's stack */
    size_t stack_size;  /* its size in bytes (0: unknown) */
    void *altstack;     /* ours to unmap, or NULL when the thread already had one */
    /* the active exception (WebAssembly exception handling) */
    uint32_t exc_tag, exc_size;
    unsigned char exc[EXC_MAX];
    WASM_RT_UNWIND_TARGET *unwind;
    /* from wrt_instance_new(): where the next memory allocated inside it goes */
    uintptr_t placing;
} wrt_thread;

static __thread wrt_thread t_wrt;

static atomic_bool g_initialized;
static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static struct sigaction g_old_segv, g_old_bus;
/* Its destructor releases a thread's signal stack when the thread exits. */
static pthread_key_t g_thread_key;

/* ---- traps ---- */

void wasm_rt_trap(wasm_rt_trap_t code)
{
    wrt_thread *t = &t_wrt;
    wrt_frame *fr = t->top;
    if (fr == NULL) {
        /* Guest code ran outside wrt_call(): there is nowhere to unwind to. */
        static const char msg[] = "trail: WebAssembly trap outside a guest call\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        abort();
    }
    t->top = fr->prev;
    t->in_guest = fr->saved_in_guest;
    atomic_signal_fence(memory_order_seq_cst);
    siglongjmp(fr->jb, code == WASM_RT_TRAP_NONE ? (int)WASM_RT_TRAP_UNREACHABLE : (int)code);
}

wasm_rt_trap_t wrt_call(wasm_rt_memory_t *mem, void (*fn)(void *), void *arg)
{
    wrt_thread *t = &t_wrt;
    if (!t->inited) wrt_thread_init();
    wrt_frame fr;
    fr.prev = t->top;
    fr.mem = mem;
    fr.saved_in_guest = t->in_guest;
    t->top = &fr;
    atomic_signal_fence(memory_order_seq_cst);
    int trap = sigsetjmp(fr.jb, 0);
    if (trap != 0) return (wasm_rt_trap_t)trap; /* wasm_rt_trap() already popped the frame */
    t->in_guest = 1;
    fn(arg);
    t->top = fr.prev;
    t->in_guest = fr.saved_in_guest;
    atomic_signal_fence(memory_order_seq_cst);
    return WASM_RT_TRAP_NONE;
}

bool wrt_host_enter(void)
{
    bool saved = t_wrt.in_guest != 0;
    t_wrt.in_guest = 0;
    atomic_signal_fence(memory_order_seq_cst);
    return saved;
}

void wrt_host_leave(bool saved)
{
    atomic_signal_fence(memory_order_seq_cst);
    t_wrt.in_guest = saved ? 1 : 0;
}

size_t wrt_thread_stack_size(void)
{
    wrt_thread_init();
    return t_wrt.stack_size;
}

bool wrt_in_call(void)
{
    return t_wrt.top != NULL;
}

const char *wrt_trap_name(wasm_rt_trap_t trap)
{
    return wasm_rt_strerror(trap);
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
    switch (trap) {
    case WASM_RT_TRAP_NONE:
        return "no trap";
    case WASM_RT_TRAP_OOB:
        return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW:
        return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO:
        return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION:
        return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE:
        return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT:
        return "indirect call type mismatch";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
        return "uncaught exception";
    case WASM_RT_TRAP_EXHAUSTION:
        return "call stack exhausted";
    }
    return "unknown trap";
}

/* ---- the fault handler ---- */

static bool in_guard_of(const wasm_rt_memory_t *m, uintptr_t a)
{
    if (m == NULL || m->data == NULL) return false;
    uintptr_t base = (uintptr_t)m->data;
    return a >= base + m->size && a < base + WRT_MEM_RESERVE + WRT_MEM_GUARD;
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *old = sig == SIGBUS ? &g_old_bus : &g_old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler != NULL) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return, so the faulting instruction faults again and the
     * process dies with the signal (and a core dump), as it would have without us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
}

/* Leaves the handler for the trap's frame. SA_NODEFER already keeps the signals unblocked, but a
 * sanitizer's handler wrapper may not pass that flag on; the system call is on the trap path
 * only. */
static void trap_from_handler(wasm_rt_trap_t code)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSEGV);
    sigaddset(&set, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    wasm_rt_trap(code);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    wrt_thread *t = &t_wrt;
    if (t->in_guest && t->top != NULL) {
        uintptr_t a = (uintptr_t)si->si_addr;
        for (const wrt_frame *f = t->top; f != NULL; f = f->prev)
            if (in_guard_of(f->mem, a)) trap_from_handler(WASM_RT_TRAP_OOB);
        if (t->stack_lo != 0 && a < t->stack_lo && a + STACK_FAULT_SLACK >= t->stack_lo)
            trap_from_handler(WASM_RT_TRAP_EXHAUSTION);
    }
    chain(sig, si, uc);
}

static void thread_exit(void *p)
{
    (void)p;
    wrt_thread_deinit();
}

static void install_handler(void)
{
    if (pthread_key_create(&g_thread_key, thread_exit) != 0)
        tr_fatal("wrt: cannot create a thread key");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &g_old_segv) != 0 || sigaction(SIGBUS, &sa, &g_old_bus) != 0)
        tr_fatal("wrt: cannot install the fault handler: %s", strerror(errno));
    atomic_store(&g_initialized, true);
}

void wrt_init(void)
{
    pthread_once(&g_init_once, install_handler);
}

void wrt_thread_init(void)
{
    wrt_thread *t = &t_wrt;
    if (t->inited) return;
    wrt_init();

    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || (cur.ss_flags & SS_DISABLE) ||
        cur.ss_size < ALTSTACK_SIZE) {
        void *p =
            mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) tr_fatal("wrt: cannot map a signal stack: %s", strerror(errno));
        stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0) tr_fatal("wrt: sigaltstack failed: %s", strerror(errno));
        t->altstack = p;
        pthread_setspecific(g_thread_key, t); /* non-NULL: thread_exit runs at exit */
    }

    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr = NULL;
        size_t size = 0;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            t->stack_lo = (uintptr_t)addr;
            t->stack_size = size;
        }
        pthread_attr_destroy(&attr);
    }
    t->inited = true;
}

void wrt_thread_deinit(void)
{
    wrt_thread *t = &t_wrt;
    if (!t->inited) return;
    if (t->altstack != NULL) {
        stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        munmap(t->altstack, ALTSTACK_SIZE);
        t->altstack = NULL;
        pthread_setspecific(g_thread_key, NULL);
    }
    t->inited = false;
}

int wrt_thread_attr_init(pthread_attr_t *attr)
{
    int rc = pthread_attr_init(attr);
    if (rc != 0) return -rc;
    rc = pthread_attr_setstacksize(attr, WRT_THREAD_STACK_SIZE);
    if (rc == 0) rc = pthread_attr_setguardsize(attr, WRT_THREAD_GUARD_SIZE);
    if (rc != 0) {
        pthread_attr_destroy(attr);
        return -rc;
    }
    return 0;
}

void wasm_rt_init(void)
{
    wrt_init();
    wrt_thread_init();
}

bool wasm_rt_is_initialized(void)
{
    return atomic_load(&g_initialized);
}

void wasm_rt_free(void)
{
    /* The handler stays installed: other threads may still run guest code. */
    wrt_thread_deinit();
}

/* ---- function types: one process-wide registry, written only while modules initialise ---- */

typedef struct func_type {
    uint32_t params, results;
    wasm_rt_type_t *types; /* params then results */
} func_type;

static pthread_mutex_t g_types_mu = PTHREAD_MUTEX_INITIALIZER;
static func_type *g_types; /* guarded by g_types_mu */
static uint32_t g_ntypes, g_captypes;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
    uint32_t n = params + results;
    wasm_rt_type_t *types = tr_malloc((n ? n : 1) * sizeof *types);
    va_list ap;
    va_start(ap, results);
    for (uint32_t i = 0; i < n; i++)
        types[i] = (wasm_rt_type_t)va_arg(ap, int);
    va_end(ap);

    pthread_mutex_lock(&g_types_mu);
    for (uint32_t i = 0; i < g_ntypes; i++) {
        const func_type *ft = &g_types[i];
        if (ft->params == params && ft->results == results &&
            memcmp(ft->types, types, n * sizeof *types) == 0) {
            pthread_mutex_unlock(&g_types_mu);
            tr_free(types);
            return i + 1; /* 0 stays free for the null funcref */
        }
    }
    if (g_ntypes == g_captypes) {
        g_captypes = g_captypes ? g_captypes * 2 : 64;
        g_types = tr_realloc(g_types, g_captypes * sizeof *g_types);
    }
    g_types[g_ntypes] = (func_type){params, results, types};
    uint32_t idx = ++g_ntypes;
    pthread_mutex_unlock(&g_types_mu);
    return idx;
}

/* ---- exceptions (the exception-handling proposal), per thread ---- */

static atomic_uint g_next_tag;

uint32_t wasm_rt_register_tag(uint32_t size)
{
    if (size > EXC_MAX) tr_fatal("wrt: exception tag of %u bytes is too large", size);
    return atomic_fetch_add(&g_next_tag, 1);
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
    wrt_thread *t = &t_wrt;
    if (size > EXC_MAX) wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
    t->exc_tag = tag;
    t->exc_size = size;
    if (size) memcpy(t->exc, values, size);
}

void wasm_rt_throw(void)
{
    wrt_thread *t = &t_wrt;
    if (t->unwind != NULL) longjmp(*t->unwind, 1);
    wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
    return t_wrt.unwind;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
    t_wrt.unwind = target;
}

uint32_t wasm_rt_exception_tag(void)
{
    return t_wrt.exc_tag;
}

uint32_t wasm_rt_exception_size(void)
{
    return t_wrt.exc_size;
}

void *wasm_rt_exception(void)
{
    return t_wrt.exc;
}

/* ---- linear memories ---- */

/* 65536 pages would make the u32 byte size wrap to 0. */
#define MAX_PAGES 65535u

/* The page an instance lives in (at its end): the memory after it must start on a page. */
static size_t instance_page(void)
{
    long n = sysconf(_SC_PAGESIZE);
    return n > 0 ? (size_t)n : 4096;
}

void *wrt_instance_new(size_t size)
{
    if (size > WRT_INSTANCE_SPAN) {
        errno = EINVAL;
        return NULL;
    }
    size_t page = instance_page();
    size_t total = page + WRT_MEM_RESERVE + WRT_MEM_GUARD;
    uint8_t *p = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (mprotect(p, page, PROT_READ | PROT_WRITE) != 0) {
        int e = errno;
        munmap(p, total);
        errno = e;
        return NULL;
    }
    uint8_t *inst = p + page - WRT_INSTANCE_SPAN;
    t_wrt.placing = (uintptr_t)inst;
    return inst;
}

void wrt_instance_free(void *inst)
{
    if (inst == NULL) return;
    /* the memory after it is wasm_rt_free_memory()'s, unless none was placed there */
    size_t page = instance_page();
    size_t len = page;
    if (t_wrt.placing == (uintptr_t)inst) {
        t_wrt.placing = 0;
        len += WRT_MEM_RESERVE + WRT_MEM_GUARD;
    }
    munmap((uint8_t *)inst + WRT_INSTANCE_SPAN - page, len);
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
    memset(mem, 0, sizeof *mem);
    if (max_pages > MAX_PAGES) max_pages = MAX_PAGES;
    if (initial_pages > max_pages) wasm_rt_trap(WASM_RT_TRAP_OOB);
    void *p;
    uintptr_t inst = t_wrt.placing;
    if (inst != 0 && (uintptr_t)mem - inst < WRT_INSTANCE_SPAN) {
        /* reserved by wrt_instance_new(), right after the instance */
        t_wrt.placing = 0;
        p = (void *)(inst + WRT_INSTANCE_SPAN);
    } else {
        p = mmap(NULL, WRT_MEM_RESERVE + WRT_MEM_GUARD, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            tr_log_error("wrt: cannot reserve a linear memory: %s", strerror(errno));
            wasm_rt_trap(WASM_RT_TRAP_OOB);
        }
    }
    size_t bytes = (size_t)initial_pages * WRT_PAGE_SIZE;
    if (bytes && mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, WRT_MEM_RESERVE + WRT_MEM_GUARD);
        tr_log_error("wrt: cannot commit a linear memory: %s", strerror(errno));
        wasm_rt_trap(WASM_RT_TRAP_OOB);
    }
    mem->data = p;
    mem->pages = initial_pages;
    mem->max_pages = max_pages;
    mem->size = (uint32_t)bytes;
}

/* Grows in place: mem->data never changes while the memory exists. The engine's generated code
 * relies on it, reading the base once per function call (tools/engine-fixup.sh). */
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
    uint32_t old = mem->pages;
    if (delta == 0) return old;
    uint64_t pages = (uint64_t)old + delta;
    if (pages > mem->max_pages || pages > MAX_PAGES) return UINT32_MAX;
    if (mprotect(mem->data + (size_t)old * WRT_PAGE_SIZE, (size_t)delta * WRT_PAGE_SIZE,
                 PROT_READ | PROT_WRITE) != 0)
        return UINT32_MAX;
    mem->pages = (uint32_t)pages;
    mem->size = (uint32_t)(pages * WRT_PAGE_SIZE);
    return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
    if (mem->data != NULL) munmap(mem->data, WRT_MEM_RESERVE + WRT_MEM_GUARD);
    memset(mem, 0, sizeof *mem);
}

void wrt_memory_cap(wasm_rt_memory_t *mem, uint32_t max_pages)
{
    if (max_pages < mem->pages) max_pages = mem->pages;
    if (max_pages < mem->max_pages) mem->max_pages = max_pages;
}

/* ---- tables ---- */

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *table, uint32_t elements,
                                    uint32_t max_elements)
{
    table->data = tr_calloc(elements ? elements : 1, sizeof *table->data);
    table->size = elements;
    table->max_size = max_elements;
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *table)
{
    tr_free(table->data);
    table->data = NULL;
    table->size = 0;
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *table, uint32_t elements,
                                      uint32_t max_elements)
{
    table->data = tr_calloc(elements ? elements : 1, sizeof *table->data);
    table->size = elements;
    table->max_size = max_elements;
}

void wasm_rt_free_externref_table(wasm_rt_externref_table_t *table)
{
    tr_free(table->data);
    table->data = NULL;
    table->size = 0;
}

/* Tables are small (the engine's has 532 entries), so growth is bounded by a sanity limit rather
 * than a per-instance cap. */
#define MAX_TABLE_ELEMS (1u << 20)

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *table, uint32_t delta,
                                    wasm_rt_funcref_t init)
{
    uint32_t old = table->size;
    uint64_t n = (uint64_t)old + delta;
    if (n > table->max_size || n > MAX_TABLE_ELEMS) return UINT32_MAX;
    if (delta == 0) return old;
    table->data = tr_realloc(table->data, n * sizeof *table->data);
    for (uint64_t i = old; i < n; i++)
        table->data[i] = init;
    table->size = (uint32_t)n;
    return old;
}

uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *table, uint32_t delta,
                                      wasm_rt_externref_t init)
{
    uint32_t old = table->size;
    uint64_t n = (uint64_t)old + delta;
    if (n > table->max_size || n > MAX_TABLE_ELEMS) return UINT32_MAX;
    if (delta == 0) return old;
    table->data = tr_realloc(table->data, n * sizeof *table->data);
    for (uint64_t i = old; i < n; i++)
        table->data[i] = init;
    table->size = (uint32_t)n;
    return old;
}
