/* cli/cmd_users.c: `trail user ...` and `trail admin ...`: the operator's side of users, with the
 * reference system's commands and argument forms. A USER is an email address, a UUID
 * (8-4-4-4-12 hex) or the id as the auth API shows it (URL-safe base64).
 *
 * DESIGN: each command opens the data directory's database itself (migrated, so the auth tables
 * exist) and works on it directly; a server running on the same directory sees the change with
 * its next statement (WAL). The data directory of a cluster node (config.textproto's cluster
 * section, or the node's CLUSTER_ID_FILE) keeps its users in the cluster's database: there the
 * statements go through cluster/appdb to the cluster's leader (found through the node's address
 * and the configured cluster.join), the local file being only the node's schema mirror, and
 * every node sees the change at once. Secrets are printed only where asked for (mint-token). */
#include "cli/cli_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "base/base.h"
#include "cluster/appdb.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "db/db.h"

static void user_usage(FILE *out)
{
    fprintf(out,
            "Usage: trail user <command> [--data-dir DIR]\n\n"
            "Commands (USER: an email address, a UUID, or the id the auth API shows):\n"
            "  add EMAIL PASSWORD             add a verified user\n"
            "  delete USER                    delete a user (and its sessions)\n"
            "  verify USER [true|false]       set whether its email address is verified\n"
            "  change-password USER PASSWORD  set a new password (policy not checked)\n"
            "  change-email USER EMAIL        set a new email address\n"
            "  invalidate-session USER        end every session: refresh tokens stop working,\n"
            "                                 access tokens at their expiry\n"
            "  mint-token USER                print a new access token and refresh token\n\n"
            "Options:\n"
            "  --data-dir DIR   the data directory (default ./traildepot)\n\n"
            "In a cluster node's data directory the commands act on the cluster's users,\n"
            "through its leader (the cluster must be running).\n");
}

static void admin_usage(FILE *out)
{
    fprintf(out, "Usage: trail admin <command> [--data-dir DIR]\n\n"
                 "Commands (USER: an email address, a UUID, or the id the auth API shows):\n"
                 "  list           the admins\n"
                 "  promote USER   make a user an admin\n"
                 "  demote USER    make an admin a normal user\n\n"
                 "Options:\n"
                 "  --data-dir DIR   the data directory (default ./traildepot)\n\n"
                 "In a cluster node's data directory the commands act on the cluster's users,\n"
                 "through its leader (the cluster must be running).\n");
}

typedef struct users_env {
    const char *data_dir;
    const char *args[4]; /* positional arguments after the command */
    int nargs;
    cfg c;
    db_conn *db;
    bool cluster; /* the statements go to the cluster's leader (cluster/appdb) */
} users_env;

/* The most cluster members the commands ask for the leader. */
#define USERS_MAX_ADDRS 16

/* Cluster mode when dir is a cluster node's: its address (config.textproto's cluster.address, or
 * the one the node recorded when it started with --cluster-address) and cluster.join. */
static int cluster_open(users_env *e, tr_error *err)
{
    char *recorded = NULL;
    uint64_t id = 0;
    const char *address = e->c.cluster.address;
    if (address == NULL || address[0] == '\0') {
        int rc = cluster_id_read(e->data_dir, &id, &recorded, err);
        if (rc == -ENOENT) return 0; /* a single node */
        if (rc < 0) return rc;
        address = recorded;
    }
    const char *addrs[USERS_MAX_ADDRS];
    size_t n = 0;
    addrs[n++] = address;
    for (size_t i = 0; i < e->c.cluster.join_len && n < USERS_MAX_ADDRS; i++)
        addrs[n++] = e->c.cluster.join[i];
    adb_cluster_publish(addrs, n);
    e->cluster = true;
    tr_free(recorded);
    return 0;
}

