/* cli/cmd_components.c: `trail components list|add|inspect|installed|remove|update`.
 *
 * DESIGN: components live in DATA_DIR/wasm/. A file or URL is validated (a well-formed module
 * for the engine this trail embeds, carrying trailbase.js) before it is written there
 * atomically. First-party components are projects scaffolded from files embedded in trail.
 * Every error is one line on stderr and exit status 1; usage errors exit 2. */
#include "cli/cli_internal.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "component/component.h"

typedef struct first_party {
    const char *name;
    const char *summary;
} first_party;

static const first_party first_parties[] = {
    {"trailbase-guest-ts", "TypeScript/JavaScript runtime"},
    {"trailbase-guest-rust", "Rust runtime"},
    {"trailbase-guest-c", "C runtime"},
};

#define DOWNLOAD_TIMEOUT_MS 120000L

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: trail components <command> [--data-dir DIR]\n\n"
            "Commands:\n"
            "  list               list the first-party components available\n"
            "  add NAME|FILE|URL  install a first-party component, a .wasm file, or a .wasm URL\n"
            "  inspect NAME|FILE  show an installed component or a .wasm file: size, SHA-256,\n"
            "                     version, engine, routes and jobs\n"
            "  installed          list installed components with size, hash, engine, routes, jobs\n"
            "  remove NAME        remove an installed component\n"
            "  update             update the SDK of the installed first-party components\n\n"
            "Options:\n"
            "  --data-dir DIR     the data directory (default ./traildepot)\n");
}

static const first_party *find_first_party(const char *name)
{
    for (size_t i = 0; i < TR_ARRAY_LEN(first_parties); i++)
        if (strcmp(first_parties[i].name, name) == 0) return &first_parties[i];
    return NULL;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trail components: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int mkdir_p(const char *path)
{
    char *p = tr_strdup(path);
    int rc = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = -errno;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) != 0 && errno != EEXIST) rc = -errno;
    tr_free(p);
    return rc;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* The file name a component is installed under: the last path segment of a file or URL,
 * with any query or fragment dropped; only [A-Za-z0-9._-], not starting with a dot, ending
 * in .wasm (added when missing). NULL when nothing usable remains. */
static char *install_name(const char *src)
{
    const char *end = src + strcspn(src, "?#");
    const char *start = end;
    while (start > src && start[-1] != '/')
        start--;
    tr_buf b = TR_BUF_INIT;
    for (const char *p = start; p < end; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        tr_buf_append_char(&b, ok ? c : '_');
    }
    if (b.len == 0 || b.data[0] == '.') {
        tr_buf_free(&b);
        return NULL;
    }
    if (b.len < 5 || strcmp(b.data + b.len - 5, ".wasm") != 0) tr_buf_append_str(&b, ".wasm");
    return tr_buf_take(&b, NULL);
}

/* A compiled component is compiled now, into the data directory's cache, so that the server
 * loads it at once; a module that cannot be compiled is refused here. */
static int compile_native(const char *wasm_dir, const char *src, const tr_buf *bytes)
{
    comp_native_cache_beside(wasm_dir);
    comp_native *n = NULL;
    uint64_t ms = 0;
    tr_error err = {0};
    if (comp_native_compile((const unsigned char *)bytes->data, bytes->len, &n, &ms, &err) < 0)
        return fail("%s: %s", src, err.msg);
    if (ms > 0) printf("Compiled %s to native code in %llu ms\n", src, (unsigned long long)ms);
    comp_native_free(n);
    return 0;
}

static int add_bytes(const char *wasm_dir, const char *src, const tr_buf *bytes)
{
    comp_wasm_info info;
    tr_error err = {0};
    if (comp_wasm_parse((const unsigned char *)bytes->data, bytes->len, &info, &err) < 0 ||
        comp_check(&info, &err) < 0)
        return fail("%s: %s", src, err.msg);
    char *name = install_name(src);
    if (name == NULL) return fail("%s: cannot derive a file name to install it under", src);
    char *dest = tr_asprintf("%s/%s", wasm_dir, name);
    int rc = 0;
    struct stat st;
    if (stat(dest, &st) == 0) {
        rc = fail("%s is already installed as %s (remove it first: trail components remove %s)",
                  src, dest, name);
    } else if (mkdir_p(wasm_dir) < 0) {
        rc = fail("cannot create %s: %s", wasm_dir, strerror(errno));
    } else if (info.js == NULL && (rc = compile_native(wasm_dir, src, bytes)) != 0) {
        /* compile_native() said why */
    } else if (tr_write_file_atomic(dest, bytes->data, bytes->len, &err) < 0) {
        rc = fail("%s", err.msg);
    } else if (info.js == NULL) {
        printf("Installed %s (%zu bytes, a compiled component) as %s\n", src, bytes->len, dest);
    } else {
        printf("Installed %s (%zu bytes, %.*s) as %s\n", src, bytes->len,
               (int)TR_MIN(info.engine_len, 100), info.engine ? info.engine : "", dest);
    }
    tr_free(dest);
    tr_free(name);
    return rc;
}

