/* http/router.c: method + path patterns -> handlers.
 *
 * DESIGN: routes are kept in a flat array and matched by a linear scan over pre-split patterns;
 * the path is split once per lookup. With tens of routes this is a few hundred nanoseconds and
 * keeps conflict detection and specificity trivial to reason about; a segment trie is the
 * upgrade path if route counts grow. Specificity compares segment kinds left to right (literal >
 * parameter > wildcard), so "/users/me" beats "/users/:id" beats "/users/ *" (wildcard) whatever
 * the registration order. */
#include "http/http.h"

#include <string.h>
#include <strings.h>

enum { SEG_LIT, SEG_PARAM };

typedef struct route_seg {
    uint8_t kind;
    char *text; /* literal bytes or the parameter's name (owned) */
    size_t len;
} route_seg;

typedef struct route {
    char *method;  /* owned */
    char *pattern; /* owned, as registered */
    route_seg *segs;
    size_t nsegs;
    bool wildcard; /* trailing '*' after segs */
    http_handler_fn fn;
    void *ud;
} route;

struct http_router {
    route *routes;
    size_t len, cap;
};

http_router *http_router_new(void)
{
    return tr_calloc(1, sizeof(http_router));
}

static void route_free(route *rt)
{
    for (size_t i = 0; i < rt->nsegs; i++)
        tr_free(rt->segs[i].text);
    tr_free(rt->segs);
    tr_free(rt->method);
    tr_free(rt->pattern);
}

void http_router_free(http_router *r)
{
    if (r == NULL) return;
    for (size_t i = 0; i < r->len; i++)
        route_free(&r->routes[i]);
    tr_free(r->routes);
    tr_free(r);
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Splits path (starting with '/') into segments; returns the count or -1 if more than max. */
static int split_path(const char *path, size_t len, http_slice *out, size_t max)
{
    size_t n = 0, i = 1;
    for (;;) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (n == max) return -1;
        out[n].ptr = path + start;
        out[n].len = i - start;
        n++;
        if (i >= len) break;
        i++;
    }
    return (int)n;
}

static int parse_pattern(const char *pattern, route *rt, tr_error *err)
{
    size_t len = strlen(pattern);
    if (len == 0 || pattern[0] != '/')
        return tr_error_set(err, TR_EINVAL, "route pattern '%s' must start with '/'", pattern);
    http_slice segs[HTTP_MAX_SEGMENTS];
    int n = split_path(pattern, len, segs, HTTP_MAX_SEGMENTS);
    if (n < 0) return tr_error_set(err, TR_EINVAL, "route pattern '%s' is too deep", pattern);
    rt->segs = tr_calloc((size_t)n, sizeof *rt->segs);
    size_t nparams = 0;
    for (int i = 0; i < n; i++) {
        const char *s = segs[i].ptr;
        size_t sl = segs[i].len;
        if (sl == 1 && s[0] == '*') {
            if (i != n - 1)
                return tr_error_set(err, TR_EINVAL,
                                    "route pattern '%s': '*' is allowed only as the last segment",
                                    pattern);
            rt->wildcard = true;
            nparams++;
            break;
        }
        route_seg *seg = &rt->segs[rt->nsegs];
        const char *name = NULL;
        size_t name_len = 0;
        if (sl > 0 && s[0] == ':') {
            name = s + 1;
            name_len = sl - 1;
        } else if (sl > 0 && s[0] == '{') {
            if (sl < 2 || s[sl - 1] != '}')
                return tr_error_set(err, TR_EINVAL, "route pattern '%s': unclosed '{'", pattern);
            name = s + 1;
            name_len = sl - 2;
        }
        if (name) {
            if (name_len == 0)
                return tr_error_set(err, TR_EINVAL, "route pattern '%s': empty parameter name",
                                    pattern);
            for (size_t k = 0; k < name_len; k++)
                if (!is_name_char(name[k]))
                    return tr_error_set(err, TR_EINVAL,
                                        "route pattern '%s': parameter names use [A-Za-z0-9_]",
                                        pattern);
            for (size_t k = 0; k < rt->nsegs; k++)
                if (rt->segs[k].kind == SEG_PARAM && rt->segs[k].len == name_len &&
                    memcmp(rt->segs[k].text, name, name_len) == 0)
                    return tr_error_set(err, TR_EINVAL,
                                        "route pattern '%s': parameter '%.*s' appears twice",
                                        pattern, (int)name_len, name);
            seg->kind = SEG_PARAM;
            seg->text = tr_strndup(name, name_len);
            seg->len = name_len;
            nparams++;
        } else {
            for (size_t k = 0; k < sl; k++)
                if (s[k] == '{' || s[k] == '}' || s[k] == '*' || s[k] == '?' || s[k] == '#')
                    return tr_error_set(err, TR_EINVAL,
                                        "route pattern '%s': unexpected '%c' in a literal segment",
                                        pattern, s[k]);
            seg->kind = SEG_LIT;
            seg->text = tr_strndup(s, sl);
            seg->len = sl;
        }
        rt->nsegs++;
    }
    if (nparams > HTTP_MAX_PARAMS)
        return tr_error_set(err, TR_EINVAL, "route pattern '%s': more than %d parameters", pattern,
                            HTTP_MAX_PARAMS);
    return 0;
}

