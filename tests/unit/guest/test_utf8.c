/* Tests for __trailhost.decodeUtf8 (guest/guest.c) in a real isolate: valid text passes through
 * unchanged, each invalid sequence becomes one U+FFFD (or null with `fatal`), wherever it is. */
#include "test.h"
#include "guest/guest.h"

TEST(guest_decode_utf8_valid_and_invalid)
{
    tr_error err = {0};
    guest_env env;
    guest_env_init(&env, NULL, NULL, NULL);
    jsg_isolate *iso;
    guest *g;
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    CHECK_EQ(guest_new(iso, &env, NULL, NULL, &g, &err), 0);
    static const char code[] =
        "const hex = (s) => s === null ? 'null' :"
        "  [...s].map((c) => c.codePointAt(0).toString(16)).join(' ');"
        "const d = (b, fatal) => hex(__trailhost.decodeUtf8(new Uint8Array(b), fatal));"
        "[d([]), d([0x68, 0x69]), d([0xcf, 0x80, 0xf0, 0x9f, 0x8c, 0x8d]),"
        " d([0x68, 0xff, 0x69]), d([0xc0, 0x80, 0x61]), d([0x61, 0xe2, 0x82]),"
        " d([0xed, 0xa0, 0x80, 0x62]), d([0x80, 0x80]), d([0xf8, 0x61]),"
        " d([0x68, 0xff], true), d([0xcf, 0x80], true)].join('|')";
    jsg_ref r = 0;
    CHECK_EQ(jsg_eval(iso, code, sizeof code - 1, "utf8.js", &r, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
    CHECK_STR_EQ(b.data, "|68 69|3c0 1f30d|68 fffd 69|fffd 61|61 fffd|fffd 62|fffd fffd|fffd 61|"
                         "null|3c0");
    tr_buf_free(&b);
    jsg_ref_free(iso, r);
    guest_free(g);
    jsg_isolate_free(iso);
    guest_env_deinit(&env);
}
