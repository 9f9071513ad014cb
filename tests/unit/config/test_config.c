/* Tests for config/: defaults, the default file, every value type and message form, every error
 * with its exact line and column, loading files, precedence, and hostile input. */
#include "test.h"
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Parses text over the defaults; returns the result and leaves the message in err. */
static int parse(cfg *c, const char *text, tr_error *err)
{
    cfg_init_defaults(c);
    tr_error_clear(err);
    return cfg_parse("t.textproto", text, strlen(text), c, err);
}

/* Expects text to fail with exactly the message want (after "t.textproto:"). */
static void expect_error(const char *text, const char *want, int line)
{
    cfg c;
    tr_error err;
    int rc = parse(&c, text, &err);
    cfg_deinit(&c);
    char full[1200];
    snprintf(full, sizeof full, "t.textproto:%s", want);
    if (rc != TR_ECONFIG || strcmp(err.msg, full) != 0)
        test_fail(__FILE__, line,
                  "for input \"%s\": rc %d, message\n       \"%s\", expected\n       \"%s\"", text,
                  rc, err.msg, full);
    CHECK_EQ(err.code, TR_ECONFIG);
}
#define EXPECT_ERROR(text, want) expect_error((text), (want), __LINE__)

TEST(config_defaults)
{
    cfg c;
    cfg_init_defaults(&c);
    CHECK_STR_EQ(c.server.address, "localhost:4000");
    CHECK_EQ(c.server.runtime_threads, 0);
    CHECK_EQ(c.server.max_body_bytes, 16u << 20);
    CHECK_EQ(c.server.max_header_bytes, 64u << 10);
    CHECK_EQ(c.server.max_headers, 100);
    CHECK_EQ(c.server.max_target_bytes, 8192);
    CHECK_EQ(c.server.idle_timeout_ms, 60000);
    CHECK_EQ(c.server.header_timeout_ms, 10000);
    CHECK_EQ(c.server.body_timeout_ms, 30000);
    CHECK_EQ(c.server.body_total_timeout_ms, 300000);
    CHECK_EQ(c.server.shutdown_timeout_ms, 10000);
    CHECK_EQ(c.server.max_connections, 10000);
    CHECK(c.server.access_log);
    CHECK_EQ(c.runtime.memory_limit_mb, 64);
    CHECK_EQ(c.runtime.deadline_ms, 30000);
    CHECK_EQ(c.runtime.cpu_budget_ms, 10000);
    CHECK_STR_EQ(c.jobs.time_zone, "UTC");
    CHECK_EQ(c.fetch.allowed_hosts_len, 0);
    cfg_deinit(&c);
    CHECK(c.server.address == NULL);
}

/* The commented default file sets every value to its default: parsed over a config where every
 * value differs, it must give back exactly cfg_init_defaults(). */