/* Splits argv (after the group) into the command's positionals and --data-dir. */
static int parse(const char *group, int argc, char **argv, users_env *e)
{
    e->data_dir = "./traildepot";
    e->nargs = 0;
    for (int i = 2; i < argc; i++) {
        if (cli__opt(argc, argv, &i, "--data-dir", &e->data_dir)) continue;
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "trail %s: unknown option %s\n", group, argv[i]);
            return -1;
        } else if (e->nargs < 4) {
            e->args[e->nargs++] = argv[i];
        } else {
            fprintf(stderr, "trail %s: too many arguments\n", group);
            return -1;
        }
    }
    return 0;
}

static int env_open(const char *group, users_env *e)
{
    tr_error err = {0};
    cfg_init_defaults(&e->c);
    char *cfg_path = tr_asprintf("%s/config.textproto", e->data_dir);
    char *db_path = tr_asprintf("%s/data/main.db", e->data_dir);
    char *mig = tr_asprintf("%s/migrations", e->data_dir);
    int rc = db_datadir_init(e->data_dir, cfg_default_text(), &err);
    if (rc == 0) {
        rc = cfg_load_file(cfg_path, &e->c, &err);
        if (rc == -ENOENT) rc = 0;
    }
    if (rc == 0) rc = db_open(db_path, &e->db, &err);
    if (rc == 0) rc = db_migrate(e->db, mig, &err);
    if (rc == 0) rc = auth_store_init(e->db, &err);
    if (rc == 0) rc = cluster_open(e, &err);
    if (rc < 0) fprintf(stderr, "trail %s: %s\n", group, err.msg);
    tr_free(cfg_path);
    tr_free(db_path);
    tr_free(mig);
    return rc;
}

static void env_close(users_env *e)
{
    if (e->cluster) adb_cluster_publish(NULL, 0);
    db_close(e->db);
    cfg_deinit(&e->c);
}

/* Runs sql with the user's id as ?1 and text as ?2 (may be NULL); the rows changed. */
static int exec_for(users_env *e, const char *sql, const uint8_t id[16], const char *text,
                    int64_t *changes)
{
    sqlite3 *h = db_handle(e->db);
    adb_stmt *st = NULL;
    if (adb_prepare(h, sql, &st) != SQLITE_OK) return -1;
    adb_bind_blob(st, 1, id, 16);
    if (text) adb_bind_text(st, 2, text, -1);
    int s = adb_step(st);
    adb_finalize(st);
    if (s != SQLITE_DONE) return (s & 0xff) == SQLITE_CONSTRAINT ? -2 : -1;
    if (changes) *changes = adb_changes(h);
    return 0;
}

/* Where a change was made, for the commands' output. */
static const char *where(const users_env *e)
{
    return e->cluster ? " (in the cluster)" : "";
}

static int need_args(const char *group, const users_env *e, int n, const char *form)
{
    if (e->nargs == n) return 0;
    fprintf(stderr, "trail %s: usage: trail %s %s\n", group, group, form);
    return -1;
}

static int find(const char *group, users_env *e, const char *user, uint8_t id[16])
{
    tr_error err = {0};
    if (auth_user_find(e->db, user, id, &err) < 0) {
        fprintf(stderr, "trail %s: %s\n", group, err.msg);
        return -1;
    }
    return 0;
}

