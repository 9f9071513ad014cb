/* component/native_hooks.c: record hooks of compiled components (docs/guest-abi.md, "Record
 * hooks"): trail calls trail_record_hook(hook, ptr, len) with the hook's context as JSON text,
 * the guest answers with trail.hook_result(status, ptr, len) before it returns, and the answer
 * becomes the JSON text records/write.c reads from every guest: {"record": {...}} (the record
 * to write), {} (keep the record as it is) or {"error": {"status": N, "message": "..."}}.
 *
 * DESIGN: a hook runs synchronously inside the write's transaction, so it cannot wait: its
 * statements run at once inside that transaction (native_imports.c does not queue them), and a
 * host call it leaves pending (a timer, fetch, a statement or BEGIN that would wait) fails the
 * write. Every call the hook made and did not take is released before this returns, so no
 * trail_complete() of the hook's can run guest code after the write has ended. A trap or the
 * CPU budget drops the instance as for a request; the write is rolled back by its caller with
 * the hook's own statements. Nothing of the guest's answer is trusted: the status must be 0 or
 * 400-599, the record one JSON object (its syntax is checked by SQLite where it is read), the
 * message any bytes (escaped here, invalid UTF-8 replaced).
 *
 * Thread: owning worker only. */
#include "component/native_internal.h"

#include <stdio.h>
#include <string.h>

/* Whether (p, n) is one JSON object and nothing else: the outer braces close at the end, so the
 * text cannot add keys beside "record" in the answer it is put into. Strings are skipped with
 * their escapes; the rest of the syntax is SQLite's to check. */
static bool one_object(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    while (n > i && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (i >= n || p[i] != '{' || p[n - 1] != '}') return false;
    size_t depth = 0;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\') i++;
            if (i >= n) return false;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return false;
            depth--;
            if (depth == 0 && i != n - 1) return false;
        } else if (c == '\0') {
            return false;
        }
    }
    return depth == 0;
}

/* Appends (s, n) as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static void put_json_str(tr_buf *b, const char *s, size_t n)
{
    tr_buf_append_char(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            tr_buf_append_char(b, '\\');
            tr_buf_append_char(b, (char)c);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            tr_buf_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            tr_buf_append_char(b, (char)c);
            i++;
        } else {
            /* one UTF-8 sequence: its length from the lead byte, its continuation bytes, and no
             * overlong form, surrogate or value past U+10FFFF */
            size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = len > 0 && len <= n - i;
            for (size_t k = 1; ok && k < len; k++)
                ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (ok && len == 3) {
                unsigned char c1 = (unsigned char)s[i + 1];
                ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
            }
            if (ok && len == 4) {
                unsigned char c1 = (unsigned char)s[i + 1];
                ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
            }
            if (ok) {
                tr_buf_append(b, s + i, len);
                i += len;
            } else {
                tr_buf_append_str(b, "\\ufffd");
                i++;
            }
        }
    }
    tr_buf_append_char(b, '"');
}

/* Releases the calls the hook made and left (see DESIGN); true when one was still pending. */
static bool release_hook_calls(struct Z_trail_instance_t *ni)
{
    bool pending = false;
    comp_native_handle *h = ni->handles;
    while (h) {
        comp_native_handle *next = h->next;
        if (h->in_hook) {
            if (h->state == COMP_NATIVE_PENDING && !h->released) pending = true;
            if (h->in_fetch)
                h->released = true; /* freed when its transfer ends, never completed */
            else
                comp__native_handle_free(ni, h);
        }
        h = next;
    }
    return pending;
}

int comp__native_record_hook(comp_native_inst *ni, size_t hook, const char *ctx, size_t len,
                             tr_buf *out, tr_error *err)
{
    if (ni->nat->record_hook == NULL)
        return tr_error_set(err, TR_EINVAL, "the module does not export trail_record_hook");
    /* hooks run from a Record API request, never from inside a call into this instance */
    if (ni->in_hook || ni->pumping || comp__native_call_deadline() != 0)
        return tr_error_set(err, TR_EINVAL, "a record hook cannot run inside another guest call");
    int rc = comp__native_ready(ni, err);
    if (rc < 0) return rc;
    tr_buf ctxb = {(char *)ctx, len, len};
    uint32_t ptr = 0;
    rc = comp__native_pass(ni, &ctxb, &ptr, err);
    if (rc == 0) {
        ni->in_hook = true;
        ni->hook_answered = false;
        tr_buf_reset(&ni->hook_answer);
        rc = comp__native_call_hook(ni, (uint32_t)hook, ptr, (uint32_t)len, err);
        ni->in_hook = false;
    }
    if (rc == TR_ETRAP || rc == TR_EINTERRUPTED) {
        char why[1100];
        snprintf(why, sizeof why, "%s", err->msg);
        /* the instance may be half updated: dropped, and what waits on it answered */
        comp__native_fail(ni, rc, err);
        if (rc == TR_ETRAP)
            tr_error_set(err, TR_ETRAP, "the hook's instance crashed (WebAssembly trap: %s)", why);
    } else if (rc == 0 && release_hook_calls(ni)) {
        rc = tr_error_set(err, TR_EINVAL,
                          "a record hook must finish without waiting (for a timer, fetch, a "
                          "transaction or a file): it left a host call pending");
    } else if (rc == 0 && !ni->hook_answered) {
        rc = tr_error_set(err, TR_EINVAL,
                          "a record hook must finish without waiting: it returned without an "
                          "answer (trail.hook_result)");
    } else if (rc == 0) {
        uint32_t status = ni->hook_status;
        const tr_buf *a = &ni->hook_answer;
        tr_buf_reset(out);
        if (status == 0 && a->len == 0) {
            tr_buf_append_str(out, "{}");
        } else if (status == 0 && one_object(a->data, a->len)) {
            tr_buf_append_str(out, "{\"record\":");
            tr_buf_append(out, a->data, a->len);
            tr_buf_append_char(out, '}');
        } else if (status >= 400 && status <= 599) {
            tr_buf_printf(out, "{\"error\":{\"status\":%u,\"message\":", (unsigned)status);
            put_json_str(out, a->data ? a->data : "", a->len);
            tr_buf_append_str(out, "}}");
        } else if (status == 0) {
            rc = tr_error_set(err, TR_EINVAL,
                              "the record hook's answer is not one JSON object "
                              "(trail.hook_result)");
        } else {
            rc = tr_error_set(err, TR_EINVAL,
                              "the record hook answered status %u (0 to accept, 400-599 to "
                              "reject)",
                              (unsigned)status);
        }
    }
    if (rc != TR_ETRAP && rc != TR_EINTERRUPTED) release_hook_calls(ni);
    tr_buf_free(&ni->hook_answer);
    ni->hook_answered = false;
    /* a hook may have answered waiting requests (respond): sent from the loop, not inside the
     * write that runs this hook */
    comp__native_answers_later(ni);
    return rc;
}

/* ---- the import ---- */

uint32_t Z_trailZ_hook_result(struct Z_trail_instance_t *ni, uint32_t status, uint32_t ptr,
                              uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    const char *p = ni->mem ? wrt_mem_ptr(ni->mem, ptr, len) : NULL;
    if (!ni->in_hook || ni->hook_answered || p == NULL) {
        rc = (uint32_t)-1;
    } else {
        /* any answer counts (a bad one fails the write); -2 tells the guest it was bad */
        ni->hook_answered = true;
        ni->hook_status = status;
        tr_buf_append(&ni->hook_answer, p, len);
        if (status != 0 && (status < 400 || status > 599)) rc = (uint32_t)-2;
    }
    wrt_host_leave(saved);
    return rc;
}
