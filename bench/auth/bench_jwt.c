/* bench/auth/bench_jwt.c: `make bench-auth`: what resolving a caller costs trail per request:
 * verifying an access token (auth_jwt_verify: base64url, the header, the Ed25519 signature, the
 * claims), the signature check alone (libsodium), and auth_request_caller() on a request with an
 * Authorization header (what every request to a guest with a bearer token pays), for tokens the
 * worker has not seen and for one it verified before. Never pass/fail. */
#include "auth/auth_internal.h"
#include "http/http.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(void)
{
    char dir[] = "/tmp/trail-bench-jwt-XXXXXX";
    if (mkdtemp(dir) == NULL) return 1;
    auth_keys *k = NULL;
    tr_error err = {0};
    if (auth_keys_load(dir, &k, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    auth_claims c = {.iat = 1, .exp = 4102444800, .type = AUTH_TOKEN_TYPE_AUTH};
    snprintf(c.sub, sizeof c.sub, "AaJHtgD0dqaTGzmAUgGrSA==");
    snprintf(c.email, sizeof c.email, "bench@example.org");
    snprintf(c.csrf_token, sizeof c.csrf_token, "abcdefghij0123456789");
    tr_buf t = TR_BUF_INIT;
    auth_jwt_sign(k, &c, &t);
    const int n = 20000;
    auth_claims out;

    double t0 = now_us();
    for (int i = 0; i < n; i++)
        if (auth_jwt_verify(k, t.data, t.len, 1000, &out) != 0) return 1;
    double verify = (now_us() - t0) / n;

    const char *dot = strrchr(t.data, '.');
    uint8_t sig[64];
    size_t sl;
    auth__b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof sig, &sl);
    t0 = now_us();
    for (int i = 0; i < n; i++)
        if (crypto_sign_verify_detached(sig, (const uint8_t *)t.data, (size_t)(dot - t.data),
                                        k->pk) != 0)
            return 1;
    double ed = (now_us() - t0) / n;

    char *hv = tr_asprintf("Bearer %.*s", (int)t.len, t.data);
    http_header h[2] = {{{"Host", 4}, {"x", 1}}, {{"Authorization", 13}, {hv, strlen(hv)}}};
    http_request req = {.method = {"GET", 3}, .headers = h, .nheaders = 2};
    struct auth_ctx a = {.keys = k};
    auth_caller who;
    t0 = now_us();
    for (int i = 0; i < n; i++) {
        auth_request_caller(&a, &req, &who);
        if (!who.signed_in) return 1;
    }
    double caller = (now_us() - t0) / n;

    /* tokens never seen before (each worker remembers the last 16 it verified) */
    enum { FRESH = 2000 };
    char **hvs = tr_calloc(FRESH, sizeof *hvs);
    for (int i = 0; i < FRESH; i++) {
        snprintf(c.csrf_token, sizeof c.csrf_token, "fresh%015d", i);
        tr_buf ft = TR_BUF_INIT;
        auth_jwt_sign(k, &c, &ft);
        hvs[i] = tr_asprintf("Bearer %.*s", (int)ft.len, ft.data);
        tr_buf_free(&ft);
    }
    t0 = now_us();
    for (int i = 0; i < FRESH; i++) {
        h[1].value.ptr = hvs[i];
        h[1].value.len = strlen(hvs[i]);
        auth_request_caller(&a, &req, &who);
        if (!who.signed_in) return 1;
    }
    double fresh = (now_us() - t0) / FRESH;
    for (int i = 0; i < FRESH; i++)
        tr_free(hvs[i]);
    tr_free(hvs);
    auth_request_caller_forget();

    printf("access token of %zu bytes, %d runs each, CPU time per call:\n", t.len, n);
    printf("  Ed25519 signature check (libsodium)   %7.2f us\n", ed);
    printf("  auth_jwt_verify (whole token)         %7.2f us\n", verify);
    printf("  auth_request_caller, a new token      %7.2f us\n", fresh);
    printf("  auth_request_caller, the same again   %7.2f us (remembered by the worker)\n", caller);
    tr_free(hv);
    tr_buf_free(&t);
    auth_keys_free(k);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