static bool same_shape(const route *a, const route *b)
{
    if (a->nsegs != b->nsegs || a->wildcard != b->wildcard) return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind) return false;
        if (a->segs[i].kind == SEG_LIT &&
            (a->segs[i].len != b->segs[i].len ||
             memcmp(a->segs[i].text, b->segs[i].text, a->segs[i].len) != 0))
            return false;
    }
    return true;
}

/* The route of r for method with rt's shape (parameter names aside); NULL if none. */
static const route *find_same(const http_router *r, const char *method, const route *rt)
{
    for (size_t i = 0; i < r->len; i++) {
        const route *o = &r->routes[i];
        if (strcmp(o->method, method) == 0 && same_shape(o, rt)) return o;
    }
    return NULL;
}

bool http_router_conflict(const http_router *r, const char *method, const char *pattern,
                          void **ud_out)
{
    route rt = {0};
    const route *o = parse_pattern(pattern, &rt, NULL) == 0 ? find_same(r, method, &rt) : NULL;
    route_free(&rt);
    if (o != NULL) *ud_out = o->ud;
    return o != NULL;
}

int http_router_add(http_router *r, const char *method, const char *pattern, http_handler_fn fn,
                    void *ud, tr_error *err)
{
    if (method == NULL || method[0] == '\0')
        return tr_error_set(err, TR_EINVAL, "route '%s': empty method", pattern);
    for (const char *p = method; *p && strcmp(method, "*") != 0; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            return tr_error_set(err, TR_EINVAL,
                                "route '%s': method '%s' must be upper-case letters or '*'",
                                pattern, method);
    route rt = {0};
    int rc = parse_pattern(pattern, &rt, err);
    if (rc < 0) {
        route_free(&rt);
        return rc;
    }
    const route *o = find_same(r, method, &rt);
    if (o != NULL) {
        rc = tr_error_set(err, TR_ECONFLICT, "route %s %s conflicts with %s %s", method, pattern,
                          o->method, o->pattern);
        route_free(&rt);
        return rc;
    }
    rt.method = tr_strdup(method);
    rt.pattern = tr_strdup(pattern);
    rt.fn = fn;
    rt.ud = ud;
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = tr_realloc(r->routes, r->cap * sizeof *r->routes);
    }
    r->routes[r->len++] = rt;
    return 0;
}

/* Matches rt against the split path. On success fills params and a specificity key: one byte per
 * position (2 literal, 1 parameter, 0 wildcard) compared lexicographically. */
