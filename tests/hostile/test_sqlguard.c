/* The hostile battery, a guest's SQL against the worker's connection (component hostile_sql,
 * which runs any SQL the test sends): settings that would wedge a worker or change the
 * connection for every later request, schema corruption, trail's own tables, temporary data
 * without bound, and another connection's write lock. Each case reports its figure; the
 * server must keep serving throughout and start again on the same data directory. */
#include "hostile/hostile.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "db/db.h"
#include "test.h"

static const char *const server_args[] = {"--runtime-threads", "2", "--quiet", NULL};

/* The depot's one migration: the tables the cases write. */
static void write_migration(void)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/migrations", hz_depot());
    CHECK(mkdir(hz_depot(), 0755) == 0 || errno == EEXIST);
    CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/migrations/0001_init.sql", hz_depot());
    static const char sql[] = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
                              "CREATE TABLE held (id INTEGER PRIMARY KEY, at INTEGER);\n"
                              "CREATE TABLE acks (id INTEGER PRIMARY KEY);\n";
    CHECK_EQ(th_write_file(path, sql, sizeof sql - 1), 0);
}

/* The battery's limits with a deadline that outlasts the waits for a lock. */
#define LONG_DEADLINE_CFG                                                                          \
    "runtime {\n  memory_limit_mb: 32\n  deadline_ms: 30000\n  cpu_budget_ms: 200\n}\n"

static void start(th_server *s, const char *cfg)
{
    hz_set_component("hostile_sql");
    write_migration();
    hz_start(s, cfg, NULL);
}

/* Sends a request on c without reading the answer. */
static void send_req(th_conn *c, const char *method, const char *path, const char *body)
{
    char head[1200];
    size_t len = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                     method, path, len);
    CHECK(n > 0 && (size_t)n < sizeof head);
    CHECK_EQ(th_conn_send(c, head, (size_t)n), 0);
    if (len) CHECK_EQ(th_conn_send(c, body, len), 0);
}

/* POST path with body on the keep-alive connection c; the status (negative: no answer within
 * timeout_ms) and the response in *r. */
static int post(th_conn *c, const char *path, const char *body, th_resp *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    send_req(c, "POST", path, body);
    int rc = th_conn_read(c, r, false, timeout_ms);
    return rc < 0 ? rc : r->status;
}

/* Runs sql on c; true when it was refused with a message containing want. */
static bool refused(th_conn *c, const char *sql, const char *want)
{
    th_resp r;
    int st = post(c, "/sql/exec", sql, &r, 10000);
    bool no = st == 400 && strstr(r.body, want) != NULL;
    if (!no) fprintf(stderr, "     not refused: %s -> %d %.200s\n", sql, st, st > 0 ? r.body : "");
    if (st > 0) th_resp_free(&r);
    return no;
}

static bool runs(th_conn *c, const char *sql)
{
    th_resp r;
    int st = post(c, "/sql/exec", sql, &r, 10000);
    if (st != 200) fprintf(stderr, "     failed: %s -> %d %.200s\n", sql, st, st > 0 ? r.body : "");
    if (st > 0) th_resp_free(&r);
    return st == 200;
}

/* Opens n keep-alive connections, each on the worker named by want[i] (0 or 1): the first
 * connection's worker is worker 0. Fails the test if both workers cannot be reached. */
static void conns_on_workers(const th_server *s, th_conn *out, const int *want, int n)
{
    char first[64] = "";
    th_conn spare[24];
    int nspare = 0;
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int tries = 0; tries < 24 && !found; tries++) {
            th_conn c;
            th_resp r;
            CHECK_EQ(th_conn_open(&c, s->port), 0);
            CHECK_EQ(hz_get(&c, "/whoami", &r), 200);
            if (first[0] == '\0') snprintf(first, sizeof first, "%s", r.body);
            bool w0 = strcmp(r.body, first) == 0;
            th_resp_free(&r);
            if (w0 == (want[i] == 0)) {
                out[i] = c;
                found = true;
            } else if (nspare < 24) {
                spare[nspare++] = c;
            } else {
                th_conn_close(&c);
            }
        }
        CHECK(found);
    }
    for (int i = 0; i < nspare; i++) th_conn_close(&spare[i]);
}

