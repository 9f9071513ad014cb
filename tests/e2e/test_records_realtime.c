/* Realtime subscriptions end to end: a WASM handler's execute() reaches the subscribers on every
 * worker, the read rule applies to each event and each subscriber, Record API writes (update,
 * delete) stream too, one-record subscriptions see only their record, and refusals. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char items_sql[] =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT, public INTEGER NOT NULL DEFAULT 0,\n"
    "  _note TEXT) STRICT;\n";

static const char items_cfg[] =
    "server { access_log: false }\n"
    "record_apis { name: \"items\" table_name: \"items\"\n"
    "  acl_world: [READ, CREATE, UPDATE, DELETE]\n"
    "  read_access_rule: \"_ROW_.public = 1\" enable_subscriptions: true }\n"
    "record_apis { name: \"all_items\" table_name: \"items\" acl_world: [READ, UPDATE, DELETE]\n"
    "  enable_subscriptions: true }\n"
    "record_apis { name: \"nosub\" table_name: \"items\" acl_world: [READ] }\n";

#define NALL 16 /* subscribers to everything: over two workers, both get some (p > 0.9999) */
#define NPUB 4  /* subscribers the read rule limits to public rows */

static void post(int port, const char *path, int status)
{
    rt_expect(port, "POST", path, NULL, NULL, status, NULL);
}

