/* The sign-in page in a real browser: Debian's chromium, headless, driven by playwright-core
 * (tests/browser/signin.mjs) against the real server: register, a wrong password, login (the
 * HttpOnly cookie), the guest's req.user() from that cookie and the CSRF rule, logout, and a
 * password reset. Screenshots of each step go to $TRAIL_TEST_OUTPUT/auth-browser (make test sets
 * it to build/test-output). */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

TEST_TIMEOUT(e2e_auth_browser_sign_in_page, 240)
{
    const char *root = getenv("TRAIL_ROOT");
    if (root == NULL) root = ".";
    char mod[1024];
    snprintf(mod, sizeof mod, "%s/tests/browser/node_modules/playwright-core/package.json", root);
    struct stat st;
    if (stat(mod, &st) != 0)
        test_fail(__FILE__, __LINE__, "%s is missing: run tools/deps.sh (npm ci in tests/browser)",
                  mod);
    CHECK_EQ(stat("/usr/bin/chromium", &st), 0);

    char depot[512];
    ak_depot("depot", "auth {\n  require_email_verification: false\n}\n", depot, sizeof depot);
    th_server s;
    const char *one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);

    const char *outbase = getenv("TRAIL_TEST_OUTPUT");
    char out[1024];
    if (outbase)
        snprintf(out, sizeof out, "%s/auth-browser", outbase);
    else
        snprintf(out, sizeof out, "%s/build/test-output/auth-browser", root);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && cd '%s/tests/browser' && timeout 200 node signin.mjs "
             "http://127.0.0.1:%d '%s' '%s' >&2",
             out, root, s.port, out, s.err_path);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc));
    CHECK_EQ(WEXITSTATUS(rc), 0);
    static const char *const shots[] = {"1-registered.png",      "2-wrong-password.png",
                                        "3-signed-in.png",       "4-signed-out.png",
                                        "5-reset-requested.png", "6-password-changed.png",
                                        "7-signed-in-again.png"};
    for (size_t i = 0; i < sizeof shots / sizeof shots[0]; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", out, shots[i]);
        CHECK_EQ(stat(p, &st), 0);
        CHECK(st.st_size > 1000);
    }
    test_report("sign-in page in headless chromium: 7 steps held; screenshots in %s", out);
    CHECK_EQ(th_server_stop(&s), 0);
}
