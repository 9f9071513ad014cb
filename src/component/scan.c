/* component/scan.c: finding the component files under traildepot/wasm/: .wasm files in wasm/,
 * wasm/dist/ and wasm/NAME/dist/, never anything inside node_modules. */
#include "component/component_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void push(comp_paths *out, char *path)
{
    out->paths = tr_realloc(out->paths, (out->len + 1) * sizeof *out->paths);
    out->paths[out->len++] = path;
}

/* Adds dir/NAME for every regular file NAME ending in .wasm. */
static void scan_wasm_files(const char *dir, comp_paths *out)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".wasm")) continue;
        char *path = tr_asprintf("%s/%s", dir, e->d_name);
        if (is_file(path))
            push(out, path);
        else
            tr_free(path);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int comp_scan_dir(const char *wasm_dir, comp_paths *out, tr_error *err)
{
    out->paths = NULL;
    out->len = 0;
    DIR *d = opendir(wasm_dir);
    if (d == NULL) {
        if (errno == ENOENT) return 0;
        return tr_error_set(err, -errno, "cannot read %s: %s", wasm_dir, strerror(errno));
    }
    scan_wasm_files(wasm_dir, out);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0) continue;
        /* wasm/dist/ is the output of a project scaffolded directly in wasm/ (the Quick Start);
         * wasm/NAME/dist/ that of a project in its own folder. */
        char *sub = strcmp(e->d_name, "dist") == 0 ? tr_asprintf("%s/dist", wasm_dir)
                                                   : tr_asprintf("%s/%s/dist", wasm_dir, e->d_name);
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) scan_wasm_files(sub, out);
        tr_free(sub);
    }
    closedir(d);
    if (out->len) qsort(out->paths, out->len, sizeof *out->paths, cmp_str);
    return 0;
}

void comp_paths_free(comp_paths *p)
{
    for (size_t i = 0; i < p->len; i++) tr_free(p->paths[i]);
    tr_free(p->paths);
    p->paths = NULL;
    p->len = 0;
}
