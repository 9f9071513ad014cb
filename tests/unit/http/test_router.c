/* Tests for http/router.c: patterns, parameters, wildcard, specificity, 405/Allow, conflicts. */
#include "test.h"
#include "http/http.h"

static int tag_a, tag_b, tag_c, tag_d;

static void noop(const http_request *req, http_response *res, void *ud)
{
    (void)req;
    (void)res;
    (void)ud;
}

static http_match_result match(const http_router *r, const char *method, const char *path,
                               http_match *m)
{
    return http_router_match(r, method, strlen(method), path, strlen(path), m);
}

static const char *param(const http_match *m, const char *name, char *buf, size_t cap)
{
    for (size_t i = 0; i < m->nparams; i++)
        if (m->params[i].name.len == strlen(name) &&
            memcmp(m->params[i].name.ptr, name, m->params[i].name.len) == 0) {
            snprintf(buf, cap, "%.*s", (int)m->params[i].value.len, m->params[i].value.ptr);
            return buf;
        }
    return NULL;
}

TEST(http_router_literal_and_params)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "GET", "/api/healthcheck", noop, &tag_a, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/users/:id", noop, &tag_b, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/users/{uid}/posts/{post_id}", noop, &tag_c, &err), 0);
    http_match m;
    char buf[64];
    CHECK_EQ(match(r, "GET", "/api/healthcheck", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_EQ(m.nparams, 0);
    CHECK_EQ(match(r, "GET", "/users/42", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_b);
    CHECK_STR_EQ(param(&m, "id", buf, sizeof buf), "42");
    CHECK_EQ(match(r, "GET", "/users/7/posts/x%20y", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_c);
    CHECK_STR_EQ(param(&m, "uid", buf, sizeof buf), "7");
    CHECK_STR_EQ(param(&m, "post_id", buf, sizeof buf), "x%20y");
    CHECK_STR_EQ(m.pattern, "/users/{uid}/posts/{post_id}");
    /* A parameter never matches an empty segment; trailing slashes are significant. */
    CHECK_EQ(match(r, "GET", "/users/", &m), HTTP_MATCH_NOT_FOUND);
    CHECK_EQ(match(r, "GET", "/users", &m), HTTP_MATCH_NOT_FOUND);
    CHECK_EQ(match(r, "GET", "/api/healthcheck/", &m), HTTP_MATCH_NOT_FOUND);
    CHECK_EQ(match(r, "GET", "/api", &m), HTTP_MATCH_NOT_FOUND);
    CHECK_EQ(match(r, "GET", "", &m), HTTP_MATCH_NOT_FOUND);
    CHECK_EQ(match(r, "GET", "*", &m), HTTP_MATCH_NOT_FOUND);
    http_router_free(r);
}

TEST(http_router_wildcard_and_specificity)
{
    http_router *r = http_router_new();
    tr_error err;
    /* Registered least specific first: order must not matter. */
    CHECK_EQ(http_router_add(r, "GET", "/files/*", noop, &tag_a, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/files/:name", noop, &tag_b, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/files/readme", noop, &tag_c, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/*", noop, &tag_d, &err), 0);
    http_match m;
    char buf[64];
    CHECK_EQ(match(r, "GET", "/files/readme", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_c);
    CHECK_EQ(match(r, "GET", "/files/other", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_b);
    CHECK_EQ(match(r, "GET", "/files/a/b/c", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_STR_EQ(param(&m, "*", buf, sizeof buf), "a/b/c");
    CHECK_EQ(match(r, "GET", "/files", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_STR_EQ(param(&m, "*", buf, sizeof buf), "");
    CHECK_EQ(match(r, "GET", "/files/", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_EQ(match(r, "GET", "/elsewhere/x", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_d);
    CHECK_STR_EQ(param(&m, "*", buf, sizeof buf), "elsewhere/x");
    CHECK_EQ(match(r, "GET", "/", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_d);
    http_router_free(r);
}

TEST(http_router_method_not_allowed_and_head)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "GET", "/items/:id", noop, &tag_a, &err), 0);
    CHECK_EQ(http_router_add(r, "DELETE", "/items/{id}", noop, &tag_b, &err), 0);
    CHECK_EQ(http_router_add(r, "POST", "/items", noop, &tag_c, &err), 0);
    http_match m;
    CHECK_EQ(match(r, "PUT", "/items/1", &m), HTTP_MATCH_METHOD_NOT_ALLOWED);
    CHECK_STR_EQ(m.allow, "GET, HEAD, DELETE");
    CHECK_EQ(match(r, "GET", "/items", &m), HTTP_MATCH_METHOD_NOT_ALLOWED);
    CHECK_STR_EQ(m.allow, "POST");
    CHECK_EQ(match(r, "HEAD", "/items/1", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_EQ(match(r, "DELETE", "/items/1", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_b);
    CHECK_EQ(match(r, "PUT", "/other", &m), HTTP_MATCH_NOT_FOUND);
    /* An explicit HEAD route wins over GET's fallback. */
    CHECK_EQ(http_router_add(r, "HEAD", "/items/:id", noop, &tag_d, &err), 0);
    CHECK_EQ(match(r, "HEAD", "/items/1", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_d);
    http_router_free(r);
}

TEST(http_router_any_method_route)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "*", "/dav/*", noop, &tag_a, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/dav/*", noop, &tag_b, &err), 0);
    CHECK_EQ(http_router_add(r, "PROPFIND", "/dav/special", noop, &tag_c, &err), 0);
    http_match m;
    /* any method, WebDAV's included, reaches "*"; a method's own route wins over it */
    const char *const methods[] = {"PROPFIND", "MKCOL", "LOCK", "M-SEARCH", "POST"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        CHECK_EQ(match(r, methods[i], "/dav/a/b", &m), HTTP_MATCH_FOUND);
        CHECK(m.ud == &tag_a);
    }
    CHECK_EQ(match(r, "GET", "/dav/a", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_b);
    CHECK_EQ(match(r, "HEAD", "/dav/a", &m), HTTP_MATCH_FOUND); /* GET's fallback beats "*" */
    CHECK(m.ud == &tag_b);
    /* the more specific path first, then the method */
    CHECK_EQ(match(r, "PROPFIND", "/dav/special", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_c);
    CHECK_EQ(match(r, "MKCOL", "/dav/special", &m), HTTP_MATCH_FOUND);
    CHECK(m.ud == &tag_a);
    CHECK_EQ(match(r, "MKCOL", "/elsewhere", &m), HTTP_MATCH_NOT_FOUND);
    /* two "*" routes on one pattern conflict; a method must be letters or "*" */
    CHECK_EQ(http_router_add(r, "*", "/dav/*", noop, NULL, &err), TR_ECONFLICT);
    CHECK_EQ(http_router_add(r, "get", "/x", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "**", "/x", noop, NULL, &err), TR_EINVAL);
    http_router_free(r);
}

TEST(http_router_conflicts_rejected)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "GET", "/users/:id", noop, NULL, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/users/{name}", noop, NULL, &err), TR_ECONFLICT);
    CHECK_CONTAINS(err.msg, "/users/{name}");
    CHECK_CONTAINS(err.msg, "/users/:id");
    CHECK_EQ(http_router_add(r, "GET", "/x/*", noop, NULL, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/x/*", noop, NULL, &err), TR_ECONFLICT);
    CHECK_CONTAINS(err.msg, "GET /x/* conflicts with GET /x/*");
    /* Different method or a different shape is no conflict. */
    CHECK_EQ(http_router_add(r, "POST", "/users/:id", noop, NULL, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/users/me", noop, NULL, &err), 0);
    CHECK_EQ(http_router_add(r, "GET", "/users/:id/x", noop, NULL, &err), 0);
    http_router_free(r);
}

TEST(http_router_conflict_names_the_entry)
{
    http_router *r = http_router_new();
    tr_error err;
    int get_tag, post_tag;
    CHECK_EQ(http_router_add(r, "GET", "/users/:id", noop, &get_tag, &err), 0);
    CHECK_EQ(http_router_add(r, "POST", "/users/:id", noop, &post_tag, &err), 0);
    void *ud = NULL;
    CHECK(http_router_conflict(r, "GET", "/users/{name}", &ud));
    CHECK(ud == &get_tag);
    CHECK(http_router_conflict(r, "POST", "/users/:other", &ud));
    CHECK(ud == &post_tag);
    CHECK(!http_router_conflict(r, "PUT", "/users/:id", &ud));
    CHECK(!http_router_conflict(r, "GET", "/users/me", &ud));
    CHECK(!http_router_conflict(r, "GET", "no-slash", &ud));
    http_router_free(r);
}

TEST(http_router_bad_patterns)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "GET", "users", noop, NULL, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "must start with '/'");
    CHECK_EQ(http_router_add(r, "GET", "/a/*/b", noop, NULL, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "last segment");
    CHECK_EQ(http_router_add(r, "GET", "/a/:", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "GET", "/a/{x", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "GET", "/a/{}", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "GET", "/a/:x/:x", noop, NULL, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "twice");
    CHECK_EQ(http_router_add(r, "GET", "/a/:x-y", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "get", "/a", noop, NULL, &err), TR_EINVAL);
    CHECK_EQ(http_router_add(r, "", "/a", noop, NULL, &err), TR_EINVAL);
    http_match m;
    CHECK_EQ(match(r, "GET", "/a", &m), HTTP_MATCH_NOT_FOUND);
    http_router_free(r);
}

TEST(http_router_deep_path)
{
    http_router *r = http_router_new();
    tr_error err;
    CHECK_EQ(http_router_add(r, "GET", "/*", noop, &tag_a, &err), 0);
    char path[1024];
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        path[n++] = '/';
        path[n++] = 'a';
    }
    path[n] = '\0';
    http_match m;
    /* Deeper than HTTP_MAX_SEGMENTS: no route, and no overflow. */
    CHECK_EQ(match(r, "GET", path, &m), HTTP_MATCH_NOT_FOUND);
    http_router_free(r);
}

TEST(http_mime_types)
{
    CHECK_STR_EQ(http_mime_type("index.html", 10), "text/html; charset=utf-8");
    CHECK_STR_EQ(http_mime_type("a/b.CSS", 7), "text/css; charset=utf-8");
    CHECK_STR_EQ(http_mime_type("app.js", 6), "text/javascript; charset=utf-8");
    CHECK_STR_EQ(http_mime_type("x.wasm", 6), "application/wasm");
    CHECK_STR_EQ(http_mime_type("logo.svg", 8), "image/svg+xml");
    CHECK_STR_EQ(http_mime_type("noext", 5), "application/octet-stream");
    CHECK_STR_EQ(http_mime_type("dir.d/noext", 11), "application/octet-stream");
}