TEST(config_default_text_matches_defaults)
{
    cfg want, got;
    cfg_init_defaults(&want);
    memset(&got, 0x5a, sizeof got);
    got.server.address = tr_strdup("x:1");
    got.jobs.time_zone = tr_strdup("Mars/Olympus");
    got.fetch.allowed_hosts = NULL;
    got.fetch.allowed_hosts_len = 0;
    got.fetch.allowed_private_hosts = NULL;
    got.fetch.allowed_private_hosts_len = 0;
    got.record_apis = NULL;
    got.record_apis_len = 0;
    got.server.access_log = false;
    got.server.enable_record_transactions = true;
    got.fetch.enabled = false;
    got.server.site_url = NULL;
    got.auth.require_email_verification = false;
    got.cluster.address = NULL;
    got.cluster.join = NULL;
    got.cluster.join_len = 0;
    char **email_strs[] = {&got.email.smtp_host,           &got.email.smtp_username,
                           &got.email.smtp_password,       &got.email.smtp_encryption,
                           &got.email.sender_address,      &got.email.sender_name,
                           &got.email.verification_subject, &got.email.verification_body,
                           &got.email.password_reset_subject, &got.email.password_reset_body,
                           &got.email.change_email_subject, &got.email.change_email_body};
    for (size_t i = 0; i < sizeof email_strs / sizeof email_strs[0]; i++) *email_strs[i] = NULL;
    tr_error err;
    const char *text = cfg_default_text();
    CHECK_EQ(cfg_parse("default", text, strlen(text), &got, &err), 0);
    CHECK_STR_EQ(got.server.address, want.server.address);
    CHECK_EQ(got.server.runtime_threads, want.server.runtime_threads);
    CHECK_EQ(got.server.max_body_bytes, want.server.max_body_bytes);
    CHECK_EQ(got.server.max_header_bytes, want.server.max_header_bytes);
    CHECK_EQ(got.server.max_headers, want.server.max_headers);
    CHECK_EQ(got.server.max_target_bytes, want.server.max_target_bytes);
    CHECK_EQ(got.server.idle_timeout_ms, want.server.idle_timeout_ms);
    CHECK_EQ(got.server.header_timeout_ms, want.server.header_timeout_ms);
    CHECK_EQ(got.server.body_timeout_ms, want.server.body_timeout_ms);
    CHECK_EQ(got.server.body_total_timeout_ms, want.server.body_total_timeout_ms);
    CHECK_EQ(got.server.shutdown_timeout_ms, want.server.shutdown_timeout_ms);
    CHECK_EQ(got.server.max_connections, want.server.max_connections);
    CHECK_EQ(got.server.access_log, want.server.access_log);
    CHECK_EQ(got.server.enable_record_transactions, want.server.enable_record_transactions);
    CHECK_EQ(got.runtime.memory_limit_mb, want.runtime.memory_limit_mb);
    CHECK_EQ(got.runtime.deadline_ms, want.runtime.deadline_ms);
    CHECK_EQ(got.runtime.cpu_budget_ms, want.runtime.cpu_budget_ms);
    CHECK_EQ(got.database.result_cache_mb, want.database.result_cache_mb);
    CHECK_EQ(got.kv.max_mb, want.kv.max_mb);
    CHECK_EQ(got.kv.persist, want.kv.persist);
    CHECK_EQ(got.kv.persist_interval_ms, want.kv.persist_interval_ms);
    CHECK_STR_EQ(got.jobs.time_zone, want.jobs.time_zone);
    CHECK_STR_EQ(got.cluster.address, want.cluster.address);
    CHECK_EQ(got.cluster.join_len, 0);
    CHECK_EQ(got.fetch.allowed_hosts_len, 0);
    CHECK_EQ(got.fetch.allowed_private_hosts_len, 0);
    CHECK_EQ(got.fetch.enabled, want.fetch.enabled);
    CHECK_EQ(got.fetch.timeout_ms, want.fetch.timeout_ms);
    CHECK_EQ(got.fetch.max_response_bytes, want.fetch.max_response_bytes);
    CHECK_STR_EQ(got.server.site_url, want.server.site_url);
    CHECK_EQ(got.auth.auth_token_ttl_sec, want.auth.auth_token_ttl_sec);
    CHECK_EQ(got.auth.refresh_token_ttl_sec, want.auth.refresh_token_ttl_sec);
    CHECK_EQ(got.auth.require_email_verification, want.auth.require_email_verification);
    CHECK_EQ(got.auth.login_attempts_per_account, want.auth.login_attempts_per_account);
    CHECK_EQ(got.auth.login_attempts_per_address, want.auth.login_attempts_per_address);
    CHECK_EQ(got.auth.password_min_length, want.auth.password_min_length);
    CHECK_STR_EQ(got.email.smtp_host, want.email.smtp_host);
    CHECK_EQ(got.email.smtp_port, want.email.smtp_port);
    CHECK_STR_EQ(got.email.smtp_encryption, want.email.smtp_encryption);
    CHECK_STR_EQ(got.email.sender_address, want.email.sender_address);
    CHECK_STR_EQ(got.email.verification_body, want.email.verification_body);
    /* Comments document every setting. */
    CHECK_CONTAINS(text, "# Where the HTTP server listens");
    CHECK_CONTAINS(text, "allowed_hosts");
    cfg_deinit(&got);
    cfg_deinit(&want);
}

