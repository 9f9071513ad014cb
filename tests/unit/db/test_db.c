/* Tests for db/: connection setup (WAL, busy timeout, foreign keys), uuid_v7() and friends, the
 * data directory, and migrations (once, in order, atomic per file, errors naming file and line),
 * all on real SQLite files under the test's temporary directory. */
#include "test.h"
#include "db/db.h"
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *path_in(const char *name)
{
    return tr_asprintf("%s/%s", test_tmpdir(), name);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char *p = tr_asprintf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (long)strlen(text));
    close(fd);
    tr_free(p);
}

/* The first column of the first row as text (owned), "" when NULL, "<none>" without rows. */
static char *query_text(db_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db_handle(c), sql, -1, &st, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "prepare %s: %s", sql, sqlite3_errmsg(db_handle(c)));
    char *out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        out = tr_strdup(t ? (const char *)t : "");
    } else if (rc == SQLITE_DONE) {
        out = tr_strdup("<none>");
    } else {
        test_fail(__FILE__, __LINE__, "step %s: %s", sql, sqlite3_errmsg(db_handle(c)));
    }
    sqlite3_finalize(st);
    return out;
}

static int64_t query_int(db_conn *c, const char *sql)
{
    int64_t v = -1;
    tr_error err;
    if (db_query_int(c, sql, &v, &err) != 0) test_fail(__FILE__, __LINE__, "%s: %s", sql, err.msg);
    return v;
}

/* Everything a migration could change: the schema, the history, and the test tables' rows. */
static char *snapshot(db_conn *c)
{
    char *schema =
        query_text(c, "SELECT group_concat(type || ' ' || name || ' ' || ifnull(sql, ''), "
                      "'\n') FROM (SELECT * FROM sqlite_schema ORDER BY type, name)");
    char *hist = query_text(c, "SELECT group_concat(name || '=' || checksum || '@' || applied_at, "
                               "'\n') FROM (SELECT * FROM _schema_history ORDER BY name)");
    char *s = tr_asprintf("%s\n--\n%s", schema, hist);
    tr_free(schema);
    tr_free(hist);
    return s;
}

static db_conn *open_db(const char *name)
{
    char *p = path_in(name);
    db_conn *c = NULL;
    tr_error err;
    if (db_open(p, &c, &err) != 0) test_fail(__FILE__, __LINE__, "db_open: %s", err.msg);
    tr_free(p);
    return c;
}

static char *make_dir(const char *name)
{
    char *p = path_in(name);
    CHECK_EQ(mkdir(p, 0755), 0);
    return p;
}

