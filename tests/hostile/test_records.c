/* The hostile battery's Record API cases: attempts to get past an API's columns and rules
 * through its parameters (filters, order, expand, cursors, record ids, field names) and writes
 * (changing an owner or an id), SQL in values and names, and oversized requests. Each attempt
 * must get its refusal, nothing may leak, and the tables must be as they were. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"
#include "hostile/hostile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static const char sql[] =
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL, secret TEXT,\n"
    "  _internal TEXT, author INTEGER REFERENCES authors(id), tag TEXT) STRICT;\n"
    "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT, _hash TEXT) STRICT;\n"
    "INSERT INTO authors VALUES (1, 'ann', 'h1');\n"
    "INSERT INTO posts VALUES (1, 'alpha', 'topsecret', 'int', 1, 'x'),\n"
    "  (2, 'beta', 'topsecret', 'int', 1, 'y');\n"
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner BLOB REFERENCES _user(id), body TEXT,\n"
    "  public INTEGER NOT NULL DEFAULT 0) STRICT;\n";

static const char cfg[] =
    "server { access_log: false }\n"
    "record_apis { name: \"posts\" table_name: \"posts\" acl_world: [READ, CREATE, UPDATE]\n"
    "  excluded_columns: \"secret\" }\n"
    "record_apis { name: \"posts_x\" table_name: \"posts\" acl_world: [READ]\n"
    "  read_access_rule: \"_ROW_.tag = 'x'\" }\n"
    "record_apis { name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [READ] acl_authenticated: [CREATE, READ, UPDATE, DELETE]\n"
    "  read_access_rule: \"_ROW_.public = 1 OR _ROW_.owner = _USER_.id\"\n"
    "  create_access_rule: \"_REQ_.owner = _USER_.id\"\n"
    "  update_access_rule: \"_ROW_.owner = _USER_.id AND (_REQ_.owner IS NULL OR _REQ_.owner = "
    "_USER_.id)\"\n"
    "  delete_access_rule: \"_ROW_.owner = _USER_.id\" }\n";

/* The first cursor a list gives. */
static void cursor_of(int port, const char *path, const char *token, char *out, size_t cap)
{
    th_resp r;
    rt_expect(port, "GET", path, NULL, token, 200, &r);
    const char *p = strstr(r.body, "\"cursor\":\"");
    CHECK(p != NULL);
    snprintf(out, cap, "%.*s", (int)strcspn(p + 10, "\""), p + 10);
    th_resp_free(&r);
}