TEST(config_empty_and_comment_only_keep_defaults)
{
    cfg c;
    tr_error err;
    CHECK_EQ(parse(&c, "", &err), 0);
    CHECK_STR_EQ(c.server.address, "localhost:4000");
    cfg_deinit(&c);
    CHECK_EQ(parse(&c, "# nothing\n\n   # at all", &err), 0);
    CHECK_EQ(c.server.runtime_threads, 0);
    cfg_deinit(&c);
}

TEST(config_value_types)
{
    cfg c;
    tr_error err;
    CHECK_EQ(parse(&c,
                   "server {\n"
                   "  runtime_threads: 4\n"          /* int */
                   "  max_body_bytes: 0x100000000\n" /* uint64, hex, above 32 bits */
                   "  max_headers: 0\n"              /* out of range; replaced below */
                   "}\n",
                   &err),
             TR_ECONFIG);
    cfg_deinit(&c);
    CHECK_EQ(parse(&c,
                   "server {\n"
                   "  runtime_threads: 4\n"
                   "  max_body_bytes: 0x100000000\n"
                   "  max_headers: 250\n"
                   "  address: \"0.0.0.0:8080\"\n"
                   "  access_log: false\n"
                   "}\n"
                   "runtime { memory_limit_mb: 4095 deadline_ms: 1 }\n"
                   "jobs { time_zone: 'Europe/Berlin' }\n",
                   &err),
             0);
    CHECK_EQ(c.server.runtime_threads, 4);
    CHECK_EQ(c.server.max_body_bytes, 1ull << 32);
    CHECK_EQ(c.server.max_headers, 250);
    CHECK_STR_EQ(c.server.address, "0.0.0.0:8080");
    CHECK(!c.server.access_log);
    CHECK_EQ(c.runtime.memory_limit_mb, 4095);
    CHECK_EQ(c.runtime.deadline_ms, 1);
    CHECK_EQ(c.runtime.cpu_budget_ms, 10000); /* untouched */
    CHECK_STR_EQ(c.jobs.time_zone, "Europe/Berlin");
    CHECK_EQ(c.server.idle_timeout_ms, 60000); /* untouched */
    cfg_deinit(&c);

    /* Every spelling of a bool. */
    static const char *const truths[] = {"true", "True", "t", "1"};
    static const char *const lies[] = {"false", "False", "f", "0"};
    for (size_t i = 0; i < 4; i++) {
        char text[100];
        snprintf(text, sizeof text, "server { access_log: %s }", lies[i]);
        CHECK_EQ(parse(&c, text, &err), 0);
        CHECK(!c.server.access_log);
        cfg_deinit(&c);
        snprintf(text, sizeof text, "server { access_log: %s }", truths[i]);
        CHECK_EQ(parse(&c, text, &err), 0);
        CHECK(c.server.access_log);
        cfg_deinit(&c);
    }

    /* Range edges are inclusive. */
    CHECK_EQ(parse(&c, "server { runtime_threads: 1024 max_headers: 100000 }", &err), 0);
    CHECK_EQ(c.server.runtime_threads, 1024);
    CHECK_EQ(c.server.max_headers, 100000);
    cfg_deinit(&c);
    CHECK_EQ(parse(&c, "server { shutdown_timeout_ms: 0 idle_timeout_ms: 86400000 }", &err), 0);
    CHECK_EQ(c.server.shutdown_timeout_ms, 0);
    CHECK_EQ(c.server.idle_timeout_ms, 86400000);
    cfg_deinit(&c);
}

TEST(config_message_forms_and_separators)
{
    static const char *const forms[] = {
        "server { runtime_threads: 3 }",
        "server: { runtime_threads: 3 }",
        "server < runtime_threads: 3 >",
        "server: < runtime_threads: 3; >",
        "server{runtime_threads:3}",
        "server {\n\truntime_threads: 3,\n}\n",
        "server { max_headers: 7, runtime_threads: 3; idle_timeout_ms: 9 }",
        "jobs {} server { runtime_threads: 3 }, runtime { };",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(forms); i++) {
        cfg c;
        tr_error err;
        if (parse(&c, forms[i], &err) != 0)
            test_fail(__FILE__, __LINE__, "form \"%s\": %s", forms[i], err.msg);
        CHECK_EQ(c.server.runtime_threads, 3);
        cfg_deinit(&c);
    }
}

