/*
 * tools/sqlite-train.c: the training run for SQLite's profile-guided build (Makefile, "SQLite").
 *
 * The build compiles SQLite once with -fprofile-generate, links this program against that copy,
 * runs it, and compiles SQLite again with the counts it left. What runs here decides which of
 * SQLite's paths the compiler lays out as the hot ones, so it is the work of a typical backend,
 * not of any one benchmark: a WAL database on disk, prepared statements reused, writes in
 * transactions (inserts, updates, upserts, deletes), lookups by primary key and by unique and
 * plain indexes, index range scans with ORDER BY ... LIMIT, full scans with filters, aggregates
 * with and without GROUP BY, joins, subqueries, JSON functions, and statements prepared fresh.
 * Code this run does not reach stays compiled as without a profile (-fprofile-partial-training).
 *
 * Usage: sqlite-train DIR (a scratch directory; the database is made and removed there).
 * Deterministic: the same statements and data every run. Exits non-zero on any SQLite error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite3.h"

enum { USERS = 2000, POSTS = 20000, ROUNDS = 3 };

static sqlite3 *db;

static void die(const char *what)
{
    fprintf(stderr, "sqlite-train: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(sql);
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die(sql);
    return st;
}

/* Steps st to its end, reading every column of every row as a caller would, then resets it. */
static int64_t run(sqlite3_stmt *st)
{
    int64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0, n = sqlite3_column_count(st); i < n; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER: sum += sqlite3_column_int64(st, i); break;
            case SQLITE_FLOAT: sum += (int64_t)sqlite3_column_double(st, i); break;
            case SQLITE_TEXT:
                sum += sqlite3_column_bytes(st, i) + sqlite3_column_text(st, i)[0];
                break;
            case SQLITE_BLOB: sum += sqlite3_column_bytes(st, i); break;
            default: break;
            }
        }
    }
    if (rc != SQLITE_DONE)
        die(sqlite3_sql(st));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return sum;
}

/* A small deterministic generator (xorshift32) for ids and values. */
static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state % n;
}