static void still_serves(const th_server *s)
{
    th_resp r;
    CHECK_EQ(hz_call(s->port, "GET", "/ok", NULL, 0, &r, NULL), 200);
    CHECK(strncmp(r.body, "ok ", 3) == 0);
    th_resp_free(&r);
}

/* Item: one request setting busy_timeout and locking_mode, then an INSERT, hung its worker for
 * good. The settings are refused, and a write that meets another connection's lock (here the
 * test's own, held 1.5 s) parks its request: both workers keep answering meanwhile. */
TEST_TIMEOUT(hostile_sql_worker_never_wedged, 120)
{
    th_server s;
    start(&s, LONG_DEADLINE_CFG);
    th_conn c[4];
    conns_on_workers(&s, c, (const int[]){0, 1, 0, 1}, 4);
    int settings_refused = 0;
    for (int w = 0; w < 2; w++) {
        settings_refused += refused(&c[w], "PRAGMA busy_timeout=2147483647", "not authorized");
        settings_refused += refused(&c[w], "PRAGMA locking_mode=EXCLUSIVE", "not authorized");
    }
    int inserts_ok = 0;
    for (int w = 0; w < 2; w++) inserts_ok += runs(&c[w], "INSERT INTO notes (body) VALUES ('a')");

    /* another connection (another process, as far as the workers know) holds the write lock */
    db_conn *other;
    tr_error err = {0};
    char *p = tr_asprintf("%s/data/main.db", hz_depot());
    CHECK_EQ(db_open(p, &other, &err), 0);
    tr_free(p);
    CHECK_EQ(db_exec(other, "BEGIN IMMEDIATE; INSERT INTO acks DEFAULT VALUES", &err), 0);
    double t0 = hz_now_ms();
    for (int w = 0; w < 2; w++)
        send_req(&c[w], "POST", "/sql/exec", "INSERT INTO notes (body) VALUES ('parked')");
    int answered = 0, asked = 0;
    double worst = 0;
    while (hz_now_ms() - t0 < 1500) {
        for (int w = 2; w < 4; w++) {
            th_resp r;
            double t1 = hz_now_ms();
            asked++;
            if (hz_get(&c[w], "/ok", &r) == 200) {
                answered++;
                th_resp_free(&r);
            } else {
                th_conn_close(&c[w]);
                CHECK_EQ(th_conn_open(&c[w], s.port), 0);
            }
            double ms = hz_now_ms() - t1;
            if (ms > worst) worst = ms;
        }
        usleep(20000);
    }
    CHECK_EQ(db_exec(other, "COMMIT", &err), 0);
    db_close(other);
    int parked_ok = 0;
    double parked_ms = 0;
    for (int w = 0; w < 2; w++) {
        th_resp r;
        int st = th_conn_read(&c[w], &r, false, 10000);
        if (st == 0 && r.status == 200) parked_ok++;
        else fprintf(stderr, "     parked insert: %d %d %.200s\n", st, st == 0 ? r.status : 0,
                     st == 0 ? r.body : "");
        if (st == 0) th_resp_free(&r);
    }
    parked_ms = hz_now_ms() - t0;
    for (int i = 0; i < 4; i++) th_conn_close(&c[i]);
    test_report("worker never wedged: %d/4 settings refused (busy_timeout, locking_mode on each "
                "worker), %d/2 inserts after them ok; while another connection held the write "
                "lock 1.5 s: %d/%d GET /ok answered on the writers' workers (slowest %.0f ms), "
                "%d/2 parked inserts then done (%.0f ms)",
                settings_refused, inserts_ok, answered, asked, worst, parked_ok, parked_ms);
    CHECK_EQ(settings_refused, 4);
    CHECK_EQ(inserts_ok, 2);
    CHECK_EQ(answered, asked);
    CHECK(worst < 1000);
    CHECK_EQ(parked_ok, 2);
    still_serves(&s);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Item: writable_schema and an UPDATE of sqlite_schema left a data directory that no longer
 * started. Every way to write the schema or the file's settings is refused; trail starts again. */
TEST_TIMEOUT(hostile_sql_schema_not_corruptible, 120)
{
    static const char *const attacks[] = {
        "PRAGMA writable_schema=ON",
        "UPDATE sqlite_schema SET sql='garbage' WHERE name='notes'",
        "PRAGMA writable_schema=RESET",
        "PRAGMA schema_version=1",
        "PRAGMA journal_mode=OFF",
        "PRAGMA journal_mode=DELETE",
        "PRAGMA synchronous=OFF",
        "PRAGMA page_size=512",
        "PRAGMA auto_vacuum=FULL",
        "PRAGMA user_version=7",
        "PRAGMA application_id=7",
        "VACUUM",
        "DELETE FROM sqlite_schema WHERE name='notes'",
    };
    th_server s;
    start(&s, NULL);
    hz_load *l = hz_load_start(&s);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    size_t n = TR_ARRAY_LEN(attacks), no = 0;
    for (size_t i = 0; i < n; i++) no += refused(&c, attacks[i], "");
    bool notes_ok = runs(&c, "INSERT INTO notes (body) VALUES ('still here')");
    th_conn_close(&c);
    hz_stats st;
    hz_load_stop(l, &st);
    CHECK_EQ(th_server_stop(&s), 0);
    int restarted = th_server_start(&s, hz_depot(), server_args);
    bool after = false;
    if (restarted == 0) {
        CHECK_EQ(th_conn_open(&c, s.port), 0);
        after = runs(&c, "SELECT count(*) FROM notes");
        th_conn_close(&c);
    }
    test_report("schema not corruptible: %zu/%zu schema and file-setting writes refused, the "
                "table still written; trail %s on the same data directory; healthy meanwhile: "
                "%ld/%ld ok, p99 %.1f ms",
                no, n, restarted == 0 && after ? "starts again" : "does NOT start again", st.ok,
                st.ok + st.failed, st.p99_ms);
    CHECK_EQ(no, n);
    CHECK(notes_ok);
    CHECK_EQ(restarted, 0);
    CHECK(after);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Item: a guest deleted a row of _schema_history (the next start failed re-applying the
 * migration) and rewrote _job_runs. trail's tables refuse every write and every DDL; of them
 * only _user may be read (the reference's examples join it). */
TEST_TIMEOUT(hostile_sql_internal_tables, 120)
{
    static const char *const attacks[] = {
        "DELETE FROM _schema_history WHERE name='0001_init.sql'",
        "UPDATE _schema_history SET checksum='0'",
        "INSERT INTO _schema_history (name, applied_at, checksum) VALUES ('x', 0, '0')",
        "DROP TABLE _schema_history",
        "SELECT * FROM _schema_history",
        "UPDATE _job_runs SET ok = 1",
        "INSERT INTO _job_runs (job, component, trigger, started_at) VALUES ('j', 'c', 't', 0)",
        "DELETE FROM _job_runs",
        "SELECT * FROM _job_runs",
        "CREATE INDEX big ON _job_runs (error)",
        "INSERT INTO _user (email) VALUES ('mallory@example.com')",
        "UPDATE _user SET admin = 1",
        "DELETE FROM _user",
        "ALTER TABLE _user ADD COLUMN evil TEXT",
        "ALTER TABLE _user RENAME TO users_gone",
        "DROP TRIGGER _user__updated",
        "CREATE TRIGGER spy AFTER INSERT ON _user BEGIN SELECT 1; END",
        "CREATE TABLE _mine (a)",
        "CREATE VIEW _v AS SELECT 1",
        "ALTER TABLE notes RENAME TO \"_notes\"",
    };
    static const char *const allowed[] = {
        "SELECT count(*) FROM _user",
        "SELECT n.id, u.email FROM notes n LEFT JOIN _user u ON u.id = n.body",
        "SELECT name FROM pragma_table_info('_user')",
        "SELECT name FROM sqlite_schema",
    };
    th_server s;
    start(&s, NULL);
    hz_load *l = hz_load_start(&s);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    size_t n = TR_ARRAY_LEN(attacks), no = 0, m = TR_ARRAY_LEN(allowed), yes = 0;
    for (size_t i = 0; i < n; i++) no += refused(&c, attacks[i], "not authorized");
    for (size_t i = 0; i < m; i++) {
        th_resp r;
        int st = post(&c, "/sql/query", allowed[i], &r, 10000);
        if (st != 200) fprintf(stderr, "     refused: %s -> %d %.200s\n", allowed[i], st, r.body);
        yes += st == 200;
        if (st > 0) th_resp_free(&r);
    }
    /* a trigger's body is checked when a statement that fires it is prepared, with the rules of
     * whoever runs that statement: a guest's insert cannot reach trail's tables through one */
    bool trigger = runs(&c, "CREATE TRIGGER t_notes AFTER INSERT ON notes BEGIN "
                            "DELETE FROM _schema_history; END") &&
                   refused(&c, "INSERT INTO notes (body) VALUES ('x')", "not authorized") &&
                   runs(&c, "DROP TRIGGER t_notes") &&
                   runs(&c, "INSERT INTO notes (body) VALUES ('x')");
    th_conn_close(&c);
    hz_stats st;
    hz_load_stop(l, &st);
    CHECK_EQ(th_server_stop(&s), 0);
    int restarted = th_server_start(&s, hz_depot(), server_args);
    test_report("trail's tables: %zu/%zu writes, DDL and reads of them refused, %zu/%zu reads of "
                "_user and schema introspection allowed; trail %s; healthy meanwhile: %ld/%ld "
                "ok, p99 %.1f ms; a trigger on a guest's table cannot reach them: %s",
                no, n, yes, m, restarted == 0 ? "starts again" : "does NOT start again", st.ok,
                st.ok + st.failed, st.p99_ms, trigger ? "yes" : "NO");
    CHECK_EQ(no, n);
    CHECK_EQ(yes, m);
    CHECK(trigger);
    CHECK_EQ(restarted, 0);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* ---- temporary files held by the server ---- */

typedef struct temp_sampler {
    pid_t pid;
    atomic_bool stop;
    long long peak;
    pthread_t th;
} temp_sampler;

/* Bytes in the files SQLite made for temporary data (etilqs_*, deleted once open) that pid
 * holds open. */
static long long temp_bytes(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (d == NULL) return 0;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[400], target[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        struct stat sb;
        if (strstr(target, "etilqs_") != NULL && stat(path, &sb) == 0) sum += sb.st_size;
    }
    closedir(d);
    return sum;
}

static void *temp_main(void *arg)
{
    temp_sampler *t = arg;
    while (!atomic_load(&t->stop)) {
        long long b = temp_bytes(t->pid);
        if (b > t->peak) t->peak = b;
        usleep(5000);
    }
    return NULL;
}

#define TEMP_CASE_MB 64
#define ROWS_OF_1000(n)                                                                            \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < " #n ") "

/* Item: temp_store=MEMORY and a temp table of 500,000 rows of 1000 random bytes took the server
 * to 2.7 GB, kept until restart; without the pragma a sort kept 392 MB in a deleted temp file.
 * Temporary objects and the pragma are refused, and the temporary files of a worker's
 * connection stop at database.temp_max_mb (here 64 MiB): the statement fails naming it. */
TEST_TIMEOUT(hostile_sql_temp_bounded, 240)
{
    th_server s;
    char cfg[300];
    snprintf(cfg, sizeof cfg,
             "runtime {\n  memory_limit_mb: %d\n  deadline_ms: 60000\n  cpu_budget_ms: 30000\n}\n"
             "database {\n  temp_max_mb: %d\n}\n",
             HZ_MEMORY_MB, TEMP_CASE_MB);
    start(&s, cfg);
    hz_load *l = hz_load_start(&s);
    temp_sampler t = {.pid = s.pid};
    atomic_init(&t.stop, false);
    CHECK_EQ(pthread_create(&t.th, NULL, temp_main, &t), 0);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    int no = 0;
    no += refused(&c, "PRAGMA temp_store=MEMORY", "not authorized");
    no += refused(&c, "CREATE TEMP TABLE t1 AS " ROWS_OF_1000(150000) "SELECT x, randomblob(1000) "
                      "FROM c", "not authorized");
    no += refused(&c, "CREATE TEMP TABLE t2 AS " ROWS_OF_1000(150000) "SELECT x, randomblob(1000) "
                      "FROM c", "not authorized");
    no += refused(&c, "CREATE TEMP VIEW v AS SELECT 1", "not authorized");
    /* a statement's own temporary data: a DISTINCT over 300 MB */
    th_resp r;
    double t0 = hz_now_ms();
    int spill = post(&c, "/sql/query",
                     ROWS_OF_1000(300000) "SELECT count(DISTINCT b) FROM (SELECT randomblob(1000) "
                                          "AS b FROM c)",
                     &r, 60000);
    double spill_ms = hz_now_ms() - t0;
    bool named = spill == 400 && strstr(r.body, "temp_max_mb") != NULL;
    if (!named) fprintf(stderr, "     spill: %d %.300s\n", spill, spill > 0 ? r.body : "");
    if (spill > 0) th_resp_free(&r);
    long long after_spill = temp_bytes(s.pid);
    /* within the bound, the same kind of statement runs */
    bool small = runs(&c, ROWS_OF_1000(5000) "SELECT count(DISTINCT b) FROM (SELECT "
                          "randomblob(1000) AS b FROM c)");
    th_conn_close(&c);
    atomic_store(&t.stop, true);
    pthread_join(t.th, NULL);
    hz_stats st;
    hz_load_stop(l, &st);
    test_report("temporary data: %d/4 temp objects and temp_store refused; a DISTINCT over 300 "
                "MB -> %d after %.0f ms (%s); peak temp files %lld MiB (bound %d), %lld bytes "
                "left after it; 5 MB within the bound %s; server peak RSS %ld MiB (bound %d); "
                "healthy meanwhile: %ld/%ld ok, p99 %.1f ms",
                no, spill, spill_ms, named ? "names database.temp_max_mb" : "no limit named",
                t.peak >> 20, TEMP_CASE_MB, after_spill, small ? "runs" : "FAILS",
                st.peak_rss_kib >> 10, HZ_RSS_BOUND_MIB, st.ok, st.ok + st.failed, st.p99_ms);
    CHECK_EQ(no, 4);
    CHECK(named);
    CHECK(t.peak <= ((long long)TEMP_CASE_MB << 20) + (1 << 20));
    CHECK_EQ(after_spill, 0);
    CHECK(small);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Item: query_only and locking_mode=EXCLUSIVE stayed on the worker's connection after the
 * isolate was replaced. No setting of the connection, the database or the process can be made
 * (here 30 of them, as PRAGMA statements and as pragma functions), so nothing outlives the
 * isolate: after a replacement the worker writes as before, and so does the other worker. */
TEST_TIMEOUT(hostile_sql_settings_do_not_outlive, 120)
{
    static const char *const settings[] = {
        "PRAGMA query_only=1",
        "PRAGMA locking_mode=EXCLUSIVE",
        "PRAGMA busy_timeout=100000",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA temp_store_directory='/tmp'",
        "PRAGMA cache_size=-4000000",
        "PRAGMA mmap_size=1000000000",
        "PRAGMA foreign_keys=OFF",
        "PRAGMA recursive_triggers=ON",
        "PRAGMA case_sensitive_like=ON",
        "PRAGMA ignore_check_constraints=ON",
        "PRAGMA defer_foreign_keys=ON",
        "PRAGMA reverse_unordered_selects=ON",
        "PRAGMA automatic_index=OFF",
        "PRAGMA cell_size_check=ON",
        "PRAGMA secure_delete=OFF",
        "PRAGMA max_page_count=10",
        "PRAGMA journal_size_limit=1",
        "PRAGMA wal_autocheckpoint=1",
        "PRAGMA threads=8",
        "PRAGMA soft_heap_limit=1000",
        "PRAGMA hard_heap_limit=1000",
        "PRAGMA trusted_schema=ON",
        "PRAGMA legacy_alter_table=ON",
        "PRAGMA cache_spill=OFF",
        "PRAGMA analysis_limit=1",
        "PRAGMA shrink_memory",
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "SELECT * FROM pragma_query_only(1)",
        "SELECT * FROM pragma_busy_timeout(100000)",
    };
    th_server s;
    start(&s, NULL);
    hz_load *l = hz_load_start(&s);
    th_conn c[2];
    conns_on_workers(&s, c, (const int[]){0, 1}, 2);
    size_t n = TR_ARRAY_LEN(settings), no = 0;
    for (size_t i = 0; i < n; i++) no += refused(&c[0], settings[i], "");
    bool reads = runs(&c[0], "PRAGMA foreign_keys") && runs(&c[0], "PRAGMA table_info(notes)");
    th_resp r;
    CHECK_EQ(hz_get(&c[0], "/whoami", &r), 200);
    char before[64];
    snprintf(before, sizeof before, "%s", r.body);
    th_resp_free(&r);
    CHECK_EQ(hz_get(&c[0], "/spin", &r), 503);
    th_resp_free(&r);
    CHECK_EQ(hz_get(&c[0], "/whoami", &r), 200);
    bool replaced = strcmp(r.body, before) != 0;
    th_resp_free(&r);
    bool here = runs(&c[0], "INSERT INTO notes (body) VALUES ('after the isolate')");
    bool there = runs(&c[1], "INSERT INTO notes (body) VALUES ('on the other worker')");
    th_conn_close(&c[0]);
    th_conn_close(&c[1]);
    hz_stats st;
    hz_load_stop(l, &st);
    test_report("settings: %zu/%zu connection, database and process settings refused, reading "
                "settings allowed; after the isolate was replaced the worker %s and the other "
                "worker %s; healthy meanwhile: %ld/%ld ok, p99 %.1f ms",
                no, n, here ? "writes" : "CANNOT write", there ? "writes" : "CANNOT write", st.ok,
                st.ok + st.failed, st.p99_ms);
    CHECK_EQ(no, n);
    CHECK(reads);
    CHECK(replaced);
    CHECK(here);
    CHECK(there);
    hz_check_healthy(&s, &st, HZ_RSS_BOUND_MIB);
    CHECK_EQ(th_server_stop(&s), 0);
}

/* Item: a transaction held open on worker A made every write on worker B block B's thread for
 * the busy timeout, so B's unrelated requests waited seconds. B's write now parks (the request
 * waits, B's loop goes on): it completes once A commits, or fails after DB_BUSY_TIMEOUT_MS with
 * a message that says so; B's other requests are answered at once throughout. */
TEST_TIMEOUT(hostile_sql_lock_wait_parks, 120)
{
    th_server s;
    start(&s, LONG_DEADLINE_CFG);
    th_conn c[3]; /* c[0] on worker A; c[1], c[2] on worker B */
    conns_on_workers(&s, c, (const int[]){0, 1, 1}, 3);
    static const int hold_ms[2] = {2000, DB_BUSY_TIMEOUT_MS + 2500};
    int status[2] = {0, 0};
    double write_ms[2] = {0, 0}, worst = 0;
    int answered = 0, asked = 0;
    char msg[300] = "";
    for (int i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "/sql/hold/%d", hold_ms[i]);
        double t0 = hz_now_ms();
        send_req(&c[0], "POST", path, NULL);
        usleep(300000); /* A has begun and written */
        double t1 = hz_now_ms();
        send_req(&c[1], "POST", "/sql/exec", "INSERT INTO notes (body) VALUES ('from B')");
        while (hz_now_ms() - t0 < hold_ms[i] - 200) {
            th_resp r;
            double t2 = hz_now_ms();
            asked++;
            if (hz_get(&c[2], "/ok", &r) == 200) {
                answered++;
                th_resp_free(&r);
            } else {
                th_conn_close(&c[2]);
                CHECK_EQ(th_conn_open(&c[2], s.port), 0);
            }
            double ms = hz_now_ms() - t2;
            if (ms > worst) worst = ms;
            usleep(20000);
        }
        th_resp r;
        CHECK_EQ(th_conn_read(&c[1], &r, false, 30000), 0);
        status[i] = r.status;
        write_ms[i] = hz_now_ms() - t1;
        if (i == 1) snprintf(msg, sizeof msg, "%s", r.body);
        th_resp_free(&r);
        CHECK_EQ(th_conn_read(&c[0], &r, false, 30000), 0);
        CHECK_EQ(r.status, 200);
        th_resp_free(&r);
    }
    for (int i = 0; i < 3; i++) th_conn_close(&c[i]);
    test_report("lock wait: A holds the write lock %d ms -> B's insert %d after %.0f ms; held %d "
                "ms -> %d after %.0f ms (%.120s); B's GET /ok meanwhile %d/%d answered, slowest "
                "%.0f ms",
                hold_ms[0], status[0], write_ms[0], hold_ms[1], status[1], write_ms[1], msg,
                answered, asked, worst);
    CHECK_EQ(status[0], 200);
    CHECK(write_ms[0] >= 1000); /* it waited for A's commit */
    CHECK_EQ(status[1], 400);
    CHECK_CONTAINS(msg, "database is locked");
    CHECK(write_ms[1] >= DB_BUSY_TIMEOUT_MS - 500);
    CHECK_EQ(answered, asked);
    CHECK(answered >= 20);
    CHECK(worst < 1000);
    still_serves(&s);
    CHECK_EQ(th_server_stop(&s), 0);
}
