/* cli/scaffold.c: the first-party components, projects written into DATA_DIR/wasm/ from files
 * embedded in trail. trailbase-guest-ts: a TypeScript project (package.json, tsconfig.json,
 * index.ts and the trailbase-wasm SDK as an npm tarball), so that `npm install` needs only the
 * public registry. trailbase-guest-rust: a Cargo project (Cargo.toml, src/lib.rs, build.sh) with
 * the trailbase-wasm crate in trailbase-wasm/, so that building needs no download at all.
 *
 * DESIGN: the embedded table holds both; a Rust file's name starts with "trailbase-guest-rust/",
 * which is not written. User work is never destroyed. `add` refuses when a project is there
 * already (either kind: both would build dist/component.wasm); `update` rewrites only the SDK
 * (tarball or crate); `remove` deletes what trail wrote and the user did not change, plus build
 * output and dependencies, and keeps everything else (sources first of all). */
#include "cli/cli_internal.h"

#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/embedded.h"
#include "component/component.h"

#define RUST_PREFIX "trailbase-guest-rust/"

/* One first-party project: which embedded files are its, the file that marks it installed, and
 * what is generated when it is built. */
typedef struct project {
    const char *name;
    bool rust;
    const char *marker;       /* holds "trailbase-wasm" when installed */
    const char *build_hint;   /* the command that builds it, run in wasm_dir */
    const char *generated[4]; /* build output and dependencies, removed with it */
} project;

static const project projects[] = {
    {"trailbase-guest-ts",
     false,
     "package.json",
     "npm install && npm run build",
     {"dist", "node_modules", "package-lock.json", NULL}},
    {"trailbase-guest-rust",
     true,
     "Cargo.toml",
     "./build.sh",
     {"dist", "target", "Cargo.lock", NULL}},
};

static const project *find_project(const char *name)
{
    for (size_t i = 0; i < TR_ARRAY_LEN(projects); i++)
        if (strcmp(projects[i].name, name) == 0) return &projects[i];
    return NULL;
}

/* The name f is written under in a project's folder, or NULL when f is not the project's. */
static const char *rel_path(const project *p, const tr_embedded_file *f)
{
    bool rust = strncmp(f->path, RUST_PREFIX, strlen(RUST_PREFIX)) == 0;
    if (rust != p->rust) return NULL;
    return rust ? f->path + strlen(RUST_PREFIX) : f->path;
}

/* The SDK's files: what `update` rewrites and `remove` deletes even when changed. */
static bool is_sdk_file(const char *rel)
{
    size_t n = strlen(rel);
    return (strncmp(rel, "trailbase-wasm-", 15) == 0 && n > 4 &&
            strcmp(rel + n - 4, ".tgz") == 0) ||
           strncmp(rel, "trailbase-wasm/", 15) == 0;
}

static bool is_script(const char *rel)
{
    size_t n = strlen(rel);
    return n > 3 && strcmp(rel + n - 3, ".sh") == 0;
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
    const project *p = find_project(name);
    if (p == NULL) return false;
    char *marker = tr_asprintf("%s/%s", wasm_dir, p->marker);
    tr_buf b = TR_BUF_INIT;
    bool yes = tr_read_file(marker, 1 << 20, &b, NULL) == 0 && strstr(b.data, "trailbase-wasm");
    tr_buf_free(&b);
    tr_free(marker);
    return yes;
}

const char *cli__first_party_build_hint(const char *name)
{
    const project *p = find_project(name);
    return p ? p->build_hint : "";
}

