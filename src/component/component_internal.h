/* component/component_internal.h: what the files of src/component/ share: the loaded component's
 * fields (module.c loads them; instance.c, registry.c and stacks.c read them) and source maps
 * (sourcemap.c), which show JS stack traces in the user's TypeScript: "at explode
 * (component.js:460:13)" becomes "at explode (src/index.ts:5:9)". Only what stack traces need is
 * decoded from a map: `sources` and `mappings`. Thread: a comp_module and a parsed comp_srcmap
 * are immutable and shareable. */
#ifndef TRAIL_COMPONENT_COMPONENT_INTERNAL_H
#define TRAIL_COMPONENT_COMPONENT_INTERNAL_H

#include <stdatomic.h>

#include "component/component.h"

struct comp_module {
    _Atomic int refs;
    char *name;        /* for logs: the file's path relative to the wasm directory */
    char *path;        /* the file it was loaded from */
    char version[13];  /* the first 12 hex digits of the file's SHA-256 */
    char sha256[65];   /* the file's SHA-256 (hex), computed once at load (hot reload reuses it) */
    char *js;          /* the bundled ES module */
    size_t js_len;
    comp_route *routes;
    size_t nroutes;
    comp_job *jobs;
    size_t njobs;
    comp_limits limits;
    struct comp_srcmap *srcmap; /* from the trailbase.map section; NULL when there is none */
    comp_record_hook *hooks; /* trailbase-wasm/records hooks, in declaration order */
    size_t nhooks;
    struct comp_native *native; /* a compiled component (native_internal.h); NULL for JS */
    uint64_t compile_ms;        /* how long compiling it took; 0 when it came from the cache */
};

/* ---- source maps (version 3) ---- */

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
