/* tests/e2e/fixtures.c: see fixtures.h. */
#include "e2e/fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "e2e/harness.h"
#include "test.h"

unsigned char *fx_engine_bytes(size_t *len, size_t extra)
{
    const char *root = getenv("TRAIL_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/node_modules/quickjs-wasi/quickjs.wasm", root ? root : ".");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + extra);
    CHECK(p != NULL);
    CHECK_EQ(fread(p, 1, (size_t)n, f), n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void put_leb(unsigned char *p, size_t *len, size_t v)
{
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        p[(*len)++] = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
}

void fx_add_custom(unsigned char *p, size_t *len, const char *name, const char *payload)
{
    size_t nl = strlen(name), pl = strlen(payload);
    unsigned char tmp[8];
    size_t tl = 0;
    put_leb(tmp, &tl, nl);
    p[(*len)++] = 0;
    put_leb(p, len, tl + nl + pl);
    memcpy(p + *len, tmp, tl);
    *len += tl;
    memcpy(p + *len, name, nl);
    *len += nl;
    memcpy(p + *len, payload, pl);
    *len += pl;
}

unsigned char *fx_component(const char *js, const char *engine, bool foreign, size_t *len)
{
    size_t extra = strlen(js) + (engine ? strlen(engine) : 0) + 64;
    unsigned char *p = fx_engine_bytes(len, extra);
    if (foreign) p[*len - 200] ^= 0x01; /* inside the last code section's bodies */
    fx_add_custom(p, len, "trailbase.js", js);
    if (engine) fx_add_custom(p, len, "trailbase.engine", engine);
    return p;
}

int fx_sh(const char *cmd)
{
    fflush(stdout);
    fflush(stderr);
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

void fx_start_app(th_server *s, const char *dir, const char *config, const char *const *extra)
{
    const char *root = getenv("TRAIL_ROOT");
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    char depot[700], src[1000], cmd[8192];
    snprintf(depot, sizeof depot, "%s/%s", test_tmpdir(), name);
    snprintf(src, sizeof src, "%s/%s", root ? root : ".", dir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/wasm' '%s/migrations' && if [ -f '%s/main.c' ]; then build=c-build.sh; "
             "else build=sdk-build.sh; fi && '%s/tools/'$build '%s' '%s/wasm/%s.wasm' "
             ">/dev/null && if [ -d '%s/migrations' ]; then cp '%s'/migrations/*.sql "
             "'%s/migrations/'; fi",
             depot, depot, src, root ? root : ".", src, depot, name, src, src, depot);
    if (fx_sh(cmd) != 0) test_fail(__FILE__, __LINE__, "building %s failed", dir);
    if (config) {
        char path[800];
        snprintf(path, sizeof path, "%s/config.textproto", depot);
        CHECK_EQ(th_write_file(path, config, strlen(config)), 0);
    }
    CHECK_EQ(th_server_start(s, depot, extra), 0);
}

void fx_build_component(const char *name, const char *out_path)
{
    const char *root = getenv("TRAIL_ROOT");
    char cmd[4096];
    /* a C component (tests/data/components/NAME/main.c) is built with the C SDK */
    snprintf(cmd, sizeof cmd,
             "mkdir -p \"$(dirname '%s')\" && if [ -f '%s/tests/data/components/%s/main.c' ]; "
             "then '%s/tools/c-build.sh' '%s/tests/data/components/%s' '%s'; else "
             "'%s/tools/sdk-build.sh' '%s/tests/data/components/%s' '%s' >/dev/null; fi",
             out_path, root ? root : ".", name, root ? root : ".", root ? root : ".", name,
             out_path, root ? root : ".", root ? root : ".", name, out_path);
    int rc = fx_sh(cmd);
    if (rc != 0) test_fail(__FILE__, __LINE__, "building component %s failed (%d)", name, rc);
}
