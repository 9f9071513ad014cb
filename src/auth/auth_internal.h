/* auth/auth_internal.h: what the files of src/auth/ share. */
#ifndef TRAIL_AUTH_AUTH_INTERNAL_H
#define TRAIL_AUTH_AUTH_INTERNAL_H

#include "auth/auth.h"

#include <pthread.h>

/* Largest body an auth endpoint reads (JSON or a form): credentials are small. */
#define AUTH_MAX_BODY 8192
/* Longest access token looked at. */
#define AUTH_MAX_TOKEN    4096
#define AUTH_MAX_FIELDS   16
#define AUTH_MAX_PASSWORD 128
#define AUTH_MAX_EMAIL    254
/* Random parts: refresh tokens and one-time codes (alphanumerics). */
#define AUTH_REFRESH_LEN 32
#define AUTH_CODE_LEN    24
#define AUTH_CSRF_LEN    20

/* ---- flat key/value documents: a JSON object of scalars, or application/x-www-form-urlencoded */
enum { AUTH_V_STRING, AUTH_V_NUMBER, AUTH_V_BOOL, AUTH_V_NULL };

typedef struct auth_field {
    const char *key; /* decoded, NUL-terminated, in the owner's buf */
    const char *val; /* decoded text (a number as written, "true"/"false", "null") */
    size_t val_len;
    int type;
} auth_field;

typedef struct auth_fields {
    auth_field f[AUTH_MAX_FIELDS];
    size_t n;
    char buf[AUTH_MAX_BODY * 2 + 64]; /* decoded keys and values; never more than the input */
    size_t used;
} auth_fields;

/* Parses a JSON object whose values are strings, numbers, booleans or null (nothing nested) of
 * at most AUTH_MAX_BODY bytes. Errors: TR_EPARSE (malformed, nested, too many fields or
 * bytes, a key twice, a string that is not UTF-8 or holds NUL). */
int auth__json_fields(const char *s, size_t len, auth_fields *out);
/* Parses a=b&c=d (percent and '+' decoded). Errors as above. */
int auth__form_fields(const char *s, size_t len, auth_fields *out);
/* The field named key, NULL when absent. */
const auth_field *auth__field(const auth_fields *f, const char *key);
/* The string field named key (NULL when absent, not a string, or holding NUL). */
const char *auth__field_str(const auth_fields *f, const char *key);

/* Appends s as a JSON string literal (quotes included). */
void auth__json_str(tr_buf *b, const char *s, size_t len);

/* URL-safe base64 without padding (JWT parts). decode: -1 for anything not canonical. */
void auth__b64url_encode(const void *data, size_t len, tr_buf *out);
int auth__b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Random alphanumerics into out (n chars + NUL). */
void auth__random_alnum(char *out, size_t n);
/* SHA-256 of s as 64 hex digits + NUL (what _session and _auth_code store of a secret). */
void auth__secret_digest(const char *s, size_t len, char out[65]);

/* ---- keys ---- */
struct auth_keys {
    uint8_t pk[32];
    uint8_t sk[64]; /* libsodium's form: seed + public key */
};

/* ---- settings ---- */
struct auth_ctx {
    const auth_keys *keys;
    struct db_conn *(*db_of)(void *server_data);
    int64_t auth_ttl_s;
    int64_t refresh_ttl_s;
    bool require_verification;
    uint32_t per_account; /* failed logins per account per minute */
    uint32_t per_address; /* logins per client address per minute */
    uint32_t min_password;
    char *site_url; /* without a trailing '/' */
    /* email: smtp_host empty = log the links */
    char *smtp_host, *smtp_username, *smtp_password, *smtp_encryption, *sender_address,
        *sender_name;
    uint32_t smtp_port;
    char *tpl_subject[3], *tpl_body[3]; /* AUTH_MAIL_* */
};

/* ---- rate limits (auth/ratelimit.c): one table for the process ---- */
/* Counts one event for key in the current minute; true when the count is now above limit
 * (the event should be refused). limit 0 means no limit. Thread: any. */
bool auth__rate_hit(const char *kind, const char *key, uint32_t limit);
/* True when key already had limit events this minute (without counting one). */
bool auth__rate_exceeded(const char *kind, const char *key, uint32_t limit);
/* Forgets key's events (a successful login clears its account's failures). */
void auth__rate_clear(const char *kind, const char *key);

/* ---- mail (auth/mail.c) ---- */
enum { AUTH_MAIL_VERIFY, AUTH_MAIL_RESET, AUTH_MAIL_CHANGE_EMAIL };
/* Sends template kind to `to` with link (and the code) filled in; with no SMTP host configured
 * logs the link instead. Errors: TR_EIO with err saying what the SMTP server answered (never
 * the password). */
int auth__mail_send(const auth_ctx *a, int kind, const char *to, const char *link, const char *code,
                    tr_error *err);

/* ---- users and sessions (auth/users.c) ---- */
typedef struct auth_user {
    uint8_t id[16];
    char email[AUTH_MAX_EMAIL + 2];
    char hash[AUTH_HASH_BYTES];
    bool verified;
    bool admin;
} auth_user;

/* Normalises an email address (trimmed, lower case) into out; -1 when it is not one. */
int auth__email_normalize(const char *in, char out[AUTH_MAX_EMAIL + 2]);
/* Checks the password policy; NULL or the reason. */
const char *auth__password_policy(const auth_ctx *a, const char *pw);
int auth__user_by_email(struct db_conn *db, const char *email, auth_user *out, tr_error *err);
int auth__user_by_id(struct db_conn *db, const uint8_t id[16], auth_user *out, tr_error *err);
int auth__user_set_password(struct db_conn *db, const uint8_t id[16], const char *pw,
                            tr_error *err);
int auth__user_set_verified(struct db_conn *db, const uint8_t id[16], bool v, tr_error *err);
int auth__user_set_email(struct db_conn *db, const uint8_t id[16], const char *email,
                         tr_error *err);
/* Creates a session for id; the refresh token (AUTH_REFRESH_LEN chars) into refresh. */
int auth__session_new(struct db_conn *db, const uint8_t id[16], int64_t ttl_s,
                      char refresh[AUTH_REFRESH_LEN + 1], tr_error *err);
/* The user of a live session with this refresh token. Errors: TR_ENOTFOUND. */
int auth__session_user(struct db_conn *db, const char *refresh, uint8_t id[16], tr_error *err);
int auth__session_delete(struct db_conn *db, const char *refresh, tr_error *err);
/* A one-time code for kind ("verify", "reset", "email") of user id, valid ttl_s; for "email"
 * the new address. The code (AUTH_CODE_LEN chars) into code; earlier codes of that kind die. */
int auth__code_new(struct db_conn *db, const uint8_t id[16], const char *kind, const char *email,
                   int64_t ttl_s, char code[AUTH_CODE_LEN + 1], tr_error *err);
/* Takes (deletes) a live code of kind: its user and (for "email") address. TR_ENOTFOUND. */
int auth__code_take(struct db_conn *db, const char *kind, const char *code, uint8_t id[16],
                    char email[AUTH_MAX_EMAIL + 2], tr_error *err);
/* Fills claims for user u, now, ttl. */
void auth__claims_for(const auth_user *u, int64_t now, int64_t ttl_s, auth_claims *c);

/* The sign-in page (auth/ui.c). */
extern const char auth__ui_html[];

#endif
