/* The Quick Start of a trail component in C: three endpoints. Build with `make`; trail picks up
 * dist/component.wasm (and reloads it when it changes). */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hello(tb_request *req)
{
    tb_respond_text(req, 200, "Hello from C!");
}

static void greet(tb_request *req)
{
    const char *name = tb_param(req, "name");
    char text[256];
    snprintf(text, sizeof text, "Hello, %s!", name ? name : "stranger");
    tb_respond_text(req, 200, text);
}

/* Echoes the JSON body: {"received": <body>, "timestamp": <ms since the epoch>}. */
static void json(tb_request *req)
{
    size_t len;
    const char *body = tb_body(req, &len);
    if (!tb_json_valid(body, len)) {
        tb_respond_error(req, 400, "the body is not valid JSON");
        return;
    }
    char *out = malloc(len + 64);
    snprintf(out, len + 64, "{\"received\":%s,\"timestamp\":%lld}", body,
             (long long)tb_now_ms());
    tb_respond_json(req, 200, out);
    free(out);
}

void tb_init(void)
{
    tb_route("GET", "/hello", hello);
    tb_route("GET", "/greet/:name", greet);
    tb_route("POST", "/json", json);
}
