/* component/native_build.c: turning a compiled guest's module into a loaded shared object:
 * wasm2c, the rewrite of its C (fuel on back edges, the instance's size, one instantiate entry),
 * the system's C compiler, the cache under DATA_DIR/cache/compiled, dlopen.
 *
 * DESIGN: the tools run as child processes in a directory of their own, each in its own process
 * group and killed with it at COMP_NATIVE_COMPILE_TIMEOUT_MS. What the module imports is read from
 * wasm2c's header: every import must be one trail provides, with exactly the C prototype trail
 * defines it with (a guest that declared `log` with other parameters would otherwise call the
 * host with a mismatched signature). The cache entry is written under a temporary name and
 * renamed, so a reader sees a whole object or none; two processes compiling the same module
 * at once both succeed (the last rename wins, with the same bytes). */
#include "component/native_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/embed.h"
#include "base/sha256.h"

extern char **environ;

/* wasm2c's runtime header, as trail was built with it (the Makefile embeds it). */
extern const tr_embedded_file comp_native_files[];
extern const size_t comp_native_files_len;

/* trail's wasm-rt and the generated code must agree on these (the Makefile's WASM_RT_DEFS). */
#if WASM_RT_MEMCHECK_SIGNAL_HANDLER != 1 || WASM_RT_USE_STACK_DEPTH_COUNT != 0
#error "compiled components assume WASM_RT_MEMCHECK_SIGNAL_HANDLER=1 WASM_RT_USE_STACK_DEPTH_COUNT=0"
#endif

/* The wabt release whose wasm2c output trail's runtime implements (wasm-rt.h's ABI). */
#define WABT_VERSION "1.0.32"
/* The version of the rewrite below and of the compiler's options; part of the cache key with
 * the ABI's, the runtime header's bytes and wabt's version, which together are what a cached
 * object depends on. */
#define NATIVE_REWRITE 1

static char *cache_dir; /* set once before threads start */

void comp_native_set_cache_dir(const char *dir)
{
    tr_free(cache_dir);
    cache_dir = dir ? tr_strdup(dir) : NULL;
}

void comp_native_cache_beside(const char *wasm_dir)
{
    if (cache_dir != NULL) return;
    size_t n = strlen(wasm_dir);
    while (n > 1 && wasm_dir[n - 1] == '/') n--;
    while (n > 0 && wasm_dir[n - 1] != '/') n--;
    cache_dir = n > 0 ? tr_asprintf("%.*scache", (int)n, wasm_dir) : tr_strdup("cache");
}

/* ---- child processes ---- */

/* Runs argv (argv[0] looked up in PATH) in dir with stdout and stderr into out, at most
 * timeout_ms. 0 when it exited 0; TR_ENOTFOUND when it could not be started, TR_ETIMEDOUT when
 * it was killed, TR_EIO for another exit. */
static int run_tool(char *const argv[], const char *dir, uint64_t timeout_ms, tr_buf *out)
{
    char *log_path = tr_asprintf("%s/tool.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        tr_free(log_path);
        return TR_ENOTFOUND;
    }
    uint64_t deadline = tr_now_ns() + timeout_ms * 1000000u;
    int status = 0;
    bool killed = false;
    for (unsigned wait_us = 200;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (!killed && tr_now_ns() > deadline) {
            kill(-pid, SIGKILL);
            killed = true;
        }
        nanosleep(&(struct timespec){0, (long)wait_us * 1000}, NULL);
        if (wait_us < 20000) wait_us *= 2;
    }
    tr_buf_reset(out);
    tr_read_file(log_path, 64 << 10, out, NULL);
    tr_free(log_path);
    if (killed) return TR_ETIMEDOUT;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return TR_ENOTFOUND;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : TR_EIO;
}

/* The first lines of a tool's output, for an error message. */
static const char *head(tr_buf *b)
{
    if (b->data == NULL) return "";
    size_t n = 0, lines = 0;
    while (n < b->len && n < 600 && lines < 6)
        if (b->data[n++] == '\n') lines++;
    while (n > 0 && (b->data[n - 1] == '\n' || b->data[n - 1] == '\r')) n--;
    b->len = n;
    b->data[n] = '\0';
    return b->data;
}

