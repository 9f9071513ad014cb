/* guest/test_hooks.c: host functions for trail's own tests, behind TRAIL_TEST_HOOKS=1 (see
 * test_hooks.h).
 *
 * DESIGN: the trap hook calls wasm_rt_trap() from inside a host import. That is what the
 * runtime does for a real trap (it unwinds to the innermost wrt_call frame, which is the
 * guest call that reached this import), so the isolate ends up dead exactly as after a fault
 * in the engine's code. Nothing here holds resources across the jump. */
#include "guest/test_hooks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/runtime/wrt.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool enabled;

static void read_env(void)
{
    const char *v = getenv("TRAIL_TEST_HOOKS");
    enabled = v != NULL && strcmp(v, "1") == 0;
}

bool guest_test_hooks_enabled(void)
{
    pthread_once(&once, read_env);
    return enabled;
}

static int hook_trap(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                     const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)iso, (void)user, (void)this_, (void)argc, (void)argv, (void)result, (void)err;
    wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

int guest_test_hooks_install(jsg_isolate *iso, tr_error *err)
{
    if (!guest_test_hooks_enabled()) return 0;
    return jsg_define_function(iso, 0, "__trailTestTrap", hook_trap, NULL, err);
}
