/* End-to-end tests for `trail components`: the real binary on real files, downloads from an
 * origin server on 127.0.0.1, and every refusal (corrupt, not WASM, bare engine, foreign
 * engine, 404, refused connection, not installed) as one line on stderr with exit status 1. */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/origin.h"

#include <sys/stat.h>
#include <unistd.h>

static const char *depot(void)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/depot", test_tmpdir());
    return path;
}

static char *tmp_path(const char *name)
{
    static char path[4][600];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 600, "%s/%s", test_tmpdir(), name);
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Runs `trail components ARGS... --data-dir DEPOT`; returns the exit status. */
static int components(const char *a1, const char *a2, char **out, char **err)
{
    const char *args[] = {"components", a1, a2 ? a2 : "--data-dir", a2 ? "--data-dir" : depot(),
                          a2 ? depot() : NULL, NULL};
    return th_run(args, 60000, out, err);
}

/* stderr is exactly one line */
static void check_one_line(const char *err)
{
    const char *nl = strchr(err, '\n');
    CHECK(nl != NULL);
    CHECK_EQ(nl[1], '\0');
}

TEST_TIMEOUT(components_list_names_first_party, 30)
{
    char *out, *err;
    CHECK_EQ(components("list", NULL, &out, &err), 0);
    /* exactly the reference's lines first, then trail's own */
    CHECK_STR_EQ(out, "Available first-party components:\n"
                      "- trailbase-guest-ts (TypeScript/JavaScript runtime)\n"
                      "- trailbase-guest-rust (Rust runtime)\n"
                      "- trailbase-guest-c (C runtime)\n");
    free(out);
    free(err);
}

TEST_TIMEOUT(components_add_file_installed_remove, 60)
{
    size_t len;
    unsigned char *comp = fx_component("export default 1;", "quickjs-wasi 3.6.2", false, &len);
    const char *src = tmp_path("hello.wasm");
    CHECK_EQ(th_write_file(src, comp, len), 0);

    char *out, *err;
    CHECK_EQ(components("add", src, &out, &err), 0);
    CHECK_CONTAINS(out, "Installed");
    free(out);
    free(err);
    char dest[700];
    snprintf(dest, sizeof dest, "%s/wasm/hello.wasm", depot());
    size_t got_len;
    char *got = th_read_file(dest, &got_len);
    CHECK(got != NULL);
    CHECK_EQ(got_len, len);
    CHECK(memcmp(got, comp, len) == 0);
    free(got);

    /* installed: name, size, hash prefix and engine on one line */
    CHECK_EQ(components("installed", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "hello.wasm");
    char size[64];
    snprintf(size, sizeof size, "%zu bytes", len);
    CHECK_CONTAINS(out, size);
    CHECK_CONTAINS(out, "sha256:");
    CHECK_CONTAINS(out, "quickjs-wasi 3.6.2");
    free(out);
    free(err);

    /* a second add of the same name is refused and leaves the file alone */
    CHECK_EQ(components("add", src, &out, &err), 1);
    CHECK_CONTAINS(err, "already installed");
    check_one_line(err);
    free(out);
    free(err);

    CHECK_EQ(components("remove", "hello", &out, &err), 0);
    CHECK(!exists(dest));
    free(out);
    free(err);
    CHECK_EQ(components("remove", "hello", &out, &err), 1);
    CHECK_CONTAINS(err, "not installed");
    check_one_line(err);
    free(out);
    free(err);
    free(comp);
}

TEST_TIMEOUT(components_add_refuses_bad_modules, 60)
{
    struct {
        const char *name;
        const char *expect;
    } cases[] = {
        {"corrupt.wasm", "overruns"},
        {"notwasm.wasm", "not a WebAssembly module"},
        {"bare.wasm", "bare engine module"},
        {"foreign.wasm", "quickjs-wasi 3.5.0"},
    };
    size_t len;
    unsigned char *comp = fx_component("export default 1;", NULL, false, &len);
    CHECK_EQ(th_write_file(tmp_path("corrupt.wasm"), comp, len - 5000), 0);
    free(comp);
    CHECK_EQ(th_write_file(tmp_path("notwasm.wasm"), "<html>oops</html>", 17), 0);
    unsigned char *bare = fx_engine_bytes(&len, 0);
    CHECK_EQ(th_write_file(tmp_path("bare.wasm"), bare, len), 0);
    free(bare);
    comp = fx_component("export default 1;", "quickjs-wasi 3.5.0", true, &len);
    CHECK_EQ(th_write_file(tmp_path("foreign.wasm"), comp, len), 0);
    free(comp);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        CHECK_EQ(components("add", tmp_path(cases[i].name), &out, &err), 1);
        CHECK_CONTAINS(err, cases[i].expect);
        check_one_line(err);
        free(out);
        free(err);
        char dest[700];
        snprintf(dest, sizeof dest, "%s/wasm/%s", depot(), cases[i].name);
        CHECK(!exists(dest));
    }
    /* the foreign-engine message names this trail's engine too */
    char *out, *err;
    CHECK_EQ(components("add", tmp_path("foreign.wasm"), &out, &err), 1);
    CHECK_CONTAINS(err, "embeds quickjs-wasi 3.6.2");
    free(out);
    free(err);
    CHECK_EQ(components("add", "no-such-component", &out, &err), 1);
    CHECK_CONTAINS(err, "neither a first-party component");
    free(out);
    free(err);
    CHECK_EQ(components("add", tmp_path("missing.wasm"), &out, &err), 1);
    CHECK_CONTAINS(err, "No such file");
    free(out);
    free(err);
}

