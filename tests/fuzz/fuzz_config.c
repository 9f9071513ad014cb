/* tests/fuzz/fuzz_config.c: libFuzzer target for config.textproto parsing.
 *
 * `make fuzz` builds and runs it (FUZZ_SECONDS, default 60; its corpus is kept under
 * build/fuzz/); `make test` builds it.
 * Every input must either parse or fail with TR_ECONFIG and a "name:line:col: " message, and
 * leave the config freeable without leaks. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg c;
    tr_error err;
    cfg_init_defaults(&c);
    int rc = cfg_parse("f", (const char *)data, size, &c, &err);
    if (rc != 0) {
        int line, col;
        assert(rc == TR_ECONFIG);
        assert(sscanf(err.msg, "f:%d:%d: ", &line, &col) == 2 && line >= 1 && col >= 1);
    } else {
        assert(c.server.address != NULL && c.jobs.time_zone != NULL);
    }
    cfg_deinit(&c);
    return 0;
}
