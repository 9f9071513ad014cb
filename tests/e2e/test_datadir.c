/* End-to-end tests for the data directory and migrations under the real `trail run`: the layout
 * created on first start, migrations applied once across restarts, and a failing migration that
 * stops start-up naming the file and SQLite's message and leaving the database as it was. */
#include "test.h"
#include "config/config.h"
#include "e2e/harness.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static char *depot_path(const char *rel)
{
    return tr_asprintf("%s/depot%s%s", test_tmpdir(), rel[0] ? "/" : "", rel);
}

static void put(const char *rel, const char *text)
{
    char *p = depot_path(rel);
    CHECK_EQ(th_write_file(p, text, strlen(text)), 0);
    tr_free(p);
}

static void make_dirs(void)
{
    char *d = depot_path("");
    CHECK_EQ(mkdir(d, 0755), 0);
    tr_free(d);
    d = depot_path("migrations");
    CHECK_EQ(mkdir(d, 0755), 0);
    tr_free(d);
}

/* Opens data/main.db read-only, as a tool outside trail would. */
static sqlite3 *open_main_db(void)
{
    char *p = depot_path("data/main.db");
    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    tr_free(p);
    return db;
}

static long long q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static bool is_dir(const char *rel)
{
    char *p = depot_path(rel);
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    tr_free(p);
    return ok;
}

/* Starts and stops the server once; the stop must be clean. */
static void start_stop(void)
{
    th_server s;
    CHECK_EQ(th_server_start(&s, NULL, NULL), 0);
    CHECK_EQ(th_server_stop(&s), 0);
}

static int run_expect_exit(char **err)
{
    char *d = depot_path("");
    const char *args[] = {"run", "--address", "127.0.0.1:0", "--data-dir", d, NULL};
    int status = th_run(args, 30000, NULL, err);
    tr_free(d);
    return status;
}

TEST_TIMEOUT(e2e_datadir_created_on_first_run, 60)
{
    th_server s;
    CHECK_EQ(th_server_start(&s, NULL, NULL), 0);
    char *out = th_server_stdout(&s);
    CHECK_CONTAINS(out, s.data_dir); /* the start line names the data directory */
    free(out);
    CHECK_EQ(th_server_stop(&s), 0);

    CHECK(is_dir("data"));
    CHECK(is_dir("migrations"));
    CHECK(is_dir("wasm"));
    char *conf_path = depot_path("config.textproto");
    char *conf = th_read_file(conf_path, NULL);
    CHECK_STR_EQ(conf, cfg_default_text());
    free(conf);
    tr_free(conf_path);

    sqlite3 *db = open_main_db();
    sqlite3_stmt *st = NULL;
    CHECK_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    CHECK_EQ(q_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = '_user'"), 1);
    CHECK_EQ(q_int(db, "SELECT count(*) FROM _schema_history WHERE name = 'trail/0001_user'"), 1);
    sqlite3_close(db);
}

TEST_TIMEOUT(e2e_migrations_applied_once_across_restarts, 120)
{
    make_dirs();
    put("migrations/0001_items.sql", "CREATE TABLE items (name TEXT NOT NULL);\n");
    put("migrations/0002_seed.sql", "INSERT INTO items VALUES ('seed');\n");
    for (int i = 0; i < 3; i++)
        start_stop();
    sqlite3 *db = open_main_db();
    CHECK_EQ(q_int(db, "SELECT count(*) FROM items"), 1);
    CHECK_EQ(q_int(db, "SELECT count(*) FROM _schema_history"), 3);
    sqlite3_close(db);

    /* A file added later runs on the next start, once. */
    put("migrations/0003_more.sql", "INSERT INTO items VALUES ('more');\n");
    start_stop();
    start_stop();
    db = open_main_db();
    CHECK_EQ(q_int(db, "SELECT count(*) FROM items"), 2);
    CHECK_EQ(q_int(db, "SELECT count(*) FROM _schema_history"), 4);
    sqlite3_close(db);
}

TEST_TIMEOUT(e2e_failing_migration_stops_startup, 120)
{
    make_dirs();
    put("migrations/0001_ok.sql", "CREATE TABLE t1 (v INTEGER);\nINSERT INTO t1 VALUES (1);\n");
    put("migrations/0002_bad.sql", "CREATE TABLE t2 (v INTEGER);\n"
                                   "INSERT INTO t1 VALUES (2);\n"
                                   "INSERT INTO nope VALUES (3);\n");
    put("migrations/0003_later.sql", "CREATE TABLE t3 (v INTEGER);\n");
    char *err = NULL;
    int status = run_expect_exit(&err);
    CHECK(status != 0 && status != -1); /* exited by itself, with a failure status */
    CHECK_CONTAINS(err, "0002_bad.sql");
    CHECK_CONTAINS(err, "line 3");
    CHECK_CONTAINS(err, "no such table: nope");
    free(err);

    sqlite3 *db = open_main_db();
    CHECK_EQ(q_int(db, "SELECT count(*) FROM t1"), 1); /* 0001 applied, 0002's insert undone */
    CHECK_EQ(q_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t2', 't3')"), 0);
    CHECK_EQ(q_int(db, "SELECT count(*) FROM _schema_history"), 2);
    sqlite3_close(db);

    /* Fixed, the server starts and applies the rest. */
    put("migrations/0002_bad.sql", "CREATE TABLE t2 (v INTEGER);\n");
    start_stop();
    db = open_main_db();
    CHECK_EQ(q_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t2', 't3')"), 2);
    sqlite3_close(db);
}
