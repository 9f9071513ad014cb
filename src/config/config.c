/* config/config.c: trail's settings: their defaults, their schema for the textproto parser, the
 * commented default file, and loading config.textproto.
 *
 * DESIGN: a section is one struct in config.h, one field table here, one row in top_fields, its
 * defaults in cfg_init_defaults() and its lines in default_text. The unit test
 * config_default_text_matches_defaults parses default_text and compares it with
 * cfg_init_defaults(), so the documented file cannot drift from the code. Ranges reject values that
 * are surely mistakes (a zero-byte header limit, a week-long timeout) at start-up, with the line.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB              1024ll
#define MIB              (1024ll * 1024)
#define DAY_MS           (24ll * 3600 * 1000)
#define MAX_CONFIG_BYTES (1 << 20)

/* ---- checks for string values ---- */

static const char *check_address(const char *v)
{
    const char *want = "HOST:PORT with a port 0..65535, e.g. \"localhost:4000\"";
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v) return want;
    const char *port = colon + 1;
    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n || atoi(port) > 65535) return want;
    if (strpbrk(v, " \t\r\n/") != NULL) return want;
    return NULL;
}

static const char *check_cluster_address(const char *v)
{
    if (v[0] == '\0') return NULL; /* cluster mode off */
    const char *bad = check_address(v);
    if (bad) return bad;
    if (strcmp(strrchr(v, ':'), ":0") == 0) return "HOST:PORT with a port other than 0";
    return NULL;
}

static const char *check_cluster_member(const char *v)
{
    return v[0] == '\0' ? "HOST:PORT of a member of the cluster" : check_cluster_address(v);
}

static const char *check_time_zone(const char *v)
{
    if (v[0] == '\0' || strpbrk(v, " \t\r\n") != NULL || strstr(v, "..") != NULL)
        return "an IANA time zone name such as \"UTC\" or \"Europe/Berlin\"";
    return NULL;
}

static const char *check_host(const char *v)
{
    if (v[0] == '\0' || strpbrk(v, " \t\r\n/@?#") != NULL)
        return "a host name such as \"api.example.com\" or \"*.example.com\" (no scheme, no path)";
    return NULL;
}

static const char *check_site_url(const char *v)
{
    if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
        strpbrk(v, " \t\r\n\"<>") != NULL)
        return "a URL such as \"https://example.com\"";
    return NULL;
}

static const char *check_encryption(const char *v)
{
    if (strcmp(v, "starttls") != 0 && strcmp(v, "tls") != 0 && strcmp(v, "none") != 0)
        return "\"starttls\", \"tls\" or \"none\"";
    return NULL;
}

/* One line without control characters: it goes into a mail header. */
static const char *check_line(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) return "one line of text";
    return NULL;
}

/* ---- the schema ---- */

#define INT_FIELD(ty, st, fld, lo, hi)                                                    \
    {                                                                                     \
        .name = #fld, .type = (ty), .offset = offsetof(st, fld), .min = (lo), .max = (hi) \
    }
#define STR_FIELD(st, fld, chk)                                                        \
    {                                                                                  \
        .name = #fld, .type = CFG__STRING, .offset = offsetof(st, fld), .check = (chk) \
    }

static const cfg__field server_fields[] = {
    STR_FIELD(cfg_server, address, check_address),
    INT_FIELD(CFG__INT, cfg_server, runtime_threads, 0, 1024),
    INT_FIELD(CFG__UINT64, cfg_server, max_body_bytes, 0, 1024 * 1024 * MIB),
    INT_FIELD(CFG__UINT64, cfg_server, max_buffered_body_bytes, 0, 1024 * 1024 * MIB),
    INT_FIELD(CFG__UINT32, cfg_server, max_header_bytes, 1 * KIB, 64 * MIB),
    INT_FIELD(CFG__UINT32, cfg_server, max_headers, 1, 100000),
    INT_FIELD(CFG__UINT32, cfg_server, max_target_bytes, 64, 64 * MIB),
    INT_FIELD(CFG__UINT32, cfg_server, idle_timeout_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_server, header_timeout_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_server, body_timeout_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_server, body_total_timeout_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_server, shutdown_timeout_ms, 0, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_server, max_connections, 1, 10000000),
    {.name = "access_log", .type = CFG__BOOL, .offset = offsetof(cfg_server, access_log)},
    STR_FIELD(cfg_server, site_url, check_site_url),
    {.name = "enable_record_transactions",
     .type = CFG__BOOL,
     .offset = offsetof(cfg_server, enable_record_transactions)},
};
static const cfg__schema server_schema = {"server", server_fields, TR_ARRAY_LEN(server_fields)};

