/* Tests for wasm/runtime/wrt.c with a hand-written module (tests/data/wasm/traps.wat): each trap
 * kind as its own code, recovery on the same thread, memory growth and caps, faults in host code
 * staying fatal, and traps on one thread not disturbing another. */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wasm/runtime/wrt.h"
#include "wasm/traps.h"

enum { HOST_ADD_ONE, HOST_FAULT, HOST_NESTED_TRAP };

struct Z_host_instance_t {
    int mode;
    wasm_rt_memory_t *mem; /* the calling instance's memory */
    wasm_rt_trap_t nested; /* HOST_NESTED_TRAP: what the nested call reported */
};

typedef struct mod {
    Z_traps_instance_t inst;
    struct Z_host_instance_t host;
} mod;

typedef struct call {
    mod *m;
    const char *fn;
    uint32_t a, b;
    double d;
    uint32_t result;
} call;

static void body_instantiate(void *p)
{
    mod *m = p;
    Z_traps_instantiate(&m->inst, &m->host);
}

static mod *mod_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    wasm_rt_init();
    pthread_once(&once, Z_traps_init_module);
    mod *m = calloc(1, sizeof *m);
    CHECK(m != NULL);
    CHECK_EQ(wrt_call(NULL, body_instantiate, m), WASM_RT_TRAP_NONE);
    m->host.mem = &m->inst.w2c_memory;
    return m;
}

static void mod_free(mod *m)
{
    Z_traps_free(&m->inst);
    free(m);
}

static void body_call(void *p)
{
    call *c = p;
    Z_traps_instance_t *i = &c->m->inst;
    const char *fn = c->fn;
    if (strcmp(fn, "ok") == 0)
        c->result = Z_trapsZ_ok(i);
    else if (strcmp(fn, "load") == 0)
        c->result = Z_trapsZ_load(i, c->a);
    else if (strcmp(fn, "store") == 0)
        Z_trapsZ_store(i, c->a, c->b);
    else if (strcmp(fn, "load_far") == 0)
        c->result = Z_trapsZ_load_far(i, c->a);
    else if (strcmp(fn, "unreachable") == 0)
        Z_trapsZ_unreachable(i);
    else if (strcmp(fn, "div") == 0)
        c->result = Z_trapsZ_div(i, c->a, c->b);
    else if (strcmp(fn, "trunc") == 0)
        c->result = Z_trapsZ_trunc(i, c->d);
    else if (strcmp(fn, "call_ind") == 0)
        c->result = Z_trapsZ_call_ind(i, c->a);
    else if (strcmp(fn, "recurse") == 0)
        c->result = Z_trapsZ_recurse(i, c->a);
    else if (strcmp(fn, "grow") == 0)
        c->result = Z_trapsZ_grow(i, c->a);
    else if (strcmp(fn, "size") == 0)
        c->result = Z_trapsZ_size(i);
    else if (strcmp(fn, "call_host") == 0)
        c->result = Z_trapsZ_call_host(i, c->a);
    else if (strcmp(fn, "spin") == 0)
        c->result = Z_trapsZ_spin(i, c->a);
    else
        abort();
}

/* Calls fn on m; returns the trap code, the result in *result (may be NULL). */
static wasm_rt_trap_t run(mod *m, const char *fn, uint32_t a, uint32_t b, double d,
                          uint32_t *result)
{
    call c = {m, fn, a, b, d, 0};
    wasm_rt_trap_t t = wrt_call(&m->inst.w2c_memory, body_call, &c);
    if (result) *result = c.result;
    return t;
}

u32 Z_hostZ_cb(struct Z_host_instance_t *h, u32 x)
{
    bool saved = wrt_host_enter();
    u32 r = x + 1;
    if (h->mode == HOST_FAULT) {
        /* A host bug: reading the guard region of the guest's memory from host code. */
        volatile const uint8_t *p = h->mem->data + h->mem->size + 4096;
        r = *p;
    } else if (h->mode == HOST_NESTED_TRAP) {
        mod *other = mod_new();
        h->nested = run(other, "unreachable", 0, 0, 0, NULL);
        mod_free(other);
        r = x * 2;
    }
    wrt_host_leave(saved);
    return r;
}

/* One trap kind: a fresh instance traps with `want`, then a fresh instance on the same thread
 * works. */