TEST_TIMEOUT(hostile_records_rule_bypass, 120)
{
    char depot[512], ann[2048], bob[2048], ann_id[64], bob_id[64];
    rt_depot("hrec", sql, cfg, depot);
    rt_user(depot, "ann@example.com", ann, ann_id);
    rt_user(depot, "bob@example.com", bob, bob_id);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    int port = s.port;
    char body[512];
    snprintf(body, sizeof body, "{\"owner\":\"%s\",\"body\":\"ann-private\"}", ann_id);
    rt_expect(port, "POST", "/api/records/v1/notes", body, ann, 200, NULL); /* id 1 */
    snprintf(body, sizeof body, "{\"owner\":\"%s\",\"body\":\"bob-private\"}", bob_id);
    rt_expect(port, "POST", "/api/records/v1/notes", body, bob, 200, NULL); /* id 2 */

    char notes_cursor[256], posts_cursor[256], forged[512], tampered[256];
    cursor_of(port, "/api/records/v1/notes?limit=1", ann, notes_cursor, sizeof notes_cursor);
    cursor_of(port, "/api/records/v1/posts?limit=1", NULL, posts_cursor, sizeof posts_cursor);
    snprintf(tampered, sizeof tampered, "%s", posts_cursor);
    tampered[2] = tampered[2] == 'A' ? 'B' : 'A';
    /* "i" + 8 bytes of id 99, no valid signature */
    snprintf(forged, sizeof forged, "aQAAAAAAAABjAAAAAAAAAAAAAAAAAAAAAA==");

    struct {
        const char *method, *path, *body;
        int who; /* 0 anonymous, 1 ann, 2 bob */
        int status;
    } cases[] = {
        /* columns the API does not let anyone read: excluded and hidden */
        {"GET", "/api/records/v1/posts?filter[secret]=topsecret", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[secret][$like]=top%25", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[_internal]=int", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[$or][0][secret][$is]=!NULL", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?order=secret", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?order=-_internal", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?expand=author", NULL, 0, 400}, /* not in expand */
        {"GET", "/api/records/v1/posts?expand=secret", NULL, 0, 400},
        /* SQL in column names and parameters */
        {"GET", "/api/records/v1/posts?filter[title)%20OR%20(1=1][$eq]=x", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[%22title%22]=alpha", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[title][$eq)%20OR%201=1--]=x", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?order=id;DROP%20TABLE%20posts", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?order=id%20DESC,(SELECT%20secret)", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?order=(CASE%20WHEN%20secret%3D'x'%20THEN%201%20END)", NULL,
         0, 400},
        {"GET", "/api/records/v1/posts?expand=author);DROP%20TABLE%20posts;--", NULL, 0, 400},
        {"GET", "/api/records/v1/posts?filter[id]=1%20OR%201=1", NULL, 0, 400},
        {"GET", "/api/records/v1/posts/1%20OR%201=1", NULL, 0, 400},
        {"GET", "/api/records/v1/notes/2%20OR%201=1", NULL, 1, 400},
        {"POST", "/api/records/v1/posts", "{\"title\":\"x\",\"title\\\") --\":1}", 0, 400},
        {"POST", "/api/records/v1/posts", "{\"title\":\"x\",\"secret\":\"mine\"}", 0, 400},
        /* cursors: another API's (the same table under another rule), tampered, forged */
        {"GET", NULL, NULL, 0, 400}, /* posts_x with posts' cursor: filled in below */
        {"GET", NULL, NULL, 1, 400}, /* posts with notes' cursor */
        {"GET", NULL, NULL, 0, 400}, /* tampered */
        {"GET", NULL, NULL, 0, 400}, /* forged */
        /* rows the rule hides stay hidden whatever the filter */
        {"GET", "/api/records/v1/notes/1", NULL, 2, 404},
        {"GET", "/api/records/v1/notes/1", NULL, 0, 404},
        /* writes: another's record, moving one's own to another owner, changing the id */
        {"PATCH", "/api/records/v1/notes/1", "{\"body\":\"bob was here\"}", 2, 403},
        {"PATCH", "/api/records/v1/notes/1", NULL, 1, 403}, /* owner -> bob: filled in */
        {"PATCH", "/api/records/v1/notes/1", "{\"id\":2}", 1, 400},
        {"DELETE", "/api/records/v1/notes/1", NULL, 2, 403},
        {"POST", "/api/records/v1/notes", NULL, 1, 403}, /* ann creating as bob: filled in */
        {"DELETE", "/api/records/v1/posts/1", NULL, 0, 403},
        /* a request too large to be honest */
        {"GET",
         "/api/records/v1/posts?filter[$or][0][$or][0][$or][0][$or][0][$or][0][$or][0]"
         "[$or][0][$or][0][$or][0][title]=x",
         NULL, 0, 400},
    };
    char paths[4][1024];
    snprintf(paths[0], sizeof paths[0], "/api/records/v1/posts_x?cursor=%s", posts_cursor);
    snprintf(paths[1], sizeof paths[1], "/api/records/v1/posts?cursor=%s", notes_cursor);
    snprintf(paths[2], sizeof paths[2], "/api/records/v1/posts?cursor=%s", tampered);
    snprintf(paths[3], sizeof paths[3], "/api/records/v1/posts?cursor=%s", forged);
    char move_owner[256], create_as_bob[256];
    snprintf(move_owner, sizeof move_owner, "{\"owner\":\"%s\"}", bob_id);
    snprintf(create_as_bob, sizeof create_as_bob, "{\"owner\":\"%s\",\"body\":\"x\"}", bob_id);
    size_t ncases = sizeof cases / sizeof cases[0], k = 0;
    for (size_t i = 0; i < ncases; i++) {
        if (cases[i].path == NULL) cases[i].path = paths[k++];
        if (cases[i].body == NULL && strcmp(cases[i].method, "PATCH") == 0)
            cases[i].body = move_owner;
        if (cases[i].body == NULL && strcmp(cases[i].method, "POST") == 0)
            cases[i].body = create_as_bob;
        const char *tok = cases[i].who == 1 ? ann : cases[i].who == 2 ? bob : NULL;
        th_resp r = rt_req(port, cases[i].method, cases[i].path, cases[i].body, tok);
        if (r.status != cases[i].status)
            fprintf(stderr, "case %zu %s %s: %d %s (expected %d)\n", i, cases[i].method,
                    cases[i].path, r.status, r.body, cases[i].status);
        CHECK_EQ(r.status, cases[i].status);
        CHECK(strstr(r.body, "topsecret") == NULL && strstr(r.body, "ann-private") == NULL);
        th_resp_free(&r);
    }

    /* values are data, never SQL */
    const char *values[] = {
        "x'%20OR%20'1'='1",
        "x%22%20OR%20%221%22=%221",
        "%25'%20OR%201=1%20--",
        "1);DELETE%20FROM%20posts;--",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "/api/records/v1/posts?filter[title][$like]=%s", values[i]);
        th_resp r;
        rt_expect(port, "GET", path, NULL, NULL, 200, &r);
        CHECK_STR_EQ(r.body, "{\"records\":[]}");
        th_resp_free(&r);
    }
    /* a filter that asks for every owner still sees only what the rule allows */
    th_resp r = rt_req(port, "GET",
                       "/api/records/v1/notes?filter[$or][0][public]=0&filter[$or][1][public]=1",
                       NULL, bob);
    CHECK(strstr(r.body, "ann-private") == NULL && strstr(r.body, "bob-private") != NULL);
    th_resp_free(&r);
    /* a huge limit is held to the hard limit; the tables are intact */
    rt_expect(port, "GET", "/api/records/v1/posts?limit=99999999", NULL, NULL, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts/2", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":2,\"title\":\"beta\",\"author\":1,\"tag\":\"y\"}");
    th_resp_free(&r);
    r = rt_req(port, "GET", "/api/records/v1/notes/1", NULL, ann);
    CHECK_EQ(r.status, 200);
    snprintf(body, sizeof body, "\"owner\":\"%s\",\"body\":\"ann-private\"", ann_id);
    CHECK_CONTAINS(r.body, body);
    th_resp_free(&r);
    char *log = th_server_stderr(&s);
    CHECK(strstr(log, "ERROR") == NULL);
    free(log);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("Record API bypass: %zu attempts (columns, SQL in names and values, foreign and "
                "forged cursors, owner and id changes) refused, %zu SQL payloads matched nothing, "
                "0 rows leaked",
                ncases, sizeof values / sizeof values[0]);
}