int cli__scaffold_first_party(const char *name, const char *wasm_dir, bool update)
{
    const project *p = find_project(name);
    assert(p != NULL);
    if (!update && cli__first_party_installed(name, wasm_dir)) {
        fprintf(stderr,
                "trail components: %s is already installed in %s (to refresh its SDK: trail "
                "components update)\n",
                name, wasm_dir);
        return 1;
    }
    for (size_t i = 0; i < TR_ARRAY_LEN(projects) && !update; i++) {
        if (&projects[i] == p || !cli__first_party_installed(projects[i].name, wasm_dir)) continue;
        fprintf(stderr,
                "trail components: %s holds the %s project, which also builds "
                "dist/component.wasm (remove it first: trail components remove %s)\n",
                wasm_dir, projects[i].name, projects[i].name);
        return 1;
    }
    if (!update && cli__c_installed(wasm_dir)) {
        fprintf(
            stderr,
            "trail components: %s holds the trailbase-guest-c project, which also builds "
            "dist/component.wasm (remove it first: trail components remove trailbase-guest-c)\n",
            wasm_dir);
        return 1;
    }
    size_t nfiles = 0;
    for (size_t i = 0; i < cli_embedded_files_len; i++)
        if (rel_path(p, &cli_embedded_files[i])) nfiles++;
    if (nfiles == 0) {
        fprintf(stderr, "trail components: this trail was built without the %s files\n", name);
        return 1;
    }
    tr_buf written = TR_BUF_INIT;
    for (size_t i = 0; i < cli_embedded_files_len; i++) {
        const tr_embedded_file *f = &cli_embedded_files[i];
        const char *rel = rel_path(p, f);
        /* update refreshes the SDK; add writes every file the project does not have yet. */
        if (rel == NULL || (update && !is_sdk_file(rel))) continue;
        char *dest = tr_asprintf("%s/%s", wasm_dir, rel);
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
        } else if (is_script(rel) && chmod(dest, 0755) != 0) {
            rc = -errno;
            fprintf(stderr, "trail components: cannot make %s executable: %s\n", dest,
                    strerror(errno));
        } else {
            tr_buf_printf(&written, "  %s\n", rel);
        }
        tr_free(dest);
        if (rc < 0) {
            tr_buf_free(&written);
            return 1;
        }
    }
    if (update && written.len == 0) {
        printf("%s in %s is already up to date\n", name, wasm_dir);
    } else {
        printf("%s %s %s %s:\n%s", update ? "Updated" : "Installed", name, update ? "in" : "into",
               wasm_dir, written.data ? written.data : "");
        printf("Next: cd %s && %s\n", wasm_dir, p->build_hint);
    }
    tr_buf_free(&written);
    return 0;
}

bool cli__print_first_party_status(const char *wasm_dir)
{
    bool any = false;
    for (size_t i = 0; i < TR_ARRAY_LEN(projects); i++) {
        const project *p = &projects[i];
        if (!cli__first_party_installed(p->name, wasm_dir)) continue;
        char *dist = tr_asprintf("%s/dist/component.wasm", wasm_dir);
        printf("%-32s  %s project in %s, ", p->name, p->rust ? "Rust" : "TypeScript", wasm_dir);
        if (exists(dist))
            printf("built to dist/component.wasm\n");
        else
            printf("not built yet (%s)\n", p->build_hint);
        tr_free(dist);
        any = true;
    }
    return any;
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

/* Removes the directories a project's files were in, deepest first, where they are empty now. */
static void remove_empty_dirs(const project *p, const char *wasm_dir)
{
    for (size_t i = cli_embedded_files_len; i-- > 0;) {
        const char *rel = rel_path(p, &cli_embedded_files[i]);
        if (rel == NULL) continue;
        char *path = tr_asprintf("%s/%s", wasm_dir, rel);
        for (char *slash = strrchr(path, '/'); slash && slash > path + strlen(wasm_dir);
             slash = strrchr(path, '/')) {
            *slash = '\0';
            rmdir(path); /* fails, as it should, for a folder that still holds something */
        }
        tr_free(path);
    }
}

int cli__remove_first_party(const char *name, const char *wasm_dir)
{
    const project *p = find_project(name);
    assert(p != NULL);
    if (!cli__first_party_installed(name, wasm_dir)) {
        fprintf(stderr, "trail components: %s is not installed in %s\n", name, wasm_dir);
        return 1;
    }
    tr_buf kept = TR_BUF_INIT;
    for (size_t i = 0; i < cli_embedded_files_len; i++) {
        const tr_embedded_file *f = &cli_embedded_files[i];
        const char *rel = rel_path(p, f);
        if (rel == NULL) continue;
        char *path = tr_asprintf("%s/%s", wasm_dir, rel);
        tr_buf cur = TR_BUF_INIT;
        if (tr_read_file(path, 64u << 20, &cur, NULL) == 0) {
            bool unchanged = cur.len == file_len(f) && memcmp(cur.data, f->start, cur.len) == 0;
            if (unchanged || is_sdk_file(rel))
                unlink(path);
            else
                tr_buf_printf(&kept, " %s", rel);
        }
        tr_buf_free(&cur);
        tr_free(path);
    }
    for (size_t i = 0; i < TR_ARRAY_LEN(p->generated) && p->generated[i]; i++) {
        char *path = tr_asprintf("%s/%s", wasm_dir, p->generated[i]);
        rm_tree(path);
        tr_free(path);
    }
    remove_empty_dirs(p, wasm_dir);
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
