/* Tests for config/: record_apis blocks as the reference system writes them (a list of messages,
 * enum flags, rules), repeated blocks, and the errors of each new form. */
#include "test.h"
#include "config/config.h"

static int parse_ra(cfg *c, const char *text, tr_error *err)
{
    cfg_init_defaults(c);
    tr_error_clear(err);
    return cfg_parse("t.textproto", text, strlen(text), c, err);
}

TEST(config_record_apis_reference_form)
{
    static const char text[] = "record_apis: [{\n"
                               "  name: \"movies\"\n"
                               "  table_name: \"movies\"\n"
                               "  acl_world: [READ]\n"
                               "  acl_authenticated: [CREATE, READ, UPDATE, DELETE]\n"
                               "  conflict_resolution: REPLACE\n"
                               "}, {\n"
                               "  name: \"comment\"\n"
                               "  table_name: \"comment\"\n"
                               "  acl_world: [READ, SCHEMA]\n"
                               "  expand: [\"author\", \"post\"]\n"
                               "  excluded_columns: \"secret\"\n"
                               "  read_access_rule: \"_ROW_.owner = _USER_.id\"\n"
                               "  enable_subscriptions: true\n"
                               "  listing_hard_limit: 100\n"
                               "}]\n";
    cfg c;
    tr_error err;
    CHECK_EQ(parse_ra(&c, text, &err), 0);
    CHECK_EQ(c.record_apis_len, 2);
    CHECK_STR_EQ(c.record_apis[0].name, "movies");
    CHECK_EQ(c.record_apis[0].acl_world, CFG_PERM_READ);
    CHECK_EQ(c.record_apis[0].acl_authenticated,
             CFG_PERM_CREATE | CFG_PERM_READ | CFG_PERM_UPDATE | CFG_PERM_DELETE);
    CHECK_EQ(c.record_apis[0].conflict_resolution, CFG_CONFLICT_REPLACE);
    CHECK(c.record_apis[0].read_access_rule == NULL);
    CHECK_STR_EQ(c.record_apis[1].table_name, "comment");
    CHECK_EQ(c.record_apis[1].acl_world, CFG_PERM_READ | CFG_PERM_SCHEMA);
    CHECK_EQ(c.record_apis[1].expand_len, 2);
    CHECK_STR_EQ(c.record_apis[1].expand[1], "post");
    CHECK_EQ(c.record_apis[1].excluded_columns_len, 1);
    CHECK_STR_EQ(c.record_apis[1].read_access_rule, "_ROW_.owner = _USER_.id");
    CHECK(c.record_apis[1].enable_subscriptions);
    CHECK_EQ(c.record_apis[1].listing_hard_limit, 100);
    cfg_deinit(&c);
    CHECK(c.record_apis == NULL);
}

TEST(config_record_apis_repeated_blocks)
{
    static const char text[] = "record_apis { name: \"a\" table_name: \"a\" acl_world: READ "
                               "acl_world: CREATE }\n"
                               "server { access_log: false }\n"
                               "record_apis < name: \"b\" table_name: \"b\" >\n";
    cfg c;
    tr_error err;
    CHECK_EQ(parse_ra(&c, text, &err), 0);
    CHECK_EQ(c.record_apis_len, 2);
    CHECK_EQ(c.record_apis[0].acl_world, CFG_PERM_READ | CFG_PERM_CREATE);
    CHECK_STR_EQ(c.record_apis[1].name, "b");
    CHECK(!c.server.access_log);
    cfg_deinit(&c);
}

TEST(config_record_apis_errors)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {"record_apis { acl_world: [READ, WRITE] }",
         "t.textproto:1:33: expected one of CREATE, READ, UPDATE, DELETE, SCHEMA for "
         "record_apis[0].acl_world, got 'WRITE'"},
        {"record_apis { name: \"a\" nme: \"b\" }",
         "t.textproto:1:25: unknown field 'nme' in record_apis; expected one of: name, "
         "table_name, conflict_resolution, autofill_missing_user_id_columns, "
         "enable_subscriptions, acl_world, acl_authenticated, excluded_columns, "
         "create_access_rule, read_access_rule, update_access_rule, delete_access_rule, "
         "schema_access_rule, expand, listing_hard_limit"},
        {"record_apis: [{ name: \"a\" } { name: \"b\" }]",
         "t.textproto:1:29: expected ',' or ']' in the list for record_apis, got '{'"},
        {"record_apis: [{ name: \"a\" }", "t.textproto:1:28: expected ']' to close the list for "
                                          "record_apis (opened at 1:14), got end of file"},
        {"record_apis: \"x\"", "t.textproto:1:14: expected '{' or '[' after record_apis (a message "
                               "or a list [{ ... }, ...]), got string \"x\""},
        {"record_apis { name: \"a\" name: \"b\" }",
         "t.textproto:1:25: duplicate field record_apis[0].name (first set at 1:15)"},
        {"record_apis { conflict_resolution: 5 }",
         "t.textproto:1:36: expected one of CONFLICT_RESOLUTION_STRATEGY_UNDEFINED, ABORT, "
         "IGNORE, REPLACE for record_apis[0].conflict_resolution, got '5'"},
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(cases); i++) {
        cfg c;
        tr_error err;
        int rc = parse_ra(&c, cases[i].text, &err);
        cfg_deinit(&c); /* what a failed parse left must still be freed */
        CHECK_EQ(rc, TR_ECONFIG);
        CHECK_STR_EQ(err.msg, cases[i].want);
    }
}