static const cfg__field runtime_fields[] = {
    INT_FIELD(CFG__UINT32, cfg_runtime, memory_limit_mb, 4, 4095), /* the engine's [4 MiB, 4 GiB) */
    INT_FIELD(CFG__UINT32, cfg_runtime, deadline_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT32, cfg_runtime, cpu_budget_ms, 1, DAY_MS),
};
static const cfg__schema runtime_schema = {"runtime", runtime_fields, TR_ARRAY_LEN(runtime_fields)};

static const cfg__field jobs_fields[] = {
    STR_FIELD(cfg_jobs, time_zone, check_time_zone),
    INT_FIELD(CFG__UINT32, cfg_jobs, deadline_ms, 1, DAY_MS),
};
static const cfg__schema jobs_schema = {"jobs", jobs_fields, TR_ARRAY_LEN(jobs_fields)};

static const cfg__field fetch_fields[] = {
    {.name = "enabled", .type = CFG__BOOL, .offset = offsetof(cfg_fetch, enabled)},
    INT_FIELD(CFG__UINT32, cfg_fetch, timeout_ms, 1, DAY_MS),
    INT_FIELD(CFG__UINT64, cfg_fetch, max_response_bytes, 1, 1024 * 1024 * MIB),
    {.name = "allowed_hosts",
     .type = CFG__STRING_LIST,
     .offset = offsetof(cfg_fetch, allowed_hosts),
     .len_offset = offsetof(cfg_fetch, allowed_hosts_len),
     .check = check_host},
    {.name = "allowed_private_hosts",
     .type = CFG__STRING_LIST,
     .offset = offsetof(cfg_fetch, allowed_private_hosts),
     .len_offset = offsetof(cfg_fetch, allowed_private_hosts_len),
     .check = check_host},
};
static const cfg__schema fetch_schema = {"fetch", fetch_fields, TR_ARRAY_LEN(fetch_fields)};

static const cfg__field database_fields[] = {
    INT_FIELD(CFG__UINT32, cfg_database, result_cache_mb, 0, 65536),
    INT_FIELD(CFG__UINT32, cfg_database, temp_max_mb, 1, 1048576),
};
static const cfg__schema database_schema = {"database", database_fields,
                                            TR_ARRAY_LEN(database_fields)};

static const cfg__field kv_fields[] = {
    INT_FIELD(CFG__UINT32, cfg_kv, max_mb, 1, 1024 * 1024),
    {.name = "persist", .type = CFG__BOOL, .offset = offsetof(cfg_kv, persist)},
    INT_FIELD(CFG__UINT32, cfg_kv, persist_interval_ms, 100, DAY_MS),
};
static const cfg__schema kv_schema = {"kv", kv_fields, TR_ARRAY_LEN(kv_fields)};

static const cfg__field auth_fields[] = {
    INT_FIELD(CFG__UINT32, cfg_auth, auth_token_ttl_sec, 10, 365 * 86400),
    INT_FIELD(CFG__UINT32, cfg_auth, refresh_token_ttl_sec, 60, 10 * 365 * 86400),
    {.name = "require_email_verification",
     .type = CFG__BOOL,
     .offset = offsetof(cfg_auth, require_email_verification)},
    INT_FIELD(CFG__UINT32, cfg_auth, login_attempts_per_account, 0, 1000000),
    INT_FIELD(CFG__UINT32, cfg_auth, login_attempts_per_address, 0, 1000000),
    INT_FIELD(CFG__UINT32, cfg_auth, password_min_length, 1, 128),
};
static const cfg__schema auth_schema = {"auth", auth_fields, TR_ARRAY_LEN(auth_fields)};

