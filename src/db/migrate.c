/* db/migrate.c: schema migrations: the built-in ones, then the *.sql files in migrations/, each
 * applied once.
 *
 * DESIGN: _schema_history records (name, applied_at, checksum) for every applied migration.
 * Built-in migrations are named "trail/NNNN_what"; a file's name has no '/', so the two can never
 * collide. Each migration runs in its own BEGIN IMMEDIATE transaction together with its history
 * row, so a failure rolls back both and the database is exactly as before that migration (the
 * ones before it stay applied). The history is read again inside the transaction, so two processes
 * migrating the same database at once apply each migration once.
 *
 * A migration's statements are prepared and stepped one at a time (not sqlite3_exec) so that an
 * error can name the line it happened on. An authorizer denies BEGIN/COMMIT/ROLLBACK inside a
 * migration: one of those would end our transaction early and break the all-or-nothing rule. */
#include "db/db_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MIGRATION_BYTES (64u << 20)

typedef struct builtin_migration {
    const char *name;
    const char *sql;
} builtin_migration;

/* Never edit an entry once released: its checksum is recorded in users' databases. Add new ones
 * at the end. */
static const builtin_migration builtins[] = {
    {"trail/0001_user", "CREATE TABLE _user (\n"
                        "  id            BLOB PRIMARY KEY NOT NULL DEFAULT (uuid_v7())\n"
                        "                CHECK (typeof(id) = 'blob' AND length(id) = 16),\n"
                        "  email         TEXT NOT NULL UNIQUE,\n"
                        "  password_hash TEXT NOT NULL DEFAULT '',\n"
                        "  verified      INTEGER NOT NULL DEFAULT 0,\n"
                        "  admin         INTEGER NOT NULL DEFAULT 0,\n"
                        "  created       INTEGER NOT NULL DEFAULT (unixepoch()),\n"
                        "  updated       INTEGER NOT NULL DEFAULT (unixepoch())\n"
                        ") STRICT;\n"
                        "CREATE TRIGGER _user__updated AFTER UPDATE ON _user FOR EACH ROW\n"
                        "  WHEN NEW.updated = OLD.updated\n"
                        "  BEGIN UPDATE _user SET updated = unixepoch() WHERE id = NEW.id; END;\n"},
};

typedef struct migrate_ctx {
    db_conn *c;
    db_migrate_stats stats;
    bool denied; /* the authorizer refused a transaction statement */
    tr_error *err;
} migrate_ctx;

static void checksum_hex(const char *data, size_t len, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 0x100000001b3ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int deny_transactions(void *arg, int action, const char *a, const char *b, const char *d,
                             const char *t)
{
    (void)a, (void)b, (void)d, (void)t;
    if (action == SQLITE_TRANSACTION) {
        ((migrate_ctx *)arg)->denied = true;
        return SQLITE_DENY;
    }
    return SQLITE_OK;
}

/* 1-based line of p in text. */
static int line_of(const char *text, const char *p)
{
    int line = 1;
    for (const char *s = text; s < p; s++)
        if (*s == '\n') line++;
    return line;
}

/* Skips whitespace and SQL comments, so an error points at a statement's first token. */
static const char *skip_blank(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (e == NULL) return s;
            s = e + 2;
        } else {
            return s;
        }
    }
}

