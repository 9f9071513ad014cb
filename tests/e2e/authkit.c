/* tests/e2e/authkit.c: see authkit.h. */
#include "e2e/authkit.h"
#include "e2e/fixtures.h"
#include "test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int ak_req(int port, const char *method, const char *path, const char *headers, const char *ctype,
           const char *body, th_resp *r)
{
    size_t bl = body ? strlen(body) : 0;
    size_t cap = bl + (headers ? strlen(headers) : 0) + strlen(path) + 512;
    char *raw = malloc(cap);
    int n = snprintf(raw, cap, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s", method, path,
                     headers ? headers : "");
    if (body)
        n += snprintf(raw + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      ctype ? ctype : "application/json", bl);
    n += snprintf(raw + n, cap - (size_t)n, "\r\n%s", body ? body : "");
    int rc = th_request(port, raw, r);
    free(raw);
    return rc < 0 ? rc : r->status;
}

int ak_status(int port, const char *method, const char *path, const char *headers,
              const char *ctype, const char *body)
{
    th_resp r;
    int st = ak_req(port, method, path, headers, ctype, body, &r);
    if (st >= 0) th_resp_free(&r);
    return st;
}

bool ak_json_str(const char *json, const char *key, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL) return false;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (e == NULL || (size_t)(e - p) >= cap) return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

void ak_depot(const char *name, const char *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
    char path[1024];
    snprintf(path, sizeof path, "%s/wasm/auth_todos.wasm", out);
    fx_build_component("auth_todos", path);
    snprintf(path, sizeof path, "mkdir -p '%s/migrations'", out);
    CHECK_EQ(fx_sh(path), 0);
    snprintf(path, sizeof path, "%s/migrations/0001_todos.sql", out);
    static const char mig[] = "CREATE TABLE todos (id INTEGER PRIMARY KEY, owner BLOB NOT NULL, "
                              "text TEXT NOT NULL) STRICT;\n";
    CHECK_EQ(th_write_file(path, mig, sizeof mig - 1), 0);
    if (cfg) {
        snprintf(path, sizeof path, "%s/config.textproto", out);
        CHECK_EQ(th_write_file(path, cfg, strlen(cfg)), 0);
    }
}

int ak_cli(const char *depot, const char *const *args, char **out)
{
    const char *argv[16];
    size_t n = 0;
    for (size_t i = 0; args[i] && n < 12; i++)
        argv[n++] = args[i];
    argv[n++] = "--data-dir";
    argv[n++] = depot;
    argv[n] = NULL;
    char *err = NULL;
    int rc = th_run(argv, 30000, out, &err);
    if (rc != 0 && err) fprintf(stderr, "     trail %s: %s", args[0], err);
    free(err);
    return rc;
}

void ak_login(int port, const char *email, const char *password, char *token, char *refresh,
              char *csrf)
{
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    th_resp r;
    int st = ak_req(port, "POST", "/api/auth/v1/login", NULL, NULL, body, &r);
    if (st != 200) fprintf(stderr, "     login %s: %d %s\n", email, st, st > 0 ? r.body : "");
    CHECK_EQ(st, 200);
    CHECK(ak_json_str(r.body, "auth_token", token, 1024));
    CHECK(ak_json_str(r.body, "refresh_token", refresh, 1024));
    CHECK(ak_json_str(r.body, "csrf_token", csrf, 1024));
    th_resp_free(&r);
}

bool ak_logged_code(const th_server *s, const char *marker, char out[64])
{
    char *logs[2] = {th_server_stderr(s), th_server_stdout(s)};
    bool found = false;
    for (int i = 0; i < 2; i++) {
        const char *p = logs[i], *last = NULL;
        while ((p = strstr(p, marker)) != NULL) {
            last = p + strlen(marker);
            p = last;
        }
        if (last != NULL && !found) {
            size_t n =
                strspn(last, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
            if (n > 0 && n < 64) {
                memcpy(out, last, n);
                out[n] = '\0';
                found = true;
            }
        }
        free(logs[i]);
    }
    return found;
}

static bool smtp_listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int ak_smtp_start(const char *maildir, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    *port = ntohs(a.sin_port);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/python3", "python3", "-m", "aiosmtpd", "-n", "-l", listen, "-c",
              "aiosmtpd.handlers.Mailbox", maildir, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    for (int i = 0; i < 200 && !smtp_listening(*port); i++)
        usleep(50 * 1000);
    if (!smtp_listening(*port)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        test_fail(__FILE__, __LINE__, "aiosmtpd did not start (is python3-aiosmtpd installed?)");
    }
    return (int)pid;
}

void ak_smtp_stop(int pid)
{
    kill((pid_t)pid, SIGTERM);
    waitpid((pid_t)pid, NULL, 0);
}

char *ak_wait_mail(const char *maildir)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/new", maildir);
    for (int tries = 0; tries < 600; tries++) {
        DIR *d = opendir(dir);
        struct dirent *e;
        char name[512] = "";
        while (d && (e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') {
                snprintf(name, sizeof name, "%s", e->d_name);
                break;
            }
        if (d) closedir(d);
        if (name[0]) {
            char from[1300], to[1300];
            snprintf(from, sizeof from, "%s/%s", dir, name);
            snprintf(to, sizeof to, "%s/cur/%s", maildir, name);
            char *text = th_read_file(from, NULL);
            CHECK(text != NULL);
            CHECK_EQ(rename(from, to), 0);
            return text;
        }
        usleep(50 * 1000);
    }
    test_fail(__FILE__, __LINE__, "no mail arrived in %s", dir);
    return NULL;
}

void ak_mail_code(const char *mail, const char *marker, char out[64])
{
    const char *p = strstr(mail, marker);
    CHECK(p != NULL);
    p += strlen(marker);
    size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    CHECK(n > 0 && n < 64);
    memcpy(out, p, n);
    out[n] = '\0';
}
