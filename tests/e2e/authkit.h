/* tests/e2e/authkit.h: what the auth tests share: requests with headers and bodies, reading a
 * string out of a JSON answer, a depot serving the auth_todos component, users made with the
 * CLI, logins, and the codes trail writes to its log when no SMTP server is configured. */
#ifndef TRAIL_TESTS_E2E_AUTHKIT_H
#define TRAIL_TESTS_E2E_AUTHKIT_H

#include <stdbool.h>
#include <stddef.h>

#include "e2e/harness.h"

/* One request on a fresh connection: headers (each "Name: value\r\n", may be NULL), a body
 * with content type ctype (both may be NULL). Returns the status (or a negative error); *r
 * holds the response (free with th_resp_free). */
int ak_req(int port, const char *method, const char *path, const char *headers, const char *ctype,
           const char *body, th_resp *r);
/* ak_req() that only wants the status (and prints the body when it is not `want`). */
int ak_status(int port, const char *method, const char *path, const char *headers,
              const char *ctype, const char *body);

/* The string value of "key" in a flat JSON object (no escapes in it); false when absent. */
bool ak_json_str(const char *json, const char *key, char *out, size_t cap);

/* <test_tmpdir()>/NAME with wasm/auth_todos.wasm (built by the SDK), a migration creating
 * `todos`, and config.textproto = cfg (may be NULL). The path into out. */
void ak_depot(const char *name, const char *cfg, char *out, size_t cap);

/* Runs `trail ARGS... --data-dir depot` (args NULL-terminated); returns the exit status;
 * *out gets stdout (free()) when out is not NULL. */
int ak_cli(const char *depot, const char *const *args, char **out);

/* Logs in with JSON: checks 200 and fills the three tokens (each buffer >= 1024 bytes). */
void ak_login(int port, const char *email, const char *password, char *token, char *refresh,
              char *csrf);

/* The last code trail logged in a link containing marker ("verify_email/confirm/", "code=",
 * "change_email/confirm/") while no SMTP server is configured; false when there is none. */
bool ak_logged_code(const th_server *s, const char *marker, char out[64]);

/* An SMTP server on loopback (python3 -m aiosmtpd) delivering into maildir; its port into *port
 * and its pid returned; stopped with ak_smtp_stop(). Ends with the test process. */
int ak_smtp_start(const char *maildir, int *port);
void ak_smtp_stop(int pid);
/* Waits (up to 30 s) for the next mail in maildir/new and returns it (free()), moving it to
 * maildir/cur. */
char *ak_wait_mail(const char *maildir);
/* The code after marker in a mail (alphanumerics) into out. */
void ak_mail_code(const char *mail, const char *marker, char out[64]);

#endif