static int cmd_add(const char *data_dir, const char *what)
{
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    int rc;
    if (strcmp(what, "trailbase-guest-c") == 0) {
        rc = cli__scaffold_c(wasm_dir);
    } else if (find_first_party(what) != NULL) {
        rc = cli__scaffold_first_party(what, wasm_dir, false);
    } else {
        tr_buf bytes = TR_BUF_INIT;
        tr_error err = {0};
        if (is_url(what)) {
            rc = comp_download(what, COMP_MAX_FILE_BYTES, DOWNLOAD_TIMEOUT_MS, &bytes, &err);
        } else {
            struct stat st;
            if (stat(what, &st) != 0 && strchr(what, '/') == NULL && !strstr(what, ".wasm"))
                rc = tr_error_set(&err, TR_ENOTFOUND,
                                  "'%s' is neither a first-party component (see `trail "
                                  "components list`), nor a file, nor an http(s) URL",
                                  what);
            else
                rc = tr_read_file(what, COMP_MAX_FILE_BYTES, &bytes, &err);
        }
        rc = rc < 0 ? fail("%s", err.msg) : add_bytes(wasm_dir, what, &bytes);
        tr_buf_free(&bytes);
    }
    tr_free(wasm_dir);
    return rc;
}

static void print_component(const char *path, const char *wasm_dir)
{
    tr_buf bytes = TR_BUF_INIT;
    tr_error err = {0};
    const char *rel = path + strlen(wasm_dir) + 1;
    if (tr_read_file(path, COMP_MAX_FILE_BYTES, &bytes, &err) < 0) {
        printf("%-32s  unreadable: %s\n", rel, err.msg);
        return;
    }
    char hex[65];
    tr_sha256_hex(bytes.data, bytes.len, hex);
    comp_wasm_info info;
    const char *status = "";
    char engine[128] = "?";
    if (comp_wasm_parse((const unsigned char *)bytes.data, bytes.len, &info, &err) < 0) {
        status = "  (corrupt: will not load)";
    } else {
        if (info.engine)
            snprintf(engine, sizeof engine, "%.*s", (int)TR_MIN(info.engine_len, 100), info.engine);
        if (comp_check(&info, &err) < 0) status = "  (will not load: see `trail run`)";
        if (info.js == NULL && info.exports_trail_http) snprintf(engine, sizeof engine, "compiled");
    }
    printf("%-32s  %9zu bytes  sha256:%.12s  %s%s\n", rel, bytes.len, hex, engine, status);
    if (status[0] == '\0') cli__print_manifest(bytes.data, bytes.len);
    tr_buf_free(&bytes);
}

static int cmd_installed(const char *data_dir)
{
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    comp_paths paths;
    tr_error err = {0};
    comp_native_cache_beside(wasm_dir);
    if (comp_scan_dir(wasm_dir, &paths, &err) < 0) {
        tr_free(wasm_dir);
        return fail("%s", err.msg);
    }
    bool any = cli__print_first_party_status(wasm_dir);
    for (size_t i = 0; i < paths.len; i++)
        print_component(paths.paths[i], wasm_dir);
    if (!any && paths.len == 0) printf("No components installed in %s\n", wasm_dir);
    comp_paths_free(&paths);
    tr_free(wasm_dir);
    return 0;
}