TEST_TIMEOUT(e2e_records_realtime_every_worker_and_rule, 180)
{
    char depot[512], wasm[700];
    rt_depot("rrt", items_sql, items_cfg, depot);
    snprintf(wasm, sizeof wasm, "%s/wasm/records_rt.wasm", depot);
    fx_build_component("records_rt", wasm);
    th_server s;
    const char *const two[] = {"--runtime-threads", "2", NULL};
    CHECK_EQ(th_server_start(&s, depot, two), 0);
    int port = s.port;

    th_conn all[NALL], pub[NPUB], one;
    for (int i = 0; i < NALL; i++)
        CHECK_EQ(rt_sse_open(port, "/api/records/v1/all_items/subscribe/*", NULL, &all[i]), 0);
    for (int i = 0; i < NPUB; i++)
        CHECK_EQ(rt_sse_open(port, "/api/records/v1/items/subscribe/*", NULL, &pub[i]), 0);

    /* a guest's inserts (on whichever worker took the request): private, then public */
    post(port, "/items/secret/0", 201);
    post(port, "/items/hello/1", 201);
    for (int i = 0; i < NALL; i++) {
        CHECK_EQ(rt_sse_wait(&all[i], "\"text\":\"hello\"", 30000), 0);
        CHECK_CONTAINS(all[i].buf, "data: {\"Insert\":{\"id\":1,\"text\":\"secret\",\"public\":0},"
                                   "\"seq\":1}\n\n");
        CHECK_CONTAINS(all[i].buf, "data: {\"Insert\":{\"id\":2,\"text\":\"hello\",\"public\":1},"
                                   "\"seq\":2}\n\n");
        CHECK(strstr(all[i].buf, "_note") == NULL);
    }
    /* the read rule: the private row never reaches these; the public one is their first */
    for (int i = 0; i < NPUB; i++) {
        CHECK_EQ(rt_sse_wait(&pub[i], "\"text\":\"hello\"", 30000), 0);
        CHECK_CONTAINS(pub[i].buf, "{\"Insert\":{\"id\":2,\"text\":\"hello\",\"public\":1},"
                                   "\"seq\":1}");
        CHECK(strstr(pub[i].buf, "secret") == NULL);
    }

    /* one record only; a private record cannot be subscribed to where the rule hides it */
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/all_items/subscribe/2", NULL, &one), 0);
    th_conn refused;
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/items/subscribe/1", NULL, &refused), -1);
    CHECK_CONTAINS(refused.buf, "404");
    th_conn_close(&refused);
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/nosub/subscribe/*", NULL, &refused), -1);
    CHECK_CONTAINS(refused.buf, "403");
    th_conn_close(&refused);

    /* the Record API's own writes: an update that hides the row from the rule's subscribers,
     * and deletes */
    rt_expect(port, "PATCH", "/api/records/v1/all_items/1", "{\"text\":\"renamed\"}", NULL, 200,
              NULL);
    rt_expect(port, "PATCH", "/api/records/v1/all_items/2", "{\"public\":0,\"text\":\"hid\"}", NULL,
              200, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/all_items/2", NULL, NULL, 200, NULL);
    post(port, "/items/1/delete", 200); /* a guest's delete */
    post(port, "/items/last/1", 201);
    for (int i = 0; i < NALL; i++) {
        CHECK_EQ(rt_sse_wait(&all[i], "\"text\":\"last\"", 30000), 0);
        CHECK_CONTAINS(all[i].buf, "{\"Update\":{\"id\":1,\"text\":\"renamed\",\"public\":0},"
                                   "\"seq\":3}");
        CHECK_CONTAINS(all[i].buf, "{\"Update\":{\"id\":2,\"text\":\"hid\",\"public\":0},"
                                   "\"seq\":4}");
        CHECK_CONTAINS(all[i].buf, "{\"Delete\":{\"id\":2,\"text\":\"hid\",\"public\":0},"
                                   "\"seq\":5}");
        CHECK_CONTAINS(all[i].buf, "{\"Delete\":{\"id\":1,\"text\":\"renamed\",\"public\":0},"
                                   "\"seq\":6}");
        th_conn_close(&all[i]);
    }
    for (int i = 0; i < NPUB; i++) {
        CHECK_EQ(rt_sse_wait(&pub[i], "\"text\":\"last\"", 30000), 0);
        CHECK(strstr(pub[i].buf, "renamed") == NULL && strstr(pub[i].buf, "hid") == NULL);
        CHECK_CONTAINS(pub[i].buf, "{\"Insert\":{\"id\":1,\"text\":\"last\",\"public\":1},"
                                   "\"seq\":2}");
        th_conn_close(&pub[i]);
    }
    /* the one-record subscriber saw record 2 change and go, nothing of record 1 */
    CHECK_EQ(rt_sse_wait(&one, "{\"Delete\":{\"id\":2", 30000), 0);
    CHECK_CONTAINS(one.buf, "{\"Update\":{\"id\":2,\"text\":\"hid\",\"public\":0},\"seq\":1}");
    CHECK(strstr(one.buf, "renamed") == NULL && strstr(one.buf, "last") == NULL);
    /* a server shutting down ends open streams at once */
    CHECK_EQ(th_server_stop(&s), 0);
    CHECK_EQ(rt_sse_wait(&one, "never", 5000), -2);
    th_conn_close(&one);
}

/* Subscriptions with filters (the reference client's subscribeAll({filters})): the filter[...]
 * of a list applies to every event beside the read rule; values are bound, so SQL in one is
 * text; a malformed filter, a hidden column or ?ws=true is refused with 400. */
TEST_TIMEOUT(e2e_records_realtime_filters, 120)
{
    static const char cfg[] = "server { access_log: false }\n"
                              "record_apis { name: \"items\" table_name: \"items\"\n"
                              "  acl_world: [READ, CREATE] read_access_rule: \"_ROW_.public = 1\"\n"
                              "  enable_subscriptions: true }\n"
                              "record_apis { name: \"all_items\" table_name: \"items\"\n"
                              "  acl_world: [READ, CREATE] enable_subscriptions: true }\n";
    char depot[512];
    rt_depot("rrtf", items_sql, cfg, depot);
    th_server s;
    const char *const two[] = {"--runtime-threads", "2", NULL};
    CHECK_EQ(th_server_start(&s, depot, two), 0);
    int port = s.port;
    static const char base[] = "/api/records/v1/all_items/subscribe/*?";
    th_conn like_a, rule_like_a, either, sql_text;
    char path[512];
    snprintf(path, sizeof path, "%sfilter[text][$like]=a%%25", base);
    CHECK_EQ(rt_sse_open(port, path, NULL, &like_a), 0);
    CHECK_EQ(rt_sse_open(port, "/api/records/v1/items/subscribe/*?filter[text][$like]=a%25", NULL,
                         &rule_like_a),
             0);
    snprintf(path, sizeof path, "%sfilter[$or][0][public]=1&filter[$or][1][text]=apple", base);
    CHECK_EQ(rt_sse_open(port, path, NULL, &either), 0);
    snprintf(path, sizeof path, "%sfilter[text]=%%27%%20OR%%201%%3D1%%20--", base);
    CHECK_EQ(rt_sse_open(port, path, NULL, &sql_text), 0);

    static const char *const rows[] = {
        "{\"text\":\"apple\",\"public\":0}",       "{\"text\":\"banana\",\"public\":1}",
        "{\"text\":\"' OR 1=1 --\",\"public\":0}", "{\"text\":\"avocado\",\"public\":1}",
        "{\"text\":\"' OR 1=1 --\",\"public\":1}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        rt_expect(port, "POST", "/api/records/v1/all_items", rows[i], NULL, 200, NULL);

    /* events reach each subscriber in commit order: its last match shows it saw the rest */
    CHECK_EQ(rt_sse_wait(&like_a, "avocado", 30000), 0);
    CHECK_CONTAINS(like_a.buf, "\"text\":\"apple\"");
    CHECK(strstr(like_a.buf, "banana") == NULL && strstr(like_a.buf, "OR 1=1") == NULL);
    CHECK_EQ(rt_sse_wait(&rule_like_a, "avocado", 30000), 0);
    CHECK(strstr(rule_like_a.buf, "apple") == NULL && strstr(rule_like_a.buf, "banana") == NULL);
    CHECK_EQ(rt_sse_wait(&either, "\"id\":5", 30000), 0);
    CHECK_CONTAINS(either.buf, "\"text\":\"apple\"");
    CHECK_CONTAINS(either.buf, "\"text\":\"banana\"");
    CHECK_CONTAINS(either.buf, "\"text\":\"avocado\"");
    CHECK(strstr(either.buf, "\"id\":3") == NULL);
    CHECK_EQ(rt_sse_wait(&sql_text, "\"id\":5", 30000), 0);
    CHECK_CONTAINS(sql_text.buf, "\"id\":3");
    CHECK(strstr(sql_text.buf, "apple") == NULL && strstr(sql_text.buf, "avocado") == NULL);
    th_conn_close(&like_a);
    th_conn_close(&rule_like_a);
    th_conn_close(&either);
    th_conn_close(&sql_text);

    static const char *const refused[] = {
        "filter[_note]=x",                      /* hidden column */
        "filter[nope]=x",                       /* unknown column */
        "filter[text][$regexp]=x",              /* unknown operator */
        "filter[public]=notanumber",            /* the column's type */
        "filter[text]%5B=x",                    /* malformed */
        "ws=true",                              /* WebSocket */
        "filter[text]=a%3B%20DROP%20TABLE%20x", /* fine: just text */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(path, sizeof path, "%s%s", base, refused[i]);
        th_conn c;
        int rc = rt_sse_open(port, path, NULL, &c);
        if (i + 1 == sizeof refused / sizeof refused[0]) {
            CHECK_EQ(rc, 0);
        } else {
            CHECK_EQ(rc, -1);
            CHECK_CONTAINS(c.buf, "400");
            CHECK_CONTAINS(c.buf, "\"error\"");
        }
        th_conn_close(&c);
    }
    rt_expect(port, "GET", "/api/records/v1/all_items?count=true", NULL, NULL, 200, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}