TEST(db_open_wal_busy_timeout_foreign_keys)
{
    db_conn *c = open_db("main.db");
    char *mode = query_text(c, "PRAGMA journal_mode");
    CHECK_STR_EQ(mode, "wal");
    tr_free(mode);
    CHECK_EQ(query_int(c, "PRAGMA busy_timeout"), DB_BUSY_TIMEOUT_MS);
    CHECK_EQ(query_int(c, "PRAGMA foreign_keys"), 1);
    CHECK_EQ(query_int(c, "PRAGMA synchronous"), 1); /* NORMAL */

    /* Foreign keys are enforced, not just declared. */
    tr_error err;
    CHECK_EQ(db_exec(c,
                     "CREATE TABLE p (id INTEGER PRIMARY KEY);"
                     "CREATE TABLE ch (p INTEGER REFERENCES p(id));",
                     &err),
             0);
    CHECK_EQ(db_exec(c, "INSERT INTO ch VALUES (42)", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "FOREIGN KEY constraint failed");

    /* The WAL file exists beside the database while a connection is open. */
    char *wal = path_in("main.db-wal");
    struct stat st;
    CHECK_EQ(stat(wal, &st), 0);
    tr_free(wal);
    db_close(c);

    /* WAL is persistent in the file: another connection sees it without setting it. */
    char *p = path_in("main.db");
    sqlite3 *raw = NULL;
    CHECK_EQ(sqlite3_open(p, &raw), SQLITE_OK);
    sqlite3_stmt *stmt;
    CHECK_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(stmt), SQLITE_ROW);
    CHECK_STR_EQ((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    tr_free(p);
}

/* The SQLite trail compiles in (Makefile SQLITE_OPTS): the version it was built from, the features
 * a backend's SQL may use, and no loading of native extensions from SQL. */
TEST(db_sqlite_build_version_and_features)
{
    CHECK(sqlite3_libversion_number() >= 3053000);
    CHECK_STR_EQ(sqlite3_libversion(), SQLITE_VERSION); /* header and library agree */
    db_conn *c = open_db("features.db");
    tr_error err;
    CHECK_EQ(db_exec(c,
                     "CREATE VIRTUAL TABLE docs USING fts5(body);"
                     "INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dogs sleep');"
                     "CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);"
                     "INSERT INTO boxes VALUES (1, 0, 10), (2, 20, 30);",
                     &err),
             0);
    CHECK_EQ(query_int(c, "SELECT rowid FROM docs WHERE docs MATCH 'fox'"), 1);
    CHECK_EQ(query_int(c, "SELECT id FROM boxes WHERE x0 <= 25 AND x1 >= 25"), 2);
    CHECK_EQ(query_int(c, "SELECT CAST(pow(2, 10) AS INTEGER)"), 1024);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM dbstat WHERE name = 'docs_data'") > 0, 1);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM pragma_compile_options "
                          "WHERE compile_options = 'OMIT_LOAD_EXTENSION'"),
             1);
    CHECK_EQ(db_exec(c, "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "no such function: load_extension");
    db_close(c);
}

TEST(db_open_error_names_path)
{
    char *p = path_in("no/such/dir/main.db");
    db_conn *c = NULL;
    tr_error err;
    CHECK_EQ(db_open(p, &c, &err), TR_ESQL);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, p);
    CHECK_CONTAINS(err.msg, "unable to open database file");
    tr_free(p);
    db_close(NULL); /* harmless */
}

typedef struct holder_arg {
    const char *path;
    int rc;
} holder_arg;

/* Holds the write lock on its own connection for 300 ms, then commits. */
static void *hold_write_lock(void *p)
{
    holder_arg *a = p;
    db_conn *c = NULL;
    tr_error err;
    a->rc = db_open(a->path, &c, &err);
    if (a->rc == 0) a->rc = db_exec(c, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1)", &err);
    usleep(300 * 1000);
    if (a->rc == 0) a->rc = db_exec(c, "COMMIT", &err);
    db_close(c);
    return NULL;
}

/* A writer that meets a held lock waits (busy timeout) instead of failing with SQLITE_BUSY. */
TEST(db_busy_timeout_waits_for_writer)
{
    db_conn *c = open_db("busy.db");
    tr_error err;
    CHECK_EQ(db_exec(c, "CREATE TABLE t (v INTEGER)", &err), 0);
    char *p = path_in("busy.db");
    holder_arg a = {.path = p, .rc = -1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, hold_write_lock, &a), 0);
    /* Wait until the holder has the lock: the row count can only be read once it committed, but
     * a write attempt now must block; poll for the lock via a failed no-wait write. */
    sqlite3 *probe = NULL;
    CHECK_EQ(sqlite3_open(p, &probe), SQLITE_OK);
    for (int i = 0; i < 200; i++) {
        int rc = sqlite3_exec(probe, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_BUSY) break;
        sqlite3_exec(probe, "ROLLBACK", NULL, NULL, NULL);
        usleep(5000);
    }
    sqlite3_close(probe);
    CHECK_EQ(db_exec(c, "INSERT INTO t VALUES (2)", &err), 0);
    pthread_join(th, NULL);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM t"), 2);
    CHECK_EQ(query_int(c, "SELECT group_concat(v) = '1,2' FROM t"), 1); /* waited, then wrote */
    db_close(c);
    tr_free(p);
}

