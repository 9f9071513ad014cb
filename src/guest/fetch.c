/* guest/fetch.c: `__trailhost.fetch`: outgoing HTTP through libcurl's multi interface on the
 * worker's loop.
 *
 * DESIGN: curl tells us which sockets to watch (on_curl_socket) and when to call it back
 * (on_curl_timer); the loop reports readiness (on_sock_io, on_timer), we hand it to
 * curl_multi_socket_action() and then collect finished transfers (process_done). JavaScript
 * runs only there, never inside a curl callback, so a promise reaction may start new fetches
 * (curl_multi_add_handle) and the owner's wake function may free a guest, which removes that
 * guest's other transfers (and their queued completion messages) from the multi handle.
 *
 * Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION stays off): each target is
 * checked against the scheme and host policy like the first URL, the method and body change as
 * the Fetch standard says (303, and 301/302 after POST, become a GET without body), and
 * Authorization is dropped when the origin changes. The transfer's CURLU handle always holds
 * the current URL, so it is what the guest gets back as the final URL. */
#include "guest/fetch.h"

#include <assert.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#define DAY_MS (24u * 3600 * 1000)

static const cfg_fetch default_cfg = {
    .enabled = true,
    .timeout_ms = 30000,
    .max_response_bytes = 16u << 20,
};

typedef struct fetch_sock {
    loop_io io; /* first: the loop hands us &io */
    guest_fetch *f;
    struct fetch_sock *prev, *next;
} fetch_sock;

struct guest_fetch {
    loop *loop;
    const cfg_fetch *cfg;
    CURLM *multi;
    loop_timer timer;
    fetch_sock *socks; /* every socket curl asked us to watch */
    size_t nxfers;     /* in flight, all isolates */
};

struct guest_fetch_xfer {
    guest_fetch_xfer *prev, *next; /* in set */
    guest_fetch *f;
    guest_fetch_set *set;
    jsg_isolate *iso;
    guest_wake_fn wake;
    void *owner;
    jsg_deferred d; /* d.promise was handed to the guest; resolve/reject are ours */
    guest_fetch_done_fn done; /* instead of iso and d: a host that is not an isolate */
    void *done_ud;
    CURL *easy;
    CURLU *url; /* the current URL (after redirects) */
    char *host; /* of url, for messages */
    char *method;
    unsigned char *body; /* request body; NULL when none */
    size_t body_len;
    char **headers; /* "name: value" lines as the guest gave them, minus forbidden names */
    size_t nheaders;
    struct curl_slist *slist;
    uint32_t timeout_ms;
    uint64_t start_ns;
    unsigned redirects;
    bool in_multi;
    /* the response being received */
    char status_text[128];
    tr_buf resp_headers; /* name NUL value NUL, ... */
    size_t resp_nheaders;
    size_t resp_header_bytes;
    tr_buf resp_body;
    bool body_too_big, headers_too_big, isolate_too_big;
    char refused_addr[64]; /* a non-public address open_socket() refused to connect to */
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- policy ---- */

/* Whether host matches an entry of list (exact, "*", or "*.suffix"), case-insensitively. */
static bool host_listed(char *const *list, size_t n, const char *host)
{
    size_t hlen = strlen(host);
    /* "[::1]" in a URL is "::1" in the list, or the other way round. */
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') host++, hlen -= 2;
    for (size_t i = 0; i < n; i++) {
        const char *a = list[i];
        size_t alen = strlen(a);
        if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') a++, alen -= 2;
        if (alen == 1 && a[0] == '*') return true;
        if (alen > 2 && a[0] == '*' && a[1] == '.') {
            /* "*.example.org": a subdomain, so at least one more label in front */
            size_t slen = alen - 1; /* ".example.org" */
            if (hlen > slen && strncasecmp(host + hlen - slen, a + 1, slen) == 0) return true;
            continue;
        }
        if (alen == hlen && strncasecmp(host, a, hlen) == 0) return true;
    }
    return false;
}

bool guest_fetch_host_allowed(const cfg_fetch *conf, const char *host)
{
    if (conf->allowed_hosts_len == 0) return true;
    return host_listed(conf->allowed_hosts, conf->allowed_hosts_len, host);
}

/* a.b.c.d as a host-order number: whether it is an address anyone on the Internet could have. */
static bool ipv4_public(uint32_t a)
{
    static const struct {
        uint32_t net;
        int bits;
    } blocked[] = {
        {0x00000000, 8},  /* 0/8: "this network", 0.0.0.0 reaches this host */
        {0x0a000000, 8},  /* 10/8 private */
        {0x64400000, 10}, /* 100.64/10 carrier-grade NAT */
        {0x7f000000, 8},  /* 127/8 loopback */
        {0xa9fe0000, 16}, /* 169.254/16 link-local (cloud metadata services) */
        {0xac100000, 12}, /* 172.16/12 private */
        {0xc0000000, 24}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 24}, /* 192.0.2/24 documentation */
        {0xc0a80000, 16}, /* 192.168/16 private */
        {0xc6120000, 15}, /* 198.18/15 benchmarking */
        {0xc6336400, 24}, /* 198.51.100/24 documentation */
        {0xcb007100, 24}, /* 203.0.113/24 documentation */
        {0xe0000000, 4},  /* 224/4 multicast */
        {0xf0000000, 4},  /* 240/4 reserved, and 255.255.255.255 */
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(blocked); i++) {
        uint32_t mask = ~(uint32_t)0 << (32 - blocked[i].bits);
        if ((a & mask) == blocked[i].net) return false;
    }
    return true;
}