static void load(void)
{
    exec("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT,"
         " admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
         "CREATE TABLE posts (id INTEGER PRIMARY KEY,"
         " user_id INTEGER NOT NULL REFERENCES users(id),"
         " title TEXT NOT NULL, body TEXT, score REAL, done INTEGER NOT NULL DEFAULT 0,"
         " meta TEXT, created_at INTEGER NOT NULL);"
         "CREATE INDEX posts_user ON posts(user_id, created_at);"
         "CREATE INDEX posts_created ON posts(created_at);"
         "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, expires INTEGER) WITHOUT ROWID;");
    sqlite3_stmt *u = prepare("INSERT INTO users (id, email, name, admin, created_at)"
                              " VALUES (?, ?, ?, ?, ?)");
    sqlite3_stmt *p = prepare("INSERT INTO posts (user_id, title, body, score, done, meta,"
                              " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    char a[128], b[512];
    exec("BEGIN");
    for (int i = 1; i <= USERS; i++) {
        snprintf(a, sizeof a, "user%d@example.com", i);
        snprintf(b, sizeof b, "User Number %d", i);
        sqlite3_bind_int(u, 1, i);
        sqlite3_bind_text(u, 2, a, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(u, 3, b, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(u, 4, i % 50 == 0);
        sqlite3_bind_int64(u, 5, 1700000000 + i);
        run(u);
    }
    for (int i = 1; i <= POSTS; i++) {
        snprintf(a, sizeof a, "post %d about topic %u", i, rnd(300));
        int blen = snprintf(b, sizeof b, "body of post %d: ", i);
        for (uint32_t w = 0, nw = 5 + rnd(40); w < nw && blen < (int)sizeof b - 16; w++)
            blen += snprintf(b + blen, sizeof b - (size_t)blen, "word%u ", rnd(1000));
        sqlite3_bind_int(p, 1, 1 + (int)rnd(USERS));
        sqlite3_bind_text(p, 2, a, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(p, 3, b, blen, SQLITE_TRANSIENT);
        sqlite3_bind_double(p, 4, rnd(10000) / 100.0);
        sqlite3_bind_int(p, 5, i % 3 == 0);
        if (i % 4 == 0) {
            snprintf(b, sizeof b, "{\"tags\":[\"t%u\",\"t%u\"],\"views\":%u}", rnd(20), rnd(20),
                     rnd(100000));
            sqlite3_bind_text(p, 6, b, -1, SQLITE_TRANSIENT);
        }
        sqlite3_bind_int64(p, 7, 1700000000 + i * 7);
        run(p);
        if (i % 1000 == 0) { /* commits of a size a request would make, not one huge one */
            exec("COMMIT");
            exec("BEGIN");
        }
    }
    exec("COMMIT");
    sqlite3_finalize(u);
    sqlite3_finalize(p);
}

/* Reads and writes as requests make them: each one its own statement execution. */
static void serve(void)
{
    static const char *const reads[] = {
        "SELECT id, user_id, title, body, score, done, meta, created_at FROM posts WHERE id = ?1",
        "SELECT id, email, name, admin FROM users WHERE id = ?1",
        "SELECT id, name FROM users WHERE email = 'user' || ?1 || '@example.com'",
        "SELECT id, title, created_at FROM posts WHERE user_id = ?1 ORDER BY created_at DESC"
        " LIMIT 10",
        "SELECT p.id, p.title, u.name FROM posts p JOIN users u ON u.id = p.user_id"
        " WHERE p.created_at > 1700000000 + ?1 * 7 ORDER BY p.created_at LIMIT 20",
        "SELECT count(*) FROM posts WHERE user_id = ?1",
        "SELECT value FROM kv WHERE key = 'session:' || ?1 AND expires > 0",
    };
    static const char *const scans[] = {
        "SELECT COUNT(*), SUM(done), AVG(score) FROM posts",
        "SELECT user_id, COUNT(*) AS n, MAX(score) FROM posts GROUP BY user_id ORDER BY n DESC"
        " LIMIT 5",
        "SELECT id, title FROM posts WHERE title LIKE '%topic 17%' LIMIT 50",
        "SELECT id FROM posts WHERE score > 99 AND done = 0",
        "SELECT count(*) FROM posts WHERE meta ->> '$.views' > 50000",
        "SELECT u.id, (SELECT count(*) FROM posts p WHERE p.user_id = u.id) FROM users u"
        " WHERE u.admin = 1",
        "SELECT json_object('id', id, 'title', title, 'tags', meta -> '$.tags') FROM posts"
        " WHERE meta IS NOT NULL ORDER BY id DESC LIMIT 100",
        "SELECT sum(length(body)), min(created_at), max(created_at) FROM posts",
    };
    enum { NREADS = sizeof reads / sizeof reads[0], NSCANS = sizeof scans / sizeof scans[0] };
    sqlite3_stmt *r[NREADS], *s[NSCANS];
    for (int i = 0; i < NREADS; i++)
        r[i] = prepare(reads[i]);
    for (int i = 0; i < NSCANS; i++)
        s[i] = prepare(scans[i]);
    sqlite3_stmt *upd = prepare("UPDATE posts SET score = score + 1, done = ?2 WHERE id = ?1");
    sqlite3_stmt *ups = prepare("INSERT INTO kv (key, value, expires)"
                                " VALUES ('session:' || ?1, ?2, ?3)"
                                " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                                " expires = excluded.expires");
    sqlite3_stmt *ins = prepare("INSERT INTO posts (user_id, title, created_at) VALUES (?1, ?2, ?3)"
                                " RETURNING id");
    sqlite3_stmt *del = prepare("DELETE FROM posts WHERE id = ?1");
    int64_t sink = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < 20000; i++) {
            sqlite3_stmt *st = r[i % NREADS];
            sqlite3_bind_int(st, 1, 1 + (int)rnd(st == r[0] ? POSTS : USERS));
            sink += run(st);
            if (i % 10 == 0) { /* a write now and then, each its own transaction */
                sqlite3_bind_int(upd, 1, 1 + (int)rnd(POSTS));
                sqlite3_bind_int(upd, 2, (int)rnd(2));
                sink += run(upd);
            }
            if (i % 25 == 0) {
                char v[64];
                int n = snprintf(v, sizeof v, "session data %u", rnd(1u << 30));
                sqlite3_bind_int(ups, 1, (int)rnd(500));
                sqlite3_bind_blob(ups, 2, v, n, SQLITE_TRANSIENT);
                sqlite3_bind_int(ups, 3, (int)rnd(1000));
                sink += run(ups);
            }
            if (i % 100 == 0) {
                sqlite3_bind_int(ins, 1, 1 + (int)rnd(USERS));
                sqlite3_bind_text(ins, 2, "a new post", -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 3, 1800000000 + i);
                int64_t id = run(ins);
                sqlite3_bind_int64(del, 1, id);
                sink += run(del);
            }
        }
        for (int k = 0; k < 40; k++)
            sink += run(s[k % NSCANS]);
        /* a statement made for one use, as generated SQL is */
        for (int i = 0; i < 300; i++) {
            char sql[160];
            snprintf(sql, sizeof sql,
                     "SELECT id, title FROM posts WHERE user_id IN (%u, %u, %u) AND done = %d",
                     rnd(USERS), rnd(USERS), rnd(USERS), i % 2);
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                die(sql);
            sink += run(st);
            sqlite3_finalize(st);
        }
    }
    for (int i = 0; i < NREADS; i++)
        sqlite3_finalize(r[i]);
    for (int i = 0; i < NSCANS; i++)
        sqlite3_finalize(s[i]);
    sqlite3_finalize(upd);
    sqlite3_finalize(ups);
    sqlite3_finalize(ins);
    sqlite3_finalize(del);
    if (sink == 42) /* keeps the reads from being optimised away */
        puts("");
}

/* Removes the database and its WAL files, left by an earlier run or by this one. */
static void remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[4200];
        snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
        unlink(f);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sqlite-train DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/train.db", argv[1]);
    remove_db(path);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die(path);
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
    load();
    serve();
    exec("PRAGMA optimize");
    if (sqlite3_close(db) != SQLITE_OK)
        die("close");
    remove_db(path);
    return 0;
}
