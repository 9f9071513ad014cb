/* Tests for component/wasmfile.c: section framing, custom sections, engine identity, and the
 * errors for a corrupt file, a non-WASM file, the bare engine and a foreign engine. */
#include "test.h"
#include "base/base.h"
#include "component/component.h"
#include "e2e/fixtures.h"

TEST(component_engine_hash_matches_build)
{
    size_t len;
    unsigned char *p = fx_engine_bytes(&len, 4096);
    comp_wasm_info info;
    tr_error err = {0};
    CHECK_EQ(comp_wasm_parse(p, len, &info, &err), 0);
    /* The build computes the hash with wasm-strip + sha256sum; the parser with its own walk. */
    CHECK_STR_EQ(info.engine_sha256, comp_engine_sha256());
    CHECK(info.js == NULL);
    CHECK(info.sections > 5);
    CHECK_EQ(comp_check(&info, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "bare engine module");
    free(p);
}

TEST(component_sections_found_and_hash_unchanged)
{
    size_t len;
    unsigned char *p = fx_engine_bytes(&len, 4096);
    fx_add_custom(p, &len, "trailbase.js", "export default 1;");
    fx_add_custom(p, &len, "trailbase.engine", "quickjs-wasi 3.6.2");
    comp_wasm_info info;
    tr_error err = {0};
    CHECK_EQ(comp_wasm_parse(p, len, &info, &err), 0);
    CHECK_MEM_EQ(info.js, info.js_len, "export default 1;");
    CHECK_MEM_EQ(info.engine, info.engine_len, "quickjs-wasi 3.6.2");
    CHECK(info.source_map == NULL);
    CHECK_STR_EQ(info.engine_sha256, comp_engine_sha256());
    CHECK_EQ(comp_check(&info, &err), 0);
    free(p);
}

TEST(component_foreign_engine_names_both_versions)
{
    size_t len;
    unsigned char *p = fx_engine_bytes(&len, 4096);
    /* Change one byte inside the code of the last non-custom section: another engine build. */
    p[len - 200] ^= 0x01;
    fx_add_custom(p, &len, "trailbase.js", "export default 1;");
    fx_add_custom(p, &len, "trailbase.engine", "quickjs-wasi 3.5.0");
    comp_wasm_info info;
    tr_error err = {0};
    CHECK_EQ(comp_wasm_parse(p, len, &info, &err), 0);
    CHECK(strcmp(info.engine_sha256, comp_engine_sha256()) != 0);
    CHECK_EQ(comp_check(&info, &err), TR_EENGINE);
    CHECK_CONTAINS(err.msg, "quickjs-wasi 3.5.0");
    CHECK_CONTAINS(err.msg, comp_engine_version());
    free(p);
}

TEST(component_rejects_non_wasm_and_corrupt)
{
    comp_wasm_info info;
    tr_error err = {0};
    const char *text = "<html>not wasm</html>";
    CHECK_EQ(comp_wasm_parse((const unsigned char *)text, strlen(text), &info, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "not a WebAssembly module");
    CHECK_EQ(comp_wasm_parse((const unsigned char *)"", 0, &info, &err), TR_EPARSE);

    size_t len;
    unsigned char *p = fx_engine_bytes(&len, 4096);
    /* Truncated: the last section now overruns the end of the file. */
    CHECK_EQ(comp_wasm_parse(p, len - 1000, &info, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "overruns");
    /* A wrong version field. */
    unsigned char saved = p[4];
    p[4] = 2;
    CHECK_EQ(comp_wasm_parse(p, len, &info, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "version");
    p[4] = saved;
    /* An unknown section id right after the header. */
    unsigned char bad[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x2a, 0x00};
    CHECK_EQ(comp_wasm_parse(bad, sizeof bad, &info, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "unknown section id 42");
    /* A section size whose LEB128 never ends. */
    unsigned char leb[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff};
    CHECK_EQ(comp_wasm_parse(leb, sizeof leb, &info, &err), TR_EPARSE);
    free(p);
}