TEST_TIMEOUT(components_add_url_from_loopback, 90)
{
    size_t len;
    unsigned char *comp = fx_component("export default 2;", "quickjs-wasi 3.6.2", false, &len);
    th_origin_route routes[] = {
        {"/files/remote.wasm", 200, "application/wasm", comp, len, 0},
        {"/files/page.wasm", 200, "text/html", "<html></html>", 13, 0},
    };
    th_origin origin;
    CHECK_EQ(th_origin_start(&origin, routes, 2), 0);
    char url[256];

    char *out, *err;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/remote.wasm", origin.port);
    CHECK_EQ(components("add", url, &out, &err), 0);
    free(out);
    free(err);
    char dest[700];
    snprintf(dest, sizeof dest, "%s/wasm/remote.wasm", depot());
    size_t got_len;
    char *got = th_read_file(dest, &got_len);
    CHECK(got != NULL);
    CHECK_EQ(got_len, len);
    CHECK(memcmp(got, comp, len) == 0);
    free(got);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/missing.wasm", origin.port);
    CHECK_EQ(components("add", url, &out, &err), 1);
    CHECK_CONTAINS(err, "HTTP 404");
    check_one_line(err);
    free(out);
    free(err);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/page.wasm", origin.port);
    CHECK_EQ(components("add", url, &out, &err), 1);
    CHECK_CONTAINS(err, "not a WebAssembly module");
    free(out);
    free(err);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/x.wasm", th_closed_port());
    CHECK_EQ(components("add", url, &out, &err), 1);
    CHECK_CONTAINS(err, "cannot download");
    check_one_line(err);
    free(out);
    free(err);
    snprintf(dest, sizeof dest, "%s/wasm/x.wasm", depot());
    CHECK(!exists(dest));

    th_origin_stop(&origin);
    CHECK_EQ(origin.requests, 3);
    free(comp);
}

