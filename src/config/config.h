/* config/config.h: trail's configuration, read from config.textproto (protobuf text format).
 *
 * DESIGN: the struct below is filled in three layers: cfg_init_defaults(), then cfg_load_file()
 * over it (only fields present in the file change), then command-line flags written over the
 * struct by the caller. So precedence is flag > config file > default, and nothing here knows about
 * flags. After start-up the struct is read-only and may be read from every thread.
 *
 * The parser is trail's own, driven by a schema (config.c: one table row per field). A new section
 * is a struct here, a field table in config.c, one row in the top-level table, and its defaults in
 * cfg_init_defaults() and the default file text (cfg_default_text()). */
#ifndef TRAIL_CONFIG_CONFIG_H
#define TRAIL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* `server { ... }`: the HTTP server. */
typedef struct cfg_server {
    char *address;                /* "localhost:4000" (owned) */
    int runtime_threads;          /* 0 = number of CPUs */
    uint64_t max_body_bytes;      /* 16 MiB */
    uint64_t max_buffered_body_bytes; /* all bodies a worker is receiving, 256 MiB; 0: no limit */
    uint32_t max_header_bytes;    /* whole header section, 64 KiB */
    uint32_t max_headers;         /* 100 */
    uint32_t max_target_bytes;    /* request target, 8 KiB */
    uint32_t idle_timeout_ms;     /* keep-alive idle, 60000 */
    uint32_t header_timeout_ms;   /* slow headers, 10000 */
    uint32_t body_timeout_ms;     /* slow body: longest pause, 30000 */
    uint32_t body_total_timeout_ms; /* slow body: the whole body, 300000 */
    uint32_t shutdown_timeout_ms; /* in-flight requests on SIGTERM, 10000 */
    uint32_t max_connections;     /* per worker, 10000 (lowered to fit the open-files limit) */
    bool access_log;              /* one line per request to stdout, true; --quiet clears it */
    char *site_url;               /* the public URL, for links in mails (owned) */
    bool enable_record_transactions; /* POST /api/transaction/v1/execute, false */
} cfg_server;

/* `runtime { ... }`: limits for each guest call (WASM handlers and jobs). */
typedef struct cfg_runtime {
    uint32_t memory_limit_mb; /* linear memory per instance, 64 */
    uint32_t deadline_ms;     /* wall-clock per call, 30000 */
    uint32_t cpu_budget_ms;   /* CPU per call, 10000 */
} cfg_runtime;

/* `jobs { ... }`: the cron scheduler. */
typedef struct cfg_jobs {
    char *time_zone;      /* IANA name for cron schedules, "UTC" (owned) */
    uint32_t deadline_ms; /* wall-clock per job run, 600000 */
} cfg_jobs;

/* `fetch { ... }`: outgoing HTTP from guests (guest/fetch.h). */
typedef struct cfg_fetch {
    bool enabled;                /* true; false refuses every request */
    char **allowed_hosts;        /* owned array of owned strings; empty = any host */
    size_t allowed_hosts_len;
    char **allowed_private_hosts; /* hosts that may resolve to loopback/private addresses */
    size_t allowed_private_hosts_len;
    uint32_t timeout_ms;         /* per request when the guest gives none, 30000 */
    uint64_t max_response_bytes; /* largest response body, 16 MiB */
} cfg_fetch;

/* database { ... } */
typedef struct cfg_database {
    uint32_t result_cache_mb; /* remembered query results per worker, 8; 0 = off */
    uint32_t temp_max_mb;     /* temporary files of a worker's connection, 256; 1..1048576 */
} cfg_database;

/* kv { ... }: the key-value store every worker shares (trailbase-wasm/kv, kv/kv.h). */
typedef struct cfg_kv {
    uint32_t max_mb;              /* keys, values and their overhead, 64 */
    bool persist;                 /* keep a snapshot in data/kv.snapshot, false */
    uint32_t persist_interval_ms; /* how often it is written when changed, 10000 */
} cfg_kv;

/* auth { ... }: users and sign-in (auth/auth.h, docs/auth.md). */
typedef struct cfg_auth {
    uint32_t auth_token_ttl_sec;      /* access tokens, 3600 */
    uint32_t refresh_token_ttl_sec;   /* sessions, 30 days */
    bool require_email_verification; /* true: no sign-in before the address is verified */
    uint32_t login_attempts_per_account; /* failed logins per account per minute, 5; 0: none */
    uint32_t login_attempts_per_address; /* logins per client address per minute, 30; 0: none */
    uint32_t password_min_length;     /* 8 */
} cfg_auth;