static uint32_t be32_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool guest_fetch_addr_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ipv4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6) return false;
    const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    /* IPv4 inside IPv6: ::ffff:a.b.c.d (mapped), 64:ff9b::a.b.c.d (NAT64), 2002:abcd:... (6to4)
     * reach the IPv4 address, so they are judged by it. ::a.b.c.d (deprecated), :: and ::1 are
     * not public. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return ipv4_public(be32_at(b + 12));
    if (memcmp(b, zero, 12) == 0) return false;
    if (b[0] == 0x20 && b[1] == 0x02) return ipv4_public(be32_at(b + 2));
    if ((b[0] & 0xfe) == 0xfc) return false;                 /* fc00::/7 unique local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false; /* fe80::/10 link-local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false; /* fec0::/10 site-local */
    if (b[0] == 0xff) return false;                          /* ff00::/8 multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false; /* doc */
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return false; /* local NAT64 */
    if (b[0] == 0x01 && b[1] == 0 && b[2] == 0 && b[3] == 0) return false; /* 100::/64 discard */
    return true;
}

/* curl calls this for every connection it opens, with the address it is about to connect to:
 * after DNS, for each address it tries, for every redirect's target. A host name that resolves
 * to a private address (or is one, in any notation curl understands: 2130706433, 0x7f.1,
 * [::ffff:127.0.0.1]) is refused here unless allowed by name; a refused connection is never
 * made, so not even a SYN reaches the address. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    guest_fetch_xfer *x = ud;
    const cfg_fetch *conf = x->f->cfg;
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    if (!guest_fetch_addr_public(&addr->addr) &&
        !host_listed(conf->allowed_private_hosts, conf->allowed_private_hosts_len,
                     x->host ? x->host : "")) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (addr->family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)&addr->addr)->sin_addr, ip, sizeof ip);
        else if (addr->family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&addr->addr)->sin6_addr, ip,
                      sizeof ip);
        snprintf(x->refused_addr, sizeof x->refused_addr, "%s", ip);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return false;
    }
    return true;
}

static bool name_eq(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* Request headers curl or the transport owns (framing, hop-by-hop, Host). */
static bool header_forbidden(const char *s, size_t n)
{
    static const char *const names[] = {"host",       "content-length", "transfer-encoding",
                                        "connection", "keep-alive",     "te",
                                        "trailer",    "upgrade",        "expect"};
    for (size_t i = 0; i < TR_ARRAY_LEN(names); i++)
        if (name_eq(s, n, names[i])) return true;
    return false;
}

static bool line_has_name(const char *line, const char *name)
{
    size_t n = strcspn(line, ":");
    return name_eq(line, n, name);
}

/* ---- transfers ---- */

/* Forgets the response body received so far (and its share of the isolate's budget). */
static void drop_body(guest_fetch_xfer *x)
{
    x->set->buffered -= x->resp_body.len;
    tr_buf_reset(&x->resp_body);
}

static void xfer_free(guest_fetch_xfer *x)
{
    drop_body(x);
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_url_cleanup(x->url);
    curl_slist_free_all(x->slist);
    for (size_t i = 0; i < x->nheaders; i++)
        tr_free(x->headers[i]);
    tr_free(x->headers);
    tr_free(x->host);
    tr_free(x->method);
    tr_free(x->body);
    tr_buf_free(&x->resp_headers);
    tr_buf_free(&x->resp_body);
    tr_free(x);
}

static void set_link(guest_fetch_set *set, guest_fetch_xfer *x)
{
    x->prev = NULL;
    x->next = set->head;
    if (set->head) set->head->prev = x;
    set->head = x;
    set->n++;
}