static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = tr_asprintf("%s/%s", dir, e->d_name);
        unlink(p);
        tr_free(p);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : -errno;
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

/* ---- what the module may import ---- */

typedef struct import_spec {
    const char *module, *name, *ret, *params; /* the prototype wasm2c writes for it */
} import_spec;

static const import_spec imports[] = {
    {"trail", "log", "void", "u32, u32, u32"},
    {"trail", "manifest", "u32", "u32, u32"},
    {"trail", "respond", "u32", "u32, u32, u32, u32, u32, u32"},
    {"trail", "job_done", "u32", "u32, u32, u32, u32"},
    {"trail", "sql", "u32", "u32, u32, u32, u32, u32, u32"},
    {"trail", "tx_begin", "u32", ""},
    {"trail", "tx_end", "u32", "u32, u32"},
    {"trail", "timer", "u32", "u32"},
    {"trail", "fetch", "u32", "u32, u32"},
    {"trail", "read_file", "u32", "u32, u32"},
    {"trail", "result_len", "u32", "u32"},
    {"trail", "result_take", "u32", "u32, u32, u32"},
    {"trail", "release", "void", "u32"},
    {"trail", "hook_result", "u32", "u32, u32, u32"},
    {"wasi_snapshot_preview1", "clock_time_get", "u32", "u32, u64, u32"},
    {"wasi_snapshot_preview1", "fd_close", "u32", "u32"},
    {"wasi_snapshot_preview1", "fd_fdstat_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "fd_seek", "u32", "u32, u64, u32, u32"},
    {"wasi_snapshot_preview1", "fd_write", "u32", "u32, u32, u32, u32"},
    {"wasi_snapshot_preview1", "random_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "proc_exit", "void", "u32"},
    {"wasi_snapshot_preview1", "environ_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "environ_sizes_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "args_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "args_sizes_get", "u32", "u32, u32"},
    {"wasi_snapshot_preview1", "sched_yield", "u32", ""},
};

/* Checks every import comment of wasm2c's header hdr against the table; sets *has_trail and *has_wasi to
 * the import modules used. */
static int check_imports(const char *hdr, bool *has_trail, bool *has_wasi, tr_error *err)
{
    *has_trail = *has_wasi = false;
    for (const char *p = strstr(hdr, "/* import: '"); p != NULL;
         p = strstr(p + 1, "/* import: '")) {
        char mod[128], name[128];
        if (sscanf(p, "/* import: '%127[^']' '%127[^']' */", mod, name) != 2)
            return tr_error_set(err, TR_EINVAL, "the module has an import trail cannot read");
        const import_spec *spec = NULL;
        for (size_t i = 0; i < TR_ARRAY_LEN(imports); i++)
            if (strcmp(imports[i].module, mod) == 0 && strcmp(imports[i].name, name) == 0)
                spec = &imports[i];
        if (spec == NULL)
            return tr_error_set(err, TR_EINVAL,
                                "the module imports '%s' '%s', which trail does not provide to "
                                "compiled components (docs/guest-abi.md)",
                                mod, name);
        const char *line = strchr(p, '\n');
        const char *end = line ? strchr(line + 1, '\n') : NULL;
        if (end == NULL) return tr_error_set(err, TR_EINVAL, "wasm2c's header is cut short");
        char want[640];
        snprintf(want, sizeof want, "%s Z_%sZ_%s(struct Z_%s_instance_t*%s%s);", spec->ret, mod,
                 name, mod, spec->params[0] ? ", " : "", spec->params);
        if ((size_t)(end - line - 1) != strlen(want) || memcmp(line + 1, want, strlen(want)) != 0)
            return tr_error_set(err, TR_EINVAL,
                                "the module imports '%s' '%s' with another signature than "
                                "trail's (%s)",
                                mod, name, want);
        if (strcmp(mod, "trail") == 0)
            *has_trail = true;
        else
            *has_wasi = true;
    }
    return 0;
}

/* ---- the rewrite ---- */

/* Appends src to out with every back edge (`goto w2c_L<n>;`, a branch to a wasm loop) turned
 * into a fuel count-down first. */
static void rewrite_gotos(const char *src, size_t len, tr_buf *out)
{
    static const char pat[] = "goto w2c_L";
    const char *p = src, *end = src + len;
    for (;;) {
        const char *hit = memmem(p, (size_t)(end - p), pat, sizeof pat - 1);
        if (hit == NULL) break;
        const char *q = hit + sizeof pat - 1;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q == hit + sizeof pat - 1 || q >= end || *q != ';') {
            tr_buf_append(out, p, (size_t)(q - p));
            p = q;
            continue;
        }
        tr_buf_append(out, p, (size_t)(hit - p));
        tr_buf_append_str(out, "{ TRAIL_TICK(); ");
        tr_buf_append(out, hit, (size_t)(q + 1 - hit));
        tr_buf_append_str(out, " }");
        p = q + 1;
    }
    tr_buf_append(out, p, (size_t)(end - p));
}

/* Rewrites dir/guest.h and dir/guest.c (see the file's DESIGN). */
static int rewrite(const char *dir, bool has_trail, bool has_wasi, bool wasi_first,
                   tr_error *err)
{
    char *hpath = tr_asprintf("%s/guest.h", dir), *cpath = tr_asprintf("%s/guest.c", dir);
    tr_buf h = TR_BUF_INIT, c = TR_BUF_INIT, out = TR_BUF_INIT;
    int rc = tr_read_file(hpath, 64 << 20, &h, err);
    if (rc == 0) rc = tr_read_file(cpath, (size_t)1 << 31, &c, err);
    static const char open_struct[] = "typedef struct Z_guest_instance_t {\n";
    const char *s = rc == 0 ? strstr(h.data, open_struct) : NULL;
    if (rc == 0 && s == NULL)
        rc = tr_error_set(err, TR_EINVAL, "wasm2c's header has no instance struct");
    if (rc == 0) {
        /* the fuel first: trail finds it at offset 0 of every instance */
        size_t at = (size_t)(s - h.data) + sizeof open_struct - 1;
        tr_buf_append(&out, h.data, at);
        tr_buf_append_str(&out, "  int64_t trail_fuel;\n");
        tr_buf_append(&out, h.data + at, h.len - at);
        rc = tr_write_file_atomic(hpath, out.data, out.len, err);
    }
    if (rc == 0) {
        tr_buf_reset(&out);
        tr_buf_append_str(&out, "#include <stddef.h>\n#include <stdint.h>\n"
                                "void comp_native_tick(int64_t *fuel);\n"
                                "#define TRAIL_TICK() do { if (__builtin_expect(--instance->"
                                "trail_fuel < 0, 0)) comp_native_tick(&instance->trail_fuel); "
                                "} while (0)\n");
        rewrite_gotos(c.data, c.len, &out);
        tr_buf_printf(&out,
                      "\nsize_t trail_instance_size(void) { return sizeof(Z_guest_instance_t); }\n"
                      "void trail_instantiate(Z_guest_instance_t *i, void *trail, void *wasi) {\n"
                      "  (void)trail; (void)wasi;\n"
                      "  Z_guest_instantiate(i%s%s);\n}\n",
                      wasi_first ? (has_wasi ? ", wasi" : "") : (has_trail ? ", trail" : ""),
                      wasi_first ? (has_trail ? ", trail" : "") : (has_wasi ? ", wasi" : ""));
        rc = tr_write_file_atomic(cpath, out.data, out.len, err);
    }
    tr_buf_free(&h);
    tr_buf_free(&c);
    tr_buf_free(&out);
    tr_free(hpath);
    tr_free(cpath);
    return rc;
}

/* The instantiate prototype lists the import modules in the order of their first import; the
 * wrapper (rewrite()) passes trail's and WASI's contexts in that order. *wasi_first tells it. */
static int check_instantiate(const char *hdr, bool has_trail, bool has_wasi, bool *wasi_first,
                             tr_error *err)
{
    static const char *const t = ", struct Z_trail_instance_t*",
                             *w = ", struct Z_wasi_snapshot_preview1_instance_t*";
    char want[256];
    for (int order = 0; order < 2; order++) {
        snprintf(want, sizeof want, "void Z_guest_instantiate(Z_guest_instance_t*%s%s);",
                 order == 0 ? (has_trail ? t : "") : (has_wasi ? w : ""),
                 order == 0 ? (has_wasi ? w : "") : (has_trail ? t : ""));
        if (strstr(hdr, want) != NULL) {
            *wasi_first = order == 1;
            return 0;
        }
    }
    return tr_error_set(err, TR_EINVAL, "wasm2c's instantiate function has unexpected imports");
}

/* ---- compiling ---- */

static int tool_missing(const char *tool, tr_error *err)
{
    if (strcmp(tool, "wasm2c") == 0)
        return tr_error_set(err, TR_ENOTFOUND,
                            "compiling a WebAssembly component needs wasm2c, which is not on "
                            "PATH: install the Debian package wabt (apt-get install wabt)");
    return tr_error_set(err, TR_ENOTFOUND,
                        "compiling a WebAssembly component needs a C compiler (cc), which is not "
                        "on PATH: install the Debian package gcc (apt-get install gcc)");
}

/* Compiles module bytes in the empty directory dir into dir/guest.so. */
static int compile_in(const char *dir, const unsigned char *bytes, size_t len, tr_error *err)
{
    tr_buf out = TR_BUF_INIT, hdr = TR_BUF_INIT;
    char *wasm = tr_asprintf("%s/guest.wasm", dir), *rt = tr_asprintf("%s/wasm-rt.h", dir);
    int rc = tr_write_file_atomic(wasm, bytes, len, err);
    for (size_t i = 0; rc == 0 && i < comp_native_files_len; i++) {
        if (strcmp(comp_native_files[i].path, "wasm-rt.h") != 0) continue;
        rc = tr_write_file_atomic(rt, comp_native_files[i].start,
                                  (size_t)(comp_native_files[i].end - comp_native_files[i].start),
                                  err);
    }
    if (rc == 0) {
        char *v[] = {"wasm2c", "--version", NULL};
        rc = run_tool(v, dir, 10000, &out);
        if (rc == TR_ENOTFOUND) {
            rc = tool_missing("wasm2c", err);
        } else if (rc < 0) {
            rc = tr_error_set(err, TR_EIO, "wasm2c --version failed: %s", head(&out));
        } else if (strncmp(out.data ? out.data : "", WABT_VERSION, strlen(WABT_VERSION)) != 0) {
            rc = tr_error_set(err, TR_EINVAL,
                              "wasm2c on PATH is version %s, but this trail's runtime implements "
                              "wasm2c %s (Debian bookworm's wabt)",
                              head(&out), WABT_VERSION);
        }
    }
    if (rc == 0) {
        char *v[] = {"wasm2c", "--module-name=guest", "guest.wasm", "-o", "guest.c", NULL};
        rc = run_tool(v, dir, COMP_NATIVE_COMPILE_TIMEOUT_MS, &out);
        if (rc == TR_ETIMEDOUT)
            rc = tr_error_set(err, TR_ELIMIT, "wasm2c took more than %d s on the module",
                              COMP_NATIVE_COMPILE_TIMEOUT_MS / 1000);
        else if (rc == TR_ENOTFOUND)
            rc = tool_missing("wasm2c", err);
        else if (rc < 0)
            rc = tr_error_set(err, TR_EINVAL, "wasm2c refused the module: %s", head(&out));
    }
    bool has_trail = false, has_wasi = false, wasi_first = false;
    if (rc == 0) {
        char *hpath = tr_asprintf("%s/guest.h", dir);
        rc = tr_read_file(hpath, 64 << 20, &hdr, err);
        tr_free(hpath);
    }
    if (rc == 0) rc = check_imports(hdr.data, &has_trail, &has_wasi, err);
    if (rc == 0) rc = check_instantiate(hdr.data, has_trail, has_wasi, &wasi_first, err);
    if (rc == 0 && strstr(hdr.data, "/* export: 'memory' */") == NULL)
        rc = tr_error_set(err, TR_EINVAL, "the module does not export its memory as 'memory'");
    if (rc == 0 && strstr(hdr.data, "Z_guestZ_memory0") != NULL)
        rc = tr_error_set(err, TR_EINVAL, "the module has more than one memory");
    if (rc == 0) rc = rewrite(dir, has_trail, has_wasi, wasi_first, err);
    if (rc == 0) {
        /* As the engine is compiled (the Makefile's GEN_CFLAGS): exact floats, and no sibling
         * calls, so deep recursion meets the stack's guard page in a frame of its own. */
        char *v[] = {"cc",
                     "-std=c17",
                     "-O2",
                     "-w",
                     "-fPIC",
                     "-shared",
                     "-fvisibility=default",
                     "-fno-optimize-sibling-calls",
                     "-frounding-math",
                     "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1",
                     "-DWASM_RT_USE_STACK_DEPTH_COUNT=0",
                     "-I.",
                     "-Wl,-Bsymbolic",
                     "-o",
                     "guest.so",
                     "guest.c",
                     NULL};
        rc = run_tool(v, dir, COMP_NATIVE_COMPILE_TIMEOUT_MS, &out);
        if (rc == TR_ETIMEDOUT)
            rc = tr_error_set(err, TR_ELIMIT,
                              "the C compiler took more than %d s on the module: it is too large "
                              "to compile",
                              COMP_NATIVE_COMPILE_TIMEOUT_MS / 1000);
        else if (rc == TR_ENOTFOUND)
            rc = tool_missing("cc", err);
        else if (rc < 0)
            rc = tr_error_set(err, TR_EIO, "the C compiler failed on wasm2c's output: %s",
                              head(&out));
    }
    tr_buf_free(&out);
    tr_buf_free(&hdr);
    tr_free(wasm);
    tr_free(rt);
    return rc;
}

/* ---- loading ---- */

static int load(const char *so, comp_native **out, tr_error *err)
{
    /* The same object again (a restart of the reloader's load, the same module in two places):
     * its module state is initialised already, and instances on other threads may be reading
     * it, so it is not initialised again. */
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    bool again = dl != NULL;
    if (dl == NULL) dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) return tr_error_set(err, TR_EIO, "cannot load %s: %s", so, dlerror());
    comp_native *n = tr_calloc(1, sizeof *n);
    n->dl = dl;
    struct {
        const char *sym;
        void **slot;
        bool required;
    } syms[] = {
        {"trail_instance_size", (void **)&n->instance_size, true},
        {"trail_instantiate", (void **)&n->instantiate, true},
        {"Z_guest_init_module", (void **)&n->init_module, true},
        {"Z_guest_free", (void **)&n->free_instance, true},
        {"Z_guestZ_memory", (void **)&n->memory, true},
        {"Z_guestZ__initialize", (void **)&n->initialize, false},
        {"Z_guestZ_trail_init", (void **)&n->init, true},
        {"Z_guestZ_trail_alloc", (void **)&n->alloc, true},
        {"Z_guestZ_trail_http", (void **)&n->http, true},
        {"Z_guestZ_trail_job", (void **)&n->job, false},
        {"Z_guestZ_trail_complete", (void **)&n->complete, false},
        {"Z_guestZ_trail_record_hook", (void **)&n->record_hook, false},
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(syms); i++) {
        *syms[i].slot = dlsym(dl, syms[i].sym);
        if (*syms[i].slot == NULL && syms[i].required) {
            const char *export = strncmp(syms[i].sym, "Z_guestZ_", 9) == 0 ? syms[i].sym + 9
                                                                           : syms[i].sym;
            int rc = tr_error_set(err, TR_EINVAL,
                                  "the module does not export %s (docs/guest-abi.md, compiled "
                                  "components)",
                                  export);
            comp_native_free(n);
            return rc;
        }
    }
    wasm_rt_init();
    if (!again) n->init_module();
    *out = n;
    return 0;
}

void comp_native_free(comp_native *n)
{
    if (n == NULL) return;
    /* The object stays mapped: function types it registered, and code a thread may still be
     * returning through, must not disappear under them. Reloads of changed modules each keep
     * one object (KiB to a few MiB) until the process exits. */
    (void)n->dl;
    tr_free(n);
}

static int make_temp_dir(const char *parent, char **out, tr_error *err)
{
    char *tmpl = tr_asprintf("%s/build-XXXXXX", parent);
    if (mkdtemp(tmpl) == NULL) {
        int e = errno;
        tr_free(tmpl);
        return tr_error_set(err, -e, "cannot create a directory in %s: %s", parent, strerror(e));
    }
    *out = tmpl;
    return 0;
}

int comp_native_compile(const unsigned char *bytes, size_t len, comp_native **out,
                        uint64_t *compile_ms, tr_error *err)
{
    if (compile_ms) *compile_ms = 0;
    if (len > COMP_NATIVE_MAX_MODULE_BYTES)
        return tr_error_set(err, TR_ELIMIT,
                            "the module has %zu bytes, more than the %u MiB trail compiles", len,
                            COMP_NATIVE_MAX_MODULE_BYTES >> 20);
    /* the key: the module, trail's build and the ABI */
    tr_sha256 h;
    tr_sha256_init(&h);
    tr_sha256_update(&h, bytes, len);
    char salt[160];
    int sn = snprintf(salt, sizeof salt, "|abi %d|rewrite %d|wabt %s|", COMP_NATIVE_ABI,
                      NATIVE_REWRITE, WABT_VERSION);
    tr_sha256_update(&h, salt, (size_t)sn);
    for (size_t i = 0; i < comp_native_files_len; i++)
        tr_sha256_update(&h, comp_native_files[i].start,
                         (size_t)(comp_native_files[i].end - comp_native_files[i].start));
    unsigned char digest[32];
    tr_sha256_final(&h, digest);
    char key[65];
    tr_hex_encode(digest, 32, key);

    char *dir = cache_dir ? tr_asprintf("%s/compiled", cache_dir) : NULL;
    bool cached = dir != NULL && mkdir_p(dir) == 0 && access(dir, W_OK) == 0;
    char *so = cached ? tr_asprintf("%s/%s.so", dir, key) : NULL;
    if (so != NULL && access(so, R_OK) == 0) {
        int rc = load(so, out, err);
        if (rc == 0) {
            tr_free(so);
            tr_free(dir);
            return 0;
        }
        /* a damaged entry: compile it again */
        unlink(so);
    }
    const char *tmp_parent = cached ? dir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char *work = NULL;
    uint64_t t0 = tr_now_ns();
    int rc = make_temp_dir(tmp_parent, &work, err);
    if (rc == 0) rc = compile_in(work, bytes, len, err);
    char *built = work ? tr_asprintf("%s/guest.so", work) : NULL;
    if (rc == 0 && compile_ms) *compile_ms = (tr_now_ns() - t0) / 1000000u;
    if (rc == 0 && so != NULL) {
        if (rename(built, so) != 0) rc = tr_error_set(err, -errno, "cannot write %s", so);
        if (rc == 0) rc = load(so, out, err);
    } else if (rc == 0) {
        /* dlopen maps the file; it may be unlinked after */
        rc = load(built, out, err);
    }
    if (work) remove_tree(work);
    tr_free(built);
    tr_free(work);
    tr_free(so);
    tr_free(dir);
    return rc;
}
