/* Tests for http/response.c: reason phrases. */
#include "test.h"
#include "http/http.h"

#include <string.h>

TEST(http_status_reasons)
{
    CHECK_STR_EQ(http_status_reason(100), "Continue");
    CHECK_STR_EQ(http_status_reason(200), "OK");
    CHECK_STR_EQ(http_status_reason(207), "Multi-Status");
    CHECK_STR_EQ(http_status_reason(404), "Not Found");
    CHECK_STR_EQ(http_status_reason(418), "I'm a teapot");
    CHECK_STR_EQ(http_status_reason(423), "Locked");
    CHECK_STR_EQ(http_status_reason(511), "Network Authentication Required");
    /* codes without a registered phrase, and the edges of the search */
    CHECK_STR_EQ(http_status_reason(99), "Unknown");
    CHECK_STR_EQ(http_status_reason(299), "Unknown");
    CHECK_STR_EQ(http_status_reason(599), "Unknown");
    CHECK_STR_EQ(http_status_reason(0), "Unknown");
    /* a binary search finds every registered code only if the table is sorted */
    int found = 0;
    for (int c = 100; c < 600; c++) {
        if (strcmp(http_status_reason(c), "Unknown") != 0) found++;
    }
    CHECK_EQ(found, 62);
}