TEST(db_uuid_v7_layout_and_order)
{
    uint8_t prev[16] = {0};
    int64_t now = tr_wall_ms();
    for (int i = 0; i < 20000; i++) {
        uint8_t id[16];
        db_uuid_v7(id);
        CHECK_EQ(id[6] >> 4, 7);         /* version */
        CHECK_EQ(id[8] >> 6, 2);         /* variant 10 */
        CHECK(memcmp(prev, id, 16) < 0); /* strictly increasing: unique and time-ordered */
        memcpy(prev, id, 16);
    }
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | prev[i];
    /* 20000 ids fit in a few ms of counter carry plus the time the loop took. */
    CHECK((int64_t)ms >= now);
    CHECK((int64_t)ms <= tr_wall_ms() + 10);
}

TEST(db_sql_uuid_functions)
{
    db_conn *c = open_db("u.db");
    CHECK_EQ(query_int(c, "SELECT length(uuid_v7())"), 16);
    char *t = query_text(c, "SELECT typeof(uuid_v7())");
    CHECK_STR_EQ(t, "blob");
    tr_free(t);
    CHECK_EQ(query_int(c, "SELECT uuid_v7() != uuid_v7()"), 1);
    t = query_text(c, "SELECT uuid_text(uuid_parse('0192F0A1-2B3C-7D4E-8F50-0123456789ab'))");
    CHECK_STR_EQ(t, "0192f0a1-2b3c-7d4e-8f50-0123456789ab");
    tr_free(t);
    t = query_text(c, "SELECT uuid_text(uuid_parse('0192f0a12b3c7d4e8f500123456789ab'))");
    CHECK_STR_EQ(t, "0192f0a1-2b3c-7d4e-8f50-0123456789ab");
    tr_free(t);
    t = query_text(c, "SELECT substr(uuid_text(uuid_v7()), 15, 1)");
    CHECK_STR_EQ(t, "7");
    tr_free(t);
    CHECK_EQ(query_int(c, "SELECT uuid_text(NULL) IS NULL AND uuid_parse(NULL) IS NULL"), 1);
    tr_error err;
    CHECK_EQ(db_exec(c, "SELECT uuid_parse('0192f0a1-2b3c-7d4e-8f50-0123456789a')", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "uuid_parse(): expected a UUID");
    CHECK_EQ(db_exec(c, "SELECT uuid_parse('0192f0a1+2b3c-7d4e-8f50-0123456789ab')", &err),
             TR_ESQL);
    CHECK_EQ(db_exec(c, "SELECT uuid_parse('zz92f0a12b3c7d4e8f500123456789ab')", &err), TR_ESQL);
    CHECK_EQ(db_exec(c, "SELECT uuid_text(x'0102')", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "uuid_text(): expected a 16-byte BLOB");
    db_close(c);
}

TEST(db_builtin_user_table)
{
    db_conn *c = open_db("main.db");
    tr_error err;
    CHECK_EQ(db_migrate(c, NULL, &err), 0);
    CHECK_EQ(db_exec(c, "INSERT INTO _user (email, password_hash) VALUES ('a@x.test', 'h')", &err),
             0);
    CHECK_EQ(query_int(c, "SELECT length(id) FROM _user WHERE email = 'a@x.test'"), 16);
    char *t = query_text(c, "SELECT typeof(id) FROM _user");
    CHECK_STR_EQ(t, "blob");
    tr_free(t);
    CHECK_EQ(query_int(c, "SELECT (unicode(substr(id, 7, 1)) >> 4) FROM _user"), 7);
    CHECK_EQ(query_int(c, "SELECT verified + admin FROM _user"), 0);
    int64_t now = time(NULL);
    int64_t created = query_int(c, "SELECT created FROM _user");
    CHECK(created >= now - 5 && created <= now + 5);
    CHECK_EQ(query_int(c, "SELECT updated = created FROM _user"), 1);

    /* email is unique and required. */
    CHECK_EQ(db_exec(c, "INSERT INTO _user (email) VALUES ('a@x.test')", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "UNIQUE constraint failed: _user.email");
    CHECK_EQ(db_exec(c, "INSERT INTO _user (id) VALUES (uuid_v7())", &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "NOT NULL constraint failed: _user.email");
    /* ids are 16-byte blobs only. */
    CHECK_EQ(db_exec(c, "INSERT INTO _user (id, email) VALUES (x'0102', 'b@x.test')", &err),
             TR_ESQL);
    CHECK_CONTAINS(err.msg, "CHECK constraint failed");
    CHECK_EQ(
        db_exec(c, "INSERT INTO _user (id, email) VALUES ('0123456789abcdef', 'b@x.test')", &err),
        TR_ESQL);
    /* Two users get different ids. */
    CHECK_EQ(
        db_exec(c, "INSERT INTO _user (email, verified, admin) VALUES ('b@x.test', 1, 1)", &err),
        0);
    CHECK_EQ(query_int(c, "SELECT count(DISTINCT id) FROM _user"), 2);

    /* `updated` follows changes unless the update sets it itself. */
    CHECK_EQ(db_exec(c, "UPDATE _user SET updated = 5, created = 5", &err), 0);
    CHECK_EQ(query_int(c, "SELECT sum(updated) FROM _user"), 10);
    CHECK_EQ(db_exec(c, "UPDATE _user SET verified = 1 WHERE email = 'a@x.test'", &err), 0);
    CHECK(query_int(c, "SELECT updated FROM _user WHERE email = 'a@x.test'") >= now - 5);
    CHECK_EQ(query_int(c, "SELECT updated FROM _user WHERE email = 'b@x.test'"), 5);

    /* The reference's join shape works. */
    CHECK_EQ(db_exec(c,
                     "CREATE TABLE todo (id INTEGER PRIMARY KEY, user BLOB REFERENCES _user(id));"
                     "INSERT INTO todo (user) SELECT id FROM _user WHERE email = 'a@x.test'",
                     &err),
             0);
    t = query_text(c, "SELECT u.email FROM todo t JOIN _user u ON t.user = u.id");
    CHECK_STR_EQ(t, "a@x.test");
    tr_free(t);
    db_close(c);
}

TEST(db_migrations_applied_once_across_reopen)
{
    char *dir = make_dir("migrations");
    write_file(dir, "0001_items.sql", "CREATE TABLE items (name TEXT NOT NULL);\n");
    write_file(dir, "0002_seed.sql", "-- seed\nINSERT INTO items VALUES ('a'), ('b');\n");
    db_conn *c = open_db("main.db");
    tr_error err;
    db_migrate_stats st;
    CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0);
    CHECK_EQ(st.applied, 3); /* the built-in _user migration and both files */
    CHECK_EQ(st.skipped, 0);
    db_close(c);

    for (int round = 0; round < 2; round++) {
        c = open_db("main.db");
        CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0);
        CHECK_EQ(st.applied, 0);
        CHECK_EQ(st.skipped, 3);
        CHECK_EQ(st.changed, 0);
        CHECK_EQ(query_int(c, "SELECT count(*) FROM items"), 2); /* the seed ran once */
        db_close(c);
    }
    c = open_db("main.db");
    char *names = query_text(c, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                                "_schema_history ORDER BY name)");
    CHECK_STR_EQ(names, "0001_items.sql,0002_seed.sql,trail/0001_user");
    tr_free(names);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM _schema_history WHERE length(checksum) = 16 AND "
                          "applied_at > 1700000000000"),
             3);
    /* A new file is picked up on the next start; the old ones stay applied once. */
    write_file(dir, "0003_more.sql", "INSERT INTO items VALUES ('c');");
    CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0);
    CHECK_EQ(st.applied, 1);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM items"), 3);
    db_close(c);
    tr_free(dir);
}

