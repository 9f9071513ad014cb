/* component/download.c: downloading a component over HTTP(S) with libcurl, bounded in size and time. */
#include "component/component_internal.h"

#include <curl/curl.h>

typedef struct sink {
    tr_buf *out;
    size_t max;
    bool too_big;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (s->out->len + n > s->max) {
        s->too_big = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    tr_buf_append(s->out, ptr, n);
    return n;
}

int comp_download(const char *url, size_t max_bytes, long timeout_ms, tr_buf *out, tr_error *err)
{
    tr_curl_global_init();
    CURL *h = curl_easy_init();
    if (h == NULL) return tr_error_set(err, TR_EIO, "cannot initialise libcurl");
    sink s = {out, max_bytes, false};
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, TR_MIN(timeout_ms, 10000L));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "trail");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (s.too_big)
        return tr_error_set(err, TR_ELIMIT, "download of %s exceeds %zu bytes", url, max_bytes);
    if (rc != CURLE_OK)
        return tr_error_set(err, TR_EIO, "cannot download %s: %s", url,
                            curl_err[0] ? curl_err : curl_easy_strerror(rc));
    if (status >= 400)
        return tr_error_set(err, TR_EIO, "cannot download %s: the server answered HTTP %ld", url,
                            status);
    return 0;
}