static int user_cmd(const char *cmd, users_env *e)
{
    uint8_t id[16];
    tr_error err = {0};
    int64_t n = 0;
    if (strcmp(cmd, "add") == 0) {
        if (need_args("user", e, 2, "add EMAIL PASSWORD") < 0) return 2;
        if (auth_user_create(e->db, e->args[0], e->args[1], true, false, id, &err) < 0) {
            fprintf(stderr, "trail user: %s\n", err.msg);
            return 1;
        }
        char b64[32];
        auth_id_b64(id, b64);
        printf("added %s (id %s)%s\n", e->args[0], b64, where(e));
        return 0;
    }
    if (strcmp(cmd, "delete") == 0) {
        if (need_args("user", e, 1, "delete USER") < 0) return 2;
        if (find("user", e, e->args[0], id) < 0) return 1;
        if (exec_for(e, "DELETE FROM _user WHERE id = ?1", id, NULL, &n) < 0) goto sql;
        printf("deleted %s%s\n", e->args[0], where(e));
        return 0;
    }
    if (strcmp(cmd, "verify") == 0) {
        if (e->nargs != 1 && e->nargs != 2) {
            need_args("user", e, 1, "verify USER [true|false]");
            return 2;
        }
        bool v = true;
        if (e->nargs == 2) {
            if (strcmp(e->args[1], "true") == 0) {
                v = true;
            } else if (strcmp(e->args[1], "false") == 0) {
                v = false;
            } else {
                fprintf(stderr, "trail user: verify: expected true or false, not %s\n", e->args[1]);
                return 2;
            }
        }
        if (find("user", e, e->args[0], id) < 0) return 1;
        if (exec_for(e,
                     v ? "UPDATE _user SET verified = 1 WHERE id = ?1"
                       : "UPDATE _user SET verified = 0 WHERE id = ?1",
                     id, NULL, &n) < 0)
            goto sql;
        printf("%s is %s\n", e->args[0], v ? "verified" : "not verified");
        return 0;
    }
    if (strcmp(cmd, "change-password") == 0) {
        if (need_args("user", e, 2, "change-password USER PASSWORD") < 0) return 2;
        size_t pl = strlen(e->args[1]);
        if (pl == 0 || pl > 128) {
            fprintf(stderr, "trail user: a password of 1 to 128 bytes is needed\n");
            return 2;
        }
        if (find("user", e, e->args[0], id) < 0) return 1;
        char hash[AUTH_HASH_BYTES];
        if (auth_password_hash(e->args[1], pl, hash) < 0 ||
            exec_for(e, "UPDATE _user SET password_hash = ?2 WHERE id = ?1", id, hash, &n) < 0)
            goto sql;
        printf("password of %s changed\n", e->args[0]);
        return 0;
    }
    if (strcmp(cmd, "change-email") == 0) {
        if (need_args("user", e, 2, "change-email USER EMAIL") < 0) return 2;
        if (find("user", e, e->args[0], id) < 0) return 1;
        char lower[300];
        snprintf(lower, sizeof lower, "%s", e->args[1]);
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        if (strchr(lower, '@') == NULL || strpbrk(lower, " \t\r\n<>\"") != NULL) {
            fprintf(stderr, "trail user: not an email address: %s\n", e->args[1]);
            return 2;
        }
        int rc = exec_for(e, "UPDATE _user SET email = ?2 WHERE id = ?1", id, lower, &n);
        if (rc == -2) {
            fprintf(stderr, "trail user: %s belongs to another user\n", lower);
            return 1;
        }
        if (rc < 0) goto sql;
        printf("email of %s changed to %s\n", e->args[0], lower);
        return 0;
    }
    if (strcmp(cmd, "invalidate-session") == 0) {
        if (need_args("user", e, 1, "invalidate-session USER") < 0) return 2;
        if (find("user", e, e->args[0], id) < 0) return 1;
        if (auth_sessions_delete_user(e->db, id, &n, &err) < 0) goto sql;
        printf("%lld session%s of %s ended\n", (long long)n, n == 1 ? "" : "s", e->args[0]);
        return 0;
    }
    if (strcmp(cmd, "mint-token") == 0 || strcmp(cmd, "mint") == 0) {
        if (need_args("user", e, 1, "mint-token USER") < 0) return 2;
        if (find("user", e, e->args[0], id) < 0) return 1;
        auth_keys *k = NULL;
        if (auth_keys_load(e->data_dir, &k, &err) < 0) {
            fprintf(stderr, "trail user: %s\n", err.msg);
            return 1;
        }
        tr_buf access = TR_BUF_INIT, refresh = TR_BUF_INIT, csrf = TR_BUF_INIT;
        int rc = auth_tokens_mint(e->db, k, id, e->c.auth.auth_token_ttl_sec,
                                  e->c.auth.refresh_token_ttl_sec, &access, &refresh, &csrf, &err);
        auth_keys_free(k);
        if (rc == 0)
            printf("auth_token: %.*s\nrefresh_token: %.*s\ncsrf_token: %.*s\n", (int)access.len,
                   access.data, (int)refresh.len, refresh.data, (int)csrf.len, csrf.data);
        else
            fprintf(stderr, "trail user: %s\n", err.msg);
        tr_buf_free(&access);
        tr_buf_free(&refresh);
        tr_buf_free(&csrf);
        return rc == 0 ? 0 : 1;
    }
    static const char *const valid[] = {
        "add",        "delete", "verify", "change-password", "change-email", "invalidate-session",
        "mint-token", NULL};
    return cli__unknown_command("trail user", cmd, valid);
sql:
    fprintf(stderr, "trail user: %s\n", err.msg[0] ? err.msg : adb_errmsg(db_handle(e->db)));
    return 1;
}

