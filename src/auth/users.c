/* auth/users.c: users, passwords, sessions and one-time codes in the database.
 *
 * DESIGN: passwords are hashed with Argon2id (libsodium's crypto_pwhash_str: a PHC string with
 * its own salt and parameters, so parameters can change later without breaking old hashes) at
 * t=2 passes over 19 MiB, one lane: the OWASP recommendation and the reference system's argon2
 * defaults. Refresh tokens and one-time codes are random alphanumerics; the database keeps only
 * their SHA-256, so reading it (a backup, a guest that could) gives no usable token. All of it
 * runs through cluster/appdb: on one node on the calling worker's own connection (the SQLite calls
 * themselves), in cluster mode on the cluster's leader, each statement a round trip there (the
 * worker's connection is then the schema mirror the statement is checked against first). */
#include "auth/auth_internal.h"

#include <ctype.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster/appdb.h"
#include "db/db.h"

#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u << 20)

const char AUTH_STORE_DDL[] =
    "CREATE TABLE IF NOT EXISTS _session (\n"
    "  id                 INTEGER PRIMARY KEY,\n"
    "  user               BLOB NOT NULL REFERENCES _user(id) ON DELETE CASCADE,\n"
    "  refresh_token_hash TEXT NOT NULL UNIQUE,\n" /* SHA-256 hex of the token */
    "  created            INTEGER NOT NULL DEFAULT (unixepoch()),\n"
    "  expires            INTEGER NOT NULL\n"
    ") STRICT;\n"
    "CREATE INDEX IF NOT EXISTS _session__user ON _session(user);\n"
    "CREATE TABLE IF NOT EXISTS _auth_code (\n"
    "  code_hash TEXT PRIMARY KEY NOT NULL,\n" /* SHA-256 hex of the code */
    "  user      BLOB NOT NULL REFERENCES _user(id) ON DELETE CASCADE,\n"
    "  kind      TEXT NOT NULL,\n" /* 'verify', 'reset', 'email' */
    "  email     TEXT,\n"          /* the new address of an 'email' code */
    "  expires   INTEGER NOT NULL\n"
    ") STRICT;\n"
    "CREATE INDEX IF NOT EXISTS _auth_code__user ON _auth_code(user, kind);\n";

