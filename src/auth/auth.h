/* auth/auth.h: users and authentication: the signing key, access tokens (JWT, EdDSA), passwords,
 * sessions, the auth API under /api/auth/v1/, the sign-in page under /_/auth/, and who the
 * caller of a request is (for guests' req.user()).
 *
 * DESIGN: an access token is a JWT signed with the data directory's Ed25519 key; verifying one
 * needs only the public key and the clock, so any thread can do it (auth_keys is immutable once
 * loaded). Refresh tokens are random strings of which only the SHA-256 is stored (table
 * _session); revoking one is deleting its row. Passwords are Argon2id (libsodium's
 * crypto_pwhash_str). Everything that touches the database goes through cluster/appdb: on one
 * node the calling worker's own connection, in cluster mode the cluster's leader (every node
 * signs with the cluster's one key, stored in the cluster by the first node that started: see
 * server/cluster_db.c). Login attempts are counted in one process-wide table behind one mutex
 * (auth/ratelimit.c), so the limits hold across workers, and per node in a cluster. docs/auth.md
 * is the user's view.
 *
 * Thread: auth_keys and auth_ctx read-only from any thread after start-up; the HTTP handlers run
 * on the worker that received the request. */
#ifndef TRAIL_AUTH_AUTH_H
#define TRAIL_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct db_conn;
struct http_request;
struct http_response;

/* Where the keys live inside the data directory (as the reference system keeps them). */
#define AUTH_KEY_DIR          "secrets/keys"
#define AUTH_PRIVATE_KEY_FILE "secrets/keys/private_key.pem"
#define AUTH_PUBLIC_KEY_FILE  "secrets/keys/public_key.pem"

/* Cookie and header names, as the reference system's. */
#define AUTH_COOKIE_AUTH_TOKEN    "auth_token"
#define AUTH_COOKIE_REFRESH_TOKEN "refresh_token"
#define AUTH_HEADER_REFRESH_TOKEN "refresh-token"
#define AUTH_HEADER_CSRF_TOKEN    "csrf-token"

/* Claims' "type" (the reference's TokenType): only auth tokens are JWTs in trail. */
#define AUTH_TOKEN_TYPE_AUTH 1

/* ---- keys ---- */
typedef struct auth_keys auth_keys;

/* Loads DATA_DIR/secrets/keys/{private,public}_key.pem, or, when neither exists, generates a
 * new Ed25519 key pair and writes them (mode 0600, directory 0700). Errors: -errno or TR_EPARSE
 * with err naming the file (a key file that is not an Ed25519 PEM key, one of the two missing,
 * or the private key readable by others). */
int auth_keys_load(const char *data_dir, auth_keys **out, tr_error *err);
void auth_keys_free(auth_keys *k); /* NULL is a no-op */
/* A 32-byte secret for purpose (a fixed text naming its use), derived from k's private key: the
 * same on every trail that has the same key (every node of a cluster), and telling nothing
 * about the key. */
void auth_keys_derive(const auth_keys *k, const char *purpose, uint8_t out[32]);
/* Appends k's two PEM texts, as the key files hold them (PKCS#8 private, SPKI public). */
void auth_keys_pem(const auth_keys *k, tr_buf *priv, tr_buf *pub);
/* A key from its two PEM texts (need not be NUL-terminated). Errors: TR_EPARSE with err naming
 * what (where the texts came from): not Ed25519 PEM keys, or the public key not the private's. */
int auth_keys_from_pem(const char *priv, size_t priv_len, const char *pub, size_t pub_len,
                       const char *what, auth_keys **out, tr_error *err);
bool auth_keys_equal(const auth_keys *a, const auth_keys *b);
/* Replaces DATA_DIR's key files with k (cluster mode: the cluster's key, docs/auth.md). Each is
 * written to a temporary file renamed over the old one; the old private key is kept as
 * private_key.pem.replaced (mode 0600). Errors: -errno with err naming the file. */
int auth_keys_store(const char *data_dir, const auth_keys *k, tr_error *err);

/* ---- access tokens ---- */
typedef struct auth_claims {
    char sub[32]; /* the user's id: URL-safe base64 of its 16 bytes, padded (24 chars) */
    int64_t iat;  /* seconds since the epoch */
    int64_t exp;
    int type;   /* AUTH_TOKEN_TYPE_AUTH */
    bool admin; /* as when minted: may be stale, never use it for access decisions */
    char email[256];
    char csrf_token[32]; /* 20 alphanumerics */
} auth_claims;

/* Signs c as a compact JWT ({"alg":"EdDSA","typ":"JWT"}) appended to out. */
void auth_jwt_sign(const auth_keys *k, const auth_claims *c, tr_buf *out);

/* Verifies token[0..len): three base64url parts, a header whose alg is exactly "EdDSA", an
 * Ed25519 signature by k over the first two parts, claims with sub, exp and csrf_token, exp
 * after now (seconds since the epoch) and type AUTH_TOKEN_TYPE_AUTH. Errors: TR_EPARSE
 * (malformed), TR_EINVAL (wrong algorithm, bad signature, wrong type), TR_ETIMEDOUT (expired);
 * out is then undefined. Nothing is allocated. Thread: any. */
int auth_jwt_verify(const auth_keys *k, const char *token, size_t len, int64_t now,
                    auth_claims *out);

/* ---- the server's auth context ---- */
typedef struct auth_ctx auth_ctx;

