/* component/module.c: loading and validating a component once: the file, the engine, the
 * module's evaluation, and its manifest of routes and jobs. */
#include "component/component_internal.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "component/native_internal.h"

/* A route's method: "*" (HttpHandler.all), or a method name as clients send them, upper case
 * (the router compares bytes). Any name is allowed, WebDAV's PROPFIND as much as GET. */
static bool method_ok(const char *m)
{
    if (strcmp(m, "*") == 0) return true;
    size_t n = strlen(m);
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z') return false;
    return true;
}

static void module_free(comp_module *m)
{
    for (size_t i = 0; i < m->nroutes; i++) {
        tr_free(m->routes[i].method);
        tr_free(m->routes[i].path);
    }
    for (size_t i = 0; i < m->njobs; i++) {
        tr_free(m->jobs[i].name);
        tr_free(m->jobs[i].schedule);
    }
    for (size_t i = 0; i < m->nhooks; i++)
        tr_free(m->hooks[i].api);
    tr_free(m->hooks);
    tr_free(m->routes);
    tr_free(m->jobs);
    tr_free(m->js);
    comp_srcmap_free(m->srcmap);
    comp_native_free(m->native);
    tr_free(m->name);
    tr_free(m->path);
    tr_free(m);
}

void comp_module_map_error(const comp_module *m, tr_error *err)
{
    if (m->srcmap == NULL || err == NULL) return;
    tr_buf b = TR_BUF_INIT;
    comp_srcmap_rewrite(m->srcmap, "component.js", err->msg, &b);
    snprintf(err->msg, sizeof err->msg, "%s", b.data ? b.data : "");
    tr_buf_free(&b);
}

comp_module *comp_module_ref(comp_module *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

const char *comp_module_name(const comp_module *m)
{
    return m->name;
}

const char *comp_module_path(const comp_module *m)
{
    return m->path;
}

const char *comp_module_version(const comp_module *m)
{
    return m->version;
}

const char *comp_module_sha256(const comp_module *m)
{
    return m->sha256;
}

size_t comp_module_nroutes(const comp_module *m)
{
    return m->nroutes;
}

const comp_route *comp_module_route(const comp_module *m, size_t i)
{
    assert(i < m->nroutes);
    return &m->routes[i];
}

size_t comp_module_njobs(const comp_module *m)
{
    return m->njobs;
}

const comp_job *comp_module_job(const comp_module *m, size_t i)
{
    assert(i < m->njobs);
    return &m->jobs[i];
}

size_t comp_module_nhooks(const comp_module *m)
{
    return m->nhooks;
}

const comp_record_hook *comp_module_hook(const comp_module *m, size_t i)
{
    assert(i < m->nhooks);
    return &m->hooks[i];
}

void comp_module_unref(comp_module *m)
{
    if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1) module_free(m);
}

static bool is_str(const jsg_val *v)
{
    return v->type == JSG_STRING;
}

static char *dup_str(const jsg_val *v)
{
    return tr_strndup(v->u.str.ptr, v->u.str.len);
}