static void expect_trap(const char *fn, uint32_t a, uint32_t b, double d, wasm_rt_trap_t want)
{
    mod *m = mod_new();
    wasm_rt_trap_t got = run(m, fn, a, b, d, NULL);
    if (got != want)
        fprintf(stderr, "%s: got trap %d (%s), want %d (%s)\n", fn, got, wrt_trap_name(got), want,
                wrt_trap_name(want));
    CHECK_EQ(got, want);
    CHECK(!wrt_in_call());
    mod_free(m);
    m = mod_new();
    uint32_t r = 0;
    CHECK_EQ(run(m, "ok", 0, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 42);
    mod_free(m);
}

TEST(wrt_trap_each_kind)
{
    expect_trap("load", 65536, 0, 0, WASM_RT_TRAP_OOB);           /* first byte past the memory */
    expect_trap("load", 65534, 0, 0, WASM_RT_TRAP_OOB);           /* straddling the end */
    expect_trap("store", 0xfffffffcu, 1, 0, WASM_RT_TRAP_OOB);    /* top of the 32-bit space */
    expect_trap("load_far", 0xffffffffu, 0, 0, WASM_RT_TRAP_OOB); /* address + offset near 8 GiB */
    expect_trap("unreachable", 0, 0, 0, WASM_RT_TRAP_UNREACHABLE);
    expect_trap("div", 7, 0, 0, WASM_RT_TRAP_DIV_BY_ZERO);
    expect_trap("div", 0x80000000u, 0xffffffffu, 0, WASM_RT_TRAP_INT_OVERFLOW);
    expect_trap("trunc", 0, 0, NAN, WASM_RT_TRAP_INVALID_CONVERSION);
    expect_trap("trunc", 0, 0, 1e12, WASM_RT_TRAP_INT_OVERFLOW);
    expect_trap("call_ind", 1, 0, 0, WASM_RT_TRAP_CALL_INDIRECT); /* wrong signature */
    expect_trap("call_ind", 9, 0, 0, WASM_RT_TRAP_CALL_INDIRECT); /* past the table */
    expect_trap("recurse", 0, 0, 0, WASM_RT_TRAP_EXHAUSTION);     /* native stack */
}

TEST(wrt_calls_without_trap)
{
    mod *m = mod_new();
    uint32_t r = 0;
    CHECK_EQ(run(m, "call_ind", 0, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 42);
    CHECK_EQ(run(m, "div", 42, 6, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 7);
    CHECK_EQ(run(m, "store", 65532, 0xdeadbeef, 0, NULL), WASM_RT_TRAP_NONE);
    CHECK_EQ(run(m, "load", 65532, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 0xdeadbeef);
    CHECK_EQ(run(m, "call_host", 41, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 42);
    mod_free(m);
}

TEST(wrt_memory_grow_and_cap)
{
    mod *m = mod_new();
    uint32_t r = 0;
    CHECK_EQ(run(m, "grow", 3, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 1); /* previous size */
    CHECK_EQ(run(m, "size", 0, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 4);
    /* the grown pages are usable, the byte after them is not */
    CHECK_EQ(run(m, "store", 4 * 65536 - 4, 5, 0, NULL), WASM_RT_TRAP_NONE);
    CHECK_EQ(run(m, "load", 4 * 65536 - 4, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 5);
    CHECK_EQ(run(m, "load", 4 * 65536, 0, 0, NULL), WASM_RT_TRAP_OOB);
    mod_free(m);

    m = mod_new();
    /* the module declares max 100 pages */
    CHECK_EQ(run(m, "grow", 100, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 0xffffffffu);
    /* an embedder cap below the declared maximum */
    wrt_memory_cap(&m->inst.w2c_memory, 10);
    CHECK_EQ(run(m, "grow", 9, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 1);
    CHECK_EQ(run(m, "grow", 1, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(r, 0xffffffffu);
    CHECK_EQ(m->inst.w2c_memory.pages, 10);
    /* freeing the instance unmaps the whole reservation */
    uint8_t *data = m->inst.w2c_memory.data;
    mod_free(m);
    CHECK_EQ(msync(data, 4096, MS_ASYNC), -1);
    CHECK_EQ(errno, ENOMEM);
}

/* wrt_instance_new(): the next memory allocated inside the instance goes right after it, where
 * the engine's rewritten code looks for it; anything else gets a reservation of its own. */
TEST(wrt_memory_after_its_instance)
{
    CHECK(wrt_instance_new(WRT_INSTANCE_SPAN + 1) == NULL);
    CHECK_EQ(errno, EINVAL);

    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *inst = wrt_instance_new(sizeof(wasm_rt_memory_t) * 2);
    CHECK(inst != NULL);
    uint8_t *page = (uint8_t *)((uintptr_t)inst & ~(uintptr_t)(pg - 1));
    CHECK(inst + WRT_INSTANCE_SPAN == page + pg);
    CHECK_EQ(inst[0], 0);
    wasm_rt_memory_t *mem = (wasm_rt_memory_t *)(void *)inst;
    wasm_rt_memory_t *second = mem + 1;
    wasm_rt_memory_t outside;
    /* a memory outside the instance leaves the placement for the one inside */
    wasm_rt_allocate_memory(&outside, 1, 4);
    CHECK(outside.data != inst + WRT_INSTANCE_SPAN);
    wasm_rt_allocate_memory(mem, 1, 4);
    CHECK(mem->data == inst + WRT_INSTANCE_SPAN);
    /* only once: a second memory in the same instance is reserved elsewhere */
    wasm_rt_allocate_memory(second, 1, 4);
    CHECK(second->data != inst + WRT_INSTANCE_SPAN);
    /* usable, grows in place, and the instance below it keeps its bytes */
    mem->data[0] = 7;
    CHECK_EQ(wasm_rt_grow_memory(mem, 2), 1);
    CHECK(mem->data == inst + WRT_INSTANCE_SPAN);
    mem->data[3 * 65536 - 1] = 9;
    CHECK_EQ(mem->data[0], 7);
    CHECK_EQ(mem->pages, 3);
    wasm_rt_free_memory(second);
    wasm_rt_free_memory(&outside);
    wasm_rt_free_memory(mem);
    CHECK_EQ(msync(page + pg, pg, MS_ASYNC), -1); /* memory unmapped */
    CHECK_EQ(msync(page, pg, MS_ASYNC), 0);       /* the instance is not */
    wrt_instance_free(inst);
    CHECK_EQ(msync(page, pg, MS_ASYNC), -1);
    CHECK_EQ(errno, ENOMEM);

    /* an instance whose memory never came releases the reservation meant for it */
    inst = wrt_instance_new(64);
    CHECK(inst != NULL);
    page = (uint8_t *)((uintptr_t)inst & ~(uintptr_t)(pg - 1));
    CHECK_EQ(msync(page + pg, pg, MS_ASYNC), 0);
    wrt_instance_free(inst);
    CHECK_EQ(msync(page + pg, pg, MS_ASYNC), -1);
    CHECK_EQ(errno, ENOMEM);
}

TEST(wrt_nested_trap_stays_inner)
{
    mod *m = mod_new();
    m->host.mode = HOST_NESTED_TRAP;
    uint32_t r = 0;
    CHECK_EQ(run(m, "call_host", 21, 0, 0, &r), WASM_RT_TRAP_NONE);
    CHECK_EQ(m->host.nested, WASM_RT_TRAP_UNREACHABLE);
    CHECK_EQ(r, 42);
    mod_free(m);
}

/* Runs body in a child process and returns its wait status. */
static int in_child(void (*body)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the expected crash report is noise in the test log */
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        body();
        _exit(0); /* survived: the fault was wrongly swallowed */
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

static void fault_in_host_import(void)
{
    mod *m = mod_new();
    m->host.mode = HOST_FAULT;
    wasm_rt_trap_t t = run(m, "call_host", 1, 0, 0, NULL);
    _exit(t == WASM_RT_TRAP_OOB ? 3 : 4); /* reached only if the fault was turned into a trap */
}

static void fault_outside_guest(void)
{
    mod *m = mod_new();
    volatile const uint8_t *p = m->inst.w2c_memory.data + m->inst.w2c_memory.size + 4096;
    (void)*p;
    _exit(5);
}

TEST(wrt_host_faults_stay_fatal)
{
    /* ASan's handler (chained) reports and exits non-zero; without ASan the signal kills. */
    int st = in_child(fault_in_host_import);
    CHECK(!(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3)));
    CHECK(WIFSIGNALED(st) || WEXITSTATUS(st) != 4);
    st = in_child(fault_outside_guest);
    CHECK(!(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 5)));
}

/* ---- threads: traps on one thread leave another's instance alone ---- */

static atomic_long g_traps;

/* Traps NTRAPS times, each kind in turn, each on a fresh instance. */
#define NTRAPS 40

static void *trapper(void *arg)
{
    (void)arg;
    static const char *fns[] = {"unreachable", "load", "div", "recurse"};
    static const wasm_rt_trap_t want[] = {WASM_RT_TRAP_UNREACHABLE, WASM_RT_TRAP_OOB,
                                          WASM_RT_TRAP_DIV_BY_ZERO, WASM_RT_TRAP_EXHAUSTION};
    for (int i = 0; i < NTRAPS; i++) {
        mod *m = mod_new();
        wasm_rt_trap_t got = run(m, fns[i % 4], 1u << 20, 0, 0, NULL);
        mod_free(m);
        if (got != want[i % 4]) return (void *)1;
        atomic_fetch_add(&g_traps, 1);
    }
    wrt_thread_deinit();
    return NULL;
}

/* Makes correct calls on one instance until the trapper is done (and at least 2000). */
static void *worker(void *arg)
{
    long *count = arg;
    mod *m = mod_new();
    for (uint32_t i = 0; i < 2000 || atomic_load(&g_traps) < NTRAPS; i++) {
        uint32_t n = 1000 + i % 5000, r = 0;
        if (run(m, "spin", n, 0, 0, &r) != WASM_RT_TRAP_NONE || r != n * (n - 1) / 2) {
            mod_free(m);
            return (void *)1;
        }
        ++*count;
    }
    mod_free(m);
    wrt_thread_deinit();
    return NULL;
}

TEST_TIMEOUT(wrt_trap_on_one_thread_spares_another, 60)
{
    pthread_attr_t attr;
    CHECK_EQ(wrt_thread_attr_init(&attr), 0);
    long calls = 0;
    pthread_t a, b;
    CHECK_EQ(pthread_create(&b, &attr, worker, &calls), 0);
    CHECK_EQ(pthread_create(&a, &attr, trapper, NULL), 0);
    void *rb = NULL, *ra = NULL;
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    pthread_attr_destroy(&attr);
    CHECK(ra == NULL);
    CHECK(rb == NULL);
    CHECK_EQ(atomic_load(&g_traps), NTRAPS);
    CHECK(calls >= 2000);
    test_report("%d traps on one thread while the other made %ld correct calls", NTRAPS, calls);
}
