/* component/component.h: component files: a WebAssembly module (the engine) carrying the user's
 * bundled JavaScript in custom sections (see docs/guest-abi.md), and their validation.
 *
 * Thread: any; the functions here are pure over the bytes they are given. */
#ifndef TRAIL_COMPONENT_COMPONENT_H
#define TRAIL_COMPONENT_COMPONENT_H

#include <stddef.h>

#include "base/base.h"

#define COMP_SECTION_JS     "trailbase.js"
#define COMP_SECTION_ENGINE "trailbase.engine"
#define COMP_SECTION_MAP    "trailbase.map"

/* What comp_wasm_parse() finds in a module. Pointers borrow from the parsed bytes and stay valid
 * as long as they do. A missing section has NULL data and length 0. */
typedef struct comp_wasm_info {
    char engine_sha256[65]; /* hex SHA-256 of the module with every custom section removed */
    const char *js;         /* trailbase.js: the bundled ES module */
    size_t js_len;
    const char *engine; /* trailbase.engine: e.g. "quickjs-wasi 3.6.2" */
    size_t engine_len;
    const char *source_map; /* trailbase.map */
    size_t source_map_len;
    unsigned sections;        /* number of sections, custom ones included */
    bool exports_trail_http;  /* a compiled component's entry point (docs/guest-abi.md) */
} comp_wasm_info;

/* Walks the module's structure: magic, version, every section's id and size, custom-section
 * names. TR_EPARSE with the byte offset of the first problem when the bytes are not a
 * well-formed WebAssembly binary. */
int comp_wasm_parse(const unsigned char *bytes, size_t len, comp_wasm_info *out, tr_error *err);

/* The engine compiled into this trail: its name and version ("quickjs-wasi 3.6.2") and the hex
 * SHA-256 of its module without custom sections. */
const char *comp_engine_version(void);
const char *comp_engine_sha256(void);

/* Checks that info describes a trail component: for the engine this trail embeds (it has a
 * trailbase.js section and its engine hash matches), or compiled (no trailbase.js section, and
 * it exports trail_http). Errors say what the file is instead
 * (no JS section; built for another engine, naming both versions). */
int comp_check(const comp_wasm_info *info, tr_error *err);

#endif
