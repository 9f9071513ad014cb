/* A malformed-input test against the real (ASan) `trail run`: hundreds of generated malformed or
 * truncated requests, each on its own connection. Malformed requests must get a 4xx/5xx error
 * and a close; truncated ones (the client then shuts its side) must be closed, with at most an
 * error response; randomly mutated ones must get well-formed responses or a close. Afterwards
 * the server still answers and exits cleanly with no sanitizer report. */
#include "test.h"
#include "base/base.h"
#include "e2e/harness.h"

#include <sys/socket.h>
#include <sys/stat.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

typedef enum expect { EXPECT_ERROR, EXPECT_CLOSE_MAYBE_ERROR, EXPECT_ANY } expect;

typedef struct stats {
    int cases, errors, closed_silently, other;
} stats;

/* Checks that every status line in buf[0..n) is well-formed; returns the first status or 0. */
static int first_status(const char *buf, size_t n, bool *well_formed)
{
    *well_formed =
        n == 0 || (n >= 12 && memcmp(buf, "HTTP/1.1 ", 9) == 0 && buf[9] >= '1' && buf[9] <= '5');
    return n >= 12 ? atoi(buf + 9) : 0;
}

static void run_case(int port, const char *data, size_t len, expect e, stats *st, const char *what)
{
    th_conn c;
    CHECK_EQ(th_conn_open(&c, port), 0);
    th_conn_send(&c, data, len); /* may fail once the server has answered and closed */
    if (e != EXPECT_ERROR) shutdown(c.fd, SHUT_WR);
    /* Collect everything until the server closes. */
    tr_buf got = TR_BUF_INIT;
    int closed = 0;
    for (;;) {
        size_t before = c.len;
        (void)before;
        th_resp r;
        int rc = th_conn_read(&c, &r, false, 10000);
        if (rc == 0) {
            tr_buf_append(&got, r.head, strlen(r.head));
            th_resp_free(&r);
            continue;
        }
        th_resp_free(&r);
        if (rc == -1 || rc == -3) {
            /* closed (or garbage, which is checked below) */
            if (rc == -3) tr_buf_append_str(&got, "GARBAGE");
            closed = 1;
        }
        break;
    }
    if (!closed) test_fail(__FILE__, __LINE__, "%s: connection neither answered nor closed", what);
    bool wf;
    int status = first_status(got.data ? got.data : "", got.len, &wf);
    if (!wf) test_fail(__FILE__, __LINE__, "%s: malformed response: %.80s", what, got.data);
    st->cases++;
    if (status >= 400)
        st->errors++;
    else if (status == 0)
        st->closed_silently++;
    else
        st->other++;
    if (e == EXPECT_ERROR && status < 400)
        test_fail(__FILE__, __LINE__, "%s: want a 4xx/5xx, got status %d for %.60s", what, status,
                  data);
    if (e == EXPECT_CLOSE_MAYBE_ERROR && status != 0 && status < 400)
        test_fail(__FILE__, __LINE__, "%s: truncated request got status %d", what, status);
    tr_buf_free(&got);
    th_conn_close(&c);
}

static void run_str(int port, const char *s, expect e, stats *st, const char *what)
{
    run_case(port, s, strlen(s), e, st, what);
}

