/* The hostile battery, SQL injection through parameters: payloads that would drop, delete,
 * attach or widen a query if spliced into SQL are bound as parameters by the component, so each
 * is stored once as data and found only by itself; the table is intact afterwards. */
#include "hostile/hostile.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"

TEST_TIMEOUT(hostile_sql_injection, 120)
{
    static const struct {
        const char *s;
        size_t len;
    } payloads[] = {
        {"Robert'); DROP TABLE notes;--", 0},
        {"x' OR '1'='1", 0},
        {"x\" OR \"1\"=\"1", 0},
        {"'; DELETE FROM notes; --", 0},
        {"1; ATTACH DATABASE '/tmp/evil.db' AS evil; --", 0},
        {"?1 ?2 :a @b $c", 0},
        {"' UNION SELECT name FROM sqlite_master --", 0},
        {"a\0'; DROP TABLE notes; --", 25},
        {"\xCA\xBC OR 1=1 --", 0},
        {"%27%20OR%201%3D1", 0},
        {"*/ DROP TABLE notes /*", 0},
        {"');PRAGMA writable_schema=1;--", 0},
    };
    th_server s;
    hz_start(&s, NULL, NULL);
    hz_load *l = hz_load_start(&s);
    size_t n = TR_ARRAY_LEN(payloads);
    for (size_t i = 0; i < n; i++) {
        size_t len = payloads[i].len ? payloads[i].len : strlen(payloads[i].s);
        th_resp r;
        CHECK_EQ(hz_call(s.port, "POST", "/sql/note", payloads[i].s, len, &r, NULL), 200);
        CHECK_STR_EQ(r.body, "{\"matches\":1}"); /* stored verbatim, once */
        th_resp_free(&r);
        CHECK_EQ(hz_call(s.port, "POST", "/sql/find", payloads[i].s, len, &r, NULL), 200);
        CHECK_STR_EQ(r.body, "{\"rows\":1}"); /* matches itself, not every row */
        th_resp_free(&r);
    }
    th_resp r;
    CHECK_EQ(hz_call(s.port, "GET", "/sql/count", NULL, 0, &r, NULL), 200);
    char want[64];
    snprintf(want, sizeof want, "{\"tables\":1,\"notes\":%zu}", n);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
    CHECK(access("/tmp/evil.db", F_OK) != 0);
    hz_stats st;
    hz_load_stop(l, &st);
    test_report("SQL injection: %zu payloads stored as data and found only by themselves, table "
                "intact (%zu rows); healthy meanwhile: %ld/%ld ok, p99 %.1f ms; server peak RSS "
                "%ld MiB (bound %d)",
                n, n, st.ok, st.ok + st.failed, st.p99_ms, st.peak_rss_kib >> 10,
                HZ_RSS_BOUND_MIB);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}