TEST(db_migrations_run_in_file_name_order)
{
    char *dir = make_dir("migrations");
    /* Byte order: "001_" < "002_" < "003_" < "010_" < "1_" < "a". Created in another order. */
    write_file(dir, "a.sql", "INSERT INTO log VALUES ('a');");
    write_file(dir, "010_x.sql", "INSERT INTO log VALUES ('010');");
    write_file(dir, "002_x.sql", "INSERT INTO log VALUES ('002');");
    write_file(dir, "1_x.sql", "INSERT INTO log VALUES ('1');");
    write_file(dir, "001_create.sql", "CREATE TABLE log (v TEXT);");
    write_file(dir, "003_x.sql", "INSERT INTO log VALUES ('003');");
    /* Not migrations: other extensions, hidden files, directories. */
    write_file(dir, "README.md", "not SQL at all");
    write_file(dir, "004_x.sql.bak", "not SQL at all");
    write_file(dir, ".005_hidden.sql", "not SQL at all");
    char *sub = tr_asprintf("%s/006_dir.sql", dir);
    CHECK_EQ(mkdir(sub, 0755), 0);
    tr_free(sub);
    db_conn *c = open_db("main.db");
    tr_error err;
    if (db_migrate(c, dir, &err) != 0) test_fail(__FILE__, __LINE__, "%s", err.msg);
    char *order =
        query_text(c, "SELECT group_concat(v, ',') FROM (SELECT v FROM log ORDER BY rowid)");
    CHECK_STR_EQ(order, "002,003,010,1,a");
    tr_free(order);
    db_close(c);
    tr_free(dir);
}

