/* The records-web example in a real browser: Debian's chromium, headless, driven by
 * playwright-core (tests/browser/records.mjs) against the real server serving the example's
 * page (--public-dir) with the reference's npm client `trailbase` (pinned in
 * examples/records-web/package-lock.json): sign-in, create, realtime, update, a filtered list,
 * delete, and another user's rows kept out. Screenshots go to $TRAIL_TEST_OUTPUT/records-browser.
 */
#include "test.h"
#include "e2e/fixtures.h"
#include "e2e/harness.h"
#include "e2e/records_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

TEST_TIMEOUT(e2e_records_browser_example_page, 240)
{
    const char *root = getenv("TRAIL_ROOT");
    if (root == NULL) root = ".";
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/tests/browser/node_modules/playwright-core/package.json", root);
    if (stat(path, &st) != 0)
        test_fail(__FILE__, __LINE__, "%s is missing: run tools/deps.sh", path);
    snprintf(path, sizeof path, "%s/examples/records-web/node_modules/trailbase/dist/index.js",
             root);
    if (stat(path, &st) != 0)
        test_fail(__FILE__, __LINE__, "%s is missing: run tools/deps.sh", path);
    CHECK_EQ(stat("/usr/bin/chromium", &st), 0);

    /* the example's data directory: its migration and config, two users */
    char *sql = th_read_file("examples/records-web/migrations/001_todos.sql", NULL);
    char *cfg = th_read_file("examples/records-web/config.textproto", NULL);
    if (sql == NULL) {
        char p2[1100];
        snprintf(p2, sizeof p2, "%s/examples/records-web/migrations/001_todos.sql", root);
        sql = th_read_file(p2, NULL);
        snprintf(p2, sizeof p2, "%s/examples/records-web/config.textproto", root);
        cfg = th_read_file(p2, NULL);
    }
    CHECK(sql != NULL && cfg != NULL);
    char depot[512], tok[2048], id[64], tok2[2048], id2[64];
    rt_depot("rweb", sql, cfg, depot);
    free(sql);
    free(cfg);
    rt_user(depot, "web@example.com", tok, id);
    rt_user(depot, "other@example.com", tok2, id2);
    /* the page, with the client as the example's `npm run build` puts it beside it */
    char pub[700], cmd[8192];
    snprintf(pub, sizeof pub, "%s/public", depot);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cp '%s'/examples/records-web/public/index.html "
             "'%s'/examples/records-web/public/app.js '%s/' && cp '%s' '%s/trailbase.js'",
             pub, root, root, pub, path, pub);
    CHECK_EQ(fx_sh(cmd), 0);
    th_server s;
    const char *args[] = {"--public-dir", pub, NULL};
    CHECK_EQ(th_server_start(&s, depot, args), 0);

    const char *outbase = getenv("TRAIL_TEST_OUTPUT");
    char out[1024];
    if (outbase)
        snprintf(out, sizeof out, "%s/records-browser", outbase);
    else
        snprintf(out, sizeof out, "%s/build/test-output/records-browser", root);
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && cd '%s/tests/browser' && timeout 200 node records.mjs "
             "http://127.0.0.1:%d '%s' web@example.com '%s' '%s' '%s' >&2",
             out, root, s.port, out, tok, tok2, id2);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc));
    CHECK_EQ(WEXITSTATUS(rc), 0);
    static const char *const shots[] = {"1-created.png", "2-updated.png", "3-deleted.png"};
    for (size_t i = 0; i < sizeof shots / sizeof shots[0]; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", out, shots[i]);
        CHECK_EQ(stat(p, &st), 0);
        CHECK(st.st_size > 1000);
    }
    test_report("records-web page with npm trailbase 0.12.1 in headless chromium: sign-in, "
                "create, realtime, update, filter + count, delete held; screenshots in %s",
                out);
    CHECK_EQ(th_server_stop(&s), 0);
}