static const cfg__field email_fields[] = {
    STR_FIELD(cfg_email, smtp_host, check_line),
    INT_FIELD(CFG__UINT32, cfg_email, smtp_port, 1, 65535),
    STR_FIELD(cfg_email, smtp_username, check_line),
    STR_FIELD(cfg_email, smtp_password, check_line),
    STR_FIELD(cfg_email, smtp_encryption, check_encryption),
    STR_FIELD(cfg_email, sender_address, check_line),
    STR_FIELD(cfg_email, sender_name, check_line),
    STR_FIELD(cfg_email, verification_subject, check_line),
    STR_FIELD(cfg_email, verification_body, NULL),
    STR_FIELD(cfg_email, password_reset_subject, check_line),
    STR_FIELD(cfg_email, password_reset_body, NULL),
    STR_FIELD(cfg_email, change_email_subject, check_line),
    STR_FIELD(cfg_email, change_email_body, NULL),
};
static const cfg__schema email_schema = {"email", email_fields, TR_ARRAY_LEN(email_fields)};

static const cfg__enum_value perm_enums[] = {
    {"CREATE", CFG_PERM_CREATE}, {"READ", CFG_PERM_READ},     {"UPDATE", CFG_PERM_UPDATE},
    {"DELETE", CFG_PERM_DELETE}, {"SCHEMA", CFG_PERM_SCHEMA},
};
static const cfg__enum_value conflict_enums[] = {
    {"CONFLICT_RESOLUTION_STRATEGY_UNDEFINED", CFG_CONFLICT_UNDEFINED},
    {"ABORT", CFG_CONFLICT_ABORT},
    {"IGNORE", CFG_CONFLICT_IGNORE},
    {"REPLACE", CFG_CONFLICT_REPLACE},
};
#define RA_STR(fld) STR_FIELD(cfg_record_api, fld, NULL)
#define RA_LIST(fld)                                                                         \
    {                                                                                        \
        .name = #fld, .type = CFG__STRING_LIST, .offset = offsetof(cfg_record_api, fld),     \
        .len_offset = offsetof(cfg_record_api, fld##_len)                                    \
    }
#define RA_FLAGS(fld)                                                                        \
    {                                                                                        \
        .name = #fld, .type = CFG__FLAGS, .offset = offsetof(cfg_record_api, fld),           \
        .enums = perm_enums, .nenums = TR_ARRAY_LEN(perm_enums)                              \
    }
static const cfg__field record_api_fields[] = {
    RA_STR(name),
    RA_STR(table_name),
    {.name = "conflict_resolution",
     .type = CFG__ENUM,
     .offset = offsetof(cfg_record_api, conflict_resolution),
     .enums = conflict_enums,
     .nenums = TR_ARRAY_LEN(conflict_enums)},
    {.name = "autofill_missing_user_id_columns",
     .type = CFG__BOOL,
     .offset = offsetof(cfg_record_api, autofill_missing_user_id_columns)},
    {.name = "enable_subscriptions",
     .type = CFG__BOOL,
     .offset = offsetof(cfg_record_api, enable_subscriptions)},
    RA_FLAGS(acl_world),
    RA_FLAGS(acl_authenticated),
    RA_LIST(excluded_columns),
    RA_STR(create_access_rule),
    RA_STR(read_access_rule),
    RA_STR(update_access_rule),
    RA_STR(delete_access_rule),
    RA_STR(schema_access_rule),
    RA_LIST(expand),
    INT_FIELD(CFG__UINT64, cfg_record_api, listing_hard_limit, 1, 1000000),
};
static const cfg__schema record_api_schema = {"record_apis", record_api_fields,
                                              TR_ARRAY_LEN(record_api_fields)};

static const cfg__field cluster_fields[] = {
    STR_FIELD(cfg_cluster, address, check_cluster_address),
    {.name = "join",
     .type = CFG__STRING_LIST,
     .offset = offsetof(cfg_cluster, join),
     .len_offset = offsetof(cfg_cluster, join_len),
     .check = check_cluster_member},
};
static const cfg__schema cluster_schema = {"cluster", cluster_fields,
                                           TR_ARRAY_LEN(cluster_fields)};

#define SECTION(fld, sch)                                                                  \
    {                                                                                      \
        .name = #fld, .type = CFG__MESSAGE, .offset = offsetof(cfg, fld), .schema = &(sch) \
    }
static const cfg__field top_fields[] = {
    SECTION(server, server_schema),
    SECTION(runtime, runtime_schema),
    SECTION(jobs, jobs_schema),
    SECTION(fetch, fetch_schema),
    SECTION(database, database_schema),
    SECTION(kv, kv_schema),
    SECTION(auth, auth_schema),
    SECTION(email, email_schema),
    SECTION(cluster, cluster_schema),
    {.name = "record_apis",
     .type = CFG__MESSAGE_LIST,
     .offset = offsetof(cfg, record_apis),
     .len_offset = offsetof(cfg, record_apis_len),
     .elem_size = sizeof(cfg_record_api),
     .schema = &record_api_schema},
};
static const cfg__schema top_schema = {"", top_fields, TR_ARRAY_LEN(top_fields)};

/* ---- defaults ---- */

void cfg_init_defaults(cfg *c)
{
    *c = (cfg){
        .server =
            {
                .address = tr_strdup("localhost:4000"),
                .runtime_threads = 0,
                .max_body_bytes = 16 * MIB,
                .max_buffered_body_bytes = 256 * MIB,
                .max_header_bytes = 64 * KIB,
                .max_headers = 100,
                .max_target_bytes = 8 * KIB,
                .idle_timeout_ms = 60000,
                .header_timeout_ms = 10000,
                .body_timeout_ms = 30000,
                .body_total_timeout_ms = 300000,
                .shutdown_timeout_ms = 10000,
                .max_connections = 10000,
                .access_log = true,
                .site_url = tr_strdup("http://localhost:4000"),
            },
        .runtime =
            {
                .memory_limit_mb = 64,
                .deadline_ms = 30000,
                .cpu_budget_ms = 10000,
            },
        .jobs = {.time_zone = tr_strdup("UTC"), .deadline_ms = 600000},
        .fetch =
            {
                .enabled = true,
                .allowed_hosts = NULL,
                .allowed_hosts_len = 0,
                .timeout_ms = 30000,
                .max_response_bytes = 16 * MIB,
            },
        .database = {.result_cache_mb = 8, .temp_max_mb = 256},
        .kv = {.max_mb = 64, .persist = false, .persist_interval_ms = 10000},
        .cluster = {.address = tr_strdup("")},
        .auth =
            {
                .auth_token_ttl_sec = 3600,
                .refresh_token_ttl_sec = 30 * 86400,
                .require_email_verification = true,
                .login_attempts_per_account = 5,
                .login_attempts_per_address = 30,
                .password_min_length = 8,
            },
        .email =
            {
                .smtp_host = tr_strdup(""),
                .smtp_port = 587,
                .smtp_username = tr_strdup(""),
                .smtp_password = tr_strdup(""),
                .smtp_encryption = tr_strdup("starttls"),
                .sender_address = tr_strdup("noreply@localhost"),
                .sender_name = tr_strdup("trail"),
                .verification_subject = tr_strdup(""),
                .verification_body = tr_strdup(""),
                .password_reset_subject = tr_strdup(""),
                .password_reset_body = tr_strdup(""),
                .change_email_subject = tr_strdup(""),
                .change_email_body = tr_strdup(""),
            },
    };
}

static const char default_text[] =
    "# trail configuration (protobuf text format).\n"
    "#\n"
    "# Every setting is shown with its default value. Lines starting with '#' are comments.\n"
    "# Command-line flags (--address, --runtime-threads) override what is set here.\n"
    "# Sizes are in bytes, durations in milliseconds.\n"
    "\n"
    "server {\n"
    "  # Where the HTTP server listens, HOST:PORT: a numeric address listens there only, a\n"
    "  # name on every address it names (localhost: 127.0.0.1 and ::1). Flag: --address.\n"
    "  address: \"localhost:4000\"\n"
    "  # Worker threads, each with its own event loop, database connection and JavaScript\n"
    "  # isolates; 0 means one per CPU. Flag: --runtime-threads.\n"
    "  runtime_threads: 0\n"
    "  # Largest request body accepted (16 MiB); larger requests get 413.\n"
    "  max_body_bytes: 16777216\n"
    "  # Request bodies a worker holds at once while they arrive (256 MiB; 0: no limit); a body\n"
    "  # that would go over gets 503, so that many slow uploads cannot exhaust memory.\n"
    "  max_buffered_body_bytes: 268435456\n"
    "  # Largest header section of a request (64 KiB); larger gets 431.\n"
    "  max_header_bytes: 65536\n"
    "  # Most header fields in one request; more gets 431.\n"
    "  max_headers: 100\n"
    "  # Longest request target (path and query, 8 KiB); longer gets 414.\n"
    "  max_target_bytes: 8192\n"
    "  # A keep-alive connection idle this long is closed.\n"
    "  idle_timeout_ms: 60000\n"
    "  # A request whose headers take longer than this to arrive is dropped.\n"
    "  header_timeout_ms: 10000\n"
    "  # A request body that pauses longer than this gets 408 and the connection is closed.\n"
    "  body_timeout_ms: 30000\n"
    "  # A request body that takes longer than this in all, however steadily its bytes come,\n"
    "  # gets 408 and the connection is closed (5 minutes).\n"
    "  body_total_timeout_ms: 300000\n"
    "  # On SIGINT/SIGTERM, in-flight requests get this long to finish.\n"
    "  shutdown_timeout_ms: 10000\n"
    "  # Open connections per worker thread (lowered at start so that all workers' together\n"
    "  # leave a tenth of the open-files limit, at least 256, for everything else). Beyond it a\n"
    "  # new connection closes the one idle the longest, or gets 503 when none is idle.\n"
    "  max_connections: 10000\n"
    "  # One line per request on stdout (method, path, status, bytes, microseconds).\n"
    "  # Flag: --quiet turns it off.\n"
    "  access_log: true\n"
    "  # The site's public URL: links in verification and password-reset mails start with it,\n"
    "  # and with https:// the auth cookies are marked Secure.\n"
    "  site_url: \"http://localhost:4000\"\n"
    "  # POST /api/transaction/v1/execute: several Record API writes in one request, optionally\n"
    "  # all or nothing (docs/records.md).\n"
    "  enable_record_transactions: false\n"
    "}\n"
    "\n"
    "runtime {\n"
    "  # Linear memory each WebAssembly instance may grow to, in MiB.\n"
    "  memory_limit_mb: 64\n"
    "  # Wall-clock time one handler or job call may take.\n"
    "  deadline_ms: 30000\n"
    "  # CPU time one handler or job call may use.\n"
    "  cpu_budget_ms: 10000\n"
    "}\n"
    "\n"
    "jobs {\n"
    "  # Time zone in which cron schedules are read (IANA name).\n"
    "  time_zone: \"UTC\"\n"
    "  # Wall-clock time one job run may take before it is recorded as failed.\n"
    "  deadline_ms: 600000\n"
    "}\n"
    "\n"
    "fetch {\n"
    "  # Outgoing HTTP(S) requests from handlers and jobs (fetch()); false refuses them all.\n"
    "  enabled: true\n"
    "  # Hosts that fetch() may reach, one line each; none listed (the default) means any\n"
    "  # public host. Once one is listed, requests to other hosts are refused, redirects\n"
    "  # included. A name matches on any port; \"*.example.org\" matches every subdomain of\n"
    "  # example.org but not example.org itself.\n"
    "  #   allowed_hosts: \"api.example.com\"\n"
    "  #   allowed_hosts: \"*.example.org\"\n"
    "  # Hosts that fetch() may reach although they are (or resolve to) a loopback, private,\n"
    "  # link-local, unspecified or other non-public address: none by default, so this\n"
    "  # machine and its local network are out of reach. The address is checked when the\n"
    "  # connection is made, after DNS and on every redirect. Same syntax as allowed_hosts.\n"
    "  #   allowed_private_hosts: \"localhost\"\n"
    "  #   allowed_private_hosts: \"10.0.0.7\"\n"
    "  # A request with no timeout of its own fails after this long (redirects included).\n"
    "  timeout_ms: 30000\n"
    "  # Largest response body fetch() accepts (16 MiB); a larger one fails the request.\n"
    "  max_response_bytes: 16777216\n"
    "}\n"
    "\n"
    "database {\n"
    "  # Each worker remembers the results of expensive read-only queries (thousands of rows\n"
    "  # scanned) and answers the same query again from memory while the database is unchanged;\n"
    "  # any commit, by any connection or process, forgets them. Its memory, in MiB; 0 turns\n"
    "  # it off.\n"
    "  result_cache_mb: 8\n"
    "  # The temporary files one worker's connection may hold at once, in MiB: what a handler's\n"
    "  # statement sorts, groups or materializes beyond its memory. A statement that needs more\n"
    "  # fails naming this setting.\n"
    "  temp_max_mb: 256\n"
    "}\n"
    "\n"
    "kv {\n"
    "  # The key-value store every worker and component shares (trailbase-wasm/kv), in memory:\n"
    "  # at most this many MiB of keys and values; a write past it fails with an error.\n"
    "  max_mb: 64\n"
    "  # In memory only by default, as module state is. With persist, a snapshot is kept in\n"
    "  # data/kv.snapshot: written every persist_interval_ms when anything changed and at\n"
    "  # shutdown, and loaded at start (a crash loses at most the last interval's changes).\n"
    "  persist: false\n"
    "  persist_interval_ms: 10000\n"
    "}\n"
    "\n"
    "auth {\n"
    "  # Users and sign-in under /api/auth/v1/ (docs/auth.md). Access tokens (JWTs signed with\n"
    "  # secrets/keys/private_key.pem) live this many seconds; sessions (refresh tokens) this\n"
    "  # many (30 days).\n"
    "  auth_token_ttl_sec: 3600\n"
    "  refresh_token_ttl_sec: 2592000\n"
    "  # A new account signs in only after opening the link of its verification mail.\n"
    "  require_email_verification: true\n"
    "  # Failed logins per account, and logins per client address, in a minute; beyond them\n"
    "  # the answer is 429 (0: no limit).\n"
    "  login_attempts_per_account: 5\n"
    "  login_attempts_per_address: 30\n"
    "  password_min_length: 8\n"
    "}\n"
    "\n"
    "email {\n"
    "  # The SMTP server for verification, password-reset and email-change mails. With no\n"
    "  # smtp_host, no mail is sent and each link is written to the log (development).\n"
    "  smtp_host: \"\"\n"
    "  smtp_port: 587\n"
    "  smtp_username: \"\"\n"
    "  smtp_password: \"\"\n"
    "  # \"starttls\" (required), \"tls\" (smtps://, implicit TLS) or \"none\".\n"
    "  smtp_encryption: \"starttls\"\n"
    "  sender_address: \"noreply@localhost\"\n"
    "  sender_name: \"trail\"\n"
    "  # Templates (empty: the built-in text). {{ VERIFICATION_URL }}, {{ CODE }}, {{ EMAIL }}\n"
    "  # and {{ SITE_URL }} are replaced.\n"
    "  verification_subject: \"\"\n"
    "  verification_body: \"\"\n"
    "  password_reset_subject: \"\"\n"
    "  password_reset_body: \"\"\n"
    "  change_email_subject: \"\"\n"
    "  change_email_body: \"\"\n"
    "}\n"
    "\n"
    "cluster {\n"
    "  # Cluster mode (docs/scaling.md), off while address is empty: this process also runs a\n"
    "  # dqlite node (Raft-replicated SQLite) on address, HOST:PORT as the other members reach\n"
    "  # it, with its files in cluster/. The first member names no join; the others name\n"
    "  # members to join through, e.g. join: [\"10.0.0.1:7000\"].\n"
    "  address: \"\"\n"
    "}\n"
    "\n"
    "# Record APIs: a table or view served under /api/records/v1/NAME with access rules\n"
    "# (docs/records.md). None by default; one per block, e.g.:\n"
    "#   record_apis {\n"
    "#     name: \"todos\"\n"
    "#     table_name: \"todos\"\n"
    "#     acl_authenticated: [CREATE, READ, UPDATE, DELETE]\n"
    "#     read_access_rule: \"_ROW_.owner = _USER_.id\"\n"
    "#     enable_subscriptions: true\n"
    "#   }\n";

const char *cfg_default_text(void)
{
    return default_text;
}

/* ---- loading ---- */

int cfg_parse(const char *name, const char *text, size_t len, cfg *c, tr_error *err)
{
    return cfg__parse_text(&top_schema, c, name, text, len, err);
}

int cfg_load_file(const char *path, cfg *c, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return tr_error_set(err, rc, "%s: cannot open config file: %s", path, tr_strerror(rc));
    }
    tr_buf text = TR_BUF_INIT;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        tr_error_set(err, rc, "%s: %s", path, tr_strerror(rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = tr_error_set(err, TR_ECONFIG, "%s: not a regular file", path);
        goto out;
    }
    for (;;) {
        if (text.len >= MAX_CONFIG_BYTES) {
            rc = tr_error_set(err, TR_ELIMIT, "%s: config file larger than %d bytes", path,
                              MAX_CONFIG_BYTES);
            goto out;
        }
        tr_buf_reserve(&text, 16384);
        ssize_t n = read(fd, text.data + text.len, text.cap - text.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            tr_error_set(err, rc, "%s: read: %s", path, tr_strerror(rc));
            goto out;
        }
        if (n == 0) break;
        text.len += (size_t)n;
        text.data[text.len] = '\0';
    }
    rc = cfg_parse(path, text.data, text.len, c, err);
out:
    tr_buf_free(&text);
    close(fd);
    return rc;
}

void cfg_set_string(char **field, const char *value)
{
    tr_free(*field);
    *field = tr_strdup(value);
}

void cfg_deinit(cfg *c)
{
    tr_free(c->server.address);
    tr_free(c->jobs.time_zone);
    tr_free(c->server.site_url);
    tr_free(c->cluster.address);
    for (size_t i = 0; i < c->cluster.join_len; i++)
        tr_free(c->cluster.join[i]);
    tr_free(c->cluster.join);
    char **email_strs[] = {&c->email.smtp_host,           &c->email.smtp_username,
                           &c->email.smtp_password,       &c->email.smtp_encryption,
                           &c->email.sender_address,      &c->email.sender_name,
                           &c->email.verification_subject, &c->email.verification_body,
                           &c->email.password_reset_subject, &c->email.password_reset_body,
                           &c->email.change_email_subject, &c->email.change_email_body};
    for (size_t i = 0; i < TR_ARRAY_LEN(email_strs); i++)
        tr_free(*email_strs[i]);
    for (size_t i = 0; i < c->fetch.allowed_hosts_len; i++)
        tr_free(c->fetch.allowed_hosts[i]);
    tr_free(c->fetch.allowed_hosts);
    for (size_t i = 0; i < c->fetch.allowed_private_hosts_len; i++)
        tr_free(c->fetch.allowed_private_hosts[i]);
    tr_free(c->fetch.allowed_private_hosts);
    for (size_t i = 0; i < c->record_apis_len; i++)
        cfg__free_fields(&record_api_schema, &c->record_apis[i]);
    tr_free(c->record_apis);
    memset(c, 0, sizeof *c);
}
