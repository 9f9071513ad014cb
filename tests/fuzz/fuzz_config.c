/* tests/fuzz/fuzz_config.c: libFuzzer target for config.textproto parsing.
 *
 * Build and run by hand (no make target yet):
 *   clang -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined \
 *     tests/fuzz/fuzz_config.c src/config/config.c src/config/textproto.c src/base/alloc.c \
 *     src/base/err.c src/base/log.c -o /tmp/fuzz_config && /tmp/fuzz_config -max_len=512
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
