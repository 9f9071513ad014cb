/* cli/scaffold.c: the first-party component trailbase-guest-ts: a TypeScript project written
 * into DATA_DIR/wasm/ from files embedded in trail (package.json, tsconfig.json, index.ts and
 * the trailbase-wasm SDK as an npm tarball), so that `npm install` needs only the public registry.
 *
 * DESIGN: user work is never destroyed. `add` refuses when a project is there already; `update`
 * rewrites only the SDK tarball; `remove` deletes what trail wrote and the user did not change,
 * plus build output and node_modules, and keeps everything else (sources first of all). */
#include "cli/cli_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/embedded.h"
#include "component/component.h"

static bool is_sdk_tarball(const tr_embedded_file *f)
{
    size_t n = strlen(f->path);
    return strncmp(f->path, "trailbase-wasm-", 15) == 0 && n > 4 && strcmp(f->path + n - 4, ".tgz") == 0;
}

static size_t file_len(const tr_embedded_file *f)
{
    return (size_t)(f->end - f->start);
}

static int mkdirs_for(const char *path)
{
    char *p = tr_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = -errno;
            tr_free(p);
            return e;
        }
        *s = '/';
    }
    tr_free(p);
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* True when path holds exactly the bytes of f. */
static bool same_bytes(const char *path, const tr_embedded_file *f)
{
    tr_buf cur = TR_BUF_INIT;
    bool same = tr_read_file(path, file_len(f) + 1, &cur, NULL) == 0 && cur.len == file_len(f) &&
                (cur.len == 0 || memcmp(cur.data, f->start, cur.len) == 0);
    tr_buf_free(&cur);
    return same;
}

bool cli__first_party_installed(const char *name, const char *wasm_dir)
{
    (void)name; /* one first-party component so far */
    char *pkg = tr_asprintf("%s/package.json", wasm_dir);
    tr_buf b = TR_BUF_INIT;
    bool yes = tr_read_file(pkg, 1 << 20, &b, NULL) == 0 && strstr(b.data, "trailbase-wasm");
    tr_buf_free(&b);
    tr_free(pkg);
    return yes;
}

int cli__scaffold_first_party(const char *name, const char *wasm_dir, bool update)
{
    if (!update && cli__first_party_installed(name, wasm_dir)) {
        fprintf(stderr,
                "trail components: %s is already installed in %s (to refresh its SDK: trail "
                "components update)\n",
                name, wasm_dir);
        return 1;
    }
    if (cli_embedded_files_len == 0) {
        fprintf(stderr, "trail components: this trail was built without the %s files\n", name);
        return 1;
    }
    tr_buf written = TR_BUF_INIT;
    for (size_t i = 0; i < cli_embedded_files_len; i++) {
        const tr_embedded_file *f = &cli_embedded_files[i];
        /* update refreshes the SDK; add writes every file the project does not have yet. */
        if (update && !is_sdk_tarball(f)) continue;
        char *dest = tr_asprintf("%s/%s", wasm_dir, f->path);
        tr_error err = {0};
        int rc = 0;
        if (!update && exists(dest)) {
            /* keep the user's file */
        } else if (update && same_bytes(dest, f)) {
            /* nothing to update */
        } else if ((rc = mkdirs_for(dest)) < 0) {
            fprintf(stderr, "trail components: cannot create the folder of %s: %s\n", dest,
                    strerror(-rc));
        } else if ((rc = tr_write_file_atomic(dest, f->start, file_len(f), &err)) < 0) {
            fprintf(stderr, "trail components: %s\n", err.msg);
        } else {
            tr_buf_printf(&written, "  %s\n", f->path);
        }
        tr_free(dest);
        if (rc < 0) {
            tr_buf_free(&written);
            return 1;
        }
    }
    if (update && written.len == 0) {
        printf("%s in %s is already up to date\n", name, wasm_dir);
    } else if (update) {
        printf("Updated %s in %s:\n%s", name, wasm_dir, written.data ? written.data : "");
        printf("Next: cd %s && npm install && npm run build\n", wasm_dir);
    } else {
        printf("Installed %s into %s:\n%s", name, wasm_dir, written.data ? written.data : "");
        printf("Next: cd %s && npm install && npm run build\n", wasm_dir);
    }
    tr_buf_free(&written);
    return 0;
}

bool cli__print_first_party_status(const char *wasm_dir)
{
    if (!cli__first_party_installed("trailbase-guest-ts", wasm_dir)) return false;
    char *dist = tr_asprintf("%s/dist/component.wasm", wasm_dir);
    printf("%-32s  TypeScript project in %s, %s\n", "trailbase-guest-ts", wasm_dir,
           exists(dist) ? "built to dist/component.wasm"
                        : "not built yet (npm install && npm run build)");
    tr_free(dist);
    return true;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* Removes path and everything below it without following symbolic links; a missing path is
 * fine. */
static int rm_tree(const char *path)
{
    if (!exists(path)) return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

int cli__remove_first_party(const char *name, const char *wasm_dir)
{
    if (!cli__first_party_installed(name, wasm_dir)) {
        fprintf(stderr, "trail components: %s is not installed in %s\n", name, wasm_dir);
        return 1;
    }
    tr_buf kept = TR_BUF_INIT;
    for (size_t i = 0; i < cli_embedded_files_len; i++) {
        const tr_embedded_file *f = &cli_embedded_files[i];
        char *path = tr_asprintf("%s/%s", wasm_dir, f->path);
        tr_buf cur = TR_BUF_INIT;
        if (tr_read_file(path, 64u << 20, &cur, NULL) == 0) {
            bool unchanged = cur.len == file_len(f) && memcmp(cur.data, f->start, cur.len) == 0;
            if (unchanged || is_sdk_tarball(f))
                unlink(path);
            else
                tr_buf_printf(&kept, " %s", f->path);
        }
        tr_buf_free(&cur);
        tr_free(path);
    }
    static const char *const generated[] = {"dist", "node_modules", "package-lock.json"};
    for (size_t i = 0; i < TR_ARRAY_LEN(generated); i++) {
        char *path = tr_asprintf("%s/%s", wasm_dir, generated[i]);
        rm_tree(path);
        tr_free(path);
    }
    printf("Removed %s from %s", name, wasm_dir);
    if (kept.len) printf(" (kept your changed files:%s)", kept.data);
    printf("\n");
    tr_buf_free(&kept);
    return 0;
}

void cli__print_manifest(const char *bytes, size_t len)
{
    /* Loading evaluates the component in a scratch isolate, as `trail run` would. */
    comp_limits lim = {64u << 20, 10000, 30000};
    comp_module *m = NULL;
    tr_error err = {0};
    if (comp_module_load_bytes(bytes, len, "", "", &lim, &m, &err) < 0) {
        printf("    does not load: %.*s\n", (int)strcspn(err.msg, "\n"), err.msg);
        return;
    }
    for (size_t i = 0; i < comp_module_nroutes(m); i++)
        printf("    route %-7s %s\n", comp_module_route(m, i)->method,
               comp_module_route(m, i)->path);
    for (size_t i = 0; i < comp_module_njobs(m); i++)
        printf("    job   %-24s %s\n", comp_module_job(m, i)->name,
               comp_module_job(m, i)->schedule);
    if (comp_module_nroutes(m) == 0 && comp_module_njobs(m) == 0)
        printf("    (no routes, no jobs)\n");
    comp_module_unref(m);
}
