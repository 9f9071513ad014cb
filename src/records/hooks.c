/* records/hooks.c: finding the guests' record hooks (trailbase-wasm/records) for a write on
 * the calling worker: every component of the worker's set, in order, with their hooks in the
 * order each declares them. */
#include "records/records_internal.h"

#include <string.h>

#include "component/component.h"

const guest_env *rec__worker_env(void)
{
    comp_worker *w = comp_worker_current();
    return w ? comp_worker_env(w) : NULL;
}

size_t rec__hooks_find(const rec_api *api, int event, rec_hook_ref *out, size_t cap)
{
    comp_worker *w = comp_worker_current();
    if (w == NULL) return 0;
    comp_set *set = comp_worker_set(w);
    size_t n = 0;
    for (size_t i = 0; set && i < comp_set_count(set); i++) {
        const comp_module *m = comp_set_module(set, i);
        for (size_t j = 0; j < comp_module_nhooks(m); j++) {
            const comp_record_hook *hk = comp_module_hook(m, j);
            if ((int)hk->event != event || strcmp(hk->api, api->name) != 0) continue;
            comp_instance *ci = comp_worker_find(w, m);
            if (ci == NULL || n == cap) continue;
            out[n].ci = ci;
            out[n].idx = j;
            out[n].module = comp_module_name(m);
            n++;
        }
    }
    return n;
}

int rec__hook_run(const rec_hook_ref *h, const char *ctx, size_t len, tr_buf *out, tr_error *err)
{
    /* Cluster mode: a guest's statement goes to the leader from the helper thread on another
     * connection and is answered later from the loop, but a hook must finish at once, and a
     * before hook's statements belong inside the write's transaction, which is open on this
     * thread's connection to the leader: they run there, at once (guest_sql_hook_sync). */
    const guest_env *env = adb_cluster_mode() ? rec__worker_env() : NULL;
    if (env && env->sql) guest_sql_hook_sync(env->sql, true);
    int rc = comp_instance_record_hook(h->ci, h->idx, ctx, len, out, err);
    if (env && env->sql) guest_sql_hook_sync(env->sql, false);
    return rc;
}