static const char rt_sql[] = "CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT) STRICT;\n";
static const char rt_cfg[] =
    "server { access_log: false }\n"
    "record_apis { name: \"items\" table_name: \"items\" acl_world: [READ, CREATE]\n"
    "  enable_subscriptions: true }\n";

/* A subscriber that stops reading: its stream ends with a loss event once REC_SUB_MAX_PENDING
 * (256 KiB) sit unsent on the server, beyond what the kernel buffers; the server's memory does
 * not follow the events, and a subscriber that reads gets every one. */
/* ASan's quarantine (256 MiB by default) would hide what the server holds; as hz_start does. */
static void small_quarantine(void)
{
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

TEST_TIMEOUT(hostile_records_slow_subscriber, 180)
{
    small_quarantine();
    char depot[512];
    rt_depot("hslow", rt_sql, rt_cfg, depot);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);
    th_conn slow, fast;
    CHECK_EQ(rt_sse_open(s.port, "/api/records/v1/items/subscribe/*", NULL, &slow), 0);
    CHECK_EQ(rt_sse_open(s.port, "/api/records/v1/items/subscribe/*", NULL, &fast), 0);
    long rss0 = hz_rss_kib(s.pid);
    /* 32 requests of 256 records of 4 KiB: 32 MiB of events */
    size_t cap = 256 * 4200 + 16;
    char *body = malloc(cap);
    size_t o = 0;
    body[o++] = '[';
    for (int i = 0; i < 256; i++) {
        o += (size_t)snprintf(body + o, cap - o, "%s{\"text\":\"", i ? "," : "");
        memset(body + o, 'a' + i % 26, 4096);
        o += 4096;
        o += (size_t)snprintf(body + o, cap - o, "\"}");
    }
    body[o++] = ']';
    body[o] = '\0';
    long peak = 0;
    for (int k = 0; k < 32; k++) {
        rt_expect(s.port, "POST", "/api/records/v1/items", body, NULL, 200, NULL);
        /* the reader keeps up; the other never reads */
        char want[64];
        snprintf(want, sizeof want, "\"seq\":%d}", (k + 1) * 256);
        CHECK_EQ(rt_sse_wait(&fast, want, 60000), 0);
        fast.len = 0; /* keep only what is new */
        long rss = hz_rss_kib(s.pid);
        if (rss > peak) peak = rss;
    }
    free(body);
    /* the slow one: what the kernel held, then the loss event and the end */
    CHECK_EQ(rt_sse_wait(&slow, "{\"Error\":{\"status\":2,", 60000), 0);
    CHECK_EQ(rt_sse_wait(&slow, "never", 10000), -2);
    size_t got = slow.len;
    CHECK(got < (size_t)24 << 20); /* far less than the 32 MiB sent to the reader */
    th_conn_close(&slow);
    th_conn_close(&fast);
    /* the server goes on */
    rt_expect(s.port, "GET", "/api/records/v1/items?limit=1", NULL, NULL, 200, NULL);
    if (peak - rss0 >= 96 * 1024) fprintf(stderr, "RSS %ld -> %ld KiB\n", rss0, peak);
    CHECK(peak - rss0 < 96 * 1024);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("Realtime: a subscriber that stopped reading got %.1f MiB (the kernel's buffers "
                "and 256 KiB queued), then a loss event and the end of its stream; the reader got "
                "all 32 MiB; server RSS +%ld MiB at most",
                got / 1048576.0, (peak - rss0) / 1024);
}

