/* component/registry.c: the components of a data directory, their routes in the shared router,
 * and each worker's instances of them. */
#include "component/host.h"
#include "component/native.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "component/component_io.h"

typedef struct binding {
    comp_set *set;
    size_t module, route;
} binding;

struct comp_set {
    comp_module **mods;
    size_t nmods;
    binding *bindings; /* one per registered (method, route); the router points at them */
    size_t nbindings;
};

struct comp_worker {
    comp_set *set;
    guest_env *env;
    comp_instance **insts;
    /* Instances of modules a reload dropped that still had parked requests: freed by the
     * reaper timer once they have none. */
    comp_instance **retiring;
    size_t nretiring;
    loop_timer reaper;
};

static _Thread_local comp_worker *tls_worker;

int comp_set_load_dir(const char *wasm_dir, const comp_limits *lim, comp_set **out,
                      tr_error *err)
{
    comp_paths paths;
    int rc = comp_scan_dir(wasm_dir, &paths, err);
    if (rc < 0) return rc;
    comp_native_cache_beside(wasm_dir);
    comp_set *s = tr_calloc(1, sizeof *s);
    s->mods = tr_calloc(paths.len ? paths.len : 1, sizeof *s->mods);
    for (size_t i = 0; i < paths.len; i++) {
        const char *name = paths.paths[i] + strlen(wasm_dir);
        while (*name == '/') name++;
        tr_error lerr = {0};
        rc = comp_module_load(paths.paths[i], name, lim, &s->mods[s->nmods], &lerr);
        if (rc < 0) {
            tr_error_set(err, rc, "component %s: %s", paths.paths[i], lerr.msg);
            break;
        }
        s->nmods++;
    }
    comp_paths_free(&paths);
    if (rc < 0) {
        comp_set_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

comp_set *comp_set_new(comp_module *const *mods, size_t n)
{
    comp_set *s = tr_calloc(1, sizeof *s);
    s->mods = tr_calloc(n ? n : 1, sizeof *s->mods);
    for (size_t i = 0; i < n; i++) s->mods[s->nmods++] = comp_module_ref(mods[i]);
    return s;
}

void comp_set_free(comp_set *s)
{
    if (s == NULL) return;
    for (size_t i = 0; i < s->nmods; i++) comp_module_unref(s->mods[i]);
    tr_free(s->mods);
    tr_free(s->bindings);
    tr_free(s);
}

size_t comp_set_count(const comp_set *s)
{
    return s->nmods;
}

comp_module *comp_set_module(const comp_set *s, size_t i)
{
    return s->mods[i];
}

static void route_handler(const http_request *req, http_response *res, void *ud)
{
    const binding *b = ud;
    comp_worker *w = tls_worker;
    if (w == NULL || w->set != b->set) {
        http_response_send_error(res, 503, "the component is not loaded on this worker");
        return;
    }
    comp_instance_dispatch(w->insts[b->module], b->route, req, res);
}

static const char *const any_methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                          "OPTIONS"};

/* Does module m have a route of its own for method + path? */
static bool has_route(const comp_module *m, const char *method, const char *path)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (strcmp(m->routes[i].method, method) == 0 && strcmp(m->routes[i].path, path) == 0)
            return true;
    return false;
}

/* Who registered the route a router conflict message names after "conflicts with METHOD ":
 * one of the bindings made so far, or trail itself. */
static void owner_of_conflict(const comp_set *s, const char *method, const char *msg, char *out,
                              size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "conflicts with %s ", method);
    const char *p = strstr(msg, key);
    if (p != NULL) {
        const char *path = p + strlen(key);
        for (size_t i = 0; i < s->nbindings; i++) {
            const binding *b = &s->bindings[i];
            const comp_module *m = s->mods[b->module];
            if (strcmp(m->routes[b->route].path, path) == 0) {
                snprintf(out, cap, "component %s", m->name);
                return;
            }
        }
    }
    snprintf(out, cap, "a built-in route of trail");
}

int comp_set_register_routes(comp_set *s, http_router *r, tr_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < s->nmods; i++)
        total += s->mods[i]->nroutes * (TR_ARRAY_LEN(any_methods) + 1);
    tr_free(s->bindings);
    s->bindings = tr_calloc(total ? total : 1, sizeof *s->bindings);
    s->nbindings = 0;
    for (size_t i = 0; i < s->nmods; i++) {
        const comp_module *m = s->mods[i];
        for (size_t k = 0; k < m->nroutes; k++) {
            const comp_route *cr = &m->routes[k];
            bool any = strcmp(cr->method, "*") == 0;
            /* all(): a route of its own for each usual method (so that two components that
             * both claim one conflict, as they would with explicit routes), then "*" for every
             * other method a client may send (PROPFIND, MKCOL, ...) */
            for (size_t j = 0; j < (any ? TR_ARRAY_LEN(any_methods) + 1 : 1); j++) {
                const char *method = !any                            ? cr->method
                                     : j < TR_ARRAY_LEN(any_methods) ? any_methods[j]
                                                                     : "*";
                if (any && j < TR_ARRAY_LEN(any_methods) && has_route(m, method, cr->path))
                    continue;
                binding *b = &s->bindings[s->nbindings];
                *b = (binding){s, i, k};
                tr_error rerr = {0};
                int rc = http_router_add(r, method, cr->path, route_handler, b, &rerr);
                if (rc == 0) s->nbindings++;
                if (rc == TR_ECONFLICT) {
                    char owner[400];
                    owner_of_conflict(s, method, rerr.msg, owner, sizeof owner);
                    return tr_error_set(err, rc,
                                        "route %s %s of component %s conflicts with %s: %s",
                                        method, cr->path, m->name, owner, rerr.msg);
                }
                if (rc < 0)
                    return tr_error_set(err, rc, "route %s %s of component %s: %s", method,
                                        cr->path, m->name, rerr.msg);
            }
        }
    }
    return 0;
}