static void set_unlink(guest_fetch_set *set, guest_fetch_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        set->head = x->next;
    if (x->next) x->next->prev = x->prev;
    set->n--;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    guest_fetch_xfer *x = ud;
    size_t len = size * n;
    uint64_t max = x->f->cfg->max_response_bytes;
    if (x->resp_body.len + len > max) {
        x->body_too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (x->set->buffered + len > GUEST_FETCH_BUFFER_FACTOR * max) {
        x->isolate_too_big = true;
        return 0;
    }
    tr_buf_append(&x->resp_body, p, len);
    x->set->buffered += len;
    return len;
}

/* Appends s[0..n) as UTF-8, each byte as the code point of the same value (header bytes are
 * Latin-1 to the Fetch standard), so the isolate always gets valid UTF-8. */
static void append_latin1(tr_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            tr_buf_append_char(b, (char)c);
        } else {
            tr_buf_append_char(b, (char)(0xC0 | c >> 6));
            tr_buf_append_char(b, (char)(0x80 | (c & 0x3F)));
        }
    }
    tr_buf_append_char(b, '\0');
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    guest_fetch_xfer *x = ud;
    size_t len = size * n, l = len;
    while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n'))
        l--;
    if (l >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx, or a proxy's): its headers replace what came before. */
        tr_buf_reset(&x->resp_headers);
        x->resp_nheaders = 0;
        x->resp_header_bytes = len;
        /* "HTTP/1.1 404 Not Found": the reason phrase, printable ASCII only */
        size_t i = 0; /* p is not NUL-terminated */
        while (i < l && p[i] != ' ')
            i++;
        while (i < l && p[i] == ' ')
            i++;
        while (i < l && p[i] != ' ')
            i++;
        if (i < l) i++;
        size_t o = 0;
        for (; i < l && o + 1 < sizeof x->status_text; i++)
            if (p[i] >= 0x20 && p[i] < 0x7F) x->status_text[o++] = p[i];
        x->status_text[o] = '\0';
        return len;
    }
    x->resp_header_bytes += len;
    if (x->resp_header_bytes > GUEST_FETCH_MAX_HEADER_BYTES) {
        x->headers_too_big = true;
        return 0;
    }
    if (l == 0 || p[0] == ' ' || p[0] == '\t') return len; /* the end, or obsolete folding */
    const char *colon = memchr(p, ':', l);
    if (colon == NULL || !is_token(p, (size_t)(colon - p))) return len;
    const char *v = colon + 1, *end = p + l;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (memchr(v, '\0', (size_t)(end - v)) || memchr(v, '\r', (size_t)(end - v))) return len;
    append_latin1(&x->resp_headers, p, (size_t)(colon - p));
    append_latin1(&x->resp_headers, v, (size_t)(end - v));
    x->resp_nheaders++;
    return len;
}

/* Builds the header list: the guest's lines, minus the body's headers once the body was
 * dropped by a redirect. */
static void build_slist(guest_fetch_xfer *x)
{
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    bool has_ct = false, has_ae = false;
    for (size_t i = 0; i < x->nheaders; i++) {
        const char *line = x->headers[i];
        if (x->body == NULL &&
            (line_has_name(line, "content-type") || line_has_name(line, "content-encoding") ||
             line_has_name(line, "content-language") || line_has_name(line, "content-location")))
            continue;
        if (line_has_name(line, "content-type")) has_ct = true;
        if (line_has_name(line, "accept-encoding")) has_ae = true;
        x->slist = curl_slist_append(x->slist, line);
    }
    /* No 100-continue round trip for large bodies, and no form content type curl would add. */
    x->slist = curl_slist_append(x->slist, "Expect:");
    if (!has_ct) x->slist = curl_slist_append(x->slist, "Content-Type:");
    curl_easy_setopt(x->easy, CURLOPT_ACCEPT_ENCODING, has_ae ? NULL : "");
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->slist);
}