/* The second of three files fails: the first stays applied, the second leaves no trace, the
 * third is not run, and the error names the file, the line and SQLite's message. */
TEST(db_failing_migration_leaves_db_as_it_was)
{
    char *dir = make_dir("migrations");
    write_file(dir, "0001_ok.sql", "CREATE TABLE t1 (v INTEGER);\nINSERT INTO t1 VALUES (1);\n");
    db_conn *c = open_db("main.db");
    tr_error err;
    CHECK_EQ(db_migrate(c, dir, &err), 0);
    char *before = snapshot(c);
    int64_t rows_before = query_int(c, "SELECT count(*) FROM t1");

    write_file(dir, "0002_bad.sql",
               "CREATE TABLE t2 (v INTEGER);\n"
               "INSERT INTO t2 VALUES (2);\n"
               "INSERT INTO t1 VALUES (3);\n"
               "INSERT INTO nope VALUES (1);\n");
    write_file(dir, "0003_later.sql", "CREATE TABLE t3 (v INTEGER);\n");
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_EQ(err.code, TR_ESQL);
    CHECK_CONTAINS(err.msg, "0002_bad.sql");
    CHECK_CONTAINS(err.msg, "failed at line 4");
    CHECK_CONTAINS(err.msg, "no such table: nope");
    char *after = snapshot(c);
    CHECK_STR_EQ(after, before);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM t1"), rows_before); /* the INSERT into t1 too */
    CHECK_EQ(sqlite3_get_autocommit(db_handle(c)), 1);              /* no transaction left open */
    db_close(c);

    /* Same on a fresh database with all three present from the start. */
    c = open_db("fresh.db");
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "0002_bad.sql");
    CHECK_EQ(query_int(c, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t2', 't3')"), 0);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM t1"), 1);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM _schema_history"), 2);

    /* Once fixed, the rest applies. */
    write_file(dir, "0002_bad.sql", "CREATE TABLE t2 (v INTEGER);\n");
    db_migrate_stats st;
    CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0);
    CHECK_EQ(st.applied, 2);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t2', 't3')"), 2);
    db_close(c);
    tr_free(before);
    tr_free(after);
    tr_free(dir);
}