TEST(config_strings_and_escapes)
{
    cfg c;
    tr_error err;
    /* Adjacent literals join, in either quote style. */
    CHECK_EQ(parse(&c, "server { address: \"127.0.0.1\" ':' \"9\" '0' }", &err), 0);
    CHECK_STR_EQ(c.server.address, "127.0.0.1:90");
    cfg_deinit(&c);
    CHECK_EQ(parse(&c, "jobs { time_zone: \"Europe\\x2fBer\\154in\" }", &err), 0);
    CHECK_STR_EQ(c.jobs.time_zone, "Europe/Berlin");
    cfg_deinit(&c);
    CHECK_EQ(parse(&c, "jobs { time_zone: 'it\\'s\\\"\\\\\\u00e9\\U0001F600' }", &err), 0);
    CHECK_STR_EQ(c.jobs.time_zone, "it's\"\\\xc3\xa9\xf0\x9f\x98\x80");
    cfg_deinit(&c);
    /* '#' inside a string is not a comment. */
    CHECK_EQ(parse(&c, "jobs { time_zone: \"a#b\" } # real comment", &err), 0);
    CHECK_STR_EQ(c.jobs.time_zone, "a#b");
    cfg_deinit(&c);
}

TEST(config_repeated_strings)
{
    cfg c;
    tr_error err;
    CHECK_EQ(parse(&c,
                   "fetch {\n"
                   "  allowed_hosts: \"api.example.com\"\n"
                   "  allowed_hosts: [\"*.example.org\", 'x.test']\n"
                   "  allowed_hosts: []\n"
                   "}\n",
                   &err),
             0);
    CHECK_EQ(c.fetch.allowed_hosts_len, 3);
    CHECK_STR_EQ(c.fetch.allowed_hosts[0], "api.example.com");
    CHECK_STR_EQ(c.fetch.allowed_hosts[1], "*.example.org");
    CHECK_STR_EQ(c.fetch.allowed_hosts[2], "x.test");
    /* Loading again replaces the list instead of appending to it. */
    const char *again = "fetch { allowed_hosts: \"only.test\" }";
    CHECK_EQ(cfg_parse("t2", again, strlen(again), &c, &err), 0);
    CHECK_EQ(c.fetch.allowed_hosts_len, 1);
    CHECK_STR_EQ(c.fetch.allowed_hosts[0], "only.test");
    /* A file that does not mention the list keeps it. */
    CHECK_EQ(cfg_parse("t3", "fetch {}", 8, &c, &err), 0);
    CHECK_EQ(c.fetch.allowed_hosts_len, 1);
    cfg_deinit(&c);
}

TEST(config_comments_everywhere)
{
    cfg c;
    tr_error err;
    CHECK_EQ(parse(&c,
                   "# head\n"
                   "server # after the name\n"
                   "{ # after the brace\n"
                   "  runtime_threads # between name and colon\n"
                   "  : # between colon and value\n"
                   "  6 # after the value\n"
                   "} # after the close\n"
                   "# tail without newline",
                   &err),
             0);
    CHECK_EQ(c.server.runtime_threads, 6);
    cfg_deinit(&c);
}

