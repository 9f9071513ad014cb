/* Verification and reset mails through a real SMTP server on loopback (Debian's aiosmtpd,
 * delivering into a Maildir): the configured templates, the links they carry working, no code in
 * trail's log, and an unreachable SMTP server that changes no answer. */
#include "test.h"
#include "e2e/authkit.h"
#include "e2e/cluster_util.h"
#include "e2e/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define J "application/json"

TEST_TIMEOUT(e2e_auth_smtp_round_trip, 120)
{
    char maildir[600];
    snprintf(maildir, sizeof maildir, "%s/maildir", test_tmpdir());
    int sport = 0;
    int smtp = ak_smtp_start(maildir, &sport);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "server {\n  site_url: \"https://app.example.test/\"\n}\n"
             "email {\n  smtp_host: \"127.0.0.1\"\n  smtp_port: %d\n  smtp_encryption: \"none\"\n"
             "  sender_address: \"noreply@trail.test\"\n  sender_name: \"Trail Test\"\n"
             "  verification_subject: \"Welcome to the test\"\n"
             "  verification_body: \"Hi {{ EMAIL }},\\nopen {{ VERIFICATION_URL }}\\n\"\n}\n",
             sport);
    char depot[512];
    ak_depot("depot", cfg, depot, sizeof depot);
    th_server s;
    const char *one[] = {"--runtime-threads", "1", NULL};
    CHECK_EQ(th_server_start(&s, depot, one), 0);
    int port = s.port;

    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/register", NULL, J,
                       "{\"email\":\"carol@example.test\",\"password\":\"carol-pw-1\"}"),
             200);
    char *mail = ak_wait_mail(maildir);
    CHECK_CONTAINS(mail, "Subject: Welcome to the test");
    CHECK_CONTAINS(mail, "To: <carol@example.test>");
    CHECK_CONTAINS(mail, "From: \"Trail Test\" <noreply@trail.test>");
    CHECK_CONTAINS(mail, "Hi carol@example.test,");
    CHECK_CONTAINS(mail, "open https://app.example.test/api/auth/v1/verify_email/confirm/");
    char code[64], path[256];
    ak_mail_code(mail, "verify_email/confirm/", code);
    free(mail);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/login", NULL, J,
                       "{\"email\":\"carol@example.test\",\"password\":\"carol-pw-1\"}"),
             403);
    snprintf(path, sizeof path, "/api/auth/v1/verify_email/confirm/%s", code);
    CHECK_EQ(ak_status(port, "GET", path, NULL, NULL, NULL), 200);
    char t[1024], rt[1024], csrf[1024];
    ak_login(port, "carol@example.test", "carol-pw-1", t, rt, csrf);

    /* password reset through the default template */
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/reset_password/request", NULL, J,
                       "{\"email\":\"carol@example.test\"}"),
             200);
    mail = ak_wait_mail(maildir);
    CHECK_CONTAINS(mail, "Subject: Reset your password");
    CHECK_CONTAINS(mail, "https://app.example.test/_/auth/reset_password?code=");
    ak_mail_code(mail, "reset_password?code=", code);
    free(mail);
    char rt_old[1024];
    snprintf(rt_old, sizeof rt_old, "%s", rt);
    char body[1200];
    snprintf(body, sizeof body, "{\"password_reset_code\":\"%s\",\"password\":\"carol-pw-2\"}",
             code);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/reset_password/update", NULL, J, body), 200);
    ak_login(port, "carol@example.test", "carol-pw-2", t, rt, csrf);
    /* the session from before the reset ended with it; the new one lives */
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt_old);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 401);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
    CHECK_EQ(ak_status(port, "POST", "/api/auth/v1/refresh", NULL, J, body), 200);

    /* nothing secret in trail's log: no code, no token */
    char *log = th_server_stderr(&s);
    char *out = th_server_stdout(&s);
    CHECK(strstr(log, code) == NULL && strstr(out, code) == NULL);
    CHECK(strstr(log, rt) == NULL && strstr(out, rt) == NULL);
    CHECK_CONTAINS(log, "mail sent to carol@example.test");
    free(log);
    free(out);
    CHECK_EQ(th_server_stop(&s), 0);
    ak_smtp_stop(smtp);
}

TEST_TIMEOUT(e2e_auth_smtp_unreachable_changes_no_answer, 90)
{
    char cfg[512];
    snprintf(
        cfg, sizeof cfg,
        "email {\n  smtp_host: \"127.0.0.1\"\n  smtp_port: %d\n  smtp_encryption: \"none\"\n}\n",
        cu_free_port());
    char depot[512];
    ak_depot("depot", cfg, depot, sizeof depot);
    th_server s;
    CHECK_EQ(th_server_start(&s, depot, NULL), 0);
    th_resp r;
    CHECK_EQ(ak_req(s.port, "POST", "/api/auth/v1/register", NULL, J,
                    "{\"email\":\"dan@example.test\",\"password\":\"dan-pw-12\"}", &r),
             200);
    CHECK_STR_EQ(r.body, "registered");
    th_resp_free(&r);
    CHECK_EQ(ak_status(s.port, "POST", "/api/auth/v1/reset_password/request", NULL, J,
                       "{\"email\":\"dan@example.test\"}"),
             200);
    /* the failure is logged (without the link) */
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = th_server_stderr(&s);
        if (strstr(log, "sending mail to dan@example.test failed")) break;
        usleep(100 * 1000);
    }
    CHECK_CONTAINS(log, "sending mail to dan@example.test failed");
    CHECK(strstr(log, "confirm/") == NULL);
    free(log);
    CHECK_EQ(th_server_stop(&s), 0);
}
