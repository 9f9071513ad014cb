/* Record APIs end to end on the real binary: every endpoint (list, read, create, update, delete,
 * schema), every filter operator and their nesting, order, limit, offset, cursors, counts,
 * expansion, views, validation with messages naming the field, ACLs and every rule kind with
 * real users and tokens, and configurations that must stop the start. */
#include "test.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char posts_sql[] =
    "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, _email TEXT) STRICT;\n"
    "CREATE TABLE posts (id INTEGER PRIMARY KEY,\n"
    "  title TEXT NOT NULL CHECK(length(title) BETWEEN 1 AND 100),\n"
    "  price REAL, stock INTEGER NOT NULL DEFAULT 0, tag TEXT,\n"
    "  author INTEGER REFERENCES authors(id), secret TEXT, _internal TEXT) STRICT;\n"
    "INSERT INTO authors VALUES (1, 'ann', 'ann@x'), (2, 'bob', 'bob@x');\n"
    "INSERT INTO posts VALUES (1, 'alpha', 5, 1, 'x', 1, 's1', 'i1'),\n"
    "  (2, 'beta', 10, 0, NULL, 2, 's2', 'i2'), (3, 'gamma', 15, 3, 'y', 1, 's3', 'i3'),\n"
    "  (4, 'delta', 20, 0, 'x', NULL, 's4', 'i4'), (5, 'epsilon', 25.5, 7, 'z', 2, 's5', 'i5');\n"
    "CREATE VIEW cheap AS SELECT id, title, price FROM posts WHERE price < 12;\n";

static const char posts_cfg[] = "server { access_log: false }\n"
                                "record_apis: [{\n"
                                "  name: \"posts\" table_name: \"posts\"\n"
                                "  acl_world: [CREATE, READ, UPDATE, DELETE, SCHEMA]\n"
                                "  excluded_columns: [\"secret\"]\n"
                                "  expand: [\"author\"]\n"
                                "}, {\n"
                                "  name: \"cheap\" table_name: \"cheap\" acl_world: [READ]\n"
                                "}, {\n"
                                "  name: \"instock\" table_name: \"posts\" acl_world: [READ]\n"
                                "  read_access_rule: \"_ROW_.stock > 0\"\n"
                                "  listing_hard_limit: 2\n"
                                "}]\n";

static void start_posts(th_server *s, const char *name)
{
    char depot[512];
    rt_depot(name, posts_sql, posts_cfg, depot);
    CHECK_EQ(th_server_start(s, depot, NULL), 0);
}

/* GET path with count=true; returns total_count. */
static long count_of(int port, const char *query)
{
    char path[1024];
    snprintf(path, sizeof path, "/api/records/v1/posts?count=true&limit=0&%s", query);
    return rt_total_count(port, path, NULL);
}

/* The ids of a list response, in order, as "5,4,3". */
static void ids_of(const char *body, char *out, size_t cap)
{
    out[0] = '\0';
    size_t o = 0;
    for (const char *p = strstr(body, "{\"id\":"); p; p = strstr(p + 1, "{\"id\":")) {
        /* only top-level records: an expanded author is {"id":N} or {"id":N,"data":...} */
        if (p > body && p[-1] == ':') continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%ld", o ? "," : "", strtol(p + 6, NULL, 10));
    }
}

static void expect_ids(int port, const char *path, const char *want)
{
    th_resp r;
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    char ids[256];
    ids_of(r.body, ids, sizeof ids);
    if (strcmp(ids, want) != 0) fprintf(stderr, "GET %s: %s\n", path, r.body);
    CHECK_STR_EQ(ids, want);
    th_resp_free(&r);
}

