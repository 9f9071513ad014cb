/* Tests for guest_log_escape() (guest/guest.c): one console call is one log line. */
#include "test.h"
#include "guest/guest.h"

#include <string.h>

static void expect(const char *in, size_t n, const char *want)
{
    tr_buf b = TR_BUF_INIT;
    guest_log_escape(in, n, &b);
    CHECK_MEM_EQ(b.data ? b.data : "", b.len, want);
    tr_buf_free(&b);
}

TEST(guest_log_escape_control_characters)
{
    expect("plain text", 10, "plain text");
    expect("a\nb\rc\td\\e", 9, "a\\nb\\rc\\td\\\\e");
    expect("\x1b[31mred\x1b[0m", 12, "\\x1b[31mred\\x1b[0m");
    expect("\x07\x7f", 2, "\\x07\\x7f");
    static const char nul[] = {'x', '\0', 'y'};
    expect(nul, 3, "x\\x00y");
    /* C1 controls written as UTF-8 (CSI is U+009B) become one escape; other UTF-8 stays */
    expect("\xc2\x9b"
           "2J",
           4, "\\x9b2J");
    expect("caf\xc3\xa9 \xe2\x82\xac \xc2\xa0", 12, "caf\xc3\xa9 \xe2\x82\xac \xc2\xa0");
    /* a lone 0xC2 at the end is copied as it is (no control follows it) */
    expect("a\xc2", 2, "a\xc2");
}