/* Every error class, with its exact position and wording. */
TEST(config_errors_name_line_and_column)
{
    EXPECT_ERROR("server {\n  runtime_thread: 4\n}\n",
                 "2:3: unknown field 'runtime_thread' in server; expected one of: address, "
                 "runtime_threads, max_body_bytes, max_buffered_body_bytes, max_header_bytes, "
                 "max_headers, max_target_bytes, idle_timeout_ms, header_timeout_ms, "
                 "body_timeout_ms, body_total_timeout_ms, shutdown_timeout_ms, max_connections, "
                 "access_log, site_url, enable_record_transactions");
    EXPECT_ERROR("\n\n  serve { }",
                 "3:3: unknown section 'serve'; expected one of: server, runtime, jobs, fetch, "
                 "database, kv, auth, email, cluster, record_apis");
    EXPECT_ERROR("server { runtime_threads: \"4\" }",
                 "1:27: expected an integer for server.runtime_threads (0..1024), got string "
                 "\"4\"");
    EXPECT_ERROR("server {\n  access_log: yes\n}",
                 "2:15: expected true or false for server.access_log, got 'yes'");
    EXPECT_ERROR("server { address: localhost }",
                 "1:19: expected a quoted string for server.address, got 'localhost'");
    EXPECT_ERROR("server { runtime_threads: 5000 }",
                 "1:27: server.runtime_threads: '5000' is out of range; expected 0..1024");
    EXPECT_ERROR("server { max_headers: -1 }",
                 "1:23: server.max_headers: '-1' is out of range; expected 1..100000");
    EXPECT_ERROR("server { max_body_bytes: 99999999999999999999999 }",
                 "1:26: server.max_body_bytes: '99999999999999999999999' is out of range; "
                 "expected 0..1099511627776");
    EXPECT_ERROR("server {\n  address: \"localhost:4000\n}\n",
                 "2:12: unterminated string; expected a closing \" before the end of the line");
    EXPECT_ERROR("jobs { time_zone: 'UTC", "1:19: unterminated string; expected a closing ' "
                                           "before the end of the line");
    EXPECT_ERROR("server {\n  runtime_threads: 2\n  runtime_threads: 3\n}",
                 "3:3: duplicate field server.runtime_threads (first set at 2:3)");
    EXPECT_ERROR("server {}\nserver {}", "2:1: duplicate field server (first set at 1:1)");
    EXPECT_ERROR("server { @ }", "1:10: unexpected character '@'; expected a field name");
    EXPECT_ERROR("server { runtime_threads 4 }",
                 "1:26: expected ':' after server.runtime_threads (an integer), got '4'");
    EXPECT_ERROR("server runtime_threads: 4",
                 "1:8: expected '{' after server (a message), got 'runtime_threads'");
    EXPECT_ERROR("server {\n  runtime_threads: 4\n",
                 "3:1: expected '}' to close server (opened at 1:8), got end of file");
    EXPECT_ERROR("server < runtime_threads: 4 }",
                 "1:29: expected a field name or '>' in server, got '}'");
    EXPECT_ERROR("}", "1:1: expected a field name, got '}'");
    EXPECT_ERROR("server { runtime_threads: 4 } }", "1:31: expected a field name, got '}'");
    EXPECT_ERROR("jobs { time_zone: \"a\\qb\" }",
                 "1:21: invalid escape '\\q' in string; expected one of \\n \\t \\r \\\\ \\\" \\' "
                 "\\xHH \\ooo \\uXXXX");
    EXPECT_ERROR("jobs { time_zone: \"a\\x\" }", "1:21: expected hex digits after \\x in string");
    EXPECT_ERROR("jobs { time_zone: \"\\ud800\" }",
                 "1:20: \\u escape is not a Unicode scalar value");
    EXPECT_ERROR("jobs { time_zone: \"a\\0b\" }",
                 "1:19: string for jobs.time_zone contains a NUL byte");
    EXPECT_ERROR("server { runtime_threads: 010 }",
                 "1:27: expected a decimal integer for server.runtime_threads, got '010' (leading "
                 "zeros are not allowed)");
    EXPECT_ERROR("server { runtime_threads: 1.5 }",
                 "1:27: expected an integer for server.runtime_threads (0..1024), got '1.5' (sizes "
                 "are plain byte counts, durations plain milliseconds)");
    EXPECT_ERROR("server { max_body_bytes: 16MiB }",
                 "1:26: expected an integer for server.max_body_bytes (0..1099511627776), got "
                 "'16MiB' (sizes are plain byte counts, durations plain milliseconds)");
    EXPECT_ERROR("server { runtime_threads: }",
                 "1:27: expected an integer for server.runtime_threads (0..1024), got '}'");
    EXPECT_ERROR("server { runtime_threads: 4",
                 "1:28: expected '}' to close server (opened at 1:8), got end of file");
    EXPECT_ERROR("server { runtime_threads:",
                 "1:26: expected an integer for server.runtime_threads (0..1024), got end of file");
    EXPECT_ERROR("server { address: \"localhost\" }",
                 "1:19: invalid value for server.address: expected HOST:PORT with a port 0..65535, "
                 "e.g. \"localhost:4000\"");
    EXPECT_ERROR("server { address: \"h:70000\" }",
                 "1:19: invalid value for server.address: expected HOST:PORT with a port 0..65535, "
                 "e.g. \"localhost:4000\"");
    EXPECT_ERROR("fetch { allowed_hosts: [\"a.test\" 3] }",
                 "1:34: expected ',' or ']' in the list for fetch.allowed_hosts, got '3'");
    EXPECT_ERROR("fetch { allowed_hosts: [\"a.test\", 3] }",
                 "1:35: expected a quoted string for fetch.allowed_hosts, got '3'");
    EXPECT_ERROR("fetch { allowed_hosts: [\"a.test\",",
                 "1:34: expected ']' to close the list for fetch.allowed_hosts (opened at 1:24), "
                 "got end of file");
    EXPECT_ERROR("fetch { allowed_hosts: \"https://a.test/\" }",
                 "1:24: invalid value for fetch.allowed_hosts: expected a host name such as "
                 "\"api.example.com\" or \"*.example.com\" (no scheme, no path)");
    EXPECT_ERROR("server { runtime_threads: 4 ;; }",
                 "1:30: expected a field name or '}' in server, got ';'");
    EXPECT_ERROR("server: runtime_threads",
                 "1:9: expected '{' after server (a message), got 'runtime_threads'");
    EXPECT_ERROR("server { runtime_threads { } }",
                 "1:26: expected ':' after server.runtime_threads (an integer), got '{'");
    /* A NUL byte in the file is junk, not the end of the text. */
    cfg c;
    tr_error err;
    cfg_init_defaults(&c);
    CHECK_EQ(cfg_parse("n", "server {\0}", 10, &c, &err), TR_ECONFIG);
    CHECK_STR_EQ(err.msg, "n:1:9: unexpected character '\\x00'; expected a field name");
    cfg_deinit(&c);
    /* Columns count bytes on the error's own line, after CRLF line ends too. */
    EXPECT_ERROR("server {\r\n\truntime_threads: x\r\n}",
                 "2:19: expected an integer for server.runtime_threads (0..1024), got 'x'");
}