TEST_TIMEOUT(e2e_records_list_filters_order_pages, 90)
{
    th_server s;
    start_posts(&s, "rlist");
    int port = s.port;
    /* every operator */
    CHECK_EQ(count_of(port, "filter[price][$eq]=10"), 1);
    CHECK_EQ(count_of(port, "filter[price]=10"), 1);   /* $eq is the default */
    CHECK_EQ(count_of(port, "filter[tag][$ne]=x"), 2); /* NULL is not "not x" in SQL */
    CHECK_EQ(count_of(port, "filter[price][$lt]=15"), 2);
    CHECK_EQ(count_of(port, "filter[price][$lte]=15"), 3);
    CHECK_EQ(count_of(port, "filter[price][$gt]=15"), 2);
    CHECK_EQ(count_of(port, "filter[price][$gte]=15"), 3);
    CHECK_EQ(count_of(port, "filter[title][$like]=%25ta"), 2); /* beta, delta */
    CHECK_EQ(count_of(port, "filter[tag][$is]=NULL"), 1);
    CHECK_EQ(count_of(port, "filter[tag][$is]=!NULL"), 4);
    CHECK_EQ(count_of(port, "filter%5Bstock%5D%5B%24gt%5D=0"), 3); /* percent-encoded */
    /* several on one column are AND-ed; $or and $and nest */
    CHECK_EQ(count_of(port, "filter[price][$gte]=10&filter[price][$lte]=20"), 3);
    CHECK_EQ(count_of(port, "filter[$or][0][tag][$eq]=y&filter[$or][1][price][$lt]=6"), 2);
    CHECK_EQ(count_of(port, "filter[$or][0][$and][0][tag]=x&filter[$or][0][$and][1][stock][$gt]=0"
                            "&filter[$or][1][title]=beta"),
             2);
    CHECK_EQ(count_of(port, "filter[$and][0][tag]=x&filter[$and][1][price][$gt]=10"), 1);
    CHECK_EQ(count_of(port, ""), 5);

    /* order, limit, offset, cursors */
    expect_ids(port, "/api/records/v1/posts", "5,4,3,2,1"); /* newest id first */
    expect_ids(port, "/api/records/v1/posts?order=price", "1,2,3,4,5");
    expect_ids(port, "/api/records/v1/posts?order=-stock,id", "5,3,1,2,4");
    expect_ids(port, "/api/records/v1/posts?order=%2Bid", "1,2,3,4,5");
    expect_ids(port, "/api/records/v1/posts?offset=3", "2,1");
    expect_ids(port, "/api/records/v1/posts?order=id&limit=2&offset=1", "2,3");
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/posts?limit=2", NULL, NULL, 200, &r);
    char ids[128], cursor[256], path[512];
    ids_of(r.body, ids, sizeof ids);
    CHECK_STR_EQ(ids, "5,4");
    const char *cp = strstr(r.body, "\"cursor\":\"");
    CHECK(cp != NULL);
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(cp + 10, "\""), cp + 10);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/records/v1/posts?limit=2&cursor=%s", cursor);
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    ids_of(r.body, ids, sizeof ids);
    CHECK_STR_EQ(ids, "3,2");
    th_resp_free(&r);
    /* ascending with a cursor */
    rt_expect(port, "GET", "/api/records/v1/posts?order=id&limit=3", NULL, NULL, 200, &r);
    cp = strstr(r.body, "\"cursor\":\"");
    CHECK(cp != NULL);
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(cp + 10, "\""), cp + 10);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/records/v1/posts?order=id&cursor=%s", cursor);
    expect_ids(port, path, "4,5");
    /* a cursor with an order that does not start with the id */
    snprintf(path, sizeof path, "/api/records/v1/posts?order=price&cursor=%s", cursor);
    rt_expect(port, "GET", path, NULL, NULL, 400, NULL);

    /* the rule of another API over the same table, and its hard limit */
    expect_ids(port, "/api/records/v1/instock?order=id", "1,3");
    expect_ids(port, "/api/records/v1/instock?order=id&limit=50&offset=2", "5");

    /* expansion; hidden and excluded columns never appear */
    rt_expect(port, "GET", "/api/records/v1/posts?order=id&limit=1&expand=author", NULL, NULL, 200,
              &r);
    static const char first[] =
        "{\"records\":[{\"id\":1,\"title\":\"alpha\",\"price\":5.0,\"stock\":1,\"tag\":\"x\","
        "\"author\":{\"id\":1,\"data\":{\"id\":1,\"name\":\"ann\"}}}],\"cursor\":\"";
    CHECK_MEM_EQ(r.body, sizeof first - 1, first);
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/posts", NULL, NULL, 200, &r);
    /* quoted: the cursor (an HMAC in base64) may hold the letters anywhere */
    CHECK(strstr(r.body, "secret") == NULL && strstr(r.body, "\"s1\"") == NULL);
    CHECK(strstr(r.body, "_internal") == NULL && strstr(r.body, "\"i1\"") == NULL);
    CHECK(strstr(r.body, "\"author\":{\"id\":2}") != NULL);
    CHECK(strstr(r.body, "\"author\":null") != NULL);
    th_resp_free(&r);

    /* a view */
    rt_expect(port, "GET", "/api/records/v1/cheap?order=id&count=true", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"total_count\":2,\"records\":[{\"id\":1,\"title\":\"alpha\","
                         "\"price\":5.0},{\"id\":2,\"title\":\"beta\",\"price\":10.0}]}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/cheap/2", NULL, NULL, 200, NULL);

    /* malformed parameters */
    rt_expect(port, "GET", "/api/records/v1/posts?limit=-1", NULL, NULL, 400, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts?filter[price][$gt]=abc", NULL, NULL, 400, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts?filter[price][$between]=1", NULL, NULL, 400,
              NULL);
    rt_expect(port, "GET", "/api/records/v1/posts?filter[tag][$is]=maybe", NULL, NULL, 400, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts?filter[$or][x][tag]=y", NULL, NULL, 400, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts?order=nope", NULL, NULL, 400, NULL);
    rt_expect(port, "GET", "/api/records/v1/nope", NULL, NULL, 404, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}

