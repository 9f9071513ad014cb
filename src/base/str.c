/* base/str.c: byte-string helpers shared by the subsystems (percent-decoding). */
#include "base/base.h"

#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

long tr_percent_decode(const char *s, size_t n, char *out, size_t cap, const char *refuse)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
            if (lo >= 0) {
                ch = (char)(hi << 4 | lo);
                if (refuse && (ch == '\0' || strchr(refuse, ch))) return -1;
                i += 2;
            } else if (refuse) {
                return -1;
            }
        }
        if (j >= cap) return -1;
        out[j++] = ch;
    }
    return (long)j;
}