int auth_store_init(db_conn *db, tr_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db_handle(db), AUTH_STORE_DDL, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = tr_error_set(err, TR_ESQL, "cannot create the auth tables: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int auth_password_hash(const char *password, size_t len, char out[AUTH_HASH_BYTES])
{
    _Static_assert(AUTH_HASH_BYTES >= crypto_pwhash_STRBYTES, "hash buffer");
    if (crypto_pwhash_str_alg(out, password, len, PW_OPSLIMIT, PW_MEMLIMIT,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return TR_ELIMIT;
    return 0;
}

bool auth_password_check(const char *hash, const char *password, size_t len)
{
    if (hash == NULL || hash[0] == '\0') return false;
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

void auth_id_b64(const uint8_t id[16], char out[32])
{
    sodium_bin2base64(out, 32, id, 16, sodium_base64_VARIANT_URLSAFE);
}

int auth__email_normalize(const char *in, char out[AUTH_MAX_EMAIL + 2])
{
    while (*in == ' ' || *in == '\t')
        in++;
    size_t n = strlen(in);
    while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n < 3 || n > AUTH_MAX_EMAIL) return -1;
    size_t at = 0, nat = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == 0x7F || c == '<' || c == '>' || c == '"' || c == ',' || c == ';' ||
            c == '\\' || c == '(' || c == ')')
            return -1;
        if (c == '@') {
            at = i;
            nat++;
        }
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    /* one @ with something on each side and a dot in the domain, not at its ends */
    if (nat != 1 || at == 0 || at + 1 >= n) return -1;
    const char *dot = strchr(out + at + 1, '.');
    if (dot == NULL || dot == out + at + 1 || out[n - 1] == '.') return -1;
    return 0;
}

const char *auth__password_policy(const auth_ctx *a, const char *pw)
{
    size_t n = strlen(pw);
    if (n < (a ? a->min_password : 8)) return "password too short";
    if (n > AUTH_MAX_PASSWORD) return "password too long (at most 128 bytes)";
    return NULL;
}

/* Prepares sql and binds args by the letters of types: b a 16-byte id, t text, i int64. */
static int prep(db_conn *db, adb_stmt **st, tr_error *err, const char *sql, const char *types, ...)
{
    sqlite3 *h = db_handle(db);
    if (adb_prepare(h, sql, st) != SQLITE_OK)
        return tr_error_set(err, TR_ESQL, "%s", adb_errmsg(h));
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        int rc = SQLITE_OK;
        if (types[i] == 'b')
            rc = adb_bind_blob(*st, i + 1, va_arg(ap, const uint8_t *), 16);
        else if (types[i] == 't')
            rc = adb_bind_text(*st, i + 1, va_arg(ap, const char *), -1);
        else
            rc = adb_bind_int64(*st, i + 1, va_arg(ap, int64_t));
        if (rc != SQLITE_OK) {
            va_end(ap);
            adb_finalize(*st);
            return tr_error_set(err, TR_ESQL, "%s", adb_errmsg(h));
        }
    }
    va_end(ap);
    return 0;
}

/* Steps st to its end; the number of rows changed into *changes (may be NULL). */
static int finish(db_conn *db, adb_stmt *st, int64_t *changes, tr_error *err)
{
    int s = adb_step(st);
    adb_finalize(st);
    sqlite3 *h = db_handle(db);
    if ((s & 0xff) == SQLITE_CONSTRAINT)
        return tr_error_set(err, TR_ECONFLICT, "%s", adb_errmsg(h));
    if (s != SQLITE_DONE) return tr_error_set(err, TR_ESQL, "%s", adb_errmsg(h));
    if (changes) *changes = adb_changes(h);
    return 0;
}

static const char user_cols[] = "SELECT id, email, password_hash, verified, admin FROM _user ";

static int read_user(db_conn *db, adb_stmt *st, auth_user *u, tr_error *err)
{
    int s = adb_step(st);
    int rc = 0;
    if (s == SQLITE_ROW) {
        const void *id = adb_column_blob(st, 0);
        if (id == NULL || adb_column_bytes(st, 0) != 16) {
            rc = tr_error_set(err, TR_ESQL, "a user's id is not 16 bytes");
        } else {
            memcpy(u->id, id, 16);
            snprintf(u->email, sizeof u->email, "%s", (const char *)adb_column_text(st, 1));
            const char *h = (const char *)adb_column_text(st, 2);
            snprintf(u->hash, sizeof u->hash, "%s", h ? h : "");
            u->verified = adb_column_int(st, 3) != 0;
            u->admin = adb_column_int(st, 4) != 0;
        }
    } else if (s == SQLITE_DONE) {
        rc = TR_ENOTFOUND;
    } else {
        rc = tr_error_set(err, TR_ESQL, "%s", adb_errmsg(db_handle(db)));
    }
    adb_finalize(st);
    return rc;
}

int auth__user_by_email(db_conn *db, const char *email, auth_user *out, tr_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "%sWHERE email = ?1", user_cols);
    adb_stmt *st;
    int rc = prep(db, &st, err, sql, "t", email);
    return rc < 0 ? rc : read_user(db, st, out, err);
}

int auth__user_by_id(db_conn *db, const uint8_t id[16], auth_user *out, tr_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "%sWHERE id = ?1", user_cols);
    adb_stmt *st;
    int rc = prep(db, &st, err, sql, "b", id);
    return rc < 0 ? rc : read_user(db, st, out, err);
}