static bool route_matches(const route *rt, const http_slice *segs, size_t nsegs, const char *path,
                          size_t path_len, http_param *params, size_t *nparams, uint8_t *key)
{
    /* A trailing wildcard also matches its bare prefix ("/static"), with an empty value. */
    if (rt->wildcard ? nsegs < rt->nsegs : nsegs != rt->nsegs) return false;
    size_t np = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        const route_seg *s = &rt->segs[i];
        if (s->kind == SEG_LIT) {
            if (segs[i].len != s->len || memcmp(segs[i].ptr, s->text, s->len) != 0) return false;
            key[i] = 2;
        } else {
            if (segs[i].len == 0) return false;
            params[np].name.ptr = s->text;
            params[np].name.len = s->len;
            params[np].value = segs[i];
            np++;
            key[i] = 1;
        }
    }
    if (rt->wildcard) {
        const char *rest = rt->nsegs < nsegs ? segs[rt->nsegs].ptr : path + path_len;
        params[np].name.ptr = "*";
        params[np].name.len = 1;
        params[np].value.ptr = rest;
        params[np].value.len = (size_t)(path + path_len - rest);
        np++;
        key[rt->nsegs] = 0;
        for (size_t i = rt->nsegs + 1; i <= nsegs; i++)
            key[i] = 0;
    }
    *nparams = np;
    return true;
}

static bool method_eq(const char *m, const char *s, size_t len)
{
    return strlen(m) == len && memcmp(m, s, len) == 0;
}

static void allow_add(char *allow, size_t cap, const char *method)
{
    size_t ml = strlen(method), al = strlen(allow);
    /* skip duplicates: "GET" may come from a route and from HEAD's fallback */
    for (const char *p = allow; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ml && memcmp(p, method, ml) == 0) return;
        if (!e) break;
        p = e + 2;
    }
    if (al + ml + 3 > cap) return;
    if (al) {
        memcpy(allow + al, ", ", 2);
        al += 2;
    }
    memcpy(allow + al, method, ml + 1);
}

http_match_result http_router_match(const http_router *r, const char *method, size_t method_len,
                                    const char *path, size_t path_len, http_match *m)
{
    m->fn = NULL;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (path_len == 0 || path[0] != '/') return HTTP_MATCH_NOT_FOUND;
    http_slice segs[HTTP_MAX_SEGMENTS];
    int ns = split_path(path, path_len, segs, HTTP_MAX_SEGMENTS);
    if (ns < 0) return HTTP_MATCH_NOT_FOUND;
    size_t nsegs = (size_t)ns;
    bool head = method_eq("HEAD", method, method_len);

    const route *best = NULL;
    int best_rank = 0; /* 3: exact method, 2: GET serving HEAD, 1: a route for any method */
    uint8_t best_key[HTTP_MAX_SEGMENTS + 1], key[HTTP_MAX_SEGMENTS + 1];
    http_param params[HTTP_MAX_PARAMS];
    bool path_matched = false;
    for (size_t i = 0; i < r->len; i++) {
        const route *rt = &r->routes[i];
        size_t np;
        if (!route_matches(rt, segs, nsegs, path, path_len, params, &np, key)) continue;
        path_matched = true;
        int rank = method_eq(rt->method, method, method_len) ? 3
                   : head && strcmp(rt->method, "GET") == 0  ? 2
                   : strcmp(rt->method, "*") == 0            ? 1
                                                             : 0;
        if (rank == 0) continue;
        size_t klen = (rt->wildcard ? nsegs + 1 : nsegs);
        int cmp = best ? memcmp(key, best_key, klen) : 1;
        if (best == NULL || cmp > 0 || (cmp == 0 && rank > best_rank)) {
            best = rt;
            best_rank = rank;
            memcpy(best_key, key, klen);
            memset(best_key + klen, 0, sizeof best_key - klen);
            memcpy(m->params, params, np * sizeof *params);
            m->nparams = np;
        }
    }
    if (best) {
        m->fn = best->fn;
        m->ud = best->ud;
        m->pattern = best->pattern;
        return HTTP_MATCH_FOUND;
    }
    if (!path_matched) return HTTP_MATCH_NOT_FOUND;
    for (size_t i = 0; i < r->len; i++) {
        const route *rt = &r->routes[i];
        size_t np;
        if (!route_matches(rt, segs, nsegs, path, path_len, params, &np, key)) continue;
        allow_add(m->allow, sizeof m->allow, rt->method);
        if (strcmp(rt->method, "GET") == 0) allow_add(m->allow, sizeof m->allow, "HEAD");
    }
    return HTTP_MATCH_METHOD_NOT_ALLOWED;
}