/* A failure part-way leaves the config valid and freeable; values set before the error may stay. */
TEST(config_error_leaves_config_freeable)
{
    cfg c;
    tr_error err;
    CHECK_EQ(parse(&c,
                   "server { address: \"a:1\" }\njobs { time_zone: \"X\" }\n"
                   "fetch { allowed_hosts: \"h\" allowed_hosts: 5 }",
                   &err),
             TR_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.textproto:3:");
    CHECK_STR_EQ(c.server.address, "a:1");
    cfg_deinit(&c); /* the leak checker fails the test if anything is lost */
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (long)strlen(text));
    close(fd);
}

TEST(config_load_file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.textproto", test_tmpdir());
    cfg c;
    tr_error err;
    cfg_init_defaults(&c);
    CHECK_EQ(cfg_load_file(path, &c, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, path);

    write_file(path, "server {\n  runtime_threads: 2\n  max_headers: 0\n}\n");
    CHECK_EQ(cfg_load_file(path, &c, &err), TR_ECONFIG);
    char want[700];
    snprintf(want, sizeof want, "%s:3:16: server.max_headers: '0' is out of range", path);
    CHECK_CONTAINS(err.msg, want);
    CHECK_EQ(strncmp(err.msg, want, strlen(want)), 0);

    write_file(path, cfg_default_text());
    CHECK_EQ(cfg_load_file(path, &c, &err), 0);
    CHECK_EQ(c.server.runtime_threads, 0);

    /* A directory is not a config file. */
    CHECK_EQ(cfg_load_file(test_tmpdir(), &c, &err), TR_ECONFIG);
    CHECK_CONTAINS(err.msg, "not a regular file");
    cfg_deinit(&c);
}

/* flag > file > default, done by the caller in three steps. */
TEST(config_precedence_flag_file_default)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.textproto", test_tmpdir());
    write_file(path, "server { address: \"127.0.0.1:5000\" runtime_threads: 3 }");
    cfg c;
    tr_error err;
    cfg_init_defaults(&c);
    CHECK_EQ(cfg_load_file(path, &c, &err), 0);
    CHECK_STR_EQ(c.server.address, "127.0.0.1:5000");    /* file over default */
    CHECK_EQ(c.server.max_headers, 100);                 /* default where the file is silent */
    cfg_set_string(&c.server.address, "127.0.0.1:6000"); /* flag over file */
    CHECK_STR_EQ(c.server.address, "127.0.0.1:6000");
    CHECK_EQ(c.server.runtime_threads, 3);
    cfg_deinit(&c);
}