TEST_TIMEOUT(e2e_malformed_requests_never_crash, 120)
{
    th_server s;
    char *d = tr_asprintf("%s/depot", test_tmpdir());
    mkdir(d, 0755);
    char *cfgp = tr_asprintf("%s/config.textproto", d);
    const char *cfg = "server {\n  max_header_bytes: 8192\n  max_body_bytes: 4096\n}\n";
    CHECK_EQ(th_write_file(cfgp, cfg, strlen(cfg)), 0);
    const char *extra[] = {"--quiet", NULL};
    CHECK_EQ(th_server_start(&s, d, extra), 0);
    int port = s.port;
    stats st = {0};

    /* 1. Bad request lines. (llhttp accepts some oddities RFC 9112 allows a recipient to
     * accept: bare LF line ends, repeated spaces; those are in the mutation set instead.) */
#define S(lit)              \
    {                       \
        lit, sizeof lit - 1 \
    }
    static const struct {
        const char *s;
        size_t len;
    } lines[] = {
        S("GET\r\n\r\n"),
        S("GET /\r\n\r\n"),
        S("GET / HTTP/1.1 extra\r\n\r\n"),
        S(" GET / HTTP/1.1\r\n\r\n"),
        S("GET / HTTP/9.9\r\n\r\n"),
        S("GET / HTTX/1.1\r\n\r\n"),
        S("G@T / HTTP/1.1\r\n\r\n"),
        S("GET /\x01 HTTP/1.1\r\n\r\n"),
        S("get / HTTP/1.1\r\n\r\n"),
        S("GET / HTTP/1.\r\n\r\n"),
        S("GET / HTTP/\r\n\r\n"),
        S("GET / HTTP/1.1\rX\r\n\r\n"),
        S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
        S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        S("GET /\x7f HTTP/1.1\r\n\r\n"),
        S("GET / HTTP/1.1\r\r\n\r\n"),
        S("/ HTTP/1.1\r\n\r\n"),
        S("HTTP/1.1 200 OK\r\n\r\n"),
        S("GET / HTTP/1.1\x00\r\n\r\n"),
        S("GE\x00T / HTTP/1.1\r\n\r\n"),
        S("GET\t/\tHTTP/1.1\r\n\r\n"),
        S("GET / HTTP/01.1\r\n\r\n"),
        S("GET / HTTP/1.10\r\n\r\n"),
        S("\xff\xfe\xfd\r\n\r\n"),
        S("CONNECTX / HTTP/1.1\r\n\r\n"),
        S("GET / FTP/1.1\r\n\r\n"),
        S("GET / HTTP/1.1\r\n\x00\r\n\r\n"),
        S("GET /a\x00b HTTP/1.1\r\n\r\n"),
    };
#undef S
    for (size_t i = 0; i < TR_ARRAY_LEN(lines); i++) {
        char what[32];
        snprintf(what, sizeof what, "request line %zu", i);
        run_case(port, lines[i].s, lines[i].len, EXPECT_ERROR, &st, what);
    }

    /* 2. Bad header syntax. */
    static const char *const headers[] = {
        "Host : x",
        "\x7f: y",
        ": nameless",
        "X-A: a\rb",
        "No-Colon",
        "X A: b",
        "X-A:\x01",
        "X-A: \x7f",
        " Leading: space",
        "X-(A): b",
        "X-A\t: b",
        "X-A: b\r\n continued",
        "X-A: b\n",
        "Content-Length: -1",
        "Content-Length: 1 2",
        "Content-Length: 0x10",
        "Content-Length: 99999999999999999999999",
        "Content-Length: ",
        "Content-Length: +5",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Host: y",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(headers); i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "POST /api/healthcheck HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                 headers[i]);
        char what[32];
        snprintf(what, sizeof what, "header syntax %zu", i);
        run_str(port, raw, EXPECT_ERROR, &st, what);
    }

    /* 3. Content-Length / Transfer-Encoding conflicts and bad chunking. */
    static const char *const framing[] = {
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "Content-Length: 3, 4\r\n\r\nabcd",
        "Transfer-Encoding: gzip\r\n\r\n",
        "Transfer-Encoding: chunked, gzip\r\n\r\n",
        "Transfer-Encoding: identity\r\n\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n",
        "Content-Length: 5000\r\n\r\n",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(framing); i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "POST /api/healthcheck HTTP/1.1\r\nHost: x\r\n%s", framing[i]);
        char what[32];
        snprintf(what, sizeof what, "framing %zu", i);
        run_str(port, raw, EXPECT_ERROR, &st, what);
    }

    /* Bodies that never complete: the client gives up and closes; the server must close too. */
    static const char *const incomplete[] = {
        "Transfer-Encoding: chunked\r\n\r\n1000\r\n",
        "Content-Length: 10\r\n\r\nabc",
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(incomplete); i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "POST /api/healthcheck HTTP/1.1\r\nHost: x\r\n%s", incomplete[i]);
        run_str(port, raw, EXPECT_CLOSE_MAYBE_ERROR, &st, "incomplete body");
    }

    /* 4. Huge inputs: a long target, a huge header, thousands of headers. */
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_str(&b, "GET /");
    for (int i = 0; i < 100000; i++)
        tr_buf_append_char(&b, 'u');
    tr_buf_append_str(&b, " HTTP/1.1\r\n\r\n");
    run_case(port, b.data, b.len, EXPECT_ERROR, &st, "huge target");
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET / HTTP/1.1\r\nX-Huge: ");
    for (int i = 0; i < 200000; i++)
        tr_buf_append_char(&b, 'h');
    tr_buf_append_str(&b, "\r\n\r\n");
    run_case(port, b.data, b.len, EXPECT_ERROR, &st, "huge header");
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 5000; i++)
        tr_buf_append_str(&b, "X: y\r\n");
    tr_buf_append_str(&b, "\r\n");
    run_case(port, b.data, b.len, EXPECT_ERROR, &st, "many headers");
    tr_buf_reset(&b);
    tr_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 20000; i++)
        tr_buf_append_char(&b, 'n');
    tr_buf_append_str(&b, ": v\r\n\r\n");
    run_case(port, b.data, b.len, EXPECT_ERROR, &st, "huge header name");

    /* 5. NUL bytes at generated positions inside the head of a valid request. */
    static const char valid[] = "POST /api/healthcheck?x=1 HTTP/1.1\r\nHost: example\r\n"
                                "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    size_t head_len = strstr(valid, "\r\n\r\n") - valid;
    for (size_t pos = 0; pos < head_len; pos += 2) {
        if (valid[pos] == '\r' || valid[pos] == '\n') continue;
        char raw[sizeof valid];
        memcpy(raw, valid, sizeof valid);
        raw[pos] = '\0';
        run_case(port, raw, sizeof valid - 1, EXPECT_ERROR, &st, "NUL byte");
    }

    /* 6. Truncations of a chunked request at every byte; the client then closes its side. */
    static const char chunked[] = "POST /api/healthcheck HTTP/1.1\r\nHost: x\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc"
                                  "\r\n0\r\nT: 1\r\n\r\n";
    for (size_t cut = 1; cut < sizeof chunked - 1; cut++)
        run_case(port, chunked, cut, EXPECT_CLOSE_MAYBE_ERROR, &st, "truncated");

    /* 7. Random mutations of valid requests: flipped, inserted and deleted bytes. */
    for (int i = 0; i < 150; i++) {
        char raw[256];
        size_t len = sizeof valid - 1;
        memcpy(raw, valid, len);
        int edits = 1 + (int)(rnd() % 4);
        for (int k = 0; k < edits; k++) {
            size_t pos = rnd() % len;
            switch (rnd() % 3) {
            case 0:
                raw[pos] = (char)(rnd() & 0xff);
                break;
            case 1:
                if (len + 1 < sizeof raw) {
                    memmove(raw + pos + 1, raw + pos, len - pos);
                    raw[pos] = (char)(rnd() & 0xff);
                    len++;
                }
                break;
            default:
                memmove(raw + pos, raw + pos + 1, len - pos - 1);
                len--;
                break;
            }
        }
        run_case(port, raw, len, EXPECT_ANY, &st, "mutation");
    }
    tr_buf_free(&b);

    test_report("%d malformed/truncated cases: %d error responses, %d closed without response, "
                "%d other responses",
                st.cases, st.errors, st.closed_silently, st.other);
    CHECK(st.cases >= 300);
    /* Still serving, then a clean exit with no sanitizer report. */
    th_resp r;
    CHECK_EQ(th_request(port, "GET /api/healthcheck HTTP/1.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.status, 200);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
    char *err = th_server_stderr(&s);
    CHECK(strstr(err, "Sanitizer") == NULL);
    CHECK(strstr(err, "runtime error") == NULL);
    free(err);
    tr_free(cfgp);
    tr_free(d);
}
