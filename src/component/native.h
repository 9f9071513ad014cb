/* component/native.h: compiled components: a WebAssembly module written for trail's ABI for
 * compiled guests (docs/guest-abi.md, "Compiled components"), translated to C by wasm2c,
 * compiled by the system's C compiler into a shared object, and run on trail's wasm2c runtime.
 *
 * DESIGN: compiling happens once per module (its SHA-256, trail's version and the ABI version
 * make the cache key), on the thread that loads the component: never a worker. The shared
 * object is loaded with dlopen(RTLD_LOCAL); it finds wasm2c's runtime (wasm_rt_*), the WASI
 * functions and the `trail` imports in trail's own executable, which exports exactly those
 * symbols (the Makefile's NATIVE_LDFLAGS). Every back edge of the generated C counts down the
 * instance's fuel; at zero it calls comp_native_tick(), which checks the CPU budget of the call
 * that is running and traps it when it is over.
 *
 * Thread: comp_native_set_cache_dir() before any thread starts; comp_native_compile() on any
 * thread; a comp_native is immutable and shared once made; comp_native_inst owning worker only. */
#ifndef TRAIL_COMPONENT_NATIVE_H
#define TRAIL_COMPONENT_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* The version of the ABI this trail implements; part of the cache key. */
#define COMP_NATIVE_ABI 1
/* Largest module trail compiles. */
#define COMP_NATIVE_MAX_MODULE_BYTES (64u << 20)
/* Longest wasm2c or the C compiler may take for one module; then it is killed. */
#define COMP_NATIVE_COMPILE_TIMEOUT_MS 300000
/* Back edges between two looks at the CPU clock. */
#define COMP_NATIVE_FUEL (1 << 20)
/* Host calls of one instance that may be waiting at once. */
#define COMP_NATIVE_MAX_HANDLES 1024

/* Where compiled modules are kept: DIR/compiled/KEY.so. NULL (the default): a temporary
 * directory per compile, removed after loading. Call once, before threads start. */
void comp_native_set_cache_dir(const char *dir);

/* The first call sets the cache directory to DIR/cache for the data directory DIR of wasm_dir
 * (DIR/wasm), unless one was set; later calls do nothing. comp_set_load_dir() calls it: the
 * first load of a server's components happens before its threads start. */
void comp_native_cache_beside(const char *wasm_dir);

/* A loaded shared object and the entry points of its module. */
typedef struct comp_native comp_native;

/* Compiles (or finds in the cache) and loads the module in bytes. *compile_ms gets the time the
 * compile took (0 from the cache); may be NULL. Errors name what failed: no compiler or wasm2c
 * (and the Debian package to install), a limit, an import trail does not provide, the
 * compiler's first lines of output. */
int comp_native_compile(const unsigned char *bytes, size_t len, comp_native **out,
                        uint64_t *compile_ms, tr_error *err);
void comp_native_free(comp_native *n); /* NULL is a no-op */

/* Whether bytes (a parsed module without a trailbase.js section) look like a compiled guest:
 * they export trail_http. */
bool comp_native_is_guest(const unsigned char *bytes, size_t len);

/* Called by the generated code when an instance's fuel ran out (see DESIGN). */
void comp_native_tick(int64_t *fuel);

#endif