/* Reads manifest().http and manifest().jobs into m (also a compiled component's manifest). */
int comp__read_manifest(comp_module *m, const jsg_val *man, tr_error *err)
{
    if (man->type != JSG_OBJECT)
        return tr_error_set(err, TR_EINVAL, "manifest() did not return an object");
    const jsg_val *http = NULL, *jobs = NULL, *hooks = NULL;
    for (size_t i = 0; i < man->u.obj.len; i++) {
        const jsg_prop *p = &man->u.obj.props[i];
        if (p->key_len == 4 && memcmp(p->key, "http", 4) == 0) http = &p->val;
        if (p->key_len == 4 && memcmp(p->key, "jobs", 4) == 0) jobs = &p->val;
        if (p->key_len == 11 && memcmp(p->key, "recordHooks", 11) == 0) hooks = &p->val;
    }
    if (hooks && hooks->type == JSG_ARRAY) {
        static const char *const events[] = {"beforeCreate", "afterCreate", "beforeUpdate",
                                             "afterUpdate",  "beforeDelete", "afterDelete"};
        m->hooks = tr_calloc(hooks->u.arr.len ? hooks->u.arr.len : 1, sizeof *m->hooks);
        for (size_t i = 0; i < hooks->u.arr.len; i++) {
            const jsg_val *h = &hooks->u.arr.items[i];
            if (h->type != JSG_ARRAY || h->u.arr.len != 2 || !is_str(&h->u.arr.items[0]) ||
                !is_str(&h->u.arr.items[1]))
                return tr_error_set(err, TR_EINVAL, "record hook %zu of the manifest is malformed",
                                    i);
            const jsg_val *ev = &h->u.arr.items[1];
            int e = -1;
            for (size_t k = 0; k < TR_ARRAY_LEN(events); k++)
                if (ev->u.str.len == strlen(events[k]) &&
                    memcmp(ev->u.str.ptr, events[k], ev->u.str.len) == 0)
                    e = (int)k;
            if (e < 0)
                return tr_error_set(err, TR_EINVAL, "record hook %zu: unknown event", i);
            comp_record_hook *ch = &m->hooks[m->nhooks++];
            ch->api = dup_str(&h->u.arr.items[0]);
            ch->event = (comp_hook_event)e;
        }
    }
    if (http && http->type == JSG_ARRAY) {
        m->routes = tr_calloc(http->u.arr.len ? http->u.arr.len : 1, sizeof *m->routes);
        for (size_t i = 0; i < http->u.arr.len; i++) {
            const jsg_val *r = &http->u.arr.items[i];
            if (r->type != JSG_ARRAY || r->u.arr.len != 2 || !is_str(&r->u.arr.items[0]) ||
                !is_str(&r->u.arr.items[1]))
                return tr_error_set(err, TR_EINVAL, "route %zu of the manifest is malformed", i);
            comp_route *cr = &m->routes[m->nroutes++];
            cr->method = dup_str(&r->u.arr.items[0]);
            cr->path = dup_str(&r->u.arr.items[1]);
            if (!method_ok(cr->method))
                return tr_error_set(err, TR_EINVAL,
                                    "route %s %s: the method must be 1 to 32 upper-case letters "
                                    "(GET, PROPFIND, ...) or *",
                                    cr->method, cr->path);
            if (cr->path[0] != '/')
                return tr_error_set(err, TR_EINVAL, "route %s %s: the path must start with '/'",
                                    cr->method, cr->path);
        }
    }
    if (jobs && jobs->type == JSG_ARRAY) {
        m->jobs = tr_calloc(jobs->u.arr.len ? jobs->u.arr.len : 1, sizeof *m->jobs);
        for (size_t i = 0; i < jobs->u.arr.len; i++) {
            const jsg_val *j = &jobs->u.arr.items[i];
            if (j->type != JSG_ARRAY || j->u.arr.len != 2 || !is_str(&j->u.arr.items[0]) ||
                !is_str(&j->u.arr.items[1]))
                return tr_error_set(err, TR_EINVAL, "job %zu of the manifest is malformed", i);
            comp_job *cj = &m->jobs[m->njobs++];
            cj->name = dup_str(&j->u.arr.items[0]);
            cj->schedule = dup_str(&j->u.arr.items[1]);
            tr_error cerr = {0};
            if (cron_parse(cj->schedule, &cj->cron, &cerr) < 0)
                return tr_error_set(err, TR_EINVAL, "job '%s': invalid schedule '%s': %s",
                                    cj->name, cj->schedule, cerr.msg);
        }
    }
    return 0;
}

int comp_module_entry(jsg_isolate *iso, jsg_ref ns, jsg_ref *out, tr_error *err)
{
    jsg_ref def = 0;
    int rc = jsg_get(iso, ns, "default", 7, &def, err);
    if (rc == 0 && jsg_ref_kind(iso, def) != JSG_K_OBJECT) {
        jsg_ref_free(iso, def);
        def = 0;
        rc = jsg_get(iso, ns, "incomingHandler", 15, &def, err);
        if (rc == 0 && jsg_ref_kind(iso, def) != JSG_K_OBJECT)
            rc = tr_error_set(err, TR_EINVAL,
                              "the component has no default export made by defineConfig() "
                              "(export default defineConfig({...}), or export const { "
                              "initEndpoint, incomingHandler, sqliteFunctionEndpoint } = "
                              "defineConfig({...}))");
    }
    if (rc < 0) {
        if (def) jsg_ref_free(iso, def);
        return rc;
    }
    *out = def;
    return 0;
}