static void reap(loop *l, loop_timer *t)
{
    comp_worker *w = (comp_worker *)((char *)t - offsetof(comp_worker, reaper));
    size_t kept = 0;
    for (size_t i = 0; i < w->nretiring; i++) {
        if (comp_instance_parked(w->retiring[i]) == 0)
            comp_instance_free(w->retiring[i]);
        else
            w->retiring[kept++] = w->retiring[i];
    }
    w->nretiring = kept;
    if (kept) loop_timer_start(l, t, 50);
}

int comp_worker_new(comp_set *s, guest_env *env, comp_worker **out, tr_error *err)
{
    comp_worker *w = tr_calloc(1, sizeof *w);
    w->set = s;
    w->env = env;
    loop_timer_init(&w->reaper, reap);
    w->insts = tr_calloc(s->nmods ? s->nmods : 1, sizeof *w->insts);
    for (size_t i = 0; i < s->nmods; i++) {
        tr_error ierr = {0};
        int rc = comp_instance_new(s->mods[i], env, &w->insts[i], &ierr);
        if (rc < 0) {
            tr_error_set(err, rc, "component %s: %s", s->mods[i]->name, ierr.msg);
            comp_worker_free(w);
            return rc;
        }
    }
    tls_worker = w;
    *out = w;
    return 0;
}

void comp_worker_free(comp_worker *w)
{
    if (w == NULL) return;
    if (tls_worker == w) tls_worker = NULL;
    for (size_t i = 0; i < w->set->nmods; i++) comp_instance_free(w->insts[i]);
    for (size_t i = 0; i < w->nretiring; i++) comp_instance_free(w->retiring[i]);
    if (w->env && w->env->loop) loop_timer_stop(w->env->loop, &w->reaper);
    tr_free(w->retiring);
    tr_free(w->insts);
    tr_free(w);
}

int comp_worker_switch(comp_worker **wp, comp_set *set, guest_env *env, tr_error *err)
{
    comp_worker *old = *wp;
    comp_worker *w = tr_calloc(1, sizeof *w);
    w->set = set;
    w->env = env;
    loop_timer_init(&w->reaper, reap);
    w->insts = tr_calloc(set->nmods ? set->nmods : 1, sizeof *w->insts);
    bool *kept = tr_calloc(old && old->set->nmods ? old->set->nmods : 1, sizeof *kept);
    int rc = 0;
    for (size_t i = 0; i < set->nmods && rc == 0; i++) {
        for (size_t j = 0; old && j < old->set->nmods; j++) {
            if (old->set->mods[j] == set->mods[i] && !kept[j]) {
                w->insts[i] = old->insts[j];
                kept[j] = true;
                break;
            }
        }
        if (w->insts[i] == NULL) {
            tr_error ierr = {0};
            rc = comp_instance_new(set->mods[i], env, &w->insts[i], &ierr);
            if (rc < 0) tr_error_set(err, rc, "component %s: %s", set->mods[i]->name, ierr.msg);
        }
    }
    if (rc < 0) {
        /* Undo: free only what was created here. */
        for (size_t i = 0; i < set->nmods; i++) {
            bool reused = false;
            for (size_t j = 0; old && j < old->set->nmods; j++)
                reused = reused || (kept[j] && old->insts[j] == w->insts[i]);
            if (!reused) comp_instance_free(w->insts[i]);
        }
        tr_free(kept);
        tr_free(w->insts);
        tr_free(w);
        return rc;
    }
    /* Old instances not carried over retire; the retiring ones of old come along. */
    size_t nold = old ? old->set->nmods : 0;
    w->retiring = tr_calloc(nold + (old ? old->nretiring : 0) + 1, sizeof *w->retiring);
    for (size_t j = 0; j < nold; j++)
        if (!kept[j]) w->retiring[w->nretiring++] = old->insts[j];
    for (size_t j = 0; old && j < old->nretiring; j++) w->retiring[w->nretiring++] = old->retiring[j];
    tr_free(kept);
    if (old) {
        if (env->loop) loop_timer_stop(env->loop, &old->reaper);
        tr_free(old->retiring);
        tr_free(old->insts);
        tr_free(old);
    }
    if (w->nretiring && env->loop) loop_timer_start(env->loop, &w->reaper, 0);
    tls_worker = w;
    *wp = w;
    return 0;
}

comp_instance *comp_worker_instance(comp_worker *w, size_t module)
{
    return w->insts[module];
}

comp_instance *comp_worker_find(comp_worker *w, const comp_module *m)
{
    for (size_t i = 0; i < w->set->nmods; i++)
        if (w->set->mods[i] == m) return w->insts[i];
    return NULL;
}

comp_worker *comp_worker_current(void)
{
    return tls_worker;
}

guest_env *comp_worker_env(comp_worker *w)
{
    return w->env;
}

comp_set *comp_worker_set(comp_worker *w)
{
    return w->set;
}
