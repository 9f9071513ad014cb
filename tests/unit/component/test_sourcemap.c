/* Tests for component/sourcemap.c: positions looked up within a line (before, on and between
 * segments, past the last), lines without segments, and stack text rewritten. */
#include "test.h"
#include "base/base.h"
#include "component/component_internal.h"

#include <string.h>

/* Generated line 1: columns 0, 4 and 10 map to a.ts 1:1, 1:5 and 1:11; line 2: column 0 maps to
 * a.ts 2:11; line 3 has no segment. */
static const char MAP[] =
    "{\"version\":3,\"sources\":[\"a.ts\"],\"mappings\":\"AAAA,IAAI,MAAM;AACA;\"}";

TEST(component_srcmap_lookup_within_a_line)
{
    comp_srcmap *m = NULL;
    tr_error err = {0};
    CHECK_EQ(comp_srcmap_parse(MAP, sizeof MAP - 1, &m, &err), 0);
    static const struct {
        uint32_t line, col, src_line, src_col;
    } cases[] = {{1, 1, 1, 1},   {1, 4, 1, 1},    {1, 5, 1, 5},  {1, 10, 1, 5},
                 {1, 11, 1, 11}, {1, 500, 1, 11}, {2, 1, 2, 11}, {2, 9, 2, 11}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *src = NULL;
        uint32_t sl = 0, sc = 0;
        CHECK(comp_srcmap_lookup(m, cases[i].line, cases[i].col, &src, &sl, &sc));
        CHECK_STR_EQ(src, "a.ts");
        CHECK_EQ(sl, cases[i].src_line);
        CHECK_EQ(sc, cases[i].src_col);
    }
    const char *src;
    uint32_t sl, sc;
    CHECK(!comp_srcmap_lookup(m, 3, 1, &src, &sl, &sc));
    CHECK(!comp_srcmap_lookup(m, 0, 1, &src, &sl, &sc));
    CHECK(!comp_srcmap_lookup(m, 99, 1, &src, &sl, &sc));

    tr_buf b = TR_BUF_INIT;
    comp_srcmap_rewrite(m, "component.js", "    at f (component.js:1:11)\n    at g (x.js:1:1)\n",
                        &b);
    CHECK_STR_EQ(b.data, "    at f (a.ts:1:11)\n    at g (x.js:1:1)\n");
    tr_buf_free(&b);
    comp_srcmap_free(m);
}