static int cmd_remove(const char *data_dir, const char *name)
{
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    int rc;
    if (strcmp(name, "trailbase-guest-c") == 0) {
        rc = cli__remove_c(wasm_dir);
    } else if (find_first_party(name) != NULL) {
        rc = cli__remove_first_party(name, wasm_dir);
    } else if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0') {
        rc = fail("'%s' is not an installed component name (see `trail components installed`)",
                  name);
    } else {
        char *path = tr_asprintf("%s/%s", wasm_dir, name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            tr_free(path);
            path = tr_asprintf("%s/%s.wasm", wasm_dir, name);
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            rc = fail("'%s' is not installed in %s (see `trail components installed`)", name,
                      wasm_dir);
        else if (unlink(path) != 0)
            rc = fail("cannot remove %s: %s", path, strerror(errno));
        else {
            printf("Removed %s\n", path);
            rc = 0;
        }
        tr_free(path);
    }
    tr_free(wasm_dir);
    return rc;
}

/* The file `inspect WHAT` means: the build output of a first-party project, an installed
 * component (its name under wasm/, with or without .wasm), or else a file path. NULL with a
 * message printed when there is none. */
static char *inspect_path(const char *data_dir, const char *what, char **name)
{
    *name = NULL;
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    char *path = NULL;
    if (find_first_party(what) != NULL) {
        if (!cli__first_party_installed(what, wasm_dir))
            fail("%s is not installed in %s (install it: trail components add %s)", what, wasm_dir,
                 what);
        else if (access((path = tr_asprintf("%s/dist/component.wasm", wasm_dir)), F_OK) != 0)
            fail("%s in %s is not built yet (build it: cd %s && %s)", what, wasm_dir, wasm_dir,
                 cli__first_party_build_hint(what));
        else {
            *name = tr_strdup("dist/component.wasm");
            goto out;
        }
        tr_free(path);
        path = NULL;
        goto out;
    }
    comp_paths paths;
    if (strchr(what, '/') == NULL && comp_scan_dir(wasm_dir, &paths, NULL) == 0) {
        size_t wl = strlen(what);
        for (size_t i = 0; i < paths.len && path == NULL; i++) {
            const char *rel = paths.paths[i] + strlen(wasm_dir) + 1;
            size_t rl = strlen(rel);
            if (strcmp(rel, what) == 0 ||
                (rl == wl + 5 && strncmp(rel, what, wl) == 0 && strcmp(rel + wl, ".wasm") == 0)) {
                path = tr_strdup(paths.paths[i]);
                *name = tr_strdup(rel);
            }
        }
        comp_paths_free(&paths);
    }
    struct stat st;
    if (path == NULL && stat(what, &st) == 0) path = tr_strdup(what);
    if (path == NULL)
        fail("'%s' is neither an installed component of %s (see `trail components installed`) "
             "nor a file",
             what, wasm_dir);
out:
    tr_free(wasm_dir);
    return path;
}

/* Everything trail knows about one component file, the way `trail run` would load it. Exit
 * status 1 when trail would not load it. */
static int cmd_inspect(const char *data_dir, const char *what)
{
    char *name;
    char *path = inspect_path(data_dir, what, &name);
    if (name) {
        /* an installed compiled component: loading it uses (and fills) the server's cache */
        char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
        comp_native_cache_beside(wasm_dir);
        tr_free(wasm_dir);
    }
    if (path == NULL) return 1;
    tr_buf bytes = TR_BUF_INIT;
    tr_error err = {0};
    int status = 1;
    if (tr_read_file(path, COMP_MAX_FILE_BYTES, &bytes, &err) < 0) {
        fail("%s", err.msg);
        goto out;
    }
    char hex[65];
    tr_sha256_hex(bytes.data, bytes.len, hex);
    if (name) printf("component %s (installed in %s/wasm)\n", name, data_dir);
    printf("file      %s\n", path);
    printf("size      %zu bytes\n", bytes.len);
    printf("sha256    %s\n", hex);
    printf("version   %.12s (the SHA-256's first 12 digits, as `trail run` logs it)\n", hex);
    comp_wasm_info info;
    if (comp_wasm_parse((const unsigned char *)bytes.data, bytes.len, &info, &err) < 0) {
        printf("status    not a component trail can load: %s\n", err.msg);
        goto out;
    }
    if (info.engine)
        printf("engine    %.*s\n", (int)TR_MIN(info.engine_len, 100), info.engine);
    else if (info.js == NULL && info.exports_trail_http)
        printf("engine    none: a compiled component (native code by wasm2c and cc)\n");
    else
        printf("engine    (not named in the file)\n");
    if (info.js)
        printf("code      %zu bytes of JavaScript%s\n", info.js_len,
               info.source_map ? ", with a source map" : "");
    if (comp_check(&info, &err) < 0) {
        printf("status    will not load: %s\n", err.msg);
        goto out;
    }
    /* Loading evaluates the component in a scratch isolate, as `trail run` does. */
    comp_limits lim = {64u << 20, 10000, 30000};
    comp_module *m = NULL;
    if (comp_module_load_bytes(bytes.data, bytes.len, path, name ? name : what, &lim, &m, &err) <
        0) {
        printf("status    does not load: %s\n", err.msg);
        goto out;
    }
    printf("routes    %zu\n", comp_module_nroutes(m));
    for (size_t i = 0; i < comp_module_nroutes(m); i++)
        printf("  %-7s %s\n", comp_module_route(m, i)->method, comp_module_route(m, i)->path);
    printf("jobs      %zu\n", comp_module_njobs(m));
    for (size_t i = 0; i < comp_module_njobs(m); i++)
        printf("  %-24s %s\n", comp_module_job(m, i)->name, comp_module_job(m, i)->schedule);
    printf("status    loads\n");
    comp_module_unref(m);
    status = 0;
out:
    tr_buf_free(&bytes);
    tr_free(name);
    tr_free(path);
    return status;
}

