/* Tests for guest/fetch.c: the allowed_hosts rules, which addresses count as private, and
 * __trailhost.fetch in one process: an isolate on a real loop fetching from an origin on 127.0.0.1,
 * its promise settled from the loop followed by the wake call, bad arguments rejected, and an
 * isolate freed while its transfers are in flight (nothing touched afterwards; ASan sees no leak),
 * redirects, and the budget for response bodies an isolate receives at once. */
#include "test.h"
#include "e2e/origin.h"
#include "guest/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

TEST(guest_fetch_allowed_hosts_rules)
{
    guest_fetch_opts c = {.enabled = true, .timeout_ms = 1000, .max_response_bytes = 1000};
    CHECK(guest_fetch_host_allowed(&c, "anything.test")); /* none listed: any host */
    char *list[] = {"api.example.com", "*.example.org", "127.0.0.1", "[::1]"};
    c.allowed_hosts = list;
    c.allowed_hosts_len = 4;
    CHECK(guest_fetch_host_allowed(&c, "api.example.com"));
    CHECK(guest_fetch_host_allowed(&c, "API.Example.COM"));
    CHECK(!guest_fetch_host_allowed(&c, "example.com"));
    CHECK(!guest_fetch_host_allowed(&c, "xapi.example.com"));
    CHECK(!guest_fetch_host_allowed(&c, "api.example.com.evil.test"));
    CHECK(guest_fetch_host_allowed(&c, "a.example.org"));
    CHECK(guest_fetch_host_allowed(&c, "a.b.example.org"));
    CHECK(!guest_fetch_host_allowed(&c, "example.org")); /* subdomains only */
    CHECK(!guest_fetch_host_allowed(&c, "badexample.org"));
    CHECK(guest_fetch_host_allowed(&c, "127.0.0.1"));
    CHECK(!guest_fetch_host_allowed(&c, "127.0.0.2"));
    CHECK(guest_fetch_host_allowed(&c, "[::1]"));
    CHECK(guest_fetch_host_allowed(&c, "::1"));
    char *star[] = {"*"};
    c.allowed_hosts = star;
    c.allowed_hosts_len = 1;
    CHECK(guest_fetch_host_allowed(&c, "whatever.test"));
}

static bool public_addr(const char *text)
{
    struct sockaddr_storage ss = {0};
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        CHECK_EQ(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        CHECK_EQ(inet_pton(AF_INET, text, &a->sin_addr), 1);
    }
    return guest_fetch_addr_public((const struct sockaddr *)&ss);
}

TEST(guest_fetch_private_addresses)
{
    static const char *const private[] = {
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "0.1.2.3",
        "10.1.2.3",
        "100.64.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "192.0.0.8",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2001:db8::1",
        "fec0::1",
    };
    static const char *const public[] = {
        "1.1.1.1",          "8.8.8.8",           "172.15.255.255",  "172.32.0.1",
        "100.63.255.255",   "93.184.216.34",     "2606:4700::1111", "::ffff:1.1.1.1",
        "64:ff9b::808:808", "2002:0808:0808::1",
    };
    for (size_t i = 0; i < sizeof private / sizeof private[0]; i++) {
        if (public_addr(private[i])) fprintf(stderr, "public: %s\n", private[i]);
        CHECK(!public_addr(private[i]));
    }
    for (size_t i = 0; i < sizeof public / sizeof public[0]; i++) {
        if (!public_addr(public[i])) fprintf(stderr, "not public: %s\n", public[i]);
        CHECK(public_addr(public[i]));
    }
}

/* The origin is on loopback, which fetch() reaches only when allowed by name. */
static char *loopback_names[] = {"127.0.0.1"};
static const guest_fetch_opts loopback_cfg = {
    .enabled = true,
    .timeout_ms = 30000,
    .max_response_bytes = 16u << 20,
    .allowed_private_hosts = loopback_names,
    .allowed_private_hosts_len = 1,
};

typedef struct fixture {
    loop *l;
    guest_env env;
    jsg_isolate *iso;
    guest *g;
    int wakes;
    loop_timer stop;
} fixture;

static void on_wake(void *owner)
{
    fixture *f = owner;
    f->wakes++;
    loop_stop(f->l);
}

