/* tests/e2e/fixtures.h: component files made by the test itself from the pinned engine, for
 * tests of validation and installation (components built by the real SDK are used where the
 * JavaScript must run). */
#ifndef TRAIL_TESTS_E2E_FIXTURES_H
#define TRAIL_TESTS_E2E_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>

/* The engine's module bytes (node_modules/quickjs-wasi/quickjs.wasm under $TRAIL_ROOT), with
 * room for `extra` more bytes; free with free(). */
unsigned char *fx_engine_bytes(size_t *len, size_t extra);

/* Appends a custom section to p (which must have room for it). */
void fx_add_custom(unsigned char *p, size_t *len, const char *name, const char *payload);

/* The engine plus trailbase.js = js and trailbase.engine = engine (when not NULL). foreign:
 * flip a byte of the engine's code so that its identity is another engine's. free() it. */
unsigned char *fx_component(const char *js, const char *engine, bool foreign, size_t *len);

/* Builds the component in $TRAIL_ROOT/tests/data/components/NAME (TypeScript, or C when it has a
 * main.c: tools/c-build.sh) with the repository's
 * SDK (tools/sdk-build.sh) into out_path (directories created). Fails the test if the build
 * does. */
void fx_build_component(const char *name, const char *out_path);

struct th_server;
/* Builds the app in $TRAIL_ROOT/DIR (e.g. "examples/analytics") with tools/sdk-build.sh (or
 * tools/c-build.sh when DIR has a main.c) into a
 * fresh data directory <test_tmpdir()>/<its last path element>, copies the .sql files of its migrations/,
 * writes config (when not NULL) as the directory's config.textproto, and starts trail on it with
 * the extra arguments (NULL-terminated, may be NULL). Fails the test if any step does. */
void fx_start_app(struct th_server *s, const char *dir, const char *config,
                  const char *const *extra);

/* Runs a shell command line; returns its exit status (or -1). Output goes to the test's
 * stderr. */
int fx_sh(const char *cmd);

#endif
