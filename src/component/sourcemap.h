/* component/sourcemap.h: source maps (version 3) of components, to show JS stack traces in the
 * user's TypeScript: "at explode (component.js:460:13)" becomes "at explode (src/index.ts:5:9)".
 *
 * Only what stack traces need is decoded: `sources` and `mappings`. Thread: immutable after
 * comp_srcmap_parse(), shareable. */
#ifndef TRAIL_COMPONENT_SOURCEMAP_H
#define TRAIL_COMPONENT_SOURCEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct comp_srcmap comp_srcmap;

/* Parses a source map (JSON text). TR_EPARSE when it is not one this code understands. */
int comp_srcmap_parse(const char *json, size_t len, comp_srcmap **out, tr_error *err);
void comp_srcmap_free(comp_srcmap *m); /* NULL is a no-op */

/* The original position of generated line:col (both from 1, as stack traces print them):
 * the source's name and line:col from 1. False when nothing maps there. */
bool comp_srcmap_lookup(const comp_srcmap *m, uint32_t line, uint32_t col, const char **source,
                        uint32_t *src_line, uint32_t *src_col);

/* Appends text to out with every "gen_name:LINE:COL" that maps replaced by "SOURCE:LINE:COL". */
void comp_srcmap_rewrite(const comp_srcmap *m, const char *gen_name, const char *text,
                         tr_buf *out);

#endif
