/* jsg_take_limit_error(): which top-level calls ended past the deadline or out of memory, as
 * the component host reads it after timers and I/O completions ran guest code. */
#include "test.h"

#include <string.h>

#include "wasm/js/jsg.h"

static int eval(jsg_isolate *iso, const char *code, tr_error *err)
{
    tr_error_clear(err);
    return jsg_eval(iso, code, strlen(code), "<test>", NULL, err);
}

static int host_eval(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                     const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user, (void)this_, (void)argc, (void)argv, (void)result;
    /* a nested call that runs out of memory: the outer call decides what becomes of it */
    return eval(iso, "const a = []; for (;;) a.push(new Uint8Array(1 << 16));", err);
}

TEST(jsg_take_limit_error_reports_top_level_limits_once)
{
    jsg_options opt = {.memory_limit = 16u << 20, .timeout_ns = 50u * 1000000u, .cpu_time = true};
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    CHECK_EQ(jsg_isolate_new(&opt, &iso, &err), 0);
    CHECK_EQ(jsg_take_limit_error(iso), 0);

    CHECK_EQ(eval(iso, "for (;;) {}", &err), TR_EINTERRUPTED);
    CHECK_EQ(jsg_take_limit_error(iso), TR_EINTERRUPTED);
    CHECK_EQ(jsg_take_limit_error(iso), 0); /* asking clears it */

    CHECK_EQ(eval(iso, "const a = []; for (;;) a.push(new Uint8Array(1 << 16));", &err),
             TR_ENOMEM);
    CHECK_EQ(jsg_take_limit_error(iso), TR_ENOMEM);

    CHECK_EQ(eval(iso, "throw new Error('plain')", &err), TR_EJS);
    CHECK_EQ(jsg_take_limit_error(iso), 0);

    /* the guest catches what a host function's nested call ran into: not the isolate's limit */
    CHECK_EQ(jsg_define_function(iso, 0, "nested", host_eval, NULL, &err), 0);
    CHECK_EQ(eval(iso, "let caught = false; try { nested(); } catch (e) { caught = true; } caught",
                  &err),
             0);
    CHECK_EQ(jsg_take_limit_error(iso), 0);
    jsg_isolate_free(iso);
}
