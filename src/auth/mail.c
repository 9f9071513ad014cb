/* auth/mail.c: verification, password-reset and email-change mails, over SMTP with libcurl.
 *
 * DESIGN: a mail is rendered on the request's worker (its template with the link filled in)
 * and sent from a thread of its own, so a slow or unreachable SMTP server never holds up the
 * worker, and an answer does not take longer for an address that exists (enumeration by timing).
 * At most MAIL_MAX_IN_FLIGHT mails are in flight; beyond that a request is refused. Without an
 * smtp_host the link is logged instead (development). The SMTP password goes to libcurl only
 * and is never logged. */
#include "auth/auth_internal.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAIL_MAX_IN_FLIGHT 16
#define MAIL_TIMEOUT_S     30

static atomic_int g_in_flight;
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct mail_job {
    char *url, *user, *password, *from, *to;
    bool tls_required;
    tr_buf msg;
    size_t sent;
} mail_job;

static void mail_job_free(mail_job *m)
{
    tr_free(m->url);
    tr_free(m->user);
    if (m->password) sodium_memzero(m->password, strlen(m->password));
    tr_free(m->password);
    tr_free(m->from);
    tr_free(m->to);
    tr_buf_free(&m->msg);
    tr_free(m);
}

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
    mail_job *m = ud;
    size_t want = TR_MIN(size * n, m->msg.len - m->sent);
    memcpy(buf, m->msg.data + m->sent, want);
    m->sent += want;
    return want;
}

static void *mail_thread(void *arg)
{
    mail_job *m = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_FAILED_INIT;
    if (h != NULL) {
        char to[AUTH_MAX_EMAIL + 8];
        snprintf(to, sizeof to, "<%s>", m->to);
        rcpt = curl_slist_append(NULL, to);
        curl_easy_setopt(h, CURLOPT_URL, m->url);
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, m->from);
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, m);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)MAIL_TIMEOUT_S);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        if (m->tls_required) curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (m->user && m->user[0]) {
            curl_easy_setopt(h, CURLOPT_USERNAME, m->user);
            curl_easy_setopt(h, CURLOPT_PASSWORD, m->password);
        }
        rc = curl_easy_perform(h);
    }
    if (rc != CURLE_OK)
        tr_log_warn("auth: sending mail to %s failed: %s", m->to,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else
        tr_log_info("auth: mail sent to %s", m->to);
    curl_slist_free_all(rcpt);
    if (h) curl_easy_cleanup(h);
    mail_job_free(m);
    atomic_fetch_sub(&g_in_flight, 1);
    return NULL;
}

static const char *const default_subject[3] = {
    "Verify your email address",
    "Reset your password",
    "Confirm your new email address",
};
static const char *const default_body[3] = {
    "Welcome!\n\nOpen this link to verify your email address:\n\n{{ VERIFICATION_URL }}\n\n"
    "If you did not register at {{ SITE_URL }}, ignore this mail.\n",
    "Someone asked to reset the password of {{ EMAIL }} at {{ SITE_URL }}.\n\n"
    "Open this link to choose a new one:\n\n{{ VERIFICATION_URL }}\n\nor use the code {{ CODE }}."
    "\n\nIf it was not you, ignore this mail: your password stays as it is.\n",
    "Open this link to make {{ EMAIL }} the address of your account at {{ SITE_URL }}:\n\n"
    "{{ VERIFICATION_URL }}\n",
};

/* tpl with {{ NAME }} placeholders replaced; CR and LF become CRLF. */
static void render(tr_buf *out, const char *tpl, const char *link, const char *code,
                   const char *email, const char *site, bool crlf)
{
    for (const char *p = tpl; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            const char *e = strstr(p, "}}");
            if (e != NULL) {
                char name[32];
                const char *s = p + 2;
                while (*s == ' ')
                    s++;
                size_t n = 0;
                while (s < e && *s != ' ' && n < sizeof name - 1)
                    name[n++] = *s++;
                name[n] = '\0';
                const char *v = strcmp(name, "VERIFICATION_URL") == 0 ? link
                                : strcmp(name, "CODE") == 0           ? code
                                : strcmp(name, "EMAIL") == 0          ? email
                                : strcmp(name, "SITE_URL") == 0       ? site
                                                                      : NULL;
                if (v != NULL) {
                    tr_buf_append_str(out, v);
                    p = e + 2;
                    continue;
                }
            }
        }
        if (crlf && *p == '\n') {
            tr_buf_append_str(out, "\r\n");
        } else if (*p != '\r') {
            tr_buf_append_char(out, *p);
        }
        p++;
    }
}

int auth__mail_send(const auth_ctx *a, int kind, const char *to, const char *link, const char *code,
                    tr_error *err)
{
    const char *subject = a->tpl_subject[kind] && a->tpl_subject[kind][0] ? a->tpl_subject[kind]
                                                                          : default_subject[kind];
    const char *body =
        a->tpl_body[kind] && a->tpl_body[kind][0] ? a->tpl_body[kind] : default_body[kind];
    if (a->smtp_host == NULL || a->smtp_host[0] == '\0') {
        /* development: no SMTP server configured */
        tr_log_info("auth: no email.smtp_host configured; the mail to %s (%s) would carry: %s", to,
                    subject, link);
        return 0;
    }
    if (atomic_fetch_add(&g_in_flight, 1) >= MAIL_MAX_IN_FLIGHT) {
        atomic_fetch_sub(&g_in_flight, 1);
        return tr_error_set(err, TR_ELIMIT, "too many mails are being sent; try again later");
    }
    pthread_once(&g_curl_once, curl_init_once);
    mail_job *m = tr_calloc(1, sizeof *m);
    bool implicit_tls = a->smtp_encryption && strcmp(a->smtp_encryption, "tls") == 0;
    m->url = tr_asprintf("%s://%s:%u", implicit_tls ? "smtps" : "smtp", a->smtp_host,
                         (unsigned)a->smtp_port);
    m->tls_required = a->smtp_encryption && strcmp(a->smtp_encryption, "starttls") == 0;
    m->user = tr_strdup(a->smtp_username ? a->smtp_username : "");
    m->password = tr_strdup(a->smtp_password ? a->smtp_password : "");
    m->from = tr_asprintf("<%s>", a->sender_address);
    m->to = tr_strdup(to);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char mid[17];
    auth__random_alnum(mid, 16);
    tr_buf_printf(&m->msg,
                  "Date: %s\r\nTo: <%s>\r\nFrom: \"%s\" <%s>\r\nMessage-ID: <%s@trail>\r\n", date,
                  to, a->sender_name, a->sender_address, mid);
    tr_buf_append_str(&m->msg, "Subject: ");
    render(&m->msg, subject, link, code, to, a->site_url, false);
    /* a subject is one line whatever the template holds */
    for (size_t i = 0; i < m->msg.len; i++)
        if (m->msg.data[i] == '\n') m->msg.data[i] = ' ';
    tr_buf_append_str(&m->msg,
                      "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    render(&m->msg, body, link, code, to, a->site_url, true);
    tr_buf_append_str(&m->msg, "\r\n");
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, mail_thread, m);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        mail_job_free(m);
        atomic_fetch_sub(&g_in_flight, 1);
        return tr_error_set(err, -rc, "cannot start the mail thread");
    }
    return 0;
}