TEST_TIMEOUT(e2e_records_read_write_validate, 90)
{
    th_server s;
    start_posts(&s, "rcrud");
    int port = s.port;
    th_resp r;
    rt_expect(port, "GET", "/api/records/v1/posts/3", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":3,\"title\":\"gamma\",\"price\":15.0,\"stock\":3,\"tag\":\"y\","
                         "\"author\":{\"id\":1}}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/posts/3?expand=author", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"author\":{\"id\":1,\"data\":{\"id\":1,\"name\":\"ann\"}}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/posts/99", NULL, NULL, 404, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts/abc", NULL, NULL, 400, NULL);

    /* create: one, many (one transaction), defaults, hidden columns writable */
    rt_expect(port, "POST", "/api/records/v1/posts", "{\"title\":\"new\",\"price\":1}", NULL, 200,
              &r);
    CHECK_STR_EQ(r.body, "{\"ids\":[\"6\"]}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/posts/6", NULL, NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"id\":6,\"title\":\"new\",\"price\":1.0,\"stock\":0,\"tag\":null,"
                         "\"author\":null}");
    th_resp_free(&r);
    rt_expect(port, "POST", "/api/records/v1/posts",
              "[{\"title\":\"m1\",\"_internal\":\"w\"},{\"title\":\"m2\",\"tag\":\"q\","
              "\"author\":2}]",
              NULL, 200, &r);
    CHECK_STR_EQ(r.body, "{\"ids\":[\"7\",\"8\"]}");
    th_resp_free(&r);
    /* the second record fails: nothing of the request stays */
    rt_expect(port, "POST", "/api/records/v1/posts", "[{\"title\":\"m3\"},{\"title\":\"\"}]", NULL,
              400, &r);
    CHECK_CONTAINS(r.body, "title");
    th_resp_free(&r);
    CHECK_EQ(count_of(port, ""), 8);

    /* validation: each 400 names the field */
    struct {
        const char *body, *want;
        int status;
    } bad[] = {
        {"{\"title\":\"\"}", "CHECK constraint failed: length(title)", 400},
        {"{\"price\":1}", "NOT NULL constraint failed: posts.title", 400},
        {"{\"title\":\"x\",\"price\":\"abc\"}", "field 'price': expected a number", 400},
        {"{\"title\":\"x\",\"stock\":1.5}", "field 'stock': expected an integer", 400},
        {"{\"title\":7}", "field 'title': expected a string", 400},
        {"{\"title\":\"x\",\"nope\":1}", "unknown field 'nope'", 400},
        {"{\"title\":\"x\",\"secret\":\"s\"}", "unknown field 'secret'", 400},
        {"{\"title\":\"x\",\"author\":99}", "FOREIGN KEY constraint failed", 400},
        {"{\"title\":", "not valid JSON", 400},
        {"[1,2]", "element 0 is not a JSON object", 400},
        {"\"x\"", "expected a JSON object or an array", 400},
        {"{}", "no values provided", 400},
        {"{\"id\":1,\"title\":\"dup\"}", "UNIQUE constraint failed: posts.id", 409},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rt_expect(port, "POST", "/api/records/v1/posts", bad[i].body, NULL, bad[i].status, &r);
        if (strstr(r.body, bad[i].want) == NULL)
            fprintf(stderr, "POST %s: %s (want %s)\n", bad[i].body, r.body, bad[i].want);
        CHECK_CONTAINS(r.body, bad[i].want);
        th_resp_free(&r);
    }
    CHECK_EQ(count_of(port, ""), 8);

    /* an HTML form */
    r = (th_resp){0};
    const char form[] = "title=from+a+form&price=2.5&tag=";
    char raw[512];
    snprintf(raw, sizeof raw,
             "POST /api/records/v1/posts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(form), form);
    CHECK_EQ(th_request(port, raw, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "{\"ids\":[\"9\"]}");
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/posts/9", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"title\":\"from a form\",\"price\":2.5,\"stock\":0,\"tag\":null");
    th_resp_free(&r);

    /* update and delete */
    rt_expect(port, "PATCH", "/api/records/v1/posts/6", "{\"title\":\"renamed\",\"stock\":4}", NULL,
              200, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts/6", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"title\":\"renamed\",\"price\":1.0,\"stock\":4");
    th_resp_free(&r);
    rt_expect(port, "PATCH", "/api/records/v1/posts/6", "{\"id\":6,\"tag\":\"t\"}", NULL, 200,
              NULL);
    rt_expect(port, "PATCH", "/api/records/v1/posts/6", "{\"id\":7}", NULL, 400, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/posts/6", "{\"title\":\"\"}", NULL, 400, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/posts/6", "{\"secret\":\"x\"}", NULL, 400, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/posts/99", "{\"title\":\"a\"}", NULL, 404, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/posts/6", NULL, NULL, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/posts/6", NULL, NULL, 404, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/posts/6", NULL, NULL, 404, NULL);

    /* the schema */
    rt_expect(port, "GET", "/api/records/v1/posts/schema", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"title\":{\"type\":\"string\"}");
    CHECK_CONTAINS(r.body, "\"price\":{\"type\":[\"number\",\"null\"]}");
    CHECK_CONTAINS(r.body, "\"required\":[\"title\"]");
    CHECK(strstr(r.body, "secret") == NULL && strstr(r.body, "_internal") == NULL);
    th_resp_free(&r);

    /* ACLs: the view and "instock" grant READ only */
    rt_expect(port, "POST", "/api/records/v1/cheap", "{\"title\":\"x\"}", NULL, 403, NULL);
    rt_expect(port, "GET", "/api/records/v1/cheap/schema", NULL, NULL, 403, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/instock/1", "{\"title\":\"x\"}", NULL, 403, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/instock/1", NULL, NULL, 403, NULL);
    /* the read rule: a row it refuses is not found */
    rt_expect(port, "GET", "/api/records/v1/instock/2", NULL, NULL, 404, NULL);
    rt_expect(port, "GET", "/api/records/v1/instock/3", NULL, NULL, 200, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}

static const char notes_sql[] =
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner BLOB REFERENCES _user(id),\n"
    "  body TEXT, public INTEGER NOT NULL DEFAULT 0) STRICT;\n";

static const char notes_cfg[] =
    "server { access_log: false }\n"
    "record_apis {\n"
    "  name: \"notes\" table_name: \"notes\"\n"
    "  acl_world: [READ]\n"
    "  acl_authenticated: [CREATE, READ, UPDATE, DELETE, SCHEMA]\n"
    "  read_access_rule: \"_ROW_.public = 1 OR _ROW_.owner = _USER_.id\"\n"
    "  create_access_rule: \"_REQ_.owner = _USER_.id AND 'id' NOT IN _REQ_FIELDS_\"\n"
    "  update_access_rule: \"_ROW_.owner = _USER_.id AND (_REQ_.owner IS NULL OR _REQ_.owner = "
    "_USER_.id)\"\n"
    "  delete_access_rule: \"_ROW_.owner = _USER_.id\"\n"
    "  schema_access_rule: \"_USER_.id IS NOT NULL\"\n"
    "}\n";

TEST_TIMEOUT(e2e_records_rules_with_users, 120)
{
    char depot[512], ann[2048], bob[2048], ann_id[64], bob_id[64];
    rt_depot("rrules", notes_sql, notes_cfg, depot);
    rt_user(depot, "ann@example.com", ann, ann_id);
    rt_user(depot, "bob@example.com", bob, bob_id);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    int port = s.port;
    char body[512];
    const char *N = "/api/records/v1/notes";

    /* create: the rule compares the request with the caller */
    snprintf(body, sizeof body, "{\"owner\":\"%s\",\"body\":\"ann private\"}", ann_id);
    rt_expect(port, "POST", N, body, ann, 200, NULL); /* id 1 */
    snprintf(body, sizeof body, "{\"owner\":\"%s\",\"body\":\"ann public\",\"public\":1}", ann_id);
    rt_expect(port, "POST", N, body, ann, 200, NULL); /* id 2 */
    snprintf(body, sizeof body, "{\"owner\":\"%s\",\"body\":\"bob's\"}", bob_id);
    rt_expect(port, "POST", N, body, bob, 200, NULL);  /* id 3 */
    rt_expect(port, "POST", N, body, ann, 403, NULL);  /* ann writing as bob */
    rt_expect(port, "POST", N, body, NULL, 403, NULL); /* anonymous: no CREATE */
    snprintf(body, sizeof body, "{\"id\":50,\"owner\":\"%s\"}", ann_id);
    rt_expect(port, "POST", N, body, ann, 403, NULL); /* _REQ_FIELDS_ */

    /* read: the rule per row, for list and read */
    expect_ids(port, "/api/records/v1/notes?order=id", "2");
    th_resp r = rt_req(port, "GET", "/api/records/v1/notes?order=id&count=true", NULL, ann);
    CHECK_EQ(r.status, 200);
    CHECK_CONTAINS(r.body, "\"total_count\":2,");
    CHECK_CONTAINS(r.body, "ann private");
    CHECK(strstr(r.body, "bob's") == NULL);
    /* the owner BLOB appears as the user's id, URL-safe base64 */
    char want[128];
    snprintf(want, sizeof want, "\"owner\":\"%s\"", ann_id);
    CHECK_CONTAINS(r.body, want);
    th_resp_free(&r);
    r = rt_req(port, "GET", "/api/records/v1/notes?order=id", NULL, bob);
    CHECK(strstr(r.body, "ann private") == NULL && strstr(r.body, "ann public") != NULL &&
          strstr(r.body, "bob's") != NULL);
    th_resp_free(&r);
    rt_expect(port, "GET", "/api/records/v1/notes/1", NULL, bob, 404, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/1", NULL, ann, 200, NULL);
    /* filtering on the owner does not widen what the rule lets through */
    char path[512];
    snprintf(path, sizeof path, "/api/records/v1/notes?count=true&filter[owner]=%s", ann_id);
    r = rt_req(port, "GET", path, NULL, bob);
    CHECK_CONTAINS(r.body, "\"total_count\":1,");
    th_resp_free(&r);

    /* update: another's record, and moving one's own record to another owner */
    rt_expect(port, "PATCH", "/api/records/v1/notes/1", "{\"body\":\"bob was here\"}", bob, 403,
              NULL);
    snprintf(body, sizeof body, "{\"owner\":\"%s\"}", bob_id);
    rt_expect(port, "PATCH", "/api/records/v1/notes/1", body, ann, 403, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/notes/1", "{\"body\":\"edited\"}", ann, 200, NULL);
    rt_expect(port, "PATCH", "/api/records/v1/notes/1", "{\"body\":\"anon\"}", NULL, 403, NULL);
    r = rt_req(port, "GET", "/api/records/v1/notes/1", NULL, ann);
    CHECK_CONTAINS(r.body, "\"body\":\"edited\"");
    th_resp_free(&r);

    /* delete */
    rt_expect(port, "DELETE", "/api/records/v1/notes/1", NULL, bob, 403, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/notes/1", NULL, ann, 200, NULL);
    rt_expect(port, "DELETE", "/api/records/v1/notes/1", NULL, ann, 404, NULL);

    /* schema rule; a bad token is refused, not treated as anonymous */
    rt_expect(port, "GET", "/api/records/v1/notes/schema", NULL, NULL, 403, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes/schema", NULL, ann, 200, NULL);
    rt_expect(port, "GET", "/api/records/v1/notes", NULL, "not.a.token", 401, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Configurations that must stop `trail run` with a message naming the API. */
TEST_TIMEOUT(e2e_records_bad_config_stops_start, 60)
{
    struct {
        const char *cfg, *want;
    } cases[] = {
        {"record_apis { name: \"x\" table_name: \"nope\" }", "record_apis 'x': no table or view"},
        {"record_apis { name: \"x\" table_name: \"posts\" read_access_rule: \"_ROW_.nope = 1\" }",
         "record_apis 'x': read_access_rule: no such column: _ROW_.nope"},
        {"record_apis { name: \"x\" table_name: \"posts\" read_access_rule: \"1); DROP TABLE "
         "posts; --\" }",
         "read_access_rule"},
        {"record_apis { name: \"x\" table_name: \"posts\" expand: \"tag\" }",
         "expand: 'tag' is not a foreign key column"},
        {"record_apis { name: \"x\" table_name: \"_user\" }", "trail's own"},
        {"record_apis { name: \"x\" table_name: \"cheap\" acl_world: [CREATE] }", "is a view"},
        {"record_apis { name: \"x/y\" table_name: \"posts\" }", "name 'x/y'"},
        {"record_apis { name: \"x\" table_name: \"posts\" } record_apis { name: \"x\" "
         "table_name: \"authors\" }",
         "two APIs are named 'x'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char depot[512], name[32];
        snprintf(name, sizeof name, "rbad%zu", i);
        rt_depot(name, posts_sql, cases[i].cfg, depot);
        const char *args[] = {"run", "--data-dir", depot, "--address", "127.0.0.1:0", NULL};
        char *out = NULL, *err = NULL;
        int st = th_run(args, 60000, &out, &err);
        if (st != 1 || strstr(err, cases[i].want) == NULL)
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, st, err);
        CHECK_EQ(st, 1);
        CHECK_CONTAINS(err, cases[i].want);
        free(out);
        free(err);
    }
    /* the table survived the rule that tried to drop it */
    char depot[512];
    rt_depot("rbadok", posts_sql, posts_cfg, depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    CHECK_EQ(count_of(s.port, ""), 5);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Records whose id is a UUID v7 BLOB (as the `_user` table's): ids come back as URL-safe
 * base64, and a path takes that form or the UUID's text; cursors page through them. */
TEST_TIMEOUT(e2e_records_uuid_ids, 90)
{
    static const char sql[] =
        "CREATE TABLE docs (id BLOB PRIMARY KEY NOT NULL DEFAULT (uuid_v7()),\n"
        "  title TEXT NOT NULL) STRICT;\n";
    static const char cfg[] = "server { access_log: false }\n"
                              "record_apis { name: \"docs\" table_name: \"docs\"\n"
                              "  acl_world: [CREATE, READ, UPDATE, DELETE] }\n";
    char depot[512];
    rt_depot("ruuid", sql, cfg, depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    int port = s.port;
    th_resp r;
    rt_expect(port, "POST", "/api/records/v1/docs",
              "[{\"title\":\"a\"},{\"title\":\"b\"},"
              "{\"title\":\"c\"}]",
              NULL, 200, &r);
    /* {"ids":["<24 chars>",...]} */
    char id[3][64];
    const char *p = strstr(r.body, "[\"");
    CHECK(p != NULL);
    p += 2;
    for (int i = 0; i < 3; i++) {
        size_t len = strcspn(p, "\"");
        snprintf(id[i], sizeof id[i], "%.*s", (int)len, p);
        CHECK_EQ(strlen(id[i]), 24);
        p += len + 3; /* ","  */
    }
    th_resp_free(&r);
    char path[512], want[128];
    snprintf(path, sizeof path, "/api/records/v1/docs/%s", id[1]);
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    snprintf(want, sizeof want, "{\"id\":\"%s\",\"title\":\"b\"}", id[1]);
    CHECK_STR_EQ(r.body, want);
    th_resp_free(&r);
    /* the same record by the UUID's text form */
    uint8_t raw[18];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0, n = 0;
    for (int i = 0; i < 22; i++) {
        acc = acc << 6 | (uint32_t)(strchr(b64, id[1][i]) - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (uint8_t)(acc >> bits);
        }
    }
    CHECK_EQ(n, 16);
    snprintf(
        path, sizeof path,
        "/api/records/v1/docs/%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
        raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10],
        raw[11], raw[12], raw[13], raw[14], raw[15]);
    rt_expect(port, "GET", path, NULL, NULL, 200, NULL);
    /* newest first (UUID v7 sort by time); a cursor pages on */
    rt_expect(port, "GET", "/api/records/v1/docs?limit=1", NULL, NULL, 200, &r);
    CHECK_CONTAINS(r.body, "\"title\":\"c\"");
    const char *cp = strstr(r.body, "\"cursor\":\"");
    CHECK(cp != NULL);
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(cp + 10, "\""), cp + 10);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/records/v1/docs?limit=5&cursor=%s", cursor);
    rt_expect(port, "GET", path, NULL, NULL, 200, &r);
    CHECK(strstr(r.body, "\"title\":\"c\"") == NULL);
    CHECK_CONTAINS(r.body, "\"title\":\"b\"},{\"id\":");
    th_resp_free(&r);
    /* update and delete by id; a malformed id */
    snprintf(path, sizeof path, "/api/records/v1/docs/%s", id[0]);
    rt_expect(port, "PATCH", path, "{\"title\":\"A\"}", NULL, 200, NULL);
    rt_expect(port, "DELETE", path, NULL, NULL, 200, NULL);
    rt_expect(port, "GET", path, NULL, NULL, 404, NULL);
    rt_expect(port, "GET", "/api/records/v1/docs/not-base64!", NULL, NULL, 400, NULL);
    CHECK_EQ(th_server_stop(&s), 0);
}