/* Idle subscribers are cheap: the server's memory for N open subscriptions. */
TEST_TIMEOUT(hostile_records_idle_subscribers, 120)
{
    small_quarantine();
    char depot[512];
    rt_depot("hidle", rt_sql, rt_cfg, depot);
    th_server s;
    const char *const two[] = {"--runtime-threads", "2", NULL};
    CHECK_EQ(th_server_start(&s, depot, two), 0);
    enum { N = 1000 };
    th_conn *c = calloc(N, sizeof *c);
    rt_expect(s.port, "GET", "/api/records/v1/items", NULL, NULL, 200, NULL);
    long rss0 = hz_rss_kib(s.pid);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(rt_sse_open(s.port, "/api/records/v1/items/subscribe/*", NULL, &c[i]), 0);
        free(c[i].buf); /* keep the test's own memory small too */
        c[i].buf = NULL;
        c[i].len = c[i].cap = 0;
    }
    long rss1 = hz_rss_kib(s.pid);
    /* one event reaches all of them */
    rt_expect(s.port, "POST", "/api/records/v1/items", "{\"text\":\"hi\"}", NULL, 200, NULL);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(rt_sse_wait(&c[i], "\"text\":\"hi\"", 60000), 0);
        th_conn_close(&c[i]);
    }
    free(c);
    double per = (double)(rss1 - rss0) / N;
    CHECK(per < 64); /* KiB per idle subscriber, ASan build included */
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("Realtime: %d idle subscribers on 2 workers cost %.1f KiB each (ASan build); one "
                "insert reached all of them",
                N, per);
}

/* Another connection (here this test's own, on the database file) holds the write lock: a Record
 * API write waits for it on the worker's loop, not in SQLite's busy handler, so the worker goes
 * on serving; it succeeds once the lock is gone, and gets 503 after DB_BUSY_TIMEOUT_MS (5 s). */
TEST_TIMEOUT(hostile_records_write_lock_does_not_stall_worker, 120)
{
    char depot[512], path[800];
    rt_depot("hlock", rt_sql, rt_cfg, depot);
    th_server s;
    const char *const one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);
    snprintf(path, sizeof path, "%s/data/main.db", depot);
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    static const char post[] = "POST /api/records/v1/items HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
                               "{\"text\":\"waited\"}";
    double worst_ms = 0, waited_ms = 0, gave_up_ms = 0;
    for (int round = 0; round < 2; round++) {
        /* round 0: the lock goes after 3 s; round 1: it stays past the 5 s limit */
        CHECK_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        th_conn w;
        CHECK_EQ(th_conn_open(&w, s.port), 0);
        double t0 = hz_now_ms();
        CHECK_EQ(th_conn_send_str(&w, post), 0);
        th_resp r;
        CHECK_EQ(th_conn_read(&w, &r, false, 300), -2); /* it waits */
        double hold_ms = round == 0 ? 3000 : 6500, took = 0;
        int got = -2;
        while (hz_now_ms() - t0 < hold_ms - 400 && got == -2) {
            double g0 = hz_now_ms();
            rt_expect(s.port, "GET", "/api/records/v1/items", NULL, NULL, 200, NULL);
            double g = hz_now_ms() - g0;
            if (g > worst_ms) worst_ms = g;
            got = th_conn_read(&w, &r, false, 200);
            took = hz_now_ms() - t0;
        }
        if (round == 0) {
            CHECK_EQ(got, -2); /* still waiting while the lock is held */
            while (hz_now_ms() - t0 < hold_ms)
                usleep(20 * 1000);
            CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
            CHECK_EQ(th_conn_read(&w, &r, false, 10000), 0);
            waited_ms = hz_now_ms() - t0;
            CHECK_EQ(r.status, 200);
        } else {
            CHECK_EQ(got, 0); /* answered before the lock went */
            CHECK_EQ(r.status, 503);
            CHECK_CONTAINS(r.body, "the database is busy; retry");
            CHECK(took >= 4900);
            gave_up_ms = took;
            CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        }
        th_resp_free(&r);
        th_conn_close(&w);
    }
    sqlite3_close(db);
    /* the worker answered reads all along: well under the lock's 3 s and 6.5 s */
    CHECK(worst_ms < 2000);
    CHECK_EQ(rt_total_count(s.port, "/api/records/v1/items?count=true", NULL), 1);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("Record API write behind another connection's write lock (1 worker): it waited "
                "%.0f ms for a lock held 3 s and succeeded, gave up with 503 after %.0f ms behind "
                "one held 6.5 s; the worker's reads meanwhile took at most %.0f ms",
                waited_ms, gave_up_ms, worst_ms);
}