/* Every prefix of a full config, and every single-byte corruption of it, either parses or fails
 * with "name:line:col: ..."; nothing crashes or leaks (ASan). */
TEST_TIMEOUT(config_hostile_input, 60)
{
    const char *base = "server { address: \"h:1\" runtime_threads: 2, access_log: t }\n"
                       "fetch { allowed_hosts: [\"a\", 'b\\x41'] allowed_hosts: \"c\\u00e9\" }\n"
                       "jobs < time_zone: \"UTC\" >; runtime: { deadline_ms: 0x10 }\n";
    size_t n = strlen(base);
    static const char subst[] = "{}<>:;,[]\"'\\#\n -0x9aZ\x01\xff";
    unsigned ok = 0, failed = 0;
    char *buf = tr_malloc(n + 1);
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t s = 0; s <= sizeof subst - 1; s++) {
            memcpy(buf, base, n);
            size_t len = cut;
            if (s < sizeof subst - 1 && cut < n) {
                buf[cut] = subst[s];
                len = n;
            }
            cfg c;
            tr_error err;
            cfg_init_defaults(&c);
            int rc = cfg_parse("h", buf, len, &c, &err);
            if (rc == 0) {
                ok++;
            } else {
                failed++;
                CHECK_EQ(rc, TR_ECONFIG);
                int line, col;
                CHECK_EQ(sscanf(err.msg, "h:%d:%d: ", &line, &col), 2);
                CHECK(line >= 1 && line <= 5); /* 3 lines, + 1 substituted newline, + EOF */
                CHECK(col >= 1);
            }
            cfg_deinit(&c);
        }
    }
    tr_free(buf);
    CHECK(ok > 0);
    CHECK(failed > 0);
    test_report("%u variants parsed, %u rejected with a position", ok, failed);
}

/* cluster { }: off by default (an empty address), an address and the members to join; a port 0
 * (the others could not reach it) and an empty member are refused at their position. */
TEST(config_cluster_section)
{
    cfg c;
    tr_error err;
    cfg_init_defaults(&c);
    CHECK_STR_EQ(c.cluster.address, "");
    CHECK_EQ(c.cluster.join_len, 0);
    cfg_deinit(&c);
    CHECK_EQ(parse(&c,
                   "cluster {\n  address: \"10.0.0.2:7000\"\n"
                   "  join: [\"10.0.0.1:7000\", \"[::1]:7001\"]\n}\n",
                   &err),
             0);
    CHECK_STR_EQ(c.cluster.address, "10.0.0.2:7000");
    CHECK_EQ(c.cluster.join_len, 2);
    CHECK_STR_EQ(c.cluster.join[0], "10.0.0.1:7000");
    CHECK_STR_EQ(c.cluster.join[1], "[::1]:7001");
    cfg_deinit(&c);
    EXPECT_ERROR("cluster {\n  address: \"127.0.0.1:0\"\n}\n",
                 "2:12: invalid value for cluster.address: expected HOST:PORT with a port other than 0");
    EXPECT_ERROR("cluster {\n  join: \"\"\n}\n",
                 "2:9: invalid value for cluster.join: expected HOST:PORT of a member of the cluster");
}
