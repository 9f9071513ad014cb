/* guest/test_hooks.h: host functions that exist only for trail's own tests.
 *
 * With TRAIL_TEST_HOOKS=1 in the environment of `trail run`, every request isolate gets the
 * global function __trailTestTrap(), which makes the engine trap (wasm_rt_trap, as an
 * out-of-bounds access or `unreachable` in the engine would) while guest code is running. The
 * hostile test battery (tests/hostile/) uses it to prove that a trapping isolate is discarded
 * and recreated without affecting anything else. Without the variable nothing is registered.
 * The hooks exist only in the test builds (TRAIL_TEST_BUILD: ASan and TSan); the release build
 * compiles neither them nor test_hooks.c, so production guests cannot reach them in any way.
 *
 * Thread: any worker; the environment is read once. */
#ifndef TRAIL_GUEST_TEST_HOOKS_H
#define TRAIL_GUEST_TEST_HOOKS_H

#include <stdbool.h>

#include "base/base.h"
#include "wasm/js/jsg.h"

#ifdef TRAIL_TEST_BUILD
/* True when TRAIL_TEST_HOOKS=1 was set when the process first asked. */
bool guest_test_hooks_enabled(void);

/* Defines the test hooks on iso's global object when they are enabled; a no-op otherwise. */
int guest_test_hooks_install(jsg_isolate *iso, tr_error *err);
#else
static inline bool guest_test_hooks_enabled(void)
{
    return false;
}
static inline int guest_test_hooks_install(jsg_isolate *iso, tr_error *err)
{
    (void)iso;
    (void)err;
    return 0;
}
#endif

#endif