int auth_user_find(db_conn *db, const char *user, uint8_t id[16], tr_error *err)
{
    auth_user u;
    char email[AUTH_MAX_EMAIL + 2];
    int rc = TR_ENOTFOUND;
    if (strchr(user, '@') != NULL && auth__email_normalize(user, email) == 0)
        rc = auth__user_by_email(db, email, &u, err);
    if (rc == TR_ENOTFOUND) {
        /* a UUID as text, or the reference's base64url id */
        uint8_t raw[16];
        size_t n = 0;
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%s", user);
        size_t tl = strlen(tmp);
        while (tl > 0 && tmp[tl - 1] == '=')
            tmp[--tl] = '\0';
        if (strlen(user) < 64 &&
            sodium_base642bin(raw, sizeof raw, tmp, tl, NULL, &n, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
            n == 16)
            rc = auth__user_by_id(db, raw, &u, err);
    }
    if (rc == TR_ENOTFOUND) {
        adb_stmt *st;
        char sql[256];
        snprintf(sql, sizeof sql, "%sWHERE id = uuid_parse(?1)", user_cols);
        rc = prep(db, &st, err, sql, "t", user);
        if (rc == 0) rc = read_user(db, st, &u, err);
        if (rc == TR_ESQL) rc = TR_ENOTFOUND; /* not a UUID */
    }
    if (rc == TR_ENOTFOUND) return tr_error_set(err, TR_ENOTFOUND, "no user %s", user);
    if (rc == 0) memcpy(id, u.id, 16);
    return rc;
}

int auth_user_create(db_conn *db, const char *email, const char *password, bool verified,
                     bool admin, uint8_t id_out[16], tr_error *err)
{
    char norm[AUTH_MAX_EMAIL + 2];
    if (auth__email_normalize(email, norm) < 0)
        return tr_error_set(err, TR_EINVAL, "not an email address: %s", email);
    size_t pl = strlen(password);
    if (pl == 0 || pl > AUTH_MAX_PASSWORD)
        return tr_error_set(err, TR_EINVAL, "a password of 1 to %d bytes is needed",
                            AUTH_MAX_PASSWORD);
    char hash[AUTH_HASH_BYTES];
    if (auth_password_hash(password, pl, hash) < 0)
        return tr_error_set(err, TR_ELIMIT, "out of memory hashing the password");
    adb_stmt *st;
    int rc = prep(db, &st, err,
                  "INSERT INTO _user (email, password_hash, verified, admin) VALUES (?1, ?2, ?3, "
                  "?4) RETURNING id",
                  "ttii", norm, hash, (int64_t)verified, (int64_t)admin);
    if (rc < 0) return rc;
    int s = adb_step(st);
    if (s == SQLITE_ROW && adb_column_bytes(st, 0) == 16) {
        memcpy(id_out, adb_column_blob(st, 0), 16);
        s = adb_step(st);
    }
    adb_finalize(st);
    if ((s & 0xff) == SQLITE_CONSTRAINT)
        return tr_error_set(err, TR_ECONFLICT, "a user with email %s exists", norm);
    if (s != SQLITE_DONE) return tr_error_set(err, TR_ESQL, "%s", adb_errmsg(db_handle(db)));
    return 0;
}

int auth__user_set_password(db_conn *db, const uint8_t id[16], const char *pw, tr_error *err)
{
    char hash[AUTH_HASH_BYTES];
    if (auth_password_hash(pw, strlen(pw), hash) < 0)
        return tr_error_set(err, TR_ELIMIT, "out of memory hashing the password");
    adb_stmt *st;
    int rc =
        prep(db, &st, err, "UPDATE _user SET password_hash = ?2 WHERE id = ?1", "bt", id, hash);
    return rc < 0 ? rc : finish(db, st, NULL, err);
}

int auth__user_set_verified(db_conn *db, const uint8_t id[16], bool v, tr_error *err)
{
    adb_stmt *st;
    int rc =
        prep(db, &st, err, "UPDATE _user SET verified = ?2 WHERE id = ?1", "bi", id, (int64_t)v);
    return rc < 0 ? rc : finish(db, st, NULL, err);
}

int auth__user_set_email(db_conn *db, const uint8_t id[16], const char *email, tr_error *err)
{
    adb_stmt *st;
    int rc = prep(db, &st, err, "UPDATE _user SET email = ?2 WHERE id = ?1", "bt", id, email);
    return rc < 0 ? rc : finish(db, st, NULL, err);
}

int auth__session_new(db_conn *db, const uint8_t id[16], int64_t ttl_s,
                      char refresh[AUTH_REFRESH_LEN + 1], tr_error *err)
{
    auth__random_alnum(refresh, AUTH_REFRESH_LEN);
    char digest[65];
    auth__secret_digest(refresh, AUTH_REFRESH_LEN, digest);
    adb_stmt *st;
    int rc = prep(db, &st, err,
                  "INSERT INTO _session (user, refresh_token_hash, expires) VALUES (?1, ?2, "
                  "unixepoch() + ?3)",
                  "bti", id, digest, ttl_s);
    return rc < 0 ? rc : finish(db, st, NULL, err);
}

int auth__session_user(db_conn *db, const char *refresh, uint8_t id[16], tr_error *err)
{
    char digest[65];
    auth__secret_digest(refresh, strlen(refresh), digest);
    adb_stmt *st;
    int rc = prep(db, &st, err,
                  "SELECT user FROM _session WHERE refresh_token_hash = ?1 AND expires > "
                  "unixepoch()",
                  "t", digest);
    if (rc < 0) return rc;
    int s = adb_step(st);
    if (s == SQLITE_ROW && adb_column_bytes(st, 0) == 16)
        memcpy(id, adb_column_blob(st, 0), 16);
    else if (s == SQLITE_ROW || s == SQLITE_DONE)
        rc = TR_ENOTFOUND;
    else
        rc = tr_error_set(err, TR_ESQL, "%s", adb_errmsg(db_handle(db)));
    adb_finalize(st);
    return rc;
}

int auth__session_delete(db_conn *db, const char *refresh, tr_error *err)
{
    char digest[65];
    auth__secret_digest(refresh, strlen(refresh), digest);
    adb_stmt *st;
    int rc = prep(db, &st, err, "DELETE FROM _session WHERE refresh_token_hash = ?1", "t", digest);
    int64_t n = 0;
    if (rc == 0) rc = finish(db, st, &n, err);
    return rc < 0 ? rc : n > 0 ? 0 : TR_ENOTFOUND;
}

int auth_sessions_delete_user(db_conn *db, const uint8_t id[16], int64_t *n, tr_error *err)
{
    adb_stmt *st;
    int rc = prep(db, &st, err, "DELETE FROM _session WHERE user = ?1", "b", id);
    return rc < 0 ? rc : finish(db, st, n, err);
}

int auth__code_new(db_conn *db, const uint8_t id[16], const char *kind, const char *email,
                   int64_t ttl_s, char code[AUTH_CODE_LEN + 1], tr_error *err)
{
    adb_stmt *st;
    int rc = prep(db, &st, err,
                  "DELETE FROM _auth_code WHERE (user = ?1 AND kind = ?2) OR expires <= "
                  "unixepoch()",
                  "bt", id, kind);
    if (rc == 0) rc = finish(db, st, NULL, err);
    if (rc < 0) return rc;
    auth__random_alnum(code, AUTH_CODE_LEN);
    char digest[65];
    auth__secret_digest(code, AUTH_CODE_LEN, digest);
    rc = prep(db, &st, err,
              "INSERT INTO _auth_code (code_hash, user, kind, email, expires) VALUES (?1, ?2, "
              "?3, ?4, unixepoch() + ?5)",
              "tbtti", digest, id, kind, email ? email : "", ttl_s);
    return rc < 0 ? rc : finish(db, st, NULL, err);
}

int auth__code_take(db_conn *db, const char *kind, const char *code, uint8_t id[16],
                    char email[AUTH_MAX_EMAIL + 2], tr_error *err)
{
    char digest[65];
    auth__secret_digest(code, strlen(code), digest);
    adb_stmt *st;
    int rc = prep(db, &st, err,
                  "DELETE FROM _auth_code WHERE code_hash = ?1 AND kind = ?2 AND expires > "
                  "unixepoch() RETURNING user, email",
                  "tt", digest, kind);
    if (rc < 0) return rc;
    int s = adb_step(st);
    if (s == SQLITE_ROW && adb_column_bytes(st, 0) == 16) {
        memcpy(id, adb_column_blob(st, 0), 16);
        const char *e = (const char *)adb_column_text(st, 1);
        snprintf(email, AUTH_MAX_EMAIL + 2, "%s", e ? e : "");
        s = adb_step(st);
    } else if (s == SQLITE_DONE) {
        rc = TR_ENOTFOUND;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = tr_error_set(err, TR_ESQL, "%s", adb_errmsg(db_handle(db)));
    adb_finalize(st);
    return rc;
}

void auth__claims_for(const auth_user *u, int64_t now, int64_t ttl_s, auth_claims *c)
{
    memset(c, 0, sizeof *c);
    auth_id_b64(u->id, c->sub);
    c->iat = now;
    c->exp = now + ttl_s;
    c->type = AUTH_TOKEN_TYPE_AUTH;
    c->admin = u->admin;
    snprintf(c->email, sizeof c->email, "%s", u->email);
    auth__random_alnum(c->csrf_token, AUTH_CSRF_LEN);
}

int auth_tokens_mint(db_conn *db, const auth_keys *k, const uint8_t id[16], int64_t auth_ttl_s,
                     int64_t refresh_ttl_s, tr_buf *access, tr_buf *refresh, tr_buf *csrf,
                     tr_error *err)
{
    auth_user u;
    int rc = auth__user_by_id(db, id, &u, err);
    if (rc == TR_ENOTFOUND) return tr_error_set(err, rc, "no such user");
    if (rc < 0) return rc;
    char rt[AUTH_REFRESH_LEN + 1];
    rc = auth__session_new(db, id, refresh_ttl_s, rt, err);
    if (rc < 0) return rc;
    auth_claims c;
    auth__claims_for(&u, tr_wall_ms() / 1000, auth_ttl_s, &c);
    auth_jwt_sign(k, &c, access);
    tr_buf_append_str(refresh, rt);
    tr_buf_append_str(csrf, c.csrf_token);
    sodium_memzero(rt, sizeof rt);
    return 0;
}
