/* cli/scaffold_c.c: the first-party component trailbase-guest-c: a C project written into
 * DATA_DIR/wasm/ from files embedded in trail (main.c with the Quick Start's endpoints, the SDK's
 * one header trailbase.h, a Makefile, a README). `make` there writes dist/component.wasm.
 *
 * DESIGN: as for the TypeScript project (cli/scaffold.c), user work is never destroyed: `add`
 * refuses when any of the files exists; `remove` deletes the files trail wrote that the user did
 * not change, and dist/, and keeps the rest. */
#include "cli/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/embed.h"

extern const tr_embedded_file cli_guest_c_files[];
extern const size_t cli_guest_c_files_len;

static size_t file_len(const tr_embedded_file *f)
{
    return (size_t)(f->end - f->start);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool cli__c_installed(const char *wasm_dir)
{
    char *p = tr_asprintf("%s/trailbase.h", wasm_dir);
    bool yes = exists(p);
    tr_free(p);
    return yes;
}

int cli__scaffold_c(const char *wasm_dir)
{
    /* Another project in wasm/ would build the same dist/component.wasm. */
    static const char *const others[] = {"package.json", "Cargo.toml"};
    for (size_t i = 0; i < TR_ARRAY_LEN(others); i++) {
        char *p = tr_asprintf("%s/%s", wasm_dir, others[i]);
        bool there = exists(p);
        if (there)
            fprintf(stderr,
                    "trail components: %s holds another project (%s), which also builds "
                    "dist/component.wasm (remove it first)\n",
                    wasm_dir, others[i]);
        tr_free(p);
        if (there) return 1;
    }
    for (size_t i = 0; i < cli_guest_c_files_len; i++) {
        char *p = tr_asprintf("%s/%s", wasm_dir, cli_guest_c_files[i].path);
        bool there = exists(p);
        if (there)
            fprintf(stderr,
                    "trail components: %s exists already; trailbase-guest-c writes main.c, "
                    "trailbase.h, Makefile and README.md into %s (remove them first)\n",
                    p, wasm_dir);
        tr_free(p);
        if (there) return 1;
    }
    char *cmd_dir = tr_strdup(wasm_dir);
    for (char *s = cmd_dir + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        mkdir(cmd_dir, 0755);
        *s = '/';
    }
    mkdir(cmd_dir, 0755);
    tr_free(cmd_dir);
    for (size_t i = 0; i < cli_guest_c_files_len; i++) {
        const tr_embedded_file *f = &cli_guest_c_files[i];
        char *p = tr_asprintf("%s/%s", wasm_dir, f->path);
        tr_error err = {0};
        int rc = tr_write_file_atomic(p, f->start, file_len(f), &err);
        tr_free(p);
        if (rc < 0) {
            fprintf(stderr, "trail components: %s\n", err.msg);
            return 1;
        }
    }
    printf("Installed trailbase-guest-c in %s\n\n"
           "Next:\n"
           "  cd %s && make     # builds dist/component.wasm (clang, wasi-libc)\n"
           "  trail run          # serves GET /hello, GET /greet/:name, POST /json\n",
           wasm_dir, wasm_dir);
    return 0;
}

int cli__remove_c(const char *wasm_dir)
{
    if (!cli__c_installed(wasm_dir)) {
        fprintf(stderr, "trail components: trailbase-guest-c is not installed in %s\n", wasm_dir);
        return 1;
    }
    for (size_t i = 0; i < cli_guest_c_files_len; i++) {
        const tr_embedded_file *f = &cli_guest_c_files[i];
        char *p = tr_asprintf("%s/%s", wasm_dir, f->path);
        tr_buf cur = TR_BUF_INIT;
        bool same = tr_read_file(p, file_len(f) + 1, &cur, NULL) == 0 &&
                    cur.len == file_len(f) && memcmp(cur.data, f->start, cur.len) == 0;
        tr_buf_free(&cur);
        if (same)
            unlink(p);
        else if (exists(p))
            printf("Kept %s (changed since it was written)\n", p);
        tr_free(p);
    }
    char *dist = tr_asprintf("%s/dist/component.wasm", wasm_dir);
    unlink(dist);
    tr_free(dist);
    dist = tr_asprintf("%s/dist", wasm_dir);
    rmdir(dist);
    tr_free(dist);
    printf("Removed trailbase-guest-c from %s\n", wasm_dir);
    return 0;
}
