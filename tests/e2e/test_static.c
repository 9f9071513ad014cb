/* End-to-end tests for static files from `trail run --public-dir`: MIME types, index.html for
 * directories, ETag revalidation, HEAD, and every way out of the public directory refused. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = tr_asprintf("%s/%s", dir, rel);
    CHECK_EQ(th_write_file(p, text, strlen(text)), 0);
    tr_free(p);
}

static char *make_public(void)
{
    const char *tmp = test_tmpdir();
    char *pub = tr_asprintf("%s/public", tmp);
    CHECK_EQ(mkdir(pub, 0755), 0);
    char *sub = tr_asprintf("%s/sub", pub);
    CHECK_EQ(mkdir(sub, 0755), 0);
    char *empty = tr_asprintf("%s/empty", pub);
    CHECK_EQ(mkdir(empty, 0755), 0);
    char *outside = tr_asprintf("%s/publicity", tmp);
    CHECK_EQ(mkdir(outside, 0755), 0);
    put(pub, "index.html", "<h1>home</h1>");
    put(pub, "style.css", "body{}");
    put(pub, "app.js", "console.log(1)");
    put(pub, "data.json", "{\"a\":1}");
    put(pub, "with space.txt", "spaced");
    put(pub, "sub/index.html", "<p>sub</p>");
    put(pub, "sub/page.txt", "page");
    put(tmp, "secret.txt", "SECRET");
    put(tmp, "publicity/x.txt", "SECRET2");
    char *l1 = tr_asprintf("%s/out.txt", pub);
    CHECK_EQ(symlink("../secret.txt", l1), 0);
    char *l2 = tr_asprintf("%s/etc", pub);
    CHECK_EQ(symlink("/etc", l2), 0);
    char *l3 = tr_asprintf("%s/alias.css", pub);
    CHECK_EQ(symlink("style.css", l3), 0);
    char *l4 = tr_asprintf("%s/sub/up", pub);
    CHECK_EQ(symlink("..", l4), 0);
    char *l5 = tr_asprintf("%s/abs.txt", pub);
    char *target = tr_asprintf("%s/secret.txt", tmp);
    CHECK_EQ(symlink(target, l5), 0);
    tr_free(sub);
    tr_free(empty);
    tr_free(outside);
    tr_free(l1);
    tr_free(l2);
    tr_free(l3);
    tr_free(l4);
    tr_free(l5);
    tr_free(target);
    return pub;
}

static void get(int port, const char *path, int status, const char *type, const char *body)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    th_resp r;
    int rc = th_request(port, raw, &r);
    if (rc != 0) test_fail(__FILE__, __LINE__, "GET %s: no response (%d)", path, rc);
    if (r.status != status)
        test_fail(__FILE__, __LINE__, "GET %s: status %d, want %d (body %s)", path, r.status,
                  status, r.body);
    char v[128];
    if (type) CHECK_STR_EQ(th_resp_header(&r, "Content-Type", v, sizeof v), type);
    if (body) CHECK_STR_EQ(r.body, body);
    if (status == 404) CHECK_STR_EQ(r.body, "{\"error\":\"not found\"}");
    CHECK(strstr(r.body, "SECRET") == NULL);
    th_resp_free(&r);
}

TEST_TIMEOUT(e2e_static_files_types_index_etag_head, 60)
{
    char *pub = make_public();
    th_server s;
    const char *extra[] = {"--public-dir", pub, NULL};
    CHECK_EQ(th_server_start(&s, NULL, extra), 0);
    int p = s.port;
    get(p, "/", 200, "text/html; charset=utf-8", "<h1>home</h1>");
    get(p, "/index.html", 200, "text/html; charset=utf-8", "<h1>home</h1>");
    get(p, "/style.css", 200, "text/css; charset=utf-8", "body{}");
    get(p, "/app.js", 200, "text/javascript; charset=utf-8", "console.log(1)");
    get(p, "/data.json", 200, "application/json", "{\"a\":1}");
    get(p, "/with%20space.txt", 200, "text/plain; charset=utf-8", "spaced");
    get(p, "/sub", 200, "text/html; charset=utf-8", "<p>sub</p>");
    get(p, "/sub/", 200, "text/html; charset=utf-8", "<p>sub</p>");
    get(p, "/sub/page.txt?v=2", 200, "text/plain; charset=utf-8", "page");
    get(p, "/alias.css", 200, "text/css; charset=utf-8", "body{}");
    get(p, "/sub/up/style.css", 200, "text/css; charset=utf-8", "body{}");
    get(p, "/empty/", 404, NULL, NULL);
    get(p, "/missing.txt", 404, NULL, NULL);
    /* Built-in routes still win over files. */
    get(p, "/api/healthcheck", 200, NULL, "Ok");

    /* ETag revalidation. */
    th_resp r;
    CHECK_EQ(th_request(p, "GET /style.css HTTP/1.1\r\n\r\n", &r), 0);
    char etag[128];
    CHECK(th_resp_header(&r, "ETag", etag, sizeof etag) != NULL);
    CHECK_EQ(etag[0], '"');
    th_resp_free(&r);
    char raw[512];
    snprintf(raw, sizeof raw, "GET /style.css HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", etag);
    CHECK_EQ(th_request(p, raw, &r), 0);
    CHECK_EQ(r.status, 304);
    CHECK_EQ(r.body_len, 0);
    char v[128];
    CHECK_STR_EQ(th_resp_header(&r, "ETag", v, sizeof v), etag);
    th_resp_free(&r);
    snprintf(raw, sizeof raw, "GET /style.css HTTP/1.1\r\nIf-None-Match: \"x\", W/%s\r\n\r\n",
             etag);
    CHECK_EQ(th_request(p, raw, &r), 0);
    CHECK_EQ(r.status, 304);
    th_resp_free(&r);
    CHECK_EQ(th_request(p, "GET /style.css HTTP/1.1\r\nIf-None-Match: \"other\"\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "body{}");
    th_resp_free(&r);
    /* A changed file gets a new ETag. */
    usleep(20000);
    put(pub, "style.css", "body{color:red}");
    CHECK_EQ(th_request(p, raw, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(th_resp_header(&r, "ETag", v, sizeof v), etag) != 0);
    th_resp_free(&r);
    /* HEAD: Content-Length of the file, no body. */
    CHECK_EQ(th_request(p, "HEAD /index.html HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(th_resp_header(&r, "Content-Length", v, sizeof v), "13");
    CHECK_EQ(r.body_len, 0);
    th_resp_free(&r);
    /* Other methods on files: no route, so 404 (files are only GET/HEAD). */
    CHECK_EQ(th_request(p, "POST /index.html HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 404);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    tr_free(pub);
}

TEST_TIMEOUT(e2e_static_traversal_refused, 60)
{
    char *pub = make_public();
    th_server s;
    const char *extra[] = {"--public-dir", pub, NULL};
    CHECK_EQ(th_server_start(&s, NULL, extra), 0);
    static const char *const attempts[] = {
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/../publicity/x.txt",
        "/%2e%2e/publicity/x.txt",
        "/out.txt",
        "/abs.txt",
        "/etc/passwd",
        "/etc/hostname",
        "/sub/up/../secret.txt",
        "/sub/up/up/../secret.txt",
        "//etc/passwd",
        "/%00",
        "/index.html%00.txt",
        "/%",
        "/%zz",
        "/%2",
        "/./index.html",
        "/sub/./page.txt",
        "/%2e/index.html",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(attempts); i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\n\r\n", attempts[i]);
        th_resp r;
        int rc = th_request(s.port, raw, &r);
        /* A target llhttp itself rejects is a 400; anything else must be our 404. */
        if (rc != 0) test_fail(__FILE__, __LINE__, "%s: no response (%d)", attempts[i], rc);
        if (r.status != 404 && r.status != 400)
            test_fail(__FILE__, __LINE__, "%s: status %d body %s", attempts[i], r.status, r.body);
        CHECK(strstr(r.body, "SECRET") == NULL);
        CHECK(strstr(r.body, "root:") == NULL);
        th_resp_free(&r);
    }
    test_report("%zu traversal attempts refused", TR_ARRAY_LEN(attempts));
    CHECK_EQ(th_server_stop(&s), 0);
    tr_free(pub);
}

TEST_TIMEOUT(e2e_static_large_file_with_sendfile_keeps_pipeline_order, 60)
{
    char *pub = make_public();
    /* 8 MiB: more than the socket buffers hold, so sendfile must resume on EPOLLOUT. */
    size_t size = 8u << 20;
    char *big = malloc(size);
    for (size_t i = 0; i < size; i++) big[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    char *path = tr_asprintf("%s/big.bin", pub);
    CHECK_EQ(th_write_file(path, big, size), 0);
    th_server s;
    const char *extra[] = {"--public-dir", pub, "--quiet", NULL};
    CHECK_EQ(th_server_start(&s, NULL, extra), 0);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /big.bin HTTP/1.1\r\n\r\n"
                                  "HEAD /big.bin HTTP/1.1\r\n\r\n"
                                  "GET /api/healthcheck HTTP/1.1\r\n\r\n"
                                  "GET /big.bin HTTP/1.1\r\n\r\n"),
             0);
    usleep(200000); /* let the server fill the socket buffers and wait for us */
    th_resp r;
    char v[64];
    CHECK_EQ(th_conn_read(&c, &r, false, 20000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(th_resp_header(&r, "Content-Type", v, sizeof v), "application/octet-stream");
    CHECK_EQ(r.body_len, size);
    CHECK(memcmp(r.body, big, size) == 0);
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, true, 20000), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(th_resp_header(&r, "Content-Length", v, sizeof v), "8388608");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 20000), 0);
    CHECK_STR_EQ(r.body, "Ok");
    th_resp_free(&r);
    CHECK_EQ(th_conn_read(&c, &r, false, 20000), 0);
    CHECK_EQ(r.body_len, size);
    CHECK(memcmp(r.body, big, size) == 0);
    th_resp_free(&r);
    th_conn_close(&c);
    /* A client that goes away in the middle of a large file does not disturb the server. */
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /big.bin HTTP/1.1\r\n\r\n"), 0);
    usleep(100000);
    th_conn_close(&c);
    CHECK_EQ(th_request(s.port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    char *err = th_server_stderr(&s);
    CHECK(strstr(err, "Sanitizer") == NULL);
    free(err);
    free(big);
    tr_free(path);
    tr_free(pub);
}

TEST_TIMEOUT(e2e_static_slow_reader_is_not_idle, 60)
{
    char *pub = make_public();
    size_t size = 16u << 20;
    char *big = malloc(size);
    for (size_t i = 0; i < size; i++) big[i] = (char)(i % 251);
    char *path = tr_asprintf("%s/big.bin", pub);
    CHECK_EQ(th_write_file(path, big, size), 0);
    char *d = tr_asprintf("%s/depot", test_tmpdir());
    CHECK_EQ(mkdir(d, 0755), 0);
    char *cfgp = tr_asprintf("%s/config.textproto", d);
    const char *cfg = "server {\n  idle_timeout_ms: 1000\n}\n";
    CHECK_EQ(th_write_file(cfgp, cfg, strlen(cfg)), 0);
    th_server s;
    const char *extra[] = {"--public-dir", pub, "--quiet", NULL};
    CHECK_EQ(th_server_start(&s, d, extra), 0);
    th_conn c;
    CHECK_EQ(th_conn_open(&c, s.port), 0);
    CHECK_EQ(th_conn_send_str(&c, "GET /big.bin HTTP/1.1\r\n\r\n"), 0);
    /* Pause 150 ms after every MiB: about 2.4 s in all, well over the 1 s idle timeout, while
     * the server's writes never stall for that long. */
    size_t got = 0, next_pause = 1u << 20;
    char *buf = malloc(256 << 10);
    for (;;) {
        ssize_t n = recv(c.fd, buf, 256 << 10, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got >= size) break;
        if (got >= next_pause) {
            usleep(150000);
            next_pause += 1u << 20;
        }
    }
    test_report("slow reader received %zu bytes (body %zu)", got, size);
    CHECK(got > size);
    free(buf);
    th_conn_close(&c);
    CHECK_EQ(th_server_stop(&s), 0);
    free(big);
    tr_free(path);
    tr_free(cfgp);
    tr_free(d);
    tr_free(pub);
}
