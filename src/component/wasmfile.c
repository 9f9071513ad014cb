/* component/wasmfile.c: walks a WebAssembly binary's sections (the binary format's section
 * framing only: a module that passes is well-framed, and the engine hash then proves it is the
 * exact module trail was built with). */
#include "component/component.h"

#include <string.h>

#include "base/sha256.h"
#include "engine_info.h"

/* Reads an unsigned LEB128 of at most 32 bits at *pos; advances *pos. */
static int read_u32(const unsigned char *p, size_t len, size_t *pos, uint32_t *out)
{
    uint32_t v = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        if (*pos >= len) return TR_EPARSE;
        unsigned char b = p[(*pos)++];
        if (shift == 28 && (b & 0x70)) return TR_EPARSE; /* more than 32 bits */
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return TR_EPARSE;
}

static void note_custom(comp_wasm_info *out, const char *name, size_t name_len,
                        const unsigned char *payload, size_t payload_len)
{
    struct {
        const char *name;
        const char **data;
        size_t *len;
    } known[] = {
        {COMP_SECTION_JS, &out->js, &out->js_len},
        {COMP_SECTION_ENGINE, &out->engine, &out->engine_len},
        {COMP_SECTION_MAP, &out->source_map, &out->source_map_len},
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(known); i++) {
        if (strlen(known[i].name) == name_len && memcmp(known[i].name, name, name_len) == 0) {
            *known[i].data = (const char *)payload;
            *known[i].len = payload_len;
        }
    }
}

/* Whether the export section (payload p, n bytes) exports a function named name. */
static bool exports_name(const unsigned char *p, size_t n, const char *name)
{
    size_t pos = 0, want = strlen(name);
    uint32_t count;
    if (read_u32(p, n, &pos, &count) < 0) return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len, index;
        if (read_u32(p, n, &pos, &len) < 0 || len > n - pos) return false;
        const unsigned char *s = p + pos;
        pos += len;
        if (pos >= n) return false;
        unsigned char kind = p[pos++];
        if (read_u32(p, n, &pos, &index) < 0) return false;
        if (kind == 0 && len == want && memcmp(s, name, want) == 0) return true;
    }
    return false;
}

int comp_wasm_parse(const unsigned char *bytes, size_t len, comp_wasm_info *out, tr_error *err)
{
    static const unsigned char header[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    memset(out, 0, sizeof *out);
    if (len < 4 || memcmp(bytes, header, 4) != 0)
        return tr_error_set(err, TR_EPARSE, "not a WebAssembly module (bad magic number)");
    if (len < 8 || memcmp(bytes + 4, header + 4, 4) != 0)
        return tr_error_set(err, TR_EPARSE, "unsupported WebAssembly binary version");

    tr_sha256 hash;
    tr_sha256_init(&hash);
    tr_sha256_update(&hash, bytes, 8);
    size_t pos = 8;
    while (pos < len) {
        size_t start = pos;
        unsigned char id = bytes[pos++];
        uint32_t size;
        if (read_u32(bytes, len, &pos, &size) < 0 || size > len - pos)
            return tr_error_set(err, TR_EPARSE,
                                "corrupt WebAssembly module: section at byte %zu overruns the file",
                                start);
        if (id > 13)
            return tr_error_set(err, TR_EPARSE,
                                "corrupt WebAssembly module: unknown section id %u at byte %zu",
                                id, start);
        size_t end = pos + size;
        if (id == 0) {
            uint32_t name_len;
            size_t p = pos;
            if (read_u32(bytes, end, &p, &name_len) < 0 || name_len > end - p)
                return tr_error_set(err, TR_EPARSE,
                                    "corrupt WebAssembly module: bad custom section name at "
                                    "byte %zu",
                                    start);
            note_custom(out, (const char *)bytes + p, name_len, bytes + p + name_len,
                        end - p - name_len);
        } else {
            tr_sha256_update(&hash, bytes + start, end - start);
            if (id == 7) out->exports_trail_http = exports_name(bytes + pos, size, "trail_http");
        }
        out->sections++;
        pos = end;
    }
    unsigned char digest[32];
    tr_sha256_final(&hash, digest);
    tr_hex_encode(digest, 32, out->engine_sha256);
    return 0;
}

const char *comp_engine_version(void)
{
    return TRAIL_ENGINE_VERSION;
}

const char *comp_engine_sha256(void)
{
    return TRAIL_ENGINE_SHA256;
}

int comp_check(const comp_wasm_info *info, tr_error *err)
{
    if (info->js == NULL && info->exports_trail_http) return 0; /* compiled */
    if (info->js == NULL) {
        if (strcmp(info->engine_sha256, TRAIL_ENGINE_SHA256) == 0)
            return tr_error_set(err, TR_EINVAL,
                                "this is the bare engine module, not a component: it carries no "
                                "'" COMP_SECTION_JS "' section (build one with `npm run build`)");
        return tr_error_set(err, TR_EINVAL,
                            "not a trail component: the module has no '" COMP_SECTION_JS
                            "' section (a JS component) and does not export trail_http (a "
                            "compiled component, docs/guest-abi.md)");
    }
    if (strcmp(info->engine_sha256, TRAIL_ENGINE_SHA256) != 0) {
        if (info->engine != NULL)
            return tr_error_set(err, TR_EENGINE,
                                "component built for engine %.*s (module %.12s), but this trail "
                                "embeds %s (module %.12s); rebuild it with this trail's SDK",
                                (int)TR_MIN(info->engine_len, 100), info->engine,
                                info->engine_sha256, TRAIL_ENGINE_VERSION, TRAIL_ENGINE_SHA256);
        return tr_error_set(err, TR_EENGINE,
                            "component built for an unknown engine (module %.12s), but this trail "
                            "embeds %s (module %.12s)",
                            info->engine_sha256, TRAIL_ENGINE_VERSION, TRAIL_ENGINE_SHA256);
    }
    return 0;
}