/* email { ... }: the SMTP server for verification and reset mails (owned strings). */
typedef struct cfg_email {
    char *smtp_host; /* "": no mail is sent, links are logged */
    uint32_t smtp_port;
    char *smtp_username, *smtp_password;
    char *smtp_encryption; /* "starttls", "tls" or "none" */
    char *sender_address, *sender_name;
    char *verification_subject, *verification_body;
    char *password_reset_subject, *password_reset_body;
    char *change_email_subject, *change_email_body;
} cfg_email;

/* Record API permissions (acl_world, acl_authenticated), the reference system's PermissionFlag. */
enum {
    CFG_PERM_CREATE = 1,
    CFG_PERM_READ = 2,
    CFG_PERM_UPDATE = 4,
    CFG_PERM_DELETE = 8,
    CFG_PERM_SCHEMA = 16,
};
/* conflict_resolution: what an insert does with a row whose key exists. */
enum { CFG_CONFLICT_UNDEFINED = 0, CFG_CONFLICT_ABORT = 1, CFG_CONFLICT_IGNORE = 4,
       CFG_CONFLICT_REPLACE = 5 };

/* `record_apis { ... }`, repeated: a table or view served under /api/records/v1/NAME
 * (records/records.h), with the reference system's field names. Strings owned, NULL if unset. */
typedef struct cfg_record_api {
    char *name;
    char *table_name;
    int conflict_resolution;               /* CFG_CONFLICT_* */
    bool autofill_missing_user_id_columns; /* accepted; see docs/records.md */
    bool enable_subscriptions;
    uint32_t acl_world;         /* CFG_PERM_* bits */
    uint32_t acl_authenticated; /* likewise */
    char **excluded_columns;
    size_t excluded_columns_len;
    char *create_access_rule; /* SQL expressions over _ROW_, _REQ_, _USER_ */
    char *read_access_rule;
    char *update_access_rule;
    char *delete_access_rule;
    char *schema_access_rule;
    char **expand; /* foreign key columns that may be expanded */
    size_t expand_len;
    uint64_t listing_hard_limit; /* 0: the default, 1024 */
} cfg_record_api;

/* `cluster { ... }`: cluster mode (docs/scaling.md); off while address is empty. */
typedef struct cfg_cluster {
    char *address; /* "HOST:PORT" of this node's dqlite node; "" = single node (owned) */
    char **join;   /* addresses of members to join through; none: the first member (owned) */
    size_t join_len;
} cfg_cluster;

typedef struct cfg {
    cfg_server server;
    cfg_runtime runtime;
    cfg_jobs jobs;
    cfg_fetch fetch;
    cfg_database database;
    cfg_kv kv;
    cfg_auth auth;
    cfg_email email;
    cfg_cluster cluster;
    cfg_record_api *record_apis; /* owned array */
    size_t record_apis_len;
} cfg;

/* Fills c with the defaults (allocates the default strings; release with cfg_deinit()). */
void cfg_init_defaults(cfg *c);

/* Loads the file at path over c: fields the file sets replace c's values; others stay. Errors:
 * -ENOENT when the file does not exist (err says so), another -errno when it cannot be read,
 * TR_ECONFIG for anything wrong in the text, with err->msg "path:line:col: what was expected".
 * On failure c holds a mix of old and new values but stays valid for cfg_deinit(). */
int cfg_load_file(const char *path, cfg *c, tr_error *err);

/* Like cfg_load_file() over text[0..len) that need not be NUL-terminated; name is used in error
 * messages in place of the path. */
int cfg_parse(const char *name, const char *text, size_t len, cfg *c, tr_error *err);

/* Releases the strings c owns; c may be re-initialised afterwards. */
void cfg_deinit(cfg *c);

/* The commented default config.textproto: every setting with its default value. Static text. */
const char *cfg_default_text(void);

/* Replaces a string field (e.g. &c->server.address) with a copy of value; for command-line flags.
 */
void cfg_set_string(char **field, const char *value);

#endif