TEST(db_migration_errors_point_at_the_line)
{
    char *dir = make_dir("migrations");
    write_file(dir, "0001_syntax.sql",
               "-- a comment\nCREATE TABLE ok (v INTEGER);\n\n  CREAT TABLE bad (v INTEGER);\n");
    db_conn *c = open_db("main.db");
    tr_error err;
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "0001_syntax.sql failed at line 4: near \"CREAT\": syntax error");
    CHECK_EQ(query_int(c, "SELECT count(*) FROM sqlite_schema WHERE name = 'ok'"), 0);

    /* A constraint failure at run time names the statement's first line. */
    write_file(dir, "0001_syntax.sql",
               "CREATE TABLE u (v INTEGER UNIQUE);\nINSERT INTO u VALUES (1);\n/* c */\n"
               "INSERT INTO u\n  VALUES (1);\n");
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "0001_syntax.sql failed at line 4: UNIQUE constraint failed: u.v");

    /* Transaction statements would break the one-transaction-per-file rule. */
    write_file(dir, "0001_syntax.sql",
               "CREATE TABLE x (v);\nBEGIN;\nCREATE TABLE y (v);\nCOMMIT;\n");
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "0001_syntax.sql failed at line 2: BEGIN, COMMIT and ROLLBACK are not "
                            "allowed in a migration");
    CHECK_EQ(query_int(c, "SELECT count(*) FROM sqlite_schema WHERE name IN ('x', 'y')"), 0);

    /* A NUL byte would silently cut the SQL short; it is refused. */
    char *p = tr_asprintf("%s/0001_syntax.sql", dir);
    int fd = open(p, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "SELECT 1;\0DROP TABLE _user;", 27), 27);
    close(fd);
    CHECK_EQ(db_migrate(c, dir, &err), TR_ESQL);
    CHECK_CONTAINS(err.msg, "contains a NUL byte");
    tr_free(p);

    /* An empty file (or only comments) is a valid, recorded migration. */
    write_file(dir, "0001_syntax.sql", "-- nothing yet\n");
    db_migrate_stats st;
    CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0);
    CHECK_EQ(st.applied, 1);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM _schema_history WHERE name = '0001_syntax.sql'"),
             1);
    db_close(c);
    tr_free(dir);
}

TEST(db_changed_migration_warns_and_is_not_rerun)
{
    char *dir = make_dir("migrations");
    write_file(dir, "0001.sql", "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);");
    db_conn *c = open_db("main.db");
    tr_error err;
    CHECK_EQ(db_migrate(c, dir, &err), 0);
    char *sum = query_text(c, "SELECT checksum FROM _schema_history WHERE name = '0001.sql'");
    write_file(dir, "0001.sql", "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2);");
    db_migrate_stats st;
    CHECK_EQ(db_migrate_run(c, dir, &st, &err), 0); /* a warning, not an error */
    CHECK_EQ(st.changed, 1);
    CHECK_EQ(st.applied, 0);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM t"), 1);
    char *sum2 = query_text(c, "SELECT checksum FROM _schema_history WHERE name = '0001.sql'");
    CHECK_STR_EQ(sum2, sum); /* the history keeps what was applied */
    tr_free(sum);
    tr_free(sum2);
    db_close(c);
    tr_free(dir);
}

TEST(db_migrations_dir_missing_or_broken)
{
    db_conn *c = open_db("main.db");
    tr_error err;
    db_migrate_stats st;
    char *missing = path_in("nowhere");
    CHECK_EQ(db_migrate_run(c, missing, &st, &err), 0);
    CHECK_EQ(st.applied, 1); /* the built-in one only */
    CHECK_EQ(db_migrate_run(c, NULL, &st, &err), 0);
    CHECK_EQ(st.skipped, 1);
    tr_free(missing);
    /* A file where the directory should be. */
    write_file(test_tmpdir(), "notadir", "x");
    char *file = path_in("notadir");
    CHECK_EQ(db_migrate(c, file, &err), -ENOTDIR);
    CHECK_CONTAINS(err.msg, "cannot read migrations directory");
    CHECK_CONTAINS(err.msg, file);
    tr_free(file);
    db_close(c);
}