/* Evaluates the module in a scratch isolate (no database, no timers) and reads its manifest. */
static int validate(comp_module *m, tr_error *err)
{
    jsg_options opt = {.memory_limit = m->limits.memory_limit,
                       .timeout_ns = m->limits.cpu_budget_ms * 1000000u,
                       .cpu_time = true};
    jsg_isolate *iso = NULL;
    guest_env env;
    guest_env_init(&env, NULL, NULL, NULL);
    guest *g = NULL;
    jsg_ref ns = 0, def = 0, fn = 0, man = 0;
    tr_arena a;
    tr_arena_init(&a, 4096);
    int rc = jsg_isolate_new(&opt, &iso, err);
    if (rc == 0) rc = guest_new(iso, &env, NULL, NULL, &g, err);
    if (rc == 0) rc = comp_module_map_stacks(m, iso, err);
    if (rc == 0) rc = jsg_eval_module(iso, m->js, m->js_len, "component.js", &ns, err);
    if (rc == 0) rc = comp_module_entry(iso, ns, &def, err);
    /* manifest last: it is called below (responseClass is the SDK's HttpResponse class) */
    static const char *const fns[] = {"dispatch", "complete", "responseClass", "runJob",
                                      "manifest"};
    for (size_t i = 0; rc == 0 && i < TR_ARRAY_LEN(fns); i++) {
        if (fn) jsg_ref_free(iso, fn);
        fn = 0;
        rc = jsg_get(iso, def, fns[i], strlen(fns[i]), &fn, err);
        if (rc == 0 && jsg_ref_kind(iso, fn) != JSG_K_FUNCTION)
            rc = tr_error_set(err, TR_EINVAL,
                              "the component's export has no %s%s: make it with defineConfig() "
                              "from trailbase-wasm (a component built with an older version needs "
                              "a rebuild)",
                              fns[i], strcmp(fns[i], "responseClass") == 0 ? "" : "() function");
    }
    if (rc == 0) rc = jsg_call(iso, fn, def, 0, NULL, &man, err);
    jsg_val mv;
    if (rc == 0) rc = jsg_to_val(iso, man, &a, &mv, err);
    if (rc == 0) rc = comp__read_manifest(m, &mv, err);
    if (iso && !jsg_isolate_dead(iso)) {
        jsg_ref refs[] = {ns, def, fn, man};
        for (size_t i = 0; i < TR_ARRAY_LEN(refs); i++)
            if (refs[i]) jsg_ref_free(iso, refs[i]);
    }
    guest_free(g);
    jsg_isolate_free(iso);
    guest_env_deinit(&env);
    tr_arena_deinit(&a);
    return rc;
}

int comp_module_load_bytes(const char *bytes, size_t len, const char *path, const char *name,
                           const comp_limits *lim, comp_module **out, tr_error *err)
{
    comp_wasm_info info;
    int rc = comp_wasm_parse((const unsigned char *)bytes, len, &info, err);
    if (rc == 0) rc = comp_check(&info, err);
    if (rc < 0) return rc;
    comp_module *m = tr_calloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    m->name = tr_strdup(name);
    m->path = tr_strdup(path);
    m->limits = *lim;
    tr_sha256_hex(bytes, len, m->sha256);
    memcpy(m->version, m->sha256, 12);
    m->version[12] = '\0';
    if (info.js == NULL) {
        /* a compiled component (comp_check accepted it: it exports trail_http) */
        rc = comp__native_load(m, (const unsigned char *)bytes, len, err);
        if (rc < 0) {
            module_free(m);
            return rc;
        }
        *out = m;
        return 0;
    }
    m->js = tr_strndup(info.js, info.js_len);
    m->js_len = info.js_len;
    if (info.source_map != NULL) {
        tr_error serr = {0};
        if (comp_srcmap_parse(info.source_map, info.source_map_len, &m->srcmap, &serr) < 0)
            tr_log_warn("component %s: its source map is ignored: %s", name, serr.msg);
    }
    rc = validate(m, err);
    if (rc < 0) {
        comp_module_map_error(m, err);
        module_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int comp_module_load(const char *path, const char *name, const comp_limits *lim,
                     comp_module **out, tr_error *err)
{
    tr_buf b = TR_BUF_INIT;
    int rc = tr_read_file(path, 256u << 20, &b, err);
    if (rc == 0) rc = comp_module_load_bytes(b.data, b.len, path, name, lim, out, err);
    tr_buf_free(&b);
    return rc;
}
