/* bench/c: the compiled component bench/run.sh measures beside bench/app (JS): GET /hello with
 * the same body, and GET /cpu with the same xorshift32 loop and the same JSON. Built with the
 * C SDK (tools/c-build.sh); native/bench_spin.c is the same loop compiled natively for the host, for the
 * sandbox's cost (bench/README.md). */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>

#include "spin.h"

static void hello(tb_request *req)
{
    tb_respond_text(req, 200, "Hello from WASM!");
}

static void cpu(tb_request *req)
{
    char json[64];
    snprintf(json, sizeof json, "{\"result\":%u}", bench_spin(BENCH_SPIN_ITERATIONS));
    tb_respond_json(req, 200, json);
}

void tb_init(void)
{
    tb_route("GET", "/hello", hello);
    tb_route("GET", "/cpu", cpu);
}