/* Runs every statement of sql (NUL-terminated). On failure sets ctx->err naming label and line. */
static int run_statements(migrate_ctx *ctx, const char *label, const char *sql)
{
    sqlite3 *db = ctx->c->db;
    const char *tail = sql;
    ctx->denied = false;
    sqlite3_set_authorizer(db, deny_transactions, ctx);
    int rc = 0;
    while (*tail != '\0') {
        const char *start = tail;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, start, -1, &st, &tail) != SQLITE_OK) {
            int off = sqlite3_error_offset(db);
            const char *at = off >= 0 ? start + off : skip_blank(start);
            if (ctx->denied)
                rc = tr_error_set(ctx->err, TR_ESQL,
                                  "migration %s failed at line %d: BEGIN, COMMIT and ROLLBACK are "
                                  "not allowed in a migration (each already runs in its own "
                                  "transaction)",
                                  label, line_of(sql, at));
            else
                rc = tr_error_set(ctx->err, TR_ESQL, "migration %s failed at line %d: %s", label,
                                  line_of(sql, at), sqlite3_errmsg(db));
            break;
        }
        if (st == NULL) continue; /* only blanks or comments were left */
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        }
        if (step != SQLITE_DONE) {
            rc = tr_error_set(ctx->err, TR_ESQL, "migration %s failed at line %d: %s", label,
                              line_of(sql, skip_blank(start)), sqlite3_errmsg(db));
            sqlite3_finalize(st);
            break;
        }
        sqlite3_finalize(st);
    }
    sqlite3_set_authorizer(db, NULL, NULL);
    return rc;
}

/* Looks name up in the history: 1 and its checksum in out when applied, 0 when not. */
static int history_lookup(migrate_ctx *ctx, const char *name, char out[17])
{
    sqlite3 *db = ctx->c->db;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT checksum FROM " DB_HISTORY_TABLE " WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db__sql_error(db, ctx->err, "read " DB_HISTORY_TABLE);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = 0;
    if (step == SQLITE_ROW) {
        const unsigned char *sum = sqlite3_column_text(st, 0);
        snprintf(out, 17, "%s", sum ? (const char *)sum : "");
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = db__sql_error(db, ctx->err, "read " DB_HISTORY_TABLE);
    }
    sqlite3_finalize(st);
    return rc;
}

static int history_insert(migrate_ctx *ctx, const char *name, const char *sum)
{
    sqlite3 *db = ctx->c->db;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db, "INSERT INTO " DB_HISTORY_TABLE " (name, applied_at, checksum) VALUES (?1, ?2, ?3)",
            -1, &st, NULL) != SQLITE_OK)
        return db__sql_error(db, ctx->err, "write " DB_HISTORY_TABLE);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, tr_wall_ms());
    sqlite3_bind_text(st, 3, sum, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE
                 ? 0
                 : db__sql_error(db, ctx->err, "write " DB_HISTORY_TABLE);
    sqlite3_finalize(st);
    return rc;
}

static void warn_if_changed(migrate_ctx *ctx, const char *label, const char *old, const char *sum)
{
    if (strcmp(old, sum) == 0) return;
    ctx->stats.changed++;
    db_migration_warn_if_changed(label, old, sum);
}

/* Applies one migration unless the history has it. label names it in messages. */
static int apply(migrate_ctx *ctx, const char *name, const char *label, const char *sql, size_t len)
{
    char sum[17], old[17];
    checksum_hex(sql, len, sum);
    int found = history_lookup(ctx, name, old);
    if (found < 0) return found;
    if (found) {
        ctx->stats.skipped++;
        warn_if_changed(ctx, label, old, sum);
        return 0;
    }
    if (ctx->c->stop && *ctx->c->stop)
        return tr_error_set(ctx->err, TR_EINTERRUPTED, "migration %s not started: interrupted",
                            label);
    sqlite3 *db = ctx->c->db;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db__sql_error(db, ctx->err, "begin migration");
    /* Another process may have applied it since the lookup above. */
    found = history_lookup(ctx, name, old);
    int rc = found < 0 ? found : 0;
    if (found == 0) {
        rc = run_statements(ctx, label, sql);
        if (rc == 0) rc = history_insert(ctx, name, sum);
    }
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db__sql_error(db, ctx->err, "commit migration");
    if (rc < 0) {
        /* A stop (db_stop_on) must not interrupt the rollback too. */
        sqlite3_progress_handler(db, 0, NULL, NULL);
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        db_stop_on(ctx->c, ctx->c->stop);
        return rc;
    }
    if (found == 1) {
        ctx->stats.skipped++;
        warn_if_changed(ctx, label, old, sum);
    } else {
        ctx->stats.applied++;
        tr_log_info("applied migration %s", label);
    }
    return 0;
}