/* Batches and subscription filters as a way around an API's ACL and rules: a batch that hides a
 * refused operation behind allowed ones, SQL in api_name, record_id and filter names, a body
 * nested deeper than SQLite's JSON limit, and a filter on a hidden column. Each is refused and
 * nothing is written. */
TEST_TIMEOUT(hostile_records_batch_and_filter_bypass, 120)
{
    static const char cfg2[] =
        "server { access_log: false enable_record_transactions: true }\n"
        "record_apis { name: \"items\" table_name: \"items\" acl_world: [READ, CREATE]\n"
        "  enable_subscriptions: true }\n"
        "record_apis { name: \"ro\" table_name: \"items\" acl_world: [READ]\n"
        "  enable_subscriptions: true read_access_rule: \"_ROW_.text = 'public'\" }\n";
    char depot[512];
    rt_depot("hbatch", rt_sql, cfg2, depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    static const struct {
        const char *body;
        int status;
    } batches[] = {
        {"{\"transaction\":false,\"operations\":[{\"Create\":{\"api_name\":\"items\",\"value\":"
         "{\"text\":\"a\"}}},{\"Create\":{\"api_name\":\"ro\",\"value\":{\"text\":\"b\"}}}]}",
         403},
        {"{\"operations\":[{\"Create\":{\"api_name\":\"items\\\" OR 1=1\",\"value\":{}}}]}", 400},
        {"{\"operations\":[{\"Delete\":{\"api_name\":\"ro\",\"record_id\":\"1 OR 1=1\"}}]}", 403},
        {"{\"operations\":[{\"Create\":{\"api_name\":\"items\",\"value\":{\"id\":1,\"text\":"
         "\"x\"}}},{\"Create\":{\"api_name\":\"items\",\"value\":{\"id\":1}}}],"
         "\"transaction\":true}",
         409},
    };
    int refused = 0;
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        th_resp r;
        rt_expect(s.port, "POST", "/api/transaction/v1/execute", batches[i].body, NULL,
                  batches[i].status, &r);
        CHECK_CONTAINS(r.body, "\"error\"");
        th_resp_free(&r);
        refused++;
    }
    /* a body nested 5,000 levels deep */
    tr_buf deep = TR_BUF_INIT;
    tr_buf_append_str(&deep, "{\"operations\":");
    for (int i = 0; i < 5000; i++)
        tr_buf_append_char(&deep, '[');
    for (int i = 0; i < 5000; i++)
        tr_buf_append_char(&deep, ']');
    tr_buf_append_char(&deep, '}');
    rt_expect(s.port, "POST", "/api/transaction/v1/execute", deep.data, NULL, 400, NULL);
    tr_buf_free(&deep);
    refused++;
    /* filters on a subscription: a hidden or unknown column, SQL as a column name */
    static const char *const subs[] = {
        "/api/records/v1/ro/subscribe/*?filter[_note]=x",
        "/api/records/v1/ro/subscribe/*?filter[text)%20OR%20(1]=1",
        "/api/records/v1/ro/subscribe/*?filter[$or][0][text]=x&filter[$or][1][nope]=1",
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        th_conn c;
        CHECK_EQ(rt_sse_open(s.port, subs[i], NULL, &c), -1);
        CHECK_CONTAINS(c.buf, "400");
        th_conn_close(&c);
        refused++;
    }
    CHECK_EQ(rt_total_count(s.port, "/api/records/v1/items?count=true", NULL), 0);
    CHECK_EQ(th_server_stop(&s), 0);
    test_report("Batches and subscription filters: %d bypass attempts refused (a refused operation "
                "behind an allowed one, SQL in api_name, record_id and filter names, a duplicate "
                "key inside a transaction, a body nested 5,000 deep, hidden and unknown columns); "
                "the table stayed empty",
                refused);
}
