/* Tests for wasm/js/jsg.c against the real engine: evaluation, values, host functions,
 * promises, limits, threads. */
#include "test.h"

#include <pthread.h>

#include "wasm/js/jsg.h"
#include "wasm/runtime/wrt.h"

static jsg_isolate *new_iso(void)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    int rc = jsg_isolate_new(NULL, &iso, &err);
    if (rc != 0) fprintf(stderr, "jsg_isolate_new: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    return iso;
}

/* Evaluates code and returns its JSON (caller frees), failing the test on an error. */
static char *eval_json(jsg_isolate *iso, const char *code)
{
    tr_error err;
    tr_error_clear(&err);
    jsg_ref r = 0;
    int rc = jsg_eval(iso, code, strlen(code), "<test>", &r, &err);
    if (rc != 0) fprintf(stderr, "eval %s: %s\n", code, err.msg);
    CHECK_EQ(rc, 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_json(iso, r, &b, &err), 0);
    jsg_ref_free(iso, r);
    return tr_buf_take(&b, NULL);
}

TEST(jsg_eval_simple)
{
    jsg_isolate *iso = new_iso();
    char *s = eval_json(iso, "1+2");
    CHECK_STR_EQ(s, "3");
    tr_free(s);
    s = eval_json(iso, "({a: [1, 'x', null], b: {c: true}})");
    CHECK_STR_EQ(s, "{\"a\":[1,\"x\",null],\"b\":{\"c\":true}}");
    tr_free(s);
    jsg_isolate_free(iso);
}