static int read_file(const char *path, tr_buf *out, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return tr_error_set(err, rc, "cannot open migration %s: %s", path, tr_strerror(rc));
    }
    int rc = 0;
    for (;;) {
        if (out->len > MAX_MIGRATION_BYTES) {
            rc = tr_error_set(err, TR_ELIMIT, "migration %s is larger than %u bytes", path,
                              MAX_MIGRATION_BYTES);
            break;
        }
        tr_buf_reserve(out, 65536);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            tr_error_set(err, rc, "cannot read migration %s: %s", path, tr_strerror(rc));
            break;
        }
        if (n == 0) break;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
    }
    close(fd);
    if (rc == 0 && memchr(out->data, '\0', out->len) != NULL)
        rc = tr_error_set(err, TR_ESQL, "migration %s contains a NUL byte", path);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.sql names in dir, sorted by byte order; *names is NULL and *n 0 when dir is missing. */
static int list_sql_files(const char *dir, char ***names, size_t *n, tr_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return 0;
        int rc = -errno;
        return tr_error_set(err, rc, "cannot read migrations directory %s: %s", dir,
                            tr_strerror(rc));
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0) continue;
        char *path = tr_asprintf("%s/%s", dir, e->d_name);
        struct stat st;
        bool regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        tr_free(path);
        if (!regular) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *names = tr_realloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = tr_strdup(e->d_name);
    }
    closedir(d);
    if (*n > 1) qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
}

int db_migrations_each(const char *migrations_dir, db_migration_fn fn, void *ud, tr_error *err)
{
    int rc = 0;
    char sum[17];
    for (size_t i = 0; i < TR_ARRAY_LEN(builtins) && rc == 0; i++) {
        char *label = tr_asprintf("built-in %s", builtins[i].name);
        size_t len = strlen(builtins[i].sql);
        checksum_hex(builtins[i].sql, len, sum);
        rc = fn(ud, builtins[i].name, label, builtins[i].sql, len, sum, err);
        tr_free(label);
    }
    char **names = NULL;
    size_t n = 0;
    if (rc == 0 && migrations_dir != NULL) rc = list_sql_files(migrations_dir, &names, &n, err);
    tr_buf text = TR_BUF_INIT;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = tr_asprintf("%s/%s", migrations_dir, names[i]);
        tr_buf_reset(&text);
        rc = read_file(path, &text, err);
        if (rc == 0) {
            const char *sql = text.data ? text.data : "";
            checksum_hex(sql, text.len, sum);
            rc = fn(ud, names[i], path, sql, text.len, sum, err);
        }
        tr_free(path);
    }
    tr_buf_free(&text);
    for (size_t i = 0; i < n; i++)
        tr_free(names[i]);
    tr_free(names);
    return rc;
}

static int apply_one(void *ud, const char *name, const char *label, const char *sql, size_t len,
                     const char *checksum, tr_error *err)
{
    (void)checksum; /* apply() computes it as it did before there was a visitor */
    (void)err;      /* ctx->err is the same */
    return apply(ud, name, label, sql, len);
}

void db_migration_warn_if_changed(const char *label, const char *old, const char *sum)
{
    if (strcmp(old, sum) == 0) return;
    tr_log_warn("migration %s changed after it was applied (checksum %s, now %s); it is not run "
                "again: put schema changes in a new migration file",
                label, old, sum);
}

int db_migrate_run(db_conn *c, const char *migrations_dir, db_migrate_stats *stats, tr_error *err)
{
    migrate_ctx ctx = {.c = c, .err = err};
    int rc = db_exec(c, DB_HISTORY_DDL, err);
    if (rc == 0) rc = db_migrations_each(migrations_dir, apply_one, &ctx, err);
    if (stats != NULL) *stats = ctx.stats;
    return rc;
}

int db_migrate(db_conn *c, const char *migrations_dir, tr_error *err)
{
    return db_migrate_run(c, migrations_dir, NULL, err);
}