static void on_stop(loop *l, loop_timer *t)
{
    (void)t;
    loop_stop(l);
}

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    CHECK_EQ(loop_new(&f->l), 0);
    guest_env_init(&f->env, f->l, NULL, NULL);
    f->env.fetch_opts = &loopback_cfg;
    tr_error err = {0};
    CHECK_EQ(jsg_isolate_new(NULL, &f->iso, &err), 0);
    CHECK_EQ(guest_new(f->iso, &f->env, on_wake, f, &f->g, &err), 0);
    loop_timer_init(&f->stop, on_stop);
}

static void teardown(fixture *f)
{
    guest_free(f->g);
    jsg_isolate_free(f->iso);
    guest_env_deinit(&f->env);
    loop_timer_stop(f->l, &f->stop);
    loop_free(f->l);
}

static void eval(fixture *f, const char *js)
{
    tr_error err = {0};
    int rc = jsg_eval(f->iso, js, strlen(js), "test.js", NULL, &err);
    if (rc < 0) fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ(rc, 0);
    CHECK_EQ(jsg_run_jobs(f->iso, &err), 0);
}

/* The value of expression js as a string, into out. */
static void value(fixture *f, const char *js, char *out, size_t cap)
{
    jsg_ref ref = 0;
    tr_error err = {0};
    CHECK_EQ(jsg_eval(f->iso, js, strlen(js), "test.js", &ref, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(f->iso, ref, &b, &err), 0);
    snprintf(out, cap, "%.*s", (int)b.len, b.data ? b.data : "");
    tr_buf_free(&b);
    jsg_ref_free(f->iso, ref);
}

/* Runs the loop until the guest's owner is woken or ms pass. */
static void run_until_wake(fixture *f, uint64_t ms)
{
    loop_timer_start(f->l, &f->stop, ms);
    loop_run(f->l);
    loop_timer_stop(f->l, &f->stop);
}

TEST(guest_fetch_settles_from_the_loop)
{
    th_origin_route routes[] = {{"/hi", 200, "text/plain", "hello", 5, 0}};
    const char *headers[] = {"X-Two: a\r\nX-Two: b\r\n"};
    th_origin o;
    CHECK_EQ(th_origin_start_ex(&o, routes, headers, 1), 0);
    fixture f;
    setup(&f);
    char js[512], got[1024];
    snprintf(js, sizeof js,
             "globalThis.out = 'pending';"
             "__trailhost.fetch('GET', 'http://127.0.0.1:%d/hi', [['x-a', '1']], null, 0)"
             ".then((r) => { out = JSON.stringify([r[0], r[1], r[2].filter((h) => "
             "h[0].startsWith('X-')), new TextDecoder().decode(r[3]), r[4]]); },"
             " (e) => { out = 'rejected: ' + e.message; });",
             o.port);
    eval(&f, js);
    value(&f, "out", got, sizeof got);
    CHECK_STR_EQ(got, "pending"); /* nothing happens until the loop runs */
    run_until_wake(&f, 5000);
    CHECK_EQ(f.wakes, 1);
    value(&f, "out", got, sizeof got);
    char want[512];
    snprintf(
        want, sizeof want,
        "[200,\"X\",[[\"X-Two\",\"a\"],[\"X-Two\",\"b\"]],\"hello\",\"http://127.0.0.1:%d/hi\"]",
        o.port);
    CHECK_STR_EQ(got, want);
    char seen[4096];
    th_origin_last_request(&o, seen, sizeof seen);
    CHECK_CONTAINS(seen, "GET /hi HTTP/1.1\r\n");
    CHECK_CONTAINS(seen, "\r\nx-a: 1\r\n");
    teardown(&f);
    th_origin_stop(&o);
}

TEST(guest_fetch_bad_arguments_reject)
{
    fixture f;
    setup(&f);
    static const char *const calls[][2] = {
        {"__trailhost.fetch('GET', 'ftp://127.0.0.1/x', [], null, 0)",
         "only http: and https: URLs are supported"},
        {"__trailhost.fetch('GET', 'not a url', [], null, 0)", "invalid URL"},
        {"__trailhost.fetch('G E T', 'http://127.0.0.1/', [], null, 0)",
         "the method must be an HTTP token"},
        {"__trailhost.fetch('GET', 'http://127.0.0.1/', [['a b', 'c']], null, 0)",
         "request header 1 is not a [name, value] pair"},
        {"__trailhost.fetch('GET', 'http://127.0.0.1/', [['a', 'c\\r\\nd: e']], null, 0)",
         "request header 1 is not a [name, value] pair"},
        {"__trailhost.fetch('POST', 'http://127.0.0.1/', [], 42, 0)",
         "the body must be a Uint8Array or null"},
        {"__trailhost.fetch()", "the method must be an HTTP token"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char js[512], got[512];
        snprintf(js, sizeof js,
                 "globalThis.out = 'pending'; %s.then(() => { out = 'resolved'; },"
                 " (e) => { out = e.constructor.name + ': ' + e.message; });",
                 calls[i][0]);
        eval(&f, js);
        value(&f, "out", got, sizeof got);
        CHECK_CONTAINS(got, "Error: ");
        CHECK_CONTAINS(got, calls[i][1]);
    }
    CHECK_EQ(f.wakes, 0);
    teardown(&f);
}

TEST(guest_fetch_isolate_freed_in_flight)
{
    th_origin_route routes[] = {{"/slow", 200, "text/plain", "late", 4, 3000}};
    th_origin o;
    CHECK_EQ(th_origin_start(&o, routes, 1), 0);
    fixture f;
    setup(&f);
    char js[512];
    snprintf(js, sizeof js,
             "for (let i = 0; i < 5; i++) __trailhost.fetch('POST', 'http://127.0.0.1:%d/slow', "
             "[], new Uint8Array([1, 2, 3]), 0).then(() => {}, () => {});",
             o.port);
    eval(&f, js);
    /* until the origin holds the first request */
    char seen[1024] = "";
    for (int i = 0; i < 300 && strstr(seen, "POST /slow") == NULL; i++) {
        run_until_wake(&f, 10);
        th_origin_last_request(&o, seen, sizeof seen);
    }
    CHECK_CONTAINS(seen, "POST /slow");
    CHECK_EQ(f.wakes, 0);
    /* the guest and isolate go; the loop and the worker's curl state stay and keep running */
    guest_free(f.g);
    f.g = NULL;
    jsg_isolate_free(f.iso);
    f.iso = NULL;
    run_until_wake(&f, 50);
    CHECK_EQ(f.wakes, 0);
    guest_env_deinit(&f.env);
    loop_free(f.l);
    th_origin_stop(&o);
}

/* Runs `__trailhost.fetch(args)` and the loop until it settles; out gets "status finalUrl" or
 * "rejected: message". */
static void fetch_once(fixture *f, const char *args, char *out, size_t cap)
{
    char js[1024];
    snprintf(js, sizeof js,
             "globalThis.out = 'pending'; __trailhost.fetch(%s).then((r) => { out = r[0] + ' ' + "
             "r[4]; }, (e) => { out = 'rejected: ' + e.message; });",
             args);
    int wakes = f->wakes;
    eval(f, js);
    run_until_wake(f, 5000);
    CHECK_EQ(f->wakes, wakes + 1);
    value(f, "out", out, cap);
}

TEST(guest_fetch_redirects_rewrite_the_request)
{
    th_origin_route b_routes[] = {{"/b", 200, "text/plain", "b", 1, 0}};
    th_origin b;
    CHECK_EQ(th_origin_start(&b, b_routes, 1), 0);
    static char cross[128];
    th_origin_route a_routes[] = {{"/see-other", 303, "text/plain", "", 0, 0},
                                  {"/temp", 307, "text/plain", "", 0, 0},
                                  {"/cross", 302, "text/plain", "", 0, 0},
                                  {"/end", 200, "text/plain", "end", 3, 0}};
    const char *a_headers[] = {"Location: /end\r\n", "Location: /end\r\n", cross, NULL};
    th_origin a;
    CHECK_EQ(th_origin_start_ex(&a, a_routes, a_headers, 4), 0);
    snprintf(cross, sizeof cross, "Location: http://127.0.0.1:%d/b\r\n", b.port);
    fixture f;
    setup(&f);
    char args[512], got[512], want[512], seen[4096];
    const char *hdrs = "[['authorization', 'Bearer s3cret'], ['content-type', 'text/plain']]";

    /* 303 after POST: GET without the body or its content type */
    snprintf(args, sizeof args,
             "'POST', 'http://127.0.0.1:%d/see-other', %s, new Uint8Array([65, 66]), 0", a.port,
             hdrs);
    fetch_once(&f, args, got, sizeof got);
    snprintf(want, sizeof want, "200 http://127.0.0.1:%d/end", a.port);
    CHECK_STR_EQ(got, want);
    th_origin_last_request(&a, seen, sizeof seen);
    CHECK_CONTAINS(seen, "GET /end HTTP/1.1\r\n");
    CHECK(strstr(seen, "content-type") == NULL);
    CHECK_CONTAINS(seen, "authorization: Bearer s3cret"); /* same origin: kept */
    CHECK(strstr(seen, "\r\n\r\nAB") == NULL);

    /* 307 keeps method and body */
    snprintf(args, sizeof args,
             "'POST', 'http://127.0.0.1:%d/temp', %s, new Uint8Array([65, 66]), 0", a.port, hdrs);
    fetch_once(&f, args, got, sizeof got);
    CHECK_STR_EQ(got, want);
    th_origin_last_request(&a, seen, sizeof seen);
    CHECK_CONTAINS(seen, "POST /end HTTP/1.1\r\n");
    CHECK_CONTAINS(seen, "content-type: text/plain");
    CHECK_CONTAINS(seen, "\r\n\r\nAB");

    /* to another origin: Authorization stays behind */
    snprintf(args, sizeof args, "'GET', 'http://127.0.0.1:%d/cross', %s, null, 0", a.port, hdrs);
    fetch_once(&f, args, got, sizeof got);
    snprintf(want, sizeof want, "200 http://127.0.0.1:%d/b", b.port);
    CHECK_STR_EQ(got, want);
    th_origin_last_request(&b, seen, sizeof seen);
    CHECK_CONTAINS(seen, "GET /b HTTP/1.1\r\n");
    CHECK(strstr(seen, "authorization") == NULL);

    /* HEAD: no body in the result */
    snprintf(args, sizeof args, "'HEAD', 'http://127.0.0.1:%d/end', [], null, 0", a.port);
    char js[1024];
    snprintf(js, sizeof js,
             "globalThis.out = 'pending'; __trailhost.fetch(%s).then((r) => { out = r[0] + ' ' + "
             "r[3]; });",
             args);
    eval(&f, js);
    run_until_wake(&f, 5000);
    value(&f, "out", got, sizeof got);
    CHECK_STR_EQ(got, "200 null");
    th_origin_last_request(&a, seen, sizeof seen);
    CHECK_CONTAINS(seen, "HEAD /end HTTP/1.1\r\n");

    teardown(&f);
    th_origin_stop(&a);
    th_origin_stop(&b);
}

TEST_TIMEOUT(guest_fetch_isolate_budget_for_bodies_in_flight, 30)
{
    /* each response: 800 bytes at once, the other 800 after 1.5 s */
    static char body[1600];
    memset(body, 'x', sizeof body);
    th_origin_route routes[] = {{"/half", 200, "text/plain", body, sizeof body, 1500}};
    th_origin o;
    CHECK_EQ(th_origin_start_split(&o, routes, 1), 0);
    fixture f;
    setup(&f);
    /* a budget of 4 x 2000 bytes: ten partial bodies fit, the eleventh does not */
    guest_fetch_opts c = {.enabled = true,
                   .timeout_ms = 10000,
                   .max_response_bytes = 2000,
                   .allowed_private_hosts = loopback_names,
                   .allowed_private_hosts_len = 1};
    f.env.fetch_opts = &c;
    char js[512], got[1024];
    snprintf(js, sizeof js,
             "globalThis.ok = 0; globalThis.failed = [];"
             "for (let i = 0; i < 11; i++) __trailhost.fetch('GET', 'http://127.0.0.1:%d/half', "
             "[], null, 0).then((r) => { if (r[3].length === 1600) ok++; },"
             " (e) => failed.push(e.message));",
             o.port);
    eval(&f, js);
    for (int i = 0; i < 100; i++) {
        value(&f, "String(ok + failed.length)", got, sizeof got);
        if (strcmp(got, "11") == 0) break;
        run_until_wake(&f, 100);
    }
    CHECK_STR_EQ(got, "11");
    value(&f, "String(failed.length >= 1 && ok >= 1 && ok + failed.length === 11)", got,
          sizeof got);
    CHECK_STR_EQ(got, "true");
    value(&f, "failed[0]", got, sizeof got);
    CHECK_STR_EQ(got, "the responses this isolate is receiving hold more than 8000 bytes (4 x "
                      "fetch.max_response_bytes)");
    teardown(&f);
    th_origin_stop(&o);
}
