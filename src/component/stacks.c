/* component/stacks.c: every stack trace a component's code can see, in the user's TypeScript.
 *
 * DESIGN: the engine calls Error.prepareStackTrace(error, callSites), when it is a function, as
 * each error is made and keeps what it returns as error.stack (Error.prepareStackTrace is an
 * accessor of the engine's: it is assigned, not defined, or the engine would never see it). trail
 * installs one in every isolate of a component with a source map: it writes the frames as the
 * engine itself would
 * ("    at name (file:line:col)\n" each, "    at name (native)\n" for a built-in), except that a
 * position in the bundle ("component.js") is looked up in the source map by a host function the
 * closure alone holds. So e.stack read by a handler, console.error(e) (the prelude prints
 * e.stack) and the stacks of uncaught errors and failed job runs (the host reads e.stack) all
 * name the TypeScript sources. A handler may still replace Error.prepareStackTrace with its own.
 *
 * The host function takes two numbers and answers with one "source:line:col" string, whose
 * length the source map bounds; anything but two numbers (user code can replace the CallSite
 * methods) gives undefined. The writer remembers the last 4,096 positions it mapped: the same
 * throw sites come again and again, and a host call per frame would make every new error
 * several times as dear as the engine's own stack. */
#include "component/component_internal.h"

#include <stdio.h>
#include <string.h>


/* Evaluates to the function that installs Error.prepareStackTrace around map(line, col). */
static const char install_js[] =
    "(function (map) {\n"
    "  \"use strict\";\n"
    "  const seen = new Map();\n"
    "  const mapped = (line, col) => {\n"
    "    if (!(line >= 0 && line < 1048576 && col >= 0 && col < 4294967296)) return map(line, "
    "col);\n"
    "    const key = line * 4294967296 + col;\n"
    "    let where = seen.get(key);\n"
    "    if (where === undefined) {\n"
    "      where = map(line, col) ?? null;\n"
    "      if (seen.size >= 4096) seen.clear();\n"
    "      seen.set(key, where);\n"
    "    }\n"
    "    return where ?? undefined;\n"
    "  };\n"
    "  const prepare = function (error, frames) {\n"
    "    let s = \"\";\n"
    "    for (const f of frames) {\n"
    "      s += \"    at \" + (f.getFunctionName() || \"<anonymous>\");\n"
    "      if (f.isNative()) {\n"
    "        s += \" (native)\\n\";\n"
    "        continue;\n"
    "      }\n"
    "      const file = f.getFileName(), line = f.getLineNumber(), col = f.getColumnNumber();\n"
    "      let where;\n"
    "      if (file === \"component.js\" && typeof line === \"number\" && typeof col === "
    "\"number\")\n"
    "        where = mapped(line, col);\n"
    "      if (where === undefined)\n"
    "        where = (file == null ? \"<null>\" : String(file)) +\n"
    "          (line == null ? \"\" : \":\" + line + \":\" + col);\n"
    "      s += \" (\" + where + \")\\n\";\n"
    "    }\n"
    "    return s;\n"
    "  };\n"
    "  Error.prepareStackTrace = prepare;\n"
    "})";

/* A whole number from 1 to UINT32_MAX in ref, or 0. */
static uint32_t position(jsg_isolate *iso, jsg_ref ref)
{
    if (jsg_ref_kind(iso, ref) != JSG_K_NUMBER) return 0;
    tr_arena a;
    tr_arena_init(&a, 64);
    jsg_val v;
    uint32_t n = 0;
    if (jsg_to_val(iso, ref, &a, &v, NULL) == 0 && v.type == JSG_NUMBER && v.u.num >= 1 &&
        v.u.num <= (double)UINT32_MAX && v.u.num == (double)(uint32_t)v.u.num)
        n = (uint32_t)v.u.num;
    tr_arena_deinit(&a);
    return n;
}

static int host_map_position(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    const comp_srcmap *map = user;
    uint32_t line = argc >= 2 ? position(iso, argv[0]) : 0;
    uint32_t col = argc >= 2 ? position(iso, argv[1]) : 0;
    const char *source;
    uint32_t sl, sc;
    if (line == 0 || col == 0 || !comp_srcmap_lookup(map, line, col, &source, &sl, &sc)) return 0;
    tr_buf b = TR_BUF_INIT;
    tr_buf_printf(&b, "%s:%u:%u", source, sl, sc);
    jsg_val s = jsg_string(b.data, b.len);
    int rc = jsg_from_val(iso, &s, result, err);
    tr_buf_free(&b);
    return rc;
}

int comp_module_map_stacks(const comp_module *m, jsg_isolate *iso, tr_error *err)
{
    if (m->srcmap == NULL) return 0;
    jsg_ref holder = 0, map = 0, install = 0;
    jsg_val empty = jsg_object(NULL, 0);
    int rc = jsg_from_val(iso, &empty, &holder, err);
    if (rc == 0)
        rc = jsg_define_function(iso, holder, "__trailMapPosition", host_map_position, m->srcmap,
                                 err);
    if (rc == 0) rc = jsg_get(iso, holder, "__trailMapPosition", 18, &map, err);
    if (rc == 0) rc = jsg_eval(iso, install_js, sizeof install_js - 1, "<trail>", &install, err);
    if (rc == 0) rc = jsg_call(iso, install, 0, 1, &map, NULL, err);
    if (!jsg_isolate_dead(iso)) {
        jsg_ref refs[] = {holder, map, install};
        for (size_t i = 0; i < TR_ARRAY_LEN(refs); i++)
            if (refs[i]) jsg_ref_free(iso, refs[i]);
    }
    return rc;
}