static int cmd_list(void)
{
    printf("Available first-party components:\n");
    for (size_t i = 0; i < TR_ARRAY_LEN(first_parties); i++)
        printf("- %s (%s)\n", first_parties[i].name, first_parties[i].summary);
    return 0;
}

static int cmd_update(const char *data_dir)
{
    char *wasm_dir = tr_asprintf("%s/wasm", data_dir);
    int updated = 0, rc = 0;
    for (size_t i = 0; i < TR_ARRAY_LEN(first_parties) && rc == 0; i++) {
        if (!cli__first_party_installed(first_parties[i].name, wasm_dir)) continue;
        rc = cli__scaffold_first_party(first_parties[i].name, wasm_dir, true);
        updated++;
    }
    if (rc == 0 && updated == 0) printf("No first-party components installed in %s\n", wasm_dir);
    tr_free(wasm_dir);
    return rc;
}

int cli_components(int argc, char **argv)
{
    const char *data_dir = "traildepot";
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'd') {
            data_dir = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* Options may also follow the subcommand: `trail components add x --data-dir d`. */
    char *rest[8];
    int nrest = 0;
    for (int i = optind; i < argc; i++) {
        if (cli__opt(argc, argv, &i, "--data-dir", &data_dir)) continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (nrest < (int)TR_ARRAY_LEN(rest)) {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest == 0) {
        fprintf(stderr, "trail components: missing command\n");
        usage(stderr);
        return 2;
    }
    typedef struct subcommand {
        const char *name;
        int nargs;
    } subcommand;
    static const subcommand subs[] = {{"list", 0},      {"add", 1},    {"inspect", 1},
                                      {"installed", 0}, {"remove", 1}, {"update", 0}};
    const char *cmd = rest[0];
    const subcommand *sub = NULL;
    for (size_t i = 0; i < TR_ARRAY_LEN(subs); i++)
        if (strcmp(subs[i].name, cmd) == 0) sub = &subs[i];
    if (sub == NULL) {
        const char *names[TR_ARRAY_LEN(subs) + 1];
        for (size_t i = 0; i < TR_ARRAY_LEN(subs); i++)
            names[i] = subs[i].name;
        names[TR_ARRAY_LEN(subs)] = NULL;
        return cli__unknown_command("trail components", cmd, names);
    }
    if (nrest > (int)TR_ARRAY_LEN(rest) - 1 || nrest - 1 != sub->nargs) {
        fprintf(stderr, "trail components %s: %s (see `trail components --help`)\n", cmd,
                sub->nargs == 1 ? "expected one argument" : "takes no arguments");
        return 2;
    }
    if (strcmp(cmd, "list") == 0) return cmd_list();
    if (strcmp(cmd, "add") == 0) return cmd_add(data_dir, rest[1]);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(data_dir, rest[1]);
    if (strcmp(cmd, "installed") == 0) return cmd_installed(data_dir);
    if (strcmp(cmd, "remove") == 0) return cmd_remove(data_dir, rest[1]);
    return cmd_update(data_dir);
}