int cli_user(int argc, char **argv)
{
    if (cli__wants_help(argc, argv) || argc < 2) {
        user_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    users_env e = {0};
    if (parse("user", argc, argv, &e) < 0) return 2;
    if (env_open("user", &e) < 0) {
        env_close(&e);
        return 1;
    }
    int rc = user_cmd(argv[1], &e);
    env_close(&e);
    return rc;
}

static int admin_cmd(const char *cmd, users_env *e)
{
    uint8_t id[16];
    if (strcmp(cmd, "list") == 0) {
        if (need_args("admin", e, 0, "list") < 0) return 2;
        adb_stmt *st = NULL;
        sqlite3 *h = db_handle(e->db);
        adb_prepare(h, "SELECT email, uuid_text(id), created FROM _user WHERE admin ORDER BY email",
                    &st);
        int n = 0, s = SQLITE_DONE;
        while (st && (s = adb_step(st)) == SQLITE_ROW) {
            if (n++ == 0) printf("%-40s %s\n", "EMAIL", "ID");
            printf("%-40s %s\n", adb_column_text(st, 0), adb_column_text(st, 1));
        }
        adb_finalize(st);
        if (st == NULL || s != SQLITE_DONE) {
            fprintf(stderr, "trail admin: %s\n", adb_errmsg(h));
            return 1;
        }
        if (n == 0) printf("No admins%s.\n", where(e));
        return 0;
    }
    bool promote = strcmp(cmd, "promote") == 0;
    if (promote || strcmp(cmd, "demote") == 0) {
        if (need_args("admin", e, 1, promote ? "promote USER" : "demote USER") < 0) return 2;
        if (find("admin", e, e->args[0], id) < 0) return 1;
        if (exec_for(e,
                     promote ? "UPDATE _user SET admin = 1 WHERE id = ?1"
                             : "UPDATE _user SET admin = 0 WHERE id = ?1",
                     id, NULL, NULL) < 0) {
            fprintf(stderr, "trail admin: %s\n", adb_errmsg(db_handle(e->db)));
            return 1;
        }
        printf("%s is %s\n", e->args[0], promote ? "an admin" : "no longer an admin");
        return 0;
    }
    static const char *const valid[] = {"list", "promote", "demote", NULL};
    return cli__unknown_command("trail admin", cmd, valid);
}

int cli_admin(int argc, char **argv)
{
    if (cli__wants_help(argc, argv) || argc < 2) {
        admin_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    users_env e = {0};
    if (parse("admin", argc, argv, &e) < 0) return 2;
    if (env_open("admin", &e) < 0) {
        env_close(&e);
        return 1;
    }
    int rc = admin_cmd(argv[1], &e);
    env_close(&e);
    return rc;
}