/* Sets every option of the next request of x (the first, or a redirect's). */
static void configure(guest_fetch_xfer *x, uint32_t timeout_ms)
{
    CURL *e = x->easy;
    curl_easy_reset(e);
    x->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_CURLU, x->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore http_proxy and friends */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "trail");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->f->cfg->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    build_slist(x);
    if (strcmp(x->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (x->body != NULL || strcmp(x->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? (char *)x->body : "");
        if (strcmp(x->method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
    } else if (strcmp(x->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
    }
    tr_buf_reset(&x->resp_headers);
    drop_body(x);
    x->resp_nheaders = 0;
    x->resp_header_bytes = 0;
    x->status_text[0] = '\0';
    x->body_too_big = x->headers_too_big = x->isolate_too_big = false;
    x->refused_addr[0] = '\0';
}

/* Checks the scheme and host of x->url and records the host. Returns 0 or TR_EINVAL with why. */
static int check_url(guest_fetch_xfer *x, const cfg_fetch *conf, tr_error *why)
{
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (curl_url_get(x->url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = tr_error_set(why, TR_EINVAL, "only http: and https: URLs are supported");
    } else if (curl_url_get(x->url, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = tr_error_set(why, TR_EINVAL, "the URL has no host");
    } else if (!guest_fetch_host_allowed(conf, host)) {
        rc = tr_error_set(why, TR_EINVAL,
                          "host %.200s is not in fetch.allowed_hosts (config.textproto)", host);
    } else {
        tr_free(x->host);
        x->host = tr_strdup(host);
    }
    curl_free(scheme);
    curl_free(host);
    return rc;
}

/* "scheme://host:port" of x->url, for the cross-origin check; free with tr_free(). */
static char *origin_of(guest_fetch_xfer *x)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    curl_url_get(x->url, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(x->url, CURLUPART_HOST, &host, 0);
    curl_url_get(x->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    char *o = tr_asprintf("%s://%s:%s", scheme ? scheme : "", host ? host : "", port ? port : "");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return o;
}

static uint32_t remaining_ms(const guest_fetch_xfer *x)
{
    uint64_t spent = (tr_now_ns() - x->start_ns) / 1000000u;
    return spent >= x->timeout_ms ? 0 : x->timeout_ms - (uint32_t)spent;
}

/* For a redirect response, points x at its target and restarts it: returns 1. Returns 0 when
 * the response is to be delivered as it is, or TR_EINVAL with why when the redirect is refused. */
static int follow_redirect(guest_fetch_xfer *x, long status, tr_error *why)
{
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308) return 0;
    char *target = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &target) != CURLE_OK || target == NULL)
        return 0;
    if (x->redirects >= GUEST_FETCH_MAX_REDIRECTS)
        return tr_error_set(why, TR_EINVAL, "too many redirects (more than %d)",
                            GUEST_FETCH_MAX_REDIRECTS);
    char *before = origin_of(x);
    /* target is absolute (curl resolved it against the request's URL) */
    if (curl_url_set(x->url, CURLUPART_URL, target, 0) != CURLUE_OK) {
        tr_free(before);
        return tr_error_set(why, TR_EINVAL, "invalid redirect target");
    }
    tr_error refusal = {0};
    int rc = check_url(x, x->f->cfg, &refusal);
    if (rc < 0) {
        tr_free(before);
        return tr_error_set(why, rc, "redirect refused: %s", refusal.msg);
    }
    char *after = origin_of(x);
    bool cross = strcmp(before, after) != 0;
    tr_free(before);
    tr_free(after);
    uint32_t left = remaining_ms(x);
    if (left == 0)
        return tr_error_set(why, TR_ETIMEDOUT, "the request to %s timed out after %u ms", x->host,
                            x->timeout_ms);
    if ((status == 303 && strcmp(x->method, "HEAD") != 0) ||
        ((status == 301 || status == 302) && strcmp(x->method, "POST") == 0)) {
        tr_free(x->method);
        x->method = tr_strdup("GET");
        tr_free(x->body);
        x->body = NULL;
        x->body_len = 0;
    }
    x->redirects++;
    if (cross) {
        /* Credentials stay with the origin they were meant for. */
        size_t k = 0;
        for (size_t i = 0; i < x->nheaders; i++) {
            if (line_has_name(x->headers[i], "authorization"))
                tr_free(x->headers[i]);
            else
                x->headers[k++] = x->headers[i];
        }
        x->nheaders = k;
    }
    curl_multi_remove_handle(x->f->multi, x->easy);
    configure(x, left);
    if (curl_multi_add_handle(x->f->multi, x->easy) != CURLM_OK) {
        x->in_multi = false;
        return tr_error_set(why, TR_EIO, "cannot start the request");
    }
    return 1;
}

/* The guest's value for a finished response, [status, statusText, headers, body, finalUrl], in
 * a (url: curl's copy, to curl_free() after). */
static jsg_val response_val(guest_fetch_xfer *x, long status, tr_arena *a, char **url)
{
    jsg_val *pairs =
        tr_arena_alloc(a, (x->resp_nheaders ? x->resp_nheaders : 1) * 2 * sizeof *pairs);
    jsg_val *items = tr_arena_alloc(a, (x->resp_nheaders ? x->resp_nheaders : 1) * sizeof *items);
    const char *p = x->resp_headers.data;
    for (size_t i = 0; i < x->resp_nheaders; i++) {
        size_t nl = strlen(p);
        pairs[2 * i] = jsg_string(p, nl);
        p += nl + 1;
        size_t vl = strlen(p);
        pairs[2 * i + 1] = jsg_string(p, vl);
        p += vl + 1;
        items[i] = jsg_array(&pairs[2 * i], 2);
    }
    *url = NULL;
    curl_url_get(x->url, CURLUPART_URL, url, 0);
    bool no_body = strcmp(x->method, "HEAD") == 0 || status == 204 || status == 304;
    jsg_val *parts = tr_arena_alloc(a, 5 * sizeof *parts);
    parts[0] = jsg_number((double)status);
    parts[1] = jsg_string(x->status_text, strlen(x->status_text));
    parts[2] = jsg_array(items, x->resp_nheaders);
    parts[3] = no_body ? jsg_null()
                       : jsg_bytes(x->resp_body.data ? x->resp_body.data : "", x->resp_body.len);
    parts[4] = jsg_string(*url ? *url : "", *url ? strlen(*url) : 0);
    return jsg_array(parts, 5);
}

static int response_value(guest_fetch_xfer *x, long status, jsg_ref *out, tr_error *err)
{
    tr_arena a;
    tr_arena_init(&a, 4096);
    char *url = NULL;
    jsg_val v = response_val(x, status, &a, &url);
    int rc = jsg_from_val(x->iso, &v, out, err);
    curl_free(url);
    tr_arena_deinit(&a);
    return rc;
}

/* What a failed transfer's rejection says. */
static void failure_message(guest_fetch_xfer *x, CURLcode res, tr_error *why)
{
    if (x->refused_addr[0] && res != CURLE_OK && res != CURLE_OPERATION_TIMEDOUT)
        tr_error_set(why, TR_EINVAL,
                     "host %s is (or resolves to) %s, a loopback, private or otherwise non-public "
                     "address, which fetch() may reach only for hosts in "
                     "fetch.allowed_private_hosts (config.textproto)",
                     x->host, x->refused_addr);
    else if (res == CURLE_OPERATION_TIMEDOUT)
        tr_error_set(why, TR_ETIMEDOUT, "the request to %s timed out after %u ms", x->host,
                     x->timeout_ms);
    else if (x->body_too_big || res == CURLE_FILESIZE_EXCEEDED)
        tr_error_set(why, TR_ELIMIT,
                     "the response from %s is larger than %llu bytes (fetch.max_response_bytes)",
                     x->host, (unsigned long long)x->f->cfg->max_response_bytes);
    else if (x->isolate_too_big)
        tr_error_set(
            why, TR_ELIMIT,
            "the responses this isolate is receiving hold more than %llu bytes (%d x "
            "fetch.max_response_bytes)",
            (unsigned long long)(GUEST_FETCH_BUFFER_FACTOR * x->f->cfg->max_response_bytes),
            GUEST_FETCH_BUFFER_FACTOR);
    else if (x->headers_too_big)
        tr_error_set(why, TR_ELIMIT, "the response from %s has more than %d bytes of headers",
                     x->host, GUEST_FETCH_MAX_HEADER_BYTES);
    else
        tr_error_set(why, TR_EIO, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
}

/* Settles x's promise (value, or a rejection with why), runs the isolate's jobs, frees x and
 * wakes its owner. */
static void finish(guest_fetch_xfer *x, int rc, const tr_error *why, long status)
{
    guest_fetch *f = x->f;
    if (x->in_multi) curl_multi_remove_handle(f->multi, x->easy);
    x->in_multi = false;
    set_unlink(x->set, x);
    f->nxfers--;
    if (x->done != NULL) {
        /* a host that is not an isolate: it gets the values */
        if (rc == 0) {
            tr_arena a;
            tr_arena_init(&a, 4096);
            char *url = NULL;
            jsg_val v = response_val(x, status, &a, &url);
            x->done(x->done_ud, 0, NULL, &v);
            curl_free(url);
            tr_arena_deinit(&a);
        } else {
            x->done(x->done_ud, rc, why, NULL);
        }
        xfer_free(x);
        return;
    }
    jsg_isolate *iso = x->iso;
    guest_wake_fn wake = x->wake;
    void *owner = x->owner;
    if (!jsg_isolate_dead(iso)) {
        tr_error err = {0};
        int r;
        if (rc == 0) {
            jsg_ref value = 0;
            r = response_value(x, status, &value, &err);
            if (r == 0) r = jsg_deferred_resolve(iso, &x->d, value, &err);
            if (value && !jsg_isolate_dead(iso)) jsg_ref_free(iso, value);
            if (r < 0 && !jsg_isolate_dead(iso)) {
                tr_error again = {0};
                if (jsg_deferred_reject(iso, &x->d, err.msg, strlen(err.msg), &again) < 0)
                    jsg_deferred_free(iso, &x->d);
            }
        } else {
            r = jsg_deferred_reject(iso, &x->d, why->msg, strlen(why->msg), &err);
            if (r < 0) jsg_deferred_free(iso, &x->d);
        }
        r = jsg_run_jobs(iso, &err);
        if (r < 0) tr_log_error(GUEST_LOG_PREFIX "fetch callback failed: %s", err.msg);
    }
    xfer_free(x);
    if (wake) wake(owner); /* may free the guest and cancel its other transfers */
}

static void process_done(guest_fetch *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURLcode res = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        guest_fetch_xfer *x = (guest_fetch_xfer *)priv;
        /* msg is invalid from here on: the handle may be removed */
        tr_error why = {0};
        long status = 0;
        int rc = 0;
        if (res == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
            rc = follow_redirect(x, status, &why);
            if (rc == 1) continue;
        } else {
            failure_message(x, res, &why);
            rc = why.code;
        }
        finish(x, rc, &why, status);
    }
}

/* ---- curl on the loop ---- */

static void on_sock_io(loop *l, loop_io *io, uint32_t events)
{
    (void)l;
    guest_fetch *f = ((fetch_sock *)io)->f;
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR) flags |= CURL_CSELECT_ERR;
    int running;
    /* io may be freed inside (CURL_POLL_REMOVE): only f is used afterwards. */
    curl_multi_socket_action(f->multi, io->fd, flags, &running);
    process_done(f);
}

static void on_timer(loop *l, loop_timer *t)
{
    (void)l;
    guest_fetch *f = (guest_fetch *)((char *)t - offsetof(guest_fetch, timer));
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process_done(f);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    guest_fetch *f = userp;
    fetch_sock *fs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (fs) {
            loop_io_del(f->loop, &fs->io);
            if (fs->prev)
                fs->prev->next = fs->next;
            else
                f->socks = fs->next;
            if (fs->next) fs->next->prev = fs->prev;
            tr_free(fs);
        }
        return 0;
    }
    uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (fs == NULL) {
        fs = tr_calloc(1, sizeof *fs);
        fs->f = f;
        if (loop_io_add(f->loop, &fs->io, s, ev, on_sock_io) < 0) {
            tr_free(fs);
            return -1;
        }
        fs->next = f->socks;
        if (f->socks) f->socks->prev = fs;
        f->socks = fs;
        curl_multi_assign(f->multi, s, fs);
        return 0;
    }
    return loop_io_mod(f->loop, &fs->io, ev) < 0 ? -1 : 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    guest_fetch *f = userp;
    if (timeout_ms < 0)
        loop_timer_stop(f->loop, &f->timer);
    else
        loop_timer_start(f->loop, &f->timer, (uint64_t)timeout_ms);
    return 0;
}

guest_fetch *guest_fetch_new(loop *l, const cfg_fetch *conf)
{
    pthread_once(&curl_once, curl_init_once);
    guest_fetch *f = tr_calloc(1, sizeof *f);
    f->loop = l;
    f->cfg = conf ? conf : &default_cfg;
    f->multi = curl_multi_init();
    if (f->multi == NULL) tr_fatal("curl_multi_init failed");
    loop_timer_init(&f->timer, on_timer);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

void guest_fetch_free(guest_fetch *f)
{
    if (f == NULL) return;
    assert(f->nxfers == 0);
    curl_multi_cleanup(f->multi);
    /* Sockets curl closed during clean-up without telling us. */
    while (f->socks) {
        fetch_sock *fs = f->socks;
        f->socks = fs->next;
        loop_io_del(f->loop, &fs->io);
        tr_free(fs);
    }
    loop_timer_stop(f->loop, &f->timer);
    tr_free(f);
}

void guest_fetch_set_cancel(guest_fetch_set *set, jsg_isolate *iso)
{
    while (set->head) {
        guest_fetch_xfer *x = set->head;
        set_unlink(set, x);
        if (x->in_multi) curl_multi_remove_handle(x->f->multi, x->easy);
        x->f->nxfers--;
        if (iso && !jsg_isolate_dead(iso)) jsg_deferred_free(iso, &x->d);
        xfer_free(x);
    }
}

/* ---- the host function ---- */

/* Reads the guest's arguments into x. Returns 0, TR_EINVAL/TR_ELIMIT with why (the promise
 * rejects), or an isolate failure with err. */
static int read_vals(guest_fetch_xfer *x, const cfg_fetch *conf, const jsg_val *v, tr_arena *a,
                     tr_error *why);

static int read_args(guest_fetch_xfer *x, const cfg_fetch *conf, size_t argc, const jsg_ref *argv,
                     tr_error *why, tr_error *err)
{
    tr_arena a;
    tr_arena_init(&a, 4096);
    jsg_val v[5];
    int rc = 0;
    for (size_t i = 0; i < 5; i++) {
        v[i] = jsg_undefined();
        if (i < argc) rc = jsg_to_val(x->iso, argv[i], &a, &v[i], err);
        if (rc == TR_EINVAL) rc = tr_error_set(why, TR_EINVAL, "argument %zu: %s", i + 1, err->msg);
        if (rc < 0) goto out;
    }
    rc = read_vals(x, conf, v, &a, why);
out:
    tr_arena_deinit(&a);
    return rc;
}

/* Checks the request's values (method, url, headers, body, timeoutMs) into x. TR_EINVAL or
 * TR_ELIMIT with why. */
static int read_vals(guest_fetch_xfer *x, const cfg_fetch *conf, const jsg_val *v, tr_arena *a,
                     tr_error *why)
{
    int rc = 0;
    if (v[0].type != JSG_STRING || v[0].u.str.len > 32 ||
        !is_token(v[0].u.str.ptr, v[0].u.str.len)) {
        rc = tr_error_set(why, TR_EINVAL, "the method must be an HTTP token");
        goto out;
    }
    x->method = tr_strndup(v[0].u.str.ptr, v[0].u.str.len);
    if (v[1].type != JSG_STRING || v[1].u.str.len > GUEST_FETCH_MAX_URL ||
        memchr(v[1].u.str.ptr, '\0', v[1].u.str.len) != NULL) {
        rc = tr_error_set(why, TR_EINVAL, "the URL must be a string of at most %d bytes",
                          GUEST_FETCH_MAX_URL);
        goto out;
    }
    char *url = tr_arena_strndup(a, v[1].u.str.ptr, v[1].u.str.len);
    x->url = curl_url();
    CURLUcode uc = curl_url_set(x->url, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        rc = tr_error_set(why, TR_EINVAL, "invalid URL: %s", curl_url_strerror(uc));
        goto out;
    }
    rc = check_url(x, conf, why);
    if (rc < 0) goto out;
    const jsg_val *h = &v[2];
    if (h->type != JSG_ARRAY && h->type != JSG_UNDEFINED && h->type != JSG_NULL) {
        rc = tr_error_set(why, TR_EINVAL, "the headers must be an array of [name, value] pairs");
        goto out;
    }
    size_t nh = h->type == JSG_ARRAY ? h->u.arr.len : 0;
    if (nh > GUEST_FETCH_MAX_HEADERS) {
        rc = tr_error_set(why, TR_ELIMIT, "too many request headers (at most %d)",
                          GUEST_FETCH_MAX_HEADERS);
        goto out;
    }
    x->headers = tr_calloc(nh ? nh : 1, sizeof *x->headers);
    for (size_t i = 0; i < nh; i++) {
        const jsg_val *pair = &h->u.arr.items[i];
        const jsg_val *n =
            pair->type == JSG_ARRAY && pair->u.arr.len == 2 ? &pair->u.arr.items[0] : NULL;
        const jsg_val *val = n ? &pair->u.arr.items[1] : NULL;
        if (n == NULL || n->type != JSG_STRING || val->type != JSG_STRING ||
            !is_token(n->u.str.ptr, n->u.str.len) || memchr(val->u.str.ptr, '\r', val->u.str.len) ||
            memchr(val->u.str.ptr, '\n', val->u.str.len) ||
            memchr(val->u.str.ptr, '\0', val->u.str.len)) {
            rc = tr_error_set(why, TR_EINVAL,
                              "request header %zu is not a [name, value] pair of a token and a "
                              "string without CR, LF or NUL",
                              i + 1);
            goto out;
        }
        if (header_forbidden(n->u.str.ptr, n->u.str.len)) continue;
        /* "name;" is curl's way of sending a header with an empty value */
        x->headers[x->nheaders++] = val->u.str.len
                                        ? tr_asprintf("%.*s: %.*s", (int)n->u.str.len, n->u.str.ptr,
                                                      (int)val->u.str.len, val->u.str.ptr)
                                        : tr_asprintf("%.*s;", (int)n->u.str.len, n->u.str.ptr);
    }
    const jsg_val *b = &v[3];
    if (b->type == JSG_BYTES || b->type == JSG_STRING) {
        x->body = tr_malloc(b->u.str.len ? b->u.str.len : 1);
        memcpy(x->body, b->u.str.ptr, b->u.str.len);
        x->body_len = b->u.str.len;
    } else if (b->type != JSG_NULL && b->type != JSG_UNDEFINED) {
        rc = tr_error_set(why, TR_EINVAL, "the body must be a Uint8Array or null");
        goto out;
    }
    double t = v[4].type == JSG_NUMBER ? v[4].u.num : 0;
    x->timeout_ms = t >= 1 ? (t < DAY_MS ? (uint32_t)t : DAY_MS) : conf->timeout_ms;
out:
    return rc;
}

int guest_fetch_call(guest_env *env, guest_fetch_set *set, jsg_isolate *iso, guest_wake_fn wake,
                     void *owner, size_t argc, const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    jsg_deferred d;
    int rc = jsg_deferred_new(iso, &d, err);
    if (rc < 0) return rc;
    const cfg_fetch *conf = env->fetch_cfg ? env->fetch_cfg : &default_cfg;
    tr_error why = {0};
    guest_fetch_xfer *x = tr_calloc(1, sizeof *x);
    x->iso = iso;
    x->set = set;
    x->wake = wake;
    x->owner = owner;
    if (env->loop == NULL) {
        rc = tr_error_set(&why, TR_EINVAL, "fetch() is not available here");
    } else if (!conf->enabled) {
        rc = tr_error_set(&why, TR_EINVAL,
                          "outgoing HTTP requests are disabled (fetch.enabled: false in "
                          "config.textproto)");
    } else if (set->n >= GUEST_MAX_FETCHES) {
        rc = tr_error_set(&why, TR_ELIMIT, "too many requests in flight (at most %d per isolate)",
                          GUEST_MAX_FETCHES);
    } else {
        rc = read_args(x, conf, argc, argv, &why, err);
        if (rc < 0 && why.code == 0) { /* the isolate failed */
            xfer_free(x);
            jsg_deferred_free(iso, &d);
            if (!jsg_isolate_dead(iso)) jsg_ref_free(iso, d.promise);
            return rc;
        }
    }
    if (rc == 0) {
        if (env->fetch == NULL) env->fetch = guest_fetch_new(env->loop, env->fetch_cfg);
        x->f = env->fetch;
        x->easy = curl_easy_init();
        if (x->easy == NULL) tr_fatal("curl_easy_init failed");
        x->start_ns = tr_now_ns();
        configure(x, x->timeout_ms);
        if (curl_multi_add_handle(x->f->multi, x->easy) != CURLM_OK)
            rc = tr_error_set(&why, TR_EIO, "cannot start the request");
    }
    if (rc < 0) {
        xfer_free(x);
        tr_error e2 = {0};
        int r = jsg_deferred_reject(iso, &d, why.msg, strlen(why.msg), &e2);
        if (r < 0) {
            jsg_deferred_free(iso, &d);
            if (!jsg_isolate_dead(iso)) jsg_ref_free(iso, d.promise);
            *err = e2;
            return r;
        }
        *result = d.promise;
        return 0;
    }
    x->in_multi = true;
    x->d = d;
    x->d.promise = 0; /* the guest's now */
    x->f->nxfers++;
    set_link(set, x);
    *result = d.promise;
    return 0;
}

int guest_fetch_start(guest_env *env, guest_fetch_set *set, const jsg_val *args,
                      guest_fetch_done_fn done, void *ud, tr_error *why)
{
    const cfg_fetch *conf = env->fetch_cfg ? env->fetch_cfg : &default_cfg;
    if (env->loop == NULL) return tr_error_set(why, TR_EINVAL, "fetch is not available here");
    if (!conf->enabled)
        return tr_error_set(why, TR_EINVAL,
                            "outgoing HTTP requests are disabled (fetch.enabled: false in "
                            "config.textproto)");
    if (set->n >= GUEST_MAX_FETCHES)
        return tr_error_set(why, TR_ELIMIT,
                            "too many requests in flight (at most %d per instance)",
                            GUEST_MAX_FETCHES);
    guest_fetch_xfer *x = tr_calloc(1, sizeof *x);
    x->set = set;
    x->done = done;
    x->done_ud = ud;
    tr_arena a;
    tr_arena_init(&a, 1024);
    int rc = read_vals(x, conf, args, &a, why);
    tr_arena_deinit(&a);
    if (rc == 0) {
        if (env->fetch == NULL) env->fetch = guest_fetch_new(env->loop, env->fetch_cfg);
        x->f = env->fetch;
        x->easy = curl_easy_init();
        if (x->easy == NULL) tr_fatal("curl_easy_init failed");
        x->start_ns = tr_now_ns();
        configure(x, x->timeout_ms);
        if (curl_multi_add_handle(x->f->multi, x->easy) != CURLM_OK)
            rc = tr_error_set(why, TR_EIO, "cannot start the request");
    }
    if (rc < 0) {
        xfer_free(x);
        return rc;
    }
    x->in_multi = true;
    x->f->nxfers++;
    set_link(set, x);
    return 0;
}
