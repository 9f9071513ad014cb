/* component/component_io.h: reading, downloading and installing component files. */
#ifndef TRAIL_COMPONENT_COMPONENT_IO_H
#define TRAIL_COMPONENT_COMPONENT_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"

/* GETs url (http or https only, redirects followed) into out. Fails on a connection error, an
 * HTTP status >= 400, more than max_bytes, or timeout_ms. */
int comp_download(const char *url, size_t max_bytes, long timeout_ms, tr_buf *out, tr_error *err);

/* The component files under a data directory's wasm/ folder: files ending in .wasm directly in
 * it, and a TypeScript project's build output in wasm/dist/ (project in wasm/ itself) or in
 * wasm/NAME/dist/ (project in a subfolder), never inside node_modules. Paths are "wasm_dir/..." in name order; free with comp_paths_free(). */
typedef struct comp_paths {
    char **paths;
    size_t len;
} comp_paths;
int comp_scan_dir(const char *wasm_dir, comp_paths *out, tr_error *err);
void comp_paths_free(comp_paths *p);

/* Largest component file trail accepts. */
#define COMP_MAX_FILE_BYTES (256u << 20)

#endif