TEST_TIMEOUT(components_usage_errors, 30)
{
    char *out, *err;
    const char *none[] = {"components", NULL};
    CHECK_EQ(th_run(none, 30000, &out, &err), 2);
    CHECK_CONTAINS(err, "Usage: trail components");
    free(out);
    free(err);
    const char *help[] = {"components", "--help", NULL};
    CHECK_EQ(th_run(help, 30000, &out, &err), 0);
    CHECK_CONTAINS(out, "installed");
    free(out);
    free(err);
    CHECK_EQ(components("bogus", NULL, &out, &err), 2);
    CHECK_CONTAINS(err, "unknown command 'bogus'");
    free(out);
    free(err);
    CHECK_EQ(components("installed", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "No components installed");
    free(out);
    free(err);
}

TEST_TIMEOUT(components_first_party_add_update_remove, 60)
{
    char *out, *err;
    char wasm[800], path[900];
    snprintf(wasm, sizeof wasm, "%s/wasm", depot());

    CHECK_EQ(components("add", "trailbase-guest-ts", &out, &err), 0);
    CHECK_CONTAINS(out, "Installed trailbase-guest-ts");
    CHECK_CONTAINS(out, "package.json");
    free(out);
    free(err);
    static const char *const files[] = {"package.json", "tsconfig.json", "index.ts",
                                        "trailbase-wasm-0.1.0.tgz"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", wasm, files[i]);
        CHECK(exists(path));
    }
    /* a second add refuses and keeps the project */
    CHECK_EQ(components("add", "trailbase-guest-ts", &out, &err), 1);
    CHECK_CONTAINS(err, "already installed");
    check_one_line(err);
    free(out);
    free(err);

    /* installed names the project */
    CHECK_EQ(components("installed", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "trailbase-guest-ts");
    CHECK_CONTAINS(out, "not built yet");
    free(out);
    free(err);

    /* update rewrites the SDK tarball, and only it */
    snprintf(path, sizeof path, "%s/trailbase-wasm-0.1.0.tgz", wasm);
    CHECK_EQ(th_write_file(path, "stale", 5), 0);
    char src[900];
    snprintf(src, sizeof src, "%s/index.ts", wasm);
    CHECK_EQ(th_write_file(src, "// my own code\n", 15), 0);
    CHECK_EQ(components("update", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "Updated trailbase-guest-ts");
    free(out);
    free(err);
    size_t len;
    char *tgz = th_read_file(path, &len);
    CHECK(tgz != NULL && len > 1000 && (unsigned char)tgz[0] == 0x1f); /* gzip again */
    free(tgz);
    char *mine = th_read_file(src, NULL);
    CHECK_STR_EQ(mine, "// my own code\n");
    free(mine);

    /* remove deletes what trail wrote and the user left alone, keeps the user's changes */
    CHECK_EQ(components("remove", "trailbase-guest-ts", &out, &err), 0);
    CHECK_CONTAINS(out, "kept your changed files: index.ts");
    free(out);
    free(err);
    CHECK(exists(src));
    snprintf(path, sizeof path, "%s/package.json", wasm);
    CHECK(!exists(path));
    snprintf(path, sizeof path, "%s/trailbase-wasm-0.1.0.tgz", wasm);
    CHECK(!exists(path));
    CHECK_EQ(components("remove", "trailbase-guest-ts", &out, &err), 1);
    CHECK_CONTAINS(err, "not installed");
    free(out);
    free(err);
    CHECK_EQ(components("update", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "No first-party components installed");
    free(out);
    free(err);
}

TEST_TIMEOUT(components_first_party_rust_add_update_remove, 60)
{
    char *out, *err;
    char wasm[800], path[900];
    snprintf(wasm, sizeof wasm, "%s/wasm", depot());

    CHECK_EQ(components("add", "trailbase-guest-rust", &out, &err), 0);
    CHECK_CONTAINS(out, "Installed trailbase-guest-rust");
    CHECK_CONTAINS(out, "Next: cd ");
    CHECK_CONTAINS(out, " && ./build.sh\n");
    free(out);
    free(err);
    static const char *const files[] = {"Cargo.toml", ".cargo/config.toml", "src/lib.rs",
                                        "README.md", "trailbase-wasm/Cargo.toml",
                                        "trailbase-wasm/src/lib.rs", "trailbase-wasm/src/http.rs"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", wasm, files[i]);
        CHECK(exists(path));
    }
    /* the build script is executable, the Quick Start's routes are in src/lib.rs */
    snprintf(path, sizeof path, "%s/build.sh", wasm);
    CHECK_EQ(access(path, X_OK), 0);
    snprintf(path, sizeof path, "%s/src/lib.rs", wasm);
    char *lib = th_read_file(path, NULL);
    CHECK(lib != NULL);
    CHECK_CONTAINS(lib, "routing::get(\"/hello\"");
    CHECK_CONTAINS(lib, "routing::get(\"/greet/:name\"");
    CHECK_CONTAINS(lib, "routing::post(\"/json\"");
    free(lib);

    /* one project per wasm/: the TypeScript one is refused while the Rust one is there */
    CHECK_EQ(components("add", "trailbase-guest-ts", &out, &err), 1);
    CHECK_CONTAINS(err, "holds the trailbase-guest-rust project");
    check_one_line(err);
    free(out);
    free(err);
    CHECK_EQ(components("add", "trailbase-guest-rust", &out, &err), 1);
    CHECK_CONTAINS(err, "already installed");
    free(out);
    free(err);

    CHECK_EQ(components("installed", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "trailbase-guest-rust");
    CHECK_CONTAINS(out, "Rust project in");
    CHECK_CONTAINS(out, "not built yet (./build.sh)");
    free(out);
    free(err);

    /* update rewrites the crate, and only it */
    char sdk[900], src[900];
    snprintf(sdk, sizeof sdk, "%s/trailbase-wasm/src/http.rs", wasm);
    CHECK_EQ(th_write_file(sdk, "stale", 5), 0);
    snprintf(src, sizeof src, "%s/src/lib.rs", wasm);
    CHECK_EQ(th_write_file(src, "// my own code\n", 15), 0);
    CHECK_EQ(components("update", NULL, &out, &err), 0);
    CHECK_CONTAINS(out, "Updated trailbase-guest-rust");
    CHECK_CONTAINS(out, "trailbase-wasm/src/http.rs");
    free(out);
    free(err);
    char *http = th_read_file(sdk, NULL);
    CHECK_CONTAINS(http, "pub fn match_path");
    free(http);
    char *mine = th_read_file(src, NULL);
    CHECK_STR_EQ(mine, "// my own code\n");
    free(mine);

    /* remove keeps the user's source, deletes the rest and the build output */
    snprintf(path, sizeof path, "%s/target/wasm32-wasi/release", wasm);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/component.wasm' '%s/Cargo.lock'",
             path, path, wasm);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(components("remove", "trailbase-guest-rust", &out, &err), 0);
    CHECK_CONTAINS(out, "kept your changed files: src/lib.rs");
    free(out);
    free(err);
    CHECK(exists(src));
    static const char *const gone[] = {"Cargo.toml", "build.sh", ".cargo", "trailbase-wasm",
                                       "target", "Cargo.lock"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", wasm, gone[i]);
        CHECK(!exists(path));
    }
}