/* The mails trail sends. */
typedef enum auth_mail_kind { AUTH_MAIL_VERIFY, AUTH_MAIL_RESET, AUTH_MAIL_CHANGE_EMAIL } auth_mail_kind;

/* The auth settings, filled by the server from config.textproto's auth { }, email { } and
 * server.site_url (docs/auth.md). Strings are borrowed; NULL reads as "". */
typedef struct auth_opts {
    uint32_t auth_token_ttl_sec;         /* access tokens */
    uint32_t refresh_token_ttl_sec;      /* sessions */
    bool require_email_verification;     /* no sign-in before the address is verified */
    uint32_t login_attempts_per_account; /* failed logins per account per minute; 0: no limit */
    uint32_t login_attempts_per_address; /* logins per client address per minute; 0: no limit */
    uint32_t password_min_length;
    const char *site_url;  /* the links in mails start with it */
    const char *smtp_host; /* "": no mail is sent, links are logged */
    uint32_t smtp_port;
    const char *smtp_username, *smtp_password;
    const char *smtp_encryption; /* "starttls", "tls" or "none" */
    const char *sender_address, *sender_name;
    const char *subject[3], *body[3]; /* the templates, by auth_mail_kind */
} auth_opts;

/* A context with o's settings (copied) and the keys (borrowed, must outlive the context). db_of
 * gives the database connection of the worker whose thread calls it (NULL: none). */
auth_ctx *auth_ctx_new(const auth_opts *o, const auth_keys *keys, struct db_conn *(*db_of)(void));
void auth_ctx_free(auth_ctx *a); /* NULL is a no-op */

/* Publishes a (borrowed; NULL to withdraw) as the process's context that guests' requests are
 * resolved against. Called once before the workers start and after they stopped. */
void auth_ctx_publish(const auth_ctx *a);
const auth_ctx *auth_ctx_published(void);

/* The caller of a request to a guest, from `Authorization: Bearer` or the auth_token cookie. */
typedef struct auth_caller {
    bool signed_in;
    bool via_cookie;
    auth_claims claims;
    /* when !signed_in but credentials were sent: why they did not count (static text) and the
     * status a handler that requires a user should answer (401, or 403 for a missing CSRF
     * token); NULL and 0 for an anonymous request */
    const char *error;
    int error_status;
} auth_caller;

/* Resolves req's caller with a. A cookie-authenticated request whose method is not GET, HEAD
 * or OPTIONS counts only with a CSRF-Token header equal to the token's csrf_token. Nothing is
 * allocated; with a == NULL every request is anonymous. Thread: any. */
void auth_request_caller(const auth_ctx *a, const struct http_request *req, auth_caller *out);
/* Each thread keeps the last few tokens it verified (their signatures are not checked again;
 * their expiry is): a thread that resolved callers calls this before it ends. */
void auth_request_caller_forget(void);

/* ---- the HTTP side ---- */

/* Handles a request whose path starts with /api/auth/ or /_/auth/ (auth_path_is_mine()); ud is
 * the auth_ctx. The worker's database connection comes from the context's db_of. */
void auth_http_handle(const struct http_request *req, struct http_response *res, void *ud);
bool auth_path_is_mine(const char *path, size_t len);

/* ---- users, for the CLI (auth/users.c) ---- */

/* Creates trail's auth tables where missing: _session (refresh tokens' digests) and _auth_code
 * (one-time codes' digests), both deleted with their _user row. */
int auth_store_init(struct db_conn *db, tr_error *err);
/* Its statements (CREATE ... IF NOT EXISTS), for the cluster's database (server/cluster_db.c). */
extern const char AUTH_STORE_DDL[];

/* Argon2id hash of password (NUL-terminated) in PHC form into out (crypto_pwhash_STRBYTES).
 * Errors: TR_ELIMIT when libsodium cannot get the memory. */
#define AUTH_HASH_BYTES 128
int auth_password_hash(const char *password, size_t len, char out[AUTH_HASH_BYTES]);
/* True when password matches hash (constant time in the password). */
bool auth_password_check(const char *hash, const char *password, size_t len);

/* Finds a user by email, UUID text (8-4-4-4-12) or base64url id into id. Errors: TR_ENOTFOUND,
 * TR_ESQL. */
int auth_user_find(struct db_conn *db, const char *user, uint8_t id[16], tr_error *err);
/* The id as the reference encodes it (URL-safe base64, padded): 24 chars + NUL. */
void auth_id_b64(const uint8_t id[16], char out[32]);
/* Creates a user (email normalised to lower case) with a hashed password; verified as asked.
 * Errors: TR_EINVAL (bad email or password: err says why), TR_ECONFLICT (email taken), TR_ESQL. */
int auth_user_create(struct db_conn *db, const char *email, const char *password, bool verified,
                     bool admin, uint8_t id_out[16], tr_error *err);
/* Deletes the sessions of user id (every refresh token stops working); *n how many. */
int auth_sessions_delete_user(struct db_conn *db, const uint8_t id[16], int64_t *n, tr_error *err);
/* Mints an access token and a new session (refresh token) for user id, as the login does.
 * auth_ttl_s/refresh_ttl_s: lifetimes. access and refresh are appended to. */
int auth_tokens_mint(struct db_conn *db, const auth_keys *k, const uint8_t id[16],
                     int64_t auth_ttl_s, int64_t refresh_ttl_s, tr_buf *access, tr_buf *refresh,
                     tr_buf *csrf, tr_error *err);

#endif
