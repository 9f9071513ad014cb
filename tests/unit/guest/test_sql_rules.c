/* Tests for the rules of a guest's SQL (guest/sql.c) and the bound on temporary files
 * (db/tempvfs.c): what a backend's handlers need runs (CTEs, window functions, DML and DDL in
 * its own tables, full-text search, schema introspection, reading _user), while settings, the
 * schema's internals, trail's tables, temporary objects and other files are refused with a
 * message saying why; trail's own statements on the same connection are not affected; a
 * statement whose temporary files outgrow the bound fails naming it and leaves nothing held. */
#include "test.h"
#include "db/db.h"
#include "guest/guest.h"
#include "unit/guest/sql_fixture.h"

#include <sqlite3.h>

#define SCHEMA                                                                                     \
    "CREATE TABLE _user (id INTEGER PRIMARY KEY, email TEXT);"                                     \
    "INSERT INTO _user (email) VALUES ('a@example.com');"                                          \
    "CREATE TABLE _job_runs (id INTEGER PRIMARY KEY, ok INTEGER);"                                 \
    "CREATE TABLE todos (id INTEGER PRIMARY KEY, user INTEGER REFERENCES _user (id), title TEXT);"

/* Runs sql with execute() and gives "ok" or "error: message". */
static const char *run(sql_fx *f, const char *sql)
{
    tr_buf b = TR_BUF_INIT;
    /* sql as a JS string literal: the cases hold no backslash or double quote */
    static const char head[] = "globalThis.out = 'pending'; __trailhost.execute(\"";
    tr_buf_append(&b, head, sizeof head - 1);
    tr_buf_append(&b, sql, strlen(sql));
    static const char tail[] = "\", []).then(() => { globalThis.out = 'ok'; }, "
                               "e => { globalThis.out = 'error: ' + e.message; });";
    tr_buf_append(&b, tail, sizeof tail);
    const char *out = sql_fx_run(f, b.data);
    tr_buf_free(&b);
    return out;
}

TEST(guest_sql_rules_what_handlers_need_runs)
{
    static const char *const ok[] = {
        "INSERT INTO todos (user, title) VALUES (1, 'one'), (1, 'two')",
        "UPDATE todos SET title = upper(title) WHERE id = 1",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) "
        "SELECT sum(x) FROM c",
        "SELECT title, row_number() OVER (PARTITION BY user ORDER BY id) FROM todos",
        "SELECT t.title, u.email FROM todos t JOIN _user u ON u.id = t.user "
        "WHERE t.title LIKE '%o%'",
        "SELECT count(*), max(id) FROM todos GROUP BY user",
        "SELECT value FROM json_each('[1, 2]')",
        "SELECT vec_distance_cosine(vec_f32('[1, 0]'), vec_f32('[0, 1]'))",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE INDEX notes_body ON notes (body)",
        "ALTER TABLE notes ADD COLUMN at INTEGER",
        "ALTER TABLE notes RENAME body TO _body",
        "ALTER TABLE notes RENAME COLUMN _body TO body",
        "ALTER TABLE notes RENAME TO notes2",
        "ALTER TABLE notes2 RENAME TO notes",
        "CREATE VIEW todo_titles AS SELECT title FROM todos",
        "CREATE TRIGGER notes_at AFTER INSERT ON notes BEGIN "
        "UPDATE notes SET at = 1 WHERE id = NEW.id; END",
        "INSERT INTO notes (body) VALUES ('x')",
        "CREATE VIRTUAL TABLE docs USING fts5(body)",
        "INSERT INTO docs VALUES ('hello world')",
        "SELECT * FROM docs WHERE docs MATCH 'hello'",
        "SELECT name, type FROM pragma_table_info('todos')",
        "PRAGMA table_info(todos)",
        "PRAGMA index_list(notes)",
        "PRAGMA foreign_key_check",
        "PRAGMA foreign_keys",
        "PRAGMA user_version",
        "SELECT name FROM sqlite_schema",
        "ANALYZE",
        "DROP TRIGGER notes_at",
        "DROP VIEW todo_titles",
        "DROP TABLE docs",
        "DELETE FROM todos WHERE id = 2",
        "DROP TABLE notes",
    };
    sql_fx f;
    sql_fx_init(&f, "rules.db", SCHEMA);
    for (size_t i = 0; i < TR_ARRAY_LEN(ok); i++) {
        const char *got = run(&f, ok[i]);
        if (strcmp(got, "ok") != 0) test_fail(__FILE__, __LINE__, "%s: %s", ok[i], got);
    }
    sql_fx_deinit(&f);
}