TEST(db_datadir_init_creates_layout_once)
{
    char *dir = path_in("a/b/traildepot");
    tr_error err;
    CHECK_EQ(db_datadir_init(dir, cfg_default_text(), &err), 0);
    static const char *const subdirs[] = {"data", "migrations", "wasm"};
    for (size_t i = 0; i < TR_ARRAY_LEN(subdirs); i++) {
        char *p = tr_asprintf("%s/%s", dir, subdirs[i]);
        struct stat st;
        CHECK_EQ(stat(p, &st), 0);
        CHECK(S_ISDIR(st.st_mode));
        tr_free(p);
    }
    /* The config is the commented default, and it loads. */
    char *conf = tr_asprintf("%s/config.textproto", dir);
    cfg c;
    cfg_init_defaults(&c);
    CHECK_EQ(cfg_load_file(conf, &c, &err), 0);
    cfg_deinit(&c);
    int fd = open(conf, O_RDONLY);
    CHECK(fd >= 0);
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = '\0';
    CHECK_STR_EQ(buf, cfg_default_text());

    /* A second run changes nothing the user edited. */
    write_file(dir, "config.textproto", "server { runtime_threads: 2 }\n");
    write_file(dir, "migrations/0001.sql", "SELECT 1;");
    CHECK_EQ(db_datadir_init(dir, cfg_default_text(), &err), 0);
    fd = open(conf, O_RDONLY);
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n] = '\0';
    CHECK_STR_EQ(buf, "server { runtime_threads: 2 }\n");
    char *mig = tr_asprintf("%s/migrations/0001.sql", dir);
    struct stat st;
    CHECK_EQ(stat(mig, &st), 0);
    tr_free(mig);

    /* The main database opens where the layout says. */
    char *dbp = tr_asprintf("%s/%s", dir, DB_MAIN_FILE);
    db_conn *db = NULL;
    CHECK_EQ(db_open(dbp, &db, &err), 0);
    db_close(db);
    tr_free(dbp);
    tr_free(conf);
    tr_free(dir);
}

TEST(db_datadir_init_errors_name_path)
{
    tr_error err;
    write_file(test_tmpdir(), "file", "x");
    char *under_file = path_in("file/depot");
    CHECK_EQ(db_datadir_init(under_file, cfg_default_text(), &err), -ENOTDIR);
    CHECK_CONTAINS(err.msg, "cannot create directory");
    tr_free(under_file);

    char *dir = make_dir("depot");
    write_file(dir, "wasm", "a file where a directory belongs");
    CHECK_EQ(db_datadir_init(dir, cfg_default_text(), &err), -ENOTDIR);
    char *want = tr_asprintf("cannot create directory %s/wasm", dir);
    CHECK_CONTAINS(err.msg, want);
    tr_free(want);
    tr_free(dir);
}

typedef struct migrate_arg {
    const char *db_path, *dir;
    int rc;
    db_migrate_stats st;
} migrate_arg;

static void *migrate_thread(void *p)
{
    migrate_arg *a = p;
    db_conn *c = NULL;
    tr_error err;
    a->rc = db_open(a->db_path, &c, &err);
    if (a->rc == 0) a->rc = db_migrate_run(c, a->dir, &a->st, &err);
    db_close(c);
    return NULL;
}

/* Several connections migrating one database at once (several trail processes starting together)
 * apply each migration exactly once between them. */
TEST_TIMEOUT(db_concurrent_migrations_apply_each_once, 30)
{
    char *dir = make_dir("migrations");
    write_file(dir, "000.sql", "CREATE TABLE log (n TEXT);");
    enum { FILES = 30, THREADS = 4 };
    for (int i = 1; i < FILES; i++) {
        char name[32], sql[100];
        snprintf(name, sizeof name, "%03d.sql", i);
        snprintf(sql, sizeof sql, "INSERT INTO log VALUES ('%03d');", i);
        write_file(dir, name, sql);
    }
    char *p = path_in("main.db");
    migrate_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (migrate_arg){.db_path = p, .dir = dir, .rc = -1};
        CHECK_EQ(pthread_create(&th[i], NULL, migrate_thread, &args[i]), 0);
    }
    unsigned applied = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].rc, 0);
        CHECK_EQ(args[i].st.applied + args[i].st.skipped, FILES + 1);
        applied += args[i].st.applied;
    }
    CHECK_EQ(applied, FILES + 1);
    db_conn *c = open_db("main.db");
    CHECK_EQ(query_int(c, "SELECT count(*) FROM log"), FILES - 1);
    CHECK_EQ(query_int(c, "SELECT count(DISTINCT n) FROM log"), FILES - 1);
    CHECK_EQ(query_int(c, "SELECT count(*) FROM _schema_history"), FILES + 1);
    db_close(c);
    tr_free(p);
    tr_free(dir);
}