TEST(guest_sql_rules_refuse_with_a_reason)
{
    static const struct {
        const char *sql, *why;
    } no[] = {
        {"PRAGMA busy_timeout=100000", "PRAGMA busy_timeout cannot be set from a handler (to "},
        {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA locking_mode cannot be set"},
        {"PRAGMA query_only=1", "PRAGMA query_only cannot be set"},
        {"PRAGMA writable_schema=ON", "PRAGMA writable_schema cannot be set"},
        {"PRAGMA temp_store=MEMORY", "PRAGMA temp_store cannot be set"},
        {"PRAGMA hard_heap_limit=1000", "PRAGMA hard_heap_limit cannot be set"},
        {"PRAGMA journal_mode=OFF", "PRAGMA journal_mode cannot be set"},
        {"PRAGMA shrink_memory", "PRAGMA shrink_memory is not available to handlers"},
        {"PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint is not available to handlers"},
        {"PRAGMA optimize", "PRAGMA optimize is not available to handlers"},
        {"PRAGMA integrity_check", "PRAGMA integrity_check is not available to handlers"},
        {"UPDATE sqlite_schema SET sql = 'x' WHERE name = 'todos'", "may not be modified"},
        {"SELECT * FROM _job_runs", "_job_runs: names that begin with _ are trail's own tables"},
        {"DELETE FROM _job_runs", "_job_runs: names that begin with _"},
        {"INSERT INTO _user (email) VALUES ('b@example.com')", "_user: names that begin with _"},
        {"UPDATE _user SET email = 'x'", "_user: names"},
        {"DROP TABLE _user", "_user: names"},
        {"ALTER TABLE _user ADD COLUMN x", "_user: names"},
        {"CREATE INDEX i ON _user (email)", "_user: names"},
        {"CREATE TRIGGER t AFTER INSERT ON _job_runs BEGIN SELECT 1; END", "_job_runs: names"},
        {"CREATE TABLE _mine (a)", "_mine: names"},
        {"ALTER TABLE todos RENAME TO _todos", "_todos: names"},
        {"ALTER TABLE todos RENAME /* to */ to /* x */ [_t]", "_t: names"},
        {"ALTER TABLE todos RENAME TO `_t`", "_t: names"},
        {"CREATE INDEX _i ON todos (title)", "_i: names"},
        {"CREATE TEMP TABLE t (a)", "temporary tables, views, triggers and indexes (t)"},
        {"CREATE TEMP VIEW v AS SELECT 1", "temporary tables"},
        {"CREATE TEMP TRIGGER tt AFTER INSERT ON todos BEGIN SELECT 1; END", "temporary"},
        {"CREATE VIRTUAL TABLE s USING dbstat", "virtual tables of module dbstat"},
        {"VACUUM", "ATTACH, DETACH and VACUUM are not available"},
        {"SELECT * FROM pragma_busy_timeout", NULL}, /* reading it is fine */
    };
    sql_fx f;
    sql_fx_init(&f, "rules.db", SCHEMA);
    for (size_t i = 0; i < TR_ARRAY_LEN(no); i++) {
        const char *got = run(&f, no[i].sql);
        if (no[i].why == NULL) {
            if (strcmp(got, "ok") != 0) test_fail(__FILE__, __LINE__, "%s: %s", no[i].sql, got);
        } else if (strncmp(got, "error: ", 7) != 0 || strstr(got, no[i].why) == NULL) {
            test_fail(__FILE__, __LINE__, "%s: %s", no[i].sql, got);
        }
    }
    /* nothing of it took: the settings are trail's, the tables are intact */
    sqlite3 *h = db_handle(f.db);
    int64_t n = 0;
    tr_error err = {0};
    CHECK_EQ(db_query_int(f.db, "PRAGMA query_only", &n, &err), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(db_query_int(f.db, "PRAGMA temp_store", &n, &err), 0);
    CHECK_EQ(n, 1); /* FILE */
    CHECK_EQ(db_query_int(f.db, "SELECT count(*) FROM _user", &n, &err), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(sqlite3_limit(h, SQLITE_LIMIT_ATTACHED, -1), 0);
    /* trail's own statements on the connection pass */
    CHECK_EQ(db_exec(f.db, "INSERT INTO _job_runs (ok) VALUES (1); DELETE FROM _job_runs", &err),
             0);
    sql_fx_deinit(&f);
}

/* A trigger a guest puts on its own table runs with the guest's rules when the guest's statement
 * fires it: it cannot reach trail's tables either. */
TEST(guest_sql_rules_hold_inside_triggers)
{
    sql_fx f;
    sql_fx_init(&f, "rules.db", SCHEMA);
    CHECK_STR_EQ(run(&f, "CREATE TRIGGER sneak AFTER INSERT ON todos BEGIN "
                         "DELETE FROM _job_runs; END"),
                 "ok");
    tr_error err = {0};
    CHECK_EQ(db_exec(f.db, "INSERT INTO _job_runs (ok) VALUES (1)", &err), 0);
    const char *got = run(&f, "INSERT INTO todos (user, title) VALUES (1, 'x')");
    CHECK(strstr(got, "error: not authorized: _job_runs") == got);
    int64_t n = 0;
    CHECK_EQ(db_query_int(f.db, "SELECT count(*) FROM _job_runs", &n, &err), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(db_query_int(f.db, "SELECT count(*) FROM todos", &n, &err), 0);
    CHECK_EQ(n, 0);
    sql_fx_deinit(&f);
}

/* The temporary files of a guarded connection stop at its bound: a DISTINCT over ~6 MB with a
 * 2 MiB bound fails naming database.temp_max_mb and leaves no temporary bytes held; the same
 * statement over less data runs. */
TEST(guest_sql_temp_files_bounded)
{
    tr_error err = {0};
    char *path = tr_asprintf("%s/temp.db", test_tmpdir());
    db_conn *db;
    CHECK_EQ(db_open_guarded(path, 2u << 20, &db, &err), 0);
    CHECK_EQ(db_temp_max_bytes(db), 2u << 20);
    guest_env env;
    guest_env_init(&env, NULL, db, NULL);
    jsg_isolate *iso;
    guest *g;
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    CHECK_EQ(guest_new(iso, &env, NULL, NULL, &g, &err), 0);
    sql_fx f = {.db = db, .env = env, .iso = iso, .g = g};
    const char *big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
                      "6000) SELECT count(DISTINCT b) FROM (SELECT randomblob(1000) AS b FROM c)";
    const char *got = run(&f, big);
    CHECK_STR_EQ(got, "error: the statement's temporary data (what it sorts, groups or "
                      "materializes) took more than the worker's limit of 2 MiB "
                      "(database.temp_max_mb)");
    CHECK_EQ(db_temp_used_bytes(db), 0);
    const char *small = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x "
                        "< 500) SELECT count(DISTINCT b) FROM "
                        "(SELECT randomblob(1000) AS b FROM c)";
    CHECK_STR_EQ(run(&f, small), "ok");
    CHECK_EQ(db_temp_used_bytes(db), 0);
    /* the database itself is not bounded by it */
    CHECK_STR_EQ(run(&f, "CREATE TABLE blobs AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 4000) SELECT randomblob(1000) AS b FROM c"),
                 "ok");
    guest_free(g);
    jsg_isolate_free(iso);
    guest_env_deinit(&env);
    db_close(db);
    tr_free(path);
}
